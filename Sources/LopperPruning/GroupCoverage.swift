import Foundation
import LopperModel

/// How much of a model pruning can reach: prunable channels over the channels that do not
/// define a model output, and the refused groups counted by reason.
///
/// A group defines a model output when one of its producing layers feeds a graph output through
/// no other layer of more than one channel (a classifier's logits, a transformer's residual
/// stream, a detector's box and class convs with the one-channel DFL conv after them): those
/// channels are the model's answer, so they are left out of the denominator.
public struct GroupCoverage: Sendable, Equatable {
    /// Channels (heads count their channels) of the prunable groups.
    public var prunableChannels: Int
    /// Channels of every group that does not define a model output.
    public var channels: Int
    /// Ids of the groups that define a model output.
    public var outputGroups: [Int]
    /// Refused groups that do not define an output, by reason, most frequent first (ties by text).
    public var refused: [Refusal]

    public struct Refusal: Sendable, Equatable {
        public var reason: String
        public var groups: Int
    }

    public var fraction: Double { channels > 0 ? Double(prunableChannels) / Double(channels) : 1 }

    public init(model: Model, groups: [PruneGroup]) {
        let graph = model.graph
        let layers = Set(groups.filter { $0.size * $0.channelsPerUnit > 1 }.flatMap(\.producers))
        // Values from which a graph output is reached without passing such a layer, found
        // walking the nodes backwards from the outputs.
        var reaches = Set(graph.outputs.map(\.name))
        for node in graph.nodes.reversed() where !layers.contains(node.displayName) {
            if node.outputs.contains(where: reaches.contains) { reaches.formUnion(node.inputs.filter { !$0.isEmpty }) }
        }
        let layerOutputs = Dictionary(graph.nodes.map { ($0.displayName, $0.outputs) }, uniquingKeysWith: { first, _ in first })
        let outputGroups = groups.filter { group in
            !group.isPrunable && group.producers.contains { (layerOutputs[$0] ?? []).contains(where: reaches.contains) }
        }.map(\.id)
        self.outputGroups = outputGroups
        let counted = groups.filter { !outputGroups.contains($0.id) }
        let width = { (group: PruneGroup) in group.size * group.channelsPerUnit }
        prunableChannels = counted.filter(\.isPrunable).reduce(0) { $0 + width($1) }
        channels = counted.reduce(0) { $0 + width($1) }
        var reasons: [String: Int] = [:]
        for group in counted { if let reason = group.blockedBecause { reasons[Self.kind(of: reason), default: 0] += 1 } }
        refused = reasons.map { Refusal(reason: $0.key, groups: $0.value) }.sorted { $0.groups > $1.groups || ($0.groups == $1.groups && $0.reason < $1.reason) }
    }

    /// A reason without the names in it (`'add_3' (Add) joins the channels with 'x', …` →
    /// `(Add) joins the channels with '…', …`), so equal refusals at different places count together.
    static func kind(of reason: String) -> String {
        reason.replacingOccurrences(of: #"'[^']*' \("#, with: "(", options: .regularExpression)
            .replacingOccurrences(of: #"'[^']*'"#, with: "'…'", options: .regularExpression)
    }
}
