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

    static let profiles = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Config/profiles").path

    @Test func exportsMeetBudgetsAndLoadEverywhere() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(table.curves.count == 6)
        let exporter = try Exporter(setup: setup, table: table, constraints: PlanningConstraints(), version: "test")
        for (name, budget) in [("raspberry-pi-5", "macs=0.5x"), ("stm32h7", "latency=0.7x,params=0.7x"), ("host", "latency=0.8x")] {
            let profile = try HardwareProfile.resolve(name, searching: [Self.profiles])
            let folder = directory.appendingPathComponent(name).path
            let manifest = try exporter.export(profile: profile, budgets: budget, into: folder)
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

    @Test func infeasibleProfileIsAnErrorNamingTheBudget() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let exporter = try Exporter(setup: setup, table: table, constraints: PlanningConstraints(), version: "test")
        let profile = try HardwareProfile.resolve("jetson-orin-nano", searching: [Self.profiles])
        do {
            _ = try exporter.export(profile: profile, budgets: "latency=0.1x", into: directory.appendingPathComponent("j").path)
            Issue.record("an impossible budget was met")
        } catch {
            #expect("\(error)".contains("latency"), "\(error)")
        }
        #expect(throws: ModelError.self) { try exporter.export(profile: profile, budgets: "latency=fast", into: directory.path) }
    }
}
