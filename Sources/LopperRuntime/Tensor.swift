import Foundation
import LopperModel

/// How a tensor's elements are held in memory while the runtime computes with them.
/// Every floating-point type computes in Float32, every integer type in Int64.
public enum StorageKind: Sendable {
    case float, int64, bool

    public var byteSize: Int {
        switch self {
        case .float: return 4
        case .int64: return 8
        case .bool: return 1
        }
    }
}

extension ElementType {
    /// Storage used for this logical type; `nil` for strings, which the runtime does not compute with.
    public var storageKind: StorageKind? {
        switch self {
        case .float32, .float16, .bfloat16, .float64: return .float
        case .bool: return .bool
        case .string: return nil
        default: return .int64
        }
    }
}

/// A 64-byte aligned block of memory owned by one or more tensors. Never mutated once a kernel
/// has returned it, so tensors may share it (Reshape, Identity). Large blocks made during a run
/// come from that run's pool and go back to it when the last tensor using them is released.
final class Buffer: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    let byteCount: Int
    private let pool: BufferPool?

    init(byteCount: Int) {
        self.byteCount = byteCount
        let pool = byteCount >= BufferPool.smallest ? BufferPool.current : nil
        self.pool = pool
        raw = pool?.take(byteCount) ?? UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
    }

    deinit {
        if let pool { pool.give(raw, byteCount) } else { raw.deallocate() }
    }
}

/// Freed blocks kept by size for reuse, so that a run does not map and fault in fresh pages
/// for every intermediate value. Owned by an executor; thread-safe.
final class BufferPool: @unchecked Sendable {
    /// Blocks smaller than this come from malloc directly.
    static let smallest = 1 << 16
    /// The pool of the run in progress on this task.
    @TaskLocal static var current: BufferPool?

    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private let lock = NSLock()

    func take(_ byteCount: Int) -> UnsafeMutableRawPointer? {
        lock.lock()
        defer { lock.unlock() }
        return free[byteCount]?.popLast()
    }

    func give(_ block: UnsafeMutableRawPointer, _ byteCount: Int) {
        lock.lock()
        free[byteCount, default: []].append(block)
        lock.unlock()
    }

    deinit {
        for blocks in free.values { for block in blocks { block.deallocate() } }
    }
}

/// A runtime value: logical element type, shape, and elements in row-major order.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    /// The ONNX type the value stands for (a `Cast` to int32 stays int32 though stored as Int64).
    public let elementType: ElementType
    public let shape: [Int]
    let buffer: Buffer
    /// Where the elements start in `buffer` (views such as Split's parts start inside it).
    let byteOffset: Int

    public var count: Int { Tensor.count(shape) }
    public var rank: Int { shape.count }
    public var kind: StorageKind { elementType.storageKind! }

    static func count(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// An uninitialised tensor for a kernel to fill; throws when it would pass `AllocationLimit`.
    init(uninitialized type: ElementType, shape: [Int]) throws {
        try AllocationLimit.check(type, shape: shape)
        self.init(allocating: type, shape: shape)
    }

    /// A tensor of zero bytes: 0, 0.0 or false in every element.
    init(zeros type: ElementType, shape: [Int]) throws {
        try self.init(uninitialized: type, shape: shape)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: count * kind.byteSize)
    }

    /// An uninitialised tensor the size of values already in memory (no limit to check).
    init(allocating type: ElementType, shape: [Int]) {
        elementType = type
        self.shape = shape
        buffer = Buffer(byteCount: Tensor.count(shape) * type.storageKind!.byteSize)
        byteOffset = 0
    }

    init(_ type: ElementType, shape: [Int], buffer: Buffer, byteOffset: Int = 0) {
        elementType = type
        self.shape = shape
        self.buffer = buffer
        self.byteOffset = byteOffset
    }

    /// The same elements under another shape (no copy).
    func reshaped(_ newShape: [Int]) -> Tensor { Tensor(elementType, shape: newShape, buffer: buffer, byteOffset: byteOffset) }

    /// The same elements with another logical type of the same storage (no copy).
    func retyped(_ type: ElementType) -> Tensor { Tensor(type, shape: shape, buffer: buffer, byteOffset: byteOffset) }

    /// `shape`'s worth of elements starting `elements` into this tensor's (no copy).
    func view(from elements: Int, shape: [Int]) -> Tensor {
        precondition(elements >= 0 && elements + Tensor.count(shape) <= count, "view outside the tensor")
        return Tensor(elementType, shape: shape, buffer: buffer, byteOffset: byteOffset + elements * kind.byteSize)
    }

    /// Whether `other` is a view of the same memory `elements` into this tensor's.
    func holds(_ other: Tensor, at elements: Int) -> Bool {
        other.buffer === buffer && other.byteOffset == byteOffset + elements * kind.byteSize
    }

    public init(floats: [Float], shape: [Int]) {
        precondition(floats.count == Tensor.count(shape), "shape \(shape) does not match \(floats.count) values")
        self.init(allocating: .float32, shape: shape)
        floats.withUnsafeBufferPointer { f.update(from: $0.baseAddress!, count: $0.count) }
    }

    public init(int64s: [Int64], shape: [Int], type: ElementType = .int64) {
        precondition(int64s.count == Tensor.count(shape), "shape \(shape) does not match \(int64s.count) values")
        self.init(allocating: type, shape: shape)
        int64s.withUnsafeBufferPointer { i.update(from: $0.baseAddress!, count: $0.count) }
    }

    public init(bools: [Bool], shape: [Int]) {
        precondition(bools.count == Tensor.count(shape), "shape \(shape) does not match \(bools.count) values")
        self.init(allocating: .bool, shape: shape)
        bools.withUnsafeBufferPointer { b.update(from: $0.baseAddress!, count: $0.count) }
    }

    public static func scalar(_ value: Float) -> Tensor { Tensor(floats: [value], shape: []) }

    /// Float elements; valid only for `.float` storage.
    var f: UnsafeMutablePointer<Float> { raw.assumingMemoryBound(to: Float.self) }
    /// Int64 elements; valid only for `.int64` storage.
    var i: UnsafeMutablePointer<Int64> { raw.assumingMemoryBound(to: Int64.self) }
    /// Bool elements; valid only for `.bool` storage.
    var b: UnsafeMutablePointer<Bool> { raw.assumingMemoryBound(to: Bool.self) }
    var raw: UnsafeMutableRawPointer { buffer.raw + byteOffset }

    public var floats: [Float] {
        switch kind {
        case .float: return Array(UnsafeBufferPointer(start: f, count: count))
        case .int64: return (0..<count).map { Float(i[$0]) }
        case .bool: return (0..<count).map { b[$0] ? 1 : 0 }
        }
    }

    public var int64s: [Int64] {
        switch kind {
        // Saturating: NaN is 0 and values past Int64's range clamp rather than trap.
        case .float: return (0..<count).map { f[$0].isNaN ? 0 : f[$0] >= 9.2e18 ? .max : f[$0] <= -9.2e18 ? .min : Int64(f[$0]) }
        case .int64: return Array(UnsafeBufferPointer(start: i, count: count))
        case .bool: return (0..<count).map { b[$0] ? 1 : 0 }
        }
    }

    public var bools: [Bool] {
        switch kind {
        case .float: return (0..<count).map { f[$0] != 0 }
        case .int64: return (0..<count).map { i[$0] != 0 }
        case .bool: return Array(UnsafeBufferPointer(start: b, count: count))
        }
    }

    /// Elements as Double, whatever the storage; for comparisons in tests and tools.
    public var doubles: [Double] {
        switch kind {
        case .float: return (0..<count).map { Double(f[$0]) }
        case .int64: return (0..<count).map { Double(i[$0]) }
        case .bool: return (0..<count).map { b[$0] ? 1 : 0 }
        }
    }

    public var description: String { "\(elementType)\(shape)" }
}

extension Tensor {
    /// The tensor in another element type (same values where representable).
    public func converted(to type: ElementType) throws -> Tensor {
        try Cast.convert(self, to: type)
    }
}
