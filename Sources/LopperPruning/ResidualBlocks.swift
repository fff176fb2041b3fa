import LopperModel

/// A residual block: a subgraph whose output is `skip + branch(skip)`, so that removing it (its
/// output replaced by the skip value) leaves a valid, smaller graph. ResNet and MobileNetV2
/// blocks, YOLO bottlenecks with shortcuts, transformer attention and FFN sub-layers.
public struct ResidualBlock: Sendable, Equatable, Codable {
    public var id: Int
    /// The Add node joining the skip and the branch (display name), and its output value.
    public var join: String
    public var output: String
    /// The value the block reduces to when removed.
    public var skip: String
    /// The branch's last value (the Add's other input).
    public var branchOutput: String
    /// Display names of the branch's nodes, in graph order.
    public var nodes: [String]
    /// Why the block cannot be removed; nil when it can.
    public var refusal: String?
    /// Removable blocks whose join lies inside this block's branch.
    public var inner: [Int]

    public var isRemovable: Bool { refusal == nil }
    /// How tables name the block: its join and the layers it removes.
    public var name: String { join }
}

/// Finds residual blocks on the graph.
public enum ResidualBlocks {
    /// Every Add with two computed inputs one of which is computed from the other is a candidate:
    /// the addend computed from the other is the branch, the other the skip. A candidate is
    /// removable when the branch keeps the shape and no value inside it is read outside the block;
    /// otherwise it is listed with the reason. An Add whose addends share an input without either
    /// being computed from the other is a projection shortcut, listed as refused.
    public static func find(in model: Model) throws -> [ResidualBlock] {
        let graph = model.graph
        let shapes = try? ShapeInference.run(model)
        let outputs = Set(graph.outputs.map(\.name))
        var blocks: [ResidualBlock] = []
        var memo: [String: Set<String>] = [:]
        for (index, node) in graph.nodes.enumerated() where node.opType == "Add" && node.domain == "" && node.inputs.count == 2 {
            let (a, b) = (node.inputs[0], node.inputs[1])
            guard let output = node.outputs.first, !output.isEmpty, a != b, try graph.constant(a) == nil, try graph.constant(b) == nil,
                  graph.producers[a] != nil || graph.producers[b] != nil else { continue }
            let ancestorsA = ancestors(of: a, in: graph, memo: &memo), ancestorsB = ancestors(of: b, in: graph, memo: &memo)
            let skip: String, branchOutput: String
            if ancestorsB.contains(a) {
                (skip, branchOutput) = (a, b)
            } else if ancestorsA.contains(b) {
                (skip, branchOutput) = (b, a)
            } else {
                // Two paths from a common value: a shortcut through a layer of its own.
                guard !ancestorsA.isDisjoint(with: ancestorsB) else { continue }
                blocks.append(ResidualBlock(id: blocks.count, join: node.displayName, output: output, skip: a, branchOutput: b,
                                            nodes: [], refusal: "neither addend is computed from the other (a shortcut through a layer of its own)",
                                            inner: []))
                continue
            }
            let branch = branchNodes(from: skip, to: branchOutput, in: graph)
            var refusal: String?
            if let shapes, let from = shapes[skip]?.shape, let to = shapes[branchOutput]?.shape, from != to {
                refusal = "the branch changes the shape (\(describe(from)) → \(describe(to)))"
            }
            let inside = Set(branch).union([index])
            search: for position in branch where refusal == nil {
                for value in graph.nodes[position].outputs where !value.isEmpty {
                    if outputs.contains(value) { refusal = "'\(value)' inside the block is a model output"; break search }
                    if let reader = graph.consumers[value]?.first(where: { !inside.contains($0) }) {
                        refusal = "'\(value)' inside the block is also read by \(graph.nodes[reader].label) outside it"
                        break search
                    }
                }
            }
            blocks.append(ResidualBlock(id: blocks.count, join: node.displayName, output: output, skip: skip,
                                        branchOutput: branchOutput, nodes: branch.map { graph.nodes[$0].displayName },
                                        refusal: refusal, inner: []))
        }
        // Nesting: a removable block whose join lies in another block's branch is inner to it.
        for outer in blocks.indices where !blocks[outer].nodes.isEmpty {
            let members = Set(blocks[outer].nodes)
            blocks[outer].inner = blocks.filter { $0.id != outer && $0.isRemovable && members.contains($0.join) }.map(\.id)
        }
        return blocks
    }

    /// Values `value` is computed from (graph inputs and computed values; initializers and
    /// Constant nodes left out).
    static func ancestors(of value: String, in graph: Graph, memo: inout [String: Set<String>]) -> Set<String> {
        if let known = memo[value] { return known }
        var result = Set<String>()
        var stack = [value]
        var seen = Set<String>()
        while let current = stack.popLast() {
            guard let producer = graph.producers[current] else { continue }
            for input in graph.nodes[producer].inputs + graph.nodes[producer].implicitInputs where !input.isEmpty && seen.insert(input).inserted {
                if graph.initializers[input] != nil || graph.producer(of: input)?.opType == "Constant" { continue }
                result.insert(input)
                if let known = memo[input] { result.formUnion(known) } else { stack.append(input) }
            }
        }
        memo[value] = result
        return result
    }

    /// Nodes on a path from `skip` to `output` (computed from `skip`, and `output` computed
    /// from them), in graph order.
    static func branchNodes(from skip: String, to output: String, in graph: Graph) -> [Int] {
        // Backward from the output, not past the skip.
        var upstream = Set<Int>()
        var stack = [output]
        var seen = Set<String>([skip])
        while let value = stack.popLast() {
            guard let producer = graph.producers[value], upstream.insert(producer).inserted else { continue }
            for input in graph.nodes[producer].inputs + graph.nodes[producer].implicitInputs where !input.isEmpty && seen.insert(input).inserted {
                stack.append(input)
            }
        }
        // Forward from the skip.
        var downstream = Set<Int>()
        var frontier = [skip]
        while let value = frontier.popLast() {
            for reader in graph.consumers[value] ?? [] where upstream.contains(reader) && downstream.insert(reader).inserted {
                frontier.append(contentsOf: graph.nodes[reader].outputs)
            }
        }
        return downstream.sorted()
    }

    static func describe(_ shape: [Dim]) -> String {
        "[" + shape.map { "\($0)" }.joined(separator: ", ") + "]"
    }
}
