import LopperModel

/// Channels that must be pruned together: removing channel `i` of a group removes index `i`
/// (mapped through each member's offset) from every member at once.
///
/// A Conv's output channels form a group with its bias, the BatchNormalization after it, every
/// consumer's input channels, and whatever a residual Add, a Concat or a Split joins to them.
public struct PruneGroup: Codable, Sendable, Equatable {
    /// Position in the list of groups, in graph order of the first producer.
    public var id: Int
    /// A readable name: the first producing layer.
    public var name: String
    /// Number of units in the group: channels, or heads for an attention group.
    public var size: Int
    /// Channels per unit: 1 for channel groups, the head size for attention heads (Q, K, V and
    /// the output projection's inputs move a whole head at a time).
    public var channelsPerUnit: Int
    public var isHeads: Bool { channelsPerUnit > 1 }
    public var members: [Member]
    /// Why the group must not be pruned; `nil` when it can be.
    public var blockedBecause: String?

    public var isPrunable: Bool { blockedBecause == nil }

    public init(id: Int, name: String, size: Int, channelsPerUnit: Int = 1, members: [Member], blockedBecause: String? = nil) {
        self.id = id
        self.name = name
        self.size = size
        self.channelsPerUnit = channelsPerUnit
        self.members = members
        self.blockedBecause = blockedBecause
    }

    /// Layers whose outputs define the group's channels.
    public var producers: [String] {
        var seen = Set<String>()
        return members.filter { $0.role == .output }.map(\.node).filter { seen.insert($0).inserted }
    }
}

/// One tensor (or attribute) axis that takes part in a group.
public struct Member: Codable, Sendable, Equatable {
    public enum Role: String, Codable, Sendable {
        /// A producer's weight along its output channels (Conv filters, Gemm/MatMul columns).
        case output
        /// A consumer's weight along its input channels.
        case input
        /// A per-channel constant: bias, BatchNormalization statistics, a depthwise filter, a PRelu slope.
        case parameter
        /// An element of a `Reshape` target that counts channels (rewritten when pruning).
        case reshapeTarget
        /// One output's size in a `Split` along the channel axis.
        case splitSize
        /// A `Slice` start or end on the channel axis: it counts the channels before it and
        /// shrinks by each one removed (`axis` is the element of the starts or ends constant).
        case sliceBound
        /// The `group` attribute of a depthwise Conv, which equals its channel count.
        case convGroups
        /// The `hidden_size` attribute of an RNN, GRU or LSTM.
        case hiddenSize
        /// A recurrent layer's initial state (`initial_h`, `initial_c`) computed in the graph, not
        /// a constant (a state carried in from a model input): the pruned layer reads its kept
        /// units through a Gather, and the value itself keeps its width.
        case stateInput
        /// A model output holding a recurrent layer's final state (`Y_h`, `Y_c`) whose initial
        /// state is a `stateInput`: it keeps its width, with zero for each removed unit, so the
        /// model's interface does not change.
        case stateOutput
    }

    public var role: Role
    /// The node the member belongs to (display name).
    public var node: String
    /// The tensor or value name; for `splitSize`, the split sizes' constant (empty when an attribute).
    public var tensor: String
    /// Axis of `tensor`; for `reshapeTarget`, `splitSize` and `sliceBound`, the element index.
    public var axis: Int
    /// Where the member's range starts along `axis` (in elements of the tensor).
    public var tensorOffset: Int
    /// Where the range starts in the group's channel numbering.
    public var groupOffset: Int
    /// Number of group channels covered.
    public var length: Int
    /// Tensor elements per channel along `axis` (Flatten after pooling makes one channel a block).
    public var block: Int

    /// Group units this member covers.
    public var units: Range<Int> { groupOffset..<(groupOffset + length) }

    /// The positions along `axis` of group unit `unit` (one of `units`).
    public func positions(ofUnit unit: Int) -> Range<Int> {
        let first = tensorOffset + (unit - groupOffset) * block
        return first..<(first + block)
    }
}
