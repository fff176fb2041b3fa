import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import LopperModel
import LopperSensitivity
import LopperTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SweepCommandTests {
    let directory: URL
    init() throws { directory = try Fixtures.temporaryDirectory() }

    static let config = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Config/sweeps/chain24.yaml").path

    @Test func exampleConfigLoads() throws {
        let spec = try SweepSpec.load(yaml: Self.config)
        #expect(spec.model == Fixtures.model("chain24"))
        #expect(spec.criteria == ["l1", "wanda"] && spec.levels.count == 9 && spec.batchSize == 8)
        #expect(FileManager.default.fileExists(atPath: spec.calibration))
        let digits = try SweepSpec.load(yaml: Self.config.replacingOccurrences(of: "chain24.yaml", with: "digits.yaml"))
        #expect(digits.metric == .accuracy && digits.output == "probabilities")
    }

    @Test func badConfigNamesTheField() throws {
        let path = directory.appendingPathComponent("bad.yaml").path
        try "model: m.onnx\ncalibration: c.npz\nlevels: [0.5, 1.5]\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try SweepSpec.load(yaml: path) } throws: { "\($0)".contains("levels") && "\($0)".contains("1.5") }
        try "model: m.onnx\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try SweepSpec.load(yaml: path) } throws: { "\($0)".contains("\(path): is missing the required field 'calibration'") }
    }

    /// A sweep killed with SIGKILL resumes: nothing finished runs again, and the final table is
    /// the one an uninterrupted sweep gives.
    @Test func resumesAfterKill() async throws {
        let db = directory.appendingPathComponent("killed.db").path
        let arguments = ["sweep", "--config", Self.config, "--db", db, "--criterion", "l1", "--levels", "0.2,0.4,0.6,0.8", "--jobs", "1", "--quiet"]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LopperBinary.path)
        process.arguments = arguments
        try process.run()
        // Poll on a thread of its own: the moment to kill at must not be missed.
        nonisolated(unsafe) let running = process
        try await offThePool {
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline && running.isRunning {
                if FileManager.default.fileExists(atPath: db), let rows = try? ResultsStore(path: db, readOnly: true).allJobs(),
                   rows.filter({ $0.state == .done }).count >= 10 {
                    kill(running.processIdentifier, SIGKILL)
                    return
                }
                usleep(20_000)
            }
        }
        var finished: [ResultsStore.Row] = []
        kill(process.processIdentifier, SIGKILL)
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        #expect(process.terminationReason == .uncaughtSignal, "the sweep was still running when killed")
        finished = try ResultsStore(path: db, readOnly: true).allJobs().filter { $0.state == .done }
        // 24 prunable groups × 4 levels.
        let total = 96
        #expect(finished.count >= 10 && finished.count < total, "killed mid-sweep")

        let resumed = try await offThePool { try LopperBinary.run(arguments) }
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let after = try ResultsStore(path: db).allJobs()
        #expect(after.count == total && after.allSatisfy { $0.state == .done })
        for row in finished {
            let now = try #require(after.first { $0.id == row.id })
            #expect(now == row, "job \(row.job.key) was recomputed")
        }

        let clean = directory.appendingPathComponent("clean.db").path
        let cleanRun = try await offThePool { try LopperBinary.run(arguments.map { $0 == db ? clean : $0 }) }
        #expect(cleanRun.status == 0)
        let expected = Dictionary(uniqueKeysWithValues: try ResultsStore(path: clean).allJobs().map { ($0.job.key, $0.score) })
        #expect(Dictionary(uniqueKeysWithValues: after.map { ($0.job.key, $0.score) }) == expected)

        let table = try LopperBinary.run(["results", "--db", db])
        #expect(table.stdout.contains("channel / l1") && table.stdout.contains("96 of 96 jobs done"))
        let csv = try LopperBinary.run(["results", "--db", db, "--format", "csv"])
        let lines = csv.stdout.split(separator: "\n")
        #expect(lines.first == "group_id,group,granularity,criterion,level,state,score,removed,wall_seconds,macs_executed,worker,error,stderr")
        #expect(lines.count == total + 1)

        // The curves: one polyline per group, and a document an XML parser accepts.
        let svg = try LopperBinary.run(["results", "--db", db, "--format", "svg"])
        #expect(svg.status == 0)
        #expect(svg.stdout.components(separatedBy: "<polyline").count - 1 == 24)
        #expect(XMLParser(data: Data(svg.stdout.utf8)).parse())
    }

    @Test func missingStoreIsAValidationError() throws {
        let result = try LopperBinary.run(["results", "--db", directory.appendingPathComponent("none.db").path])
        #expect(result.status == 64 && result.stderr.contains("does not exist"))
    }

    /// `--workers 2`: a coordinator and two worker processes over ipc:// store the same table as
    /// the in-process sweep; a store made with other levels keeps its old jobs untouched.
    @Test func localWorkersGiveTheInProcessTable() async throws {
        let arguments = ["sweep", "--config", Self.config, "--criterion", "l1", "--levels", "0.3,0.6", "--quiet"]
        let local = directory.appendingPathComponent("local.db").path
        let cluster = directory.appendingPathComponent("cluster.db").path
        let config = Self.config
        let localRun = try await offThePool { try LopperBinary.run(arguments + ["--db", local]) }
        #expect(localRun.status == 0)
        // The cluster store first holds a sweep at other levels.
        let earlier = try await offThePool {
            try LopperBinary.run(["sweep", "--config", config, "--criterion", "l1", "--levels", "0.9", "--quiet", "--db", cluster])
        }
        #expect(earlier.status == 0)
        let run = try await offThePool { try LopperBinary.run(arguments + ["--db", cluster, "--workers", "2"]) }
        #expect(run.status == 0, "\(run.stderr)")
        let rows = try ResultsStore(path: cluster).allJobs()
        #expect(rows.count == 72 && rows.allSatisfy { $0.state == .done })
        #expect(Set(rows.filter { $0.job.level != 0.9 }.compactMap(\.worker)) == ["local-1", "local-2"])
        let expected = Dictionary(uniqueKeysWithValues: try ResultsStore(path: local).allJobs().map { ($0.job.key, $0.score) })
        let got = Dictionary(uniqueKeysWithValues: rows.filter { $0.job.level != 0.9 }.map { ($0.job.key, $0.score) })
        #expect(got == expected)
    }

    /// A model stored with ONNX external data: its side file travels to the workers as a blob
    /// of its own and is placed beside the cached model under the name the model gives it.
    @Test func externalDataModelsTravelToWorkers() async throws {
        var random = SeededGenerator(seed: 11)
        let calibration = directory.appendingPathComponent("external.npz").path
        try NumPy.writeArchive(["x": TensorData(floats: random.floats(4 * 3 * 32 * 32, in: -1...1), shape: [4, 3, 32, 32])], to: calibration)
        let arguments = ["sweep", Fixtures.model("external/external_weights"), "--calib", calibration, "--batch-size", "1",
                         "--levels", "0.25,0.5", "--quiet"]
        let local = directory.appendingPathComponent("external-local.db").path
        let cluster = directory.appendingPathComponent("external-cluster.db").path
        let localRun = try await offThePool { try LopperBinary.run(arguments + ["--db", local]) }
        let clusterRun = try await offThePool { try LopperBinary.run(arguments + ["--db", cluster, "--workers", "2"]) }
        #expect(localRun.status == 0 && clusterRun.status == 0, "\(localRun.stderr)\(clusterRun.stderr)")
        let expected = Dictionary(uniqueKeysWithValues: try ResultsStore(path: local).allJobs().map { ($0.job.key, $0.score) })
        let rows = try ResultsStore(path: cluster).allJobs()
        #expect(!expected.isEmpty && rows.allSatisfy { $0.state == .done && $0.worker?.hasPrefix("local-") == true })
        #expect(Dictionary(uniqueKeysWithValues: rows.map { ($0.job.key, $0.score) }) == expected)
    }
}
