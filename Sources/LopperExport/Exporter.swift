import Crypto
import Foundation
import LopperAllocation
import LopperHardware
import LopperModel
import LopperPruning
import struct LopperRuntime.Calibration
import LopperSensitivity

/// Assembles, validates and writes the pruned model of one profile: allocate, cut the model
/// (bias correction where it lowers the measured damage), score it on the sweep's calibration
/// data with the sweep's metric (and on a held-out split when given), recompute its cost from the
/// pruned graph, and produce `model.onnx`, `plan.json` and `manifest.json` (`ExportArtifacts`).
public struct Exporter: Sendable {
    /// Data the allocation never saw, scored like the calibration data: `data` is a `.npy`/`.npz`
    /// of the same form, `labels` a `.npy` when the sweep's metric needs them.
    public struct HeldOutSplit: Sendable {
        public var data: String
        public var labels: String?
        public init(data: String, labels: String? = nil) {
            self.data = data
            self.labels = labels
        }

        /// Reads the split against the sweep's setup and scores the dense model on it: the
        /// errors an export would meet, before any job is handed out.
        public func validate(for setup: SweepSetup) throws { _ = try Exporter.scorer(for: self, setup: setup) }
    }

    public let setup: SweepSetup
    public let scorer: ModelScorer
    /// Scores on the held-out split; nil without one.
    public let heldOut: ModelScorer?
    public let table: SensitivityTable
    public var constraints: PlanningConstraints
    public let statistics: ActivationStatistics
    public let version: String

    public init(setup: SweepSetup, table: SensitivityTable, constraints: PlanningConstraints, version: String,
                heldOut split: HeldOutSplit? = nil) throws {
        self.setup = setup
        self.table = table
        self.constraints = constraints
        self.version = version
        scorer = try ModelScorer(setup: setup)
        heldOut = try split.map { try Self.scorer(for: $0, setup: setup) }
        statistics = try ActivationStatistics.collect(setup.model, groups: setup.groups, calibration: setup.calibration, threads: 1)
    }

    static func scorer(for split: HeldOutSplit, setup: SweepSetup) throws -> ModelScorer {
        guard setup.spec.evaluator == nil else {
            throw ModelError("a held-out split cannot be used: the sweep is scored by an external evaluator, which brings its own data",
                             file: split.data)
        }
        let data = try Calibration(path: split.data, for: setup.model, batchSize: setup.spec.batchSize)
        if setup.spec.metric.needsLabels && split.labels == nil {
            throw ModelError("the sweep's metric \(setup.spec.metric.rawValue) needs labels for the held-out split (--holdout-labels)",
                             file: split.data)
        }
        let labels = try split.labels.map { try SweepSetup.readLabels($0, calibration: data) }
        return try ModelScorer(setup: setup, data: data, labels: labels)
    }

    /// The drop from the dense model on the held-out split; nil without one.
    func heldOutDamage(of model: Model) throws -> Double? {
        try heldOut.map { SensitivityTable.damage(score: try $0.score(model), dense: $0.dense, metric: table.metric) }
    }

    public func costGraph() throws -> CostGraph { try Planner.costGraph(of: setup) }

    /// Removes a plan's blocks from a (channel-pruned) model: each found again on it by its join,
    /// a mean replacement measured on this model's calibration outputs.
    func removeBlocks(_ choices: [PruningPlan.BlockChoice], from model: Model) throws -> Model {
        guard !choices.isEmpty else { return model }
        let found = try ResidualBlocks.find(in: model)
        let blocks = try choices.map { choice -> (ResidualBlock, BlockRemoval) in
            guard let block = found.first(where: { $0.join == choice.join && $0.isRemovable }) else {
                throw ModelError("block '\(choice.join)' of the plan is not a removable block of the pruned model")
            }
            return (block, choice.removal)
        }
        let means = try BlockSurgery.branchMeans(of: blocks.filter { $0.1 == .mean }.map(\.0), in: model, calibration: setup.calibration)
        return try BlockSurgery.remove(model, blocks: try blocks.map { block, removal in
            switch removal {
            case .skip: return (block, .skip)
            case .mean:
                guard let mean = means[block.id] else { throw ModelError("no mean output for block '\(block.name)'") }
                return (block, .mean(mean))
            }
        })
    }

    public func planner(profile: HardwareProfile, graph: CostGraph) -> Planner {
        Planner(model: setup.model, cost: CostModel(graph: graph, profile: profile), table: table,
                constraints: constraints, statistics: statistics, blocks: setup.blocks)
    }

    /// The pruned model of a plan, with bias correction when it measures better, and its score.
    public func assemble(_ plan: PruningPlan) throws -> (model: Model, score: Double, biasCorrected: Bool) {
        let groups = setup.groups
        let removing = plan.removedUnits(groups: groups)
        func cut(_ base: Model, groups: [PruneGroup]) throws -> Model {
            var model = try ChannelSurgery.prune(base, groups: groups, removing: removing)
            for layer in plan.layers {
                let targets = try WeightSparsity.targets(in: model).filter { $0.node == layer.node }
                switch layer.pattern {
                case .nOfM(let n, let m): model = try WeightSparsity.nOfM(model, targets: targets, n: n, m: m).0
                case .unstructured: model = try WeightSparsity.unstructured(model, targets: targets, sparsity: layer.sparsity, global: false).0
                }
            }
            return try removeBlocks(plan.blocks, from: model)
        }
        let plain = try cut(setup.model, groups: groups)
        let plainScore = try scorer.score(plain)
        guard !removing.isEmpty else { return (plain, plainScore, false) }
        // Bias correction may give a layer a bias it did not have; the groups of the corrected
        // model include it, so surgery cuts it with the layer's other output channels.
        let correctedModel = try BiasCorrection.apply(setup.model, groups: groups, removing: removing, statistics: statistics).model
        let correctedGroups = try DependencyAnalysis.groups(of: correctedModel)
        guard correctedGroups.map(\.name) == groups.map(\.name), correctedGroups.map(\.size) == groups.map(\.size) else {
            return (plain, plainScore, false)
        }
        let corrected = try cut(correctedModel, groups: correctedGroups)
        let correctedScore = try scorer.score(corrected)
        let better = SensitivityTable.damage(score: correctedScore, dense: scorer.dense, metric: table.metric)
            < SensitivityTable.damage(score: plainScore, dense: scorer.dense, metric: table.metric)
        return better ? (corrected, correctedScore, true) : (plain, plainScore, false)
    }

    /// Allocates and assembles one profile's export, and validates it: its files as bytes, which
    /// `ExportArtifacts.write(into:)` writes.
    /// - Parameters:
    ///   - tolerance: with a value, the correction loop (`refine`) runs until the predicted damage
    ///     is within it of the measured one, for at most `rounds` rounds.
    ///   - writeBaselines: also return each baseline's model as `baseline-<name>.onnx`, so it
    ///     can be scored by other means (a task metric, another runtime).
    public func export(profile: HardwareProfile, budgets text: String, tolerance: Double? = nil, rounds: Int = 4,
                       writeBaselines: Bool = false) throws -> ExportArtifacts {
        let graph = try costGraph()
        let planner = planner(profile: profile, graph: graph)
        let limits: ResourceAmounts
        do { limits = try BudgetSpec(parsing: text).resolve(dense: planner.denseAmounts) } catch let error as BudgetError {
            throw ModelError("budget: \(error.description)")
        }
        let menus = try planner.menus(for: limits)
        let first = try planner.allocate(menus, limits: limits)
        var allocation = first
        var refinement: [RefinementRound] = []
        let baselines = planner.baselines(limits: limits)
        if let tolerance {
            let result = try refine(first, measured: try measuredDamage(first.plan), planner: planner, menus: menus,
                                    limits: limits, tolerance: tolerance, rounds: rounds, seeds: baselines.compactMap(\.plan))
            allocation = result.allocation
            refinement = result.rounds
        }
        let (pruned, score, corrected) = try assemble(allocation.plan)

        // The model as the sweep named it (a worker's setup reads a cached copy under another path).
        var planFile = PlanFile(allocation: allocation, baselines: baselines, planner: planner, model: table.spec.model,
                                budgets: text, limits: limits, version: version)
        planFile.tensors = try TensorCut.cuts(of: allocation.plan, groups: setup.groups, in: setup.model)
        planFile.replaced = try TensorCut.replacements(from: setup.model, cuts: planFile.tensors, to: pruned)
        let planData = try planFile.json()
        let digest = SHA256.hash(data: planData).map { String(format: "%02x", $0) }.joined()

        var exported = pruned
        exported.metadata = exported.metadata.filter { !$0.key.hasPrefix("lopper.") } + [
            ("lopper.version", version), ("lopper.profile", profile.name), ("lopper.budgets", text), ("lopper.plan_sha256", digest),
        ]
        let modelData = try exported.serialized()

        // The budgets are checked on the cost of the model as written, priced from scratch.
        let assembled = Planner.amounts(CostModel(graph: try CostGraph(try Model(serialized: modelData), inputShapes: graph.inputShapes),
                                                  profile: profile).totals())
        var measuredBaselines: [Manifest.Baseline] = []
        var baselineModels: [(name: String, data: Data)] = []
        for baseline in baselines {
            guard let plan = baseline.plan else {
                measuredBaselines.append(.init(name: baseline.name, cost: nil, predictedDamage: nil, measuredDamage: nil,
                                               heldOutDamage: nil, note: baseline.note))
                continue
            }
            let measured = try assemble(plan)
            if writeBaselines {
                baselineModels.append((ExportArtifacts.baselineFile(baseline.name), try measured.model.serialized()))
            }
            measuredBaselines.append(.init(name: baseline.name, cost: baseline.cost.map(PlanFile.named), predictedDamage: baseline.predictedDamage,
                                           measuredDamage: SensitivityTable.damage(score: measured.score, dense: scorer.dense, metric: table.metric),
                                           heldOutDamage: try heldOutDamage(of: measured.model), note: nil))
        }
        let manifest = Manifest(
            lopperVersion: version, profile: profile.name, budgets: text, limits: PlanFile.named(limits), planSHA256: digest,
            metric: table.metric.rawValue, denseScore: scorer.dense, score: score,
            predictedDamage: allocation.predictedDamage,
            measuredDamage: SensitivityTable.damage(score: score, dense: scorer.dense, metric: table.metric),
            biasCorrected: corrected, denseCost: PlanFile.named(planner.denseAmounts), plannedCost: PlanFile.named(allocation.cost),
            assembledCost: PlanFile.named(assembled),
            meetsBudgets: limits.allSatisfy { (assembled[$0.key] ?? .infinity) <= $0.value * (1 + 1e-9) },
            heldOut: try heldOut.map { split in
                let score = try split.score(pruned)
                return .init(samples: split.samples, denseScore: split.dense, score: score,
                             damage: SensitivityTable.damage(score: score, dense: split.dense, metric: table.metric))
            },
            baselines: measuredBaselines, firstPredictedDamage: first.predictedDamage, refinement: refinement)
        return ExportArtifacts(model: modelData, plan: planData, manifestJSON: try manifest.json(), baselines: baselineModels)
    }
}

/// `manifest.json`: what one profile's export costs and how much it damages, beside the baselines.
public struct Manifest: Codable, Sendable {
    public struct Baseline: Codable, Sendable {
        public var name: String
        public var cost: [String: Double]?
        public var predictedDamage: Double?
        public var measuredDamage: Double?
        /// The drop on the held-out split, when one was given.
        public var heldOutDamage: Double?
        public var note: String?
    }

    /// The exported model scored on the held-out split.
    public struct HeldOutScore: Codable, Sendable {
        public var samples: Int
        public var denseScore: Double
        public var score: Double
        public var damage: Double
    }

    public var lopperVersion: String
    public var profile: String
    public var budgets: String
    public var limits: [String: Double]
    public var planSHA256: String
    public var metric: String
    public var denseScore: Double
    public var score: Double
    public var predictedDamage: Double
    public var measuredDamage: Double
    public var biasCorrected: Bool
    public var denseCost: [String: Double]
    /// The allocator's price of the plan, and the cost of the written model priced from scratch.
    public var plannedCost: [String: Double]
    public var assembledCost: [String: Double]
    public var meetsBudgets: Bool
    public var heldOut: HeldOutScore?
    public var baselines: [Baseline]
    /// The first allocation's predicted damage, and the correction loop's rounds (`--tolerance`).
    public var firstPredictedDamage: Double
    public var refinement: [RefinementRound]

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

/// The positions one tensor keeps along one axis: how a plan is re-applied to the original
/// ONNX file by name (`Docs/tools/apply_plan.py`).
public struct TensorCut: Codable, Sendable, Equatable {
    public var tensor: String
    public var axis: Int
    public var keep: [Int]

    static func cuts(of plan: PruningPlan, groups: [PruneGroup], in model: Model) throws -> [TensorCut] {
        let removing = plan.removedUnits(groups: groups)
        let removed = ChannelSurgery.cuts(groups: groups, removing: removing)
        var cuts: [TensorCut] = []
        for (tensor, axes) in removed.sorted(by: { $0.key < $1.key }) where model.graph.initializers[tensor] != nil {
            let shape = model.graph.initializers[tensor]!.shape
            for (axis, positions) in axes.sorted(by: { $0.key < $1.key }) {
                cuts.append(TensorCut(tensor: tensor, axis: axis, keep: (0..<shape[axis]).filter { !positions.contains($0) }))
            }
        }
        return cuts
    }
}

/// A tensor whose exported values are not a cut of the original's (bias correction, weight
/// sparsity): the plan carries its values so that re-applying it reproduces the export.
public struct TensorReplacement: Codable, Sendable, Equatable {
    public var tensor: String
    public var shape: [Int]
    public var values: [Float]
}

extension TensorCut {
    /// Initializers of `exported` that differ from `original` cut by `cuts`.
    static func replacements(from original: Model, cuts: [TensorCut], to exported: Model) throws -> [TensorReplacement] {
        var replaced: [TensorReplacement] = []
        for (name, data) in exported.graph.initializers where data.elementType.isFloatingPoint {
            guard var expected = original.graph.initializers[name] else { continue }
            for cut in cuts where cut.tensor == name { expected = try expected.keeping(axis: cut.axis, indices: cut.keep) }
            if expected.shape != data.shape || expected.bytes != data.bytes {
                replaced.append(TensorReplacement(tensor: name, shape: data.shape, values: data.floats()))
            }
        }
        return replaced.sorted { $0.tensor < $1.tensor }
    }
}
