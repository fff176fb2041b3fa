import Foundation
import Logging
@testable import LopperCoordination
import LopperProtocol
import LopperSensitivity
import LopperTesting
import Testing

/// The coordinator's request handling over the in-memory transport: no socket, no process.
/// Frames are sealed and opened as a worker would; the store is read back after each reply.
/// A clock the test sets: the coordinator's `Options.clock`.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0.0
    var seconds: Double {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

@Suite struct RequestHandlingTests {
    /// A coordinator serving over an in-memory transport, and a peer speaking to it.
    final class Harness: @unchecked Sendable {
        let transport = InMemoryTransport()
        let coordinator: Coordinator
        let serving: Task<CoordinatorStatus, Error>
        private var counters: [String: UInt64] = [:]

        init(_ coordinator: Coordinator) {
            self.coordinator = coordinator
            let transport = self.transport
            // On threads of its own: the supervisor's expiry passes must not wait for the pool.
            serving = Task(executorPreference: OwnThreadsExecutor()) { try await coordinator.run(over: transport) }
        }

        func nextCounter(_ sender: String) -> UInt64 {
            counters[sender, default: 0] += 1
            return counters[sender]!
        }

        /// The sealed bytes of `request` from `sender` (with its next counter unless given).
        func seal(_ request: Lopper_Wire_Request, from sender: String, counter: UInt64? = nil) throws -> [UInt8] {
            try FrameCodec(identity: sender, token: nil).seal(request, to: WireProtocol.coordinator, counter: counter ?? nextCounter(sender))
        }

        /// Sends sealed bytes; the reply's bytes (nil: none).
        func send(_ bytes: [UInt8]) async throws -> [UInt8]? { try await transport.exchange(bytes) }

        /// Sends `request` from `sender` and opens the reply.
        func call(_ request: Lopper_Wire_Request, from sender: String, counter: UInt64? = nil) async throws -> Lopper_Wire_Reply {
            let reply = try #require(try await send(try seal(request, from: sender, counter: counter)))
            return try Self.open(reply, for: sender)
        }

        static func open(_ bytes: [UInt8], for sender: String) throws -> Lopper_Wire_Reply {
            let codec = FrameCodec(identity: sender, token: nil)
            return try codec.payload(of: try codec.open(bytes), as: Lopper_Wire_Reply.self)
        }
    }

    static func quiet() -> Logger {
        var logger = Logger(label: "test.coordinator")
        logger.logLevel = .critical
        return logger
    }

    /// A sweep of chain24 (one criterion, two levels) with a store in `directory`.
    static func sweep(in directory: URL, configure: (inout Coordinator.Options) -> Void = { _ in })
        throws -> (harness: Harness, offer: SweepOffer, store: String) {
        var spec = try SweepSpec.load(yaml: ProcessCluster.config)
        spec.criteria = ["l1"]
        spec.levels = [0.25, 0.5]
        let setup = try SweepSetup(spec: spec)
        let offer = try SweepOffer(setup: setup)
        let store = directory.appendingPathComponent("sweep.db").path
        var options = Coordinator.Options(listen: [])
        options.lingerSeconds = 0.2
        // Time stands still unless a test moves it: no lease expires while a loaded machine
        // keeps the test waiting.
        let frozen = ManualClock()
        options.clock = { frozen.seconds }
        configure(&options)
        let coordinator = try Coordinator(store: try setup.openStore(at: store), offer: offer, options: options, logger: quiet())
        return (Harness(coordinator), offer, store)
    }

    static func lease(_ worker: String, sweep: String, want: UInt32 = 1, results: [Lopper_Wire_JobResult] = [], baseline: Double? = nil) -> Lopper_Wire_Request {
        var request = Lopper_Wire_Request()
        request.lease.workerID = worker
        request.lease.sweepID = sweep
        request.lease.want = want
        request.lease.results = results
        if let baseline { request.lease.baseline = baseline }
        return request
    }

    static func result(_ job: Lopper_Wire_JobLease, score: Double = 0.5, error: String = "", files: [Lopper_Wire_ResultFile] = []) -> Lopper_Wire_JobResult {
        var result = Lopper_Wire_JobResult()
        result.jobID = job.jobID
        result.jobKey = job.jobKey
        result.score = score
        result.error = error
        result.files = files
        return result
    }

    @Test func resentRequestsAreAnsweredOnceAndResultsStoredBeforeTheReply() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (harness, offer, storePath) = try Self.sweep(in: directory)
        defer { harness.serving.cancel() }
        var hello = Lopper_Wire_Request()
        hello.hello.workerID = "w1"
        guard case .welcome(let welcome)? = try await harness.call(hello, from: "w1").kind else { Issue.record("no welcome"); return }
        #expect(welcome.sweepID == offer.sweepID && welcome.kinds == [.sweep])

        let leaseBytes = try harness.seal(Self.lease("w1", sweep: offer.sweepID, want: 2), from: "w1")
        let first = try #require(try await harness.send(leaseBytes))
        // nng resends the same bytes when a reply is lost: the same reply, not two more leases.
        #expect(try await harness.send(leaseBytes) == first)
        guard case .lease(let lease)? = try Harness.open(first, for: "w1").kind else { Issue.record("no lease"); return }
        #expect(lease.jobs.count == 2 && lease.jobs.allSatisfy { $0.kind == .sweep && $0.payload.isEmpty })
        let store = try ResultsStore(path: storePath, readOnly: true)
        #expect(try store.allJobs().filter { $0.state == .running }.map(\.attempts) == [1, 1])

        let results = Self.lease("w1", sweep: offer.sweepID, results: lease.jobs.map { Self.result($0, score: 0.25) }, baseline: 0.0)
        let resultBytes = try harness.seal(results, from: "w1")
        let answered = try #require(try await harness.send(resultBytes))
        guard case .lease(let taken)? = try Harness.open(answered, for: "w1").kind else { Issue.record("no lease"); return }
        #expect(taken.accepted.sorted() == lease.jobs.map(\.jobID).sorted())
        // Committed before the reply: the store already has both results and the baseline.
        let done = try store.allJobs().filter { $0.state == .done }
        #expect(done.count == 2 && done.allSatisfy { $0.score == 0.25 })
        #expect(try store.baseline()?.value == 0.0)
        #expect(try await harness.send(resultBytes) == answered, "a resend of the results gets the first reply")

        // A second worker's different baseline does not replace the first.
        _ = try await harness.call(Self.lease("w2", sweep: offer.sweepID, baseline: 1.0), from: "w2")
        #expect(try store.baseline()?.value == 0.0)

        // A counter far below the sender's window is a replay.
        var status = Lopper_Wire_Request()
        status.status = Lopper_Wire_StatusRequest()
        _ = try await harness.call(status, from: "w1", counter: 10_000)
        guard case .rejected(let replay)? = try await harness.call(hello, from: "w1", counter: 5).kind else { Issue.record("replay answered"); return }
        #expect(replay.reason.contains("used before"))
        #expect(harness.coordinator.status().rejected["replay"] == 1)
    }

    @Test func leasesOfAnotherSweepOrAnotherWorkerAreRefused() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (harness, offer, _) = try Self.sweep(in: directory)
        defer { harness.serving.cancel() }
        guard case .rejected(let other)? = try await harness.call(Self.lease("w1", sweep: "0123456789abcdef"), from: "w1").kind else {
            Issue.record("a lease for another sweep was answered"); return
        }
        #expect(other.reason.contains("does not run sweep 0123456789ab"))
        guard case .rejected(let impostor)? = try await harness.call(Self.lease("w2", sweep: offer.sweepID), from: "w1").kind else {
            Issue.record("a request naming another worker was answered"); return
        }
        #expect(impostor.reason.contains("names worker 'w2'"))
        let status = harness.coordinator.status()
        #expect(status.rejected["unknown-sweep"] == 1 && status.rejected["malformed"] == 1 && status.jobsLeased == 0)
    }

    @Test func expiredLeasesGoBackHeartbeatsRenewThemAndLateResultsAreIgnored() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // The coordinator's clock moves only when the test moves it: a loaded machine cannot
        // stall a heartbeat past the lease.
        let clock = ManualClock()
        let (harness, offer, storePath) = try Self.sweep(in: directory) { options in
            options.leaseSeconds = 2
            options.heartbeatSeconds = 0.5
            options.clock = { clock.seconds }
        }
        defer { harness.serving.cancel() }
        guard case .lease(let lease)? = try await harness.call(Self.lease("w1", sweep: offer.sweepID), from: "w1").kind,
              let job = lease.jobs.first else { Issue.record("no lease"); return }
        // w2 renews its own lease by heartbeats while w1's expires.
        guard case .lease(let kept)? = try await harness.call(Self.lease("w2", sweep: offer.sweepID), from: "w2").kind,
              let held = kept.jobs.first else { Issue.record("no lease"); return }
        var beat = Lopper_Wire_Request()
        beat.heartbeat.workerID = "w2"
        beat.heartbeat.jobIds = [held.jobID, job.jobID]
        var requeued: Lopper_Wire_JobLease?
        for step in 1...8 {
            clock.seconds = Double(step) * 0.5
            guard case .heartbeat(let ack)? = try await harness.call(beat, from: "w2").kind else { Issue.record("no ack"); return }
            #expect(ack.extended == [held.jobID] && ack.revoked == [job.jobID])
        }
        // The supervisor polls every 0.25 s of wall time; wait (boundedly) for its expiry pass.
        for _ in 0..<400 where harness.coordinator.status().leasesExpired == 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(harness.coordinator.status().leasesExpired == 1, "only w1's lease expired")
        guard case .lease(let again)? = try await harness.call(Self.lease("w3", sweep: offer.sweepID, want: 8), from: "w3").kind else {
            Issue.record("no lease"); return
        }
        requeued = again.jobs.first { $0.jobID == job.jobID }
        #expect(requeued != nil, "the expired job is leased again")
        #expect(!again.jobs.contains { $0.jobID == held.jobID }, "the renewed lease stays w2's")
        guard case .lease(let late)? = try await harness.call(Self.lease("w1", sweep: offer.sweepID, results: [Self.result(job)]), from: "w1").kind else {
            Issue.record("no lease"); return
        }
        #expect(late.ignored == [job.jobID] && late.accepted.isEmpty)
        let row = try ResultsStore(path: storePath, readOnly: true).allJobs().first { $0.id == job.jobID }
        #expect(row?.state == .running && row?.worker == "w3" && row?.attempts == 2)
    }

    @Test func failedJobsStayFailedUnlessRetried() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var spec = try SweepSpec.load(yaml: ProcessCluster.config)
        spec.criteria = ["l1"]
        spec.levels = [0.5]
        let setup = try SweepSetup(spec: spec)
        let store = try setup.openStore(at: directory.appendingPathComponent("sweep.db").path)
        let victim = try #require(try store.allJobs().first)
        try store.recordFailure(victim.id, "made to fail", worker: "test")
        for retry in [false, true] {
            var options = Coordinator.Options(listen: [])
            options.retryFailed = retry
            let status = try Coordinator(store: store, offer: try SweepOffer(setup: setup), options: options, logger: Self.quiet()).status()
            #expect(status.jobsFailed == (retry ? 0 : 1) && status.jobsQueued == status.jobsTotal - status.jobsFailed, "retry \(retry)")
        }
    }

    @Test func batchJobsCarryTheirKindAndPayloadAndTheirOutcomesAreDelivered() async throws {
        var offer = SweepOffer(sweepID: "batch-sweep", specJSON: "{}", blobs: [], jobCount: 0)
        offer.kinds = [.export]
        let delivered = Delivered()
        let jobs = (0..<3).map { BatchJob(key: "job-\($0)", kind: .export, payload: Data("payload \($0)".utf8)) }
        var options = Coordinator.Options(listen: [])
        options.lingerSeconds = 0.2
        let clock = ManualClock()
        options.clock = { clock.seconds }
        let coordinator = try Coordinator(batch: JobBatch(jobs: jobs) { job, outcome in delivered.add(job.key, outcome) },
                                          offer: offer, options: options, logger: Self.quiet())
        let harness = Harness(coordinator)
        var hello = Lopper_Wire_Request()
        hello.hello.workerID = "w1"
        guard case .welcome(let welcome)? = try await harness.call(hello, from: "w1").kind else { Issue.record("no welcome"); return }
        #expect(welcome.kinds == [.export])
        guard case .lease(let lease)? = try await harness.call(Self.lease("w1", sweep: "batch-sweep", want: 3), from: "w1").kind else {
            Issue.record("no lease"); return
        }
        #expect(lease.jobs.map(\.jobKey).sorted() == ["job-0", "job-1", "job-2"])
        #expect(lease.jobs.allSatisfy { $0.kind == .export && $0.payload == Data("payload \($0.jobKey.dropFirst(4))".utf8) })
        func file(_ name: String) -> Lopper_Wire_ResultFile {
            var file = Lopper_Wire_ResultFile()
            file.name = name
            file.data = Data(name.utf8)
            return file
        }
        let byKey = Dictionary(uniqueKeysWithValues: lease.jobs.map { ($0.jobKey, $0) })
        let results = [Self.result(byKey["job-0"]!, files: [file("model.onnx")]),
                       Self.result(byKey["job-1"]!, error: "infeasible budget: latency"),
                       Self.result(byKey["job-2"]!, files: [file("../escape")])]
        guard case .shutdown? = try await harness.call(Self.lease("w1", sweep: "batch-sweep", results: results), from: "w1").kind else {
            Issue.record("the batch is not over after its last result"); return
        }
        clock.seconds = 60  // past the linger: the coordinator ends
        let status = try await harness.serving.value
        #expect(status.jobsDone == 1 && status.jobsFailed == 2 && status.complete)
        let outcomes = delivered.outcomes
        #expect(try outcomes["job-0"]?.get() == [ProducedFile(name: "model.onnx", data: Data("model.onnx".utf8))])
        #expect(Self.reason(outcomes["job-1"]) == "infeasible budget: latency")
        #expect(Self.reason(outcomes["job-2"])?.contains("'../escape', which is not a plain file name") == true)
    }

    static func reason(_ outcome: Result<[ProducedFile], JobFailure>?) -> String? {
        guard case .failure(let failure)? = outcome else { return nil }
        return failure.reason
    }

    final class Delivered: @unchecked Sendable {
        private let lock = NSLock()
        private var byKey: [String: Result<[ProducedFile], JobFailure>] = [:]

        func add(_ key: String, _ outcome: Result<[ProducedFile], JobFailure>) {
            lock.withLock {
                #expect(byKey[key] == nil, "\(key) delivered twice")
                byKey[key] = outcome
            }
        }

        var outcomes: [String: Result<[ProducedFile], JobFailure>] { lock.withLock { byKey } }
    }
}
