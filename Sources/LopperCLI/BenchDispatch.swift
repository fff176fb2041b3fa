import ArgumentParser
import Foundation
import Logging
import LopperCoordination
import LopperPruning
import LopperSensitivity
#if canImport(Glibc)
import Glibc
#endif

struct BenchDispatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-dispatch",
        abstract: "Measure the coordinator: dispatch throughput with simulated workers, CPU and memory per 100,000 jobs.",
        discussion: """
            A coordinator in this process serves empty jobs to --workers simulated workers in a child \
            process, over tcp loopback with HMAC on every message and every state change committed to \
            SQLite before it is acknowledged. CPU figures are this process's (the coordinator's) only.

            Example:
              lopper bench-dispatch --workers 8 --jobs 2000 --queued 10000
            """)

    @Option(help: "Simulated workers, each with its own socket.")
    var workers = 64

    @Option(help: "Empty jobs dispatched.")
    var jobs = 20_000

    @Option(help: "Jobs queued for the memory measurement.")
    var queued = 100_000

    @Option(help: ArgumentHelp("(internal) Run simulated workers against this coordinator address.", visibility: .private))
    var simulate: String?

    func run() async throws {
        if let simulate {
            let returned = try await SimulatedWorkers.run(address: simulate, token: try Token.load(file: nil), count: workers)
            print("simulated workers returned \(returned) jobs")
            return
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var logger = Logger(label: "lopper.bench")
        logger.logLevel = .warning

        // Memory and CPU of holding `queued` jobs.
        let (bigStore, registerSeconds) = try timed { try Self.store(at: folder.appendingPathComponent("queued.db").path, jobs: queued) }
        let rssBefore = Self.residentBytes()
        let cpuBefore = Self.cpuSeconds()
        let (loaded, loadSeconds) = try timed {
            try Coordinator(store: bigStore, offer: Self.offer(jobs: queued), options: .init(listen: []), logger: logger)
        }
        let loadCPU = Self.cpuSeconds() - cpuBefore
        let rssAfter = Self.residentBytes()
        let per100k = 100_000 / Double(queued)
        print(String(format: "queue of %d jobs: store written in %.2f s; coordinator loads it in %.2f s (%.2f s CPU), holds %.1f MiB  →  per 100,000 jobs: %.2f s CPU, %.1f MiB",
                     queued, registerSeconds, loadSeconds, loadCPU, Double(rssAfter - rssBefore) / 1048576,
                     loadCPU * per100k, Double(rssAfter - rssBefore) / 1048576 * per100k))
        withExtendedLifetime(loaded) {}

        // Dispatch throughput.
        let store = try Self.store(at: folder.appendingPathComponent("dispatch.db").path, jobs: jobs)
        let secret = UUID().uuidString
        let address = "tcp://127.0.0.1:\(Int.random(in: 20000...60000))"
        var options = Coordinator.Options(listen: [address], token: Token(secret: Array(secret.utf8)))
        options.lingerSeconds = 1
        let coordinator = try Coordinator(store: store, offer: Self.offer(jobs: jobs), options: options, logger: logger)
        let child = Process()
        child.executableURL = LocalCluster.executable
        child.arguments = ["bench-dispatch", "--simulate", address, "--workers", String(workers)]
        child.environment = ProcessInfo.processInfo.environment.merging(["LOPPER_TOKEN": secret]) { $1 }
        try child.run()
        let window = Window()
        let cpuStart = Self.cpuSeconds()
        let status = try await coordinator.run { progress in window.record(progress.elapsed, done: progress.done) }
        let cpu = Self.cpuSeconds() - cpuStart
        child.waitUntilExit()
        let (first, last, done) = window.span
        let rate = Double(done) / max(last - first, 1e-9)
        print(String(format: "dispatch: %d empty jobs to %d simulated workers over tcp loopback: %.0f jobs/s; coordinator CPU %.2f s (%.2f s per 100,000 jobs); %d store transactions (%.1f changes each); peak RSS %.0f MiB",
                     status.jobsDone, workers, rate, cpu, cpu * 100_000 / Double(jobs), coordinator.journalTransactions,
                     Double(2 * jobs) / Double(max(1, coordinator.journalTransactions)), Double(Bench.peakResidentBytes()) / 1048576))
        guard status.jobsDone == UInt64(jobs), status.rejected.isEmpty else {
            throw ValidationError("the benchmark did not complete cleanly: \(status.jobsDone) of \(jobs) done, refused \(status.rejected)")
        }
    }

    /// First and last progress report while results came in.
    final class Window: @unchecked Sendable {
        private let lock = NSLock()
        private var first: Double?
        private var last = 0.0
        private var firstDone = 0
        private var done = 0
        func record(_ elapsed: Double, done: Int) {
            lock.lock()
            defer { lock.unlock() }
            if first == nil { first = elapsed; firstDone = done }
            last = elapsed
            self.done = done
        }
        var span: (Double, Double, Int) { lock.withLock { (first ?? 0, last, done - firstDone) } }
    }

    func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        let value = try body()
        return (value, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// A store holding `jobs` jobs in 100 groups.
    static func store(at path: String, jobs: Int) throws -> ResultsStore {
        let store = try ResultsStore(path: path)
        let groups = (0..<100).map { PruneGroup(id: $0, name: "layer\($0)", size: 64, members: []) }
        let perGroup = (jobs + 99) / 100
        let list = (0..<jobs).map { SweepJob(group: $0 / perGroup, granularity: .channel, criterion: "l1", level: Double($0 % perGroup + 1) / Double(perGroup + 1)) }
        try store.register(groups: groups, jobs: list)
        return store
    }

    static func offer(jobs: Int) -> SweepOffer {
        SweepOffer(sweepID: String(repeating: "0", count: 64), specJSON: "{}", blobs: [], jobCount: jobs)
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// Current resident set size, from /proc/self/statm.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let pages = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
