/// A validated problem in the form every solver works on, derived once per solve.
///
/// Per group and limited resource the cheapest option's cost is moved into the fixed part, so each
/// option's `weight` is what it adds above its group's cheapest (≥ 0), and each budget becomes a
/// `slack`: the limit minus the smallest reachable total. Resources whose largest possible total
/// still fits are dropped (`active` lists the others). The normalised weights and capacities are
/// divided by each resource's `scale` (the sum over groups of the weight range), so that all
/// rows are O(1).
struct PreparedProblem {
    let problem: Problem
    /// Limited resources that some choice could exceed, in `Resource` order.
    let active: [Resource]
    /// Index of menu `g`'s first option in the flat arrays; `optionStart[menus.count]` = total.
    let optionStart: [Int]
    /// Damage per option, flat.
    let damage: [Double]
    /// What option `i` adds above its group's cheapest on active resource `k`, at
    /// `i * active.count + k`.
    let weight: [Double]
    /// `weight` divided by the resource's `scale`.
    let normalizedWeight: [Double]
    /// Normalised capacity per active resource.
    let capacity: [Double]
    /// Unnormalised capacity (limit − smallest reachable total) per active resource.
    let slack: [Double]
    /// The divisor turning a resource's weights and capacity into normalised ones.
    let scale: [Double]

    var groupCount: Int { problem.menus.count }
    var optionCount: Int { optionStart[groupCount] }
    func options(of group: Int) -> Range<Int> { optionStart[group]..<optionStart[group + 1] }

    init(_ problem: Problem) throws {
        try Self.validate(problem)
        self.problem = problem
        var starts = [0]
        for menu in problem.menus { starts.append(starts.last! + menu.options.count) }
        optionStart = starts
        damage = problem.menus.flatMap { $0.options.map(\.damage) }

        var shortfalls: [Shortfall] = []
        var active: [Resource] = [], slack: [Double] = [], scale: [Double] = []
        for resource in problem.limitedResources {
            let limit = problem.limits[resource]!
            var smallest = problem.fixedCost[resource] ?? 0, largest = smallest, range = 0.0
            for menu in problem.menus {
                let costs = menu.options.map { $0.cost[resource] ?? 0 }
                smallest += costs.min()!
                largest += costs.max()!
                range += costs.max()! - costs.min()!
            }
            if smallest > limit {
                shortfalls.append(Shortfall(resource: resource, limit: limit, smallestReachable: smallest))
            } else if largest > limit {
                active.append(resource)
                slack.append(limit - smallest)
                scale.append(range)
            }
        }
        if !shortfalls.isEmpty { throw AllocationError.infeasible(shortfalls) }
        self.active = active
        self.slack = slack
        self.scale = scale
        capacity = zip(slack, scale).map { $0 / $1 }

        var weight = [Double](repeating: 0, count: starts.last! * active.count)
        for (g, menu) in problem.menus.enumerated() {
            for (k, resource) in active.enumerated() {
                let cheapest = menu.options.map { $0.cost[resource] ?? 0 }.min()!
                for (o, option) in menu.options.enumerated() {
                    weight[(starts[g] + o) * active.count + k] = (option.cost[resource] ?? 0) - cheapest
                }
            }
        }
        self.weight = weight
        normalizedWeight = weight.indices.map { weight[$0] / scale[$0 % active.count] }
    }

    /// The least damaging option of each group, ignoring every budget (lowest index on ties).
    func leastDamaging() -> [Int] {
        (0..<groupCount).map { g in
            var best = optionStart[g]
            for i in options(of: g) where damage[i] < damage[best] { best = i }
            return best - optionStart[g]
        }
    }

    private static func validate(_ problem: Problem) throws {
        func check(_ value: Double, _ what: @autoclosure () -> String) throws {
            if !value.isFinite { throw AllocationError.invalidProblem("\(what()) is \(value), expected a finite number") }
        }
        var seen = Set<Int>()
        for (index, menu) in problem.menus.enumerated() {
            if menu.options.isEmpty {
                throw AllocationError.invalidProblem("menu \(index) (group \(menu.group)) has no options; it needs at least \"untouched\"")
            }
            if !seen.insert(menu.group).inserted {
                throw AllocationError.invalidProblem("group \(menu.group) has more than one menu")
            }
            for (o, option) in menu.options.enumerated() {
                try check(option.damage, "group \(menu.group) option \(o) damage")
                for (resource, cost) in option.cost {
                    try check(cost, "group \(menu.group) option \(o) \(resource.budgetName) cost")
                }
            }
        }
        for (resource, cost) in problem.fixedCost { try check(cost, "fixed \(resource.budgetName) cost") }
        for (resource, limit) in problem.limits { try check(limit, "\(resource.budgetName) limit") }
    }
}
