import Foundation
import LopperModel
import ONNXProto

/// Builds small float32 models node by node, for tests.
public struct ModelBuilder {
    public var graph = Onnx_GraphProto()
    public var opset: Int64

    public init(opset: Int64 = 17) {
        self.opset = opset
        graph.name = "test"
    }

    /// A float32 graph input; string dimensions are symbolic.
    public mutating func input(_ name: String, _ dims: [Any]) {
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = 1
        tensor.shape.dim = dims.map { dim in
            var d = Onnx_TensorShapeProto.Dimension()
            if let value = dim as? Int { d.dimValue = Int64(value) } else { d.dimParam = "\(dim)" }
            return d
        }
        graph.input.append(Onnx_ValueInfoProto.with { $0.name = name; $0.type.tensorType = tensor })
    }

    public mutating func output(_ name: String) {
        graph.output.append(Onnx_ValueInfoProto.with { $0.name = name })
    }

    public mutating func constant(_ name: String, floats: [Float], shape: [Int]) {
        graph.initializer.append(Onnx_TensorProto.with {
            $0.name = name
            $0.dataType = 1
            $0.dims = shape.map(Int64.init)
            $0.floatData = floats
        })
    }

    public mutating func constant(_ name: String, ints: [Int64], shape: [Int]) {
        graph.initializer.append(Onnx_TensorProto.with {
            $0.name = name
            $0.dataType = 7
            $0.dims = shape.map(Int64.init)
            $0.int64Data = ints
        })
    }

    public mutating func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "", domain: String = "",
                       ints: [String: Int] = [:], floats: [String: Float] = [:], intLists: [String: [Int]] = [:],
                       strings: [String: [String]] = [:], subgraphs: [String: ModelBuilder] = [:]) {
        graph.node.append(Onnx_NodeProto.with { node in
            node.opType = op
            node.name = name
            node.domain = domain
            node.input = inputs
            node.output = outputs
            for (key, value) in ints.sorted(by: { $0.key < $1.key }) {
                node.attribute.append(Onnx_AttributeProto.with { $0.name = key; $0.type = .int; $0.i = Int64(value) })
            }
            for (key, values) in intLists.sorted(by: { $0.key < $1.key }) {
                node.attribute.append(Onnx_AttributeProto.with { $0.name = key; $0.type = .ints; $0.ints = values.map(Int64.init) })
            }
            for (key, value) in floats.sorted(by: { $0.key < $1.key }) {
                node.attribute.append(Onnx_AttributeProto.with { $0.name = key; $0.type = .float; $0.f = value })
            }
            for (key, values) in strings.sorted(by: { $0.key < $1.key }) {
                node.attribute.append(Onnx_AttributeProto.with { $0.name = key; $0.type = .strings; $0.strings = values.map { Data($0.utf8) } })
            }
            for (key, body) in subgraphs.sorted(by: { $0.key < $1.key }) {
                node.attribute.append(Onnx_AttributeProto.with { $0.name = key; $0.type = .graph; $0.g = body.graph })
            }
        })
    }

    public func model() throws -> Model {
        let proto = Onnx_ModelProto.with {
            $0.irVersion = 8
            $0.opsetImport = [Onnx_OperatorSetIdProto.with { $0.version = opset }]
            $0.graph = graph
        }
        return try Model(serialized: try proto.serializedData())
    }
}
