import LopperModel
import LopperPruning

/// Where a job's graph starts to differ from the dense one. Every node before the first layer
/// the job touches computes exactly what the dense model computes, so its results are taken from
/// the dense run and only the suffix runs for the job.
struct PrefixPlan: Sendable {
    /// Values computed by the untouched prefix (outputs of its nodes).
    let prefixValues: Set<String>
    /// What the suffix reads from the prefix or the graph inputs: its feeds.
    let cut: [String]

    /// - Parameter touched: display names of the nodes whose tensors or attributes the job rewrites.
    init(graph: Graph, touched: Set<String>) {
        // `Constant` nodes are never part of the prefix: Paddle exports put all of them first, and
        // the job may rewrite their values.
        let computing = graph.nodes.filter { $0.opType != "Constant" || !$0.domain.isEmpty }
        let first = computing.firstIndex { touched.contains($0.displayName) } ?? computing.count
        let prefix = Set(computing[..<first].flatMap(\.outputs))
        var cut: [String] = []
        var seen = Set<String>()
        let available = prefix.union(graph.feedInputs.map(\.name))
        for node in computing[first...] {
            // A control-flow node's bodies read enclosing values beside its declared inputs.
            for input in node.inputs + node.implicitInputs where available.contains(input) && seen.insert(input).inserted {
                cut.append(input)
            }
        }
        for output in graph.outputs.map(\.name) where available.contains(output) && seen.insert(output).inserted {
            cut.append(output)
        }
        prefixValues = prefix
        self.cut = cut
    }

    /// The nodes a job changes: every node named by a member of the group.
    static func touchedNodes(_ group: PruneGroup, granularity: Granularity) -> Set<String> {
        let roles: Set<Member.Role> = granularity.zeroesWeights ? [.output] : Set(group.members.map(\.role))
        return Set(group.members.filter { roles.contains($0.role) }.map(\.node))
    }

    /// `model` cut down to the nodes after the prefix, reading the cut values as graph inputs.
    func suffix(of model: Model, types: ShapeTable) throws -> Model {
        var suffix = model
        suffix.graph.inputs = cut.map { ValueInfo(name: $0, type: TensorType(elementType: types[$0]?.elementType, shape: nil)) }
        try suffix.graph.setNodes(model.graph.nodes.filter { node in
            (node.opType == "Constant" && node.domain.isEmpty) || !node.outputs.allSatisfy(prefixValues.contains)
        })
        return suffix
    }
}
