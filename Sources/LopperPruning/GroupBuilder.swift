import LopperModel

/// How a value's channel axis is made of group channels: a list of segments, each a run of one
/// channel set's numbering (a Concat output has one segment per input).
struct ChannelLayout {
    var axis: Int
    var segments: [Segment]

    /// Elements along `axis`.
    var width: Int { segments.reduce(0) { $0 + $1.length * $1.block } }

    /// The sub-layout covering elements `[from, from + count)` of the axis, cutting segments.
    func slice(from: Int, count: Int) -> ChannelLayout? {
        var result: [Segment] = []
        var position = 0
        for segment in segments {
            let extent = segment.length * segment.block
            let lo = max(from, position), hi = min(from + count, position + extent)
            if lo < hi {
                guard (lo - position) % segment.block == 0, (hi - position) % segment.block == 0 else { return nil }
                result.append(Segment(set: segment.set, start: segment.start + (lo - position) / segment.block,
                                      length: (hi - lo) / segment.block, block: segment.block))
            }
            position += extent
        }
        return ChannelLayout(axis: axis, segments: result)
    }
}

/// A run of `length` channels of one set, starting at channel `start`, each `block` elements wide.
struct Segment {
    var set: Int
    var start: Int
    var length: Int
    var block: Int
}

/// Walks the graph in topological order, giving each activation's channel axis a layout and
/// recording which weights, biases and constants follow those channels. Channel rules per
/// operator live in `ChannelRules`.
struct GroupBuilder {
    let graph: Graph
    let shapes: ShapeTable
    /// The default-domain opset, for rules whose meaning changed between versions.
    let opset: Int
    var sets = ChannelUnion()
    var layouts: [String: ChannelLayout] = [:]
    private(set) var members: [(set: Int, member: Member)] = []
    /// For each set that a layer produced: the producing node's position (orders and names groups).
    private(set) var producedBy: [Int: Node] = [:]

    init(graph: Graph, shapes: ShapeTable, opset: Int) {
        self.graph = graph
        self.shapes = shapes
        self.opset = opset
    }

    // MARK: Facts about values

    /// The value's shape; symbolic sizes (batch, image size) stay symbolic.
    func shape(_ value: String) -> [Dim]? { shapes[value]?.shape }

    /// The value's shape when every size is known.
    func concreteShape(_ value: String) -> [Int]? { shapes[value]?.concreteShape }

    func isConstant(_ value: String) -> Bool {
        graph.initializers[value] != nil || graph.producer(of: value).map { $0.opType == "Constant" } == true
    }

    /// Number of nodes reading a value (a weight shared by two layers cannot be cut for one).
    func readers(_ value: String) -> Int { graph.consumers[value]?.count ?? 0 }

    // MARK: Recording

    /// A new channel set of `width` channels whose numbering is defined by `node`'s weight.
    mutating func produce(_ node: Node, width: Int, weight: String, axis: Int) -> Int {
        let set = sets.make(size: width)
        producedBy[set] = node
        record(.output, node, weight, axis: axis, layout: ChannelLayout(axis: axis, segments: [Segment(set: set, start: 0, length: width, block: 1)]))
        if readers(weight) > 1 { sets.block(set, because: "weight '\(weight)' is shared by several layers") }
        return set
    }

    /// A set that must never be pruned: channels from a graph input, an unsupported op …
    mutating func opaque(width: Int, because reason: String) -> ChannelLayout? {
        guard width > 0 else { return nil }
        let set = sets.make(size: width)
        sets.block(set, because: reason)
        return ChannelLayout(axis: 0, segments: [Segment(set: set, start: 0, length: width, block: 1)])
    }

    /// Members of `tensor` along `axis`, one per segment of `layout`, laid out in the same order.
    mutating func record(_ role: Member.Role, _ node: Node, _ tensor: String, axis: Int, layout: ChannelLayout) {
        var position = 0
        for segment in layout.segments {
            members.append((segment.set, Member(role: role, node: node.displayName, tensor: tensor, axis: axis,
                                                tensorOffset: position, groupOffset: segment.start,
                                                length: segment.length, block: segment.block)))
            position += segment.length * segment.block
        }
        if role != .output, !tensor.isEmpty, isConstant(tensor), readers(tensor) > 1 {
            block(layout, because: "'\(tensor)' is shared by several layers")
        }
    }

    /// Sets renumbered in units of several channels (attention heads), with the channels per unit.
    private(set) var channelsPerUnit: [Int: Int] = [:]

    /// Renumbers a set so one unit is `factor` consecutive channels — what a Reshape that splits
    /// the channel axis into heads requires. Every member and layout of the set is rewritten;
    /// fails (returns false) when the set was already joined to others or does not divide evenly.
    mutating func regroup(_ set: Int, by factor: Int) -> Bool {
        guard sets.isAlone(set), sets.size[set] % factor == 0, channelsPerUnit[set] == nil,
              members.allSatisfy({ $0.set != set || ($0.member.groupOffset % factor == 0 && $0.member.length % factor == 0) }),
              layouts.values.allSatisfy({ $0.segments.allSatisfy { $0.set != set || ($0.start % factor == 0 && $0.length % factor == 0) } })
        else { return false }
        sets.regroup(set, by: factor)
        channelsPerUnit[set] = factor
        for index in members.indices where members[index].set == set {
            members[index].member.groupOffset /= factor
            members[index].member.length /= factor
            members[index].member.block *= factor
        }
        for (value, layout) in layouts where layout.segments.contains(where: { $0.set == set }) {
            layouts[value]!.segments = layout.segments.map { segment in
                segment.set != set ? segment
                    : Segment(set: set, start: segment.start / factor, length: segment.length / factor, block: segment.block * factor)
            }
        }
        return true
    }

    mutating func append(_ member: Member, to set: Int) {
        members.append((set, member))
    }

    mutating func block(_ layout: ChannelLayout?, because reason: String) {
        for segment in layout?.segments ?? [] { sets.block(segment.set, because: reason) }
    }

    /// Blocks every channel that reaches `node` through any input, or that its bodies (If, Loop,
    /// Scan) read from the enclosing graph.
    mutating func blockInputs(of node: Node, because reason: String) {
        for input in node.inputs + node.implicitInputs where !input.isEmpty { block(layouts[input], because: reason) }
    }

    /// Makes two layouts of the same width name the same channels, piece by piece.
    mutating func unite(_ a: ChannelLayout, _ b: ChannelLayout, at node: Node) {
        guard a.width == b.width else {
            block(a, because: "\(node.label) joins \(a.width) channels with \(b.width)")
            block(b, because: "\(node.label) joins \(a.width) channels with \(b.width)")
            return
        }
        var i = 0, j = 0, usedA = 0, usedB = 0
        while i < a.segments.count && j < b.segments.count {
            let x = a.segments[i], y = b.segments[j]
            guard x.block == y.block else {
                block(a, because: "\(node.label) joins channels of different block sizes")
                block(b, because: "\(node.label) joins channels of different block sizes")
                return
            }
            let run = min(x.length - usedA, y.length - usedB)
            // Channel (x.start + usedA + k) of x.set is channel (y.start + usedB + k) of y.set.
            sets.unite(x.set, y.set, offset: (y.start + usedB) - (x.start + usedA))
            usedA += run; usedB += run
            if usedA == x.length { i += 1; usedA = 0 }
            if usedB == y.length { j += 1; usedB = 0 }
        }
    }

    // MARK: Result

    /// The groups: one per set of channels that some layer produced, with members mapped into
    /// the group's numbering. Sets that only exist to block (graph inputs …) are not listed.
    func groups() -> [PruneGroup] { analysis().groups }

    /// The groups, and for each traced activation which groups' channels its channel axis holds.
    func analysis() -> ChannelAnalysis {
        var byRoot: [Int: (node: Node, members: [Member])] = [:]
        for (set, node) in producedBy {
            let root = sets.find(set).root
            if let existing = byRoot[root], existing.node.index <= node.index { continue }
            byRoot[root] = (node, byRoot[root]?.members ?? [])
        }
        for (set, member) in members {
            let (root, offset) = sets.find(set)
            guard byRoot[root] != nil else { continue }
            var mapped = member
            mapped.groupOffset += offset
            byRoot[root]!.members.append(mapped)
        }
        let ordered = byRoot.sorted { $0.value.node.index < $1.value.node.index }
        let groups = ordered.enumerated().map { id, entry in
            PruneGroup(id: id, name: entry.value.node.displayName, size: sets.size[entry.key],
                       channelsPerUnit: channelsPerUnit[entry.key] ?? 1,
                       members: entry.value.members, blockedBecause: sets.blockReason(entry.key))
        }
        let idOfRoot = Dictionary(uniqueKeysWithValues: ordered.enumerated().map { ($1.key, $0) })
        var channels: [String: ValueChannels] = [:]
        for (value, layout) in layouts {
            channels[value] = ValueChannels(axis: layout.axis, segments: layout.segments.map { segment in
                let (root, offset) = sets.find(segment.set)
                return ValueChannels.Segment(group: idOfRoot[root], start: segment.start + offset,
                                             length: segment.length, block: segment.block)
            })
        }
        return ChannelAnalysis(groups: groups, valueChannels: channels)
    }
}
