import Foundation
import LopperModel

/// ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare,
/// ReduceLogSum, ReduceLogSumExp and ArgMax.
enum ReductionKernels {
    enum Kind { case mean, sum, max, min, prod, l1, l2, sumSquare, logSum, logSumExp }

    static let all: [KernelVersion] = {
        // Axes moved from an attribute to an input: ReduceSum at opset 13, the others at 18.
        let ops: [(String, Kind, Int)] = [("ReduceMean", .mean, 18), ("ReduceSum", .sum, 13), ("ReduceMax", .max, 18),
                                          ("ReduceMin", .min, 18), ("ReduceProd", .prod, 18), ("ReduceL1", .l1, 18),
                                          ("ReduceL2", .l2, 18), ("ReduceSumSquare", .sumSquare, 18), ("ReduceLogSum", .logSum, 18),
                                          ("ReduceLogSumExp", .logSumExp, 18)]
        var list: [KernelVersion] = []
        for (op, kind, inputSince) in ops {
            list.append(KernelVersion(op) { setup in
                Reduce(kind: kind, axes: try setup.node.ints("axes"), axesFromInput: false,
                       keepDims: try setup.node.int("keepdims", default: 1) != 0, noopWithEmptyAxes: false)
            })
            list.append(KernelVersion(op, since: inputSince) { setup in
                Reduce(kind: kind, axes: nil, axesFromInput: true, keepDims: try setup.node.int("keepdims", default: 1) != 0,
                       noopWithEmptyAxes: try setup.node.int("noop_with_empty_axes", default: 0) != 0)
            })
        }
        list.append(KernelVersion("ArgMax") { setup in
            ArgMax(axis: try setup.node.int("axis", default: 0), keepDims: try setup.node.int("keepdims", default: 1) != 0,
                   selectLast: try setup.node.int("select_last_index", default: 0) != 0)
        })
        return list
    }()

    struct Reduce: Kernel {
        let kind: Kind
        let axes: [Int]?
        let axesFromInput: Bool
        let keepDims: Bool
        let noopWithEmptyAxes: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            var x = try inputs.required(0)
            let original = x.elementType
            if x.kind != .float { x = try Cast.convert(x, to: .float32) }
            var list = axesFromInput ? (inputs.optional(1)?.ints ?? []) : (axes ?? [])
            if list.isEmpty {
                if noopWithEmptyAxes { return [try Cast.convert(x, to: original)] }
                list = Array(0..<x.rank)
            }
            let reduced = Set(try list.map { try normalizeAxis($0, rank: x.rank) })
            if kind == .logSumExp { return [try Cast.convert(logSumExp(x, axes: Array(reduced), context), to: original)] }
            let keptShape = x.shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
            let out = try Tensor(uninitialized: .float32, shape: keepDims ? keptShape : x.shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element))
            let outCount = out.count
            let initial: Float = kind == .max ? -.infinity : (kind == .min ? .infinity : (kind == .prod ? 1 : 0))
            out.f.update(repeating: initial, count: outCount)
            let combine: (Float, Float) -> Float
            switch kind {
            case .mean, .sum, .logSum, .logSumExp: combine = { $0 + $1 }
            case .max: combine = { Swift.max($0, $1) }
            case .min: combine = { Swift.min($0, $1) }
            case .prod: combine = { $0 * $1 }
            case .l1: combine = { $0 + Swift.abs($1) }
            case .l2, .sumSquare: combine = { $0 + $1 * $1 }
            }
            // Walk the input with an odometer; reduced axes add nothing to the output offset.
            let outStrides = strides(of: keptShape).enumerated().map { reduced.contains($0.offset) ? 0 : $0.element }
            if x.count > 0 {
                let rank = x.rank
                var index = [Int](repeating: 0, count: rank)
                var o = 0
                let inner = x.shape.last ?? 1, innerStride = outStrides.last ?? 0
                var k = 0
                while k < x.count {
                    for j in 0..<inner { out.f[o + j * innerStride] = combine(out.f[o + j * innerStride], x.f[k + j]) }
                    k += inner
                    var d = rank - 2
                    while d >= 0 {
                        index[d] += 1
                        o += outStrides[d]
                        if index[d] < x.shape[d] { break }
                        o -= outStrides[d] * x.shape[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
            let n = Float(x.count / Swift.max(outCount, 1))
            switch kind {
            case .mean: for k in 0..<outCount { out.f[k] /= n }
            case .l2: for k in 0..<outCount { out.f[k] = out.f[k].squareRoot() }
            case .logSum: for k in 0..<outCount { out.f[k] = logf(out.f[k]) }
            default: break
            }
            return [try Cast.convert(out, to: original)]
        }

        /// `log Σ exp(x)` computed as `m + log Σ exp(x − m)` with `m` the maximum, so that large
        /// inputs do not overflow.
        private func logSumExp(_ x: Tensor, axes: [Int], _ context: ExecutionContext) throws -> Tensor {
            let peak = try Reduce(kind: .max, axes: axes, axesFromInput: false, keepDims: true, noopWithEmptyAxes: false).run([x], context)[0]
            for k in 0..<peak.count where !peak.f[k].isFinite { peak.f[k] = 0 }
            let shifted = try ElementwiseKernels.apply(.sub, x, peak, context)
            for k in 0..<shifted.count { shifted.f[k] = expf(shifted.f[k]) }
            let sum = try Reduce(kind: .sum, axes: axes, axesFromInput: false, keepDims: keepDims, noopWithEmptyAxes: false).run([shifted], context)[0]
            for k in 0..<sum.count { sum.f[k] = logf(sum.f[k]) + peak.f[k] }
            return sum
        }
    }

    struct ArgMax: Kernel {
        let axis: Int
        let keepDims: Bool
        let selectLast: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            var x = try inputs.required(0)
            if x.kind != .float { x = try Cast.convert(x, to: .float32) }
            let a = try normalizeAxis(axis, rank: x.rank)
            let outer = x.shape[..<a].reduce(1, *), dim = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *)
            var shape = x.shape
            if keepDims { shape[a] = 1 } else { shape.remove(at: a) }
            let out = try Tensor(uninitialized: .int64, shape: shape)
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = -Float.infinity, bestIndex = 0
                    for d in 0..<dim {
                        let v = x.f[(o * dim + d) * inner + i]
                        if d == 0 || v > best || (selectLast && v == best) { best = v; bestIndex = d }
                    }
                    out.i[o * inner + i] = Int64(bestIndex)
                }
            }
            return [out]
        }
    }
}
