import ArgumentParser
import Foundation
import Logging
import LopperCoordination

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a coordinator's jobs (a sweep's, or an export batch's) until they are over.",
        discussion: """
            Fetches the sweep's model and data by SHA-256 into --cache-dir (skipped when already there), \
            then pulls jobs. Each job runs single-threaded; --jobs jobs run at once.

            Example:
              lopper worker --connect tcp://127.0.0.1:7450 --token-file token
            """)

    @Option(help: ArgumentHelp("The coordinator's address, e.g. tcp://host:7450.", valueName: "url"))
    var connect: String

    @Option(parsing: .unconditional, help: "Jobs run at once (each single-threaded, as in lopper sweep --jobs).")
    var jobs = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("cache-dir"), help: ArgumentHelp("Where fetched files are kept, by hash.", valueName: "dir"))
    var cacheDirectory = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/lopper").path

    @Option(name: .customLong("cache-mb"), help: "Memory for cached dense activations; beyond it they spill to disk.")
    var cacheMB = 512

    @Option(parsing: .unconditional, help: "Give up when the coordinator has not answered for this many seconds.")
    var patience = 600.0

    @Option(help: "This worker's name in the coordinator's log and store (default: host-pid-random).")
    var id: String?

    @OptionGroup var network: NetworkOptions

    @Flag(help: "Print only warnings and errors.")
    var quiet = false

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1.") }
        guard patience > 0 else { throw ValidationError("--patience must be positive.") }
    }

    func run() async throws {
        var logger = Logger(label: "lopper.worker")
        logger.logLevel = quiet ? .warning : .info
        var options = Worker.Options(address: connect, cacheDirectory: cacheDirectory, token: try network.token(), tls: network.tls(.client))
        options.slots = jobs
        options.cacheBytes = cacheMB << 20
        options.patience = patience
        options.handlers = [.export: ExportJobHandler.factory]
        if let id { options.identity = id }
        let worker = Worker(options: options, logger: logger)
        let log = logger
        // SIGTERM (Kubernetes scaling down, Slurm ending, a local sweep's parent stopping)
        // or Ctrl-C: hand the running jobs' leases back at once, then exit without waiting for them.
        let signals = StopSignals { number in
            // Leaving waits 3 s at most for the coordinator; past 5 s, exit whatever is stuck.
            DispatchQueue.global().asyncAfter(deadline: .now() + 5) { _exit(128 + number) }
            Task {
                log.warning("stopping on signal \(number); handing this worker's leases back")
                await worker.leave()
                Foundation.exit(128 + number)
            }
        }
        defer { signals.cancel() }
        try LocalCluster.dieWithParent()
        let summary = try await worker.run()
        logger.info("worker done: \(summary.jobs) jobs, \(summary.failed) failed, \(summary.bytesFetched) bytes fetched (\(summary.shutdownReason))")
    }
}
