import LopperModel

/// Builds a model's prune groups: which channels of which tensors must be removed together.
///
/// Channels are traced forward from every layer that defines them (Conv, ConvTranspose, Gemm,
/// MatMul by a constant) through the operators in `ChannelRules`. Whatever reaches a graph
/// output (but a recurrent state carried from call to call), an operator without a rule, or a
/// reshape we cannot rewrite is marked not prunable, with the reason: Lopper never prunes what
/// it cannot prove correct.
public enum DependencyAnalysis {
    public static func groups(of model: Model) throws -> [PruneGroup] { try analyze(model).groups }

    /// The groups, and which group channels each traced activation carries on its channel axis.
    public static func analyze(_ model: Model) throws -> ChannelAnalysis {
        var inputShapes: [String: [Dim]] = [:]
        for input in model.graph.feedInputs {
            guard var shape = input.type?.shape else { continue }
            // Channel structure does not depend on batch or spatial size; any consistent size will do.
            if let first = shape.first, first.value == nil { shape[0] = .value(1) }
            inputShapes[input.name] = shape
        }
        let shapes = try ShapeInference.run(model, inputShapes: inputShapes)
        var builder = GroupBuilder(graph: model.graph, shapes: shapes, opset: model.opset() ?? 1)
        for node in model.graph.nodes {
            if node.domain.isEmpty, let rule = ChannelRules.table[node.opType] {
                do { try rule(&builder, node) } catch let error as ModelError where error.node == nil {
                    throw node.error(error.message, field: error.field)
                }
            } else {
                builder.blockInputs(of: node, because: "reaches \(node.label), which Lopper cannot prune through")
            }
        }
        for output in model.graph.outputs {
            guard let layout = builder.layouts[output.name] else { continue }
            if ChannelRules.isCarriedState(output.name, in: model.graph), let producer = model.graph.producer(of: output.name) {
                builder.record(.stateOutput, producer, output.name, axis: layout.axis, layout: layout)
                builder.layouts[output.name] = nil  // the output keeps its width
            } else {
                builder.block(layout, because: "reaches graph output '\(output.name)'")
            }
        }
        return builder.analysis()
    }
}
