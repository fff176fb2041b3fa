import Foundation
import LopperSensitivity

/// Writes job state changes to the results store before they are acknowledged, committing
/// whatever accumulated while the previous transaction ran as one transaction (group commit):
/// one fsync serves many workers' messages.
final class Journal: @unchecked Sendable {
    private let store: ResultsStore
    private let condition = NSCondition()
    private var waiting: [(changes: [ResultsStore.Change], done: CheckedContinuation<Void, Error>)] = []
    private var closed = false
    private(set) var transactions = 0

    init(store: ResultsStore) {
        self.store = store
        // The thread keeps the journal alive until `close`.
        let thread = Thread { self.writeLoop() }
        thread.name = "lopper.journal"
        thread.start()
    }

    /// Returns once `changes` are committed (or throws the store's error).
    func commit(_ changes: [ResultsStore.Change]) async throws {
        guard !changes.isEmpty else { return }
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
            condition.lock()
            if closed {
                condition.unlock()
                done.resume(throwing: CancellationError())
                return
            }
            waiting.append((changes, done))
            condition.signal()
            condition.unlock()
        }
    }

    /// Stops the writer once everything already submitted is committed.
    func close() {
        condition.lock()
        closed = true
        condition.signal()
        condition.unlock()
    }

    private func writeLoop() {
        while true {
            condition.lock()
            while waiting.isEmpty && !closed { condition.wait() }
            let batch = waiting
            waiting = []
            let finished = closed && batch.isEmpty
            condition.unlock()
            if finished { return }
            do {
                try store.apply(batch.flatMap(\.changes))
                transactions += 1
                for entry in batch { entry.done.resume() }
            } catch {
                for entry in batch { entry.done.resume(throwing: error) }
            }
        }
    }
}
