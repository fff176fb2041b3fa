import Foundation
import LopperSensitivity
import LopperTesting
#if canImport(Glibc)
import Glibc
#endif

/// A private Slurm started by `Cluster/slurm/local-slurm.sh` in a temporary folder, and the
/// sweep template submitted to it. `stop()` stops the daemons (by the pids in their pid files)
/// and removes the folder; `SlurmCluster.with` runs it however the test ends.
final class SlurmCluster: @unchecked Sendable {
    static let script = ProcessCluster.repository.appendingPathComponent("Cluster/slurm/local-slurm.sh").path
    static let template = ProcessCluster.repository.appendingPathComponent("Cluster/slurm/lopper-sweep.sbatch").path
    /// The network-namespace set local-slurm.sh uses for `--hosts`.
    static let namespacePrefix = "lopper-slurm"

    /// Whether Debian's slurm-wlm and munge are installed (`.ci/setup --test` installs them).
    static var isInstalled: Bool {
        ["/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch", "/usr/bin/scontrol"]
            .allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Holds the Slurm folder, the submit directory, the sweep file, the stores and the cache.
    let directory: URL
    let hosts: Int
    private var slurm: String { directory.appendingPathComponent("slurm").path }

    /// Starts munged, slurmctld and slurmd: one node on loopback, or `hosts` nodes h0 … in
    /// network namespaces of their own with slurmctld on the hub.
    init(hosts: Int = 0) throws {
        directory = try Fixtures.temporaryDirectory()
        self.hosts = hosts
        // Not Slurm's usual 6817-6818, which a Slurm of this machine's own may hold.
        let port = 2 * Int.random(in: 23_000...24_000)
        let up = try Self.run([Self.script, "up", "--dir", slurm, "--cpus", "2", "--memory", "2048", "--wait", "60",
                               "--port", String(port)] + (hosts > 0 ? ["--hosts", String(hosts)] : []))
        guard up.status == 0 else {
            stop()
            throw SlurmError(message: "local-slurm.sh up failed: \(up.output)")
        }
    }

    deinit { stop() }

    /// Runs `body` with a fresh Slurm and stops it afterwards, also when `body` throws. Starting
    /// and stopping take seconds, so they run off Swift concurrency's few threads.
    static func with<T: Sendable>(hosts: Int = 0, _ body: (SlurmCluster) async throws -> T) async throws -> T {
        let cluster = try await offThePool { try SlurmCluster(hosts: hosts) }
        do {
            let result = try await body(cluster)
            _ = try? await offThePool { cluster.stop() }
            return result
        } catch {
            _ = try? await offThePool { cluster.stop() }
            throw error
        }
    }

    /// Stops this Slurm and removes its folder; harmless when repeated.
    func stop() {
        if FileManager.default.fileExists(atPath: slurm) {
            _ = try? Self.run([Self.script, "down", "--dir", slurm])
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// `local-slurm.sh exec ARGS`: a Slurm client run against this cluster.
    func client(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        try Self.run([Self.script, "exec", "--dir", slurm] + arguments, environment: environment)
    }

    /// A sweep file for chain24 with absolute paths, as a user keeps next to the job.
    func writeSweep(criteria: [String], levels: [Double]) throws -> String {
        let path = directory.appendingPathComponent("sweep.yaml").path
        let yaml = """
            model: \(Fixtures.model("chain24"))
            calibration: \(Fixtures.root.appendingPathComponent("models/chain24_calib.npz").path)
            metric: relative-l2
            granularities: [channel]
            criteria: [\(criteria.joined(separator: ", "))]
            levels: [\(levels.map { String($0) }.joined(separator: ", "))]
            samples: 16
            batch_size: 8

            """
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Submits the template as a user would, from `directory`, in an environment without `USER`
    /// or `LOGNAME` (a cron job's or a container's) and with the template's default cache
    /// folder; returns the job id.
    func submit(sweep: String, db: String, nodes: Int, coordinatorOptions: String) throws -> Int {
        var environment = ProcessInfo.processInfo.environment
        environment["USER"] = nil
        environment["LOGNAME"] = nil
        environment["SWEEP_CONFIG"] = sweep
        environment["LOPPER"] = LopperBinary.path
        environment["LOPPER_DB"] = db
        // The template's default cache folder is under TMPDIR (often node-local scratch on clusters).
        let scratch = directory.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        environment["TMPDIR"] = scratch.path
        environment["CACHE_MB"] = "256"
        environment["COORDINATOR_OPTIONS"] = coordinatorOptions
        let submitted = try Self.run([Self.script, "exec", "--dir", slurm, "sbatch", "--parsable", "--chdir", directory.path,
                                      "--nodes", String(nodes), "--cpus-per-task", "2", "--mem", "512M", "--time", "10",
                                      Self.template],
                                     environment: environment, replacing: true)
        guard submitted.status == 0, let id = Int(submitted.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw SlurmError(message: "sbatch failed: \(submitted.output)")
        }
        return id
    }

    /// The job's state (`RUNNING`, `COMPLETED` …) as slurmctld reports it, nil when it cannot be asked.
    func state(of job: Int) -> String? {
        guard let shown = try? client(["scontrol", "show", "job", "--oneliner", String(job)]), shown.status == 0,
              let range = shown.output.range(of: "JobState=") else { return nil }
        return String(shown.output[range.upperBound...].prefix { !$0.isWhitespace })
    }

    static let finalStates: Set<String> = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                                           "BOOT_FAIL", "DEADLINE", "PREEMPTED"]

    /// Waits (at most `seconds`) until the job has ended; its final state, or nil on timeout.
    func waitForEnd(of job: Int, seconds: Double = 180) async -> String? {
        let ended = Snapshot()
        _ = await Self.poll(seconds: seconds) {
            guard let state = self.state(of: job), Self.finalStates.contains(state) else { return false }
            ended.text = state
            return true
        }
        return ended.text
    }

    /// The job's output file (the template's `lopper-sweep-%j.out` in the submit directory).
    func output(of job: Int) -> String {
        (try? String(contentsOf: directory.appendingPathComponent("lopper-sweep-\(job).out"), encoding: .utf8)) ?? ""
    }

    /// The pid of a node's slurmd, from its pid file.
    func slurmdPid(of node: String) -> pid_t? {
        (try? String(contentsOfFile: "\(slurm)/slurmd-\(node).pid", encoding: .utf8))
            .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Pids of the processes in host `host`'s network namespace whose command line contains `word`.
    func processes(onHost host: Int, containing word: String) -> [pid_t] {
        guard let listed = try? Self.run(["/usr/bin/ip", "netns", "pids", "\(Self.namespacePrefix)-h\(host)"]) else { return [] }
        return listed.output.split(separator: "\n").compactMap { pid_t($0) }.filter { pid in
            let arguments = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            return arguments.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == word }
        }
    }

    /// What a poll saw at the moment its condition held.
    final class Snapshot: @unchecked Sendable {
        var text: String?
        var rows: [ResultsStore.Row] = []
    }

    /// Polls every 50 ms, on a thread of its own, until `condition` holds; false after `seconds`.
    static func poll(seconds: Double, until condition: @escaping @Sendable () -> Bool) async -> Bool {
        (try? await offThePool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition() { return true }
                usleep(50_000)
            }
            return false
        }) ?? false
    }

    /// Runs a command with its output (stdout and stderr together) in a file, not a pipe: the
    /// daemons `up` starts must not hold our pipe open. `environment` is added to ours, or with
    /// `replacing`, used as it is.
    static func run(_ command: [String], environment: [String: String] = [:], replacing: Bool = false) throws
        -> (status: Int32, output: String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-slurm-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = replacing ? environment : ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }
}

struct SlurmError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
