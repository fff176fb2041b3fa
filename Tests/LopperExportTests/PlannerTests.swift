import Foundation
import LopperAllocation
import LopperExport
import LopperHardware
import LopperModel
import LopperPruning
import LopperSensitivity
import LopperTesting
import Testing

/// A device whose latency is dominated by compute, with no alignment.
let device = HardwareProfile(name: "device", description: "test", dtype: .fp32, peakGops: [.fp32: 10],
                             efficiency: [.conv: 0.5, .depthwiseConv: 0.2, .gemm: 0.5, .elementwise: 0.25, .pooling: 0.25, .dataMovement: 0.25],
                             memoryBandwidthGBs: 100, weightMemoryBytes: 1 << 30, activationMemoryBytes: 1 << 30,
                             launchOverheadSeconds: 1e-6, channelAlignment: 1)

@Suite struct PlannerTests {
    /// conv_chain's three prunable groups with made-up curves: group 1 is robust, group 0 fragile.
    func planner(alignment: Int = 1) throws -> Planner {
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        var profile = device
        profile.channelAlignment = alignment
        let cost = CostModel(graph: try CostGraph(model), profile: profile)
        let levels = [0.25, 0.5, 0.75]
        let curves = [
            SensitivityTable.Curve(group: 0, granularity: .channel, criterion: "l1", points: zip(levels, [0.3, 0.9, 2.0]).map { ($0, $1) }),
            SensitivityTable.Curve(group: 1, granularity: .channel, criterion: "l1", points: zip(levels, [0.01, 0.02, 0.1]).map { ($0, $1) }),
            SensitivityTable.Curve(group: 2, granularity: .channel, criterion: "l1", points: zip(levels, [0.05, 0.2, 0.6]).map { ($0, $1) }),
            SensitivityTable.Curve(group: 2, granularity: .channel, criterion: "l2", points: zip(levels, [0.04, 0.3, 0.5]).map { ($0, $1) }),
        ]
        let spec = SweepSpec(model: Fixtures.model("conv_chain"), calibration: "unused.npz")
        return Planner(model: model, cost: cost, table: SensitivityTable(spec: spec, dense: 0, curves: curves))
    }

    @Test func damageIsTheDropFromDenseInOneDirection() {
        #expect(SensitivityTable.damage(score: 0.91, dense: 0.95, metric: .accuracy) == 0.95 - 0.91)
        #expect(SensitivityTable.damage(score: 0.2, dense: 0, metric: .relativeL2) == 0.2)
        #expect(SensitivityTable.damage(score: 0.97, dense: 0.95, metric: .accuracy) == 0)
        #expect(SensitivityTable.damage(score: 0.75, dense: 1, metric: .cosine) == 0.25)
    }

    /// The allocation equals brute force over every combination of options, judged by the
    /// assembled plan's real cost, and the exported model meets the budget on its own cost.
    @Test(arguments: [0.8, 0.6, 0.45])
    func allocationEqualsBruteForceOnRealCost(fraction: Double) throws {
        let planner = try planner()
        let limit = planner.denseAmounts[.latency]! * fraction
        let allocation = try planner.allocate(limits: [.latency: limit])
        #expect(allocation.cost[.latency]! <= limit)

        let menus = try planner.cost.graph.groups.filter(\.isPrunable).map { try planner.options(for: $0) }
        var best = Double.infinity
        func search(_ index: Int, _ chosen: [GroupChoice]) throws {
            if index == menus.count {
                let cost = planner.cost.totals(try planner.plan(chosen, withIndices: false))
                if cost.latencySeconds <= limit { best = min(best, chosen.reduce(0) { $0 + $1.predictedDamage }) }
                return
            }
            for option in menus[index] { try search(index + 1, chosen + [option]) }
        }
        try search(0, [])
        #expect(abs(allocation.predictedDamage - best) < 1e-12, "allocated \(allocation.predictedDamage), brute force \(best)")

        // The plan, applied by surgery, costs what it was priced at.
        let removing = Dictionary(uniqueKeysWithValues: allocation.plan.groups.map { choice in
            (choice.group, (0..<planner.cost.graph.groups[choice.group].size).filter { !(choice.indices ?? []).contains($0) })
        })
        let pruned = try ChannelSurgery.prune(planner.model, groups: planner.cost.graph.groups, removing: removing)
        let fromScratch = CostModel(graph: try CostGraph(pruned), profile: device).totals()
        #expect(fromScratch.latencySeconds <= limit)
        #expect(abs(fromScratch.latencySeconds - allocation.cost[.latency]!) < 1e-12)
    }

    @Test func allocationBeatsTheBaselinesOnPredictedDamage() throws {
        let planner = try planner()
        let limits: ResourceAmounts = [.macs: planner.denseAmounts[.macs]! * 0.5]
        let allocation = try planner.allocate(limits: limits)
        let baselines = planner.baselines(limits: limits)
        #expect(baselines.map(\.name) == ["uniform", "global magnitude", "LAMP", "ERK"])
        for baseline in baselines where baseline.predictedDamage != nil {
            #expect(baseline.cost![.macs]! <= limits[.macs]!)
            #expect(allocation.predictedDamage <= baseline.predictedDamage! + 1e-12, "\(baseline.name)")
        }
    }

    @Test func alignmentSnapsKeptCountsAndInterpolates() throws {
        let planner = try planner(alignment: 4)
        let options = try planner.options(for: planner.cost.graph.groups[1])
        // 16 channels, aligned to 4: keep 12, 8 or 4 (levels 0.25, 0.5, 0.75 are measured ones).
        #expect(Set(options.dropFirst().map(\.kept)) == [12, 8, 4])
        let group0 = try planner.options(for: planner.cost.graph.groups[0])
        // 8 channels: keep 4 (measured at 0.5); 6 and 2 are measured too but unaligned, snapped up to 8 and 4.
        #expect(Set(group0.dropFirst().map(\.kept)) == [4])
        // An unaligned device offers every kept count down to the largest measured level; those
        // between measured levels are interpolated.
        let plain = try self.planner().options(for: self.planner().cost.graph.groups[1])
        #expect(Set(plain.dropFirst().map(\.kept)) == Set(4...15))
        #expect(Set(plain.dropFirst().filter { !$0.interpolated }.map(\.kept)) == [12, 8, 4])
    }

    @Test func infeasibleBudgetIsAnError() throws {
        let planner = try planner()
        #expect(throws: AllocationError.self) { try planner.allocate(limits: [.macs: 10]) }
    }

    @Test func skippedGroupsStayUntouched() throws {
        var planner = try planner()
        planner.constraints.skipGroups = [1]
        let allocation = try planner.allocate(limits: [.latency: planner.denseAmounts[.latency]! * 0.7])
        #expect(!allocation.plan.groups.contains { $0.group == 1 })
    }
}
