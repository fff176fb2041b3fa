/// Lagrangian relaxation of the budgets, for problems too large for the mixed-integer solve.
///
/// With a multiplier `λ_k ≥ 0` per budget, each group independently takes the option minimising
/// `damage + Σ_k λ_k·weight_k`. The sum of those minima minus `Σ_k λ_k·capacity_k` is a lower
/// bound on the optimum (weak duality). Subgradient steps (Polyak's rule, against the best
/// feasible damage found) raise the bound. The relaxed choices are repaired into feasible ones
/// greedily by damage per cost. The best feasible choice is returned with the best bound.
enum LagrangianSolver {
    static func solve(_ prepared: PreparedProblem, iterations: Int) throws -> (choice: [Int], lowerBound: Double) {
        let budgets = prepared.active.count
        var search = Search(prepared)
        var multipliers = [Double](repeating: 0, count: budgets)
        var bestMultipliers = multipliers
        var lowerBound = -Double.infinity
        // Polyak's step scale, halved after `patience` steps without a better bound.
        var stepScale = 2.0, stepsWithoutGain = 0
        let patience = 20

        for iteration in 0..<max(1, iterations) {
            let relaxed = relaxedChoice(prepared, multipliers)
            if relaxed.bound > lowerBound {
                lowerBound = relaxed.bound
                bestMultipliers = multipliers
                stepsWithoutGain = 0
            } else {
                stepsWithoutGain += 1
                if stepsWithoutGain >= patience { stepScale /= 2; stepsWithoutGain = 0 }
            }
            let excess = (0..<budgets).map { relaxed.usage[$0] - prepared.capacity[$0] }
            if iteration % 10 == 0 || excess.allSatisfy({ $0 <= 0 }) { search.offer(relaxed.choice) }
            if search.closes(lowerBound) || stepScale < 1e-6 { break }

            // Projected subgradient: components held at λ = 0 by a negative excess do not move.
            let direction = (0..<budgets).map { k in multipliers[k] == 0 && excess[k] < 0 ? 0 : excess[k] }
            let norm = direction.reduce(0) { $0 + $1 * $1 }
            if norm == 0 { break }  // feasible and complementary: the relaxed choice is optimal
            let target = search.bestDamage.isFinite ? search.bestDamage : relaxed.bound + max(1, relaxed.bound.magnitude)
            let step = stepScale * max(target - relaxed.bound, 1e-12 * max(1, target.magnitude)) / norm
            for k in 0..<budgets { multipliers[k] = max(0, multipliers[k] + step * direction[k]) }
        }
        search.offer(relaxedChoice(prepared, bestMultipliers).choice)
        search.offer(cheapestCombined(prepared))
        guard let choice = search.best else { throw AllocationError.noFeasibleChoiceFound(.lagrangian, prepared.active) }
        return (choice, lowerBound)
    }

    /// Each group's option minimising damage plus priced weights; the dual bound; the usage.
    private static func relaxedChoice(_ prepared: PreparedProblem, _ multipliers: [Double])
        -> (choice: [Int], bound: Double, usage: [Double]) {
        let budgets = multipliers.count
        var choice = [Int](repeating: 0, count: prepared.groupCount)
        var usage = [Double](repeating: 0, count: budgets)
        var bound = 0.0
        for g in 0..<prepared.groupCount {
            var best = 0, bestValue = Double.infinity
            for i in prepared.options(of: g) {
                var value = prepared.damage[i]
                for k in 0..<budgets { value += multipliers[k] * prepared.normalizedWeight[i * budgets + k] }
                if value < bestValue { bestValue = value; best = i }
            }
            choice[g] = best - prepared.optionStart[g]
            bound += bestValue
            for k in 0..<budgets { usage[k] += prepared.normalizedWeight[best * budgets + k] }
        }
        for k in 0..<budgets { bound -= multipliers[k] * prepared.capacity[k] }
        return (choice, bound, usage)
    }

    /// Each group's option with the smallest sum of normalised weights: a start for the repair
    /// when no relaxed choice led to a feasible one.
    private static func cheapestCombined(_ prepared: PreparedProblem) -> [Int] {
        let budgets = prepared.active.count
        return (0..<prepared.groupCount).map { g in
            var best = prepared.optionStart[g], bestWeight = Double.infinity
            for i in prepared.options(of: g) {
                let weight = (0..<budgets).reduce(0) { $0 + prepared.normalizedWeight[i * budgets + $1] }
                if weight < bestWeight { bestWeight = weight; best = i }
            }
            return best - prepared.optionStart[g]
        }
    }
}

/// The best feasible choice found so far, and the greedy repair that turns choices into feasible ones.
private struct Search {
    let prepared: PreparedProblem
    private(set) var best: [Int]?
    private(set) var bestDamage = Double.infinity
    // Local copies of the prepared arrays for the inner loops.
    private let damage: [Double], weight: [Double], capacity: [Double], start: [Int], budgets: Int

    init(_ prepared: PreparedProblem) {
        self.prepared = prepared
        damage = prepared.damage
        weight = prepared.normalizedWeight
        capacity = prepared.capacity
        start = prepared.optionStart
        budgets = prepared.active.count
    }

    /// Whether the best damage is within rounding of `lowerBound`.
    func closes(_ lowerBound: Double) -> Bool {
        bestDamage - lowerBound <= 1e-12 * max(1, bestDamage.magnitude)
    }

    /// Repairs `choice`, improves it, and keeps it if it beats the best (lower damage wins; on a
    /// tie the earlier one stays).
    mutating func offer(_ choice: [Int]) {
        guard let repaired = repair(choice).map(prepared.improved) else { return }
        let damage = prepared.problem.damage(of: repaired)
        if damage < bestDamage { best = repaired; bestDamage = damage }
    }

    private func usage(_ choice: [Int]) -> [Double] {
        var usage = [Double](repeating: 0, count: budgets)
        for (g, o) in choice.enumerated() {
            for k in 0..<budgets { usage[k] += weight[(start[g] + o) * budgets + k] }
        }
        return usage
    }

    /// Moves `usage` from option `from` to option `to` (flat indices) of one group.
    private func move(_ usage: inout [Double], from: Int, to: Int) {
        for k in 0..<budgets { usage[k] += weight[to * budgets + k] - weight[from * budgets + k] }
    }

    /// While some budget is exceeded, makes the switch that costs the least damage per unit of
    /// total excess removed (a gain in damage counts as negative cost). Nil when stuck.
    private func repair(_ initial: [Int]) -> [Int]? {
        var choice = initial, usage = usage(initial)
        func excess(switching from: Int, to: Int) -> Double {
            var total = 0.0
            for k in 0..<budgets {
                total += max(0, usage[k] + weight[to * budgets + k] - weight[from * budgets + k] - capacity[k])
            }
            return total
        }
        var current = (0..<budgets).reduce(0.0) { $0 + max(0, usage[$1] - capacity[$1]) }
        var moves = 0
        while current > 0 {
            // Each move lowers the excess, so none repeats a state; the cap keeps the pass short.
            moves += 1
            if moves > PreparedProblem.greedyMoveLimit(prepared.optionCount) { return nil }
            var bestMove: (g: Int, i: Int, excess: Double)?
            var bestRatio = Double.infinity
            for g in 0..<choice.count {
                let chosen = start[g] + choice[g]
                for i in start[g]..<start[g + 1] where i != chosen {
                    let moved = excess(switching: chosen, to: i)
                    guard moved < current else { continue }
                    let ratio = (damage[i] - damage[chosen]) / (current - moved)
                    if ratio < bestRatio { bestRatio = ratio; bestMove = (g, i, moved) }
                }
            }
            guard let best = bestMove else { return nil }
            move(&usage, from: start[best.g] + choice[best.g], to: best.i)
            choice[best.g] = best.i - start[best.g]
            current = best.excess
        }
        return choice
    }
}
