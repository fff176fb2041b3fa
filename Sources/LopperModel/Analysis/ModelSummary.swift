/// Per-layer statistics of a model: shapes, parameters, multiply-accumulates and which pruning
/// granularities apply. What `lopper inspect` prints and the allocator's cost model starts from.
public struct ModelSummary: Codable, Sendable {
    public struct Layer: Codable, Sendable {
        public var name: String
        public var opType: String
        public var domain: String
        public var inputShapes: [String]
        public var outputShapes: [String]
        /// Elements of the floating-point constants (weights, biases, BN statistics) the node reads.
        public var params: Int
        /// Multiply-accumulates for one run; `nil` when shapes are not known statically.
        public var macs: Int?
        /// `unstructured`, `2:4`, `4:8`, `channel` — what may be pruned in this layer's weight.
        public var granularities: [String]
        public var supported: Bool
    }

    public struct Unsupported: Codable, Sendable {
        public var opType: String
        public var domain: String
        public var nodes: [String]
    }

    public struct Value: Codable, Sendable {
        public var name: String
        public var type: String
    }

    public var producer: String
    public var irVersion: Int
    public var opsets: [String: Int]
    public var inputs: [Value]
    public var outputs: [Value]
    public var layers: [Layer]
    /// Floating-point constant elements, each tensor counted once.
    public var params: Int
    /// Bytes of all constant tensors as stored.
    public var weightBytes: Int
    /// Sum of the MACs that are known.
    public var macs: Int
    /// Layers whose MACs could not be determined (symbolic sizes or unsupported operators upstream).
    public var layersWithUnknownMACs: Int
    public var unsupported: [Unsupported]
    /// Symbolic input dimensions that were given a value to count MACs (`"x[0]": 1`).
    public var assumedDimensions: [String: Int]
    public var metadataKeys: [String]

    /// Operators that do multiply-accumulate work with a weight at input 1.
    static let weightedOps: Set<String> = ["Conv", "ConvTranspose", "Gemm", "MatMul"]

    /// - Parameters:
    ///   - inputShapes: shapes for graph inputs, replacing declared ones.
    ///   - batch: the value given to a symbolic leading (batch) dimension of inputs not in `inputShapes`.
    public init(_ model: Model, inputShapes: [String: [Int]] = [:], batch: Int = 1) throws {
        let graph = model.graph
        let (overrides, assumed) = try ShapeInference.inputShapes(of: graph, given: inputShapes, batch: batch)
        let shapes = try ShapeInference.run(model, inputShapes: overrides)

        var floatConstants: [String: TensorData] = [:]
        var weightBytes = 0
        for (name, tensor) in graph.initializers {
            weightBytes += tensor.bytes.count
            if tensor.elementType.isFloatingPoint { floatConstants[name] = tensor }
        }
        for node in graph.nodes where node.opType == "Constant" && node.domain.isEmpty {
            guard let name = node.outputs.first, let tensor = try? graph.constantValue(of: node) else { continue }
            weightBytes += tensor.bytes.count
            if tensor.elementType.isFloatingPoint { floatConstants[name] = tensor }
        }

        layers = try graph.nodes.filter { $0.opType != "Constant" || !$0.domain.isEmpty }.map { node in
            let params = Set(node.inputs).reduce(0) { $0 + (floatConstants[$1]?.count ?? 0) }
            let weight = node.input(1).flatMap { floatConstants[$0] }
            return Layer(
                name: node.displayName, opType: node.opType, domain: node.domain,
                inputShapes: node.inputs.map { $0.isEmpty ? "" : (shapes[$0]?.description ?? "?") },
                outputShapes: node.outputs.map { shapes[$0]?.description ?? "?" },
                params: params,
                macs: try Self.macs(node, shapes, weightShape: weight?.shape),
                granularities: Self.granularities(node, weight: weight),
                supported: OpSet.supports(node))
        }
        params = floatConstants.values.reduce(0) { $0 + $1.count }
        self.weightBytes = weightBytes
        macs = layers.reduce(0) { total, layer in
            let (sum, overflow) = total.addingReportingOverflow(layer.macs ?? 0)
            return overflow ? Int.max : sum
        }
        layersWithUnknownMACs = layers.filter { $0.macs == nil }.count
        var grouped: [String: Unsupported] = [:]
        for node in shapes.unsupported {
            let key = node.domain + "::" + node.opType
            grouped[key, default: Unsupported(opType: node.opType, domain: node.domain.isEmpty ? "ai.onnx" : node.domain, nodes: [])]
                .nodes.append(node.displayName)
        }
        unsupported = grouped.keys.sorted().map { grouped[$0]! }
        assumedDimensions = assumed
        producer = model.producer
        irVersion = model.irVersion
        opsets = Dictionary(model.opsets.map { ($0.domain.isEmpty ? "ai.onnx" : $0.domain, $0.version) }, uniquingKeysWith: max)
        inputs = graph.feedInputs.map { Value(name: $0.name, type: shapes[$0.name]?.description ?? "?") }
        outputs = graph.outputs.map { Value(name: $0.name, type: shapes[$0.name]?.description ?? $0.type?.description ?? "?") }
        metadataKeys = model.metadata.map(\.key)
    }

    /// MACs of the layers that multiply by a weight; 0 for every other operator.
    static func macs(_ node: Node, _ shapes: ShapeTable, weightShape: [Int]?) throws -> Int? {
        if RecurrentCell(node) != nil { return recurrentMACs(node, shapes) }
        guard weightedOps.contains(node.opType), node.domain.isEmpty else { return 0 }
        guard let output = node.outputs.first.flatMap({ shapes[$0]?.concreteShape }) else { return nil }
        func product(_ dims: [Int]) -> Int? {
            var result = 1
            for d in dims {
                let (p, overflow) = result.multipliedReportingOverflow(by: d)
                if overflow { return nil }
                result = p
            }
            return result
        }
        switch node.opType {
        case "Conv", "ConvTranspose":
            // Every element of the output (Conv) or input (ConvTranspose) meets one filter slice.
            guard let w = weightShape ?? node.input(1).flatMap({ shapes[$0]?.concreteShape }), w.count >= 2 else { return nil }
            let side = node.opType == "Conv" ? output : node.input(0).flatMap { shapes[$0]?.concreteShape }
            guard let side, let a = product(side), let b = product(Array(w.dropFirst())) else { return nil }
            return product([a, b])
        default:
            // Gemm and MatMul: output elements × the reduction length.
            guard let a = node.input(0).flatMap({ shapes[$0]?.concreteShape }), let count = product(output) else { return nil }
            let transA = (try? node.int("transA", default: 0)) == 1 && node.opType == "Gemm"
            guard let k = transA ? a.first : a.last else { return nil }
            return product([count, k])
        }
    }

    /// Per time step, sequence and direction, every gate row of W and R meets the input and the
    /// previous hidden state: steps × batch × directions × gates·hidden × (input + hidden).
    static func recurrentMACs(_ node: Node, _ shapes: ShapeTable) -> Int? {
        guard let x = node.input(0).flatMap({ shapes[$0]?.concreteShape }), x.count == 3,
              let w = node.input(1).flatMap({ shapes[$0]?.concreteShape }), w.count == 3,
              let r = node.input(2).flatMap({ shapes[$0]?.concreteShape }), r.count == 3 else { return nil }
        let (product, overflow) = [x[0], x[1], w[0], w[1], w[2] + r[2]].reduce((1, false)) { total, d in
            let (p, o) = total.0.multipliedReportingOverflow(by: d)
            return (p, total.1 || o)
        }
        return overflow ? nil : product
    }

    /// Granularities that apply to a layer's weight. Whether channels can really be removed
    /// depends on the layers coupled to it; this only says the weight has channels to remove.
    static func granularities(_ node: Node, weight: TensorData?) -> [String] {
        // A recurrent layer's hidden units are its channels (W is [directions, gates × hidden, input]).
        if let cell = RecurrentCell(node) {
            return weight.map { $0.shape.count == 3 && $0.shape[1] > cell.gateCount } == true ? ["channel"] : []
        }
        guard weightedOps.contains(node.opType), node.domain.isEmpty, let weight, weight.shape.count >= 2 else { return [] }
        var result = ["unstructured"]
        let reduction: Int
        switch node.opType {
        case "Conv": reduction = weight.shape.dropFirst().reduce(1, *)
        case "ConvTranspose": reduction = weight.shape[0]
        case "Gemm": reduction = (try? node.int("transB", default: 0)) == 1 ? weight.shape[1] : weight.shape[0]
        default: reduction = weight.shape[weight.shape.count - 2]
        }
        if reduction % 4 == 0 { result.append("2:4") }
        if reduction % 8 == 0 { result.append("4:8") }
        let outputChannels: Int
        switch node.opType {
        case "Conv": outputChannels = weight.shape[0]
        case "ConvTranspose": outputChannels = weight.shape[1]
        case "Gemm": outputChannels = (try? node.int("transB", default: 0)) == 1 ? weight.shape[0] : weight.shape[1]
        default: outputChannels = weight.shape[weight.shape.count - 1]
        }
        if outputChannels > 1 { result.append("channel") }
        return result
    }
}
