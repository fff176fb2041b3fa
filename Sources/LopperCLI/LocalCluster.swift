import CProcessControl
import Crypto
import Foundation
import Logging
import LopperCoordination
import LopperSensitivity

/// `lopper sweep --workers N` and `lopper export --workers N`: a coordinator in this process and
/// N `lopper worker` processes on this machine over ipc://, signed with a fresh random token.
/// The cluster code path, locally.
///
/// The workers live no longer than this process: SIGINT or SIGTERM stops them and removes the
/// temporary folder, a worker whose parent dies is killed by the kernel, and when every
/// worker has exited before the jobs are over the run ends with an error.
struct LocalCluster {
    var workers: Int
    var slotsPerWorker: Int
    var cacheMB: Int
    var logger: Logger

    /// Tells a worker it is a local one, and the pid of the `lopper sweep` that started it.
    static let parentVariable = "LOPPER_LOCAL_PARENT"

    enum Failure: Error, CustomStringConvertible {
        /// `kept` says what became of the finished jobs.
        case workersExited([String], done: Int, total: Int, kept: String)
        case noParentDeathSignal(String)

        var description: String {
            switch self {
            case .workersExited(let exits, let done, let total, let kept):
                return "all \(exits.count) workers exited before the jobs were over (\(exits.joined(separator: ", "))); "
                    + "\(done) of \(total) jobs finished\(kept)"
            case .noParentDeathSignal(let why):
                return "a local worker cannot ask to be stopped with its parent: \(why)"
            }
        }
    }

    /// Runs the coordinator `make` builds from the local options (address, token, timings) with
    /// the local workers until its jobs are over; returns its final counters.
    /// - Parameters:
    ///   - kept: what became of the finished jobs, for the error when the workers all exit.
    ///   - progress: the coordinator's progress and how many workers are running.
    func run(kept: String, progress: (@Sendable (SweepRunner.Progress, _ liveWorkers: Int) -> Void)? = nil,
             _ make: @escaping (Coordinator.Options) throws -> Coordinator) async throws -> CoordinatorStatus {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-local-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let secret = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
        let address = "ipc://\(folder.path)/coordinator.ipc"
        // Workers start while the coordinator reads the inputs; they wait for it to listen.
        let launcher = LauncherThread()
        defer { launcher.finish() }
        let processes = try await launcher.run {
            try (0..<self.workers).map { index in
                try self.launchWorker(index, address: address, secret: secret, cache: folder.appendingPathComponent("cache").path)
            }
        }
        defer { Self.stop(processes) }
        let logger = self.logger
        let signals = StopSignals { number in
            logger.warning("stopping on signal \(number): stopping the workers")
            Self.stop(processes)
            try? FileManager.default.removeItem(at: folder)
            exit(128 + number)
        }
        defer { signals.cancel() }

        var options = Coordinator.Options(listen: [address], token: Token(secret: Array(secret.utf8)))
        options.leaseSeconds = 60
        options.heartbeatSeconds = 2
        options.lingerSeconds = 2
        options.workerPatience = 120
        let coordinator = try make(options)
        let status = try await withThrowingTaskGroup(of: CoordinatorStatus?.self) { group in
            group.addTask {
                try await coordinator.run(progress: progress.map { report in { report($0, processes.filter(\.isRunning).count) } })
            }
            group.addTask {
                try await Self.watch(processes, coordinator: coordinator, kept: kept, signals: signals)
                return nil
            }
            while let result = try await group.next() {
                guard let status = result else { continue }
                group.cancelAll()
                return status
            }
            throw CancellationError()
        }
        // Workers hear that the jobs are over when they next ask. One that had not reached the
        // coordinator before a short run ended would wait out its patience: it is stopped.
        let deadline = Date().addingTimeInterval(options.lingerSeconds + 3)
        while Date() < deadline && processes.contains(where: \.isRunning) { usleep(20_000) }
        let stopped = Set(processes.filter(\.isRunning).map(\.processIdentifier))
        Self.stop(processes)
        if let failed = processes.first(where: { $0.terminationStatus != 0 && !stopped.contains($0.processIdentifier) }) {
            logger.warning("a worker exited with status \(failed.terminationStatus)")
        }
        return status
    }

    /// A sweep on the local workers, resuming the store at `storePath`.
    func sweep(_ spec: SweepSpec, storePath: String, retryFailed: Bool,
               progress report: @escaping (SweepRunner.Progress, _ liveWorkers: Int) -> Void) async throws -> SweepRunner.Progress {
        let setup = try SweepSetup(spec: spec)
        let store = try setup.openStore(at: storePath)
        let wanted = Set(setup.jobs.map(\.key))
        let start = try store.allJobs().filter { wanted.contains($0.job.key) && ($0.state == .done || ($0.state == .failed && !retryFailed)) }.count
        let total = setup.jobs.count
        let logger = self.logger
        let kept = " and are kept in \(storePath): run the same command again to resume"
        let status = try await run(kept: kept, progress: { progress, live in
            report(SweepRunner.Progress(done: progress.done - start, total: total - start,
                                        failed: progress.failed, elapsed: progress.elapsed), live)
        }) { options in
            var options = options
            options.retryFailed = retryFailed
            return try Coordinator(store: store, offer: try SweepOffer(setup: setup), options: options, logger: logger)
        }
        return SweepRunner.Progress(done: Int(status.jobsDone + status.jobsFailed), total: total, failed: Int(status.jobsFailed),
                                    elapsed: status.uptimeSeconds)
    }

    /// Throws once every worker has exited while the sweep is not over (unless they were stopped
    /// by a signal's handler, which ends the process itself); returns only when cancelled.
    private static func watch(_ processes: [Process], coordinator: Coordinator, kept: String, signals: StopSignals) async throws {
        while true {
            try await Task.sleep(for: .milliseconds(100))
            guard processes.allSatisfy({ !$0.isRunning }), !signals.isStopping else { continue }
            let status = coordinator.status()
            if status.complete { continue }
            let exits = processes.enumerated().map { index, process in
                "local-\(index + 1) " + (process.terminationReason == .uncaughtSignal
                    ? "killed by signal \(process.terminationStatus)" : "exit status \(process.terminationStatus)")
            }
            throw Failure.workersExited(exits, done: Int(status.jobsDone + status.jobsFailed), total: Int(status.jobsTotal), kept: kept)
        }
    }

    /// SIGTERM to the running workers (they hand their leases back and exit), SIGKILL to any
    /// still running 5 s later.
    static func stop(_ processes: [Process]) {
        for process in processes where process.isRunning { process.terminate() }
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && processes.contains(where: \.isRunning) { usleep(20_000) }
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for process in processes { process.waitUntilExit() }
    }

    /// In a local worker: asks the kernel to kill it (SIGKILL) when the parent `lopper sweep`
    /// dies, and exits at once if it already has. Does nothing in a worker started otherwise.
    /// The coordinator died with the parent, so there are no leases to hand back, and a signal
    /// that cannot be caught cannot be lost on its way to a handler.
    ///
    /// The request belongs to the thread that makes it, and is forgotten when that thread exits;
    /// Dispatch retires idle pool threads, so it is made from a thread that lives as long as the
    /// process.
    static func dieWithParent() throws {
        guard let parent = ProcessInfo.processInfo.environment[parentVariable].flatMap(Int32.init) else { return }
        let asked = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var error: Int32 = 0
        Thread.detachNewThread {
            error = lopper_signal_on_parent_death(SIGKILL) == 0 ? 0 : errno
            asked.signal()
            while true { pause() }
        }
        asked.wait()
        guard error == 0 else { throw Failure.noParentDeathSignal(String(cString: strerror(error))) }
        if getppid() != parent { exit(128 + SIGKILL) }
    }

    /// This program's own executable (`lopper`), to start workers from.
    static var executable: URL {
        let proc = URL(fileURLWithPath: "/proc/self/exe")
        if FileManager.default.fileExists(atPath: proc.path) { return proc.resolvingSymlinksInPath() }
        return Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
    }

    private func launchWorker(_ index: Int, address: String, secret: String, cache: String) throws -> Process {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = ["worker", "--connect", address, "--jobs", String(slotsPerWorker), "--cache-dir", cache,
                             "--cache-mb", String(cacheMB / max(1, workers)), "--id", "local-\(index + 1)", "--patience", "120"]
            // Workers report warnings only; the coordinator's progress speaks for them.
            + ["--quiet"]
        var environment = ProcessInfo.processInfo.environment
        environment["LOPPER_TOKEN"] = secret
        environment[Self.parentVariable] = String(getpid())
        // Their own temporary files (spilled activations) go in the folder removed at the end.
        environment["TMPDIR"] = URL(fileURLWithPath: cache).deletingLastPathComponent().path
        process.environment = environment
        try process.run()
        return process
    }
}

/// A thread that starts child processes and then lives until `finish()`. The kernel sends a
/// child its parent-death signal when the *thread* that started it exits, not the process;
/// Dispatch threads come and go, and an async program's main thread exits early.
final class LauncherThread: @unchecked Sendable {
    private let finished = DispatchSemaphore(value: 0)

    /// Runs `body` on the thread (once).
    func run<T>(_ body: @escaping () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { [finished] in
                continuation.resume(with: Result { try body() })
                finished.wait()
            }
        }
    }

    func finish() { finished.signal() }
}
