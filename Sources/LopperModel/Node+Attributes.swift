import Foundation
import ONNXProto

/// Typed attribute access. A present attribute of the wrong type is an error naming the node
/// and the attribute; an absent one gives `nil` or the spec's default.
extension Node {
    public func attribute(_ name: String) -> Onnx_AttributeProto? {
        proto.attribute.first { $0.name == name }
    }

    public func hasAttribute(_ name: String) -> Bool { attribute(name) != nil }

    public func int(_ name: String) throws -> Int? {
        try typed(name, .int).map { Int($0.i) }
    }

    public func int(_ name: String, default value: Int) throws -> Int {
        try int(name) ?? value
    }

    public func float(_ name: String, default value: Float) throws -> Float {
        try typed(name, .float)?.f ?? value
    }

    public func ints(_ name: String) throws -> [Int]? {
        try typed(name, .ints).map { $0.ints.map { Int($0) } }
    }

    public func floats(_ name: String) throws -> [Float]? {
        try typed(name, .floats)?.floats
    }

    public func string(_ name: String) throws -> String? {
        try typed(name, .string).map { String(decoding: $0.s, as: UTF8.self) }
    }

    public func string(_ name: String, default value: String) throws -> String {
        try string(name) ?? value
    }

    public func strings(_ name: String) throws -> [String]? {
        try typed(name, .strings).map { $0.strings.map { String(decoding: $0, as: UTF8.self) } }
    }

    public func tensor(_ name: String) throws -> Onnx_TensorProto? {
        try typed(name, .tensor)?.t
    }

    private func typed(_ name: String, _ expected: Onnx_AttributeProto.AttributeType) throws -> Onnx_AttributeProto? {
        guard let attribute = attribute(name) else { return nil }
        let actual = attribute.hasType && attribute.type != .undefined ? attribute.type : Self.inferredType(attribute)
        guard actual == expected else {
            throw error("must be \(Self.typeName(expected)), found \(Self.typeName(actual))", field: "attribute '\(name)'")
        }
        return attribute
    }

    /// Old exporters leave `type` unset; the field that holds a value tells it.
    private static func inferredType(_ a: Onnx_AttributeProto) -> Onnx_AttributeProto.AttributeType {
        if a.hasF { return .float }
        if a.hasI { return .int }
        if a.hasS { return .string }
        if a.hasT { return .tensor }
        if a.hasG { return .graph }
        if !a.floats.isEmpty { return .floats }
        if !a.ints.isEmpty { return .ints }
        if !a.strings.isEmpty { return .strings }
        if !a.tensors.isEmpty { return .tensors }
        if !a.graphs.isEmpty { return .graphs }
        return .undefined
    }

    private static func typeName(_ type: Onnx_AttributeProto.AttributeType) -> String {
        switch type {
        case .undefined: return "UNDEFINED"
        case .float: return "FLOAT"
        case .int: return "INT"
        case .string: return "STRING"
        case .tensor: return "TENSOR"
        case .graph: return "GRAPH"
        case .sparseTensor: return "SPARSE_TENSOR"
        case .typeProto: return "TYPE_PROTO"
        case .floats: return "FLOATS"
        case .ints: return "INTS"
        case .strings: return "STRINGS"
        case .tensors: return "TENSORS"
        case .graphs: return "GRAPHS"
        case .sparseTensors: return "SPARSE_TENSORS"
        case .typeProtos: return "TYPE_PROTOS"
        }
    }
}

extension Node {
    /// Sets (or replaces) an INTS attribute.
    public mutating func setAttribute(_ name: String, ints values: [Int]) {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .ints
        attribute.ints = values.map { Int64($0) }
        removeAttribute(name)
        proto.attribute.append(attribute)
    }

    /// Sets (or replaces) an INT attribute.
    public mutating func setAttribute(_ name: String, int value: Int) {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .int
        attribute.i = Int64(value)
        removeAttribute(name)
        proto.attribute.append(attribute)
    }

    public mutating func removeAttribute(_ name: String) {
        proto.attribute.removeAll { $0.name == name }
    }
}
