import Foundation

/// What static inference knows about one value: its type and, for small constant-like tensors
/// (shape arithmetic such as `Shape → Gather → Concat → Reshape`), its elements.
public struct ValueFacts: Sendable, Equatable {
    public var type: TensorType
    /// Elements of a small integer tensor, possibly symbolic (the batch size taken by `Shape`).
    public var ints: [Dim]?
    /// Elements of a small floating-point constant (for example `Resize` scales).
    public var floats: [Double]?

    public init(_ type: TensorType, ints: [Dim]? = nil, floats: [Double]? = nil) {
        self.type = type
        self.ints = ints
        self.floats = floats
    }

    public static let unknown = ValueFacts(TensorType(elementType: nil, shape: nil))

    public var shape: [Dim]? { type.shape }
    public var elementType: ElementType? { type.elementType }

    /// The integer elements when all of them are numbers.
    public var intValues: [Int]? {
        guard let ints else { return nil }
        let values = ints.compactMap(\.value)
        return values.count == ints.count ? values : nil
    }

    /// Largest tensor whose elements are tracked.
    static let trackedElementLimit = 64
}

/// Result of static shape inference over a graph.
public struct ShapeTable: Sendable {
    public internal(set) var facts: [String: ValueFacts] = [:]
    /// Nodes whose operator has no rule (and no kernel): their outputs stay unknown.
    public internal(set) var unsupported: [Node] = []

    public subscript(value: String) -> TensorType? { facts[value]?.type }
}

/// Static shape inference for the operators Lopper supports, with symbolic dimensions.
///
/// Rules live in `OpSet`; each reads its node's attributes with the spec's defaults for the
/// model's opset. A shape contradiction (a Conv whose weight does not fit its input, a
/// broadcast of 3 against 5) is an error naming the node.
public enum ShapeInference {
    /// Graph input shapes for inference: `given` concrete shapes by input name, and `batch` for a
    /// symbolic leading dimension of the inputs not given. Also says which dimensions were assumed
    /// (`"x[0]": 1`). An unknown name in `given` is an error listing the inputs.
    public static func inputShapes(of graph: Graph, given: [String: [Int]], batch: Int) throws -> (shapes: [String: [Dim]], assumed: [String: Int]) {
        var shapes: [String: [Dim]] = [:]
        var assumed: [String: Int] = [:]
        for input in graph.feedInputs {
            if let shape = given[input.name] {
                shapes[input.name] = shape.map { .value($0) }
            } else if var shape = input.type?.shape, let first = shape.first, first.value == nil {
                shape[0] = .value(batch)
                shapes[input.name] = shape
                assumed["\(input.name)[0]"] = batch
            }
        }
        if let unknown = given.keys.sorted().first(where: { name in !graph.feedInputs.contains { $0.name == name } }) {
            throw ModelError("--input-shape names '\(unknown)', which is not a graph input (inputs: \(graph.feedInputs.map(\.name).joined(separator: ", ")))")
        }
        return (shapes, assumed)
    }

    /// - Parameter inputShapes: overrides for graph inputs' declared shapes (for symbolic sizes).
    public static func run(_ model: Model, inputShapes: [String: [Dim]] = [:]) throws -> ShapeTable {
        let graph = model.graph
        var given: [String: ValueFacts] = [:]
        for input in graph.feedInputs {
            var type = input.type ?? TensorType(elementType: nil, shape: nil)
            if let shape = inputShapes[input.name] { type.shape = shape }
            given[input.name] = ValueFacts(type)
        }
        return try infer(graph, opset: model.opset() ?? 1, given: given)
    }

    /// Inference over one graph (a model's, or a control-flow body) from facts about its inputs;
    /// a body's outer-scope reads are among its inputs (`Graph.subgraph`).
    static func infer(_ graph: Graph, opset: Int, given: [String: ValueFacts]) throws -> ShapeTable {
        var table = ShapeTable()
        for input in graph.feedInputs {
            table.facts[input.name] = given[input.name] ?? input.type.map { ValueFacts($0) } ?? .unknown
        }
        for (name, tensor) in graph.initializers {
            table.facts[name] = facts(of: tensor)
        }
        for node in graph.nodes {
            let outputs: [ValueFacts]
            if let rule = OpSet.shapeRule(for: node) {
                let inputs = node.inputs.map { $0.isEmpty ? nil : (table.facts[$0] ?? .unknown) }
                let context = ShapeContext(node: node, opset: opset, inputs: inputs, graph: graph, scope: table.facts)
                do {
                    outputs = try rule(context)
                } catch let error as ModelError where error.node == nil {
                    throw node.error(error.message, field: error.field)
                }
            } else {
                table.unsupported.append(node)
                outputs = []
            }
            for (position, name) in node.outputs.enumerated() where !name.isEmpty {
                table.facts[name] = position < outputs.count ? outputs[position] : .unknown
            }
        }
        return table
    }

    /// Type, shape and (for small tensors) elements of a constant.
    static func facts(of tensor: TensorData) -> ValueFacts {
        var facts = ValueFacts(TensorType(tensor.elementType, tensor.shape))
        if tensor.count <= ValueFacts.trackedElementLimit {
            if tensor.elementType.isInteger || tensor.elementType == .bool {
                facts.ints = tensor.int64s().map { .value(Int($0)) }
            } else if tensor.elementType.isFloatingPoint {
                facts.floats = tensor.doubles()
            }
        }
        return facts
    }
}

/// A node's inputs and attributes as a shape rule sees them.
struct ShapeContext {
    let node: Node
    let opset: Int
    /// Facts per input position; `nil` for an omitted optional input.
    let inputs: [ValueFacts?]
    let graph: Graph
    /// Every value known so far in the node's graph (what its subgraphs may read).
    let scope: [String: ValueFacts]

    /// A required input.
    func input(_ position: Int) throws -> ValueFacts {
        guard position < inputs.count, let facts = inputs[position] else {
            throw ModelError("input \(position) is required but missing")
        }
        return facts
    }

    /// An optional input; `nil` when omitted.
    func optionalInput(_ position: Int) -> ValueFacts? {
        position < inputs.count ? inputs[position] : nil
    }

    func shape(_ position: Int) throws -> [Dim]? { try input(position).shape }

    /// Integer elements of an input that inference could determine, such as axes or a target shape.
    func intValues(_ position: Int) -> [Int]? { optionalInput(position)?.intValues }

    /// Reads a list such as `axes` from an attribute (opsets before `version`) or an input.
    func list(_ attribute: String, attributeBefore version: Int, input position: Int) throws -> ListArgument {
        if opset < version {
            return try node.ints(attribute).map(ListArgument.known) ?? .absent
        }
        guard let facts = optionalInput(position) else { return .absent }
        return facts.intValues.map(ListArgument.known) ?? .unknown
    }

    func unknownOutputs(_ type: ElementType?) -> [ValueFacts] {
        node.outputs.map { _ in ValueFacts(TensorType(elementType: type, shape: nil)) }
    }
}

/// An integer list argument that may be absent, known, or computed at run time.
enum ListArgument {
    case absent
    case known([Int])
    case unknown
}
