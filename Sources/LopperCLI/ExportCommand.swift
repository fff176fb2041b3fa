import ArgumentParser
import Foundation
import LopperExport
import enum LopperAllocation.Resource
import LopperHardware
import LopperModel
import LopperSensitivity

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Allocate, assemble and validate a pruned model for each profile of a batch.",
        discussion: """
            For every profile: allocate within its budgets (--budget, or the profile's default_budgets), cut the \
            model physically (bias correction where it lowers the measured damage), score it on the sweep's \
            calibration data with the sweep's metric, price the written model from scratch on the profile, and \
            measure the uniform, global magnitude and LAMP baselines at the same budgets the same way. Writes \
            <out>/<profile>/model.onnx (metadata: Lopper's version, profile, budgets, plan digest), plan.json \
            (the choice per group, with the kept indices per tensor by initializer name) and manifest.json \
            (costs, predicted and measured damage, baselines), and <out>/summary.json. A profile that fails is \
            reported with its reason and the others go on; the exit status is 1 if any failed.

            Example:
              lopper export --db chain24.db --profiles raspberry-pi-5 stm32h7 \\
                --budget latency=0.5x --out exports
            """)

    @Argument(help: "The sweep's model (optional: checked against the one the sweep measured).")
    var model: String?

    @OptionGroup var allocation: AllocationOptions

    @Option(parsing: .upToNextOption, help: "Profiles: YAML files or shipped names.")
    var profiles: [String]

    @Option(help: "Folder for the exports (one sub-folder per profile).")
    var out: String

    @Option(help: "Correct the allocation with measured damages (the plan and its neighbours) until the prediction is within this of the measurement.")
    var tolerance: Double?

    @Option(help: "Most rounds of the correction loop.")
    var rounds: Int = 4

    func validate() throws {
        guard !profiles.isEmpty else { throw ValidationError("--profiles needs at least one profile.") }
        guard tolerance.map({ $0 >= 0 }) ?? true else { throw ValidationError("--tolerance must be at least 0.") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1.") }
    }

    func run() throws {
        let (setup, table) = try allocation.load()
        if let model, (try FileDigest.sha256(model)) != (try FileDigest.sha256(setup.spec.model)) {
            throw ValidationError("\(model) is not the model the sweep in \(allocation.db) measured (\(setup.spec.model)).")
        }
        let exporter = try Exporter(setup: setup, table: table, constraints: try allocation.constraints, version: Lopper.configuration.version)
        var rows: [(String, Result<Manifest, Error>)] = []
        func failures() -> Int { rows.filter { if case .failure = $0.1 { return true } else { return false } }.count }
        let bar = ProgressBar(label: "export", unit: "profiles")
        for reference in profiles {
            let outcome = Result<Manifest, Error> {
                let profile = try ProfileSearch.profile(reference)
                let (text, _) = try allocation.limits(for: profile, dense: exporter.planner(profile: profile, graph: try exporter.costGraph()).denseAmounts)
                return try exporter.export(profile: profile, budgets: text, into: (out as NSString).appendingPathComponent(profile.name),
                                           tolerance: tolerance, rounds: rounds)
            }
            if case .failure(let error) = outcome { FileHandle.standardError.write(Data("\(reference): \(error)\n".utf8)) }
            rows.append((reference, outcome))
            bar.update(done: rows.count, total: profiles.count, failed: failures())
        }
        bar.finish()
        print(Self.summary(rows, out: out))
        let summary = rows.map { reference, outcome -> [String: String] in
            switch outcome {
            case .success(let m): return ["profile": m.profile, "status": m.meetsBudgets ? "ok" : "over budget",
                                          "measured_damage": String(m.measuredDamage), "folder": (out as NSString).appendingPathComponent(m.profile)]
            case .failure(let error): return ["profile": reference, "status": "failed", "error": "\(error)"]
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try encoder.encode(summary).write(to: URL(fileURLWithPath: (out as NSString).appendingPathComponent("summary.json")))
        if failures() > 0 { throw ExitCode(1) }
    }

    static func summary(_ rows: [(String, Result<Manifest, Error>)], out: String) -> String {
        var table = TextTable(["profile", "budgets", "cost before → after", "damage (measured)", "predicted", "uniform at same budget", "folder"],
                              rightAligned: [3, 4, 5])
        for (reference, outcome) in rows {
            switch outcome {
            case .success(let m):
                let costs = m.limits.keys.sorted().map { name -> String in
                    let resource = Resource(budgetName: name)!
                    return "\(name) \(resource.format(m.denseCost[name] ?? 0)) → \(resource.format(m.assembledCost[name] ?? 0))"
                }.joined(separator: "; ")
                let uniform = m.baselines.first { $0.name == "uniform" }?.measuredDamage.map { String(format: "%.4g", $0) } ?? "-"
                table.append([m.profile, m.budgets, costs + (m.meetsBudgets ? "" : " (OVER BUDGET)"), String(format: "%.4g", m.measuredDamage),
                              String(format: "%.4g", m.predictedDamage), uniform, (out as NSString).appendingPathComponent(m.profile)])
            case .failure(let error):
                table.append([reference, "", "failed: \(error)", "", "", "", ""])
            }
        }
        return table.render()
    }
}
