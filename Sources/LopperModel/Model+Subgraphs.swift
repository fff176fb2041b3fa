import Foundation
import ONNXProto

extension Graph {
    /// A control-flow node's body (the GRAPH attribute `attribute` of If, Loop or Scan) as a graph
    /// of its own. The outer-scope values the body reads become extra inputs after its declared
    /// ones, in `Node.implicitInputs` order, so that inference and execution can feed them.
    /// Errors name the node and attribute.
    public func subgraph(of node: Node, attribute: String) throws -> Graph {
        guard let proto = node.attribute(attribute), proto.hasG else {
            throw node.error("is required", field: "attribute '\(attribute)'")
        }
        var body = proto.g
        var declared = Set(body.input.map(\.name))
        for name in Node.freeNames(of: body) where declared.insert(name).inserted {
            body.input.append(Onnx_ValueInfoProto.with { $0.name = name })
        }
        do {
            return try Graph(proto: body, external: external)
        } catch let error as ModelError {
            throw node.error("\(error.node.map { "node \($0): " } ?? "")\(error.message)", field: "attribute '\(attribute)'\(error.field.map { ", \($0)" } ?? "")")
        }
    }

    /// How many inputs a node's body declares (its outer-scope reads come after them).
    public static func declaredInputCount(of node: Node, attribute: String) -> Int {
        node.attribute(attribute)?.g.input.count ?? 0
    }

    /// The names of the GRAPH attributes of a node (If's branches, Loop's and Scan's body).
    public static func subgraphAttributes(of node: Node) -> [String] {
        node.proto.attribute.filter(\.hasG).map(\.name)
    }
}

extension Model {
    /// A control-flow node's body as a model with this model's opsets (see `Graph.subgraph`).
    public func subgraph(of node: Node, attribute: String) throws -> Model {
        var model = self
        model.graph = try graph.subgraph(of: node, attribute: attribute)
        return model
    }
}

/// The branch an `If` with a known condition takes, rewritten to live in the enclosing graph:
/// values defined inside get the `If` node's name as a prefix, the branch outputs take the
/// `If`'s output names, and its initializers come along under their prefixed names.
public struct InlinedBranch: Sendable {
    public let nodes: [Node]
    public let initializers: [(name: String, data: TensorData)]
}

extension Graph {
    /// `nil` when the branch cannot be inlined as it stands: one of its nodes has a subgraph of
    /// its own that reads a value the branch defines (renaming would have to reach into it).
    public func inlinedBranch(of node: Node, condition: Bool) throws -> InlinedBranch? {
        let attribute = condition ? "then_branch" : "else_branch"
        let body = try subgraph(of: node, attribute: attribute)
        guard body.outputs.count == node.outputs.count else {
            throw node.error("gives \(body.outputs.count) outputs, the node has \(node.outputs.count)", field: "attribute '\(attribute)'")
        }
        let local = Set(body.initializers.keys).union(body.nodes.flatMap(\.outputs))
        if body.nodes.contains(where: { !$0.implicitInputs.filter(local.contains).isEmpty }) { return nil }
        let prefix = "\(node.displayName)/\(attribute)/"
        var renamed: [String: String] = [:]
        for name in local where !name.isEmpty { renamed[name] = prefix + name }
        var nodes: [Node] = []
        // Branch outputs that a node computes take the If's names; the others (an outer value
        // or an initializer passed straight through) get an Identity.
        var claimed = Set<String>()
        for (output, target) in zip(body.outputs.map(\.name), node.outputs) where !target.isEmpty {
            if body.producers[output] != nil && claimed.insert(output).inserted {
                renamed[output] = target
            } else {
                nodes.append(Node(proto: Onnx_NodeProto.with {
                    $0.opType = "Identity"
                    $0.name = "\(prefix)\(target)"
                    $0.input = [renamed[output] ?? output]
                    $0.output = [target]
                }, index: node.index))
            }
        }
        let inner = body.nodes.map { original in
            var copy = original
            copy.proto.input = original.inputs.map { renamed[$0] ?? $0 }
            copy.proto.output = original.outputs.map { renamed[$0] ?? $0 }
            if !copy.proto.name.isEmpty { copy.proto.name = prefix + copy.proto.name }
            copy.index = node.index
            return copy
        }
        return InlinedBranch(nodes: inner + nodes, initializers: body.initializers.map { (renamed[$0.key]!, $0.value) })
    }
}
