import CBLAS
import Foundation
import LopperModel

/// How an `Executor` runs.
public struct ExecutorOptions: Sendable {
    /// Intra-op threads for kernels and OpenBLAS; all cores by default.
    public var threads: Int
    /// Constant folding, Conv+BatchNormalization folding and activation fusion at load time.
    public var optimize: Bool
    /// The largest single tensor this executor allocates, when smaller than `AllocationLimit.bytes`.
    public var maxTensorBytes: Int?

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, optimize: Bool = true, maxTensorBytes: Int? = nil) {
        self.threads = max(1, threads)
        self.optimize = optimize
        self.maxTensorBytes = maxTensorBytes
    }
}

/// Runs a model on the CPU in float32.
///
/// Loading checks that every operator has a kernel (one error lists every unsupported node),
/// folds what is constant, fuses, and plans when each intermediate value is released. `run` may
/// be called any number of times, but not concurrently from several threads.
public final class Executor: @unchecked Sendable {
    /// The inputs a caller supplies, as the model declares them.
    public let inputs: [ValueInfo]
    public let outputNames: [String]
    /// The outputs' declared types, where declared.
    let outputTypes: [TensorType?]
    public let options: ExecutorOptions
    let opset: Int
    let path: String?
    let plan: Plan
    private let pool = BufferPool()

    public convenience init(path: String, options: ExecutorOptions = ExecutorOptions()) throws {
        try self.init(model: Model.load(path: path), options: options)
    }

    public init(model: Model, options: ExecutorOptions = ExecutorOptions()) throws {
        self.options = options
        opset = model.opset() ?? 1
        path = model.path
        inputs = model.graph.feedInputs
        outputNames = model.graph.outputs.map(\.name)
        outputTypes = model.graph.outputs.map(\.type)
        do {
            try Executor.checkSupport(model.graph, opset: opset)
            let opset = self.opset
            plan = try AllocationLimit.$override.withValue(options.maxTensorBytes) {
                try Plan(model: model, opset: opset, optimize: options.optimize)
            }
        } catch let error as ModelError {
            throw error.inFile(model.path ?? "model")
        }
    }

    /// Number of nodes that run (after folding and fusion).
    public var stepCount: Int { plan.steps.count }

    /// Throws one error naming every node whose operator (in this opset) has no kernel.
    /// Graph inputs and outputs that are not tensors (a ZipMap's sequence of maps) are refused
    /// first, naming the value and the node that makes it.
    static func checkSupport(_ graph: Graph, opset: Int) throws {
        for value in graph.inputs + graph.outputs {
            guard let kind = value.nonTensorKind else { continue }
            let maker = graph.producer(of: value.name).map { ", made by node \($0.label)" } ?? ""
            throw ModelError("'\(value.name)' is \(kind)\(maker); the runtime computes with tensors only (for a scikit-learn classifier, export without ZipMap or score the probabilities tensor before it)")
        }
        var missing: [String: [String]] = [:]
        func collect(_ graph: Graph, scope: String) {
            for node in graph.nodes {
                if KernelRegistry.factory(for: node, opset: opset) == nil {
                    missing[node.qualifiedOpType, default: []].append(scope + node.label)
                }
                for attribute in Graph.subgraphAttributes(of: node) {
                    // A body that does not load is reported when its node's kernel is built.
                    if let body = try? graph.subgraph(of: node, attribute: attribute) {
                        collect(body, scope: "\(scope)\(node.label) \(attribute) ")
                    }
                }
            }
        }
        collect(graph, scope: "")
        guard !missing.isEmpty else { return }
        let count = missing.values.reduce(0) { $0 + $1.count }
        let list = missing.keys.sorted().map { "\($0) at \(missing[$0]!.joined(separator: ", "))" }
        throw ModelError("\(count) node\(count == 1 ? " uses an operator" : "s use operators") the runtime does not support (opset \(opset)): \(list.joined(separator: "; "))")
    }

    /// Runs the model. Every declared input must be given, with its declared element type and
    /// with the declared size on every axis that has a fixed size.
    public func run(_ feeds: [String: Tensor]) throws -> [String: Tensor] {
        try AllocationLimit.$override.withValue(options.maxTensorBytes) {
            try BufferPool.$current.withValue(pool) { try execute(feeds, timing: nil) }
        }
    }

    /// Runs the model and reports how long each executed step took, by the name of the node it
    /// runs (fused nodes run inside their producer's step), in execution order.
    public func timedRun(_ feeds: [String: Tensor]) throws -> [(node: String, seconds: Double)] {
        var times: [(node: String, seconds: Double)] = []
        times.reserveCapacity(plan.steps.count)
        _ = try AllocationLimit.$override.withValue(options.maxTensorBytes) {
            try BufferPool.$current.withValue(pool) { try execute(feeds) { times.append(($0, $1)) } }
        }
        return times
    }

    /// Runs a control-flow body inside a run of the enclosing graph, on that run's threads.
    func run(_ feeds: [String: Tensor], in context: ExecutionContext) throws -> [String: Tensor] {
        try execute(feeds, context: context, timing: nil)
    }

    private func execute(_ feeds: [String: Tensor], timing: ((String, Double) -> Void)?) throws -> [String: Tensor] {
        // Kernels split work across threads themselves and call OpenBLAS single-threaded.
        openblas_set_num_threads(1)
        return try execute(feeds, context: ExecutionContext(threads: options.threads), timing: timing)
    }

    private func execute(_ feeds: [String: Tensor], context: ExecutionContext, timing: ((String, Double) -> Void)?) throws -> [String: Tensor] {
        var values = plan.initialValues
        for input in inputs {
            guard var tensor = feeds[input.name] else {
                throw ModelError("input '\(input.name)' is missing; the model's inputs are \(inputs.map(\.name))", file: path)
            }
            try check(tensor, against: input)
            if let type = input.type?.elementType, type != tensor.elementType { tensor = try Cast.convert(tensor, to: type) }
            if let slot = plan.slots[input.name] { values[slot] = tensor }
        }
        for name in feeds.keys where !inputs.contains(where: { $0.name == name }) {
            throw ModelError("'\(name)' is not an input of the model; its inputs are \(inputs.map(\.name))", file: path)
        }
        let trace = ProcessInfo.processInfo.environment["LOPPER_TRACE"] != nil
        let timed = trace || timing != nil
        let clock = RunClock(threads: context.threads)
        // Results of Concat steps whose parts are written in place, made when the first part is.
        var gathered: [Int: Tensor] = [:]
        func result(ofConcat position: Int) throws -> Tensor {
            if let existing = gathered[position] { return existing }
            let made = try destination(of: position) ?? Tensor(uninitialized: .float32, shape: plan.steps[position].gatheredShape!)
            gathered[position] = made
            return made
        }
        func destination(of position: Int) throws -> Tensor? {
            guard let placement = plan.steps[position].placement else { return nil }
            return try result(ofConcat: placement.concat).view(from: placement.elements, shape: placement.shape)
        }
        for (position, step) in plan.steps.enumerated() {
            let arguments = step.inputs.map { $0.flatMap { values[$0] } }
            let start = timed ? clock.now() : 0
            let results: [Tensor]
            do {
                var stepContext = context
                if step.gatheredShape != nil {
                    stepContext.destination = try result(ofConcat: position)
                    gathered[position] = nil
                } else if step.placement != nil {
                    stepContext.destination = try destination(of: position)
                }
                results = try step.kernel.run(arguments, stepContext)
            } catch let error as ModelError {
                throw ModelError(error.message, file: path, node: step.node.label,
                                 field: error.field.map { "opset \(opset), \($0)" } ?? "opset \(opset)")
            }
            for (position, slot) in step.outputs.enumerated() {
                guard let slot else { continue }
                guard position < results.count else {
                    throw ModelError("the kernel produced \(results.count) outputs, the node has \(step.outputs.count)", file: path, node: step.node.label)
                }
                values[slot] = results[position]
            }
            if timed {
                let seconds = clock.now() - start
                timing?(step.node.displayName, seconds)
                if trace {
                    FileHandle.standardError.write(Data("\(step.node.label) -> \(results.map(\.description).joined(separator: ", ")) \(String(format: "%.3f", seconds * 1e3)) ms\n".utf8))
                }
            }
            for slot in step.release { values[slot] = nil }
        }
        var result: [String: Tensor] = [:]
        for name in outputNames {
            guard let slot = plan.slots[name], let value = values[slot] else {
                throw ModelError("output '\(name)' was not computed", file: path)
            }
            result[name] = value
        }
        return result
    }

    private func check(_ tensor: Tensor, against input: ValueInfo) throws {
        guard let type = input.type else { return }
        if let declared = type.elementType, declared.storageKind != tensor.kind {
            throw ModelError("input '\(input.name)' must be \(declared), found \(tensor.elementType)", file: path)
        }
        guard let dims = type.shape else { return }
        let mismatch = dims.count != tensor.rank || zip(dims, tensor.shape).contains { dim, size in dim.value.map { $0 != size } ?? false }
        if mismatch {
            throw ModelError("input '\(input.name)' has shape \(tensor.shape), but the model declares [\(dims.map(\.description).joined(separator: ", "))]", file: path)
        }
    }
}
