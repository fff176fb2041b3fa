import Foundation
import ONNXProto

/// One operator invocation in a graph. The protobuf is kept whole so that fields Lopper does
/// not use (doc strings, metadata, unknown fields) survive a rewrite.
public struct Node: Sendable {
    public var proto: Onnx_NodeProto
    /// Position in the graph's node list when it was loaded; names error messages for unnamed nodes.
    public var index: Int

    public init(proto: Onnx_NodeProto, index: Int) {
        self.proto = proto
        self.index = index
    }

    public var name: String { proto.name }
    public var opType: String { proto.opType }
    /// `""` for the default ONNX domain (`ai.onnx` is normalised to it).
    public var domain: String { proto.domain == "ai.onnx" ? "" : proto.domain }
    /// The operator with its domain unless that is the default one: `Conv`, `ai.onnx.ml.ZipMap`.
    public var qualifiedOpType: String { domain.isEmpty ? opType : "\(domain).\(opType)" }
    public var inputs: [String] { proto.input }
    public var outputs: [String] { proto.output }

    /// How errors and tables refer to the node: `'conv1' (Conv)` or `#12 (Conv)` when unnamed.
    public var label: String {
        name.isEmpty ? "#\(index) (\(opType))" : "'\(name)' (\(opType))"
    }

    /// The name shown in tables: the node's name, or `OpType#index` when it has none.
    public var displayName: String { name.isEmpty ? "\(opType)#\(index)" : name }

    /// The input at `position`, or `nil` when absent or given as `""` (an omitted optional input).
    public func input(_ position: Int) -> String? {
        position < proto.input.count && !proto.input[position].isEmpty ? proto.input[position] : nil
    }

    public func error(_ message: String, field: String? = nil) -> ModelError {
        ModelError(message, node: label, field: field)
    }

    /// Names of outer-scope values that the node's subgraphs (If/Loop/Scan bodies) read, each
    /// once, in the order the bodies first read them.
    public var implicitInputs: [String] {
        var names: [String] = []
        var seen = Set<String>()
        for attribute in proto.attribute {
            for graph in (attribute.hasG ? [attribute.g] : []) + attribute.graphs {
                for name in Self.freeNames(of: graph) where seen.insert(name).inserted { names.append(name) }
            }
        }
        return names
    }

    static func freeNames(of graph: Onnx_GraphProto) -> [String] {
        var defined = Set(graph.input.map(\.name) + graph.initializer.map(\.name))
        var free: [String] = []
        for node in graph.node {
            let nested = Node(proto: node, index: 0).implicitInputs
            for name in node.input + nested where !name.isEmpty && !defined.contains(name) {
                free.append(name)
            }
            defined.formUnion(node.output)
        }
        return free
    }
}
