import Foundation
import LopperModel
import LopperTesting
import Testing

/// `lopper cost`, `measure`, `allocate` and `export` as a user runs them.
@Suite struct DeviceCommandTests {
    static let repository = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()

    @Test func costPrintsTotalsAndJSON() throws {
        let table = try LopperBinary.run(["cost", Fixtures.model("conv_chain"), "--profile", "raspberry-pi-5"])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("on raspberry-pi-5 (fp32)"))
        #expect(table.stdout.contains("Conv+BatchNormalization+Relu"))
        #expect(table.stdout.contains("latency"))
        let json = try LopperBinary.run(["cost", Fixtures.model("conv_chain"), "--profile", "stm32h7", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let totals = object?["totals"] as? [String: Any]
        let dense = try ModelSummary(try Model.load(path: Fixtures.model("conv_chain")))
        #expect(totals?["macs"] as? Int == dense.macs)
    }

    /// Shipped profiles are found from any folder, whichever path names the executable
    /// (`.build/release` is a link to `.build/<triple>/release`).
    @Test func shippedProfilesAreFoundFromAnotherFolder() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let linked = directory.appendingPathComponent("lopper").path
        try FileManager.default.createSymbolicLink(atPath: linked, withDestinationPath: LopperBinary.path)
        for executable in [LopperBinary.path, linked] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["cost", Fixtures.model("conv_chain"), "--profile", "host"]
            process.currentDirectoryURL = directory
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(executable): \(text)")
            #expect(text.contains("on host"), "\(text)")
        }
    }

    @Test func costErrorsNameWhatIsWrong() throws {
        let unknown = try LopperBinary.run(["cost", Fixtures.model("conv_chain"), "--profile", "no-such-device"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("no profile 'no-such-device'") && unknown.stderr.contains("raspberry-pi-5"))
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let plan = directory.appendingPathComponent("plan.json").path
        try #"{"groups": [{"group": 3, "kept": 2}], "layers": []}"#.write(toFile: plan, atomically: true, encoding: .utf8)
        let blocked = try LopperBinary.run(["cost", Fixtures.model("conv_chain"), "--profile", "host", "--plan", plan])
        #expect(blocked.status != 0)
        #expect(blocked.stderr.contains("\(plan): groups: group 3 'gemm_0' cannot be pruned"), "\(blocked.stderr)")
        try #"{"groups": [], "layers": [{"node": "nope", "pattern": "2:4", "sparsity": 0.5}]}"#.write(toFile: plan, atomically: true, encoding: .utf8)
        let unknownLayer = try LopperBinary.run(["cost", Fixtures.model("conv_chain"), "--profile", "host", "--plan", plan])
        #expect(unknownLayer.stderr.contains("layers: layer 'nope' is not a layer with a weight"), "\(unknownLayer.stderr)")
        try #"{"groups": [], "layers": [], "blocks": [{"block": 0, "join": "nope", "nodes": [], "removal": "skip"}]}"#
            .write(toFile: plan, atomically: true, encoding: .utf8)
        let unknownJoin = try LopperBinary.run(["cost", Fixtures.model("residual"), "--profile", "host", "--plan", plan])
        #expect(unknownJoin.status != 0 && unknownJoin.stderr.contains("blocks: block 0 joins at 'nope', which is not an Add"), "\(unknownJoin.stderr)")
        try #"{"groups": [], "layers": [], "blocks": [{"block": 0, "join": "add_0", "nodes": ["ghost"], "removal": "skip"}]}"#
            .write(toFile: plan, atomically: true, encoding: .utf8)
        let unknownNode = try LopperBinary.run(["cost", Fixtures.model("residual"), "--profile", "host", "--plan", plan])
        #expect(unknownNode.status != 0 && unknownNode.stderr.contains("block 0 removes node 'ghost'"), "\(unknownNode.stderr)")
        try #"{"groups": [{"group": 0}]}"#.write(toFile: plan, atomically: true, encoding: .utf8)
        let malformed = try LopperBinary.run(["cost", Fixtures.model("conv_chain"), "--profile", "host", "--plan", plan])
        #expect(malformed.stderr.contains("not a pruning plan") && malformed.stderr.contains("kept"), "\(malformed.stderr)")
    }

    @Test func measureWritesATableCostReads() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let table = directory.appendingPathComponent("t.csv").path, profile = directory.appendingPathComponent("mine.yaml").path
        let measured = try LopperBinary.run(["measure", Fixtures.model("conv_chain"), "--table", table, "--profile-out", profile,
                                             "--runs", "2", "--fractions", "0.5"])
        #expect(measured.status == 0, "\(measured.stderr)")
        let csv = try String(contentsOfFile: table, encoding: .utf8)
        #expect(csv.hasPrefix("signature,milliseconds,op_class,ops,bytes\n"))
        #expect(csv.split(separator: "\n").count > 6)
        let cost = try LopperBinary.run(["cost", Fixtures.model("conv_chain"), "--profile", profile, "--table", table])
        #expect(cost.status == 0, "\(cost.stderr)")
        #expect(cost.stdout.contains("measured"))
        #expect(cost.stdout.contains("on mine (fp32)"))
    }

    /// The ONNX Runtime path: `measure --step-models` writes the steps as models, the bench script
    /// times them in ONNX Runtime into a table and a profile, and `lopper cost` prices from both.
    @Test func stepModelsTimedInONNXRuntimeMakeATableCostReads() throws {
        guard Reference.isAvailable else { return }
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let steps = directory.appendingPathComponent("steps").path
        let written = try LopperBinary.run(["measure", Fixtures.model("conv_chain"), "--step-models", steps, "--fractions", "0.5"])
        #expect(written.status == 0, "\(written.stderr)")
        let manifest = try String(contentsOfFile: steps + "/steps.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(manifest.count >= 4)
        let table = directory.appendingPathComponent("ort.csv").path, profile = directory.appendingPathComponent("host-ort.yaml").path
        let timed = try Reference.run(["python3", Self.repository.appendingPathComponent("Docs/bench/ort_latency_table.py").path, steps,
                                       "--table", table, "--profile-out", profile, "--runs", "3"])
        #expect(timed.status == 0, "\(timed.stderr)")
        #expect(!timed.stdout.contains("not timed"), "\(timed.stdout)")
        let rows = try String(contentsOfFile: table, encoding: .utf8).split(separator: "\n")
        #expect(rows.count == manifest.count + 1)
        let cost = try LopperBinary.run(["cost", Fixtures.model("conv_chain"), "--profile", profile, "--table", table, "--json"])
        #expect(cost.status == 0, "\(cost.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(cost.stdout.utf8)) as? [String: Any]
        let priced = report?["steps"] as? [[String: Any]] ?? []
        #expect(!priced.isEmpty && priced.allSatisfy { ($0["measured"] as? Bool) == true || ($0["latencySeconds"] as? Double) == 0 })
        #expect(report?["profile"] as? String == "host-ort")

        // --in-place: the whole models, profiled node by node, charge the steps they compute.
        let models = try String(contentsOfFile: steps + "/models.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
        }
        #expect(models.count == 2 && models.allSatisfy { FileManager.default.fileExists(atPath: $0["file"] as? String ?? "") })
        let placed = models.flatMap { $0["steps"] as? [[String: Any]] ?? [] }
        #expect(!placed.isEmpty && placed.allSatisfy { !($0["nodes"] as? [String] ?? []).isEmpty && !($0["values"] as? [String] ?? []).isEmpty })
        let signatures = Set(placed.compactMap { $0["signature"] as? String })
        let inPlace = directory.appendingPathComponent("ort-in-place.csv").path
        let charged = try Reference.run(["python3", Self.repository.appendingPathComponent("Docs/bench/ort_latency_table.py").path, steps,
                                         "--in-place", "--table", inPlace, "--profile-out", profile, "--runs", "3"])
        #expect(charged.status == 0, "\(charged.stderr)")
        let inPlaceRows = try String(contentsOfFile: inPlace, encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(Set(inPlaceRows.map { String($0.split(separator: ",")[0]) }) == signatures)
        #expect(inPlaceRows.allSatisfy { (Double($0.split(separator: ",")[1]) ?? -1) >= 0 })
        let alignment = try String(contentsOfFile: profile, encoding: .utf8).split(separator: "\n")
            .first { $0.hasPrefix("channel_alignment:") }.flatMap { Int($0.split(separator: " ")[1]) }
        #expect([1, 8, 16].contains(alignment ?? 0), "the channel multiple of ONNX Runtime's blocked convolutions")
        let costInPlace = try LopperBinary.run(["cost", Fixtures.model("conv_chain"), "--profile", profile, "--table", inPlace, "--json"])
        #expect(costInPlace.status == 0, "\(costInPlace.stderr)")
    }

    @Test func measureWantsOneDestination() throws {
        let both = try LopperBinary.run(["measure", Fixtures.model("conv_chain"), "--table", "t.csv", "--step-models", "steps"])
        #expect(both.status != 0 && both.stderr.contains("Give one of --table and --step-models."), "\(both.stderr)")
        let neither = try LopperBinary.run(["measure", Fixtures.model("conv_chain")])
        #expect(neither.status != 0 && neither.stderr.contains("Give one of --table and --step-models."), "\(neither.stderr)")
    }

    /// An output folder that cannot be made names itself and the reason.
    @Test func anOutputFolderThatCannotBeMadeIsNamed() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("taken").path
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        for arguments in [["measure", Fixtures.model("conv_chain"), "--step-models", file],
                          ["bench-cost", Fixtures.model("conv_chain"), "--out", file + "/variants"]] {
            let result = try LopperBinary.run(arguments)
            #expect(result.status != 0 && result.stderr.contains(file) && result.stderr.contains("cannot create this folder"),
                    "\(arguments[0]): \(result.stderr)")
            #expect(!result.stderr.contains("NSCocoaErrorDomain"), "\(result.stderr)")
        }
    }

    @Test func benchCostWantsAtLeastOneRunPerTurn() throws {
        let result = try LopperBinary.run(["bench-cost", Fixtures.model("conv_chain"), "--out", "variants", "--runs", "1", "--rounds", "2"])
        #expect(result.status != 0 && result.stderr.contains("--rounds must be at least 1 and at most --runs."), "\(result.stderr)")
    }

    /// sweep → allocate → export, with one profile in the batch that cannot meet its budget.
    @Test func sweepAllocateExportBatch() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let db = directory.appendingPathComponent("s.db").path
        let config = Self.repository.appendingPathComponent("Config/sweeps/chain24.yaml").path
        let sweep = try LopperBinary.run(["sweep", "--config", config, "--db", db, "--quiet", "--levels", "0.25,0.5,0.75"])
        #expect(sweep.status == 0, "\(sweep.stderr)")
        let planPath = directory.appendingPathComponent("plan.json").path
        let allocate = try LopperBinary.run(["allocate", "--db", db, "--profile", "raspberry-pi-5", "--budget", "latency=0.6x", "-o", planPath])
        #expect(allocate.status == 0, "\(allocate.stderr)")
        #expect(allocate.stdout.contains("uniform") && allocate.stdout.contains("LAMP") && allocate.stdout.contains("plan → "))
        let priced = try LopperBinary.run(["cost", Fixtures.model("chain24"), "--profile", "raspberry-pi-5", "--plan", planPath])
        #expect(priced.status == 0, "\(priced.stderr)")

        let out = directory.appendingPathComponent("exports").path
        let heldOut = try Fixtures.randomCalibration(in: directory, seed: 31, samples: 8, shape: [3, 32, 32])
        let export = try LopperBinary.run(["export", "--db", db, "--profiles", "raspberry-pi-5", "jetson-orin-nano", "stm32h7",
                                           "--budget", "latency=0.6x", "--out", out, "--write-baselines", "--holdout", heldOut])
        #expect(export.status == 1, "the Jetson cannot run chain24 at 0.6x its latency (launch overheads)")
        #expect(export.stderr.contains("jetson-orin-nano: infeasible budget: latency"), "\(export.stderr)")
        for profile in ["raspberry-pi-5", "stm32h7"] {
            for file in ["model.onnx", "plan.json", "manifest.json"] {
                #expect(FileManager.default.fileExists(atPath: "\(out)/\(profile)/\(file)"), "\(profile)/\(file)")
            }
        }
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as? [[String: String]]
        #expect(summary?.map { $0["status"] ?? "" } == ["ok", "failed", "ok"])
        #expect(summary?.filter { $0["status"] == "ok" }.allSatisfy { $0["held_out_damage"] != nil } == true, "\(summary ?? [])")

        // The same batch on two local worker processes: the same failure with its reason, the
        // others' files (held-out scores in the manifests too) the same bytes as in process.
        let sharded = directory.appendingPathComponent("sharded").path
        let onWorkers = try LopperBinary.run(["export", "--db", db, "--profiles", "raspberry-pi-5", "jetson-orin-nano", "stm32h7",
                                              "--budget", "latency=0.6x", "--out", sharded, "--workers", "2", "--jobs", "1", "--write-baselines",
                                              "--holdout", heldOut])
        #expect(onWorkers.status == 1, "\(onWorkers.stderr)")
        #expect(onWorkers.stderr.contains("jetson-orin-nano: infeasible budget: latency"), "\(onWorkers.stderr)")
        for profile in ["raspberry-pi-5", "stm32h7"] {
            for file in ["model.onnx", "plan.json", "manifest.json", "baseline-uniform.onnx", "baseline-lamp.onnx"] {
                let inProcess = try Data(contentsOf: URL(fileURLWithPath: "\(out)/\(profile)/\(file)"))
                #expect(try Data(contentsOf: URL(fileURLWithPath: "\(sharded)/\(profile)/\(file)")) == inProcess, "\(profile)/\(file)")
            }
        }
        let shardedSummary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: sharded + "/summary.json"))) as? [[String: String]]
        #expect(shardedSummary?.map { $0["status"] ?? "" } == ["ok", "failed", "ok"])
        #expect(shardedSummary?.map { $0["error"] } == summary?.map { $0["error"] }, "the failure's reason is the in-process one")

        // Served with --listen to a worker started on its own (as on another machine), signed
        // with a token: the same bytes again.
        let token = directory.appendingPathComponent("token").path
        try "export-secret\n".write(toFile: token, atomically: true, encoding: .utf8)
        let address = "ipc://\(directory.path)/export.ipc"
        let worker = Process()
        worker.executableURL = URL(fileURLWithPath: LopperBinary.path)
        worker.arguments = ["worker", "--connect", address, "--token-file", token, "--jobs", "1", "--id", "remote-1",
                            "--cache-dir", directory.appendingPathComponent("cache").path, "--patience", "120", "--quiet"]
        try worker.run()
        defer { if worker.isRunning { worker.terminate() } }
        let served = directory.appendingPathComponent("served").path
        let listening = try LopperBinary.run(["export", "--db", db, "--profiles", "stm32h7", "--budget", "latency=0.6x", "--out", served,
                                              "--listen", address, "--token-file", token, "--holdout", heldOut])
        #expect(listening.status == 0, "\(listening.stderr)")
        worker.waitUntilExit()
        #expect(worker.terminationStatus == 0)
        for file in ["model.onnx", "plan.json", "manifest.json"] {
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(out)/stm32h7/\(file)")) == Data(contentsOf: URL(fileURLWithPath: "\(served)/stm32h7/\(file)")), "\(file)")
        }

        // The same sweep and settings give the same files, bit for bit.
        let again = directory.appendingPathComponent("again").path
        _ = try LopperBinary.run(["export", "--db", db, "--profiles", "stm32h7", "--budget", "latency=0.6x", "--out", again, "--holdout", heldOut])
        for file in ["model.onnx", "plan.json", "manifest.json"] {
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(out)/stm32h7/\(file)")) == Data(contentsOf: URL(fileURLWithPath: "\(again)/stm32h7/\(file)")), "\(file)")
        }

        // A held-out split the workers could not read is refused here, naming it, before any job.
        let missing = directory.appendingPathComponent("no-such-holdout.npz").path
        let refused = try LopperBinary.run(["export", "--db", db, "--profiles", "stm32h7", "--budget", "latency=0.6x",
                                            "--out", directory.appendingPathComponent("refused").path, "--workers", "1", "--holdout", missing])
        #expect(refused.status != 0 && refused.stderr.contains(missing), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("refused/stm32h7").path))
    }

    /// allocate and export before the sweep: the message says which file and what to run.
    @Test func aMissingStoreSaysToSweepFirst() throws {
        for arguments in [["allocate", "--db", "none.db", "--profile", "host", "-o", "plan.json"],
                          ["export", "--db", "none.db", "--profiles", "host", "--out", "exports"]] {
            let result = try LopperBinary.run(arguments)
            #expect(result.status == 64 && result.stderr.contains("none.db does not exist: run lopper sweep --db none.db first"), "\(result.stderr)")
        }
    }
}
