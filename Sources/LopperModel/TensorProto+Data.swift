import Foundation
import ONNXProto

extension TensorData {
    /// Decodes a `TensorProto` whichever way its data is stored: `raw_data`, the typed fields
    /// (`float_data`, `int32_data` …, as the IR spec assigns them per type) or external data.
    init(decoding proto: Onnx_TensorProto, external: ExternalDataFiles?) throws {
        let type = try ElementType(onnxCode: proto.dataType)
        guard !proto.hasSegment else { throw ModelError("segmented tensors are not supported") }
        let shape = proto.dims.map { Int($0) }
        let count = try TensorData.elementCount(shape)

        if type == .string {
            try self.init(strings: proto.stringData, shape: shape)
            return
        }
        if proto.dataLocation == .external {
            guard let external else { throw ModelError("has external data but the model was not loaded from a file") }
            try self.init(elementType: type, shape: shape, bytes: try external.bytes(for: proto))
            return
        }
        if proto.hasRawData {
            try self.init(elementType: type, shape: shape, bytes: proto.rawData)
            return
        }
        let bytes: Data
        switch type {
        case .float32: bytes = try Self.pack(proto.floatData, count, "float_data")
        case .float64: bytes = try Self.pack(proto.doubleData, count, "double_data")
        case .int64: bytes = try Self.pack(proto.int64Data, count, "int64_data")
        case .uint64: bytes = try Self.pack(proto.uint64Data, count, "uint64_data")
        case .uint32: bytes = try Self.pack(proto.uint64Data.map { UInt32(truncatingIfNeeded: $0) }, count, "uint64_data")
        case .int32: bytes = try Self.pack(proto.int32Data, count, "int32_data")
        case .int16: bytes = try Self.pack(proto.int32Data.map { Int16(truncatingIfNeeded: $0) }, count, "int32_data")
        case .uint16, .float16, .bfloat16:
            bytes = try Self.pack(proto.int32Data.map { UInt16(truncatingIfNeeded: $0) }, count, "int32_data")
        case .int8: bytes = try Self.pack(proto.int32Data.map { Int8(truncatingIfNeeded: $0) }, count, "int32_data")
        case .uint8, .bool: bytes = try Self.pack(proto.int32Data.map { UInt8(truncatingIfNeeded: $0) }, count, "int32_data")
        case .string: fatalError("handled above")
        }
        try self.init(elementType: type, shape: shape, bytes: bytes)
    }

    /// Decodes an inline `TensorProto`, such as a tensor attribute.
    public init(proto: Onnx_TensorProto) throws {
        try self.init(decoding: proto, external: nil)
    }

    /// Decodes a serialized `TensorProto` (the `.pb` files of ONNX test data).
    public init(serializedTensor data: Data) throws {
        let proto: Onnx_TensorProto
        do { proto = try Onnx_TensorProto(serializedBytes: data) } catch {
            throw ModelError("is not a serialized TensorProto (\(error))")
        }
        try self.init(decoding: proto, external: nil)
    }

    private static func pack<T>(_ values: [T], _ count: Int, _ field: String) throws -> Data {
        guard values.count == count else {
            throw ModelError("\(field) holds \(values.count) values, but the shape needs \(count)")
        }
        return values.withUnsafeBytes { Data($0) }
    }

    /// `template` with its data fields replaced by this tensor stored inline as `raw_data`.
    /// Name, doc string, metadata and unknown fields of the template are kept.
    public func encoded(over template: Onnx_TensorProto = Onnx_TensorProto()) -> Onnx_TensorProto {
        var proto = template.clearingData()
        proto.dims = shape.map { Int64($0) }
        proto.dataType = elementType.rawValue
        if elementType == .string {
            proto.stringData = strings
        } else {
            proto.rawData = bytes.startIndex == 0 ? bytes : Data(bytes)
        }
        return proto
    }
}

extension Onnx_TensorProto {
    /// The tensor without any of its data fields (inline, typed or external).
    func clearingData() -> Onnx_TensorProto {
        var proto = self
        proto.floatData = []
        proto.int32Data = []
        proto.int64Data = []
        proto.doubleData = []
        proto.uint64Data = []
        proto.stringData = []
        proto.clearRawData()
        proto.externalData = []
        proto.clearDataLocation()
        return proto
    }
}
