/// Which solver `Allocator.solve` runs.
public enum AllocationMethod: Sendable {
    /// Dynamic programming when one budget binds; the mixed-integer solve when several do and the
    /// problem is moderate (at most `AllocatorSettings.mixedIntegerMaxOptions` options in all);
    /// Lagrangian relaxation otherwise, or when the mixed-integer solve stops at its time limit
    /// without a feasible choice.
    case automatic
    case dynamicProgramming
    case mixedInteger
    case lagrangian
}

/// Knobs of the solvers. The defaults suit a few hundred groups with a dozen options each.
public struct AllocatorSettings: Sendable {
    /// Buckets the one budget is cut into by dynamic programming.
    public var buckets: Int
    /// Wall-clock limit of GLPK's branch and bound; at the limit the best choice found is returned
    /// (not proven optimal), so a result that hit it depends on the machine's speed.
    public var mixedIntegerTimeLimit: Duration
    /// The largest total number of options `.automatic` hands to the mixed-integer solve.
    public var mixedIntegerMaxOptions: Int
    /// Subgradient steps of the Lagrangian relaxation.
    public var lagrangianIterations: Int

    public init(buckets: Int = 20_000, mixedIntegerTimeLimit: Duration = .seconds(60),
                mixedIntegerMaxOptions: Int = 5_000, lagrangianIterations: Int = 400) {
        self.buckets = buckets
        self.mixedIntegerTimeLimit = mixedIntegerTimeLimit
        self.mixedIntegerMaxOptions = mixedIntegerMaxOptions
        self.lagrangianIterations = lagrangianIterations
    }
}

/// Chooses one option per group to minimise the total damage within every budget. Pure and
/// deterministic: the same problem and settings give the same choice (ties go to the lower
/// option index), except that a mixed-integer solve cut short by its time limit depends on speed.
public enum Allocator {
    /// How often a choice that misses a budget by floating-point rounding (in a method's normalised
    /// arithmetic) is re-solved against a budget tightened by twice the miss.
    static let roundingRetries = 3

    public static func solve(_ problem: Problem, method: AllocationMethod = .automatic,
                             settings: AllocatorSettings = AllocatorSettings()) throws -> Solution {
        var tightened = problem
        var firstLowerBound: Double??
        var lastMethod = SolverMethod.unconstrained
        for _ in 0...roundingRetries {
            var solution = try solveOnce(PreparedProblem(tightened), method: method, settings: settings)
            solution.choice = lowestEquivalent(solution.choice, problem)
            solution.damage = problem.damage(of: solution.choice)
            // Only the first solve saw the real budgets, so only its bound holds for them.
            if firstLowerBound == nil { firstLowerBound = solution.lowerBound }
            let totals = problem.cost(of: solution.choice)
            let misses = problem.limits.filter { resource, limit in (totals[resource] ?? 0) > limit }
            if misses.isEmpty {
                solution.cost = totals
                solution.lowerBound = firstLowerBound!
                solution.provenOptimal = solution.lowerBound.map { solution.damage <= $0 } ?? false
                return solution
            }
            for (resource, limit) in misses.sorted(by: { $0.key < $1.key }) {
                let miss = totals[resource]! - limit
                tightened.limits[resource]! -= max(2 * miss, 4 * limit.magnitude.ulp)
            }
            lastMethod = solution.method
        }
        throw AllocationError.budgetMissedByRounding(lastMethod)
    }

    /// Each group's choice replaced by its lowest-index option of equal damage and no larger cost
    /// on any resource: the tie rule, whatever order the method met the options in. Totals can only
    /// shrink (floating-point addition is monotone), so the budgets stay met.
    static func lowestEquivalent(_ choice: [Int], _ problem: Problem) -> [Int] {
        zip(problem.menus, choice).map { menu, index in
            let chosen = menu.options[index]
            return menu.options[..<index].firstIndex { option in
                option.damage == chosen.damage
                    && Set(option.cost.keys).union(chosen.cost.keys).allSatisfy { (option.cost[$0] ?? 0) <= (chosen.cost[$0] ?? 0) }
            } ?? index
        }
    }

    private static func solveOnce(_ prepared: PreparedProblem, method: AllocationMethod,
                                  settings: AllocatorSettings) throws -> Solution {
        if prepared.active.isEmpty {
            let choice = prepared.leastDamaging()
            return solution(choice, .unconstrained, prepared, lowerBound: prepared.problem.damage(of: choice))
        }
        switch method {
        case .dynamicProgramming:
            return try dynamicProgramming(prepared, settings)
        case .mixedInteger:
            return try mixedInteger(prepared, settings)
        case .lagrangian:
            return try lagrangian(prepared, settings)
        case .automatic:
            if prepared.active.count == 1 {
                do { return try dynamicProgramming(prepared, settings) } catch AllocationError.unsupported {}
            }
            if prepared.optionCount <= settings.mixedIntegerMaxOptions {
                do {
                    return try mixedInteger(prepared, settings)
                } catch AllocationError.noFeasibleChoiceFound(.mixedInteger, _) {
                    return try lagrangian(prepared, settings)
                }
            }
            return try lagrangian(prepared, settings)
        }
    }

    private static func dynamicProgramming(_ prepared: PreparedProblem, _ settings: AllocatorSettings) throws -> Solution {
        let result = try DynamicProgramming.solve(prepared, buckets: settings.buckets)
        return solution(result.choice, .dynamicProgramming, prepared, lowerBound: result.lowerBound)
    }

    private static func mixedInteger(_ prepared: PreparedProblem, _ settings: AllocatorSettings) throws -> Solution {
        let result = try MixedIntegerSolver.solve(prepared, timeLimit: settings.mixedIntegerTimeLimit)
        return solution(result.choice, .mixedInteger, prepared, lowerBound: result.proven ? .infinity : result.lowerBound)
    }

    private static func lagrangian(_ prepared: PreparedProblem, _ settings: AllocatorSettings) throws -> Solution {
        let result = try LagrangianSolver.solve(prepared, iterations: settings.lagrangianIterations)
        return solution(result.choice, .lagrangian, prepared, lowerBound: result.lowerBound)
    }

    /// `lowerBound` is capped at the choice's damage: a bound above it is rounding in the bound,
    /// or (`.infinity`) the solver's word that the choice is optimal.
    private static func solution(_ choice: [Int], _ method: SolverMethod, _ prepared: PreparedProblem,
                                 lowerBound: Double?) -> Solution {
        let damage = prepared.problem.damage(of: choice)
        let bound = lowerBound.map { min($0, damage) }
        return Solution(choice: choice, damage: damage, cost: prepared.problem.cost(of: choice), method: method,
                        provenOptimal: bound == damage, lowerBound: bound)
    }
}
