import Foundation
import LopperAllocation
import LopperHardware
import LopperPruning

/// `plan.json`: what `lopper allocate` chose and why. Its `groups` and `layers` entries are a
/// `PruningPlan` (group, kept, indices; node, pattern, sparsity), so `lopper cost --plan` reads
/// the file as it is; the rest says where each choice came from and what it costs. Documented
/// in `Docs/allocation.md`.
public struct PlanFile: Codable, Sendable {
    public struct Baseline: Codable, Sendable {
        public var name: String
        public var cost: [String: Double]?
        public var predictedDamage: Double?
        public var note: String?
    }

    /// A residual block the plan removes (`PruningPlan.BlockChoice`'s keys, so `lopper cost
    /// --plan` reads it), and why: its damage measured alone, and what removing it alone changes
    /// from the dense model on this profile, per resource by budget name (negative: saved).
    public struct RemovedBlock: Codable, Sendable {
        public var choice: PruningPlan.BlockChoice
        public var predictedDamage: Double
        public var alone: [String: Double]

        enum CodingKeys: String, CodingKey { case predictedDamage, alone }

        public init(choice: PruningPlan.BlockChoice, predictedDamage: Double, alone: [String: Double]) {
            (self.choice, self.predictedDamage, self.alone) = (choice, predictedDamage, alone)
        }

        public init(from decoder: Decoder) throws {
            choice = try PruningPlan.BlockChoice(from: decoder)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            predictedDamage = try container.decode(Double.self, forKey: .predictedDamage)
            alone = try container.decode([String: Double].self, forKey: .alone)
        }

        public func encode(to encoder: Encoder) throws {
            try choice.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(predictedDamage, forKey: .predictedDamage)
            try container.encode(alone, forKey: .alone)
        }
    }

    public var lopperVersion: String
    public var model: String
    public var profile: String
    /// The budgets as given, and resolved to absolute limits (seconds, MACs, bytes).
    public var budgets: String
    public var limits: [String: Double]
    public var metric: String
    public var denseScore: Double
    /// Only the pruned groups, with their kept indices; groups not listed keep every unit.
    public var groups: [GroupChoice]
    public var layers: [PruningPlan.LayerChoice]
    /// Residual blocks removed (depth).
    public var blocks: [RemovedBlock]
    public var predictedDamage: Double
    public var denseCost: [String: Double]
    public var cost: [String: Double]
    public var solver: String
    public var provenOptimal: Bool
    public var lowerBound: Double?
    public var tightenings: Int
    public var baselines: [Baseline]
    /// Per tensor (by initializer name) and axis, the positions kept: the plan re-applied
    /// to the original ONNX file reproduces the exported weights.
    public var tensors: [TensorCut] = []
    /// Initializers whose exported values are not a cut of the original's, with their values.
    public var replaced: [TensorReplacement] = []

    public static func named(_ amounts: ResourceAmounts) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: amounts.map { ($0.key.budgetName, $0.value) })
    }

    public init(allocation: Planner.Allocation, baselines: [Planner.BaselineOutcome], planner: Planner, model: String,
                budgets: String, limits: ResourceAmounts, version: String) {
        lopperVersion = version
        self.model = model
        profile = planner.cost.profile.name
        self.budgets = budgets
        self.limits = Self.named(limits)
        metric = planner.table.metric.rawValue
        denseScore = planner.table.dense
        let indices = Dictionary(uniqueKeysWithValues: allocation.plan.groups.map { ($0.group, $0.indices) })
        groups = allocation.choices.filter { $0.granularity != nil && $0.granularity != .layer }.map { choice in
            var choice = choice
            choice.indices = indices[choice.group] ?? nil
            return choice
        }
        layers = allocation.plan.layers
        // The plan's blocks are its layer choices, in order (`Planner.plan`).
        let removals = allocation.choices.filter { $0.granularity == .layer }
        blocks = zip(allocation.plan.blocks, removals).map { choice, removal in
            let alone = Planner.amounts(planner.cost.totals(PruningPlan(blocks: [choice])))
            let change = alone.merging(planner.denseAmounts.mapValues { -$0 }, uniquingKeysWith: +)
            return RemovedBlock(choice: choice, predictedDamage: removal.predictedDamage, alone: Self.named(change))
        }
        predictedDamage = allocation.predictedDamage
        denseCost = Self.named(planner.denseAmounts)
        cost = Self.named(allocation.cost)
        solver = allocation.solution.method.rawValue
        provenOptimal = allocation.solution.provenOptimal
        lowerBound = allocation.solution.lowerBound
        tightenings = allocation.tightenings
        self.baselines = baselines.map { Baseline(name: $0.name, cost: $0.cost.map(Self.named), predictedDamage: $0.predictedDamage, note: $0.note) }
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
