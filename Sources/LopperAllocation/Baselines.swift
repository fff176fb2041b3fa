/// The allocations Lopper's is compared with, at the same real cost: each turns one global knob
/// until the caller's cost oracle meets the limits, keeping as many units as fit.
///
/// The oracle maps kept units per group to resource totals (units as in `Resource`) and must not
/// grow when units are removed; each search relies on that. A group never keeps fewer than its
/// `minimumKept` (nor more units than it has).
public enum Baselines {
    /// Resource totals of a model keeping `kept[group]` units of each group.
    public typealias CostOracle = (_ kept: [Int: Int]) throws -> ResourceAmounts

    /// A group's units with their importance scores (e.g. the L2 norm of each channel's weights).
    public struct ScoredGroup: Hashable, Sendable {
        public var group: Int
        public var scores: [Double]
        public var minimumKept: Int

        public init(group: Int, scores: [Double], minimumKept: Int = 1) {
            self.group = group
            self.scores = scores
            self.minimumKept = minimumKept
        }
    }

    /// What a baseline keeps and what it costs.
    public struct Result: Hashable, Sendable {
        /// Kept units per group.
        public var kept: [Int: Int]
        /// Indices (ascending) of each group's kept units.
        public var keptUnits: [Int: [Int]]
        /// The oracle's totals for `kept`.
        public var cost: ResourceAmounts
        /// The knob where the search stopped: the pruned fraction (uniform), or the largest pruned
        /// score (global magnitude, LAMP; −∞ when nothing is pruned).
        public var knob: Double
    }

    /// The same fraction pruned from every group, its lowest-scored units first. Fractions are
    /// searched over every `j / n` at which some group's count changes; a group of `n` units at
    /// fraction `f` keeps `n − ⌊f·n⌋`.
    public static func uniform(_ groups: [ScoredGroup], limits: ResourceAmounts, cost: CostOracle) throws -> Result {
        try validate(groups)
        // Candidate fractions j/n as exact rationals, ascending and distinct.
        var fractions = Set<Fraction>([Fraction(0, 1)])
        for group in groups where !group.scores.isEmpty {
            for j in 1...group.scores.count { fractions.insert(Fraction(j, group.scores.count)) }
        }
        let steps = fractions.sorted()
        let kept = { (step: Int) -> [Int: Int] in
            let f = steps[step]
            return Dictionary(uniqueKeysWithValues: groups.map { group in
                let n = group.scores.count
                return (group.group, max(min(group.minimumKept, n), n - f.numerator * n / f.denominator))
            })
        }
        let step = try smallestFittingStep(steps.count - 1, .uniform, kept, limits, cost)
        let counts = kept(step)
        return Result(kept: counts, keptUnits: highestScored(groups, counts), cost: try cost(counts),
                      knob: Double(steps[step].numerator) / Double(steps[step].denominator))
    }

    /// Units of all groups ranked together by score, the lowest pruned first.
    public static func globalMagnitude(_ groups: [ScoredGroup], limits: ResourceAmounts, cost: CostOracle) throws -> Result {
        try validate(groups)
        return try globalRanking(groups, .globalMagnitude, limits: limits, cost: cost)
    }

    /// LAMP (Lee et al., "Layer-adaptive sparsity for the magnitude-based pruning", ICLR 2021):
    /// each unit's score is rescaled within its group by `lampScores`, then ranked globally.
    public static func lamp(_ groups: [ScoredGroup], limits: ResourceAmounts, cost: CostOracle) throws -> Result {
        try validate(groups)
        let rescaled = groups.map { ScoredGroup(group: $0.group, scores: lampScores($0.scores), minimumKept: $0.minimumKept) }
        return try globalRanking(rescaled, .lamp, limits: limits, cost: cost)
    }

    /// LAMP scores of one group's magnitudes `w`: with the units sorted by `w²` ascending (ties by
    /// index), unit `u`'s score is `w_u² / Σ_{v ≥ u} w_v²`, the sum over `u` and every unit after
    /// it. A zero over a zero sum scores 0. The largest unit scores 1.
    public static func lampScores(_ magnitudes: [Double]) -> [Double] {
        let order = magnitudes.indices.sorted { (magnitudes[$0] * magnitudes[$0], $0) < (magnitudes[$1] * magnitudes[$1], $1) }
        var scores = [Double](repeating: 0, count: magnitudes.count)
        var suffix = 0.0
        for u in order.reversed() {
            let square = magnitudes[u] * magnitudes[u]
            suffix += square
            scores[u] = suffix == 0 ? 0 : square / suffix
        }
        return scores
    }

    /// Prunes the lowest-scored units of all groups first (ties: earlier group, then lower
    /// score within the group, then lower index); each group's `minimumKept` best are never pruned.
    private static func globalRanking(_ groups: [ScoredGroup], _ baseline: Baseline, limits: ResourceAmounts,
                                      cost: CostOracle) throws -> Result {
        var candidates: [(score: Double, position: Int, rank: Int)] = []
        for (position, group) in groups.enumerated() {
            let ranked = group.scores.indices.sorted { (group.scores[$0], $0) < (group.scores[$1], $1) }
            let prunable = max(0, group.scores.count - group.minimumKept)
            for rank in 0..<prunable { candidates.append((group.scores[ranked[rank]], position, rank)) }
        }
        candidates.sort { ($0.score, $0.position, $0.rank) < ($1.score, $1.position, $1.rank) }
        let kept = { (step: Int) -> [Int: Int] in
            var counts = groups.map(\.scores.count)
            for candidate in candidates[..<step] { counts[candidate.position] -= 1 }
            return Dictionary(uniqueKeysWithValues: zip(groups.map(\.group), counts))
        }
        let step = try smallestFittingStep(candidates.count, baseline, kept, limits, cost)
        let counts = kept(step)
        return Result(kept: counts, keptUnits: highestScored(groups, counts), cost: try cost(counts),
                      knob: step == 0 ? -.infinity : candidates[step - 1].score)
    }

    /// Bisection over steps 0 (nothing pruned) … `last` (most pruned) for the first whose cost
    /// meets the limits; steps are assumed to cost less the further they go.
    static func smallestFittingStep(_ last: Int, _ baseline: Baseline, _ kept: (Int) throws -> [Int: Int],
                                    _ limits: ResourceAmounts, _ cost: CostOracle) throws -> Int {
        let mostPruned = try cost(kept(last))
        let shortfalls = try limits.keys.sorted().compactMap { resource -> Shortfall? in
            let total = try total(mostPruned, resource)
            return total > limits[resource]! ? Shortfall(resource: resource, limit: limits[resource]!, smallestReachable: total) : nil
        }
        if !shortfalls.isEmpty { throw BaselineError.infeasible(shortfalls, baseline) }
        if try meets(cost(kept(0)), limits) { return 0 }
        var failing = 0, fitting = last
        while fitting - failing > 1 {
            let middle = (failing + fitting) / 2
            if try meets(cost(kept(middle)), limits) { fitting = middle } else { failing = middle }
        }
        return fitting
    }

    static func meets(_ totals: ResourceAmounts, _ limits: ResourceAmounts) throws -> Bool {
        try limits.allSatisfy { resource, limit in try total(totals, resource) <= limit }
    }

    private static func total(_ totals: ResourceAmounts, _ resource: Resource) throws -> Double {
        guard let total = totals[resource] else { throw BaselineError.missingCost(resource) }
        return total
    }

    /// Each group's `kept[group]` highest-scored units (ties: lower index), ascending.
    private static func highestScored(_ groups: [ScoredGroup], _ kept: [Int: Int]) -> [Int: [Int]] {
        Dictionary(uniqueKeysWithValues: groups.map { group in
            let ranked = group.scores.indices.sorted { (group.scores[$0], $0) < (group.scores[$1], $1) }
            return (group.group, ranked.suffix(kept[group.group]!).sorted())
        })
    }

    private static func validate(_ groups: [ScoredGroup]) throws {
        var seen = Set<Int>()
        for group in groups {
            guard seen.insert(group.group).inserted else { throw BaselineError.invalidInput("group \(group.group) is listed twice") }
            guard group.minimumKept >= 0 else {
                throw BaselineError.invalidInput("group \(group.group): minimumKept \(group.minimumKept) is negative")
            }
            if let bad = group.scores.firstIndex(where: { !$0.isFinite }) {
                throw BaselineError.invalidInput("group \(group.group) unit \(bad): score \(group.scores[bad]) is not finite")
            }
        }
    }
}

/// The allocations Lopper's are compared with.
public enum Baseline: String, CaseIterable, Codable, Sendable {
    case uniform, globalMagnitude, lamp, erk

    /// The name a report prints.
    public var name: String {
        switch self {
        case .uniform: return "uniform"
        case .globalMagnitude: return "global magnitude"
        case .lamp: return "LAMP"
        case .erk: return "ERK"
        }
    }
}

/// A non-negative fraction, compared exactly.
struct Fraction: Hashable, Comparable {
    let numerator: Int, denominator: Int
    init(_ numerator: Int, _ denominator: Int) {
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        let divisor = gcd(numerator, denominator)
        self.numerator = numerator / divisor
        self.denominator = denominator / divisor
    }
    static func < (a: Fraction, b: Fraction) -> Bool { a.numerator * b.denominator < b.numerator * a.denominator }
}

/// Why a baseline could not be computed.
public enum BaselineError: Error, Equatable, CustomStringConvertible {
    /// Even the baseline's most pruned setting misses these budgets.
    case infeasible([Shortfall], Baseline)
    /// The cost oracle gave no total for a limited resource.
    case missingCost(Resource)
    case invalidInput(String)

    public var description: String {
        switch self {
        case .infeasible(let shortfalls, let baseline):
            let parts = shortfalls.map { s in
                "\(s.resource.budgetName) ≤ \(s.resource.format(s.limit)) (its most pruned setting reaches \(s.resource.format(s.smallestReachable)))"
            }
            return "\(baseline.name) cannot meet " + parts.joined(separator: "; ")
        case .missingCost(let resource):
            return "the cost oracle gave no \(resource.budgetName) total, which a budget limits"
        case .invalidInput(let message):
            return "invalid baseline input: \(message)"
        }
    }
}
