import Crypto
import Foundation
import Logging
import LopperCoordination
import LopperProtocol
import LopperSensitivity

/// `lopper sweep --workers N`: a coordinator in this process and N `lopper worker` processes on
/// this machine over ipc://, signed with a fresh random token. The cluster code path, locally.
struct LocalCluster {
    var spec: SweepSpec
    var storePath: String
    var workers: Int
    var slotsPerWorker: Int
    var cacheMB: Int
    var logger: Logger

    func run(progress report: @escaping (SweepRunner.Progress) -> Void) async throws -> SweepRunner.Progress {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-local-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let secret = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
        let address = "ipc://\(folder.path)/coordinator.ipc"
        // Workers start while the coordinator reads the inputs; they wait for it to listen.
        let processes = try (0..<workers).map { index in
            try launchWorker(index, address: address, secret: secret, cache: folder.appendingPathComponent("cache").path)
        }
        defer { for process in processes where process.isRunning { process.terminate() } }

        let setup = try SweepSetup(spec: spec)
        let store = try setup.openStore(at: storePath)
        var options = Coordinator.Options(listen: [address], token: Token(secret: Array(secret.utf8)))
        options.leaseSeconds = 60
        options.heartbeatSeconds = 2
        options.lingerSeconds = 2
        let coordinator = try Coordinator(store: store, offer: try SweepOffer(setup: setup), options: options, logger: logger)

        let wanted = Set(setup.jobs.map(\.key))
        let start = try store.allJobs().filter { wanted.contains($0.job.key) && ($0.state == "done" || $0.state == "failed") }.count
        let total = setup.jobs.count
        let status = try await coordinator.run { progress in
            report(SweepRunner.Progress(done: progress.done + progress.failed - start, total: total - start,
                                        failed: progress.failed, elapsed: progress.elapsed))
        }
        for process in processes { process.waitUntilExit() }
        if let failed = processes.first(where: { $0.terminationStatus != 0 }) {
            logger.warning("a worker exited with status \(failed.terminationStatus)")
        }
        return SweepRunner.Progress(done: Int(status.jobsDone + status.jobsFailed), total: total, failed: Int(status.jobsFailed),
                                    elapsed: status.uptimeSeconds)
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
        process.arguments = ["worker", "--connect", address, "--threads", String(slotsPerWorker), "--cache-dir", cache,
                             "--cache-mb", String(cacheMB / max(1, workers)), "--id", "local-\(index + 1)", "--patience", "120"]
            // Workers report warnings only; the coordinator's progress speaks for them.
            + ["--quiet"]
        var environment = ProcessInfo.processInfo.environment
        environment["LOPPER_TOKEN"] = secret
        process.environment = environment
        try process.run()
        return process
    }
}
