import Foundation
import LopperSensitivity
import LopperTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `Cluster/slurm/lopper-sweep.sbatch` on a real Slurm (Debian's slurm-wlm 22.05 with munge),
/// started for each test by `Cluster/slurm/local-slurm.sh`: one node, a requeue, and three
/// network-namespace hosts losing one mid-sweep. Each table must be the in-process one, bit for bit.
extension NamespaceClusters {
    @Suite(.serialized,
           .enabled(if: getuid() == 0, "a private Slurm (slurmd, network namespaces) needs root; run the tests as root (CI does)"),
           .enabled(if: SlurmCluster.isInstalled || Fixtures.isCI,
                    "Slurm is not installed: apt-get install slurm-wlm munge (.ci/setup --test does)"))
    struct SlurmTests {
        /// Short leases, so the jobs of a worker that is killed go back to the queue within seconds.
        static let shortLeases = "--lease-seconds 3 --heartbeat-seconds 0.5"

        static func table(_ db: String) throws -> [String: Double?] {
            Dictionary(uniqueKeysWithValues: try ResultsStore(path: db, readOnly: true).allJobs().map { ($0.job.key, $0.score) })
        }

        static func rows(_ db: String) -> [ResultsStore.Row] {
            guard FileManager.default.fileExists(atPath: db) else { return [] }
            return (try? ResultsStore(path: db, readOnly: true).allJobs()) ?? []
        }

        /// The same sweep in one `lopper sweep` process: the reference.
        static func inProcessTable(_ sweep: String, in directory: URL) async throws -> [String: Double?] {
            let db = directory.appendingPathComponent("in-process.db").path
            let run = try await offThePool { try LopperBinary.run(["sweep", "--config", sweep, "--db", db, "--jobs", "2", "--quiet"]) }
            try #require(run.status == 0, "lopper sweep failed: \(run.stderr)")
            return try table(db)
        }

        /// Submitted without `USER` in its environment, the template runs to the end on one node:
        /// the job completes, prints the results, removes its token and stores the in-process table.
        @Test func oneNodeSweepGivesTheInProcessTable() async throws {
            try await SlurmCluster.with { cluster in
                let sweep = try cluster.writeSweep(criteria: ["l1"], levels: [0.2, 0.4, 0.6, 0.8])
                let db = cluster.directory.appendingPathComponent("sweep.db").path
                let job = try cluster.submit(sweep: sweep, db: db, nodes: 1, coordinatorOptions: "")

                let state = await cluster.waitForEnd(of: job)
                let output = cluster.output(of: job)
                #expect(state == "COMPLETED", "job \(job) ended \(state ?? "not within 180 s"): \(output)")
                #expect(output.contains("96 of 96 jobs done"), "\(output)")
                #expect(!FileManager.default.fileExists(atPath: cluster.directory.appendingPathComponent(".lopper-token-\(job)").path),
                        "the token file was left behind")
                let expected = try await Self.inProcessTable(sweep, in: cluster.directory)
                let distributed = try Self.table(db)
                #expect(expected.count == 96 && distributed == expected)
            }
        }

        /// `scontrol requeue` mid-sweep: Slurm ends the run (SIGTERM) and starts the job again; the
        /// rerun resumes the same store, leaves every job finished before the requeue as it was
        /// (same score, time, worker and attempts), and ends with the in-process table.
        @Test func requeuedJobResumesTheStoreWithoutRecomputingFinishedJobs() async throws {
            try await SlurmCluster.with { cluster in
                let sweep = try cluster.writeSweep(criteria: ["l1"], levels: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
                let db = cluster.directory.appendingPathComponent("sweep.db").path
                let job = try cluster.submit(sweep: sweep, db: db, nodes: 1, coordinatorOptions: Self.shortLeases)

                let before = SlurmCluster.Snapshot()
                let requeued = await SlurmCluster.poll(seconds: 120) {
                    let rows = Self.rows(db)
                    guard rows.filter({ $0.state == .done }).count >= 30 else { return false }
                    before.rows = rows
                    let requeue = try? cluster.client(["scontrol", "requeue", String(job)])
                    before.text = requeue?.status == 0 ? nil : "status \(requeue?.status ?? -1): \(requeue?.output ?? "")"
                    return true
                }
                try #require(requeued, "job \(job) never finished 30 jobs: \(cluster.output(of: job))")
                try #require(before.text == nil, "scontrol requeue \(job) failed (does the template ask for --requeue?): \(before.text ?? "")")
                let finished = before.rows.filter { $0.state == .done }
                try #require(finished.count < 216, "the sweep ended before the requeue; nothing to resume")

                // Slurm holds a requeued job back (BeginTime, two minutes in 22.05); start it now.
                let pending = await SlurmCluster.poll(seconds: 60) { cluster.state(of: job) == "PENDING" }
                try #require(pending, "job \(job) did not go back to the queue: \(cluster.state(of: job) ?? "?")")
                let token = cluster.directory.appendingPathComponent(".lopper-token-\(job)").path
                #expect(!FileManager.default.fileExists(atPath: token), "the run Slurm ended left its token file behind")
                let started = try cluster.client(["scontrol", "update", "JobId=\(job)", "StartTime=now"])
                #expect(started.status == 0, "\(started.output)")

                let state = await cluster.waitForEnd(of: job)
                let output = cluster.output(of: job)
                #expect(state == "COMPLETED", "job \(job) ended \(state ?? "not within 180 s"): \(output)")
                #expect(output.contains("(run 2 of job \(job))"), "the job did not run a second time: \(output)")
                // The coordinator says "coordinator: 216 jobs, N to run" when it starts, once per run.
                let toRun = try output.matches(of: Regex(#"coordinator: 216 jobs, (\d+) to run"#)).compactMap { $0.output[1].substring.flatMap { Int($0) } }
                #expect(toRun.count == 2 && toRun[0] == 216 && toRun[1] <= 216 - finished.count,
                        "the rerun did not resume the \(finished.count) jobs finished before the requeue: \(output)")
                let after = Dictionary(uniqueKeysWithValues: Self.rows(db).map { ($0.id, $0) })
                for row in finished { #expect(after[row.id] == row, "job \(row.job.key) was recomputed after the requeue") }
                let expected = try await Self.inProcessTable(sweep, in: cluster.directory)
                let distributed = try Self.table(db)
                #expect(expected.count == 216 && distributed == expected)
            }
        }

        /// Three hosts (slurmd in three network namespaces, slurmctld on the hub), one worker per
        /// node, the coordinator on h0. Host h2's slurmd and worker are killed mid-sweep: its leases
        /// expire, the two others finish the sweep, the job completes and the table is the in-process one.
        @Test func threeHostSweepLosesANodeAndStillGivesTheInProcessTable() async throws {
            try await SlurmCluster.with(hosts: 3) { cluster in
                let sweep = try cluster.writeSweep(criteria: ["l1"], levels: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
                let db = cluster.directory.appendingPathComponent("sweep.db").path
                let start = Date()
                let job = try cluster.submit(sweep: sweep, db: db, nodes: 3, coordinatorOptions: Self.shortLeases)

                let atKill = SlurmCluster.Snapshot()
                let killed = await SlurmCluster.poll(seconds: 120) {
                    let rows = Self.rows(db)
                    guard rows.filter({ $0.state == .done }).count >= 30,
                          rows.contains(where: { $0.state == .running && $0.worker == "h2-2" }) else { return false }
                    let workers = cluster.processes(onHost: 2, containing: "worker")
                    guard let slurmd = cluster.slurmdPid(of: "h2"), !workers.isEmpty else { return false }
                    for pid in [slurmd] + workers { kill(pid, SIGKILL) }
                    atKill.rows = Self.rows(db)
                    return true
                }
                try #require(killed, "h2's worker never held a lease: \(cluster.output(of: job))")

                let state = await cluster.waitForEnd(of: job, seconds: 240)
                let seconds = Date().timeIntervalSince(start)
                let output = cluster.output(of: job)
                #expect(state == "COMPLETED", "job \(job) ended \(state ?? "not within 240 s"): \(output)")
                #expect(output.contains("3 workers x 2 jobs"), "\(output)")
                // "coordinator done: … leases expired N, …, speculative leases M": h2's jobs went to the
                // others when its leases ran out, or sooner as speculative copies near the end.
                func counter(_ name: String) throws -> Int {
                    try output.firstMatch(of: Regex("coordinator done: .*\(name) (\\d+)"))
                        .flatMap { $0.output[1].substring.flatMap { Int($0) } } ?? 0
                }
                #expect(try counter("leases expired") + counter("speculative leases") >= 1, "the killed worker's jobs were never handed on: \(output)")

                let rows = Self.rows(db)
                let lost = Set(atKill.rows.filter { $0.state == .running && $0.worker == "h2-2" }.map(\.id))
                // A result h2 sent just before it was killed may still have been taken; the rest ran elsewhere.
                let lostRows = rows.filter { lost.contains($0.id) }
                #expect(!lost.isEmpty && lostRows.allSatisfy { $0.state == .done } && lostRows.contains { $0.worker != "h2-2" })
                var perWorker: [String: Int] = [:]
                for row in rows where row.state == .done { perWorker[row.worker ?? "?", default: 0] += 1 }
                let doneByH2BeforeKill = atKill.rows.filter { $0.state == .done && $0.worker == "h2-2" }.count
                #expect(perWorker["h0-0", default: 0] > 0 && perWorker["h1-1", default: 0] > 0)
                #expect(perWorker["h2-2", default: 0] <= doneByH2BeforeKill + lost.count,
                        "h2's worker went on after it was killed: \(perWorker)")
                print("Slurm, three hosts: \(rows.count) jobs in \(String(format: "%.1f", seconds)) s from sbatch to the end "
                      + "(\(String(format: "%.1f", Double(rows.count) / seconds)) jobs/s); per worker \(perWorker.sorted { $0.key < $1.key })")

                let expected = try await Self.inProcessTable(sweep, in: cluster.directory)
                let distributed = try Self.table(db)
                #expect(expected.count == 216 && distributed == expected)
            }
        }
    }
}

