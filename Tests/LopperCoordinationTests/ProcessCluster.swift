import Foundation
import LopperSensitivity
import LopperTesting
#if canImport(Glibc)
import Glibc
#endif

/// A coordinator and workers as real `lopper` processes on this machine, for the fault tests.
final class ProcessCluster {
    let directory: URL
    let db: String
    let address: String
    let tokenFile: String
    let sweepArguments: [String]
    private(set) var coordinator: Process?
    private(set) var workers: [String: Process] = [:]

    static let config = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Config/sweeps/chain24.yaml").path

    init(levels: String = "0.2,0.4,0.6,0.8", transport: String = "tcp") throws {
        directory = try Fixtures.temporaryDirectory()
        db = directory.appendingPathComponent("sweep.db").path
        address = transport == "tcp" ? "tcp://127.0.0.1:\(Int.random(in: 20000...60000))" : "ipc://\(directory.path)/coordinator.ipc"
        tokenFile = directory.appendingPathComponent("token").path
        try "test-secret-\(UUID().uuidString)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        sweepArguments = ["--config", Self.config, "--criterion", "l1", "--levels", levels]
    }

    deinit {
        for process in [coordinator].compactMap({ $0 }) + workers.values where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }

    private func launch(_ arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LopperBinary.path)
        process.arguments = arguments
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
    func startCoordinator(_ extra: [String] = []) throws -> Process {
        let process = try launch(["coordinator"] + sweepArguments + ["--db", db, "--listen", address, "--token-file", tokenFile,
                                                                     "--lease-seconds", "3", "--heartbeat-seconds", "0.5"] + extra,
                                 log: "coordinator.log")
        coordinator = process
        return process
    }

    @discardableResult
    func startWorker(_ id: String, _ extra: [String] = []) throws -> Process {
        let process = try launch(["worker", "--connect", address, "--token-file", tokenFile, "--threads", "1", "--id", id,
                                  "--cache-dir", directory.appendingPathComponent("cache-\(id)").path, "--patience", "60"] + extra,
                                 log: "\(id).log")
        workers[id] = process
        return process
    }

    func rows() -> [ResultsStore.Row] {
        guard FileManager.default.fileExists(atPath: db) else { return [] }
        return (try? ResultsStore(path: db, readOnly: true).allJobs()) ?? []
    }

    /// Polls until `condition` holds; false on timeout.
    func wait(seconds: Double = 120, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    /// Waits for a process to exit (killing it after `seconds`) and returns its status.
    func finish(_ process: Process, seconds: Double = 180) -> Int32 {
        if !wait(seconds: seconds, until: { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Scores by job key, from this cluster's store.
    func scores() -> [String: Double?] { Dictionary(uniqueKeysWithValues: rows().map { ($0.job.key, $0.score) }) }

    /// The same sweep in one process: the reference table.
    func referenceScores() throws -> [String: Double?] {
        let reference = directory.appendingPathComponent("reference.db").path
        let run = try LopperBinary.run(["sweep"] + sweepArguments + ["--db", reference, "--jobs", "2", "--quiet"])
        precondition(run.status == 0, run.stderr)
        return Dictionary(uniqueKeysWithValues: try ResultsStore(path: reference).allJobs().map { ($0.job.key, $0.score) })
    }
}
