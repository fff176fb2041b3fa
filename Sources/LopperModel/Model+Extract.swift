import Foundation
import ONNXProto

extension Model {
    /// A model of its own made of some of this model's nodes: `inputs` become graph inputs,
    /// `constants` initializers, and `outputs` graph outputs. Opsets and IR version are kept.
    /// What `lopper measure` times one step with.
    public func extract(nodes positions: [Int], inputs: [(name: String, type: TensorType)],
                        constants: [String: TensorData], outputs: [String]) throws -> Model {
        var graph = Onnx_GraphProto()
        graph.name = "extract"
        graph.node = positions.map { self.graph.nodes[$0].proto }
        graph.input = inputs.map { ValueInfo(name: $0.name, type: $0.type).proto }
        graph.initializer = constants.sorted { $0.key < $1.key }.map { name, data in
            data.encoded(over: Onnx_TensorProto.with { $0.name = name })
        }
        graph.output = outputs.map { name in Onnx_ValueInfoProto.with { $0.name = name } }
        var model = Onnx_ModelProto()
        model.irVersion = Int64(irVersion)
        model.opsetImport = proto.opsetImport
        model.graph = graph
        return try Model(serialized: try model.serializedData())
    }
}
