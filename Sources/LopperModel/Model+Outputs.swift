extension Model {
    /// The model computing only the named outputs: other outputs are dropped with every node
    /// that no kept output depends on (for example a classifier's label branch, when only its
    /// probabilities are scored).
    public func restricted(toOutputs names: [String]) throws -> Model {
        for name in names where !graph.outputs.contains(where: { $0.name == name }) {
            throw ModelError("has no output '\(name)' (outputs: \(graph.outputs.map(\.name).joined(separator: ", ")))", file: path)
        }
        var needed = Set(names)
        var kept: [Node] = []
        for node in graph.nodes.reversed() where node.outputs.contains(where: needed.contains) {
            kept.append(node)
            needed.formUnion(node.inputs.filter { !$0.isEmpty })
            needed.formUnion(node.implicitInputs)
        }
        var result = self
        result.graph.outputs = graph.outputs.filter { names.contains($0.name) }
        try result.graph.setNodes(kept.reversed())
        return result
    }
}
