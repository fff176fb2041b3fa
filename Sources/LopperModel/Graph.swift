import Foundation
import ONNXProto
import OrderedCollections
import HeapModule

/// A model's main graph: nodes in topological order, initializers decoded, and producer/consumer
/// maps. Fields Lopper does not model (doc strings, quantization annotations, sparse
/// initializers, unknown fields) stay in `proto` and are written back unchanged.
public struct Graph: Sendable {
    public var name: String {
        get { proto.name }
        set { proto.name = newValue }
    }
    /// Nodes in a topological order (the file's order wherever that already was one).
    public private(set) var nodes: [Node]
    public var initializers: OrderedDictionary<String, TensorData>
    /// Declared graph inputs. Models older than IR 4 also list their initializers here;
    /// `feedInputs` are the ones a caller must supply.
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var valueInfo: [ValueInfo]

    /// Which node produces a value (index into `nodes`).
    public private(set) var producers: [String: Int] = [:]
    /// Which nodes read a value, in node order.
    public private(set) var consumers: [String: [Int]] = [:]

    var proto: Onnx_GraphProto
    private var initializerTemplates: [String: Onnx_TensorProto] = [:]
    /// Side files of the model, for `Constant` nodes whose tensors live in external data.
    let external: ExternalDataFiles?

    init(proto source: Onnx_GraphProto, external: ExternalDataFiles?) throws {
        var rest = source
        rest.node = []
        rest.initializer = []
        rest.input = []
        rest.output = []
        rest.valueInfo = []
        proto = rest
        self.external = external

        initializers = [:]
        for tensor in source.initializer {
            guard !tensor.name.isEmpty else { throw ModelError("an initializer has no name", field: "initializer") }
            guard initializers[tensor.name] == nil else {
                throw ModelError("is defined twice", field: "initializer '\(tensor.name)'")
            }
            do {
                initializers[tensor.name] = try TensorData(decoding: tensor, external: external)
            } catch let error as ModelError {
                throw ModelError(error.message, field: "initializer '\(tensor.name)'")
            }
            initializerTemplates[tensor.name] = tensor.clearingData()
        }
        inputs = source.input.map(ValueInfo.init(proto:))
        outputs = source.output.map(ValueInfo.init(proto:))
        valueInfo = source.valueInfo.map(ValueInfo.init(proto:))
        nodes = source.node.enumerated().map { Node(proto: $0.element, index: $0.offset) }
        for node in nodes where node.opType.isEmpty {
            throw node.error("has no op_type")
        }
        try sortAndIndex()
    }

    /// Inputs that are not initializers: what a caller feeds.
    public var feedInputs: [ValueInfo] {
        inputs.filter { initializers[$0.name] == nil }
    }

    /// The node producing `value`, if a node does.
    public func producer(of value: String) -> Node? {
        producers[value].map { nodes[$0] }
    }

    /// A constant tensor: an initializer, or the value of a `Constant` node (Paddle and other
    /// exporters keep weights there). `nil` for values computed at run time.
    public func constant(_ name: String) throws -> TensorData? {
        if let tensor = initializers[name] { return tensor }
        guard let node = producer(of: name), node.opType == "Constant", node.domain.isEmpty else { return nil }
        return try constantValue(of: node)
    }

    /// The tensor a `Constant` node holds.
    public func constantValue(of node: Node) throws -> TensorData {
        try ConstantNode.value(of: node, external: external)
    }

    /// Replaces a constant's value, whether it is an initializer or a `Constant` node.
    public mutating func setConstant(_ name: String, to data: TensorData) throws {
        if initializers[name] != nil {
            initializers[name] = data
            return
        }
        guard let position = producers[name], nodes[position].opType == "Constant" else {
            throw ModelError("'\(name)' is not a constant")
        }
        var attribute = Onnx_AttributeProto()
        attribute.name = "value"
        attribute.type = .tensor
        attribute.t = data.encoded(over: Onnx_TensorProto.with { $0.name = name })
        nodes[position].proto.attribute = nodes[position].proto.attribute.filter { !$0.name.hasPrefix("value") } + [attribute]
    }

    /// Changes one node (its attributes or inputs), then re-checks and re-indexes the graph.
    public mutating func modifyNode(at position: Int, _ change: (inout Node) throws -> Void) throws {
        try change(&nodes[position])
        try sortAndIndex()
    }

    /// Adds an initializer under a name no value uses yet, derived from `base`; returns the name.
    public mutating func addInitializer(_ data: TensorData, nameBase base: String) -> String {
        let name = unusedName(base)
        initializers[name] = data
        return name
    }

    /// `base`, or `base_1`, `base_2` …: the first that no initializer, node output or input uses.
    public func unusedName(_ base: String) -> String {
        var name = base, suffix = 1
        while initializers[name] != nil || producers[name] != nil || inputs.contains(where: { $0.name == name }) {
            name = "\(base)_\(suffix)"
            suffix += 1
        }
        return name
    }

    /// Replaces the node list, restoring topological order and the producer/consumer maps.
    public mutating func setNodes(_ newNodes: [Node]) throws {
        nodes = newNodes.enumerated().map { Node(proto: $0.element.proto, index: $0.offset) }
        try sortAndIndex()
    }

    /// Orders nodes topologically (stable: file order wins among ready nodes) and checks that
    /// every value read is defined exactly once and that there is no cycle.
    private mutating func sortAndIndex() throws {
        var definedOutside = Set(initializers.keys)
        definedOutside.formUnion(inputs.map(\.name))
        definedOutside.formUnion(proto.sparseInitializer.map(\.values.name))

        var producerOf: [String: Int] = [:]
        for (position, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if let other = producerOf[output] {
                    throw node.error("writes '\(output)', which node \(nodes[other].label) also writes")
                }
                if definedOutside.contains(output) && initializers[output] == nil {
                    throw node.error("writes '\(output)', which is also a graph input")
                }
                producerOf[output] = position
            }
        }

        // Kahn's algorithm over node positions, always taking the lowest ready position.
        var waitingOn = [Int](repeating: 0, count: nodes.count)
        var dependents = [[Int]](repeating: [], count: nodes.count)
        for (position, node) in nodes.enumerated() {
            let reads = node.inputs.filter { !$0.isEmpty }
            for name in reads {
                if let source = producerOf[name] {
                    waitingOn[position] += 1
                    dependents[source].append(position)
                } else if !definedOutside.contains(name) {
                    throw node.error("reads '\(name)', which no node, initializer or graph input defines")
                }
            }
            for name in node.implicitInputs {
                if let source = producerOf[name], source != position {
                    waitingOn[position] += 1
                    dependents[source].append(position)
                }
            }
        }
        var ready = Heap<Int>()
        for position in nodes.indices where waitingOn[position] == 0 { ready.insert(position) }
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        while let position = ready.popMin() {
            order.append(position)
            for next in dependents[position] {
                waitingOn[next] -= 1
                if waitingOn[next] == 0 { ready.insert(next) }
            }
        }
        if order.count < nodes.count {
            let stuck = nodes.indices.filter { waitingOn[$0] > 0 }.prefix(5).map { nodes[$0].label }
            throw ModelError("the graph has a cycle through \(stuck.joined(separator: ", "))")
        }
        nodes = order.map { nodes[$0] }

        producers = [:]
        consumers = [:]
        for (position, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producers[output] = position }
            for input in Set(node.inputs + node.implicitInputs) where !input.isEmpty {
                consumers[input, default: []].append(position)
            }
        }
        for output in outputs where producers[output.name] == nil && !definedOutside.contains(output.name) {
            throw ModelError("graph output '\(output.name)' is not produced by any node")
        }
    }

    /// The graph as protobuf; tensors larger than the sink's threshold go to external data.
    func encoded(externalSink: ExternalDataSink?) throws -> Onnx_GraphProto {
        var graph = proto
        graph.node = nodes.map(\.proto)
        graph.input = inputs.map(\.proto)
        graph.output = outputs.map(\.proto)
        graph.valueInfo = valueInfo.map(\.proto)
        graph.initializer = try initializers.map { name, data in
            var template = initializerTemplates[name] ?? Onnx_TensorProto()
            template.name = name
            if let sink = externalSink, sink.wants(data) {
                return try sink.store(data, over: template)
            }
            return data.encoded(over: template)
        }
        return graph
    }
}
