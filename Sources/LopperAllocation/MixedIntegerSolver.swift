import CGLPK
import Synchronization

/// The multiple-choice knapsack as a 0-1 program, solved by GLPK's branch and bound:
/// a binary `x[g,o]` per option, `Σ_o x[g,o] = 1` per group, `Σ weight·x ≤ capacity` per active
/// budget (normalised rows), minimising `Σ damage·x`.
///
/// The LP relaxation is solved first by the simplex method; branch and bound starts from its
/// basis with GLPK's MIP presolver off. (GLPK 5.0's MIP presolver aborts the process with
/// "glp_add_cols: ncs = 0" when it fixes every column of a problem that keeps rows.)
///
/// GLPK keeps per-thread state and aborts the process on a call it considers invalid, so every
/// solve holds one process-wide lock and only well-formed calls are made (the problem was
/// validated: finite numbers, at least one option per group).
enum MixedIntegerSolver {
    private static let lock = Mutex(())

    static func solve(_ prepared: PreparedProblem, timeLimit: Duration) throws
        -> (choice: [Int], proven: Bool, lowerBound: Double?) {
        try lock.withLock { _ in try solveLocked(prepared, timeLimit: timeLimit) }
    }

    private static func solveLocked(_ prepared: PreparedProblem, timeLimit: Duration) throws
        -> (choice: [Int], proven: Bool, lowerBound: Double?) {
        guard prepared.optionCount + prepared.groupCount + maximumRoundingCuts < Int(Int32.max) else {
            throw AllocationError.unsupported(.mixedInteger, "\(prepared.optionCount) options exceed GLPK's 32-bit indices")
        }
        glp_term_out(GLP_OFF)
        guard let lp = glp_create_prob() else { throw AllocationError.solverFailed("glp_create_prob returned nothing") }
        defer { glp_delete_prob(lp) }
        glp_set_obj_dir(lp, GLP_MIN)

        let groups = prepared.groupCount, budgets = prepared.active.count, options = prepared.optionCount
        if options > 0 { glp_add_cols(lp, Int32(options)) }
        for i in 0..<options {
            glp_set_col_kind(lp, Int32(i + 1), GLP_BV)
            glp_set_obj_coef(lp, Int32(i + 1), prepared.damage[i])
        }
        glp_add_rows(lp, Int32(groups + budgets))
        // The constraint matrix in GLPK's 1-based triplets (index 0 unused).
        var rows: [Int32] = [0], columns: [Int32] = [0], values: [Double] = [0]
        for g in 0..<groups {
            glp_set_row_bnds(lp, Int32(g + 1), GLP_FX, 1, 1)
            for i in prepared.options(of: g) {
                rows.append(Int32(g + 1)); columns.append(Int32(i + 1)); values.append(1)
            }
        }
        for k in 0..<budgets {
            let row = Int32(groups + k + 1)
            glp_set_row_bnds(lp, row, GLP_UP, 0, prepared.capacity[k])
            for i in 0..<options where prepared.normalizedWeight[i * budgets + k] != 0 {
                rows.append(row); columns.append(Int32(i + 1)); values.append(prepared.normalizedWeight[i * budgets + k])
            }
        }
        glp_load_matrix(lp, Int32(values.count - 1), rows, columns, values)

        // GLPK's tolerances may accept a choice that misses a budget by rounding; such a choice
        // is cut off (`Σ x[g, chosen] ≤ groups − 1` removes exactly it) and the search repeated.
        let deadline = ContinuousClock.now + timeLimit
        for _ in 0...maximumRoundingCuts {
            let result = try branchAndBound(lp, prepared, timeLeft: deadline - .now)
            if prepared.problem.meetsLimits(result.choice) { return result }
            let row = glp_add_rows(lp, 1)
            glp_set_row_bnds(lp, row, GLP_UP, 0, Double(groups - 1))
            let columns: [Int32] = [0] + (0..<groups).map { Int32(prepared.optionStart[$0] + result.choice[$0] + 1) }
            let ones = [Double](repeating: 1, count: groups + 1)
            glp_set_mat_row(lp, row, Int32(groups), columns, ones)
        }
        throw AllocationError.budgetMissedByRounding(.mixedInteger)
    }

    /// Choices cut off for missing a budget by rounding before the solve gives up.
    static let maximumRoundingCuts = 8

    /// The LP relaxation by the simplex method, then branch and bound from its basis.
    private static func branchAndBound(_ lp: OpaquePointer, _ prepared: PreparedProblem, timeLeft: Duration) throws
        -> (choice: [Int], proven: Bool, lowerBound: Double?) {
        var simplex = glp_smcp()
        glp_init_smcp(&simplex)
        simplex.msg_lev = GLP_MSG_OFF
        let simplexCode = glp_simplex(lp, &simplex)
        guard simplexCode == 0 else {
            throw AllocationError.solverFailed("glp_simplex returned \(simplexCode) (\(meaning(of: simplexCode)))")
        }
        switch glp_get_status(lp) {
        case GLP_OPT: break
        case GLP_NOFEAS: throw AllocationError.jointlyInfeasible(prepared.active)
        case let status: throw AllocationError.solverFailed("the LP relaxation ended with status \(status)")
        }
        let relaxationBound = glp_get_obj_val(lp)

        var parameters = glp_iocp()
        glp_init_iocp(&parameters)
        parameters.msg_lev = GLP_MSG_OFF
        parameters.presolve = GLP_OFF
        let milliseconds = timeLeft.components.seconds * 1000 + timeLeft.components.attoseconds / 1_000_000_000_000_000
        parameters.tm_lim = Int32(clamping: max(1, milliseconds))
        let bound = UnsafeMutablePointer<Double>.allocate(capacity: 1)
        defer { bound.deallocate() }
        bound.pointee = relaxationBound
        parameters.cb_info = UnsafeMutableRawPointer(bound)
        parameters.cb_func = { tree, info in
            // The best bound among the open subproblems, recorded whenever GLPK picks the next one;
            // it only rises as the search goes on.
            guard let tree, let info, glp_ios_reason(tree) == GLP_ISELECT else { return }
            let best = glp_ios_best_node(tree)
            if best != 0 { info.assumingMemoryBound(to: Double.self).pointee = glp_ios_node_bound(tree, best) }
        }

        let code = glp_intopt(lp, &parameters)
        switch code {
        case 0, GLP_ETMLIM: break
        default: throw AllocationError.solverFailed("glp_intopt returned \(code) (\(meaning(of: code)))")
        }
        let status = glp_mip_status(lp)
        switch status {
        case GLP_OPT:
            return (try choice(lp, prepared), true, nil)
        case GLP_FEAS:
            // Stopped early: the incumbent, and the tree's bound (at least the LP relaxation's).
            return (try choice(lp, prepared), false, min(bound.pointee, glp_mip_obj_val(lp)))
        case GLP_NOFEAS:
            throw AllocationError.jointlyInfeasible(prepared.active)
        default:
            if code == GLP_ETMLIM { throw AllocationError.noFeasibleChoiceFound(.mixedInteger, prepared.active) }
            throw AllocationError.solverFailed("glp_intopt returned 0 with MIP status \(status)")
        }
    }

    /// The option each group's binaries select; exactly one per group or GLPK's answer is refused.
    private static func choice(_ lp: OpaquePointer, _ prepared: PreparedProblem) throws -> [Int] {
        try (0..<prepared.groupCount).map { g in
            let chosen = prepared.options(of: g).filter { glp_mip_col_val(lp, Int32($0 + 1)) > 0.5 }
            guard chosen.count == 1 else {
                throw AllocationError.solverFailed("the MIP solution selects \(chosen.count) options of group \(prepared.problem.menus[g].group)")
            }
            return chosen[0] - prepared.optionStart[g]
        }
    }

    private static func meaning(of code: Int32) -> String {
        switch code {
        case GLP_EBOUND: return "invalid bounds"
        case GLP_EROOT: return "no optimal basis for the root LP"
        case GLP_EBADB: return "invalid initial basis"
        case GLP_ESING: return "singular basis matrix"
        case GLP_ECOND: return "ill-conditioned basis matrix"
        case GLP_EITLIM: return "iteration limit reached"
        case GLP_EFAIL: return "the search failed"
        case GLP_EMIPGAP: return "relative gap reached"
        case GLP_ESTOP: return "stopped by the application"
        default: return "see glpk.h"
        }
    }
}
