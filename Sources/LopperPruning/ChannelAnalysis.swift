import LopperModel

/// What dependency analysis found: the prune groups, and for every activation it traced, which
/// group channels make up that activation's channel axis. The cost model uses the latter to
/// shrink every value a plan touches without running surgery.
public struct ChannelAnalysis: Sendable {
    public var groups: [PruneGroup]
    /// Activation name → its channel axis and the runs of group channels along it.
    public var valueChannels: [String: ValueChannels]
}

/// A value's channel axis as runs of group channels (a Concat output has one run per input).
public struct ValueChannels: Sendable, Equatable {
    public struct Segment: Sendable, Equatable {
        /// The group these channels belong to; `nil` for channels no group owns (never pruned).
        public var group: Int?
        /// First unit of the run in the group's numbering.
        public var start: Int
        /// Units in the run.
        public var length: Int
        /// Elements of the axis per unit (the head size for attention heads).
        public var block: Int

        public init(group: Int?, start: Int, length: Int, block: Int) {
            self.group = group
            self.start = start
            self.length = length
            self.block = block
        }
    }

    public var axis: Int
    public var segments: [Segment]

    /// Elements along the axis when each group keeps what `kept(group, start, length)` says of a run.
    public func width(kept: (Int, Int, Int) -> Int) -> Int {
        segments.reduce(0) { total, segment in
            let units = segment.group.map { kept($0, segment.start, segment.length) } ?? segment.length
            return total + units * segment.block
        }
    }
}
