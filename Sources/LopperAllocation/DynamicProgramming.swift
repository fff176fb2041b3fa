/// Multiple-choice knapsack by dynamic programming over one budget cut into buckets.
///
/// The budget's slack (limit minus the smallest reachable total) is cut into `buckets` equal
/// buckets and each option's weight is rounded *up* to whole buckets, so the returned choice
/// always meets the real budget; it is optimal for those rounded weights. What the rounding
/// leaves of the budget is then spent by `PreparedProblem.improved` on the real weights. When
/// every weight is an integer and the slack is at most `buckets`, the bucket is 1 and the result
/// is exactly optimal (its damage is its lower bound). Otherwise a second pass with weights
/// rounded *down* (a relaxation) gives the lower bound. Time O(options × buckets), memory
/// O(groups × buckets) two-byte back-pointers.
enum DynamicProgramming {
    /// The back-pointers of one pass may take at most this many bytes.
    static let maximumTableBytes = 1 << 30

    static func solve(_ prepared: PreparedProblem, buckets: Int) throws -> (choice: [Int], lowerBound: Double) {
        guard prepared.active.count == 1 else {
            throw AllocationError.unsupported(.dynamicProgramming, "it takes one limited resource, this problem has \(prepared.active.count)")
        }
        guard buckets >= 1 else { throw AllocationError.unsupported(.dynamicProgramming, "buckets must be at least 1, got \(buckets)") }
        if let widest = prepared.problem.menus.map(\.options.count).max(), widest > Int(UInt16.max) {
            throw AllocationError.unsupported(.dynamicProgramming, "a menu has \(widest) options, at most \(UInt16.max) fit its back-pointers")
        }
        // Unnormalised weights, so that integer costs give integer weights.
        let raw = prepared.weight, slack = prepared.slack[0]
        let integral = slack <= Double(buckets) && raw.allSatisfy { $0 == $0.rounded() }
        let capacity = integral ? Int(slack.rounded(.down)) : buckets
        guard prepared.groupCount * (capacity + 1) * 2 <= maximumTableBytes else {
            throw AllocationError.unsupported(.dynamicProgramming, "\(prepared.groupCount) groups × \(capacity + 1) buckets exceed \(maximumTableBytes >> 20) MiB of back-pointers")
        }
        let bucket = integral ? 1.0 : max(slack, .leastNormalMagnitude) / Double(buckets)
        let up = raw.map { w -> Int in
            var b = (w / bucket).rounded(.up)
            if b * bucket < w { b += 1 }
            return b > Double(capacity) ? capacity + 1 : Int(b)
        }
        let choice = prepared.improved(bestChoice(prepared, weights: up, capacity: capacity))
        if integral { return (choice, prepared.problem.damage(of: choice)) }
        let down = raw.map { w -> Int in
            var b = (w / bucket).rounded(.down)
            if b * bucket > w { b -= 1 }
            return b > Double(capacity) ? capacity + 1 : Int(b)
        }
        return (choice, relaxedDamage(prepared, weights: down, capacity: capacity))
    }

    /// The least damaging choice whose integer weights sum to at most `capacity`.
    private static func bestChoice(_ prepared: PreparedProblem, weights: [Int], capacity: Int) -> [Int] {
        let width = capacity + 1
        var back = [UInt16](repeating: 0, count: prepared.groupCount * width)
        _ = sweep(prepared, weights: weights, capacity: capacity) { g, b, o in back[g * width + b] = UInt16(o) }
        var choice = [Int](repeating: 0, count: prepared.groupCount)
        var remaining = capacity
        for g in (0..<prepared.groupCount).reversed() {
            let o = Int(back[g * width + remaining])
            choice[g] = o
            remaining -= weights[prepared.optionStart[g] + o]
        }
        return choice
    }

    /// The optimum's damage for integer weights (no back-pointers kept).
    private static func relaxedDamage(_ prepared: PreparedProblem, weights: [Int], capacity: Int) -> Double {
        sweep(prepared, weights: weights, capacity: capacity) { _, _, _ in }
    }

    /// The recurrence: `best[b]` is the least damage of the groups so far with weight ≤ b.
    /// `record(g, b, o)` is told each group's winning option per `b`; the lower index wins ties.
    /// Every group's cheapest option weighs 0, so each `best[b]` is finite.
    private static func sweep(_ prepared: PreparedProblem, weights: [Int], capacity: Int,
                              record: (Int, Int, Int) -> Void) -> Double {
        var best = [Double](repeating: 0, count: capacity + 1)
        var next = [Double](repeating: 0, count: capacity + 1)
        var winner = [Int](repeating: 0, count: capacity + 1)
        for g in 0..<prepared.groupCount {
            next.withUnsafeMutableBufferPointer { next in
                winner.withUnsafeMutableBufferPointer { winner in
                    best.withUnsafeBufferPointer { best in
                        for b in 0...capacity { next[b] = .infinity }
                        for i in prepared.options(of: g) {
                            let w = weights[i], d = prepared.damage[i], o = i - prepared.optionStart[g]
                            if w > capacity { continue }
                            for b in w...capacity where best[b - w] + d < next[b] {
                                next[b] = best[b - w] + d
                                winner[b] = o
                            }
                        }
                    }
                }
            }
            for b in 0...capacity { record(g, b, winner[b]) }
            swap(&best, &next)
        }
        return best[capacity]
    }
}
