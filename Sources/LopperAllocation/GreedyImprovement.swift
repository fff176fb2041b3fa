extension PreparedProblem {
    /// `choice` after greedy improvement: while some one-group switch lowers the damage and keeps
    /// every budget, the one saving the most damage per unit of added normalised weight is made
    /// (switches adding no weight first; ties to the earlier group and option). The damage
    /// strictly falls at each switch, so no state repeats; `greedyMoveLimit` caps the switches.
    /// Used on the choices of dynamic programming, which rounding up to buckets leaves below the
    /// real budget, and of the Lagrangian repair.
    func improved(_ choice: [Int]) -> [Int] {
        let damage = self.damage, weight = normalizedWeight, capacity = self.capacity
        let start = optionStart, budgets = active.count
        var choice = choice
        var usage = [Double](repeating: 0, count: budgets)
        for (g, o) in choice.enumerated() {
            for k in 0..<budgets { usage[k] += weight[(start[g] + o) * budgets + k] }
        }
        for _ in 0..<Self.greedyMoveLimit(optionCount) {
            var bestMove: (g: Int, i: Int)?
            var bestScore = (free: false, value: -Double.infinity)
            for g in 0..<choice.count {
                let chosen = start[g] + choice[g]
                candidates: for i in start[g]..<start[g + 1] where damage[i] < damage[chosen] {
                    var added = 0.0
                    for k in 0..<budgets {
                        let delta = weight[i * budgets + k] - weight[chosen * budgets + k]
                        if usage[k] + delta > capacity[k] { continue candidates }
                        added += max(0, delta)
                    }
                    let saved = damage[chosen] - damage[i]
                    let score = (free: added == 0, value: added == 0 ? saved : saved / added)
                    let better = score.free != bestScore.free ? score.free : score.value > bestScore.value
                    if better { bestScore = score; bestMove = (g, i) }
                }
            }
            guard let best = bestMove else { break }
            let chosen = start[best.g] + choice[best.g]
            for k in 0..<budgets { usage[k] += weight[best.i * budgets + k] - weight[chosen * budgets + k] }
            choice[best.g] = best.i - start[best.g]
        }
        return choice
    }

    /// The most switches one greedy pass makes: four per option, far more than a pass needs in
    /// practice, so that a pathological problem cannot keep it going.
    static func greedyMoveLimit(_ optionCount: Int) -> Int { 4 * max(optionCount, 1) }
}
