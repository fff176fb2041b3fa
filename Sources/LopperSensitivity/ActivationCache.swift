import Foundation
import LopperModel
import LopperRuntime

/// Dense-model activations kept for prefix reuse: in memory up to a budget, then spilled to
/// `.npy` files in a private folder that is removed with the cache.
final class ActivationCache: @unchecked Sendable {
    private let budget: Int
    private let directory: URL
    private var memory: [Key: Tensor] = [:]
    private var spilled: [Key: String] = [:]
    private let lock = NSLock()
    private(set) var bytesInMemory = 0
    private(set) var bytesOnDisk = 0

    struct Key: Hashable {
        var batch: Int
        var value: String
    }

    init(budgetBytes: Int) throws {
        budget = budgetBytes
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// Keeps `tensor` in memory, or on disk once the budget is used up. With `spill: false` a
    /// tensor that does not fit in memory is not kept; the result says whether it was.
    @discardableResult
    func store(_ tensor: Tensor, batch: Int, value: String, spill: Bool = true) throws -> Bool {
        let key = Key(batch: batch, value: value)
        let size = tensor.count * tensor.kind.byteSize
        lock.lock()
        defer { lock.unlock() }
        if bytesInMemory + size <= budget {
            memory[key] = tensor
            bytesInMemory += size
            return true
        }
        guard spill else { return false }
        let path = directory.appendingPathComponent("\(spilled.count).npy").path
        try NumPy.write(tensor.tensorData(), to: path)
        spilled[key] = path
        bytesOnDisk += size
        return true
    }

    /// Drops a value kept in memory for some batches only.
    func removeFromMemory(value: String) {
        lock.lock()
        defer { lock.unlock() }
        for key in memory.keys where key.value == value {
            bytesInMemory -= memory[key]!.count * memory[key]!.kind.byteSize
            memory[key] = nil
        }
    }

    func load(batch: Int, value: String) throws -> Tensor {
        let key = Key(batch: batch, value: value)
        lock.lock()
        let inMemory = memory[key], path = spilled[key]
        lock.unlock()
        if let inMemory { return inMemory }
        guard let path else { throw ModelError("activation '\(value)' of batch \(batch) was not cached") }
        return try Tensor(NumPy.read(path: path))
    }
}
