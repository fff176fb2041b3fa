import LopperModel

/// How Lopper's runtime executes a model, from the same load-time rewrites as `Executor` but
/// without building kernels: the model's nodes each executed step runs (a folded
/// BatchNormalization, an exporter's SiLU, hard-swish or GELU chain, merged unary chains and the
/// activation fused into its Conv, Gemm or MatMul join the step), and the values folded at load.
/// The cost model cuts a model into these steps, so its step count is the runtime's.
public struct ExecutionSchedule {
    /// Per executed step, in execution order: the model's nodes it runs, in graph order.
    public let steps: [[Node]]
    /// Initializers and every value computed at load (constants, shape arithmetic).
    public let constants: [String: Tensor]

    /// - Parameter inputShapes: sizes for graph inputs with symbolic dimensions; the shape
    ///   arithmetic they decide is then folded too.
    public init(model: Model, inputShapes: [String: [Dim]] = [:]) throws {
        var constants = try Plan.initializers(of: model.graph)
        let facts = try? ShapeInference.run(model, inputShapes: inputShapes)
        let pending = try Plan.optimize(model.graph.nodes.map { Plan.Pending($0) }, &constants, model: model,
                                        opset: model.opset() ?? 1, facts: facts)
        steps = pending.map { $0.covers.sorted { $0.index < $1.index } }
        self.constants = constants
    }
}
