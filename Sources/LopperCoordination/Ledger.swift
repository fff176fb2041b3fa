import Foundation
import LopperSensitivity

/// Where a coordinator's job state changes go before the replies that report them: a sweep's
/// into its results store through the journal (group commit, in the scheduler's order), a
/// batch's outcomes to the batch's delivery (leases are not recorded: a batch does not resume).
enum Ledger {
    case sweep(Journal)
    case batch(JobBatch, jobs: [Int64: BatchJob])

    /// What one request decided, queued while the coordinator's lock is held; `settle` commits it.
    struct Pending {
        fileprivate var ticket: Journal.Ticket?
        fileprivate var deliveries: [(BatchJob, Result<[ProducedFile], JobFailure>)] = []
    }

    /// Queues `changes` (with the files of the batch jobs whose results they are). Call with the
    /// coordinator's lock held. Never blocks.
    func record(_ changes: [ResultsStore.Change], files: [Int64: [ProducedFile]] = [:]) -> Pending {
        switch self {
        case .sweep(let journal):
            return Pending(ticket: journal.enqueue(changes))
        case .batch(_, let jobs):
            var pending = Pending()
            for change in changes {
                switch change {
                case .result(let id, _, _):
                    if let job = jobs[id] { pending.deliveries.append((job, .success(files[id] ?? []))) }
                case .failure(let id, let reason, _, _):
                    if let job = jobs[id] { pending.deliveries.append((job, .failure(JobFailure(reason)))) }
                case .leased, .released, .baseline:
                    continue
                }
            }
            return pending
        }
    }

    /// Returns once what `pending` holds is committed (or delivered); throws the store's or the
    /// delivery's error.
    func settle(_ pending: Pending) async throws {
        switch self {
        case .sweep(let journal):
            if let ticket = pending.ticket { try await journal.wait(ticket) }
        case .batch(let batch, _):
            for (job, outcome) in pending.deliveries { try batch.deliver(job, outcome) }
        }
    }

    /// The batch job with scheduler id `id` (nil for a sweep's jobs).
    func batchJob(_ id: Int64) -> BatchJob? {
        if case .batch(_, let jobs) = self { return jobs[id] }
        return nil
    }

    /// Store transactions so far (a batch has none).
    var transactions: Int {
        if case .sweep(let journal) = self { return journal.transactions }
        return 0
    }

    func close() {
        if case .sweep(let journal) = self { journal.close() }
    }
}
