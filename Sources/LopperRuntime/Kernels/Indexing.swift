import Foundation
import LopperModel

/// GatherElements, ScatterND, CumSum, TopK, NonZero and Hardmax.
enum IndexingKernels {
    static let all: [KernelVersion] = [
        KernelVersion("GatherElements", since: 11) { setup in GatherElements(axis: try setup.node.int("axis", default: 0)) },
        KernelVersion("ScatterND", since: 11) { setup in
            ScatterND(reduction: try ScatterReduction(try setup.node.string("reduction", default: "none")))
        },
        KernelVersion("CumSum", since: 11) { setup in
            CumSum(exclusive: try setup.node.int("exclusive", default: 0) != 0, reverse: try setup.node.int("reverse", default: 0) != 0)
        },
        KernelVersion("TopK") { setup in
            guard let k = try setup.node.int("k") else { throw ModelError("is required", field: "attribute 'k'") }
            return TopK(k: k, axis: try setup.node.int("axis", default: -1), largest: true)
        },
        KernelVersion("TopK", since: 10) { setup in TopK(k: nil, axis: try setup.node.int("axis", default: -1), largest: true) },
        KernelVersion("TopK", since: 11) { setup in
            guard try setup.node.int("sorted", default: 1) != 0 else {
                throw ModelError("sorted=0 (an unspecified order) is not supported", field: "attribute 'sorted'")
            }
            return TopK(k: nil, axis: try setup.node.int("axis", default: -1), largest: try setup.node.int("largest", default: 1) != 0)
        },
        KernelVersion("NonZero", since: 9) { _ in NonZero() },
        // Before opset 13 Hardmax works on the input flattened to 2-D at `axis` (default 1).
        KernelVersion("Hardmax") { setup in Hardmax(axis: try setup.node.int("axis", default: 1), flattened: true) },
        KernelVersion("Hardmax", since: 13) { setup in Hardmax(axis: try setup.node.int("axis", default: -1), flattened: false) },
    ]

    /// An index into an axis of `size`, negative counting from the end; errors name `what`.
    static func index(_ value: Int64, size: Int, _ what: String) throws -> Int {
        let i = value < 0 ? Int(value) + size : Int(value)
        guard i >= 0 && i < size else { throw ModelError("\(what) holds index \(value), out of range for size \(size)") }
        return i
    }

    struct GatherElements: Kernel {
        let axis: Int

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let data = try inputs.required(0), indices = try inputs.required(1)
            guard indices.kind == .int64, indices.rank == data.rank else {
                throw ModelError("indices must be an integer tensor of data's rank \(data.rank), found \(indices)")
            }
            let a = try normalizeAxis(axis, rank: data.rank)
            let out = try Tensor(uninitialized: data.elementType, shape: indices.shape)
            let source = strides(of: data.shape), target = strides(of: indices.shape), size = data.kind.byteSize
            for k in 0..<indices.count {
                var offset = 0
                for d in 0..<data.rank {
                    let position = (k / target[d]) % indices.shape[d]
                    if d == a {
                        offset += try IndexingKernels.index(indices.i[k], size: data.shape[d], "indices") * source[d]
                    } else {
                        guard position < data.shape[d] else { throw ModelError("indices \(indices.shape) is larger than data \(data.shape) on axis \(d)") }
                        offset += position * source[d]
                    }
                }
                (out.raw + k * size).copyMemory(from: data.raw + offset * size, byteCount: size)
            }
            return [out]
        }
    }

    enum ScatterReduction: String {
        case none, add, mul, max, min

        init(_ name: String) throws {
            guard let value = ScatterReduction(rawValue: name) else {
                throw ModelError("must be none, add, mul, max or min, found '\(name)'", field: "attribute 'reduction'")
            }
            self = value
        }

        func combine(_ old: Float, _ new: Float) -> Float {
            switch self {
            case .none: return new
            case .add: return old + new
            case .mul: return old * new
            case .max: return Swift.max(old, new)
            case .min: return Swift.min(old, new)
            }
        }

        func combine(_ old: Int64, _ new: Int64) -> Int64 {
            switch self {
            case .none: return new
            case .add: return old &+ new
            case .mul: return old &* new
            case .max: return Swift.max(old, new)
            case .min: return Swift.min(old, new)
            }
        }
    }

    /// ScatterND: a copy of data with the slices `indices[..., :]` address replaced (or combined)
    /// by `updates`, in index order.
    struct ScatterND: Kernel {
        let reduction: ScatterReduction

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let data = try inputs.required(0), indices = try inputs.required(1), updates = try inputs.required(2)
            guard indices.kind == .int64, let depth = indices.shape.last, depth <= data.rank else {
                throw ModelError("indices must be an integer tensor whose last axis is at most data's rank \(data.rank), found \(indices)")
            }
            let expected = Array(indices.shape.dropLast()) + Array(data.shape[depth...])
            guard updates.shape == expected, updates.kind == data.kind else {
                throw ModelError("updates must be \(data.elementType)\(expected), found \(updates)")
            }
            let out = try Tensor(uninitialized: data.elementType, shape: data.shape)
            out.raw.copyMemory(from: data.raw, byteCount: data.count * data.kind.byteSize)
            let slice = data.shape[depth...].reduce(1, *), source = strides(of: data.shape)
            for u in 0..<(indices.count / max(depth, 1)) where depth > 0 || u == 0 {
                var offset = 0
                for d in 0..<depth { offset += try IndexingKernels.index(indices.i[u * depth + d], size: data.shape[d], "indices") * source[d] }
                for k in 0..<slice {
                    switch data.kind {
                    case .float: out.f[offset + k] = reduction.combine(out.f[offset + k], updates.f[u * slice + k])
                    case .int64: out.i[offset + k] = reduction.combine(out.i[offset + k], updates.i[u * slice + k])
                    case .bool: out.b[offset + k] = updates.b[u * slice + k]
                    }
                }
            }
            return [out.normalized()]
        }
    }

    struct CumSum: Kernel {
        let exclusive: Bool, reverse: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0), axisTensor = try inputs.required(1)
            guard axisTensor.count == 1, axisTensor.kind == .int64 else { throw ModelError("axis must be one integer, found \(axisTensor)") }
            let a = try normalizeAxis(axisTensor.ints[0], rank: x.rank)
            let out = try Tensor(uninitialized: x.elementType, shape: x.shape)
            let dim = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *), outer = x.shape[..<a].reduce(1, *)
            for o in 0..<outer {
                for i in 0..<inner {
                    var sumF: Float = 0, sumI: Int64 = 0
                    for step in 0..<dim {
                        let k = (o * dim + (reverse ? dim - 1 - step : step)) * inner + i
                        switch x.kind {
                        case .float:
                            if exclusive { out.f[k] = sumF; sumF += x.f[k] } else { sumF += x.f[k]; out.f[k] = sumF }
                        case .int64:
                            if exclusive { out.i[k] = sumI; sumI &+= x.i[k] } else { sumI &+= x.i[k]; out.i[k] = sumI }
                        case .bool: throw ModelError("is not defined for bool tensors")
                        }
                    }
                }
            }
            return [out.normalized()]
        }
    }

    /// The `k` largest (or smallest) elements along an axis, sorted, ties broken by lower index.
    struct TopK: Kernel {
        let k: Int?
        let axis: Int
        let largest: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            let count: Int
            if let k { count = k } else {
                let kTensor = try inputs.required(1)
                guard kTensor.count == 1, kTensor.kind == .int64 else { throw ModelError("K must be one integer, found \(kTensor)") }
                count = kTensor.ints[0]
            }
            let a = try normalizeAxis(axis, rank: x.rank)
            let dim = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *), outer = x.shape[..<a].reduce(1, *)
            guard count >= 0 && count <= dim else { throw ModelError("K is \(count), outside 0...\(dim) (axis \(a) of \(x.shape))") }
            var shape = x.shape
            shape[a] = count
            let values = try Tensor(uninitialized: x.elementType, shape: shape)
            let indices = try Tensor(uninitialized: .int64, shape: shape)
            let keys = x.doubles
            for o in 0..<outer {
                for i in 0..<inner {
                    let position = { (d: Int) in (o * dim + d) * inner + i }
                    let order = (0..<dim).sorted { p, q in
                        let u = keys[position(p)], v = keys[position(q)]
                        if u == v || (u.isNaN && v.isNaN) { return p < q }
                        // NaN ranks above every number when largest, below when smallest (as ONNX Runtime does).
                        if u.isNaN { return largest }
                        if v.isNaN { return !largest }
                        return largest ? u > v : u < v
                    }
                    let size = x.kind.byteSize
                    for (rank, d) in order.prefix(count).enumerated() {
                        let target = (o * count + rank) * inner + i
                        (values.raw + target * size).copyMemory(from: x.raw + position(d) * size, byteCount: size)
                        indices.i[target] = Int64(d)
                    }
                }
            }
            return [values, indices]
        }
    }

    /// The indices of the non-zero elements, `[rank, count]`, in row-major order.
    struct NonZero: Kernel {
        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            let flags = x.bools
            let hits = flags.indices.filter { flags[$0] }
            let shape = x.rank == 0 ? [1] : x.shape
            let out = try Tensor(uninitialized: .int64, shape: [x.rank, hits.count])
            let step = strides(of: shape)
            for (column, flat) in hits.enumerated() {
                for d in 0..<x.rank { out.i[d * hits.count + column] = Int64((flat / step[d]) % shape[d]) }
            }
            return [out]
        }
    }

    /// 1 at the first maximum along the axis, 0 elsewhere.
    struct Hardmax: Kernel {
        let axis: Int
        /// Opsets before 13: the axis splits the input into rows and columns of a 2-D matrix.
        let flattened: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            try x.requireFloat()
            let a = try normalizeAxis(axis, rank: x.rank)
            let dim = flattened ? x.shape[a...].reduce(1, *) : x.shape[a]
            let inner = flattened ? 1 : x.shape[(a + 1)...].reduce(1, *)
            let outer = x.shape[..<a].reduce(1, *)
            let out = try Tensor(uninitialized: x.elementType, shape: x.shape)
            out.f.update(repeating: 0, count: out.count)
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = 0
                    for d in 1..<max(dim, 1) where x.f[(o * dim + d) * inner + i] > x.f[(o * dim + best) * inner + i] { best = d }
                    if dim > 0 { out.f[(o * dim + best) * inner + i] = 1 }
                }
            }
            return [out]
        }
    }
}
