import Foundation
import LopperModel
import LopperPruning
import LopperRuntime

/// A model prepared for costing: every value's dense shape and how a plan shrinks it, and the
/// graph cut into the steps a deployment runtime executes (a Conv with the BatchNormalization
/// folded into it and the activation fused after it is one step). Built once per model; pricing
/// a plan (`CostModel.evaluate`) then touches only numbers.
public struct CostGraph: Sendable {
    /// A value's dense shape and the axes a plan can shrink.
    struct Value: Sendable {
        var name: String
        var shape: [Int]
        var elements: Int
        var elementType: ElementType
        var elementBytes: Int
        var isFloat: Bool
        /// Weights, constants and shape arithmetic: folded or stored, never computed at run time.
        var isStatic: Bool
        var prunableAxes: [PrunableAxis]
    }

    /// Runs of group units along one axis; a plan removes units from them.
    struct PrunableAxis: Sendable {
        var axis: Int
        var runs: [ValueChannels.Segment]
    }

    /// One unit of execution: a main node and what the runtime fuses into it.
    public struct Step: Sendable {
        public var name: String
        /// `Conv`, or `Conv+BatchNormalization+Relu` when fused.
        public var kind: String
        public var opClass: OpClass
        /// Main node (first of `nodes`) and the nodes fused after it.
        var nodes: [Int]
        /// Activations read from outside the step, written by it, and weights read.
        var inputs: [Int]
        var outputs: [Int]
        var weights: [Int]
        /// Reshape-like: its output is a view of its input; costs nothing.
        var isView: Bool
        /// Layer whose weight sparsity applies (the main node's display name).
        public var layer: String
        /// Kernel elements per output for pooling (window size); 1 otherwise.
        var window: Int
        /// Attributes for the layer signature.
        var attributes: String
        /// The main node's first input, weight (input 1) and first output.
        var mainInput: Int?
        var mainWeight: Int?
        var mainOutput = 0
    }

    /// When each activation's storage is live, in steps (views share their source's storage).
    struct Lifetime: Sendable {
        var value: Int
        var first: Int
        var last: Int
    }

    public let modelName: String
    /// The concrete shapes the graph inputs were costed at.
    public var inputShapes: [String: [Int]] { Dictionary(uniqueKeysWithValues: graphInputs.map { (values[$0].name, values[$0].shape) }) }
    var values: [Value]
    var index: [String: Int]
    public private(set) var steps: [Step]
    /// Group sizes, for proportional counting of partial runs.
    var groupSizes: [Int: Int]
    public let groups: [PruneGroup]
    /// Nodes by position, for the fused nodes' op types and attributes.
    let nodes: [Node]
    let graphInputs: [Int]
    let graphOutputs: [Int]
    let lifetimes: [Lifetime]
    /// Nodes left out because their shapes are unknown (operators without a shape rule, and
    /// what follows them): the totals do not include them.
    public let uncosted: [String]

    /// - Parameters:
    ///   - inputShapes: concrete shapes for graph inputs with symbolic sizes.
    ///   - batch: the value of a symbolic leading dimension not given in `inputShapes`.
    public init(_ model: Model, inputShapes: [String: [Int]] = [:], batch: Int = 1) throws {
        let graph = model.graph
        let overrides = try ShapeInference.inputShapes(of: graph, given: inputShapes, batch: batch).shapes
        let shapes = try ShapeInference.run(model, inputShapes: overrides)
        let analysis = try DependencyAnalysis.analyze(model)
        modelName = model.path.map { ($0 as NSString).lastPathComponent } ?? graph.name
        groups = analysis.groups
        groupSizes = Dictionary(uniqueKeysWithValues: analysis.groups.map { ($0.id, $0.size) })
        nodes = graph.nodes

        // Weight axes a plan shrinks, from the groups' members.
        var weightAxes: [String: [Int: [ValueChannels.Segment]]] = [:]
        for group in analysis.groups where group.isPrunable {
            for member in group.members where [.output, .input, .parameter].contains(member.role) {
                weightAxes[member.tensor, default: [:]][member.axis, default: []]
                    .append(.init(group: group.id, start: member.groupOffset, length: member.length, block: member.block))
            }
        }

        var collected: [Value] = []
        var positions: [String: Int] = [:]
        var staticValues = Set(graph.initializers.keys)
        func add(_ name: String) throws -> Int {
            if let existing = positions[name] { return existing }
            guard let type = shapes[name], let shape = type.concreteShape else {
                let where_ = graph.producer(of: name).map { "output of \($0.label)" } ?? "graph input"
                throw ModelError("the shape of '\(name)' (\(where_)) is not known: give concrete input sizes with --input-shape")
            }
            var axes: [PrunableAxis] = []
            if let channels = analysis.valueChannels[name], channels.axis < shape.count,
               channels.segments.contains(where: { $0.group.map { analysis.groups[$0].isPrunable } ?? false }) {
                axes.append(PrunableAxis(axis: channels.axis, runs: channels.segments.filter { segment in
                    segment.group.map { analysis.groups[$0].isPrunable } ?? false
                }))
            }
            for (axis, runs) in (weightAxes[name] ?? [:]).sorted(by: { $0.key < $1.key })
            where axis < shape.count && !axes.contains(where: { $0.axis == axis }) {
                axes.append(PrunableAxis(axis: axis, runs: runs))
            }
            let elementType = type.elementType ?? .float32
            collected.append(Value(name: name, shape: shape, elements: shape.reduce(1, *), elementType: elementType,
                                elementBytes: elementType.byteSize, isFloat: elementType.isFloatingPoint,
                                isStatic: staticValues.contains(name), prunableAxes: axes))
            positions[name] = collected.count - 1
            return collected.count - 1
        }

        // The runtime's steps: which nodes it folds at load, and which it runs as one step.
        let schedule = try ExecutionSchedule(model: model, inputShapes: overrides)
        var runtimeStep: [Int: Int] = [:]
        for (s, members) in schedule.steps.enumerated() {
            for node in members where node.index < graph.nodes.count && graph.nodes[node.index].displayName == node.displayName {
                runtimeStep[node.index] = s
            }
        }
        // Static values: constants, shapes, what the runtime folds, and whatever is computed from them alone.
        for node in graph.nodes {
            let inputs = node.inputs.filter { !$0.isEmpty }
            if node.opType == "Constant" || ["Shape", "Size"].contains(node.opType) || runtimeStep[node.index] == nil
                || (!inputs.isEmpty && inputs.allSatisfy(staticValues.contains)) {
                staticValues.formUnion(node.outputs.filter { !$0.isEmpty })
            }
        }

        // Steps: the nodes the runtime runs as one step (a folded BatchNormalization, a fused activation) join it.
        var steps: [Step] = []
        var costStep: [Int: Int] = [:]
        let consumers = graph.consumers
        var uncosted: [String] = []
        for node in graph.nodes {
            let outputs = node.outputs.filter { !$0.isEmpty }
            if outputs.allSatisfy(staticValues.contains) { continue }
            // Operators without a shape rule (and whatever follows them) are listed, not priced.
            let known = node.inputs.allSatisfy { $0.isEmpty || shapes[$0]?.concreteShape != nil }
                && outputs.allSatisfy { shapes[$0]?.concreteShape != nil }
            let readsSymbolicInput = node.inputs.contains { input in
                graph.feedInputs.contains { $0.name == input } && shapes[input]?.concreteShape == nil
            }
            if !known && !readsSymbolicInput {
                uncosted.append(node.displayName)
                continue
            }
            let runtime = runtimeStep[node.index]
            if let runtime, let s = costStep[runtime] {
                steps[s].nodes.append(node.index)
                steps[s].kind += "+\(node.opType)"
                continue
            }
            steps.append(try Self.step(for: node, shapes: shapes))
            if let runtime { costStep[runtime] = steps.count - 1 }
        }
        // Inputs, outputs and weights of each step, now that fusion is known.
        for s in steps.indices {
            let members = Set(steps[s].nodes)
            var inputs: [Int] = [], outputs: [Int] = [], weights: [Int] = []
            for position in steps[s].nodes {
                let node = graph.nodes[position]
                for input in node.inputs where !input.isEmpty {
                    if let producer = graph.producers[input], members.contains(producer) { continue }
                    let v = try add(input)
                    if collected[v].isStatic {
                        if !weights.contains(v) { weights.append(v) }
                    } else if !inputs.contains(v) {
                        inputs.append(v)
                    }
                }
            }
            let last = graph.nodes[steps[s].nodes.last!]
            for output in last.outputs where !output.isEmpty { outputs.append(try add(output)) }
            for position in steps[s].nodes.dropLast() {
                for output in graph.nodes[position].outputs where !output.isEmpty {
                    let escapes = (consumers[output] ?? []).contains { !members.contains($0) } || graph.outputs.contains { $0.name == output }
                    if escapes { outputs.append(try add(output)) }
                }
            }
            steps[s].inputs = inputs
            steps[s].outputs = outputs
            steps[s].weights = weights
            let main = graph.nodes[steps[s].nodes[0]]
            steps[s].mainInput = try main.input(0).map(add)
            steps[s].mainWeight = try main.input(1).map(add)
            steps[s].mainOutput = try add(main.outputs[0])
        }
        for input in graph.feedInputs { _ = try add(input.name) }
        for output in graph.outputs where !uncosted.contains(where: { graph.producer(of: output.name)?.displayName == $0 }) {
            _ = try add(output.name)
        }
        self.values = collected
        self.index = positions
        self.uncosted = uncosted
        self.steps = steps
        graphInputs = graph.feedInputs.compactMap { positions[$0.name] }
        graphOutputs = graph.outputs.compactMap { positions[$0.name] }
        lifetimes = Self.lifetimes(values: collected, steps: steps, inputs: graphInputs, outputs: graphOutputs)
    }

    /// Storage lifetimes in execution order: from the step that writes a value (graph inputs:
    /// before the first) to the last step that reads it or a view of it (graph outputs: the end).
    static func lifetimes(values: [Value], steps: [Step], inputs: [Int], outputs: [Int]) -> [Lifetime] {
        var root = Array(values.indices)
        var first = [Int](repeating: Int.max, count: values.count)
        var last = [Int](repeating: -1, count: values.count)
        for v in inputs { first[v] = 0; last[v] = 0 }
        for (s, step) in steps.enumerated() {
            for v in step.inputs { last[root[v]] = max(last[root[v]], s) }
            for v in step.outputs {
                if step.isView, let source = step.inputs.first {
                    root[v] = root[source]
                } else {
                    first[v] = min(first[v], s)
                    last[v] = max(last[v], s)
                }
            }
        }
        for v in outputs { last[root[v]] = steps.count }
        return values.indices.compactMap { v in
            guard root[v] == v, !values[v].isStatic, first[v] != Int.max else { return nil }
            return Lifetime(value: v, first: first[v], last: last[v])
        }
    }

    /// The steps that still run once `blocks` are removed: their branches' steps are gone; a join
    /// removed with its branch (`skip`) keeps what the runtime fused after its Add, now reading the
    /// skip input (the input no removed step writes), or becomes a view of it when nothing was.
    func runningSteps(removing blocks: [PruningPlan.BlockChoice]) -> [Step] {
        let removed = Set(blocks.flatMap(\.removedNodes))
        let skipJoins = Set(blocks.filter { $0.removal == .skip }.map(\.join))
        let written = Set(steps.filter { removed.contains($0.layer) }.flatMap(\.outputs))
        return steps.compactMap { step -> Step? in
            guard removed.contains(step.layer) else { return step }
            guard skipJoins.contains(step.layer), let skip = step.inputs.first(where: { !written.contains($0) }) else { return nil }
            var rest = step
            (rest.inputs, rest.mainInput) = ([skip], skip)
            guard step.nodes.count > 1 else {
                rest.isView = true
                return rest
            }
            rest.nodes.removeFirst()
            rest.kind = rest.nodes.map { nodes[$0].opType }.joined(separator: "+")
            (rest.name, rest.layer) = (nodes[rest.nodes[0]].displayName, nodes[rest.nodes[0]].displayName)
            return rest
        }
    }

    /// Storage lifetimes of the values `steps` (this graph's, or a subset) read and write.
    func lifetimes(of steps: [Step]) -> [Lifetime] {
        Self.lifetimes(values: values, steps: steps, inputs: graphInputs, outputs: graphOutputs)
    }

    /// Checks a plan against this model: its groups (`PruningPlan.validate`), that every
    /// sparsified layer is a step with a weight here, and that every removed block's nodes are.
    public func validate(_ plan: PruningPlan) throws {
        try plan.validate(against: groups)
        for layer in plan.layers where !steps.contains(where: { $0.layer == layer.node && $0.mainWeight != nil }) {
            throw ModelError("layer '\(layer.node)' is not a layer with a weight in \(modelName)", field: "layers")
        }
        let names = Set(nodes.map(\.displayName))
        for block in plan.blocks {
            guard nodes.contains(where: { $0.displayName == block.join && $0.opType == "Add" }) else {
                throw ModelError("block \(block.block) joins at '\(block.join)', which is not an Add of \(modelName)", field: "blocks")
            }
            if let missing = block.nodes.first(where: { !names.contains($0) }) {
                throw ModelError("block \(block.block) removes node '\(missing)', which \(modelName) does not have", field: "blocks")
            }
        }
    }

    static let viewOps: Set<String> = ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"]
    static let poolingOps: Set<String> = ["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool",
                                           "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceProd"]
    static let dataMovementOps: Set<String> = ["Transpose", "Concat", "Split", "Slice", "Gather", "Pad", "Resize", "Upsample",
                                                "Expand", "Tile", "Cast", "DepthToSpace", "SpaceToDepth", "GatherElements",
                                                "ScatterND", "Where", "ConstantOfShape"]

    static func step(for node: Node, shapes: ShapeTable) throws -> Step {
        let opClass: OpClass
        var window = 1
        switch node.opType {
        case "Conv", "ConvTranspose":
            let group = try node.int("group", default: 1)
            let channels = node.input(0).flatMap { shapes[$0]?.concreteShape }.map { $0.count > 1 ? $0[1] : 1 } ?? 1
            opClass = group > 1 && group == channels ? .depthwiseConv : .conv
        case "Gemm", "MatMul", "RNN", "GRU", "LSTM": opClass = .gemm
        case _ where poolingOps.contains(node.opType):
            opClass = .pooling
            window = (try node.ints("kernel_shape"))?.reduce(1, *) ?? 1
        case _ where dataMovementOps.contains(node.opType) || viewOps.contains(node.opType): opClass = .dataMovement
        default: opClass = .elementwise
        }
        var attributes: [String] = []
        for attribute in node.proto.attribute.sorted(by: { $0.name < $1.name }) {
            if !attribute.ints.isEmpty { attributes.append("\(attribute.name)=\(attribute.ints.map(String.init).joined(separator: "x"))") }
            else if attribute.hasI { attributes.append("\(attribute.name)=\(attribute.i)") }
            else if attribute.hasF { attributes.append("\(attribute.name)=\(attribute.f)") }
            else if attribute.hasS {
                let text = String(decoding: attribute.s, as: UTF8.self).map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" }
                attributes.append("\(attribute.name)=\(String(text))")
            }
        }
        return Step(name: node.displayName, kind: node.opType, opClass: opClass, nodes: [node.index], inputs: [], outputs: [],
                    weights: [], isView: viewOps.contains(node.opType), layer: node.displayName, window: window,
                    attributes: attributes.joined(separator: " "))
    }
}

