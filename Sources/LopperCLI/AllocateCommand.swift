import ArgumentParser
import Foundation
import struct LopperAllocation.BudgetError
import struct LopperAllocation.BudgetSpec
import enum LopperAllocation.Resource
import typealias LopperAllocation.ResourceAmounts
import LopperExport
import LopperHardware
import LopperModel
import LopperPruning
import LopperRuntime
import LopperSensitivity

/// What `allocate` and `export` share: the sweep, the profile, the budgets and the constraints.
struct AllocationOptions: ParsableArguments {
    @Option(help: "The sweep's results store.")
    var db: String

    @Option(help: ArgumentHelp("Budgets, comma-separated: latency=8ms or 0.5x, macs=1.2G, params=2MB, activations=512KiB (default: the profile's default_budgets).",
                               valueName: "budgets"))
    var budget: String?

    @Option(help: ArgumentHelp("Groups to leave untouched, comma-separated ids (as lopper groups numbers them).", valueName: "ids"))
    var skip: String?

    @Option(name: .customLong("max-level"), help: "Largest fraction of a group's units removed.")
    var maximumLevel: Double = 0.95

    @Flag(name: .customLong("width-only"), help: "Prune width only: never remove the residual blocks a layer sweep measured.")
    var widthOnly = false

    @Option(name: .customLong("min-kept"), help: "Fewest units a group keeps.")
    var minimumKept: Int = 1

    func validate() throws {
        guard FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("\(db) does not exist: run lopper sweep --db \(db) first (or give the store it wrote).")
        }
        guard maximumLevel > 0, maximumLevel < 1 else { throw ValidationError("--max-level must be in (0, 1).") }
        guard minimumKept >= 1 else { throw ValidationError("--min-kept must be at least 1.") }
        _ = try skippedGroups()
    }

    func skippedGroups() throws -> Set<Int> {
        guard let skip else { return [] }
        let ids = skip.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard ids.allSatisfy({ ($0 ?? -1) >= 0 }) else { throw ValidationError("--skip '\(skip)' must be group ids such as 3,5,12.") }
        return Set(ids.map { $0! })
    }

    /// The sweep (its model as it swept it, groups and calibration data) and its measurements.
    func load() throws -> (setup: SweepSetup, table: SensitivityTable) {
        let store = try ResultsStore(path: db, readOnly: true)
        let table = try SensitivityTable(store: store)
        if table.curves.isEmpty { throw ModelError("has no finished jobs to allocate from", file: db) }
        let setup = try SweepSetup(spec: table.spec)
        if let stored = try store.metadata("model_sha256"), stored != (try FileDigest.sha256(table.spec.model)) {
            throw ModelError("changed since the sweep (its SHA-256 differs from the one in \(db)): sweep it again", file: table.spec.model)
        }
        return (setup, table)
    }

    var constraints: PlanningConstraints {
        get throws { PlanningConstraints(skipGroups: try skippedGroups(), maximumLevel: maximumLevel, minimumKept: minimumKept,
                                      removeBlocks: !widthOnly) }
    }

    /// The budgets for a profile resolved against the dense cost.
    func limits(for profile: HardwareProfile, dense: ResourceAmounts) throws -> (text: String, limits: ResourceAmounts) {
        guard let text = budget ?? profile.defaultBudgets else {
            throw ValidationError("profile '\(profile.name)' has no default_budgets: give --budget, e.g. --budget latency=0.5x.")
        }
        do {
            return (text, try BudgetSpec(parsing: text).resolve(dense: dense))
        } catch let error as BudgetError {
            throw ValidationError("--budget: \(error.description)")
        }
    }
}

struct AllocateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allocate",
        abstract: "Choose how much to prune each group for a device: least predicted damage within the budgets.",
        discussion: """
            Reads a finished sweep (--db), prices every option of every group on the profile (levels of each \
            granularity and criterion the sweep measured; on a device with a channel alignment, the aligned kept \
            counts between them, their damage interpolated monotonically), solves the multiple-choice knapsack \
            exactly (dynamic programming for one budget, GLPK for several), and checks the assembled plan's real \
            cost, re-solving with tighter budgets where it misses. Prints the plan, the cost before and after per \
            budget, and the uniform, global magnitude and LAMP baselines at the same budgets.

            Example:
              lopper allocate --db chain24.db --profile raspberry-pi-5 \\
                --budget latency=0.5x -o plan.json
            """)

    @OptionGroup var allocation: AllocationOptions

    @Option(help: "A profile YAML file, or the name of a shipped profile in Config/profiles.")
    var profile: String

    @Option(name: [.short, .customLong("output")], help: "Where to write the plan (JSON).")
    var output: String?

    func run() throws {
        let (setup, table) = try allocation.load()
        let profile = try ProfileSearch.profile(self.profile)
        // Planning needs no scoring: only the cost graph, and activations for wanda's rankings.
        let planner = Planner(model: setup.model, cost: CostModel(graph: try Planner.costGraph(of: setup), profile: profile), table: table,
                              constraints: try allocation.constraints, statistics: try Planner.statistics(for: setup, table: table), blocks: setup.blocks)
        let (text, limits) = try allocation.limits(for: profile, dense: planner.denseAmounts)
        let result = try planner.allocate(limits: limits)
        let baselines = planner.baselines(limits: limits)
        let file = PlanFile(allocation: result, baselines: baselines, planner: planner, model: table.spec.model,
                            budgets: text, limits: limits, version: Lopper.configuration.version)
        print(Self.render(file))
        if let output {
            try file.json().write(to: URL(fileURLWithPath: output))
            print("plan → \(output)")
        }
    }

    static func render(_ file: PlanFile) -> String {
        var lines = ["\(file.model) on \(file.profile), budgets \(file.budgets); metric \(file.metric) (dense \(String(format: "%.4g", file.denseScore)))", ""]
        var table = TextTable(["group", "name", "option", "level", "kept", "damage"], rightAligned: [0, 3, 4, 5])
        for group in file.groups {
            table.append([String(group.group), group.name, group.family, String(format: "%.3f", group.level), "\(group.kept)/\(group.size)",
                          String(format: "%.4g%@", group.predictedDamage, group.interpolated ? " *" : "")])
        }
        lines.append(file.groups.isEmpty ? "(no group pruned: the dense model already meets the budgets)" : table.render())
        if file.groups.contains(where: \.interpolated) { lines.append("* interpolated between measured levels (monotone cubic)") }
        lines.append("")
        var costs = TextTable(["budget", "limit", "dense", "planned"], rightAligned: [1, 2, 3])
        for (name, limit) in file.limits.sorted(by: { $0.key < $1.key }) {
            let resource = Resource(budgetName: name)!
            costs.append([name, resource.format(limit), resource.format(file.denseCost[name] ?? 0), resource.format(file.cost[name] ?? 0)])
        }
        lines.append(costs.render())
        lines.append(String(format: "predicted damage %.4g (%@%@)", file.predictedDamage, file.solver,
                            file.provenOptimal ? ", optimal" : "") + (file.tightenings > 0 ? ", \(file.tightenings) re-solve(s) on the assembled cost" : ""))
        lines.append("")
        var baselines = TextTable(["baseline"] + file.limits.keys.sorted() + ["predicted damage"], rightAligned: Set(1...(file.limits.count + 1)))
        for baseline in file.baselines {
            if let cost = baseline.cost {
                baselines.append([baseline.name] + file.limits.keys.sorted().map { name in
                    Resource(budgetName: name)!.format(cost[name] ?? 0)
                } + [baseline.predictedDamage.map { String(format: "%.4g", $0) } ?? "beyond the sweep"])
            } else {
                baselines.append([baseline.name] + file.limits.keys.map { _ in "" } + [baseline.note ?? ""])
            }
        }
        lines.append(baselines.render())
        return lines.joined(separator: "\n")
    }
}
