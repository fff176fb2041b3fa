import LopperModel

/// Rules for operators that move the channel axis or join and cut it.
extension ChannelRules {
    /// Along the channel axis the inputs' layouts are laid end to end; along another axis the
    /// inputs must carry the same channels.
    static func concat(_ b: inout GroupBuilder, _ node: Node) throws {
        let inputs = node.inputs.filter { !$0.isEmpty }
        guard let output = node.outputs.first, let rank = b.shape(output)?.count,
              inputs.contains(where: { b.layouts[$0] != nil }) else { return }
        let axis = try node.int("axis", default: 0) < 0 ? try node.int("axis", default: 0) + rank : try node.int("axis", default: 0)
        let carried = inputs.compactMap { b.layouts[$0] }
        if carried.allSatisfy({ $0.axis == axis }) {
            var segments: [Segment] = []
            for input in inputs {
                if let layout = b.layouts[input] {
                    segments += layout.segments
                } else if let extent = b.shape(input)?[axis].value,
                          let opaque = b.opaque(width: extent, because: "\(node.label) also concatenates '\(input)', which no prunable layer produces") {
                    segments += opaque.segments
                }
            }
            b.layouts[output] = ChannelLayout(axis: axis, segments: segments)
            // The opaque pieces block only themselves: their channels are simply kept.
            return
        }
        if let first = carried.first, carried.allSatisfy({ $0.axis == first.axis }), carried.count == inputs.count {
            for other in carried.dropFirst() { b.unite(first, other, at: node) }
            b.layouts[output] = first
            return
        }
        for layout in carried { b.block(layout, because: "\(node.label) concatenates channels on different axes") }
    }

    /// Along the channel axis each output gets its range of the input's channels, and its size
    /// becomes a member so pruning can rewrite the split.
    static func split(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let input = node.input(0), let layout = b.layouts[input], let shape = b.shape(input) else { return }
        let axisValue = try node.int("axis", default: 0)
        let axis = axisValue < 0 ? axisValue + shape.count : axisValue
        guard axis == layout.axis else {
            for output in node.outputs where !output.isEmpty { b.layouts[output] = layout }
            return
        }
        let sizes = node.outputs.map { b.shape($0)?[axis].value }
        guard sizes.allSatisfy({ $0 != nil }) else {
            b.block(layout, because: "\(node.label) splits the channels into parts of unknown size")
            return
        }
        // Where the sizes live: the `split` attribute (opset < 13), a constant input, or nowhere (equal parts).
        // A constant shared with other Splits (exporters store equal sizes once) is copied when rewritten.
        let sizesTensor = node.input(1) ?? ""
        if !sizesTensor.isEmpty && !b.isConstant(sizesTensor) {
            b.block(layout, because: "\(node.label) splits by sizes that cannot be rewritten")
            return
        }
        var offset = 0
        for (index, output) in node.outputs.enumerated() {
            let size = sizes[index]!
            guard let part = layout.slice(from: offset, count: size) else {
                b.block(layout, because: "\(node.label) cuts through a block of channel elements")
                return
            }
            var position = 0
            for segment in part.segments {
                b.append(Member(role: .splitSize, node: node.displayName, tensor: sizesTensor, axis: index,
                                tensorOffset: position, groupOffset: segment.start, length: segment.length, block: segment.block),
                         to: segment.set)
                position += segment.length * segment.block
            }
            if !output.isEmpty { b.layouts[output] = part }
            offset += size
        }
    }

    /// A Slice that leaves the channel axis alone passes the channels through. One that cuts a
    /// contiguous range of channels (step 1, constant starts and ends, opset 10 on) gives the
    /// output that range, like one output of a Split; its start and (unless it runs to the end)
    /// its end count the channels before them, so they are members and are rewritten.
    static func slice(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let input = node.input(0), let layout = b.layouts[input], let shape = b.shape(input),
              let output = node.outputs.first, let out = b.shape(output), out.count == shape.count else {
            try keepsAxisUnlessMixed(&b, node)
            return
        }
        guard out[layout.axis] != shape[layout.axis] else {
            b.layouts[output] = layout
            return
        }
        let facts = (1...4).map { node.input($0).flatMap { b.shapes.facts[$0]?.intValues } }
        guard b.opset >= 10, let starts = facts[0], let ends = facts[1], let startsTensor = node.input(1), let endsTensor = node.input(2),
              b.isConstant(startsTensor), b.isConstant(endsTensor),
              let k = (facts[2] ?? Array(0..<starts.count)).firstIndex(where: { ($0 < 0 ? $0 + shape.count : $0) == layout.axis }),
              (facts[3]?[k] ?? 1) == 1, starts[k] >= 0, ends[k] >= starts[k] else {
            b.block(layout, because: "\(node.label) slices the channel axis by bounds that cannot be rewritten")
            return
        }
        let width = layout.width, end = min(ends[k], width)
        guard let part = layout.slice(from: starts[k], count: end - starts[k]), let before = layout.slice(from: 0, count: starts[k]),
              let upToEnd = layout.slice(from: 0, count: end) else {
            b.block(layout, because: "\(node.label) cuts through a block of channel elements")
            return
        }
        for (bound, tensor) in [(before, startsTensor)] + (ends[k] < width ? [(upToEnd, endsTensor)] : []) {
            for segment in bound.segments {
                b.append(Member(role: .sliceBound, node: node.displayName, tensor: tensor, axis: k, tensorOffset: 0,
                                groupOffset: segment.start, length: segment.length, block: segment.block), to: segment.set)
            }
        }
        b.layouts[output] = part
    }

    static func transpose(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let input = node.input(0), var layout = b.layouts[input], let rank = b.shape(input)?.count else { return }
        let perm = try node.ints("perm") ?? Array((0..<rank).reversed())
        guard let moved = perm.firstIndex(of: layout.axis) else {
            b.block(layout, because: "\(node.label) has an invalid permutation")
            return
        }
        layout.axis = moved
        b.layouts[node.outputs[0]] = layout
    }

    static func squeezeOrUnsqueeze(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let input = node.input(0), var layout = b.layouts[input], let i = b.shape(input),
              let o = node.outputs.first.flatMap(b.shape) else {
            if let input = node.input(0) { b.block(b.layouts[input], because: "\(node.label) has unknown shapes") }
            return
        }
        // Squeeze removes and Unsqueeze inserts size-1 axes: the channel axis keeps its extent,
        // and its new position is the number of non-1 axes before it.
        let one = Dim.value(1)
        let before = i[..<layout.axis].filter { $0 != one }.count
        var seen = 0
        guard i[layout.axis].value != nil, let axis = o.indices.first(where: { index in
            if o[index] != one || i[layout.axis] == one { seen += 1 }
            return seen == before + 1 && o[index] == i[layout.axis]
        }) else {
            b.block(layout, because: "\(node.label) removes the channel axis")
            return
        }
        layout.axis = axis
        b.layouts[node.outputs[0]] = layout
    }

    /// Flatten from an axis at or before the channels: each channel becomes a block of the
    /// elements after it (`[N, C, H, W]` → `[N, C·H·W]`).
    static func flatten(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let input = node.input(0), let layout = b.layouts[input], let shape = b.shape(input) else { return }
        let axisValue = try node.int("axis", default: 1)
        let axis = axisValue < 0 ? axisValue + shape.count : axisValue
        let after = shape[(layout.axis + 1)...].compactMap(\.value)
        guard axis <= layout.axis, shape[axis..<layout.axis].allSatisfy({ $0 == .value(1) }),
              after.count == shape.count - layout.axis - 1 else {
            b.block(layout, because: "\(node.label) flattens the channels together with other axes")
            return
        }
        let inner = after.reduce(1, *)
        b.layouts[node.outputs[0]] = scaled(layout, axis: 1, by: inner)
    }

    /// Reshape that keeps the channel axis whole and contiguous, possibly merging the axes after
    /// it into each channel's block. A target size that counts channels must be a constant we can
    /// rewrite (or -1/0, which adapt by themselves).
    static func reshape(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let input = node.input(0), var layout = b.layouts[input] else { return }
        guard let output = node.outputs.first, let s = b.shape(input), let t = b.shape(output) else {
            b.block(layout, because: "\(node.label) has unknown shapes")
            return
        }
        var axis = reshapedChannelAxis(from: s, to: t, channelAxis: layout.axis)
        if axis == nil, let heads = splitChannelAxis(from: s, to: t, channelAxis: layout.axis) {
            // [.., H·d, ..] → [.., H, d, ..]: the channels become H heads of d; from here on the
            // group's unit is a whole head.
            guard layout.segments.count == 1, let segment = layout.segments.first, segment.start == 0, segment.block == 1,
                  b.regroup(segment.set, by: heads.size) else {
                b.block(layout, because: "\(node.label) splits channels into heads, but they are joined to other channels")
                return
            }
            layout = b.layouts[input]!
            axis = heads.axis
        }
        guard let axis else {
            b.block(layout, because: "\(node.label) reshapes the channel axis")
            return
        }
        // Elements per unit scale by the ratio of the axis sizes (up when axes merge into the
        // channel axis, down when it is split into heads).
        let (newSize, oldSize) = (t[axis].value!, s[layout.axis].value!)
        guard layout.segments.allSatisfy({ ($0.block * newSize) % oldSize == 0 }) else {
            b.block(layout, because: "\(node.label) cuts through a block of channel elements")
            return
        }
        let resized = ChannelLayout(axis: axis, segments: layout.segments.map {
            Segment(set: $0.set, start: $0.start, length: $0.length, block: $0.block * newSize / oldSize)
        })
        let requested = node.input(1).flatMap { b.shapes.facts[$0]?.intValues }
        let entry = requested.flatMap { axis < $0.count ? $0[axis] : nil }
        if entry != -1 && !(entry == 0 && axis == layout.axis && newSize == oldSize) {
            guard let (reader, shapeTensor, element) = node.input(1).flatMap({ rewritableElement(b, of: $0, at: axis, readBy: node) }) else {
                b.block(layout, because: "\(node.label) has a computed target shape that counts the channels")
                return
            }
            var position = 0
            for segment in resized.segments {
                b.append(Member(role: .reshapeTarget, node: reader.displayName, tensor: shapeTensor, axis: element,
                                tensorOffset: position, groupOffset: segment.start, length: segment.length,
                                block: segment.block), to: segment.set)
                position += segment.length * segment.block
            }
        }
        b.layouts[output] = resized
    }

    /// The node reading the constant that holds entry `index` of a Reshape target, the constant
    /// and the entry's element in it: the target itself when it is a constant, or, as PyTorch
    /// exports compute it (`Concat(Unsqueeze(Gather(Shape(x))), …, [12], [32])`), the constant
    /// input of the target's Concat that holds the entry (that Concat must feed only this
    /// Reshape). A constant shared with other readers is copied when rewritten.
    static func rewritableElement(_ b: GroupBuilder, of target: String, at index: Int, readBy reshape: Node)
        -> (reader: Node, tensor: String, element: Int)? {
        if b.isConstant(target) { return (reshape, target, index) }
        guard b.readers(target) == 1, let concat = b.graph.producer(of: target), concat.opType == "Concat", concat.domain.isEmpty else { return nil }
        var offset = 0
        for input in concat.inputs {
            guard let shape = b.concreteShape(input), shape.count == 1 else { return nil }
            if index < offset + shape[0] { return b.isConstant(input) ? (concat, input, index - offset) : nil }
            offset += shape[0]
        }
        return nil
    }

    /// Where the channel axis lands when `s` is reshaped to `t`, if its channels stay whole and
    /// contiguous (each becoming a block of the axes after it). Leading axes must match exactly,
    /// symbolically or by element count, so the batch and sequence axes may stay symbolic.
    static func reshapedChannelAxis(from s: [Dim], to t: [Dim], channelAxis a: Int) -> Int? {
        guard let channels = s[a].value else { return nil }
        let inner = s[(a + 1)...].compactMap(\.value)
        guard inner.count == s.count - a - 1 else { return nil }
        let innerCount = inner.reduce(1, *)
        for b in t.indices {
            let prefixMatches = Array(t[..<b]) == Array(s[..<a])
                || (s[..<a].allSatisfy { $0.value != nil } && t[..<b].allSatisfy { $0.value != nil }
                    && s[..<a].reduce(1) { $0 * $1.value! } == t[..<b].reduce(1) { $0 * $1.value! })
            guard prefixMatches, let size = t[b].value else { continue }
            let outer = t[(b + 1)...].compactMap(\.value)
            guard outer.count == t.count - b - 1 else { continue }
            let outerCount = outer.reduce(1, *)
            if outerCount > 0, innerCount % outerCount == 0, size == channels * (innerCount / outerCount) { return b }
        }
        return nil
    }

    /// Where the heads axis lands when the channel axis of `s` is split in two in `t`
    /// (`[N, S, 64] → [N, S, 4, 16]`), and the size of one head.
    static func splitChannelAxis(from s: [Dim], to t: [Dim], channelAxis a: Int) -> (axis: Int, size: Int)? {
        guard let channels = s[a].value, a < t.count - 1, Array(t[..<a]) == Array(s[..<a]),
              let heads = t[a].value, let size = t[a + 1].value, heads * size == channels, heads > 1,
              Array(t[(a + 2)...]) == Array(s[(a + 1)...]) else { return nil }
        return (a, size)
    }

    private static func scaled(_ layout: ChannelLayout, axis: Int, by factor: Int) -> ChannelLayout {
        ChannelLayout(axis: axis, segments: layout.segments.map {
            Segment(set: $0.set, start: $0.start, length: $0.length, block: $0.block * factor)
        })
    }
}
