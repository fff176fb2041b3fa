import CKernels
import Foundation
import LopperModel

/// BatchNormalization (inference), LayerNormalization, Softmax and LogSoftmax.
enum NormalizationKernels {
    static let all: [KernelVersion] = [
        KernelVersion("BatchNormalization") { setup in
            if setup.opset >= 14, try setup.node.int("training_mode", default: 0) != 0 {
                throw ModelError("training mode is not supported", field: "attribute 'training_mode'")
            }
            if setup.node.outputs.filter({ !$0.isEmpty }).count > 1 {
                throw ModelError("running statistics outputs (training) are not supported")
            }
            return BatchNormalization(epsilon: try setup.node.float("epsilon", default: 1e-5))
        },
        KernelVersion("LayerNormalization", since: 17) { setup in
            LayerNormalization(axis: try setup.node.int("axis", default: -1), epsilon: try setup.node.float("epsilon", default: 1e-5))
        },
        KernelVersion("Softmax") { setup in Softmax(axis: try setup.node.int("axis", default: 1), log: false, coerced: true) },
        KernelVersion("Softmax", since: 13) { setup in Softmax(axis: try setup.node.int("axis", default: -1), log: false, coerced: false) },
        KernelVersion("LogSoftmax") { setup in Softmax(axis: try setup.node.int("axis", default: 1), log: true, coerced: true) },
        KernelVersion("LogSoftmax", since: 13) { setup in Softmax(axis: try setup.node.int("axis", default: -1), log: true, coerced: false) },
    ]

    /// Per-channel scale and shift equivalent to inference batch normalization.
    static func batchNormAffine(scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: Float) -> (a: [Float], b: [Float]) {
        let n = scale.count
        var a = [Float](repeating: 0, count: n), b = a
        for c in 0..<n {
            a[c] = scale.f[c] / (variance.f[c] + epsilon).squareRoot()
            b[c] = bias.f[c] - mean.f[c] * a[c]
        }
        return (a, b)
    }

    struct BatchNormalization: Kernel {
        let epsilon: Float

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            try x.requireFloat("X")
            guard x.rank >= 2 else { throw ModelError("input X must have rank 2 or more, found \(x.shape)") }
            let channels = x.shape[1]
            let params = try (1...4).map { try inputs.required($0) }
            for p in params where p.count != channels {
                throw ModelError("scale, bias, mean and variance must have \(channels) elements, found \(params.map(\.shape))")
            }
            let (a, b) = NormalizationKernels.batchNormAffine(scale: params[0], bias: params[1], mean: params[2], variance: params[3], epsilon: epsilon)
            let out = try Tensor(uninitialized: x.elementType, shape: x.shape)
            let size = x.shape[2...].reduce(1, *), planes = x.shape[0] * channels
            let (src, dst) = (x.f, out.f)
            context.parallel(planes, cost: planes * size) { range in
                for plane in range {
                    let s = a[plane % channels], t = b[plane % channels]
                    for k in 0..<size { dst[plane * size + k] = src[plane * size + k] * s + t }
                }
            }
            return [out]
        }
    }

    struct LayerNormalization: Kernel {
        let axis: Int
        let epsilon: Float

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0), scale = try inputs.required(1), bias = inputs.optional(2)
            try x.requireFloat("X")
            let a = try normalizeAxis(axis, rank: x.rank)
            let rows = x.shape[..<a].reduce(1, *), size = x.shape[a...].reduce(1, *)
            let normalized = Array(x.shape[a...])
            let scalePlan = try Broadcast([normalized, scale.shape])
            guard scalePlan.shape == normalized else { throw ModelError("scale \(scale.shape) does not broadcast to \(normalized)") }
            // Scale and bias expanded to the normalized shape once.
            let gamma = try remap(scale, shape: normalized, maps: Self.maps(scale.shape, normalized), strides: Self.paddedStrides(scale.shape, normalized.count))
            let beta = try bias.map { b -> Tensor in
                guard try Broadcast([normalized, b.shape]).shape == normalized else { throw ModelError("bias \(b.shape) does not broadcast to \(normalized)") }
                return try remap(b, shape: normalized, maps: Self.maps(b.shape, normalized), strides: Self.paddedStrides(b.shape, normalized.count))
            }
            let out = try Tensor(uninitialized: x.elementType, shape: x.shape)
            let statShape = Array(x.shape[..<a]) + [Int](repeating: 1, count: x.rank - a)
            let meanOut = try Tensor(uninitialized: .float32, shape: statShape), invOut = try Tensor(uninitialized: .float32, shape: statShape)
            let (src, dst, g, bt, eps) = (x.f, out.f, gamma.f, beta?.f, epsilon)
            context.parallel(rows, cost: rows * size * 4) { range in
                for r in range {
                    let p = src + r * size, q = dst + r * size
                    var sum: Float = 0
                    for k in 0..<size { sum += p[k] }
                    let mean = sum / Float(size)
                    var sq: Float = 0
                    for k in 0..<size { let d = p[k] - mean; sq += d * d }
                    let inv = 1 / (sq / Float(size) + eps).squareRoot()
                    for k in 0..<size { q[k] = (p[k] - mean) * inv * g[k] + (bt?[k] ?? 0) }
                    meanOut.f[r] = mean
                    invOut.f[r] = inv
                }
            }
            return [out, meanOut, invOut]
        }

        static func maps(_ shape: [Int], _ target: [Int]) -> [[Int]] {
            let padded = [Int](repeating: 1, count: target.count - shape.count) + shape
            return target.enumerated().map { d, n in padded[d] == 1 ? [Int](repeating: 0, count: n) : Array(0..<n) }
        }

        static func paddedStrides(_ shape: [Int], _ rank: Int) -> [Int] {
            strides(of: [Int](repeating: 1, count: rank - shape.count) + shape)
        }
    }

    struct Softmax: Kernel {
        let axis: Int
        let log: Bool
        /// Opsets before 13 flatten the input to 2-D at `axis` and normalise each row.
        let coerced: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            try x.requireFloat("input")
            let a = x.rank == 0 ? 0 : try normalizeAxis(axis, rank: x.rank)
            let outer = x.shape[..<a].reduce(1, *)
            let dim = coerced ? x.shape[a...].reduce(1, *) : (x.rank == 0 ? 1 : x.shape[a])
            let inner = coerced ? 1 : x.shape[(a + 1)...].reduce(1, *)
            let out = try Tensor(uninitialized: x.elementType, shape: x.shape)
            let (src, dst, log) = (x.f, out.f, self.log)
            if inner == 1 {
                context.parallel(outer, cost: outer * dim * 8) { range in
                    for row in range { Softmax.normalizeRow(src + row * dim, dst + row * dim, count: dim, log: log) }
                }
            } else {
                // Blocks of up to 256 adjacent positions, each normalised along `dim` in vectors.
                let blocks = (inner + 255) / 256
                context.parallel(outer * blocks, cost: outer * inner * dim * 8) { range in
                    for item in range {
                        let o = item / blocks, first = (item % blocks) * 256, lanes = Swift.min(256, inner - first)
                        let base = o * dim * inner + first
                        Softmax.normalize(src + base, dst + base, lanes: lanes, dim: dim, stride: inner, log: log)
                    }
                }
            }
            return [out]
        }

        /// (Log-)softmax of `count` adjacent floats.
        static func normalizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, log: Bool) {
            var peak = -Float.infinity
            for k in 0..<count { peak = Swift.max(peak, src[k]) }
            for k in 0..<count { dst[k] = src[k] - peak }
            lopper_pointwise_map(LOPPER_POINTWISE_EXP, dst, dst, count)
            var sum: Float = 0
            for k in 0..<count { sum += dst[k] }
            if log {
                let shift = peak + logf(sum)
                for k in 0..<count { dst[k] = src[k] - shift }
            } else {
                let scale = 1 / sum
                for k in 0..<count { dst[k] *= scale }
            }
        }

        /// (Log-)softmax along `dim` rows `stride` apart, for each of `lanes` adjacent positions.
        static func normalize(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, lanes: Int, dim: Int, stride: Int, log: Bool) {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * lanes) { scratch in
                let peak = scratch.baseAddress!, sum = peak + lanes
                peak.update(repeating: -.infinity, count: lanes)
                sum.update(repeating: 0, count: lanes)
                for d in 0..<dim {
                    let row = src + d * stride
                    for i in 0..<lanes { peak[i] = Swift.max(peak[i], row[i]) }
                }
                for d in 0..<dim {
                    let (row, out) = (src + d * stride, dst + d * stride)
                    for i in 0..<lanes { out[i] = row[i] - peak[i] }
                    lopper_pointwise_map(LOPPER_POINTWISE_EXP, out, out, lanes)
                    for i in 0..<lanes { sum[i] += out[i] }
                }
                if log {
                    VectorMath.map(sum, lanes, VectorMath.log)
                    for i in 0..<lanes { sum[i] += peak[i] }
                    for d in 0..<dim {
                        let (row, out) = (src + d * stride, dst + d * stride)
                        for i in 0..<lanes { out[i] = row[i] - sum[i] }
                    }
                } else {
                    for i in 0..<lanes { sum[i] = 1 / sum[i] }
                    for d in 0..<dim {
                        let out = dst + d * stride
                        for i in 0..<lanes { out[i] *= sum[i] }
                    }
                }
            }
        }
    }
}
