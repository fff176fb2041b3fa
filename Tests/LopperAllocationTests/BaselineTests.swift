import LopperAllocation
import Testing
import LopperModel

@Suite struct BaselineTests {
    typealias Group = Baselines.ScoredGroup

    /// Parameter bytes: `bytesPerUnit[group]` per kept unit, plus 7 bytes outside the groups.
    func paramOracle(_ bytesPerUnit: [Int: Double]) -> Baselines.CostOracle {
        { kept in [.paramBytes: kept.reduce(7.0) { $0 + Double($1.value) * bytesPerUnit[$1.key]! }] }
    }

    @Test func lampScoresOfASmallVectorByHand() {
        // Squares 1, 4, 9 in ascending order: 1/(1+4+9), 4/(4+9), 9/9.
        #expect(Baselines.lampScores([2, 3, 1]) == [4.0 / 13, 1, 1.0 / 14])
        // Sign does not matter; ties are ordered by index; zeros over a non-zero tail score 0.
        #expect(Baselines.lampScores([-1, 1]) == [0.5, 1])
        #expect(Baselines.lampScores([0, 0, 2]) == [0, 0, 1])
        #expect(Baselines.lampScores([0, 0]) == [0, 0])
    }

    @Test func uniformPrunesTheSameFractionEverywhere() throws {
        // A: 4 units of 10 bytes, B: 8 units of 5 bytes, 7 fixed → 87 dense. At 3/8: A keeps
        // 4 − 1 = 3, B 5 → 62; at 1/2: A 2, B 4 → 47, the first fraction within 50.
        let groups = [Group(group: 1, scores: [4, 1, 3, 2]), Group(group: 2, scores: (0..<8).map(Double.init))]
        let oracle = paramOracle([1: 10, 2: 5])
        let result = try Baselines.uniform(groups, limits: [.paramBytes: 50], cost: oracle)
        #expect(result.kept == [1: 2, 2: 4])
        #expect(result.keptUnits == [1: [0, 2], 2: [4, 5, 6, 7]])
        #expect(result.knob == 0.5)
        #expect(result.cost == [.paramBytes: 47])
        #expect(try oracle([1: 3, 2: 5])[.paramBytes]! > 50)
        // Nothing to prune when the dense model fits.
        #expect(try Baselines.uniform(groups, limits: [.paramBytes: 87], cost: oracle).kept == [1: 4, 2: 8])
    }

    @Test func globalMagnitudeRanksUnitsAcrossGroups() throws {
        let groups = [Group(group: 1, scores: [0.1, 0.5, 0.9]), Group(group: 2, scores: [0.4, 0.2, 0.8, 0.3])]
        let oracle = paramOracle([1: 1, 2: 1])
        // 7 units + 7 fixed; keeping 4 units takes pruning 0.1, 0.2, 0.3.
        let result = try Baselines.globalMagnitude(groups, limits: [.paramBytes: 11], cost: oracle)
        #expect(result.kept == [1: 2, 2: 2])
        #expect(result.keptUnits == [1: [1, 2], 2: [0, 2]])
        #expect(result.knob == 0.3)
        // Maximal: one more unit breaks the budget.
        #expect(try oracle([1: 2, 2: 3])[.paramBytes]! > 11)
        // The minimum kept per group is never pruned, so 8 bytes cannot be reached.
        let error = #expect(throws: BaselineError.self) {
            try Baselines.globalMagnitude(groups, limits: [.paramBytes: 8], cost: oracle)
        }
        #expect(error == .infeasible([Shortfall(resource: .paramBytes, limit: 8, smallestReachable: 9)], .globalMagnitude))
        #expect(error?.description == "global magnitude cannot meet params ≤ 8 B (its most pruned setting reaches 9 B)")
    }

    @Test func lampRescalesWithinEachGroupBeforeRanking() throws {
        // LAMP scores: A [1/14, 4/13, 1], B [1/2, 1]. Keeping 3 of 5 prunes A's two smallest;
        // by raw magnitude the two 1s (A's first, then B's) would go instead.
        let groups = [Group(group: 1, scores: [1, 2, 3]), Group(group: 2, scores: [1, 1])]
        let oracle = paramOracle([1: 1, 2: 1])
        let lamp = try Baselines.lamp(groups, limits: [.paramBytes: 10], cost: oracle)
        #expect(lamp.kept == [1: 1, 2: 2])
        #expect(lamp.keptUnits == [1: [2], 2: [0, 1]])
        #expect(lamp.knob == 4.0 / 13)
        let magnitude = try Baselines.globalMagnitude(groups, limits: [.paramBytes: 10], cost: oracle)
        #expect(magnitude.kept == [1: 2, 2: 1])
    }

    /// The reference pruning order: lowest score first (ties: earlier group, then lower score
    /// rank, then lower index), each group's `minimumKept` best left out.
    func pruningOrder(_ groups: [Group]) -> [(group: Int, unit: Int)] {
        var candidates: [(score: Double, position: Int, rank: Int, unit: Int)] = []
        for (position, group) in groups.enumerated() {
            let ranked = group.scores.indices.sorted { (group.scores[$0], $0) < (group.scores[$1], $1) }
            for rank in 0..<max(0, group.scores.count - group.minimumKept) {
                candidates.append((group.scores[ranked[rank]], position, rank, ranked[rank]))
            }
        }
        candidates.sort { ($0.score, $0.position, $0.rank) < ($1.score, $1.position, $1.rank) }
        return candidates.map { (groups[$0.position].group, $0.unit) }
    }

    /// Random groups and per-unit costs: each ranked baseline prunes a prefix of the reference
    /// order, meets the budget, and keeping the last unit it pruned would break it.
    @Test func rankedBaselinesAreMaximal() throws {
        var rng = SeededGenerator(seed: 13)
        var checked = 0
        for _ in 0..<40 {
            let groups = (0..<Int.random(in: 1...5, using: &rng)).map { g in
                Group(group: g, scores: (0..<Int.random(in: 1...9, using: &rng)).map { _ in Double.random(in: 0...1, using: &rng) },
                      minimumKept: Int.random(in: 0...2, using: &rng))
            }
            let bytes = Dictionary(uniqueKeysWithValues: groups.map { ($0.group, Double(Int.random(in: 1...4, using: &rng))) })
            let oracle = paramOracle(bytes)
            let dense = try oracle(Dictionary(uniqueKeysWithValues: groups.map { ($0.group, $0.scores.count) }))[.paramBytes]!
            let floor = try oracle(Dictionary(uniqueKeysWithValues: groups.map { ($0.group, min($0.minimumKept, $0.scores.count)) }))[.paramBytes]!
            let limit = (floor + Double.random(in: 0...1, using: &rng) * (dense - floor)).rounded(.up)
            for lamp in [false, true] {
                let result = lamp ? try Baselines.lamp(groups, limits: [.paramBytes: limit], cost: oracle)
                    : try Baselines.globalMagnitude(groups, limits: [.paramBytes: limit], cost: oracle)
                let ranked = lamp ? groups.map { Group(group: $0.group, scores: Baselines.lampScores($0.scores), minimumKept: $0.minimumKept) } : groups
                let order = pruningOrder(ranked)
                let prunedCount = groups.reduce(0) { $0 + $1.scores.count - result.kept[$1.group]! }
                var expected = Dictionary(uniqueKeysWithValues: groups.map { ($0.group, Set($0.scores.indices)) })
                for unit in order[..<prunedCount] { expected[unit.group]!.remove(unit.unit) }
                #expect(result.keptUnits.mapValues(Set.init) == expected)
                #expect(result.kept == expected.mapValues(\.count))
                #expect(result.cost == (try oracle(result.kept)))
                #expect(result.cost[.paramBytes]! <= limit)
                if prunedCount > 0 {
                    var oneMore = result.kept
                    oneMore[order[prunedCount - 1].group]! += 1
                    #expect(try oracle(oneMore)[.paramBytes]! > limit)
                    checked += 1
                }
            }
        }
        #expect(checked > 40)
    }

    @Test func erkDensitiesByHand() throws {
        // 10×10 (100 weights, factor 20/100) and 10×100 (1000, factor 110/1000). At density 0.5,
        // 550 weights kept = ε·(20 + 110): ε = 550/130.
        let layers = [Baselines.LayerShape(group: 1, inputs: 10, outputs: 10), Baselines.LayerShape(group: 2, inputs: 10, outputs: 100)]
        let half = try Baselines.erkDensities(layers, density: 0.5)
        #expect(close(half[1]!, 550.0 / 130 * 0.2))
        #expect(close(half[2]!, 550.0 / 130 * 0.11))
        // At 0.9 the small layer would pass 1: it stays dense and the other keeps 990 − 100.
        let dense = try Baselines.erkDensities(layers, density: 0.9)
        #expect(dense[1] == 1)
        #expect(close(dense[2]!, 0.89))
        // With kernels: (3 + 16 + 3 + 3) / (3·16·3·3) relative to (16 + 16 + 1 + 1) / (16·16·1·1).
        let conv = [Baselines.LayerShape(group: 1, inputs: 3, outputs: 16, kernel: [3, 3]),
                    Baselines.LayerShape(group: 2, inputs: 16, outputs: 16, kernel: [1, 1])]
        let densities = try Baselines.erkDensities(conv, density: 0.3)
        #expect(close(densities[1]! / densities[2]!, (25.0 / 432) / (34.0 / 256)))
        #expect(close(densities[1]! * 432 + densities[2]! * 256, 0.3 * 688))
        #expect(try Baselines.erkDensities(conv, density: 1) == [1: 1, 2: 1])
    }

    @Test func erkMeetsTheBudgetAtTheLargestDensity() throws {
        let layers = [Baselines.LayerShape(group: 1, inputs: 10, outputs: 10), Baselines.LayerShape(group: 2, inputs: 10, outputs: 100)]
        let oracle = paramOracle([1: 4, 2: 4])  // float32 weights
        let result = try Baselines.erk(layers, limits: [.paramBytes: 2000], cost: oracle)
        #expect(result.cost[.paramBytes]! <= 2000)
        // Maximal up to rounding: within one weight per layer of the budget (4 bytes each).
        #expect(result.cost[.paramBytes]! > 2000 - 2 * 4)
        let error = #expect(throws: BaselineError.self) { try Baselines.erk(layers, limits: [.paramBytes: 10], cost: oracle) }
        #expect(error == .infeasible([Shortfall(resource: .paramBytes, limit: 10, smallestReachable: 15)], .erk))
    }

    @Test func badInputIsRefused() throws {
        let oracle = paramOracle([1: 1])
        let nan = #expect(throws: BaselineError.self) {
            try Baselines.uniform([Group(group: 1, scores: [1, .nan])], limits: [.paramBytes: 5], cost: oracle)
        }
        #expect(nan?.description == "invalid baseline input: group 1 unit 1: score nan is not finite")
        let twice = #expect(throws: BaselineError.self) {
            try Baselines.lamp([Group(group: 1, scores: [1]), Group(group: 1, scores: [2])], limits: [:], cost: oracle)
        }
        #expect(twice?.description == "invalid baseline input: group 1 is listed twice")
        let missing = #expect(throws: BaselineError.self) {
            try Baselines.uniform([Group(group: 1, scores: [1, 2])], limits: [.latency: 5], cost: oracle)
        }
        #expect(missing?.description == "the cost oracle gave no latency total, which a budget limits")
        let shape = #expect(throws: BaselineError.self) {
            try Baselines.erkDensities([Baselines.LayerShape(group: 4, inputs: 0, outputs: 3)], density: 0.5)
        }
        #expect(shape?.description == "invalid baseline input: group 4: layer shape 0×3×[] has a dimension below 1")
    }
}
