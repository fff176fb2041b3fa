import Foundation
import LopperModel
import LopperSensitivity
import LopperTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `lopper sweep --workers N` as a user runs it: the inputs workers receive, and what happens
/// when the workers or the sweep itself are killed.
@Suite(.serialized) struct LocalClusterTests {
    let directory: URL
    init() throws { directory = try Fixtures.temporaryDirectory() }

    static let config = SweepCommandTests.config

    /// Calibration data in a `.npy` reaches the workers as a blob named by its hash only; they
    /// read it by its content and store the in-process table.
    @Test func npyCalibrationGivesTheInProcessTable() async throws {
        let archive = try NumPy.readArchive(path: Fixtures.model("chain24_calib").replacingOccurrences(of: ".onnx", with: ".npz"))
        let calibration = directory.appendingPathComponent("calib.npy").path
        try NumPy.write(try #require(archive.values.first), to: calibration)
        let arguments = ["sweep", "--config", Self.config, "--calib", calibration, "--criterion", "l1", "--levels", "0.5", "--quiet"]
        let local = directory.appendingPathComponent("local.db").path
        let cluster = directory.appendingPathComponent("cluster.db").path
        let localRun = try await offThePool { try LopperBinary.run(arguments + ["--db", local]) }
        let clusterRun = try await offThePool { try LopperBinary.run(arguments + ["--db", cluster, "--workers", "2"]) }
        #expect(localRun.status == 0 && clusterRun.status == 0, "\(localRun.stderr)\(clusterRun.stderr)")
        let expected = Dictionary(uniqueKeysWithValues: try ResultsStore(path: local).allJobs().map { ($0.job.key, $0.score) })
        let rows = try ResultsStore(path: cluster).allJobs()
        #expect(expected.count == 24 && rows.allSatisfy { $0.state == .done && $0.worker?.hasPrefix("local-") == true })
        #expect(Dictionary(uniqueKeysWithValues: rows.map { ($0.job.key, $0.score) }) == expected)
    }

    /// Layer jobs (residual blocks removed, or replaced by their mean) on two workers give the
    /// in-process table bit for bit.
    @Test func layerSweepOnWorkersGivesTheInProcessTable() async throws {
        var random = SeededGenerator(seed: 3)
        let calibration = directory.appendingPathComponent("residual.npz").path
        try NumPy.writeArchive(["x": TensorData(floats: random.floats(6 * 8 * 16 * 16), shape: [6, 8, 16, 16])], to: calibration)
        let arguments = ["sweep", Fixtures.model("residual"), "--calib", calibration, "--granularity", "channel,layer",
                         "--levels", "0.25,0.5", "--batch-size", "2", "--quiet"]
        let local = directory.appendingPathComponent("layers-local.db").path
        let cluster = directory.appendingPathComponent("layers-cluster.db").path
        let localRun = try await offThePool { try LopperBinary.run(arguments + ["--db", local]) }
        let clusterRun = try await offThePool { try LopperBinary.run(arguments + ["--db", cluster, "--workers", "2"]) }
        #expect(localRun.status == 0 && clusterRun.status == 0, "\(localRun.stderr)\(clusterRun.stderr)")
        let expected = try ResultsStore(path: local).allJobs()
        #expect(expected.filter { $0.job.granularity == .layer }.count == 4, "two blocks, skip and mean")
        #expect(expected.allSatisfy { $0.state == .done && $0.score != nil })
        let rows = try ResultsStore(path: cluster).allJobs()
        #expect(Dictionary(uniqueKeysWithValues: rows.map { ($0.job.key, $0.score) })
                == Dictionary(uniqueKeysWithValues: expected.map { ($0.job.key, $0.score) }))
        let names = try ResultsStore(path: local).groups().map(\.name)
        #expect(names.suffix(2) == ["block add_0", "block add_1"], "\(names)")
    }

    /// A long local sweep (chain24, 49 levels, two criteria: 2,352 jobs, minutes of work, so it
    /// is still running however busy the machine is) started as a user would,
    /// its temporary folder made inside the test's own (TMPDIR) so it can be looked for.
    final class LongSweep: @unchecked Sendable {
        let process: Process
        let db: String
        let log: URL
        let temporary: URL

        static let levels = (1...49).map { Double($0) / 50 }
        static let jobs = 24 * 2 * levels.count

        init(in directory: URL) throws {
            db = directory.appendingPathComponent("long.db").path
            log = directory.appendingPathComponent("sweep.log")
            temporary = directory.appendingPathComponent("tmp")
            try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
            process = try LopperBinary.start(["sweep", "--config", LocalClusterTests.config, "--db", db, "--workers", "2", "--jobs", "1", "--quiet",
                                              "--levels", LongSweep.levels.map { String($0) }.joined(separator: ",")],
                                             log: log, environment: ["TMPDIR": temporary.path])
        }

        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        var done: Int {
            guard FileManager.default.fileExists(atPath: db) else { return 0 }
            return ((try? ResultsStore(path: db, readOnly: true).allJobs()) ?? []).filter { $0.state == .done }.count
        }

        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        /// The worker processes: this sweep's children.
        var workers: [pid_t] { LocalClusterTests.children(of: process.processIdentifier) }

        var temporaryFolders: [String] { (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? [] }

        /// Polls (on a thread of its own) until `condition` holds; false after `seconds`.
        func wait(seconds: Double, until condition: @escaping @Sendable () -> Bool) async -> Bool {
            (try? await offThePool {
                let deadline = Date().addingTimeInterval(seconds)
                while Date() < deadline {
                    if condition() { return true }
                    usleep(20_000)
                }
                return false
            }) ?? false
        }

        /// Waits until the workers have finished a few jobs; returns their pids.
        func running() async -> [pid_t] {
            let started = await wait(seconds: 120) { self.done >= 4 && self.workers.count == 2 }
            #expect(started, "2 workers had not finished 4 jobs after 120 s (\(done) done)\n\(output)")
            return workers
        }
    }

    /// Processes whose parent is `parent`, from /proc.
    static func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            // Fields after the command: state, ppid, …
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == parent
        }
    }

    /// A process's pid with its state, parent and thread count, from /proc.
    static func describe(_ pid: pid_t) -> String {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let fields = status.split(separator: "\n").filter { ["State:", "PPid:", "Threads:", "ShdPnd:"].contains(where: $0.hasPrefix) }
        return "\(pid) (" + fields.map { $0.replacingOccurrences(of: "\t", with: " ") }.joined(separator: ", ") + ")"
    }

    /// Whether a process still exists (a zombie counts as gone: it runs nothing).
    static func exists(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    /// Every worker killed: the sweep says so and exits non-zero, and what was finished stays.
    @Test func killingAllWorkersEndsTheSweep() async throws {
        let sweep = try LongSweep(in: directory)
        let workers = await sweep.running()
        #expect(workers.count == 2, "\(sweep.output)")
        for pid in workers { kill(pid, SIGKILL) }
        let doneAtKill = sweep.done
        let ended = await sweep.wait(seconds: 60) { !sweep.process.isRunning }
        #expect(ended, "the sweep went on waiting for its dead workers")
        guard ended else { return }
        #expect(sweep.process.terminationStatus != 0)
        #expect(sweep.output.contains("all 2 workers exited") && sweep.output.contains("killed by signal 9"), "\(sweep.output)")
        let rows = try ResultsStore(path: sweep.db, readOnly: true).allJobs()
        #expect(rows.filter { $0.state == .done }.count >= doneAtKill && doneAtKill >= 4)
        #expect(rows.count == LongSweep.jobs && rows.contains { $0.state != .done })
    }

    enum Interruption: String, CaseIterable, Sendable {
        case interruptTheGroup, terminateTheParent, killTheParent
    }

    /// Ctrl-C (SIGINT to the process group), SIGTERM to the parent: no worker outlives the
    /// sweep and the temporary folder is removed. SIGKILL leaves no chance to clean up, but the
    /// workers still die with their parent.
    @Test(arguments: Interruption.allCases)
    func interruptingTheSweepLeavesNothingBehind(_ interruption: Interruption) async throws {
        let sweep = try LongSweep(in: directory)
        let workers = await sweep.running()
        #expect(workers.count == 2, "\(sweep.output)")
        #expect(sweep.temporaryFolders.count == 1)
        let pid = sweep.process.processIdentifier
        // The sweep runs in a process group of its own, not the test runner's.
        try #require(getpgid(pid) == pid && getpgid(0) != pid)
        switch interruption {
        case .interruptTheGroup: kill(-pid, SIGINT)
        case .terminateTheParent: kill(pid, SIGTERM)
        case .killTheParent: kill(pid, SIGKILL)
        }
        #expect(await sweep.wait(seconds: 30) { !sweep.process.isRunning })
        let gone = await sweep.wait(seconds: 60) { workers.allSatisfy { !Self.exists($0) } }
        #expect(gone, "workers still running: \(workers.filter(Self.exists).map(Self.describe))\n\(sweep.output)")
        if interruption != .killTheParent {
            #expect(sweep.process.terminationStatus != 0)
            #expect(sweep.temporaryFolders.isEmpty, "left behind: \(sweep.temporaryFolders)\n\(sweep.output)")
        }
        for pid in workers where Self.exists(pid) { kill(pid, SIGKILL) }
    }
}
