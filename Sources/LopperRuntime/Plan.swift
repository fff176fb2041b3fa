import Foundation
import LopperModel

/// The load-time schedule: kernels in order, value slots, and when each slot is released.
struct Plan {
    struct Step {
        let node: Node
        let kernel: Kernel
        let inputs: [Int?]
        let outputs: [Int?]
        /// Slots whose last reader is this step.
        var release: [Int] = []
        /// Where this step writes its output inside a later Concat step's result.
        var placement: Placement?
        /// For a Concat whose parts are written in place: the shape of its result.
        var gatheredShape: [Int]?
    }

    /// `shape`'s elements starting `elements` into the result of step `concat`.
    struct Placement {
        let concat: Int
        let elements: Int
        let shape: [Int]
    }

    /// A node on its way into the plan; folding and fusion rewrite its inputs and outputs.
    struct Pending {
        var node: Node
        var inputs: [String]
        var outputs: [String]
        var activation: Activation?
        /// Set when a chain of nodes was recognised as this activation of `inputs[0]`.
        var unary: Activation?
        /// The model's nodes this step runs: `node` and those folded or fused into it.
        var covers: [Node]

        /// Values a node's subgraphs read from this scope follow its declared inputs.
        init(_ node: Node) {
            self.node = node
            inputs = node.inputs + node.implicitInputs
            outputs = node.outputs
            covers = [node]
        }

        mutating func absorb(_ other: Pending) { covers += other.covers }
    }

    /// Set by the initializer only (`placeIntoConcats` lives in Plan+Concat.swift).
    var steps: [Step] = []
    /// Value name → slot.
    private(set) var slots: [String: Int] = [:]
    /// Slots filled before a run: constants; `nil` elsewhere.
    private(set) var initialValues: [Tensor?] = []

    init(model: Model, opset: Int, optimize: Bool) throws {
        let graph = model.graph
        var constants = try Plan.initializers(of: graph)
        let graphOutputs = Set(graph.outputs.map(\.name))
        let trace = ProcessInfo.processInfo.environment["LOPPER_TRACE"] != nil
        var pending = graph.nodes.map { Pending($0) }
        let facts = optimize ? try? ShapeInference.run(model) : nil
        if optimize { pending = try Plan.optimize(pending, &constants, model: model, opset: opset, facts: facts) }

        func slot(_ name: String) -> Int {
            if let existing = slots[name] { return existing }
            slots[name] = initialValues.count
            initialValues.append(constants[name])
            return initialValues.count - 1
        }
        for input in graph.feedInputs { _ = slot(input.name) }
        var lastUse: [Int: Int] = [:]
        for item in pending {
            let node = item.node
            let setup = KernelSetup(node: node, opset: opset, constants: item.inputs.map { $0.isEmpty ? nil : constants[$0] }, model: model)
            guard let factory = KernelRegistry.factory(for: node, opset: opset) else {
                throw node.error("has no kernel for opset \(opset)")
            }
            var kernel: Kernel
            do { kernel = try item.unary.map { ActivationKernels.ActivationKernel(activation: $0) } ?? factory(setup) } catch let error as ModelError {
                throw ModelError(error.message, node: node.label, field: error.field.map { "opset \(opset), \($0)" } ?? "opset \(opset)")
            }
            if let activation = item.activation, let fusing = kernel as? ActivationFusing { kernel = fusing.fusing(activation) }
            if trace {
                let note = item.unary.map { " as \($0)" } ?? item.activation.map { " + \($0)" } ?? ""
                FileHandle.standardError.write(Data("plan \(node.label)\(note): \(item.inputs) -> \(item.outputs)\n".utf8))
            }
            let inputSlots = item.inputs.map { $0.isEmpty ? nil : slot($0) }
            for case let s? in inputSlots { lastUse[s] = steps.count }
            steps.append(Step(node: node, kernel: kernel, inputs: inputSlots, outputs: item.outputs.map { $0.isEmpty ? nil : slot($0) }))
        }
        for name in graph.outputs.map(\.name) { _ = slot(name) }
        let kept = Set(graphOutputs.compactMap { slots[$0] }).union(constants.keys.compactMap { slots[$0] })
        for (s, position) in lastUse where !kept.contains(s) { steps[position].release.append(s) }
        // Outputs nobody reads are dropped right after the step that made them.
        for position in steps.indices {
            for case let s? in steps[position].outputs where lastUse[s] == nil && !kept.contains(s) {
                steps[position].release.append(s)
            }
        }
        if let facts { placeIntoConcats(facts) }
    }

    /// The graph's initializers as tensors (string tensors stay out: no kernel folds them).
    static func initializers(of graph: Graph) throws -> [String: Tensor] {
        var constants: [String: Tensor] = [:]
        for (name, data) in graph.initializers where data.elementType != .string {
            do { constants[name] = try Tensor(data) } catch let error as ModelError {
                throw ModelError(error.message, field: "initializer '\(name)'")
            }
        }
        return constants
    }

    /// The load-time rewrites in order: folding, BatchNormalization into Conv, exporter patterns
    /// as one activation, unary chains merged, activations fused into their producer.
    static func optimize(_ nodes: [Pending], _ constants: inout [String: Tensor], model: Model, opset: Int, facts: ShapeTable?) throws -> [Pending] {
        let keep = Set(model.graph.outputs.map(\.name))
        var pending = try fold(nodes, &constants, model: model, opset: opset, facts: facts)
        pending = try foldBatchNorm(pending, &constants, keep: keep)
        pending = recognizeHardSwish(pending, constants, opset: opset, keep: keep)
        pending = recognizeGELU(pending, constants, keep: keep)
        pending = recognizeUnary(pending, constants, opset: opset, facts: facts)
        pending = recognizeSiLU(pending, keep: keep)
        pending = mergeUnary(pending, keep: keep)
        return try fuseActivations(pending, constants, opset: opset, keep: keep)
    }

    /// Evaluates at load time every node whose inputs are all constant, and every node whose
    /// integer outputs static shape inference already knows (shape arithmetic on fixed sizes).
    private static func fold(_ nodes: [Pending], _ constants: inout [String: Tensor], model: Model, opset: Int, facts: ShapeTable?) throws -> [Pending] {
        let context = ExecutionContext(threads: 1)
        var kept: [Pending] = []
        var work = nodes
        var next = 0
        while next < work.count {
            let item = work[next]
            next += 1
            let node = item.node
            // An If whose condition is known is replaced by the branch it takes.
            if node.opType == "If", node.domain.isEmpty, let condition = item.inputs.first.flatMap({ constants[$0] }), condition.count == 1,
               let branch = try model.graph.inlinedBranch(of: node, condition: condition.bools[0]) {
                for (name, data) in branch.initializers where data.elementType != .string { constants[name] = try Tensor(data) }
                work.insert(contentsOf: branch.nodes.map { Pending($0) }, at: next)
                continue
            }
            let inputs = item.inputs.filter { !$0.isEmpty }
            if inputs.allSatisfy({ constants[$0] != nil }), !["Dropout"].contains(node.opType),
               let factory = KernelRegistry.factory(for: node, opset: opset) {
                let setup = KernelSetup(node: node, opset: opset, constants: item.inputs.map { $0.isEmpty ? nil : constants[$0] }, model: model)
                let arguments = item.inputs.map { $0.isEmpty ? nil : constants[$0] }
                // A node that fails here fails at run time too, where the error names it.
                if let results = try? factory(setup).run(arguments, context), results.count >= item.outputs.count {
                    for (name, value) in zip(item.outputs, results) where !name.isEmpty { constants[name] = value }
                    continue
                }
            }
            if let facts, let known = knownIntegers(item.outputs, facts) {
                for (name, value) in known { constants[name] = value }
                continue
            }
            kept.append(item)
        }
        return kept
    }

    private static func knownIntegers(_ outputs: [String], _ table: ShapeTable) -> [(String, Tensor)]? {
        var result: [(String, Tensor)] = []
        for name in outputs where !name.isEmpty {
            guard let facts = table.facts[name], let type = facts.elementType, type.storageKind == .int64,
                  let shape = facts.type.concreteShape, let values = facts.intValues, values.count == Tensor.count(shape) else { return nil }
            result.append((name, Tensor(int64s: values.map { Int64($0) }, shape: shape, type: type)))
        }
        return result.isEmpty ? nil : result
    }

    /// Consumers of each value among `nodes`.
    static func readers(_ nodes: [Pending]) -> [String: [Int]] {
        var map: [String: [Int]] = [:]
        for (position, item) in nodes.enumerated() {
            for name in Set(item.inputs) where !name.isEmpty { map[name, default: []].append(position) }
        }
        return map
    }

    /// Merges an inference BatchNormalization into the Conv before it when the Conv's weights
    /// and the statistics are constants and nothing else reads the Conv's output.
    private static func foldBatchNorm(_ nodes: [Pending], _ constants: inout [String: Tensor], keep: Set<String>) throws -> [Pending] {
        var nodes = nodes
        var removed = Set<Int>()
        let readers = readers(nodes)
        var producer: [String: Int] = [:]
        for (position, item) in nodes.enumerated() { for name in item.outputs where !name.isEmpty { producer[name] = position } }
        for (position, bn) in nodes.enumerated() where bn.node.opType == "BatchNormalization" && bn.node.domain.isEmpty {
            guard bn.outputs.filter({ !$0.isEmpty }).count == 1, bn.inputs.count >= 5,
                  let convPosition = producer[bn.inputs[0]], !removed.contains(convPosition) else { continue }
            let conv = nodes[convPosition]
            guard conv.node.opType == "Conv", conv.node.domain.isEmpty, conv.activation == nil, conv.outputs.count == 1,
                  readers[conv.outputs[0]] == [position], !keep.contains(conv.outputs[0]),
                  conv.inputs.count >= 2, let weight = constants[conv.inputs[1]], weight.kind == .float,
                  let params = Optional(bn.inputs[1...4].compactMap({ constants[$0] })), params.count == 4,
                  params.allSatisfy({ $0.kind == .float && $0.count == weight.shape[0] }),
                  (try? bn.node.int("training_mode", default: 0)) == 0,
                  let epsilon = try? bn.node.float("epsilon", default: 1e-5) else { continue }
            let filters = weight.shape[0], perFilter = weight.count / max(filters, 1)
            let bias = conv.inputs.count > 2 && !conv.inputs[2].isEmpty ? constants[conv.inputs[2]] : nil
            if conv.inputs.count > 2 && !conv.inputs[2].isEmpty && bias == nil { continue }
            let (a, b) = NormalizationKernels.batchNormAffine(scale: params[0], bias: params[1], mean: params[2], variance: params[3], epsilon: epsilon)
            let newWeight = try Tensor(uninitialized: weight.elementType, shape: weight.shape)
            let newBias = try Tensor(uninitialized: .float32, shape: [filters])
            for f in 0..<filters {
                for k in 0..<perFilter { newWeight.f[f * perFilter + k] = weight.f[f * perFilter + k] * a[f] }
                newBias.f[f] = (bias?.f[f] ?? 0) * a[f] + b[f]
            }
            let prefix = "\(conv.node.displayName)/folded"
            constants["\(prefix)/W"] = newWeight
            constants["\(prefix)/B"] = newBias
            nodes[convPosition].inputs = [conv.inputs[0], "\(prefix)/W", "\(prefix)/B"]
            nodes[convPosition].outputs = [bn.outputs[0]]
            nodes[convPosition].absorb(bn)
            removed.insert(position)
        }
        return nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// Marks float activations, and Mul/Add by a scalar constant, as unary steps that can merge
    /// with each other and fuse into the producer's kernel.
    private static func recognizeUnary(_ nodes: [Pending], _ constants: [String: Tensor], opset: Int, facts: ShapeTable?) -> [Pending] {
        var nodes = nodes
        for position in nodes.indices where nodes[position].unary == nil && nodes[position].node.domain.isEmpty {
            let item = nodes[position]
            guard item.outputs.count == 1, let x = item.inputs.first else { continue }
            if ActivationKernels.names.contains(item.node.opType) || item.node.opType == "Clip" {
                guard constants[x] == nil, facts?.facts[x]?.type.elementType == .float32 else { continue }
                nodes[position].unary = try? Activation.of(item.node, opset: opset, constants: item.inputs.map { constants[$0] })
                if nodes[position].unary != nil { nodes[position].inputs = [x] }
                continue
            }
            guard ["Mul", "Add"].contains(item.node.opType), item.inputs.count == 2 else { continue }
            // The scalar operand may come first or second; the result keeps x's shape when x's rank covers it.
            for (operand, other) in [(item.inputs[1], item.inputs[0]), (item.inputs[0], item.inputs[1])] {
                guard let c = constants[operand], c.kind == .float, c.count == 1, constants[other] == nil,
                      let rank = facts?.facts[other]?.type.rank, rank >= c.rank,
                      facts?.facts[other]?.type.elementType == .float32 else { continue }
                nodes[position].unary = item.node.opType == "Mul" ? .affine(scale: c.f[0], bias: 0) : .affine(scale: 1, bias: c.f[0])
                nodes[position].inputs = [other]
                break
            }
        }
        return nodes
    }

    /// Joins a unary step into the unary step that reads its output, when nothing else does.
    private static func mergeUnary(_ nodes: [Pending], keep: Set<String>) -> [Pending] {
        var nodes = nodes
        var removed = Set<Int>()
        let readers = readers(nodes)
        for position in nodes.indices {
            guard let first = nodes[position].unary, nodes[position].outputs.count == 1,
                  !keep.contains(nodes[position].outputs[0]),
                  let list = readers[nodes[position].outputs[0]], list.count == 1,
                  let second = nodes[list[0]].unary, nodes[list[0]].inputs == nodes[position].outputs else { continue }
            let next = list[0]
            nodes[next].unary = Activation.combine(first, second)
            nodes[next].inputs = nodes[position].inputs
            nodes[next].covers = nodes[position].covers + nodes[next].covers
            removed.insert(position)
        }
        return nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// Runs a following activation inside Conv, ConvTranspose, Gemm and MatMul kernels.
    private static func fuseActivations(_ nodes: [Pending], _ constants: [String: Tensor], opset: Int, keep: Set<String>) throws -> [Pending] {
        var nodes = nodes
        var removed = Set<Int>()
        let readers = readers(nodes)
        let fusable: Set<String> = ["Conv", "ConvTranspose", "Gemm", "MatMul"]
        for position in nodes.indices where fusable.contains(nodes[position].node.opType) && nodes[position].node.domain.isEmpty {
            let item = nodes[position]
            guard item.outputs.count == 1, !keep.contains(item.outputs[0]),
                  let consumers = readers[item.outputs[0]], consumers.count == 1 else { continue }
            let next = nodes[consumers[0]]
            guard next.inputs.first == item.outputs[0], next.outputs.count == 1,
                  let activation = next.unary ?? (try? Activation.of(next.node, opset: opset, constants: next.inputs.map { constants[$0] })) else { continue }
            nodes[position].activation = activation
            nodes[position].outputs = next.outputs
            nodes[position].absorb(next)
            removed.insert(consumers[0])
        }
        return nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }
}
