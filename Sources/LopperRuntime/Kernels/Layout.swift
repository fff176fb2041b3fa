import LopperModel

/// Operators that assemble, cut, index or repeat tensors.
enum LayoutKernels {
    static let all: [KernelVersion] = [
        KernelVersion("Concat") { setup in
            guard let axis = try setup.node.int("axis") else { throw ModelError("is required", field: "attribute 'axis'") }
            return Concat(axis: axis)
        },
        KernelVersion("Split") { setup in
            Split(axis: try setup.node.int("axis", default: 0), sizes: try setup.node.ints("split"), parts: setup.node.outputs.count)
        },
        KernelVersion("Split", since: 13) { setup in
            Split(axis: try setup.node.int("axis", default: 0), sizes: nil, parts: setup.node.outputs.count)
        },
        KernelVersion("Slice") { setup in
            Slice(legacy: (try setup.node.ints("starts") ?? [], try setup.node.ints("ends") ?? [], try setup.node.ints("axes")))
        },
        KernelVersion("Slice", since: 10) { _ in Slice(legacy: nil) },
        KernelVersion("Gather") { setup in Gather(axis: try setup.node.int("axis", default: 0)) },
        KernelVersion("Expand", since: 8) { _ in Expand() },
        KernelVersion("Tile", since: 6) { _ in Tile() },
        KernelVersion("Pad") { setup in
            let node = setup.node
            return Pad(mode: try node.string("mode", default: "constant"),
                       legacyPads: try node.ints(setup.opset < 2 ? "paddings" : "pads") ?? [],
                       legacyValue: try node.float("value", default: 0))
        },
        KernelVersion("Pad", since: 11) { setup in
            Pad(mode: try setup.node.string("mode", default: "constant"), legacyPads: nil, legacyValue: 0)
        },
    ]

    struct Concat: DestinationWriting {
        let axis: Int

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let parts = inputs.compactMap { $0 }
            guard let first = parts.first else { throw ModelError("needs at least one input") }
            let a = try normalizeAxis(axis, rank: first.rank)
            var shape = first.shape
            shape[a] = 0
            for part in parts {
                guard part.rank == first.rank, part.kind == first.kind,
                      part.shape.enumerated().allSatisfy({ $0.offset == a || $0.element == first.shape[$0.offset] }) else {
                    throw ModelError("cannot concatenate shapes \(parts.map(\.shape)) along axis \(a)")
                }
                shape[a] += part.shape[a]
            }
            let out = try context.output(first.elementType, shape: shape)
            let size = first.kind.byteSize
            let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *) * size
            let row = shape[a] * inner
            var offset = 0
            for part in parts {
                let block = part.shape[a] * inner
                // A part its producer already wrote in place (see `Plan.placeIntoConcats`).
                if outer == 1 && out.holds(part, at: offset / size) {
                    offset += block
                    continue
                }
                for o in 0..<outer {
                    (out.raw + o * row + offset).copyMemory(from: part.raw + o * block, byteCount: block)
                }
                offset += block
            }
            return [out]
        }
    }

    struct Split: Kernel {
        let axis: Int
        let sizes: [Int]?
        let parts: Int

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            let a = try normalizeAxis(axis, rank: x.rank)
            let length = x.shape[a]
            var sizes = self.sizes ?? inputs.optional(1)?.ints ?? []
            if sizes.isEmpty {
                // Equal parts; the last one is smaller when the length does not divide.
                let chunk = (length + parts - 1) / parts
                sizes = (0..<parts).map { Swift.max(0, Swift.min(chunk, length - $0 * chunk)) }
            }
            guard sizes.count == parts, sizes.reduce(0, +) == length, sizes.allSatisfy({ $0 >= 0 }) else {
                throw ModelError("split sizes \(sizes) do not cut axis \(a) of length \(length) into \(parts) outputs")
            }
            let size = x.kind.byteSize
            let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *) * size
            var offset = 0
            if outer == 1 {
                // Each part is one contiguous piece of the input: a view, no copy.
                return sizes.map { part in
                    var shape = x.shape
                    shape[a] = part
                    defer { offset += part * inner / size }
                    return x.view(from: offset, shape: shape)
                }
            }
            return try sizes.map { part in
                var shape = x.shape
                shape[a] = part
                let out = try Tensor(uninitialized: x.elementType, shape: shape)
                let block = part * inner
                for o in 0..<outer {
                    (out.raw + o * block).copyMemory(from: x.raw + o * length * inner + offset, byteCount: block)
                }
                offset += block
                return out
            }
        }
    }

    struct Slice: Kernel {
        let legacy: (starts: [Int], ends: [Int], axes: [Int]?)?

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            let starts = try legacy?.starts ?? inputs.required(1).int64s.map { Int(clamping: $0) }
            let ends = try legacy?.ends ?? inputs.required(2).int64s.map { Int(clamping: $0) }
            let axes = legacy.map { $0.axes } ?? inputs.optional(3)?.ints
            let steps = legacy == nil ? inputs.optional(4)?.int64s.map { Int(clamping: $0) } : nil
            let axisList = try (axes ?? Array(0..<starts.count)).map { try normalizeAxis($0, rank: x.rank) }
            guard starts.count == ends.count, axisList.count == starts.count, steps == nil || steps!.count == starts.count,
                  Set(axisList).count == axisList.count else {
                throw ModelError("starts \(starts), ends \(ends), axes \(axes ?? []) and steps \(steps ?? []) do not match")
            }
            var maps = x.shape.map { Array(0..<$0) }
            for (k, axis) in axisList.enumerated() {
                let dim = x.shape[axis]
                let step = steps?[k] ?? 1
                guard step != 0 else { throw ModelError("step on axis \(axis) is zero") }
                var start = starts[k] < 0 ? starts[k] + dim : starts[k]
                var end = ends[k] < 0 ? ends[k] + dim : ends[k]
                if step > 0 {
                    start = Swift.min(Swift.max(start, 0), dim)
                    end = Swift.min(Swift.max(end, 0), dim)
                    maps[axis] = start < end ? Array(stride(from: start, to: end, by: step)) : []
                } else {
                    start = Swift.min(Swift.max(start, 0), dim - 1)
                    end = Swift.min(Swift.max(end, -1), dim - 1)
                    maps[axis] = start > end ? Array(stride(from: start, to: end, by: step)) : []
                }
            }
            return [try remap(x, shape: maps.map(\.count), maps: maps, strides: strides(of: x.shape))]
        }
    }

    struct Gather: Kernel {
        let axis: Int

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0), indices = try inputs.required(1)
            guard indices.kind == .int64 else { throw ModelError("indices must be integers, found \(indices.elementType)") }
            let a = try normalizeAxis(axis, rank: x.rank)
            let dim = x.shape[a]
            let shape = Array(x.shape[..<a]) + indices.shape + Array(x.shape[(a + 1)...])
            let out = try Tensor(uninitialized: x.elementType, shape: shape)
            let size = x.kind.byteSize
            let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *) * size
            let n = indices.count
            for k in 0..<n {
                let index = indices.i[k]
                guard index >= -Int64(dim) && index < Int64(dim) else {
                    throw ModelError("index \(index) is out of range for axis \(a) of size \(dim)")
                }
            }
            for o in 0..<outer {
                for k in 0..<n {
                    let index = Int(indices.i[k]) < 0 ? Int(indices.i[k]) + dim : Int(indices.i[k])
                    (out.raw + (o * n + k) * inner).copyMemory(from: x.raw + (o * dim + index) * inner, byteCount: inner)
                }
            }
            return [out]
        }
    }

    struct Expand: Kernel {
        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0), target = try inputs.required(1).ints
            let shape = try Broadcast([x.shape, target]).shape
            try AllocationLimit.check(x.elementType, shape: shape)
            let padded = [Int](repeating: 1, count: shape.count - x.rank) + x.shape
            let source = strides(of: padded)
            let maps = shape.enumerated().map { d, n in padded[d] == 1 ? [Int](repeating: 0, count: n) : Array(0..<n) }
            return [try remap(x, shape: shape, maps: maps, strides: source)]
        }
    }

    struct Tile: Kernel {
        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0), repeats = try inputs.required(1).ints
            guard repeats.count == x.rank, repeats.allSatisfy({ $0 >= 0 }) else {
                throw ModelError("repeats \(repeats) do not fit input shape \(x.shape)")
            }
            let shape = try zip(x.shape, repeats).map { dim, times in
                let (size, overflow) = dim.multipliedReportingOverflow(by: times)
                guard !overflow else { throw ModelError("repeats \(repeats) of shape \(x.shape) overflow a 64-bit size") }
                return size
            }
            try AllocationLimit.check(x.elementType, shape: shape)
            let maps = zip(x.shape, shape).map { dim, n in (0..<n).map { $0 % dim } }
            return [try remap(x, shape: shape, maps: maps, strides: strides(of: x.shape))]
        }
    }

    struct Pad: Kernel {
        let mode: String
        let legacyPads: [Int]?
        let legacyValue: Float

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            let given = try legacyPads ?? inputs.required(1).ints
            var axes = Array(0..<x.rank)
            if let list = inputs.optional(3)?.ints { axes = try list.map { try normalizeAxis($0, rank: x.rank) } }
            guard given.count == 2 * axes.count else { throw ModelError("pads \(given) do not fit \(axes.count) axes") }
            var begin = [Int](repeating: 0, count: x.rank), end = begin
            for (k, axis) in axes.enumerated() {
                begin[axis] = given[k]
                end[axis] = given[k + axes.count]
            }
            var fill: Tensor
            if legacyPads != nil {
                fill = try Cast.convert(Tensor.scalar(legacyValue), to: x.elementType)
            } else if let value = inputs.optional(2), value.count > 0 {
                fill = try Cast.convert(value, to: x.elementType)
            } else {
                fill = try Cast.convert(Tensor.scalar(0), to: x.elementType)
            }
            let shape = try (0..<x.rank).map { d in
                let (grown, overflow) = x.shape[d].addingReportingOverflow(begin[d])
                let (n, overflow2) = grown.addingReportingOverflow(end[d])
                guard !overflow, !overflow2 else { throw ModelError("pads \(given) overflow a 64-bit size") }
                return n
            }
            if shape.allSatisfy({ $0 >= 0 }) { try AllocationLimit.check(x.elementType, shape: shape) }
            var maps: [[Int]] = []
            for d in 0..<x.rank {
                let dim = x.shape[d]
                let n = shape[d]
                guard n >= 0 else { throw ModelError("pads \(given) remove more than axis \(d) of size \(dim) holds") }
                guard dim > 0 || n == 0 || mode == "constant" else { throw ModelError("cannot pad an empty axis in \(mode) mode") }
                maps.append((0..<n).map { o in
                    let i = o - begin[d]
                    if i >= 0 && i < dim { return i }
                    switch mode {
                    case "edge": return Swift.min(Swift.max(i, 0), dim - 1)
                    case "reflect":
                        if dim == 1 { return 0 }
                        let period = 2 * (dim - 1)
                        var r = i % period
                        if r < 0 { r += period }
                        return r < dim ? r : period - r
                    case "wrap": return ((i % dim) + dim) % dim
                    default: return -1
                    }
                })
            }
            guard ["constant", "edge", "reflect", "wrap"].contains(mode) else { throw ModelError("'\(mode)' is not a padding mode") }
            return [try remap(x, shape: maps.map(\.count), maps: maps, strides: strides(of: x.shape), fill: fill)]
        }
    }
}
