import Foundation
import LopperModel
import ONNXProto

/// Builds one-node models for rule-level tests: input `x`, output `y`, weights and integer
/// constants as initializers (inputs follow `x` in the order given).
enum TinyModel {
    static func single(_ op: String, input: [Int], symbolicInput: [Dim]? = nil, weights: KeyValuePairs<String, [Int]> = [:],
                       constants: KeyValuePairs<String, [Int]> = [:], attributes: [Onnx_AttributeProto] = [],
                       opset: Int64 = 18) throws -> Model {
        var graph = Onnx_GraphProto()
        graph.name = "tiny"
        let inputType = TensorType(elementType: .float32, shape: symbolicInput ?? input.map { .value($0) }).proto
        graph.input = [Onnx_ValueInfoProto.with { $0.name = "x"; $0.type = inputType }]
        graph.output = [Onnx_ValueInfoProto.with { $0.name = "y" }]
        var node = Onnx_NodeProto()
        node.opType = op
        node.name = op.lowercased()
        node.input = ["x"]
        node.output = ["y"]
        node.attribute = attributes
        for (name, shape) in weights {
            graph.initializer.append(Onnx_TensorProto.with {
                $0.name = name
                $0.dataType = 1
                $0.dims = shape.map(Int64.init)
                $0.rawData = Data(count: shape.reduce(1, *) * 4)
            })
            node.input.append(name)
        }
        for (name, values) in constants {
            graph.initializer.append(Onnx_TensorProto.with {
                $0.name = name
                $0.dataType = 7
                $0.dims = [Int64(values.count)]
                $0.int64Data = values.map(Int64.init)
            })
            node.input.append(name)
        }
        graph.node = [node]
        let model = Onnx_ModelProto.with {
            $0.irVersion = 8
            $0.opsetImport = [Onnx_OperatorSetIdProto.with { $0.version = opset }]
            $0.graph = graph
        }
        return try Model(serialized: try model.serializedData())
    }
}

extension Onnx_AttributeProto {
    static func ints(_ name: String, _ values: [Int]) -> Self {
        .with { $0.name = name; $0.type = .ints; $0.ints = values.map(Int64.init) }
    }
    static func int(_ name: String, _ value: Int) -> Self {
        .with { $0.name = name; $0.type = .int; $0.i = Int64(value) }
    }
    static func string(_ name: String, _ value: String) -> Self {
        .with { $0.name = name; $0.type = .string; $0.s = Data(value.utf8) }
    }
}
