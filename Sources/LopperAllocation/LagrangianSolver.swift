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
        var stepScale = 2.0, stepsWithoutGain = 0

        for iteration in 0..<max(1, iterations) {
            let relaxed = relaxedChoice(prepared, multipliers)
            if relaxed.bound > lowerBound {
                lowerBound = relaxed.bound
                bestMultipliers = multipliers
                stepsWithoutGain = 0
            } else {
                stepsWithoutGain += 1
                if stepsWithoutGain >= 20 { stepScale /= 2; stepsWithoutGain = 0 }
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

    init(_ prepared: PreparedProblem) { self.prepared = prepared }

    /// Whether the best damage is within rounding of `lowerBound`.
    func closes(_ lowerBound: Double) -> Bool {
        bestDamage - lowerBound <= 1e-12 * max(1, bestDamage.magnitude)
    }

    /// Repairs `choice`, improves it, and keeps it if it beats the best (lower damage wins; on a
    /// tie the earlier one stays).
    mutating func offer(_ choice: [Int]) {
        guard var repaired = repair(choice) else { return }
        improve(&repaired)
        let damage = prepared.problem.damage(of: repaired)
        if damage < bestDamage { best = repaired; bestDamage = damage }
    }

    private var budgets: Int { prepared.active.count }

    private func usage(_ choice: [Int]) -> [Double] {
        var usage = [Double](repeating: 0, count: budgets)
        for (g, o) in choice.enumerated() {
            for k in 0..<budgets { usage[k] += prepared.normalizedWeight[(prepared.optionStart[g] + o) * budgets + k] }
        }
        return usage
    }

    private func violation(_ usage: [Double]) -> Double {
        (0..<budgets).reduce(0) { $0 + max(0, usage[$1] - prepared.capacity[$1]) }
    }

    /// While some budget is exceeded, makes the switch that costs the least damage per unit of
    /// total excess removed (a gain in damage counts as negative cost). Nil when stuck.
    private func repair(_ start: [Int]) -> [Int]? {
        var choice = start, usage = usage(start)
        var excess = violation(usage)
        while excess > 0 {
            var bestMove: (g: Int, o: Int, usage: [Double], excess: Double)?
            var bestRatio = Double.infinity
            for g in 0..<prepared.groupCount {
                let current = prepared.optionStart[g] + choice[g]
                for i in prepared.options(of: g) where i != current {
                    let moved = (0..<budgets).map { k in
                        usage[k] + prepared.normalizedWeight[i * budgets + k] - prepared.normalizedWeight[current * budgets + k]
                    }
                    let movedExcess = violation(moved)
                    guard movedExcess < excess else { continue }
                    let ratio = (prepared.damage[i] - prepared.damage[current]) / (excess - movedExcess)
                    if ratio < bestRatio { bestRatio = ratio; bestMove = (g, i - prepared.optionStart[g], moved, movedExcess) }
                }
            }
            guard let move = bestMove else { return nil }
            choice[move.g] = move.o
            usage = move.usage
            excess = move.excess
        }
        return choice
    }

    /// While some switch lowers the damage and keeps every budget, makes the one with the largest
    /// damage saved per unit of added normalised weight (free switches first).
    private func improve(_ choice: inout [Int]) {
        var usage = usage(choice)
        while true {
            var bestMove: (g: Int, o: Int, usage: [Double])?
            var bestScore = (free: false, value: -Double.infinity)
            for g in 0..<prepared.groupCount {
                let current = prepared.optionStart[g] + choice[g]
                for i in prepared.options(of: g) where prepared.damage[i] < prepared.damage[current] {
                    var moved = usage, added = 0.0, fits = true
                    for k in 0..<budgets {
                        let delta = prepared.normalizedWeight[i * budgets + k] - prepared.normalizedWeight[current * budgets + k]
                        moved[k] += delta
                        added += max(0, delta)
                        if moved[k] > prepared.capacity[k] { fits = false; break }
                    }
                    guard fits else { continue }
                    let saved = prepared.damage[current] - prepared.damage[i]
                    let score = (free: added == 0, value: added == 0 ? saved : saved / added)
                    let better = score.free != bestScore.free ? score.free : score.value > bestScore.value
                    if better { bestScore = score; bestMove = (g, i - prepared.optionStart[g], moved) }
                }
            }
            guard let move = bestMove else { return }
            choice[move.g] = move.o
            usage = move.usage
        }
    }
}
