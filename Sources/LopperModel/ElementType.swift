/// Element types Lopper understands, with their ONNX `TensorProto.DataType` codes.
public enum ElementType: Int32, CaseIterable, Sendable, CustomStringConvertible, Codable {
    case float32 = 1
    case uint8 = 2
    case int8 = 3
    case uint16 = 4
    case int16 = 5
    case int32 = 6
    case int64 = 7
    case string = 8
    case bool = 9
    case float16 = 10
    case float64 = 11
    case uint32 = 12
    case uint64 = 13
    case bfloat16 = 16

    /// Creates the type for an ONNX data-type code, or fails with a message naming the code.
    public init(onnxCode code: Int32) throws {
        guard let type = ElementType(rawValue: code) else {
            let known = [14: "complex64", 15: "complex128", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
                         19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1"]
            if let name = known[Int(code)] { throw ModelError("element type \(name) is not supported") }
            throw ModelError("unknown element type code \(code)")
        }
        self = type
    }

    /// Bytes per element in `raw_data` (0 for strings, which have no fixed size).
    public var byteSize: Int {
        switch self {
        case .bool, .int8, .uint8: return 1
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .float32, .int32, .uint32: return 4
        case .float64, .int64, .uint64: return 8
        case .string: return 0
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float16, .bfloat16, .float32, .float64: return true
        default: return false
        }
    }

    public var isInteger: Bool { !isFloatingPoint && self != .bool && self != .string }

    /// The name numpy and ONNX tooling use.
    public var description: String {
        switch self {
        case .float32: return "float32"
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .int32: return "int32"
        case .int64: return "int64"
        case .string: return "string"
        case .bool: return "bool"
        case .float16: return "float16"
        case .float64: return "float64"
        case .uint32: return "uint32"
        case .uint64: return "uint64"
        case .bfloat16: return "bfloat16"
        }
    }
}
