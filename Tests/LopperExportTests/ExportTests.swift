import Foundation
import LopperExport
import LopperHardware
import LopperModel
import LopperPruning
import LopperSensitivity
import LopperTesting
import Testing

/// A real sweep of conv_chain, then exports for several profiles, checked by ONNX's checker,
/// ONNX Runtime, a recomputed cost and the NumPy re-application script.
@Suite(.serialized) struct ExportTests {
    let directory: URL
    let setup: SweepSetup
    let table: SensitivityTable

    init() throws {
        directory = try Fixtures.temporaryDirectory()
        let calibration = try Fixtures.randomCalibration(in: directory, seed: 5, samples: 8, shape: [3, 32, 32])
        let spec = SweepSpec(model: Fixtures.model("conv_chain"), calibration: calibration, criteria: ["l1", "l2"],
                             levels: [0.25, 0.5, 0.75], samples: 8, batchSize: 4)
        let store = directory.appendingPathComponent("sweep.db").path
        try SweepRunner(spec: spec, storePath: store).run()
        setup = try SweepSetup(spec: spec)
        table = try SensitivityTable(store: try ResultsStore(path: store, readOnly: true))
    }

    /// Exports one profile and writes its files into `folder`, as `lopper export` does.
    static func export(_ exporter: Exporter, profile: HardwareProfile, budgets: String, into folder: String,
                       tolerance: Double? = nil, rounds: Int = 4, writeBaselines: Bool = false) throws -> Manifest {
        let artifacts = try exporter.export(profile: profile, budgets: budgets, tolerance: tolerance, rounds: rounds, writeBaselines: writeBaselines)
        try artifacts.write(into: folder)
        return try artifacts.manifest
    }

    static let profiles = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Config/profiles").path

    @Test func exportsMeetBudgetsAndLoadEverywhere() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(table.curves.count == 6)
        let exporter = try Exporter(setup: setup, table: table, constraints: PlanningConstraints(), version: "test")
        for (name, budget) in [("raspberry-pi-5", "macs=0.5x"), ("stm32h7", "latency=0.7x,params=0.7x"), ("host", "latency=0.8x")] {
            let profile = try HardwareProfile.resolve(name, searching: [Self.profiles])
            let folder = directory.appendingPathComponent(name).path
            let artifacts = try exporter.export(profile: profile, budgets: budget)
            try artifacts.write(into: folder)
            let manifest = try artifacts.manifest
            #expect(manifest.meetsBudgets, "\(name)")
            for (resource, limit) in manifest.limits { #expect(manifest.assembledCost[resource]! <= limit * (1 + 1e-9), "\(name) \(resource)") }
            #expect(manifest.plannedCost == manifest.assembledCost, "\(name): the plan's price is the written model's")
            let model = folder + "/model.onnx"
            #expect(try Reference.checkerError(model) == nil)
            let run = try Reference.call(["compare", model, model, "--shape", "x=2x3x32x32"])
            #expect(run["identical"] as? Bool == true)
            let written = try Model.load(path: model)
            #expect(written.metadata.contains { $0.key == "lopper.profile" && $0.value == name })
            #expect(written.metadata.contains { $0.key == "lopper.budgets" && $0.value == budget })
            // Smaller than the dense model, physically.
            let dense = try ModelSummary(try Model.load(path: Fixtures.model("conv_chain")))
            #expect(try ModelSummary(written).params < dense.params)
            // The measured damage is the sweep's metric of the written model.
            let scored = SensitivityTable.damage(score: try exporter.scorer.score(written), dense: exporter.scorer.dense, metric: .relativeL2)
            #expect(abs(scored - manifest.measuredDamage) < 1e-12)
            #expect(manifest.baselines.map(\.name) == ["uniform", "global magnitude", "LAMP", "ERK"])

            // Re-applying plan.json to the original file with NumPy reproduces every exported weight.
            let script = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Docs/tools/apply_plan.py").path
            let npz = folder + "/applied.npz"
            let applied = try Reference.run(["python3", script, Fixtures.model("conv_chain"), folder + "/plan.json", npz])
            #expect(applied.status == 0, "\(applied.stderr)")
            let check = try Reference.run(["python3", "-c", """
                import numpy as np, onnx, sys
                from onnx import numpy_helper
                w = {t.name: numpy_helper.to_array(t) for t in onnx.load(sys.argv[1]).graph.initializer}
                a = np.load(sys.argv[2])
                bad = [k for k in a.files if not np.array_equal(a[k], w[k])]
                print(len(a.files), bad)
                sys.exit(1 if bad or not a.files else 0)
                """, model, npz])
            #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        }
    }

    /// The held-out split is scored like the calibration data: the same file gives the same
    /// damages, and other data gives the relative L2 that ONNX Runtime measures on it.
    @Test func heldOutSplitScoresExportsAndBaselines() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let profile = try HardwareProfile.resolve("raspberry-pi-5", searching: [Self.profiles])
        let same = try Exporter(setup: setup, table: table, constraints: PlanningConstraints(), version: "test",
                                heldOut: .init(data: setup.spec.calibration))
        let sameFolder = directory.appendingPathComponent("same").path
        let manifest = try Self.export(same, profile: profile, budgets: "macs=0.5x", into: sameFolder, writeBaselines: true)
        #expect(manifest.heldOut?.damage == manifest.measuredDamage)
        // Each baseline's written model scores what the manifest says.
        let uniform = try #require(manifest.baselines.first { $0.name == "uniform" })
        let written = try Model.load(path: sameFolder + "/baseline-uniform.onnx")
        #expect(SensitivityTable.damage(score: try same.scorer.score(written), dense: same.scorer.dense, metric: .relativeL2)
                == uniform.measuredDamage)
        #expect(FileManager.default.fileExists(atPath: sameFolder + "/baseline-global-magnitude.onnx"))
        #expect(manifest.heldOut?.samples == 8)
        for baseline in manifest.baselines where baseline.measuredDamage != nil {
            #expect(baseline.heldOutDamage == baseline.measuredDamage, "\(baseline.name)")
        }

        var random = SeededGenerator(seed: 77)
        let other = directory.appendingPathComponent("holdout.npz").path
        try NumPy.writeArchive(["x": TensorData(floats: random.floats(6 * 3 * 32 * 32, in: -2...2), shape: [6, 3, 32, 32])], to: other)
        let exporter = try Exporter(setup: setup, table: table, constraints: PlanningConstraints(), version: "test",
                                    heldOut: .init(data: other))
        let folder = directory.appendingPathComponent("other").path
        let scored = try Self.export(exporter, profile: profile, budgets: "macs=0.5x", into: folder)
        let heldOut = try #require(scored.heldOut)
        #expect(heldOut.samples == 6)
        let reference = try Reference.run(["python3", "-c", """
            import numpy as np, onnxruntime as ort, sys
            x = np.load(sys.argv[3])["x"]
            run = lambda path: ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})
            errors = [np.sqrt(((p.astype(np.float64) - d) ** 2).sum() / (d.astype(np.float64) ** 2).sum())
                      for d, p in zip(run(sys.argv[1]), run(sys.argv[2]))]
            print(np.mean(errors))
            """, Fixtures.model("conv_chain"), folder + "/model.onnx", other])
        #expect(reference.status == 0, "\(reference.stderr)")
        let expected = try #require(Double(reference.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(abs(heldOut.damage - expected) <= 1e-4 * max(expected, 1e-3), "Lopper \(heldOut.damage), ONNX Runtime \(expected)")
        #expect(heldOut.damage != scored.measuredDamage)
    }

    @Test func heldOutSplitOfAnotherFormIsAnErrorNamingTheFile() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let wrong = directory.appendingPathComponent("wrong.npz").path
        try NumPy.writeArchive(["x": TensorData(floats: [Float](repeating: 0, count: 2 * 5), shape: [2, 5])], to: wrong)
        do {
            _ = try Exporter(setup: setup, table: table, constraints: PlanningConstraints(), version: "test", heldOut: .init(data: wrong))
            Issue.record("held-out data of another shape was accepted")
        } catch {
            #expect("\(error)".contains("wrong.npz"), "\(error)")
        }
    }

    /// The correction loop proposes a plan it has not measured each round (it learns from the
    /// plans that measured worse than predicted), keeps the best measured plan, and goes on only
    /// while the last proposal missed the tolerance.
    @Test func correctionLoopLearnsFromEachMeasuredPlan() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let exporter = try Exporter(setup: setup, table: table, constraints: PlanningConstraints(), version: "test")
        let profile = try HardwareProfile.resolve("raspberry-pi-5", searching: [Self.profiles])
        let manifest = try Self.export(exporter, profile: profile, budgets: "macs=0.5x", into: directory.appendingPathComponent("r").path,
                                           tolerance: 0, rounds: 5)
        let rounds = manifest.refinement
        #expect(!rounds.isEmpty)
        #expect(Set(rounds.dropLast().map(\.measuredDamage)).count == rounds.count - 1, "a plan was proposed twice: \(rounds)")
        for round in rounds.dropLast() { #expect(round.measuredDamage != round.predictedDamage) }
        for round in rounds { #expect(manifest.measuredDamage <= round.measuredDamage) }
        #expect(rounds[0].neighboursMeasured > 0)
    }

    @Test func infeasibleProfileIsAnErrorNamingTheBudget() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let exporter = try Exporter(setup: setup, table: table, constraints: PlanningConstraints(), version: "test")
        let profile = try HardwareProfile.resolve("jetson-orin-nano", searching: [Self.profiles])
        do {
            _ = try exporter.export(profile: profile, budgets: "latency=0.1x")
            Issue.record("an impossible budget was met")
        } catch {
            #expect("\(error)".contains("latency"), "\(error)")
        }
        #expect(throws: ModelError.self) { try exporter.export(profile: profile, budgets: "latency=fast") }
    }
}
