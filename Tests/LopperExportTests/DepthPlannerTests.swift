import Foundation
import LopperAllocation
import LopperExport
import LopperHardware
import LopperModel
import LopperPruning
import LopperSensitivity
import LopperTesting
import Testing

/// Depth and width allocated together: residual.onnx's two blocks, each with a channel group
/// inside, on a device whose per-operator overhead dominates.
@Suite struct DepthPlannerTests {
    static var overheadBound: HardwareProfile {
        var profile = device
        profile.launchOverheadSeconds = 20e-6
        return profile
    }

    func planner(blockDamage: [Double]) throws -> Planner {
        let model = try Model.load(path: Fixtures.model("residual"))
        let cost = CostModel(graph: try CostGraph(model, inputShapes: ["x": [1, 8, 16, 16]]), profile: Self.overheadBound)
        let blocks = try ResidualBlocks.find(in: model)
        let groups = cost.graph.groups.count
        let levels = [0.25, 0.5, 0.75]
        var curves = [
            SensitivityTable.Curve(group: 0, granularity: .channel, criterion: "l1", points: zip(levels, [0.05, 0.1, 0.3]).map { ($0, $1) }),
            SensitivityTable.Curve(group: 2, granularity: .channel, criterion: "l1", points: zip(levels, [0.02, 0.04, 0.2]).map { ($0, $1) }),
        ]
        for (block, damage) in zip(blocks, blockDamage) {
            curves.append(SensitivityTable.Curve(group: groups + block.id, granularity: .layer, criterion: "skip", points: [(1, damage)]))
            curves.append(SensitivityTable.Curve(group: groups + block.id, granularity: .layer, criterion: "mean", points: [(1, damage * 0.8)]))
        }
        let spec = SweepSpec(model: Fixtures.model("residual"), calibration: "unused.npz")
        return Planner(model: model, cost: cost, table: SensitivityTable(spec: spec, dense: 0, curves: curves), blocks: blocks)
    }

    /// The joint allocation equals brute force over every width option and removal of each
    /// block (a removed block's group untouched), judged on the real cost.
    @Test(arguments: [0.8, 0.6, 0.4])
    func jointAllocationEqualsBruteForce(fraction: Double) throws {
        let planner = try planner(blockDamage: [0.15, 0.5])
        let limit = planner.denseAmounts[.latency]! * fraction
        let allocation = try planner.allocate(limits: [.latency: limit])
        #expect(allocation.cost[.latency]! <= limit)
        let menus = try planner.menus(for: [.latency: limit]).choices
        #expect(menus.count == 2 && menus.allSatisfy { menu in menu.contains { $0.granularity == .layer } })
        var best = Double.infinity
        for a in menus[0] {
            for b in menus[1] {
                let cost = planner.cost.totals(try planner.plan([a, b], withIndices: false))
                if cost.latencySeconds <= limit { best = min(best, a.predictedDamage + b.predictedDamage) }
            }
        }
        #expect(abs(allocation.predictedDamage - best) < 1e-12, "allocated \(allocation.predictedDamage), brute force \(best)")
    }

    /// Where launch overhead dominates, removing a block buys more latency than any width, and
    /// the price of a plan with a removed block is the price of the model without it.
    @Test func removingABlockIsPricedAsTheModelWithoutIt() throws {
        let planner = try planner(blockDamage: [0.15, 0.5])
        let allocation = try planner.allocate(limits: [.latency: planner.denseAmounts[.latency]! * 0.7])
        #expect(allocation.plan.blocks.map(\.join) == ["add_0"], "\(allocation.plan)")
        #expect(allocation.plan.blocks.first?.removal == .mean, "the mean replacement measured less damage")
        #expect(!allocation.plan.groups.contains { $0.group == 0 }, "the removed block's inner group is not pruned as well")

        var skipping = allocation.plan
        skipping.blocks = skipping.blocks.map { var b = $0; b.removal = .skip; return b }
        let blocks = try ResidualBlocks.find(in: planner.model)
        let removed = try BlockSurgery.remove(planner.model, blocks: [(blocks[0], .skip)])
        let pruned = try ChannelSurgery.prune(removed, groups: try DependencyAnalysis.groups(of: removed), removing: [:])
        let fromScratch = CostModel(graph: try CostGraph(pruned, inputShapes: ["x": [1, 8, 16, 16]]), profile: Self.overheadBound).totals()
        let planned = planner.cost.totals(PruningPlan(blocks: skipping.blocks))
        #expect(abs(fromScratch.latencySeconds - planned.latencySeconds) < 1e-12, "\(fromScratch.latencySeconds) vs \(planned.latencySeconds)")
        #expect(fromScratch.macs == planned.macs && fromScratch.paramBytes == planned.paramBytes)
        #expect(fromScratch.peakActivationBytes == planned.peakActivationBytes)
    }

    /// Every removable block of every block fixture, alone and with the others: the plan's price
    /// (MACs, weights, peak activations; latency but for fusions the removal enables) is that of
    /// the model without the blocks.
    @Test(arguments: ["residual", "mobilenet_block", "c2f_block", "transformer_encoder"])
    func removedBlocksArePricedAsTheModelWithoutThem(name: String) throws {
        let path = Fixtures.model(name)
        let model = try Model.load(path: path)
        let shapes = Fixtures.inputShape(for: path).map { ["x": $0] } ?? [:]
        let cost = CostModel(graph: try CostGraph(model, inputShapes: shapes), profile: Self.overheadBound)
        let blocks = try ResidualBlocks.find(in: model).filter(\.isRemovable)
        let outermost = blocks.filter { block in !blocks.contains { $0.inner.contains(block.id) } }
        try #require(!blocks.isEmpty)
        for chosen in blocks.map({ [$0] }) + [outermost] {
            let removed = try BlockSurgery.remove(model, blocks: chosen.map { ($0, .skip) })
            let fromScratch = CostModel(graph: try CostGraph(removed, inputShapes: shapes), profile: Self.overheadBound).totals()
            let planned = cost.totals(PruningPlan(blocks: chosen.map { .init(block: $0, removal: .skip) }))
            let label = "\(name) without \(chosen.map(\.name))"
            #expect(planned.macs == fromScratch.macs && planned.paramBytes == fromScratch.paramBytes, "\(label)")
            #expect(planned.peakActivationBytes == fromScratch.peakActivationBytes,
                    "\(label): peak \(planned.peakActivationBytes) planned, \(fromScratch.peakActivationBytes) from scratch")
            // Exact, but for a fusion the removal makes possible (residual's Relu after one join
            // meeting the Relu after the next, merged by the runtime): the plan's price keeps
            // that step's launch, so it is high by at most one launch per removed block.
            let excess = planned.latencySeconds - fromScratch.latencySeconds
            #expect(excess >= -1e-9 * fromScratch.latencySeconds && excess <= Double(chosen.count) * Self.overheadBound.launchOverheadSeconds + 1e-12,
                    "\(label): \(planned.latencySeconds) s planned, \(fromScratch.latencySeconds) s from scratch")
        }
    }

    /// A bottleneck (1×1 down, 3×3, 1×1 up, plus the input): two groups inside one block. Its
    /// removal is offered; a plan that removes it prunes neither group, and one that keeps it
    /// narrows both.
    @Test func aBottleneckWithTwoInnerGroupsCanBeRemoved() throws {
        var b = ModelBuilder(opset: 13)
        b.input("x", [1, 8, 8, 8])
        var random = SeededGenerator(seed: 3)
        for (name, shape) in [("wa", [4, 8, 1, 1]), ("wb", [4, 4, 3, 3]), ("wc", [8, 4, 1, 1])] {
            b.constant(name, floats: random.floats(shape.reduce(1, *)), shape: shape)
        }
        b.node("Conv", ["x", "wa"], ["a"], name: "conv_a")
        b.node("Relu", ["a"], ["ra"], name: "relu_a")
        b.node("Conv", ["ra", "wb"], ["bb"], name: "conv_b", intLists: ["pads": [1, 1, 1, 1]])
        b.node("Relu", ["bb"], ["rb"], name: "relu_b")
        b.node("Conv", ["rb", "wc"], ["c"], name: "conv_c")
        b.node("Add", ["c", "x"], ["y"], name: "add")
        b.output("y")
        let model = try b.model()
        let cost = CostModel(graph: try CostGraph(model), profile: Self.overheadBound)
        let blocks = try ResidualBlocks.find(in: model)
        try #require(blocks.count == 1 && blocks[0].isRemovable)
        let inner = cost.graph.groups.filter { $0.isPrunable }.map(\.id)
        try #require(inner.count == 2)
        let levels = [0.25, 0.5, 0.75]
        var curves = inner.map { SensitivityTable.Curve(group: $0, granularity: .channel, criterion: "l1", points: zip(levels, [0.01, 0.02, 0.05]).map { ($0, $1) }) }
        curves.append(SensitivityTable.Curve(group: cost.graph.groups.count, granularity: .layer, criterion: "skip", points: [(1, 0.3)]))
        let spec = SweepSpec(model: "bottleneck.onnx", calibration: "unused.npz")
        let planner = Planner(model: model, cost: cost, table: SensitivityTable(spec: spec, dense: 0, curves: curves), blocks: blocks)

        let menus = try planner.menus(for: [.latency: 1])
        #expect(menus.choices.flatMap { $0 }.filter { $0.granularity == .layer }.count == 1, "the removal is offered once")
        // Only removing the block saves launches: it is chosen, and neither inner group is pruned.
        let tight = try planner.allocate(limits: [.latency: planner.denseAmounts[.latency]! * 0.5])
        #expect(tight.plan.blocks.map(\.join) == ["add"] && tight.plan.groups.isEmpty, "\(tight.plan)")
        #expect(tight.choices.filter { inner.contains($0.group) }.allSatisfy { $0.granularity == nil })
        #expect(abs(tight.predictedDamage - 0.3) < 1e-12)
        // Whatever the solver picks beside the removal, the other group's pruning is dropped.
        let removal = try #require(menus.choices.flatMap { $0 }.first { $0.granularity == .layer })
        let other = try #require(menus.choices.first { !$0.contains { $0.granularity == .layer } }?.last)
        #expect(try planner.plan([removal, other], withIndices: false) == PruningPlan(blocks: tight.plan.blocks))
        // A MACs budget width meets with less damage: the block stays and its groups narrow.
        let narrow = try planner.allocate(limits: [.macs: planner.denseAmounts[.macs]! * 0.3])
        #expect(narrow.plan.blocks.isEmpty && narrow.plan.groups.count == 2 && narrow.predictedDamage < 0.3, "\(narrow.plan)")
    }

    @Test func plansWithoutBlocksStillLoad() throws {
        let plan = try JSONDecoder().decode(PruningPlan.self, from: Data(#"{"groups": [{"group": 0, "kept": 4}], "layers": []}"#.utf8))
        #expect(plan.blocks.isEmpty && plan.groups.count == 1)
    }
}
