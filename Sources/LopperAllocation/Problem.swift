/// One way to treat a group: its predicted damage and what it adds to each resource's total.
public struct Option: Codable, Hashable, Sendable {
    /// Predicted damage if this option is chosen (the sweep's metric; lower is better).
    public var damage: Double
    /// This group's contribution to each resource's total when the option is chosen (units as in
    /// `Resource`). A missing resource contributes zero.
    public var cost: ResourceAmounts
    /// Opaque to the solver; the caller's way back to the level, granularity and criterion.
    public var tag: Int

    public init(damage: Double, cost: ResourceAmounts, tag: Int = 0) {
        self.damage = damage
        self.cost = cost
        self.tag = tag
    }
}

/// The options of one prune group. The caller puts "untouched" in; the solver picks exactly one.
public struct Menu: Codable, Hashable, Sendable {
    public var group: Int
    public var options: [Option]

    public init(group: Int, options: [Option]) {
        self.group = group
        self.options = options
    }
}

/// A multiple-choice knapsack: one option per menu, minimising the total damage, with
/// `fixedCost + Σ chosen contributions ≤ limits[r]` for every limited resource `r`.
public struct Problem: Codable, Hashable, Sendable {
    public var menus: [Menu]
    /// What the model costs outside the menus' groups (layers no group touches).
    public var fixedCost: ResourceAmounts
    /// Absolute limits (see `BudgetSpec.resolve`); a resource without one is not constrained.
    public var limits: ResourceAmounts

    public init(menus: [Menu], fixedCost: ResourceAmounts = [:], limits: ResourceAmounts) {
        self.menus = menus
        self.fixedCost = fixedCost
        self.limits = limits
    }

    /// The limited resources, in `Resource` order.
    public var limitedResources: [Resource] { limits.keys.sorted() }

    /// Total damage of a choice (option index per menu), summed in menu order.
    public func damage(of choice: [Int]) -> Double {
        var total = 0.0
        for (menu, index) in zip(menus, choice) { total += menu.options[index].damage }
        return total
    }

    /// Totals of a choice, fixed cost included, summed in menu order for every resource that any
    /// option, the fixed cost or the limits mention. This sum is the one every budget is checked on.
    public func cost(of choice: [Int]) -> ResourceAmounts {
        var resources = Set(fixedCost.keys).union(limits.keys)
        for menu in menus { for option in menu.options { resources.formUnion(option.cost.keys) } }
        var totals: ResourceAmounts = [:]
        for resource in resources {
            var total = fixedCost[resource] ?? 0
            for (menu, index) in zip(menus, choice) { total += menu.options[index].cost[resource] ?? 0 }
            totals[resource] = total
        }
        return totals
    }

    /// Whether a choice's totals are within every limit.
    public func meetsLimits(_ choice: [Int]) -> Bool {
        let totals = cost(of: choice)
        return limits.allSatisfy { resource, limit in (totals[resource] ?? 0) <= limit }
    }
}

/// The method that produced a solution.
public enum SolverMethod: String, Codable, Sendable {
    /// Nothing is limited: every group takes its least damaging option.
    case unconstrained
    /// Dynamic programming over one discretised budget.
    case dynamicProgramming
    /// GLPK's branch and bound.
    case mixedInteger
    /// Lagrangian relaxation with a greedy repair.
    case lagrangian
}

/// The chosen option per menu, its totals, and what is known about its optimality.
public struct Solution: Codable, Hashable, Sendable {
    /// Option index per menu, in the problem's menu order.
    public var choice: [Int]
    /// Total damage of `choice`.
    public var damage: Double
    /// Totals of `choice` per resource, fixed cost included.
    public var cost: ResourceAmounts
    public var method: SolverMethod
    /// True when no choice meeting the limits has a lower damage.
    public var provenOptimal: Bool
    /// A value no feasible choice's damage is below, when the method gives one.
    public var lowerBound: Double?

    public init(choice: [Int], damage: Double, cost: ResourceAmounts, method: SolverMethod,
                provenOptimal: Bool, lowerBound: Double?) {
        self.choice = choice
        self.damage = damage
        self.cost = cost
        self.method = method
        self.provenOptimal = provenOptimal
        self.lowerBound = lowerBound
    }

    /// The chosen options' tags, per menu.
    public func tags(in problem: Problem) -> [Int] {
        zip(problem.menus, choice).map { menu, index in menu.options[index].tag }
    }
}
