import LopperModel

/// Operators that change only the shape or the order of elements.
enum ShapeKernels {
    static let all: [KernelVersion] = [
        KernelVersion("Reshape") { setup in
            Reshape(legacyShape: try setup.node.ints("shape"), allowZero: try setup.node.int("allowzero", default: 0) != 0)
        },
        KernelVersion("Reshape", since: 5) { setup in
            Reshape(legacyShape: nil, allowZero: try setup.node.int("allowzero", default: 0) != 0)
        },
        KernelVersion("Flatten") { setup in Flatten(axis: try setup.node.int("axis", default: 1)) },
        KernelVersion("Transpose") { setup in Transpose(perm: try setup.node.ints("perm")) },
        KernelVersion("Squeeze") { setup in Squeeze(axes: try setup.node.ints("axes")) },
        KernelVersion("Squeeze", since: 13) { _ in Squeeze(axes: nil) },
        KernelVersion("Unsqueeze") { setup in Unsqueeze(axes: try setup.node.ints("axes")) },
        KernelVersion("Unsqueeze", since: 13) { _ in Unsqueeze(axes: nil) },
    ]

    struct Reshape: Kernel {
        let legacyShape: [Int]?
        let allowZero: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            var shape = try legacyShape ?? inputs.required(1).ints
            var inferred: Int? = nil
            for (axis, dim) in shape.enumerated() {
                if dim == 0 && !allowZero {
                    guard axis < x.rank else { throw ModelError("shape \(shape) copies axis \(axis), but the input has shape \(x.shape)") }
                    shape[axis] = x.shape[axis]
                } else if dim == -1 {
                    guard inferred == nil else { throw ModelError("shape \(shape) has more than one -1") }
                    inferred = axis
                } else if dim < 0 {
                    throw ModelError("shape \(shape) has a negative dimension")
                }
            }
            if let axis = inferred {
                let known = shape.enumerated().filter { $0.offset != axis }.reduce(1) { $0 * $1.element }
                guard known > 0, x.count % known == 0 else {
                    throw ModelError("cannot reshape \(x.shape) (\(x.count) elements) to \(shape)")
                }
                shape[axis] = x.count / known
            }
            guard Tensor.count(shape) == x.count else {
                throw ModelError("cannot reshape \(x.shape) (\(x.count) elements) to \(shape)")
            }
            return [x.reshaped(shape)]
        }
    }

    struct Flatten: Kernel {
        let axis: Int

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            let a = axis < 0 ? axis + x.rank : axis
            guard a >= 0 && a <= x.rank else { throw ModelError("axis \(axis) is out of range for rank \(x.rank)") }
            return [x.reshaped([x.shape[..<a].reduce(1, *), x.shape[a...].reduce(1, *)])]
        }
    }

    struct Transpose: Kernel {
        let perm: [Int]?

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            let perm = self.perm ?? Array((0..<x.rank).reversed())
            guard perm.count == x.rank, Set(perm) == Set(0..<x.rank) else {
                throw ModelError("perm \(perm) is not a permutation of the \(x.rank) axes of \(x.shape)")
            }
            return [try x.permuted(perm)]
        }
    }

    struct Squeeze: Kernel {
        let axes: [Int]?

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            let axes = try (self.axes ?? inputs.optional(1)?.ints)?.map { try normalizeAxis($0, rank: x.rank) }
            for axis in axes ?? [] where x.shape[axis] != 1 {
                throw ModelError("cannot squeeze axis \(axis) of shape \(x.shape): its size is not 1")
            }
            var shape: [Int] = []
            for (axis, dim) in x.shape.enumerated() where axes.map({ !$0.contains(axis) }) ?? (dim != 1) { shape.append(dim) }
            return [x.reshaped(shape)]
        }
    }

    struct Unsqueeze: Kernel {
        let axes: [Int]?

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            guard let given = axes ?? inputs.optional(1)?.ints else { throw ModelError("axes are required") }
            let rank = x.rank + given.count
            let axes = try Set(given.map { try normalizeAxis($0, rank: rank) })
            guard axes.count == given.count else { throw ModelError("axes \(given) repeat an axis") }
            var shape: [Int] = []
            var next = 0
            for axis in 0..<rank {
                if axes.contains(axis) { shape.append(1) } else { shape.append(x.shape[next]); next += 1 }
            }
            return [x.reshaped(shape)]
        }
    }
}

extension Tensor {
    /// The tensor with its axes reordered: axis `d` of the result is axis `perm[d]` of this one.
    func permuted(_ perm: [Int]) throws -> Tensor {
        let source = strides(of: shape)
        let newShape = perm.map { shape[$0] }
        return try remap(self, shape: newShape, maps: newShape.map { Array(0..<$0) }, strides: perm.map { source[$0] })
    }
}

/// Builds a tensor of `shape` whose element at index (i0, i1, …) is the source element at offset
/// `Σ maps[d][id] * strides[d]`, or `fill` (default zero) where a map holds -1.
func remap(_ x: Tensor, shape: [Int], maps: [[Int]], strides: [Int], fill: Tensor? = nil) throws -> Tensor {
    let out = try Tensor(uninitialized: x.elementType, shape: shape)
    switch x.kind.byteSize {
    case 4: remapElements(UnsafeRawPointer(x.raw).assumingMemoryBound(to: UInt32.self), out.raw.assumingMemoryBound(to: UInt32.self),
                          shape, maps, strides, fill.map { $0.raw.load(as: UInt32.self) } ?? 0)
    case 8: remapElements(UnsafeRawPointer(x.raw).assumingMemoryBound(to: UInt64.self), out.raw.assumingMemoryBound(to: UInt64.self),
                          shape, maps, strides, fill.map { $0.raw.load(as: UInt64.self) } ?? 0)
    default: remapElements(UnsafeRawPointer(x.raw).assumingMemoryBound(to: UInt8.self), out.raw.assumingMemoryBound(to: UInt8.self),
                           shape, maps, strides, fill.map { $0.raw.load(as: UInt8.self) } ?? 0)
    }
    return out
}

private func remapElements<T>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, _ shape: [Int], _ maps: [[Int]],
                              _ strides: [Int], _ fill: T) {
    let total = shape.reduce(1, *)
    if total == 0 { return }
    guard let inner = shape.last else { dst[0] = src[0]; return }
    let rank = shape.count
    let innerMap = maps[rank - 1], innerStride = strides[rank - 1]
    var index = [Int](repeating: 0, count: rank - 1)
    var base = 0, valid = true
    func recompute() {
        base = 0
        valid = true
        for d in 0..<(rank - 1) {
            let s = maps[d][index[d]]
            if s < 0 { valid = false; return }
            base += s * strides[d]
        }
    }
    recompute()
    var o = 0
    let rows = total / inner
    innerMap.withUnsafeBufferPointer { m in
        for _ in 0..<rows {
            if valid {
                for k in 0..<inner {
                    let s = m[k]
                    dst[o + k] = s < 0 ? fill : src[base + s * innerStride]
                }
            } else {
                for k in 0..<inner { dst[o + k] = fill }
            }
            o += inner
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
            recompute()
        }
    }
}
