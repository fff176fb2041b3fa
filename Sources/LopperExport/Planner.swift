import Foundation
import LopperAllocation
import LopperHardware
import LopperModel
import LopperPruning
import LopperSensitivity

/// Limits on what the allocator may choose, beside the budgets.
public struct PlanningConstraints: Codable, Sendable, Equatable {
    /// Groups left untouched.
    public var skipGroups: Set<Int>
    /// Largest fraction of a group's units removed.
    public var maximumLevel: Double
    /// Fewest units a group keeps.
    public var minimumKept: Int
    /// Whether residual blocks the sweep measured may be removed (depth), beside width.
    public var removeBlocks: Bool

    public init(skipGroups: Set<Int> = [], maximumLevel: Double = 0.95, minimumKept: Int = 1, removeBlocks: Bool = true) {
        self.skipGroups = skipGroups
        self.maximumLevel = maximumLevel
        self.minimumKept = minimumKept
        self.removeBlocks = removeBlocks
    }
}

/// One way a group can be pruned: what the plan records per group.
public struct GroupChoice: Codable, Sendable, Equatable {
    public var group: Int
    public var name: String
    /// The sweep granularity the choice prunes by; nil when the group is left untouched.
    public var granularity: Granularity?
    /// The ranking criterion (channel, head) or the pattern (`2:4`, `magnitude` for unstructured).
    public var criterion: String?
    /// Fraction of the group's units (or weights) removed.
    public var level: Double
    public var size: Int
    public var kept: Int
    /// Damage predicted from the sweep; interpolated between measured levels when `interpolated`.
    public var predictedDamage: Double
    public var interpolated: Bool
    /// Kept units in the group's numbering, once a criterion has chosen them (in plans).
    public var indices: [Int]?

    /// The option family: granularity and criterion (`channel/l1`, `nm/2:4`), or `untouched`.
    public var family: String { (granularity?.rawValue ?? "untouched") + (criterion.map { "/\($0)" } ?? "") }

    static func untouched(_ group: PruneGroup) -> GroupChoice {
        GroupChoice(group: group.id, name: group.name, granularity: nil, criterion: nil, level: 0, size: group.size,
                    kept: group.size, predictedDamage: 0, interpolated: false)
    }
}

/// Builds the allocator's menus from a sweep and a cost model, solves, checks the result on
/// the assembled plan's real cost (tightening and re-solving where the additive estimate was
/// optimistic), and prices the baselines at the same budgets.
public struct Planner {
    public let model: Model
    public let cost: CostModel
    public let table: SensitivityTable
    public var constraints: PlanningConstraints
    /// Calibration activations, for choices ranked by the wanda criterion.
    public var statistics: ActivationStatistics?
    /// Residual blocks whose removal the sweep measured (layer curves) are options too.
    public let blocks: [ResidualBlock]
    let groups: [PruneGroup]
    let dense: CostReport.Totals

    public init(model: Model, cost: CostModel, table: SensitivityTable, constraints: PlanningConstraints = PlanningConstraints(),
                statistics: ActivationStatistics? = nil, blocks: [ResidualBlock] = []) {
        self.model = model
        self.blocks = blocks
        self.statistics = statistics
        self.cost = cost
        self.table = table
        self.constraints = constraints
        groups = cost.graph.groups
        dense = cost.totals()
    }

    public static func amounts(_ totals: CostReport.Totals) -> ResourceAmounts {
        [.latency: totals.latencySeconds, .macs: Double(totals.macs), .paramBytes: Double(totals.paramBytes),
         .peakActivationBytes: Double(totals.peakActivationBytes)]
    }

    public var denseAmounts: ResourceAmounts { Self.amounts(dense) }

    // MARK: Options

    /// The most interpolated kept counts offered per group and curve.
    static let countsPerGroup = 48

    /// Every option of a group: untouched first, then each measured curve's levels (snapped up
    /// to the profile's channel alignment) and aligned kept counts between them (interpolated).
    public func options(for group: PruneGroup) throws -> [GroupChoice] {
        var options = [GroupChoice.untouched(group)]
        guard group.isPrunable, !constraints.skipGroups.contains(group.id) else { return options }
        let alignment = group.channelsPerUnit == 1 ? cost.profile.channelAlignment : 1
        for curve in table.curves where curve.group == group.id {
            let shape = try DamageCurve(points: curve.points)
            let top = min(shape.maximumLevel, constraints.maximumLevel)
            switch curve.granularity {
            case .channel, .head:
                let measuredCounts = Set(try curve.points.filter { $0.level <= top }.map {
                    try ChannelSelection(sparsity: $0.level).keptCount(size: group.size)
                })
                var counts = measuredCounts
                if alignment > 1 { counts = Set(counts.map { min(group.size, ($0 + alignment - 1) / alignment * alignment) }) }
                // Kept counts between the measured levels, their damage interpolated: every
                // aligned count, at most `Self.countsPerGroup` of them evenly spread.
                let aligned = stride(from: alignment, to: group.size, by: alignment).filter { 1 - Double($0) / Double(group.size) <= top }
                let spacing = max(1, aligned.count / Self.countsPerGroup)
                for (index, kept) in aligned.enumerated() where index % spacing == 0 { counts.insert(kept) }
                for kept in counts.sorted(by: >) where kept < group.size && kept >= constraints.minimumKept {
                    let level = 1 - Double(kept) / Double(group.size)
                    guard let damage = shape.damage(at: level) else { continue }
                    options.append(GroupChoice(group: group.id, name: group.name, granularity: curve.granularity,
                                               criterion: curve.criterion, level: level, size: group.size, kept: kept,
                                               predictedDamage: damage, interpolated: !measuredCounts.contains(kept)))
                }
            case .layer:
                continue  // a block's options (`blockOptions`), not a group's
            case .unstructured, .nm:
                let pattern = curve.granularity == .nm ? try SparsityPattern(parsing: curve.criterion) : .unstructured
                guard (cost.profile.sparsitySpeedup[pattern] ?? 1) > 1 else { continue }
                for point in curve.points where point.level <= top {
                    options.append(GroupChoice(group: group.id, name: group.name, granularity: curve.granularity,
                                               criterion: curve.criterion, level: point.level, size: group.size, kept: group.size,
                                               predictedDamage: point.damage, interpolated: false))
                }
            }
        }
        return options
    }

    /// The plan of a set of choices: kept counts (indices chosen by each choice's criterion when
    /// `withIndices`), and weight sparsity on the producing layers of zero-weight choices.
    public func plan(_ choices: [GroupChoice], withIndices: Bool) throws -> PruningPlan {
        var plan = PruningPlan()
        for choice in try clearingRemovedBlocks(choices) where choice.granularity != nil {
            if choice.granularity == .layer {
                plan.blocks.append(try blockChoice(choice))
                continue
            }
            let group = groups[choice.group]
            if choice.granularity == .unstructured || choice.granularity == .nm {
                let pattern = choice.granularity == .nm ? try SparsityPattern(parsing: choice.criterion ?? "") : .unstructured
                for producer in group.producers {
                    plan.layers.append(.init(node: producer, pattern: pattern, sparsity: choice.level))
                }
                continue
            }
            var indices: [Int]?
            if withIndices {
                let criterion = Criterion(rawValue: choice.criterion ?? "") ?? .l1
                let importance = try criterion.importance(statistics: statistics)
                let scores = try importance.scores(for: group, in: model)
                let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
                indices = order.prefix(choice.kept).sorted()
            }
            plan.groups.append(.init(group: choice.group, kept: choice.kept, indices: indices))
        }
        return plan
    }

    // MARK: Allocation

    public struct Allocation: Sendable {
        public var choices: [GroupChoice]
        public var plan: PruningPlan
        public var predictedDamage: Double
        public var cost: ResourceAmounts
        public var solution: Solution
        /// The option index chosen in each of the menus (`Menus.choices`).
        public var picks: [Int]
        /// Re-solves after the assembled plan missed a budget its additive estimate met.
        public var tightenings: Int
    }

    /// The allocator's menus for a set of limits: per prunable group its choices and their cost
    /// contributions. Damages may be revised (`Exporter.refine`) and the menus solved again.
    public struct Menus: Sendable {
        public var groups: [Int]
        public var choices: [[GroupChoice]]
        var costs: [[ResourceAmounts]]
    }

    public func menus(for limits: ResourceAmounts) throws -> Menus {
        var menus = Menus(groups: [], choices: [], costs: [])
        for group in groups where group.isPrunable && !constraints.skipGroups.contains(group.id) {
            let choices = try options(for: group)
            guard choices.count > 1 else { continue }
            menus.groups.append(group.id)
            menus.choices.append(choices)
            menus.costs.append(try costs(of: choices, limits: limits))
        }
        try addBlockOptions(to: &menus, limits: limits)
        return menus
    }

    /// The least-damage choice per group within `limits`, checked on the assembled plan's cost.
    public func allocate(limits: ResourceAmounts, method: AllocationMethod = .automatic) throws -> Allocation {
        try allocate(try menus(for: limits), limits: limits, method: method)
    }

    public func allocate(_ menus: Menus, limits: ResourceAmounts, method: AllocationMethod = .automatic) throws -> Allocation {
        let denseAmounts = Self.amounts(dense)
        let problemMenus = zip(menus.groups, zip(menus.choices, menus.costs)).map { group, entry in
            Menu(group: group, options: zip(entry.0, entry.1).enumerated().map { index, option in
                Option(damage: option.0.predictedDamage, cost: option.1, tag: index)
            })
        }
        var working = limits
        let attempts = 24
        for tightenings in 0..<attempts {
            let problem = Problem(menus: problemMenus, fixedCost: denseAmounts.filter { limits[$0.key] != nil }, limits: working)
            let solution = try Allocator.solve(problem, method: method)
            let chosen = try clearingRemovedBlocks(zip(menus.choices, solution.choice).map { $0[$1] })
            let plan = try plan(chosen, withIndices: true)
            let real = Self.amounts(cost.totals(plan))
            let misses = limits.filter { resource, limit in (real[resource] ?? 0) > limit * (1 + 1e-9) }
            if misses.isEmpty {
                let untouched = groups.filter { !menus.groups.contains($0.id) }.map(GroupChoice.untouched)
                let all = (chosen + untouched).sorted { $0.group < $1.group }
                return Allocation(choices: all, plan: plan, predictedDamage: chosen.reduce(0) { $0 + $1.predictedDamage },
                                  cost: real, solution: solution, picks: solution.choice, tightenings: tightenings)
            }
            guard tightenings < attempts - 1 else {
                throw ModelError("the assembled plan misses \(misses.keys.sorted().map { "\($0.budgetName) (\($0.format(real[$0]!)) > \($0.format(limits[$0]!)))" }.joined(separator: ", ")) after \(attempts) re-solves")
            }
            for (resource, limit) in misses {
                // Shrink the working budget by what the assembled plan overshot it, more each time.
                working[resource] = working[resource]! - ((real[resource] ?? 0) - limit) * pow(1.5, Double(tightenings))
            }
        }
        fatalError("unreachable: the loop returns or throws")
    }

    // MARK: Baselines

    public struct BaselineOutcome: Sendable {
        public var name: String
        public var plan: PruningPlan?
        public var cost: ResourceAmounts?
        /// Predicted from the sweep's curves (criterion l2 or l1, the baselines' own ranking aside);
        /// nil where a group is pruned past the sweep's levels.
        public var predictedDamage: Double?
        /// Why there is no result (infeasible, not applicable).
        public var note: String?
    }

    /// Uniform, global magnitude and LAMP channel pruning at the same limits (ERK applies to
    /// unstructured sparsity only and is listed as such).
    public func baselines(limits: ResourceAmounts) -> [BaselineOutcome] {
        let prunable = groups.filter { $0.isPrunable && !constraints.skipGroups.contains($0.id) && $0.channelsPerUnit == 1 }
        let scored: [Baselines.ScoredGroup]
        do {
            scored = try prunable.map { group in
                let minimum = max(constraints.minimumKept, Int((Double(group.size) * (1 - constraints.maximumLevel)).rounded(.up)))
                return Baselines.ScoredGroup(group: group.id, scores: try MagnitudeImportance(p: 2).scores(for: group, in: model),
                                             minimumKept: min(group.size, minimum))
            }
        } catch {
            return [BaselineOutcome(name: "baselines", note: "\(error)")]
        }
        let oracle: Baselines.CostOracle = { kept in
            let plan = PruningPlan(groups: kept.filter { self.groups[$0.key].size != $0.value }.map { .init(group: $0.key, kept: $0.value) })
            return Self.amounts(self.cost.totals(plan)).filter { limits[$0.key] != nil }
        }
        let runs: [(String, () throws -> Baselines.Result)] = [
            ("uniform", { try Baselines.uniform(scored, limits: limits, cost: oracle) }),
            ("global magnitude", { try Baselines.globalMagnitude(scored, limits: limits, cost: oracle) }),
            ("LAMP", { try Baselines.lamp(scored, limits: limits, cost: oracle) }),
        ]
        var outcomes: [BaselineOutcome] = runs.map { name, run in
            do {
                let result = try run()
                let plan = PruningPlan(groups: result.keptUnits.sorted { $0.key < $1.key }
                    .filter { groups[$0.key].size != $0.value.count }
                    .map { .init(group: $0.key, kept: $0.value.count, indices: $0.value) })
                return BaselineOutcome(name: name, plan: plan, cost: Self.amounts(cost.totals(plan)),
                                       predictedDamage: predictedDamage(of: plan), note: nil)
            } catch {
                return BaselineOutcome(name: name, note: "\(error)")
            }
        }
        outcomes.append(BaselineOutcome(name: "ERK", note: "applies to unstructured sparsity, which \(cost.profile.name) does not accelerate"))
        if (cost.profile.sparsitySpeedup[.unstructured] ?? 1) > 1 {
            outcomes[outcomes.count - 1].note = "not run: unstructured allocation baselines come with export"
        }
        return outcomes
    }

    /// A channel plan's damage predicted from the sweep (l2 curves, else l1, else any channel curve).
    public func predictedDamage(of plan: PruningPlan) -> Double? {
        var total = 0.0
        for choice in plan.groups {
            let group = groups[choice.group]
            let candidates = table.curves.filter { $0.group == group.id && ($0.granularity == .channel || $0.granularity == .head) }
            guard let curve = candidates.first(where: { $0.criterion == "l2" }) ?? candidates.first(where: { $0.criterion == "l1" })
                    ?? candidates.first,
                  let shape = try? DamageCurve(points: curve.points),
                  let damage = shape.damage(at: 1 - Double(choice.kept) / Double(group.size)) else { return nil }
            total += damage
        }
        return total
    }
}

extension Planner {
    /// The cost graph of a sweep's model at one calibration sample's shape.
    public static func costGraph(of setup: SweepSetup) throws -> CostGraph {
        let shapes = setup.calibration.batches.first.map { batch in
            batch.mapValues { tensor in [1] + tensor.shape.dropFirst() }
        } ?? [:]
        return try CostGraph(setup.model, inputShapes: shapes)
    }

    /// Calibration activations when some curve ranks units by wanda (its plans need them); nil otherwise.
    public static func statistics(for setup: SweepSetup, table: SensitivityTable) throws -> ActivationStatistics? {
        guard table.curves.contains(where: { $0.criterion == Criterion.wanda.rawValue }) else { return nil }
        return try ActivationStatistics.collect(setup.model, groups: setup.groups, calibration: setup.calibration, threads: 1)
    }
}
