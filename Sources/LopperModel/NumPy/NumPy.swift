import Foundation

/// NumPy's `.npy` format (versions 1 to 3): a magic string, a Python-literal header giving
/// dtype, order and shape, then the elements. Little-endian C order only; other files are
/// rejected with an error naming the file.
public enum NumPy {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Reads a `.npy` file.
    public static func read(path: String) throws -> TensorData {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) } catch {
            throw ModelError("cannot be read: \((error as NSError).localizedDescription)", file: path)
        }
        do { return try decode(data) } catch let error as ModelError { throw error.inFile(path) }
    }

    /// Writes a `.npy` file (version 1.0 header).
    public static func write(_ tensor: TensorData, to path: String) throws {
        do {
            try encode(tensor).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch let error as ModelError {
            throw error.inFile(path)
        } catch {
            throw ModelError("cannot be written: \((error as NSError).localizedDescription)", file: path)
        }
    }

    /// Parses the bytes of a `.npy` file.
    public static func decode(_ data: Data) throws -> TensorData {
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw ModelError("is not a .npy file (bad magic string)") }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw ModelError("is truncated in its header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default: throw ModelError("has unsupported .npy format version \(major)")
        }
        let bodyStart = headerStart + headerLength
        guard data.count >= bodyStart else { throw ModelError("is truncated in its header") }
        let start = data.startIndex
        let header = String(decoding: data[(start + headerStart)..<(start + bodyStart)], as: UTF8.self)
        let fields = try Header(parsing: header)
        let count = try TensorData.elementCount(fields.shape)
        let expected = count * fields.type.byteSize
        guard data.count - bodyStart >= expected else {
            throw ModelError("holds \(data.count - bodyStart) data bytes, but \(fields.type) \(fields.shape) needs \(expected)")
        }
        return try TensorData(elementType: fields.type, shape: fields.shape, bytes: Data(data[(start + bodyStart)..<(start + bodyStart + expected)]))
    }

    /// The bytes of a `.npy` file holding `tensor`.
    public static func encode(_ tensor: TensorData) throws -> Data {
        guard let descr = descriptor(tensor.elementType) else {
            throw ModelError("\(tensor.elementType) tensors have no .npy dtype")
        }
        let shape = tensor.shape.count == 1 ? "(\(tensor.shape[0]),)" : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        // Pad with spaces so the data starts at a multiple of 64 bytes; the header ends in a newline.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data(magic + [1, 0])
        let length = header.utf8.count
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(tensor.bytes)
        return data
    }

    static func descriptor(_ type: ElementType) -> String? {
        switch type {
        case .float32: return "<f4"
        case .float64: return "<f8"
        case .float16: return "<f2"
        case .int8: return "|i1"
        case .uint8: return "|u1"
        case .int16: return "<i2"
        case .uint16: return "<u2"
        case .int32: return "<i4"
        case .uint32: return "<u4"
        case .int64: return "<i8"
        case .uint64: return "<u8"
        case .bool: return "|b1"
        case .bfloat16, .string: return nil
        }
    }

    /// The three header entries, read from the Python dict literal.
    struct Header {
        var type: ElementType
        var shape: [Int]

        init(parsing text: String) throws {
            func value(_ key: String) throws -> Substring {
                guard let keyRange = text.range(of: "'\(key)'") ?? text.range(of: "\"\(key)\""),
                      let colon = text[keyRange.upperBound...].firstIndex(of: ":") else {
                    throw ModelError("has no '\(key)' in its header")
                }
                return text[text.index(after: colon)...].drop { $0 == " " }
            }
            let descrText = try value("descr")
            guard let quote = descrText.first, quote == "'" || quote == "\"",
                  let end = descrText.dropFirst().firstIndex(of: quote) else {
                throw ModelError("has a dtype that is not a simple type (structured arrays are not supported)")
            }
            let descr = String(descrText[descrText.index(after: descrText.startIndex)..<end])
            if descr.hasPrefix(">"), !descr.hasSuffix("1") {
                throw ModelError("is big-endian (dtype '\(descr)'); save it little-endian, e.g. array.astype(array.dtype.newbyteorder('<'))")
            }
            let normalized = "<" + descr.dropFirst(["<", ">", "=", "|"].contains(descr.first.map(String.init) ?? "") ? 1 : 0)
            let known: [String: ElementType] = ["<f4": .float32, "<f8": .float64, "<f2": .float16, "<i1": .int8, "<u1": .uint8,
                                                "<i2": .int16, "<u2": .uint16, "<i4": .int32, "<u4": .uint32, "<i8": .int64,
                                                "<u8": .uint64, "<b1": .bool]
            guard let type = known[normalized] else { throw ModelError("has unsupported dtype '\(descr)'") }
            self.type = type
            let order = try value("fortran_order")
            if order.hasPrefix("True") {
                throw ModelError("is in Fortran order; save it in C order, e.g. np.save(path, np.ascontiguousarray(array))")
            }
            guard order.hasPrefix("False") else { throw ModelError("has an unreadable 'fortran_order' in its header") }
            let shapeText = try value("shape")
            guard shapeText.first == "(", let close = shapeText.firstIndex(of: ")") else {
                throw ModelError("has an unreadable 'shape' in its header")
            }
            let inside = shapeText[shapeText.index(after: shapeText.startIndex)..<close]
            shape = try inside.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { part in
                guard let dim = Int(part.hasSuffix("L") ? String(part.dropLast()) : part), dim >= 0 else {
                    throw ModelError("has an unreadable 'shape' in its header")
                }
                return dim
            }
        }
    }
}
