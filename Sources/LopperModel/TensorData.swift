import Foundation

/// The contents of a tensor: element type, shape and little-endian row-major bytes.
///
/// `bytes` may be a zero-copy view into a memory-mapped external-data file, so reading a large
/// model touches only the pages that are actually used. Always access it through
/// `withUnsafeBytes` (a slice of a mapped file does not start at index 0).
public struct TensorData: Sendable, Equatable {
    public var elementType: ElementType
    public var shape: [Int]
    public var bytes: Data
    /// The elements of a `.string` tensor; empty for every other type.
    public var strings: [Data]

    /// Creates a tensor, checking that `bytes` holds exactly one value per element.
    public init(elementType: ElementType, shape: [Int], bytes: Data) throws {
        let count = try TensorData.elementCount(shape)
        guard elementType != .string else { throw ModelError("string tensors are built from their elements") }
        let (expected, overflow) = count.multipliedReportingOverflow(by: elementType.byteSize)
        guard !overflow, bytes.count == expected else {
            throw ModelError("holds \(bytes.count) bytes, but \(elementType) \(shape) needs \(overflow ? "more than Int.max" : "\(expected)")")
        }
        self.elementType = elementType
        self.shape = shape
        self.bytes = bytes
        self.strings = []
    }

    public init(strings: [Data], shape: [Int]) throws {
        guard try TensorData.elementCount(shape) == strings.count else {
            throw ModelError("holds \(strings.count) strings, but shape \(shape) needs \(try TensorData.elementCount(shape))")
        }
        self.elementType = .string
        self.shape = shape
        self.bytes = Data()
        self.strings = strings
    }

    public init(floats: [Float], shape: [Int]) {
        precondition((try? TensorData.elementCount(shape)) == floats.count, "shape \(shape) does not match \(floats.count) values")
        self.elementType = .float32
        self.shape = shape
        self.bytes = floats.withUnsafeBytes { Data($0) }
        self.strings = []
    }

    public init(int64s: [Int64], shape: [Int]) {
        precondition((try? TensorData.elementCount(shape)) == int64s.count, "shape \(shape) does not match \(int64s.count) values")
        self.elementType = .int64
        self.shape = shape
        self.bytes = int64s.withUnsafeBytes { Data($0) }
        self.strings = []
    }

    public var count: Int { shape.reduce(1, *) }

    /// Number of elements of `shape`, rejecting negative dimensions and overflow.
    public static func elementCount(_ shape: [Int]) throws -> Int {
        var count = 1
        for dim in shape {
            guard dim >= 0 else { throw ModelError("has negative dimension \(dim) in shape \(shape)") }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw ModelError("shape \(shape) has more elements than Int.max") }
            count = product
        }
        return count
    }

    /// The elements converted to Float (bool as 0/1). Strings give an empty array.
    public func floats() -> [Float] { convert { Float($0) } }

    /// The elements converted to Double.
    public func doubles() -> [Double] { convert { $0 } }

    /// The elements converted to Int64, truncating floating-point values toward zero.
    /// Values outside Int64's range saturate rather than trap.
    public func int64s() -> [Int64] {
        convert { value in
            guard value.isFinite else { return value > 0 ? Int64.max : (value < 0 ? Int64.min : 0) }
            if value >= 9.2e18 { return Int64.max }
            if value <= -9.2e18 { return Int64.min }
            return Int64(value)
        }
    }

    private func convert<T>(_ transform: (Double) -> T) -> [T] {
        let n = count
        return bytes.withUnsafeBytes { raw -> [T] in
            func load<S>(_: S.Type, _ toDouble: (S) -> Double) -> [T] {
                (0..<n).map { transform(toDouble(raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<S>.size, as: S.self))) }
            }
            switch elementType {
            case .float32:
                // The hot path when weights are read: avoid the generic per-element closure.
                if T.self == Float.self {
                    var out = [Float](repeating: 0, count: n)
                    out.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(n * 4)])) }
                    return out as! [T]
                }
                return load(Float.self) { Double($0) }
            case .float64: return load(Double.self) { $0 }
            case .float16: return load(UInt16.self) { Double(Float(float16Bits: $0)) }
            case .bfloat16: return load(UInt16.self) { Double(Float(bitPattern: UInt32($0) << 16)) }
            case .int8: return load(Int8.self) { Double($0) }
            case .uint8: return load(UInt8.self) { Double($0) }
            case .int16: return load(Int16.self) { Double($0) }
            case .uint16: return load(UInt16.self) { Double($0) }
            case .int32: return load(Int32.self) { Double($0) }
            case .uint32: return load(UInt32.self) { Double($0) }
            case .int64:
                if T.self == Int64.self {
                    return (0..<n).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) } as! [T]
                }
                return load(Int64.self) { Double($0) }
            case .uint64: return load(UInt64.self) { Double($0) }
            case .bool: return load(UInt8.self) { $0 == 0 ? 0 : 1 }
            case .string: return []
            }
        }
    }
}

extension Float {
    /// IEEE 754 half precision to single precision, done in integer arithmetic so it works on
    /// every platform (Swift's `Float16` is missing on some).
    public init(float16Bits h: UInt16) {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        switch exponent {
        case 0:
            // Zero or subnormal: value = mantissa * 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            self = sign == 0 ? magnitude : -magnitude
        case 31:
            self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        default:
            self = Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
        }
    }
}
