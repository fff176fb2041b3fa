import Foundation
import LopperModel
import LopperRuntime
import ONNXProto

/// Each step of a model as an ONNX model of its own, so that another runtime can time what the
/// cost model prices (`Docs/bench/ort_latency_table.py` times them in ONNX Runtime and writes a
/// latency table): the step's nodes; the weights and load-time constants it reads as
/// initializers; its activation inputs as graph inputs at the costed shapes; its outputs.
public enum StepModels {
    /// One written step: its latency-table signature, the file, and the table's size columns.
    public struct Entry: Codable, Sendable, Equatable {
        public var signature: String
        public var file: String
        public var opClass: OpClass
        public var ops: Double
        public var bytes: Double

        enum CodingKeys: String, CodingKey {
            case signature, file, ops, bytes
            case opClass = "op_class"
        }
    }

    /// A whole model written beside the step models, with where each of its steps is, so that a
    /// runtime's per-node profile of the whole run can be charged to the steps
    /// (`ort_latency_table.py --in-place`): a step is charged what the runtime's nodes that write
    /// its values took.
    public struct WholeModel: Codable, Sendable, Equatable {
        public struct Placement: Codable, Sendable, Equatable {
            public var signature: String
            public var opClass: OpClass
            public var ops: Double
            public var bytes: Double
            /// The values the step's nodes write, and the nodes' names.
            public var values: [String]
            public var nodes: [String]

            enum CodingKeys: String, CodingKey {
                case signature, ops, bytes, values, nodes
                case opClass = "op_class"
            }
        }

        public var label: String
        public var file: String
        public var inputShapes: [String: [Int]]
        /// The steps that cost something (views are left out), in execution order.
        public var steps: [Placement]

        enum CodingKeys: String, CodingKey {
            case label, file, steps
            case inputShapes = "input_shapes"
        }
    }

    /// Writes `model`'s steps whose signature is not in `written` (views cost nothing and are
    /// left out) to `folder` as `PREFIX-N.onnx`, adds their signatures to `written`, and saves
    /// the model whole as `PREFIX.onnx`, saying where its steps are.
    public static func write(_ model: Model, label: String, inputShapes: [String: [Int]] = [:], profile: HardwareProfile,
                             to folder: String, prefix: String, skipping written: inout Set<String>) throws -> (steps: [Entry], whole: WholeModel) {
        let graph = try CostGraph(model, inputShapes: inputShapes)
        let report = CostModel(graph: graph, profile: profile).report()
        let folded = try ExecutionSchedule(model: model, inputShapes: graph.inputShapes.mapValues { $0.map(Dim.value) }).constants
        let placements = zip(graph.steps, report.steps).filter { !$0.0.isView }.map { step, cost in
            WholeModel.Placement(signature: cost.signature, opClass: step.opClass, ops: cost.ops, bytes: Double(cost.bytesMoved),
                                 values: step.nodes.flatMap { graph.nodes[$0].outputs }.filter { !$0.isEmpty },
                                 nodes: step.nodes.map { graph.nodes[$0].name })
        }
        let wholeFile = (folder as NSString).appendingPathComponent("\(prefix).onnx")
        try model.save(to: wholeFile)
        let whole = WholeModel(label: label, file: wholeFile, inputShapes: graph.inputShapes, steps: placements)
        var entries: [Entry] = []
        for (step, cost) in zip(graph.steps, report.steps) where !step.isView && written.insert(cost.signature).inserted {
            let file = (folder as NSString).appendingPathComponent("\(prefix)-\(entries.count).onnx")
            try stepModel(step, of: graph, folded: folded, opsets: model.opsets, irVersion: model.irVersion).serializedData()
                .write(to: URL(fileURLWithPath: file))
            entries.append(Entry(signature: cost.signature, file: file, opClass: step.opClass, ops: cost.ops, bytes: Double(cost.bytesMoved)))
        }
        return (entries, whole)
    }

    static func stepModel(_ step: CostGraph.Step, of graph: CostGraph, folded: [String: Tensor],
                          opsets: [(domain: String, version: Int)], irVersion: Int) throws -> Onnx_ModelProto {
        func info(_ v: Int) -> Onnx_ValueInfoProto {
            ValueInfo(name: graph.values[v].name, type: TensorType(graph.values[v].elementType, graph.values[v].shape)).proto
        }
        var proto = Onnx_GraphProto()
        proto.name = step.name
        proto.node = step.nodes.map { graph.nodes[$0].proto }
        proto.input = step.inputs.map(info)
        proto.output = step.outputs.map(info)
        for w in step.weights {
            let name = graph.values[w].name
            guard let value = folded[name] else {
                throw ModelError("step '\(step.name)' reads '\(name)', which is neither stored in the model nor computed at load",
                                 node: step.name)
            }
            proto.initializer.append(value.tensorData().encoded(over: Onnx_TensorProto.with { $0.name = name }))
        }
        var model = Onnx_ModelProto()
        model.irVersion = Int64(irVersion)
        model.producerName = "lopper measure --step-models"
        model.opsetImport = opsets.map { opset in Onnx_OperatorSetIdProto.with { $0.domain = opset.domain; $0.version = Int64(opset.version) } }
        model.graph = proto
        return model
    }
}
