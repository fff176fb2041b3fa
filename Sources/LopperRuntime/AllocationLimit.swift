import Foundation
import LopperModel

/// The largest single tensor the runtime allocates: half the machine's physical memory, or
/// `LOPPER_MAX_TENSOR_BYTES`. A value past it (or whose size overflows) is an error naming the
/// node or input, where the allocation itself would abort the process.
public enum AllocationLimit {
    /// A smaller limit for the executor running on this task (`ExecutorOptions.maxTensorBytes`).
    @TaskLocal static var override: Int?

    /// The limit in force here.
    public static var current: Int { override ?? bytes }

    public static let bytes: Int = {
        if let text = ProcessInfo.processInfo.environment["LOPPER_MAX_TENSOR_BYTES"], let value = Int(text), value > 0 { return value }
        return Int(clamping: ProcessInfo.processInfo.physicalMemory / 2)
    }()

    /// Bytes of a `type` tensor of `shape`, if it fits the limit.
    @discardableResult
    public static func check(_ type: ElementType, shape: [Int]) throws -> Int {
        let size = type.storageKind?.byteSize ?? type.byteSize
        var bytes = size
        for dim in shape {
            guard dim >= 0 else { throw ModelError("shape \(shape) has a negative dimension") }
            let (product, overflow) = bytes.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw ModelError("a \(type) tensor of shape \(shape) has more bytes than a 64-bit size can count") }
            bytes = product
        }
        guard bytes <= current else {
            throw ModelError("a \(type) tensor of shape \(shape) needs \(describe(bytes)), more than the \(describe(current)) one tensor may take (\(override == nil ? "half the physical memory; LOPPER_MAX_TENSOR_BYTES overrides" : "the executor's limit"))")
        }
        return bytes
    }

    static func describe(_ bytes: Int) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) bytes" : String(format: "%.1f %@", value, units[unit])
    }
}
