import Foundation
import Logging
import LopperMessaging
import LopperProtocol
import LopperSensitivity

/// Hands jobs to workers over nng and gathers their results: a sweep's jobs into its results
/// store, or a batch of jobs of another kind (`JobBatch`) to the batch's delivery.
///
/// One REP socket serves every worker through many contexts (no thread per peer). Each request
/// is checked (frame, version, HMAC, replay window), answered from the scheduler, and every job
/// state change it causes is committed (stored, or delivered) before the reply goes out. A
/// coordinator started on an existing store resumes it.
public final class Coordinator: @unchecked Sendable {
    public struct Options: Sendable {
        public var listen: [String]
        public var token: Token?
        public var tls: TLSConfiguration?
        /// How long a lease lasts without a heartbeat.
        public var leaseSeconds = 30.0
        public var heartbeatSeconds = 5.0
        /// Times a job may be leased; when the last lease also ends without a result, it fails.
        public var maxAttempts = 3
        /// Queues the store's failed jobs again, with fresh attempts; otherwise they stay failed.
        public var retryFailed = false
        /// Requests served at once.
        public var contexts = 128
        public var chunkBytes = 1 << 20
        /// Larger requests are dropped by nng (the connection is closed) and counted.
        public var maximumMessageBytes = 4 << 20
        /// After the sweep completes, how long to wait for live workers to hear that it did.
        public var lingerSeconds = 5.0
        /// Give up (throw `Failure.noWorkers`) when no worker has sent a message for this long
        /// while jobs remain; nil waits for workers indefinitely.
        public var workerPatience: Double?
        /// Seconds since the coordinator started; nil reads the monotonic clock. Tests set a
        /// clock they advance by hand, so lease expiry does not depend on the machine's load.
        public var clock: (@Sendable () -> Double)?

        public init(listen: [String], token: Token? = nil, tls: TLSConfiguration? = nil) {
            self.listen = listen
            self.token = token
            self.tls = tls
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        /// No worker sent anything for `patience` seconds while jobs remained.
        case noWorkers(patience: Double, done: Int, total: Int)

        public var description: String {
            switch self {
            case .noWorkers(let patience, let done, let total):
                return "no worker has been heard from for \(Self.seconds(patience)) (the worker patience) and \(total - done) of \(total) jobs remain; "
                    + "the \(done) finished are kept in the store, and a coordinator started again on it resumes"
            }
        }

        static func seconds(_ value: Double) -> String { value == value.rounded() ? "\(Int(value)) s" : "\(value) s" }
    }

    let offer: SweepOffer
    let options: Options
    let logger: Logger
    let codec: FrameCodec
    let ledger: Ledger
    /// Jobs scheduled: the sweep's (as `offer.jobKeys` selects them from the store) or the batch's.
    let total: Int
    /// Guards the mutable state below; held for short, synchronous sections only.
    let lock = NSLock()
    var scheduler: Scheduler
    var senders: [String: SenderState] = [:]
    var rejected: [String: UInt64] = [:]
    private var bytesSent: UInt64 = 0
    private var bytesReceived: UInt64 = 0
    var baseline: Double?
    var toldShutdown = Set<String>()
    /// When a worker last sent a message (seconds since start), for `workerPatience`.
    var lastWorkerMessage = 0.0
    private var transport: (any CoordinatorTransport)?
    /// Requests being handled now.
    private var handling = 0
    private let started = DispatchTime.now().uptimeNanoseconds
    private var progress: (@Sendable (SweepRunner.Progress) -> Void)?

    /// Replay state of one sender: requests being answered, and the latest replies (a resent
    /// request gets the same reply).
    struct SenderState {
        var window = ReplayWindow()
        var inFlight = Set<UInt64>()
        var replies: [UInt64: [UInt8]] = [:]
        var lastSeen = 0.0
    }

    public init(store: ResultsStore, offer: SweepOffer, options: Options, logger: Logger = Logger(label: "lopper.coordinator")) throws {
        let rows = try store.allJobs().filter { offer.jobKeys?.contains($0.job.key) ?? true }.map { row in
            var row = row
            if options.retryFailed && row.state == .failed { (row.state, row.attempts) = (.pending, 0) }
            return row
        }
        self.offer = offer
        self.options = options
        self.logger = logger
        codec = FrameCodec(identity: WireProtocol.coordinator, token: options.token)
        ledger = .sweep(Journal(store: store))
        total = offer.jobCount
        scheduler = Scheduler(rows: rows, leaseDuration: options.leaseSeconds, maxAttempts: options.maxAttempts, now: 0)
        baseline = try store.baseline()?.value
    }

    /// A coordinator of `batch`'s jobs over the sweep `offer` describes (the workers derive its
    /// setup); `offer.kinds` must name the batch's kinds. Each job is its own affinity group.
    public init(batch: JobBatch, offer: SweepOffer, options: Options, logger: Logger = Logger(label: "lopper.coordinator")) throws {
        let kinds = Set(batch.jobs.map(\.kind))
        guard kinds.isSubset(of: offer.kinds), !kinds.contains(.sweep) else {
            throw JobFailure("a batch of \(kinds.map(\.rawValue).sorted()) jobs cannot be offered as \(offer.kinds.map(\.rawValue))")
        }
        guard Set(batch.jobs.map(\.key)).count == batch.jobs.count else { throw JobFailure("two jobs of the batch share a key") }
        self.offer = offer
        self.options = options
        self.logger = logger
        codec = FrameCodec(identity: WireProtocol.coordinator, token: options.token)
        let ids = batch.jobs.indices.map { Int64($0 + 1) }
        ledger = .batch(batch, jobs: Dictionary(uniqueKeysWithValues: zip(ids, batch.jobs)))
        total = batch.jobs.count
        scheduler = Scheduler(entries: zip(ids, batch.jobs).map { Scheduler.Entry(id: $0, key: $1.key, group: Int($0)) },
                              leaseDuration: options.leaseSeconds, maxAttempts: options.maxAttempts, now: 0)
    }

    /// Store transactions so far: with group commit, far fewer than state changes.
    public var journalTransactions: Int { ledger.transactions }

    var now: Double { options.clock?() ?? Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }


    /// Serves until every job is done or failed and the live workers were told, then returns the
    /// final counters. Throws if the store cannot be written.
    /// - Parameter transport: how requests arrive; by default an `NNGTransport` on `options.listen`.
    @discardableResult
    public func run(over transport: (any CoordinatorTransport)? = nil, progress: (@Sendable (SweepRunner.Progress) -> Void)? = nil) async throws -> CoordinatorStatus {
        let transport = transport ?? NNGTransport(listen: options.listen, tls: options.tls,
                                                  maximumMessageBytes: options.maximumMessageBytes, contexts: options.contexts)
        lock.withLock {
            self.progress = progress
            self.transport = transport
        }
        defer { ledger.close() }
        let (done, failed) = lock.withLock { (scheduler.doneCount, scheduler.failedCount) }
        logger.info("coordinator: \(total) jobs, \(total - done - failed) to run", metadata: ["listen": "\(options.listen.joined(separator: ","))"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await transport.serve { bytes in try await self.serve(bytes) } }
            group.addTask { try await self.superviseLeases() }
            // The supervisor returns when the sweep is over; the servers then stop, once the
            // replies being made go out (a worker told the jobs are over must hear so).
            try await group.next()
            await drain()
            group.cancelAll()
            try await group.waitForAll()
        }
        return status()
    }

    /// Waits (10 s at most) for the requests being handled, then a moment for their replies to
    /// be sent.
    private func drain() async {
        let deadline = now + 10
        while lock.withLock({ handling }) > 0 && now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        try? await Task.sleep(for: .milliseconds(200))
    }

    /// Answers one request's bytes, counting the traffic.
    private func serve(_ bytes: [UInt8]) async throws -> [UInt8]? {
        lock.withLock { handling += 1 }
        defer { lock.withLock { handling -= 1 } }
        guard let reply = try await handle(bytes) else { return nil }
        lock.withLock {
            bytesReceived += UInt64(bytes.count)
            bytesSent += UInt64(reply.count)
        }
        return reply
    }

    /// Expires leases, and ends the run once the sweep is complete and the live workers heard,
    /// or (throwing) once no worker has been heard from for the worker patience.
    private func superviseLeases() async throws {
        let interval = min(0.25, options.leaseSeconds / 8)
        var completedAt: Double?
        while true {
            let now = self.now
            let (requeued, failed, complete, waitingWorkers, pending) = lock.withLock {
                let (requeued, failed) = scheduler.expire(now: now)
                let waiting = scheduler.workers.filter { now - $0.value.lastSeen <= options.leaseSeconds && !toldShutdown.contains($0.key) }
                // Forget senders silent for long (status clients, departed workers).
                senders = senders.filter { now - $0.value.lastSeen < 10 * options.leaseSeconds || !$0.value.inFlight.isEmpty }
                let pending = ledger.record(Self.releases(requeued: requeued, failed: failed, attempts: options.maxAttempts, worker: "coordinator"))
                return (requeued, failed, scheduler.isComplete, waiting.count, pending)
            }
            if !requeued.isEmpty || !failed.isEmpty {
                logger.warning("leases expired: \(requeued.count) jobs back in the queue\(failed.isEmpty ? "" : ", \(failed.count) failed after \(options.maxAttempts) leases")")
                try await ledger.settle(pending)
                reportProgress()
            }
            if !complete, let patience = options.workerPatience, now - lock.withLock({ lastWorkerMessage }) >= patience {
                let done = lock.withLock { scheduler.doneCount + scheduler.failedCount }
                throw Failure.noWorkers(patience: patience, done: done, total: total)
            }
            if complete {
                completedAt = completedAt ?? now
                if waitingWorkers == 0 || now - completedAt! >= options.lingerSeconds { return }
            }
            try await Task.sleep(for: .seconds(interval))
        }
    }

    /// Store changes for jobs whose leases ended without a result.
    static func releases(requeued: [Int64], failed: [Int64], attempts: Int, worker: String) -> [ResultsStore.Change] {
        requeued.map { .released($0) } + failed.map {
            .failure($0, "leased \(attempts) times and every lease ended without a result (the workers died or left)", stderr: nil, worker: worker)
        }
    }

    func reportProgress() {
        guard let progress else { return }
        let state = lock.withLock {
            SweepRunner.Progress(done: scheduler.doneCount + scheduler.failedCount, total: total, failed: scheduler.failedCount, elapsed: now)
        }
        progress(state)
    }

    func count(_ rejection: FrameRejection, from sender: String) {
        let seen = lock.withLock {
            rejected[rejection.counter, default: 0] += 1
            return rejected[rejection.counter]!
        }
        // Log the first few of each kind and then every thousandth: a flood must not flood the log.
        if seen <= 10 || seen % 1000 == 0 {
            logger.warning("rejected a message from '\(sender)' (\(seen) \(rejection.counter) so far): \(rejection)")
        }
    }

    /// The counters `lopper status` prints.
    public func status() -> CoordinatorStatus {
        lock.withLock {
            var status = CoordinatorStatus()
            status.sweepID = offer.sweepID
            status.jobsTotal = UInt64(total)
            status.jobsQueued = UInt64(scheduler.queuedCount)
            status.jobsLeased = UInt64(scheduler.leasedCount)
            status.jobsDone = UInt64(scheduler.doneCount)
            status.jobsFailed = UInt64(scheduler.failedCount)
            status.workersAlive = UInt64(scheduler.aliveWorkers(now: now))
            status.bytesSent = bytesSent
            status.bytesReceived = bytesReceived
            status.leasesExpired = scheduler.counters.leasesExpired
            status.resultsIgnored = scheduler.counters.resultsIgnored
            status.speculativeLeases = scheduler.counters.speculativeLeases
            status.uptimeSeconds = now
            status.complete = scheduler.isComplete
            status.rejected = rejected
            if let dropped = transport?.droppedConnections, dropped > 0 { status.rejected["dropped-connections"] = dropped }
            return status
        }
    }
}
