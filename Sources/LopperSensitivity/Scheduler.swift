import DequeModule
import OrderedCollections

/// Which jobs wait, who holds which lease until when, and which groups each worker (or slot)
/// has warm: the one engine of both the coordinator and the in-process `SweepRunner`. Pure
/// state, no I/O: the caller asks it what to do and records the answers. Times are monotonic
/// seconds.
package struct Scheduler {
    package enum State: Sendable { case queued, leased, done, failed }

    package struct Job {
        package let id: Int64
        /// The job's key (a sweep job's, or a batch job's) and its group for cache affinity.
        package let key: String
        package let group: Int
        package var state: State
        /// Workers holding a lease on the job, with their deadlines (two while speculating).
        package var holders: [String: Double] = [:]
        package var attempts: Int
        var leasedAt: Double = 0
    }

    package struct Worker {
        package var lastSeen: Double
        /// Groups whose dense prefix the worker reported cached, or was leased jobs of.
        package var groups: Set<Int> = []
    }

    package struct Counters {
        package var leasesExpired: UInt64 = 0
        package var resultsIgnored: UInt64 = 0
        package var speculativeLeases: UInt64 = 0
    }

    let leaseDuration: Double
    /// Leases a job may be given; when the last one also ends without a result, the job is
    /// marked failed (a job that kills every worker it runs on).
    let maxAttempts: Int
    /// Whether a straggler is leased a second time once the queue is empty (not in one process,
    /// where the second lease would only compete for the same cores).
    let speculates: Bool
    package private(set) var jobs: [Int64: Job] = [:]
    /// Queued job ids per group, groups in store order.
    private var queues: OrderedDictionary<Int, Deque<Int64>> = [:]
    package private(set) var workers: [String: Worker] = [:]
    package private(set) var counters = Counters()
    private var finishedDurations: [Double] = []
    private(set) var unfinished = 0
    /// Ids of the jobs in state `leased` (scans for expiry and stragglers touch only these).
    private var leasedIDs = Set<Int64>()

    /// A job as the scheduler starts from: `leased` ones (a previous coordinator's leases, with
    /// their holder) stay leased for one lease duration, so their result is still taken.
    package struct Entry {
        var id: Int64
        var key: String
        var group: Int
        var state: State = .queued
        var attempts = 0
        var holder: String?

        package init(id: Int64, key: String, group: Int, state: State = .queued, attempts: Int = 0, holder: String? = nil) {
            self.id = id
            self.key = key
            self.group = group
            self.state = state
            self.attempts = attempts
            self.holder = holder
        }
    }

    package init(entries: [Entry], leaseDuration: Double, maxAttempts: Int, speculates: Bool = true, now: Double) {
        self.leaseDuration = leaseDuration
        self.maxAttempts = maxAttempts
        self.speculates = speculates
        for entry in entries {
            var job = Job(id: entry.id, key: entry.key, group: entry.group, state: .queued, attempts: entry.attempts)
            switch entry.state {
            case .done:
                job.state = .done
                doneCount += 1
            case .failed:
                job.state = .failed
                failedCount += 1
            case .leased where entry.holder != nil:
                job.state = .leased
                job.holders = [entry.holder!: now + leaseDuration]
                job.leasedAt = now
                leasedIDs.insert(entry.id)
                unfinished += 1
            default:
                queues[entry.group, default: []].append(entry.id)
                unfinished += 1
            }
            jobs[entry.id] = job
        }
    }

    /// A sweep's jobs as its results store lists them.
    package init(rows: [ResultsStore.Row], leaseDuration: Double, maxAttempts: Int, now: Double) {
        self.init(entries: rows.map { row in
            let state: State = switch row.state {
            case .done: .done
            case .failed: .failed
            case .running: .leased
            case .pending: .queued
            }
            return Entry(id: row.id, key: row.job.key, group: row.job.group, state: state, attempts: row.attempts, holder: row.worker)
        }, leaseDuration: leaseDuration, maxAttempts: maxAttempts, now: now)
    }

    package var isComplete: Bool { unfinished == 0 }

    package private(set) var doneCount = 0
    package private(set) var failedCount = 0
    package var leasedCount: Int { leasedIDs.count }
    package var queuedCount: Int { unfinished - leasedIDs.count }

    package func aliveWorkers(now: Double) -> Int { workers.values.filter { now - $0.lastSeen <= leaseDuration }.count }

    package mutating func saw(_ worker: String, now: Double, cachedGroups: [Int]? = nil) {
        workers[worker, default: Worker(lastSeen: now)].lastSeen = now
        if let cachedGroups { workers[worker]!.groups.formUnion(cachedGroups) }
    }

    /// Up to `want` jobs for `worker`: first from groups it has warm, then from groups no live
    /// worker has, then from the largest queue. With nothing queued, a straggler may be leased a
    /// second time (speculation). Returns the ids and whether each is speculative.
    package mutating func lease(to worker: String, want: Int, now: Double) -> [(id: Int64, speculative: Bool)] {
        var leased: [(Int64, Bool)] = []
        while leased.count < want, let group = groupFor(worker, now: now) {
            while leased.count < want, let id = queues[group]?.popFirst() {
                take(id, for: worker, now: now)
                leased.append((id, false))
            }
            if queues[group]?.isEmpty == true { queues[group] = nil }
        }
        if leased.isEmpty, speculates, let straggler = straggler(excluding: worker, now: now) {
            take(straggler, for: worker, now: now)
            counters.speculativeLeases += 1
            leased.append((straggler, true))
        }
        return leased
    }

    private mutating func take(_ id: Int64, for worker: String, now: Double) {
        jobs[id]!.state = .leased
        leasedIDs.insert(id)
        jobs[id]!.holders[worker] = now + leaseDuration
        jobs[id]!.attempts += 1
        if jobs[id]!.holders.count == 1 { jobs[id]!.leasedAt = now }
        workers[worker, default: Worker(lastSeen: now)].groups.insert(jobs[id]!.group)
    }

    private func groupFor(_ worker: String, now: Double) -> Int? {
        guard !queues.isEmpty else { return nil }
        let warm = workers[worker]?.groups ?? []
        if let group = queues.keys.first(where: warm.contains) { return group }
        let heldElsewhere = workers.filter { $0.key != worker && now - $0.value.lastSeen <= leaseDuration }
            .reduce(into: Set<Int>()) { $0.formUnion($1.value.groups) }
        if let group = queues.keys.first(where: { !heldElsewhere.contains($0) }) { return group }
        return queues.max { $0.value.count < $1.value.count }?.key
    }

    /// The longest-running job held by one other worker, once it has run for twice the median
    /// job time (and at least half a second).
    private func straggler(excluding worker: String, now: Double) -> Int64? {
        guard !finishedDurations.isEmpty else { return nil }
        let median = finishedDurations.sorted()[finishedDurations.count / 2]
        let threshold = max(0.5, 2 * median)
        return leasedIDs.compactMap { jobs[$0] }
            .filter { $0.holders.count == 1 && $0.holders[worker] == nil && now - $0.leasedAt >= threshold }
            .min { ($0.leasedAt, $0.id) < ($1.leasedAt, $1.id) }?.id
    }

    /// Whether a result from `worker` is taken: the job must be unfinished and leased to it.
    /// A duplicate, a late result from an expired lease, or an unknown id is ignored.
    package mutating func finish(_ id: Int64, by worker: String, key: String, failed: Bool, now: Double) -> Bool {
        guard let job = jobs[id], job.key == key, job.state == .leased, job.holders[worker] != nil else {
            counters.resultsIgnored += 1
            return false
        }
        jobs[id]!.state = failed ? .failed : .done
        if failed { failedCount += 1 } else { doneCount += 1 }
        jobs[id]!.holders = [:]
        leasedIDs.remove(id)
        unfinished -= 1
        finishedDurations.append(now - job.leasedAt)
        return true
    }

    /// Extends `worker`'s leases on `ids`; the ids it no longer holds come back as revoked.
    package mutating func heartbeat(_ worker: String, ids: [Int64], now: Double) -> (extended: [Int64], revoked: [Int64]) {
        saw(worker, now: now)
        var extended: [Int64] = [], revoked: [Int64] = []
        for id in ids {
            if jobs[id]?.state == .leased, jobs[id]?.holders[worker] != nil {
                jobs[id]!.holders[worker] = now + leaseDuration
                extended.append(id)
            } else {
                revoked.append(id)
            }
        }
        return (extended, revoked)
    }

    /// Drops leases past their deadline. Jobs left with no holder go back to the front of their
    /// queue, or fail once they have used up `maxAttempts`.
    package mutating func expire(now: Double) -> (requeued: [Int64], failed: [Int64]) {
        var requeued: [Int64] = [], failed: [Int64] = []
        for id in leasedIDs {
            let job = jobs[id]!
            let live = job.holders.filter { $0.value > now }
            guard live.count < job.holders.count else { continue }
            counters.leasesExpired += UInt64(job.holders.count - live.count)
            jobs[id]!.holders = live
            if live.isEmpty { release(id, into: &requeued, failed: &failed) }
        }
        return (requeued.sorted(), failed.sorted())
    }

    /// A departing worker's leases go back at once.
    package mutating func leave(_ worker: String, ids: [Int64]) -> (requeued: [Int64], failed: [Int64]) {
        var requeued: [Int64] = [], failed: [Int64] = []
        for id in ids where jobs[id]?.state == .leased && jobs[id]?.holders[worker] != nil {
            jobs[id]!.holders[worker] = nil
            if jobs[id]!.holders.isEmpty { release(id, into: &requeued, failed: &failed) }
        }
        workers[worker] = nil
        return (requeued, failed)
    }

    private mutating func release(_ id: Int64, into requeued: inout [Int64], failed: inout [Int64]) {
        leasedIDs.remove(id)
        if jobs[id]!.attempts >= maxAttempts {
            jobs[id]!.state = .failed
            unfinished -= 1
            failedCount += 1
            failed.append(id)
        } else {
            jobs[id]!.state = .queued
            let group = jobs[id]!.group
            if queues[group] == nil {
                queues[group] = [id]
                // Keep store order among groups: requeued groups go back where they were.
                queues.sort { $0.key < $1.key }
            } else {
                queues[group]!.prepend(id)
            }
            requeued.append(id)
        }
    }
}
