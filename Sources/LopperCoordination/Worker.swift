import Foundation
import Logging
import LopperMessaging
import LopperProtocol
import LopperSensitivity

/// Joins a coordinator: fetches the model and data by hash, then pulls jobs, runs them `slots`
/// at a time (each single-threaded, so scores are the same bits on every worker) and sends the
/// results with its next lease request. Heartbeats keep its leases while jobs run. Sweep jobs
/// it scores itself; jobs of other kinds go to the handlers in `Options.handlers`.
public final class Worker: @unchecked Sendable {
    public struct Options: Sendable {
        public var address: String
        public var token: Token?
        public var tls: TLSConfiguration?
        public var slots = 1
        public var cacheDirectory: String
        public var cacheBytes = 512 << 20
        public var identity = Worker.defaultIdentity()
        /// Give up when the coordinator has not answered for this long.
        public var patience = 600.0
        /// How to run the job kinds other than `sweep`; a coordinator leasing a kind with no
        /// handler here is left at once.
        public var handlers: [JobKind: JobHandlerFactory] = [:]

        public init(address: String, cacheDirectory: String, token: Token? = nil, tls: TLSConfiguration? = nil) {
            self.address = address
            self.cacheDirectory = cacheDirectory
            self.token = token
            self.tls = tls
        }
    }

    /// Why a worker cannot join a coordinator's jobs.
    public enum Failure: Error, CustomStringConvertible {
        /// It derives another sweep (inputs or job list) than the coordinator offers.
        case otherSweep(jobs: Int, coordinatorJobs: UInt64)
        /// The coordinator leases a kind of job this worker has no handler for, or does not know.
        case cannotRun(String)
        /// A file the coordinator names is not a path inside the model's folder.
        case unsafeLocation(String)

        public var description: String {
            switch self {
            case .otherSweep(let jobs, let coordinatorJobs):
                return "this worker derives another job list from the sweep (\(jobs) jobs, the coordinator \(coordinatorJobs)): run the same Lopper release everywhere"
            case .cannotRun(let kind):
                return "the coordinator leases \(kind) jobs, which this worker cannot run: run the same Lopper release everywhere"
            case .unsafeLocation(let location):
                return "the coordinator names a model data file '\(location)', which is not a path inside the model's folder"
            }
        }
    }

    public struct Summary: Sendable {
        public var jobs = 0
        public var failed = 0
        public var bytesFetched: UInt64 = 0
        public var shutdownReason = ""
    }

    let options: Options
    let logger: Logger
    private let lock = NSLock()
    private var running = Set<Int64>()
    private var summary = Summary()
    private var finished = false
    private var link: CoordinatorLink?

    public init(options: Options, logger: Logger = Logger(label: "lopper.worker")) {
        self.options = options
        self.logger = logger
    }

    /// A name unique to this process: host, pid and a random tag.
    public static func defaultIdentity() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(6).lowercased())"
    }


    /// Works until the coordinator says the sweep is over (or refuses us, or stays silent too long).
    public func run() async throws -> Summary {
        let link = try CoordinatorLink(address: options.address, identity: options.identity, token: options.token,
                                       tls: options.tls, patience: options.patience)
        lock.withLock { self.link = link }
        var hello = Lopper_Wire_Request()
        hello.hello.workerID = options.identity
        hello.hello.hostname = ProcessInfo.processInfo.hostName
        hello.hello.cores = UInt32(ProcessInfo.processInfo.activeProcessorCount)
        hello.hello.memoryBytes = ProcessInfo.processInfo.physicalMemory
        hello.hello.slots = UInt32(options.slots)
        guard case .welcome(let welcome)? = try await link.call(hello).kind else {
            throw CoordinatorLink.Failure.unexpected("no welcome in reply to hello")
        }
        logger.info("joined sweep \(welcome.sweepID.prefix(12)) at \(options.address): \(welcome.jobCount) jobs")

        let kinds = welcome.kinds.isEmpty ? [JobKind.sweep] : try welcome.kinds.map { wire in
            guard let kind = JobKind(wire: wire) else { throw Failure.cannotRun("kind \(wire.rawValue)") }
            return kind
        }
        if let missing = kinds.first(where: { $0 != .sweep && options.handlers[$0] == nil }) {
            throw Failure.cannotRun(missing.rawValue)
        }
        let spec = try await localSpec(welcome, link: link)
        let setup = try SweepSetup(spec: spec)
        // The sweep id covers the inputs and the job list: a worker that derives other jobs
        // (another Lopper release, say) must not run any of them.
        guard try SweepOffer(setup: setup).sweepID == welcome.sweepID else {
            throw Failure.otherSweep(jobs: setup.jobs.count, coordinatorJobs: welcome.jobCount)
        }
        var attachments: [BlobRole: String] = [:]
        for blob in welcome.attachments {
            guard let role = BlobRole(rawValue: blob.role) else { throw CoordinatorLink.Failure.unexpected("an attachment of unknown role '\(blob.role)'") }
            attachments[role] = try await obtain(blob, chunkBytes: Int(welcome.maxChunkBytes), link: link)
        }
        let session = WorkerSession(setup: setup, attachments: attachments)
        var handlers: [JobKind: any JobHandler] = [:]
        for kind in kinds where kind != .sweep { handlers[kind] = try options.handlers[kind]!(session) }
        let evaluator = kinds.contains(.sweep) ? try setup.evaluator(cacheBytes: options.cacheBytes, preparing: []) : nil
        let jobs = Dictionary(uniqueKeysWithValues: setup.jobs.map { ($0.key, $0) })
        let context = SlotContext(link: link, sweepID: welcome.sweepID, evaluator: evaluator, jobs: jobs, handlers: handlers)

        try await withThrowingTaskGroup(of: Void.self) { group in
                for slot in 0..<options.slots {
                    group.addTask { try await self.work(slot: slot, context) }
                }
                group.addTask { try await self.heartbeat(link, every: Double(welcome.heartbeatMs) / 1000) }
                // The first slot (or heartbeat) to hear that the sweep is over ends the others:
                // they may be waiting on a coordinator that has already gone.
                try await group.next()
                lock.withLock { finished = true }
                group.cancelAll()
                while !group.isEmpty { _ = try? await group.next() }
        }
        return lock.withLock { summary }
    }

    struct SlotContext: @unchecked Sendable {
        let link: CoordinatorLink
        let sweepID: String
        /// Scores sweep jobs; nil when the coordinator leases none.
        let evaluator: JobEvaluator?
        let jobs: [String: SweepJob]
        let handlers: [JobKind: any JobHandler]
    }

    /// The spec with its files replaced by verified local copies.
    private func localSpec(_ welcome: Lopper_Wire_Welcome, link: CoordinatorLink) async throws -> SweepSpec {
        var spec = try JSONDecoder().decode(SweepSpec.self, from: Data(welcome.specJson.utf8))
        func obtain(_ blob: Lopper_Wire_BlobRef) async throws -> String {
            try await self.obtain(blob, chunkBytes: Int(welcome.maxChunkBytes), link: link)
        }
        spec.model = try await obtain(welcome.model)
        if !welcome.modelData.isEmpty {
            // The model names its side files by path: give it a folder of its own (named by
            // its hash) holding links to the cached blobs under those names.
            let folder = URL(fileURLWithPath: options.cacheDirectory).appendingPathComponent("models").appendingPathComponent(welcome.model.sha256)
            try Self.place(spec.model, at: folder.appendingPathComponent("model.onnx"))
            for side in welcome.modelData {
                try Self.place(try await obtain(side), at: folder.appendingPathComponent(try Self.checkedLocation(side.location)))
            }
            spec.model = folder.appendingPathComponent("model.onnx").path
        }
        spec.calibration = try await obtain(welcome.calibration)
        spec.labels = welcome.hasLabels ? try await obtain(welcome.labels) : nil
        return spec
    }

    /// A verified local copy of one of the coordinator's files, fetched in chunks unless cached.
    private func obtain(_ blob: Lopper_Wire_BlobRef, chunkBytes: Int, link: CoordinatorLink) async throws -> String {
        let cache = try BlobCache(directory: options.cacheDirectory)
        let (path, transferred) = try await cache.obtain(blob, chunkBytes: chunkBytes) { offset, length in
            var request = Lopper_Wire_Request()
            request.blob.sha256 = blob.sha256
            request.blob.offset = offset
            request.blob.length = UInt32(length)
            guard case .blob(let chunk)? = try await link.call(request).kind else {
                throw CoordinatorLink.Failure.unexpected("no chunk in reply to a blob request")
            }
            return chunk
        }
        lock.withLock { summary.bytesFetched += transferred }
        logger.info(transferred > 0 ? "fetched \(blob.role) (\(transferred) bytes, SHA-256 verified)" : "\(blob.role) already cached")
        return path
    }

    /// A side file's location, if it is a relative path that stays in the model's folder.
    static func checkedLocation(_ location: String) throws -> String {
        let parts = location.split(separator: "/", omittingEmptySubsequences: false)
        guard !location.isEmpty, !location.hasPrefix("/"), parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw Failure.unsafeLocation(location)
        }
        return location
    }

    /// Hard-links a cached blob to `destination` (copies across file systems); an existing file stays.
    static func place(_ blob: String, at destination: URL) throws {
        guard !FileManager.default.fileExists(atPath: destination.path) else { return }
        try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        do {
            try FileManager.default.linkItem(atPath: blob, toPath: destination.path)
        } catch where !FileManager.default.fileExists(atPath: destination.path) {
            try FileManager.default.copyItem(atPath: blob, toPath: destination.path)
        }
    }

    /// One slot: ask for a job (handing in the previous results), run it, repeat.
    private func work(slot: Int, _ context: SlotContext) async throws {
        var results: [Lopper_Wire_JobResult] = []
        var sentBaseline = false
        while true {
            var request = Lopper_Wire_Request()
            request.lease.workerID = options.identity
            request.lease.sweepID = context.sweepID
            request.lease.want = 1
            request.lease.results = results
            if let evaluator = context.evaluator {
                request.lease.cachedGroups = evaluator.preparedGroups.sorted().map(Int32.init)
                if slot == 0 && !sentBaseline { request.lease.baseline = evaluator.baseline }
            }
            if Task.isCancelled { return }
            let reply: Lopper_Wire_Reply
            do {
                reply = try await context.link.call(request)
            } catch let error as NNGError where error.isCancelled {
                return
            }
            sentBaseline = true
            switch reply.kind {
            case .shutdown(let shutdown)?:
                lock.withLock { summary.shutdownReason = shutdown.reason }
                logger.info("coordinator: \(shutdown.reason)")
                return
            case .lease(let lease)?:
                let answered = Set(lease.accepted + lease.ignored)
                results.removeAll { answered.contains($0.jobID) }
                if lease.jobs.isEmpty {
                    do { try await Task.sleep(for: .milliseconds(Int(max(50, lease.retryAfterMs)))) } catch { return }
                    continue
                }
                for job in lease.jobs { results.append(await run(job, context)) }
            default:
                throw CoordinatorLink.Failure.unexpected("\(reply.kind.map { "\($0)" } ?? "an empty reply") to a lease request")
            }
        }
    }

    /// Runs one leased job on a thread of its own (jobs are long and must not hold one of the
    /// few threads that run heartbeats and messaging).
    private func run(_ lease: Lopper_Wire_JobLease, _ context: SlotContext) async -> Lopper_Wire_JobResult {
        var result = Lopper_Wire_JobResult()
        result.jobID = lease.jobID
        result.jobKey = lease.jobKey
        let work: () throws -> Lopper_Wire_JobResult
        switch JobKind(wire: lease.kind) {
        case .sweep?:
            guard let job = context.jobs[lease.jobKey], let evaluator = context.evaluator else {
                result.error = "this worker's job list has no job \(lease.jobKey)"
                return result
            }
            work = {
                let outcome = try evaluator.evaluate(job)
                var scored = result
                scored.score = outcome.score
                scored.removed = Int64(outcome.removed)
                scored.macsExecuted = Int64(outcome.macsExecuted)
                scored.seconds = outcome.seconds
                return scored
            }
        case let kind?:
            guard let handler = context.handlers[kind] else {
                result.error = "this worker was not told it would run \(kind.rawValue) jobs"
                return result
            }
            work = {
                let start = DispatchTime.now().uptimeNanoseconds
                var produced = result
                produced.files = try handler.run(lease.payload).map { file in
                    var wire = Lopper_Wire_ResultFile()
                    wire.name = file.name
                    wire.data = file.data
                    return wire
                }
                produced.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                return produced
            }
        case nil:
            result.error = "a job of a kind this worker does not know (\(lease.kind.rawValue))"
            return result
        }
        lock.withLock { _ = running.insert(lease.jobID) }
        defer { lock.withLock { _ = running.remove(lease.jobID) } }
        let outcome: Result<Lopper_Wire_JobResult, Error> = await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: Result { try work() }) }
        }
        switch outcome {
        case .success(let finished):
            lock.withLock { summary.jobs += 1 }
            return finished
        case .failure(let error):
            result.error = "\(error)"
            if let failure = error as? ExternalEvaluator.Failure { result.stderr = failure.stderr }
            logger.warning("job \(lease.jobKey) failed: \(error)")
            lock.withLock { summary.failed += 1 }
            return result
        }
    }

    /// Tells the coordinator this worker is leaving, so the leases of the jobs it is running go
    /// back to the queue now rather than when they expire. Waits a few seconds at most; call it
    /// when asked to stop (SIGTERM), then exit.
    public func leave() async {
        guard let link = lock.withLock({ link }) else { return }
        var request = Lopper_Wire_Request()
        request.goodbye.workerID = options.identity
        request.goodbye.jobIds = lock.withLock { running.sorted() }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = try? await link.call(request) }
            group.addTask { try? await Task.sleep(for: .seconds(3)) }
            await group.next()
            group.cancelAll()
        }
    }

    /// While jobs run, tells the coordinator every `interval` seconds that this worker is alive.
    private func heartbeat(_ link: CoordinatorLink, every interval: Double) async throws {
        while !Task.isCancelled {
            do { try await Task.sleep(for: .milliseconds(Int(max(0.05, interval) * 1000))) } catch { return }
            let ids = lock.withLock { running.sorted() }
            guard !ids.isEmpty, !lock.withLock({ finished }) else { continue }
            var request = Lopper_Wire_Request()
            request.heartbeat.workerID = options.identity
            request.heartbeat.jobIds = ids
            let reply: Lopper_Wire_Reply
            do { reply = try await link.call(request) } catch let error as NNGError where error.isCancelled { return }
            guard case .heartbeat(let ack)? = reply.kind else { continue }
            if !ack.revoked.isEmpty {
                logger.info("coordinator revoked \(ack.revoked.count) of this worker's leases (expired, or finished elsewhere)")
            }
            if ack.sweepComplete {
                lock.withLock { summary.shutdownReason = "sweep complete" }
                return
            }
        }
    }
}
