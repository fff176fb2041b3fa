import LopperModel
import LopperRuntime

/// How a removed block is replaced: by its skip value alone, or by the skip plus the branch's
/// mean output (`BlockSurgery.Replacement.mean`). The criterion of a sweep's layer jobs.
public enum BlockRemoval: String, CaseIterable, Codable, Sendable {
    case skip
    case mean
}

/// Removes residual blocks from a model: each block's output is replaced by its skip value (or,
/// with a mean, by the skip plus the branch's mean output per channel, which keeps the statistics
/// the next layers expect), and every node only the removed branches used is deleted.
public enum BlockSurgery {
    /// What replaces a removed branch.
    public enum Replacement: Sendable, Equatable {
        /// Nothing: the block's output is its skip value.
        case skip
        /// The branch's mean output, broadcast along every axis but the channel axis.
        case mean(TensorData)
    }

    /// Removes `blocks` (found on `model` by `ResidualBlocks.find`) from `model`.
    public static func remove(_ model: Model, blocks: [(block: ResidualBlock, replacement: Replacement)]) throws -> Model {
        var result = model
        let graph = model.graph
        let index = Dictionary(graph.nodes.enumerated().map { ($0.element.displayName, $0.offset) }, uniquingKeysWith: { first, _ in first })
        var deleted = Set<Int>()
        var renamed: [String: String] = [:]
        var added: [Node] = []
        for (block, replacement) in blocks {
            guard block.isRemovable else {
                throw ModelError("block '\(block.name)' cannot be removed: \(block.refusal ?? "")")
            }
            guard let join = index[block.join], graph.nodes[join].outputs.first == block.output else {
                throw ModelError("block '\(block.name)' is not a block of this model")
            }
            for name in block.nodes {
                guard let position = index[name] else { throw ModelError("block '\(block.name)' names node '\(name)', which this model lacks") }
                deleted.insert(position)
            }
            switch replacement {
            case .skip:
                deleted.insert(join)
                renamed[block.output] = block.skip
            case .mean(let mean):
                // The join stays, now adding a constant: skip + mean.
                let constant = result.graph.addInitializer(mean, nameBase: block.branchOutput + "_mean")
                try result.graph.modifyNode(at: join) { node in
                    node.proto.input = node.inputs.map { $0 == block.branchOutput ? constant : $0 }
                }
            }
        }
        func resolve(_ value: String) -> String {
            var current = value
            while let next = renamed[current] { current = next }
            return current
        }
        let graphOutputs = Set(graph.outputs.map(\.name))
        for (old, _) in renamed where graphOutputs.contains(old) {
            // A model output keeps its name: an Identity from the value it now is.
            var identity = Node(proto: .init(), index: graph.nodes.count + added.count)
            identity.proto.opType = "Identity"
            identity.proto.name = old + "_skip"
            identity.proto.input = [resolve(old)]
            identity.proto.output = [old]
            added.append(identity)
        }
        var kept: [Node] = []
        for (position, node) in result.graph.nodes.enumerated() where !deleted.contains(position) {
            var node = node
            node.proto.input = node.inputs.map { $0.isEmpty ? $0 : resolve($0) }
            kept.append(node)
        }
        try result.graph.setNodes(pruneDead(kept + added, graph: result.graph, wasLive: live(graph.nodes, outputs: graphOutputs)))
        // Weights only the removed nodes read go too.
        let readBefore = Set(graph.nodes.flatMap { $0.inputs + $0.implicitInputs })
        let readNow = Set(result.graph.nodes.flatMap { $0.inputs + $0.implicitInputs }).union(graphOutputs)
        for name in result.graph.initializers.keys where readBefore.contains(name) && !readNow.contains(name) {
            result.graph.initializers.removeValue(forKey: name)
            result.graph.inputs.removeAll { $0.name == name }
        }
        return result
    }

    /// The mean of each block's branch output per channel over the calibration data, shaped to
    /// broadcast against it: along axis 1 when the branch has convolutions ([C, 1, …]), else along
    /// the last axis ([C]).
    public static func branchMeans(of blocks: [ResidualBlock], in model: Model, calibration: Calibration) throws -> [Int: TensorData] {
        let types = try ShapeInference.run(model)
        let convolutional = Set(["Conv", "ConvTranspose"])
        var axes: [Int: (value: String, axis: Int, rank: Int)] = [:]
        for block in blocks {
            guard let rank = types[block.branchOutput]?.shape?.count, rank >= 2 else { continue }
            let hasConv = block.nodes.contains { name in
                model.graph.nodes.first { $0.displayName == name }.map { convolutional.contains($0.opType) } ?? false
            }
            axes[block.id] = (block.branchOutput, hasConv ? 1 : -1, rank)
        }
        let values = Dictionary(axes.values.map { ($0.value, $0.axis) }, uniquingKeysWith: { first, _ in first })
        let statistics = try ActivationStatistics.collect(model, values: values, calibration: calibration, threads: 1)
        var means: [Int: TensorData] = [:]
        for (id, entry) in axes {
            guard let mean = statistics.means(entry.value) else { continue }
            let shape = entry.axis == 1 ? [mean.count] + Array(repeating: 1, count: entry.rank - 2) : [mean.count]
            means[id] = TensorData(floats: mean.map(Float.init), shape: shape)
        }
        return means
    }

    /// The nodes with a path to a model output (reading subgraphs' outer-scope values too).
    static func live(_ nodes: [Node], outputs: Set<String>) -> Set<String> {
        var needed = outputs
        var liveNodes = Set<String>()
        for node in nodes.reversed() where node.outputs.contains(where: needed.contains) {
            liveNodes.formUnion(node.outputs)
            needed.formUnion(node.inputs + node.implicitInputs)
        }
        return liveNodes
    }

    /// Drops the nodes the removal left without a path to an output (nodes that were dead before
    /// stay as they were) and the initializers nothing reads any more.
    static func pruneDead(_ nodes: [Node], graph: Graph, wasLive: Set<String>) throws -> [Node] {
        var ordered = graph
        try ordered.setNodes(nodes)
        let nowLive = live(ordered.nodes, outputs: Set(graph.outputs.map(\.name)))
        return ordered.nodes.filter { node in
            node.outputs.contains(where: nowLive.contains) || !node.outputs.contains(where: wasLive.contains)
        }
    }
}
