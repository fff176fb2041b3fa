import Foundation
import Testing
import LopperSensitivity
import LopperTesting
#if canImport(Glibc)
import Glibc
#endif

/// A coordinator and workers as real `lopper` processes on this machine, for the fault tests.
final class ProcessCluster: @unchecked Sendable {
    let directory: URL
    let db: String
    let address: String
    let tokenFile: String
    let sweepArguments: [String]
    private(set) var coordinator: Process?
    private(set) var workers: [String: Process] = [:]

    static let config = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Config/sweeps/chain24.yaml").path

    static let repository = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
    static let netns = repository.appendingPathComponent("Cluster/netns.sh").path

    /// - Parameter address: where the coordinator listens (default: a random loopback port).
    init(levels: String = "0.2,0.4,0.6,0.8", criteria: String = "l1", address: String? = nil, extra: [String] = []) throws {
        directory = try Fixtures.temporaryDirectory()
        db = directory.appendingPathComponent("sweep.db").path
        self.address = address ?? "tcp://127.0.0.1:\(Int.random(in: 20000...60000))"
        tokenFile = directory.appendingPathComponent("token").path
        try "test-secret-\(UUID().uuidString)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        sweepArguments = ["--config", Self.config, "--criterion", criteria, "--levels", levels] + extra
    }

    deinit {
        for process in [coordinator].compactMap({ $0 }) + workers.values where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }

    /// Starts `lopper ARGS`, on simulated host `host` (Cluster/netns.sh) when given.
    private func launch(_ arguments: [String], log: String, host: Int? = nil) throws -> Process {
        let process = Process()
        if let host {
            process.executableURL = URL(fileURLWithPath: Self.netns)
            process.arguments = ["exec", String(host), LopperBinary.path] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: LopperBinary.path)
            process.arguments = arguments
        }
        let path = directory.appendingPathComponent(log).path
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    func log(_ name: String) -> String {
        (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }

    @discardableResult
    func startCoordinator(_ extra: [String] = [], host: Int? = nil) throws -> Process {
        let process = try launch(["coordinator"] + sweepArguments + ["--db", db, "--listen", address, "--token-file", tokenFile,
                                                                     "--lease-seconds", "3", "--heartbeat-seconds", "0.5"] + extra,
                                 log: "coordinator.log", host: host)
        coordinator = process
        return process
    }

    @discardableResult
    func startWorker(_ id: String, _ extra: [String] = [], host: Int? = nil) throws -> Process {
        let process = try launch(["worker", "--connect", address, "--token-file", tokenFile, "--jobs", "1", "--id", id,
                                  "--cache-dir", directory.appendingPathComponent("cache-\(id)").path, "--patience", "60"] + extra,
                                 log: "\(id).log", host: host)
        workers[id] = process
        return process
    }

    func rows() -> [ResultsStore.Row] {
        guard FileManager.default.fileExists(atPath: db) else { return [] }
        return (try? ResultsStore(path: db, readOnly: true).allJobs()) ?? []
    }

    /// Polls every 20 ms until `condition` holds, then runs `action` at once; false on timeout.
    /// Both run on a thread of their own: Swift concurrency's threads are shared with every
    /// test running in parallel and may be busy for seconds, longer than the moments watched for.
    @discardableResult
    func wait(seconds: Double = 120, until condition: @escaping @Sendable () -> Bool,
              then action: @escaping @Sendable () -> Void = {}) async -> Bool {
        (try? await offThePool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition() {
                    action()
                    return true
                }
                usleep(20_000)
            }
            return false
        }) ?? false
    }

    /// Rows of the store, read at the moment the action of a `wait` runs.
    final class Snapshot: @unchecked Sendable {
        var rows: [ResultsStore.Row] = []
    }

    /// Waits for a process to exit (killing it after `seconds`) and returns its status.
    func finish(_ process: Process, seconds: Double = 180) async -> Int32 {
        nonisolated(unsafe) let process = process
        if !(await wait(seconds: seconds, until: { !process.isRunning })) {
            kill(process.processIdentifier, SIGKILL)
            _ = await wait(seconds: 10, until: { !process.isRunning })
        }
        return process.terminationStatus
    }

    /// Runs `Cluster/netns.sh ARGS` and returns its exit status.
    @discardableResult
    static func netns(_ arguments: String...) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: netns)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Scores by job key, from this cluster's store.
    func scores() -> [String: Double?] { Dictionary(uniqueKeysWithValues: rows().map { ($0.job.key, $0.score) }) }

    /// The same sweep in one process: the reference table.
    func referenceScores() async throws -> [String: Double?] {
        let reference = directory.appendingPathComponent("reference.db").path
        let arguments = ["sweep"] + sweepArguments + ["--db", reference, "--jobs", "2", "--quiet"]
        let run = try await offThePool { try LopperBinary.run(arguments) }
        precondition(run.status == 0, run.stderr)
        return Dictionary(uniqueKeysWithValues: try ResultsStore(path: reference).allJobs().map { ($0.job.key, $0.score) })
    }
}

/// The suites that build clusters of network namespaces (the netns cluster, the private Slurm):
/// one at a time, so that one's partitions and timings are not another's load.
@Suite(.serialized) enum NamespaceClusters {}
