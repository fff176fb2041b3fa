import Foundation
import LopperModel

extension Tensor {
    /// Converts stored tensor data to runtime storage (float16/bfloat16/float64 to Float32,
    /// integers to Int64). Strings cannot be computed with.
    public init(_ data: TensorData) throws {
        guard let kind = data.elementType.storageKind else {
            throw ModelError("\(data.elementType) tensors are not supported by the runtime")
        }
        try self.init(uninitialized: data.elementType, shape: data.shape)
        let n = count
        switch kind {
        case .float:
            if data.elementType == .float32 {
                data.bytes.withUnsafeBytes { raw in
                    UnsafeMutableRawPointer(f).copyMemory(from: raw.baseAddress!, byteCount: n * 4)
                }
            } else {
                let values = data.floats()
                values.withUnsafeBufferPointer { f.update(from: $0.baseAddress!, count: n) }
            }
        case .int64:
            let values = data.int64s()
            values.withUnsafeBufferPointer { i.update(from: $0.baseAddress!, count: n) }
        case .bool:
            data.bytes.withUnsafeBytes { raw in
                let bytes = raw.bindMemory(to: UInt8.self)
                for k in 0..<n { b[k] = bytes[k] != 0 }
            }
        }
    }

    /// The tensor in its logical element type, as stored in models and `.npy` files.
    public func tensorData() -> TensorData {
        let n = count
        var bytes = Data(count: n * elementType.byteSize)
        bytes.withUnsafeMutableBytes { out in
            func store<T>(_: T.Type, _ value: (Int) -> T) {
                let p = out.bindMemory(to: T.self)
                for k in 0..<n { p[k] = value(k) }
            }
            switch elementType {
            case .float32: store(Float.self) { f[$0] }
            case .float64: store(Double.self) { Double(f[$0]) }
            case .float16: store(UInt16.self) { f[$0].float16Bits }
            case .bfloat16: store(UInt16.self) { f[$0].bfloat16Bits }
            case .int64: store(Int64.self) { i[$0] }
            case .int32: store(Int32.self) { Int32(truncatingIfNeeded: i[$0]) }
            case .int16: store(Int16.self) { Int16(truncatingIfNeeded: i[$0]) }
            case .int8: store(Int8.self) { Int8(truncatingIfNeeded: i[$0]) }
            case .uint64: store(UInt64.self) { UInt64(bitPattern: i[$0]) }
            case .uint32: store(UInt32.self) { UInt32(truncatingIfNeeded: i[$0]) }
            case .uint16: store(UInt16.self) { UInt16(truncatingIfNeeded: i[$0]) }
            case .uint8: store(UInt8.self) { UInt8(truncatingIfNeeded: i[$0]) }
            case .bool: store(UInt8.self) { b[$0] ? 1 : 0 }
            case .string: break
            }
        }
        return try! TensorData(elementType: elementType, shape: shape, bytes: bytes)
    }

    /// Wraps integer values into the range of the logical type and rounds floats to the
    /// precision of float16/bfloat16, so results match what that type can hold.
    func normalized() -> Tensor {
        let n = count
        switch elementType {
        case .float16: for k in 0..<n { f[k] = Float(float16Bits: f[k].float16Bits) }
        case .bfloat16: for k in 0..<n { f[k] = Float(bitPattern: UInt32(f[k].bfloat16Bits) << 16) }
        case .int32: for k in 0..<n { i[k] = Int64(Int32(truncatingIfNeeded: i[k])) }
        case .int16: for k in 0..<n { i[k] = Int64(Int16(truncatingIfNeeded: i[k])) }
        case .int8: for k in 0..<n { i[k] = Int64(Int8(truncatingIfNeeded: i[k])) }
        case .uint32: for k in 0..<n { i[k] = Int64(UInt32(truncatingIfNeeded: i[k])) }
        case .uint16: for k in 0..<n { i[k] = Int64(UInt16(truncatingIfNeeded: i[k])) }
        case .uint8: for k in 0..<n { i[k] = Int64(UInt8(truncatingIfNeeded: i[k])) }
        default: break
        }
        return self
    }
}

extension Float {
    /// Nearest IEEE half-precision bit pattern (ties to even; overflow to infinity).
    var float16Bits: UInt16 {
        let bits = bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        var mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF { return sign | 0x7C00 | (mantissa != 0 ? 0x200 : 0) }
        let e = exponent - 127 + 15
        if e >= 31 { return sign | 0x7C00 }
        if e <= 0 {
            if e < -10 { return sign }
            mantissa |= 0x80_0000
            let shift = UInt32(14 - e)
            let half = mantissa >> shift
            let rest = mantissa & ((1 << shift) - 1)
            let midpoint = UInt32(1) << (shift - 1)
            let rounded = half + ((rest > midpoint || (rest == midpoint && half & 1 == 1)) ? 1 : 0)
            return sign | UInt16(rounded)
        }
        var value = UInt32(e) << 10 | (mantissa >> 13)
        let rest = mantissa & 0x1FFF
        if rest > 0x1000 || (rest == 0x1000 && value & 1 == 1) { value += 1 }
        return sign | UInt16(value)
    }

    /// Nearest bfloat16 bit pattern (ties to even).
    var bfloat16Bits: UInt16 {
        if isNaN { return 0x7FC0 }
        let bits = bitPattern
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}
