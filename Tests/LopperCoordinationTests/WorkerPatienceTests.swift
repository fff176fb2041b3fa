import Foundation
import LopperTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A coordinator whose workers all died gives up after `--worker-patience`, keeping the results.
@Suite struct WorkerPatienceTests {
    @Test func aCoordinatorWithNoLiveWorkerGivesUp() async throws {
        let cluster = try ProcessCluster()
        let coordinator = try cluster.startCoordinator(["--worker-patience", "3"])
        let worker = try cluster.startWorker("only")
        let atKill = ProcessCluster.Snapshot()
        #expect(await cluster.wait { cluster.rows().filter { $0.state == .done }.count >= 5 } then: {
            kill(worker.processIdentifier, SIGKILL)
            usleep(200_000)
            atKill.rows = cluster.rows()
        })
        #expect(await cluster.finish(coordinator, seconds: 60) != 0)
        let log = cluster.log("coordinator.log")
        #expect(log.contains("no worker has been heard from for 3 s (the worker patience)"), "\(log)")
        let done = cluster.rows().filter { $0.state == .done }
        #expect(done.count >= atKill.rows.filter { $0.state == .done }.count && done.count < 96)
        for row in atKill.rows where row.state == .done {
            #expect(done.contains(row), "job \(row.job.key) was lost")
        }
    }

    @Test func aCoordinatorThatNoWorkerJoinsGivesUp() async throws {
        let cluster = try ProcessCluster()
        let coordinator = try cluster.startCoordinator(["--worker-patience", "2"])
        #expect(await cluster.finish(coordinator, seconds: 60) != 0)
        #expect(cluster.log("coordinator.log").contains("no worker has been heard from for 2 s"), "\(cluster.log("coordinator.log"))")
    }
}
