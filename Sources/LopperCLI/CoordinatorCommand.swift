import ArgumentParser
import Foundation
import Logging
import LopperCoordination
import LopperProtocol
import LopperSensitivity
import LopperStatus

struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Serve a sweep's jobs to workers over the network and gather their results.",
        discussion: """
            Takes the same sweep settings as `lopper sweep`. Workers (`lopper worker --connect ADDR`) fetch \
            the model and data by SHA-256, pull jobs, and send results; every change is in the store (--db) \
            before it is acknowledged, so a coordinator restarted on the same store resumes. Exits when \
            every job is done or failed.

            Example (then run the example of lopper worker --help, in another terminal):
              head -c 32 /dev/urandom | base64 > token
              lopper coordinator --config Config/sweeps/chain24.yaml --db chain24.db \\
                --listen tcp://127.0.0.1:7450 --token-file token
            """)

    @OptionGroup var sweep: SweepOptions

    @Option(help: ArgumentHelp("Address to listen on (repeatable): tcp://0.0.0.0:7450, tls+tcp://…, ipc:///path.", valueName: "url"))
    var listen: [String] = ["tcp://0.0.0.0:7450"]

    @OptionGroup var network: NetworkOptions

    @Option(name: .customLong("lease-seconds"), parsing: .unconditional, help: "A job goes back to the queue when its worker has not sent a heartbeat for this long.")
    var leaseSeconds = 30.0

    @Option(name: .customLong("heartbeat-seconds"), parsing: .unconditional, help: "How often workers holding jobs send a heartbeat.")
    var heartbeatSeconds = 5.0

    @Option(name: .customLong("max-attempts"), parsing: .unconditional, help: "Times a job may be leased; when the last lease also ends without a result, the job is marked failed.")
    var maxAttempts = 3

    @Option(name: .customLong("worker-patience"), parsing: .unconditional,
            help: ArgumentHelp("Exit with an error when no worker has sent a message for this many seconds while jobs remain (default: wait for workers indefinitely).",
                               valueName: "seconds"))
    var workerPatience: Double?

    @Option(help: ArgumentHelp("Serve a live status page, /status.json and Prometheus /metrics at this address (loopback, or with --token-file: clients then send the token).",
                               valueName: "host:port"))
    var http: String?

    @Flag(help: "Print only warnings and errors.")
    var quiet = false

    /// `127.0.0.1:8080` or `[::1]:8080` as host and port.
    static func hostAndPort(_ text: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port),
              colon > text.startIndex else {
            throw ValidationError("--http takes host:port (for example 127.0.0.1:8080), got '\(text)'.")
        }
        return (String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
    }

    func validate() throws {
        if let http, !StatusServer.isLoopback(try Self.hostAndPort(http).host), try network.token() == nil {
            throw ValidationError("--http \(http) is not a loopback address: give --token-file too (status clients must then send the token).")
        }
        guard leaseSeconds > 0, heartbeatSeconds > 0 else { throw ValidationError("--lease-seconds and --heartbeat-seconds must be positive.") }
        guard heartbeatSeconds < leaseSeconds else { throw ValidationError("--heartbeat-seconds must be shorter than --lease-seconds.") }
        if let workerPatience, workerPatience <= 0 { throw ValidationError("--worker-patience must be positive.") }
        guard maxAttempts >= 1 else { throw ValidationError("--max-attempts must be at least 1.") }
        guard !listen.isEmpty else { throw ValidationError("Give at least one --listen address.") }
        if let tls = listen.first(where: { $0.hasPrefix("tls+") }), network.tlsCertificate == nil || network.tlsKey == nil {
            throw ValidationError("--listen \(tls) needs --tls-cert and --tls-key (the coordinator's certificate and its private key).")
        }
    }

    func options() throws -> Coordinator.Options {
        var options = Coordinator.Options(listen: listen, token: try network.token(), tls: network.tls(.server))
        options.leaseSeconds = leaseSeconds
        options.heartbeatSeconds = heartbeatSeconds
        options.maxAttempts = maxAttempts
        options.workerPatience = workerPatience
        options.retryFailed = sweep.retryFailed
        return options
    }

    func run() async throws {
        var logger = Logger(label: "lopper.coordinator")
        logger.logLevel = quiet ? .warning : .info
        let setup = try SweepSetup(spec: try sweep.spec())
        let store = try setup.openStore(at: sweep.db)
        let coordinator = try Coordinator(store: store, offer: try SweepOffer(setup: setup), options: try options(), logger: logger)
        let bar = ProgressBar(label: "sweep", unit: "jobs", quiet: quiet)
        let status = try await run(coordinator, logger: logger) { progress in
            bar.update(done: progress.done, total: progress.total, failed: progress.failed,
                       workers: Int(coordinator.status().workersAlive))
        }
        bar.finish()
        let refused = status.rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        logger.notice("coordinator done: \(status.jobsDone) done, \(status.jobsFailed) failed; leases expired \(status.leasesExpired), results ignored \(status.resultsIgnored), speculative leases \(status.speculativeLeases); refused: \(refused.isEmpty ? "none" : refused)")
        if !quiet {
            print("\(status.jobsDone) of \(status.jobsTotal) jobs done\(status.jobsFailed > 0 ? ", \(status.jobsFailed) failed" : "") → \(sweep.db)")
        }
    }

    /// Runs the coordinator, and beside it the status server when --http is given (stopped when the sweep ends).
    private func run(_ coordinator: Coordinator, logger: Logger, progress: @escaping @Sendable (SweepRunner.Progress) -> Void) async throws -> CoordinatorStatus {
        guard let http else { return try await coordinator.run(progress: progress) }
        let (host, port) = try Self.hostAndPort(http)
        let token = StatusServer.isLoopback(host) ? nil : try network.token()
        let server = StatusServer(host: host, port: port, authorize: token.map { token in { @Sendable secret in token.matches(secret: secret) } }, storePath: sweep.db,
                                  generator: "lopper \(Lopper.configuration.version)", snapshot: { StatusSnapshot(coordinator.status()) })
        return try await withThrowingTaskGroup(of: CoordinatorStatus?.self) { group in
            group.addTask {
                try await server.run { port in logger.notice("status page at http://\(host.contains(":") ? "[\(host)]" : host):\(port)/ (also /status.json, /metrics)") }
                return nil
            }
            group.addTask { try await coordinator.run(progress: progress) }
            while let result = try await group.next() {
                guard let status = result else { continue }
                group.cancelAll()
                return status
            }
            throw CancellationError()
        }
    }
}

extension StatusSnapshot {
    init(_ status: CoordinatorStatus) {
        self.init(sweepID: status.sweepID, jobsTotal: Int(status.jobsTotal), jobsQueued: Int(status.jobsQueued), jobsLeased: Int(status.jobsLeased),
                  jobsDone: Int(status.jobsDone), jobsFailed: Int(status.jobsFailed), workersAlive: Int(status.workersAlive),
                  bytesSent: Int(status.bytesSent), bytesReceived: Int(status.bytesReceived),
                  refused: status.rejected.mapValues { Int($0) }, uptimeSeconds: status.uptimeSeconds, complete: status.complete)
    }
}
