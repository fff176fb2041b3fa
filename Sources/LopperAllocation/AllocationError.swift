/// A budget no choice can meet: its limit and the smallest total any choice reaches.
public struct Shortfall: Codable, Hashable, Sendable {
    public var resource: Resource
    public var limit: Double
    /// Fixed cost plus every group at its cheapest option for this resource.
    public var smallestReachable: Double

    public init(resource: Resource, limit: Double, smallestReachable: Double) {
        self.resource = resource
        self.limit = limit
        self.smallestReachable = smallestReachable
    }
}

/// Why a problem could not be solved. Each description is one line naming what is wrong.
public enum AllocationError: Error, Equatable, CustomStringConvertible {
    /// The problem itself is malformed (no options, a non-finite number, …).
    case invalidProblem(String)
    /// These budgets cannot be met even with every group at its cheapest option.
    case infeasible([Shortfall])
    /// Each budget can be met alone, but the solver proved no choice meets them all at once.
    case jointlyInfeasible([Resource])
    /// A heuristic method found no choice meeting every budget, or the mixed-integer solve found
    /// none before its time limit; one may still exist.
    case noFeasibleChoiceFound(SolverMethod, [Resource])
    /// The method cannot take this problem (e.g. dynamic programming with several budgets).
    case unsupported(SolverMethod, String)
    /// The method's choices kept missing a budget by floating-point rounding.
    case budgetMissedByRounding(SolverMethod)
    /// GLPK failed; the message names the call and its return code.
    case solverFailed(String)

    public var description: String {
        switch self {
        case .invalidProblem(let message):
            return "invalid allocation problem: \(message)"
        case .infeasible(let shortfalls):
            let parts = shortfalls.map { s in
                "\(s.resource.budgetName) ≤ \(s.resource.format(s.limit)) cannot be met: the smallest total "
                    + "reachable (every group at its cheapest option) is \(s.resource.format(s.smallestReachable))"
            }
            return "infeasible budget: " + parts.joined(separator: "; ")
        case .jointlyInfeasible(let resources):
            return "infeasible budgets: each of \(Self.names(resources)) can be met alone, but no choice meets all at once"
        case .noFeasibleChoiceFound(.mixedInteger, let resources):
            return "mixedInteger found no choice meeting the budgets on \(Self.names(resources)) within its time limit; "
                + "a longer limit may find one"
        case .noFeasibleChoiceFound(let method, let resources):
            return "\(method.rawValue) found no choice meeting the budgets on \(Self.names(resources)); "
                + "the mixedInteger method can decide whether one exists"
        case .unsupported(let method, let reason):
            return "\(method.rawValue) cannot solve this problem: \(reason)"
        case .budgetMissedByRounding(let method):
            return "\(method.rawValue) kept returning choices over a budget by rounding; the budget is too close to a reachable total"
        case .solverFailed(let message):
            return "GLPK failed: \(message)"
        }
    }

    private static func names(_ resources: [Resource]) -> String {
        resources.map(\.budgetName).joined(separator: ", ")
    }
}
