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
@Suite struct LocalClusterTests {
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
        #expect(expected.count == 24 && rows.allSatisfy { $0.state == "done" && $0.worker?.hasPrefix("local-") == true })
        #expect(Dictionary(uniqueKeysWithValues: rows.map { ($0.job.key, $0.score) }) == expected)
    }
}
