import Foundation
import LopperSensitivity
import LopperTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Hosts simulated with Linux network namespaces (Cluster/netns.sh): a coordinator in h0 and
/// workers in h1, h2 over TCP on a bridge. Needs root, as in CI.
extension NamespaceClusters {
    @Suite(.serialized, .enabled(if: getuid() == 0, "network namespaces need root; run the tests as root (CI does)"))
    struct NetworkNamespaceTests {
        static let coordinatorAddress = "tcp://10.77.0.10:7450"

        /// A worker cut off the network mid-job loses its leases; its jobs run elsewhere; when the
        /// link comes back its late result is ignored; the table is the in-process one.
        @Test func aPartitionedWorkersJobsAreLeasedAgainAndItsLateResultsIgnored() async throws {
            #expect(try ProcessCluster.netns("up", "3") == 0, "netns.sh up failed: can this machine create network namespaces?")
            defer { _ = try? ProcessCluster.netns("down") }
            // Long enough (648 jobs of batch 4) that the late result, which waits for TCP to
            // retransmit after the link comes back, arrives well before the sweep ends.
            let cluster = try ProcessCluster(levels: "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9", criteria: "l1,l2,random",
                                             address: Self.coordinatorAddress, extra: ["--batch-size", "4"])
            let coordinator = try cluster.startCoordinator(host: 0)
            try cluster.startWorker("steady", host: 1)
            let cut = try cluster.startWorker("cut", host: 2)
            defer { kill(cut.processIdentifier, SIGKILL) }
            let atCut = ProcessCluster.Snapshot()
            #expect(await cluster.wait {
                let rows = cluster.rows()
                return rows.filter { $0.state == .done }.count >= 20 && rows.contains { $0.state == .running && $0.worker == "cut" }
            } then: {
                _ = try? ProcessCluster.netns("partition", "2")
                atCut.rows = cluster.rows()
            }, "the worker in h2 never held a lease: \(cluster.log("cut.log"))")
            let lost = Set(atCut.rows.filter { $0.state == .running && $0.worker == "cut" }.map(\.id))
            // Its leases expire (3 s without a heartbeat) and the steady worker takes the jobs.
            let releasedElsewhere = await cluster.wait(seconds: 60) {
                cluster.rows().filter { lost.contains($0.id) }.allSatisfy { $0.worker == "steady" }
            } then: {
                _ = try? ProcessCluster.netns("heal", "2")
            }
            if !releasedElsewhere { try ProcessCluster.netns("heal", "2") }
            #expect(!lost.isEmpty && releasedElsewhere, "\(cluster.log("coordinator.log"))")

            #expect(await cluster.finish(coordinator, seconds: 600) == 0, "\(cluster.log("coordinator.log"))")
            let log = cluster.log("coordinator.log")
            let ignored = log.range(of: "results ignored ").flatMap { Int(log[$0.upperBound...].prefix { $0.isNumber }) } ?? 0
            #expect(ignored >= 1, "the partitioned worker's late result was not seen: \(log)")
            #expect(log.contains("leases expired"))
            let rows = cluster.rows()
            #expect(rows.count == 648 && rows.allSatisfy { $0.state == .done })
            #expect(cluster.scores() == (try await cluster.referenceScores()))
        }

        /// PP-OCRv4 det swept across the namespace cluster by Cluster/netns-sweep.sh gives the
        /// in-process table bit for bit.
        @Test(.enabled(if: Fixtures.hasRealModels, "the real models are fetched by .ci/setup --test"))
        func detectorSweepOverTheNamespaceClusterMatchesInProcess() async throws {
            let directory = try Fixtures.temporaryDirectory()
            let sweep = [Fixtures.ocrDetector, "--calib", Fixtures.real("det_calib.npz"),
                         "--samples", "2", "--batch-size", "2", "--levels", "0.5"]
            let db = directory.appendingPathComponent("netns.db").path
            let script = Process()
            script.executableURL = URL(fileURLWithPath: ProcessCluster.repository.appendingPathComponent("Cluster/netns-sweep.sh").path)
            script.arguments = ["--lopper", LopperBinary.path, "--workers", "2", "--db", db, "--logs", directory.appendingPathComponent("logs").path]
                + sweep + ["--quiet"]
            script.standardOutput = FileHandle.nullDevice
            try script.run()
            while script.isRunning { try await Task.sleep(for: .milliseconds(100)) }
            #expect(script.terminationStatus == 0, "netns-sweep.sh failed; logs in \(directory.path)/logs")

            let reference = directory.appendingPathComponent("local.db").path
            let local = try await offThePool { try LopperBinary.run(["sweep"] + sweep + ["--db", reference, "--jobs", "2", "--quiet"]) }
            #expect(local.status == 0, "\(local.stderr)")
            func table(_ path: String) throws -> [String: Double?] {
                Dictionary(uniqueKeysWithValues: try ResultsStore(path: path, readOnly: true).allJobs().map { ($0.job.key, $0.score) })
            }
            let expected = try table(reference), distributed = try table(db)
            #expect(!expected.isEmpty && distributed == expected)
        }
    }
}

