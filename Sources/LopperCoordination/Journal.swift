import Foundation
import LopperSensitivity

/// Writes job state changes to the results store before they are acknowledged, committing
/// whatever accumulated while the previous transaction ran as one transaction (group commit):
/// one fsync serves many workers' messages.
///
/// Changes are queued with `enqueue` while the caller still holds the lock under which it
/// decided them, so the store sees them in the order the scheduler made them; `wait` then
/// suspends until they are committed.
final class Journal: @unchecked Sendable {
    /// A position in the journal: everything enqueued up to it is committed once it is.
    struct Ticket: Sendable { fileprivate let sequence: Int }

    private let store: ResultsStore
    private let condition = NSCondition()
    private var queued: [ResultsStore.Change] = []
    private var enqueued = 0
    private var committed = 0
    private var failure: Error?
    private var waiters: [(sequence: Int, done: CheckedContinuation<Void, Error>)] = []
    private var closed = false
    private(set) var transactions = 0

    init(store: ResultsStore) {
        self.store = store
        // The thread keeps the journal alive until `close`.
        let thread = Thread { self.writeLoop() }
        thread.name = "lopper.journal"
        thread.start()
    }

    /// Queues `changes` for the next transaction. Never blocks.
    func enqueue(_ changes: [ResultsStore.Change]) -> Ticket {
        condition.lock()
        defer { condition.unlock() }
        queued += changes
        if !changes.isEmpty { enqueued += 1 }
        condition.signal()
        return Ticket(sequence: enqueued)
    }

    /// Returns once everything up to `ticket` is committed (or throws the store's error).
    func wait(_ ticket: Ticket) async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
            condition.lock()
            defer { condition.unlock() }
            if let failure { return done.resume(throwing: failure) }
            if committed >= ticket.sequence { return done.resume() }
            if closed { return done.resume(throwing: CancellationError()) }
            waiters.append((ticket.sequence, done))
        }
    }

    /// Stops the writer once everything already queued is committed.
    func close() {
        condition.lock()
        closed = true
        condition.signal()
        condition.unlock()
    }

    private func writeLoop() {
        while true {
            condition.lock()
            while queued.isEmpty && !closed { condition.wait() }
            let batch = queued, through = enqueued
            queued = []
            if batch.isEmpty && closed {
                let left = waiters
                waiters = []
                condition.unlock()
                for waiter in left { waiter.done.resume(throwing: CancellationError()) }
                return
            }
            condition.unlock()
            var error: Error?
            do { try store.apply(batch) } catch let failure { error = failure }
            condition.lock()
            transactions += 1
            if let error { failure = error } else { committed = through }
            let ready = waiters.filter { error != nil || $0.sequence <= through }
            waiters.removeAll { error != nil || $0.sequence <= through }
            condition.unlock()
            for waiter in ready {
                if let error { waiter.done.resume(throwing: error) } else { waiter.done.resume() }
            }
        }
    }
}
