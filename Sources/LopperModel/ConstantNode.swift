import Foundation
import ONNXProto

/// The value of an ONNX `Constant` node, from whichever attribute holds it.
enum ConstantNode {
    static func value(of node: Node, external: ExternalDataFiles?) throws -> TensorData {
        if let tensor = try node.tensor("value") {
            do { return try TensorData(decoding: tensor, external: external) } catch let error as ModelError {
                throw node.error(error.message, field: "attribute 'value'")
            }
        }
        if node.hasAttribute("value_float") {
            return TensorData(floats: [try node.float("value_float", default: 0)], shape: [])
        }
        if let values = try node.floats("value_floats") {
            return TensorData(floats: values, shape: [values.count])
        }
        if let value = try node.int("value_int") {
            return TensorData(int64s: [Int64(value)], shape: [])
        }
        if let values = try node.ints("value_ints") {
            return TensorData(int64s: values.map { Int64($0) }, shape: [values.count])
        }
        if let value = try node.string("value_string") {
            return try TensorData(strings: [Data(value.utf8)], shape: [])
        }
        if node.hasAttribute("sparse_value") {
            throw node.error("sparse constants are not supported", field: "attribute 'sparse_value'")
        }
        throw node.error("has no value attribute")
    }
}
