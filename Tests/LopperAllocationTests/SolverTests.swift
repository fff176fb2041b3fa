import Foundation
import LopperAllocation
import Testing
import LopperModel

@Suite struct SolverTests {
    /// Checks a solution's bookkeeping against the brute-force reference's own sums.
    func expectConsistent(_ solution: Solution, _ problem: Problem, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(solution.choice.count == problem.menus.count, sourceLocation: sourceLocation)
        #expect(BruteForce.meets(problem, solution.choice), "a budget is exceeded", sourceLocation: sourceLocation)
        #expect(solution.damage == BruteForce.damage(problem, solution.choice), sourceLocation: sourceLocation)
        for resource in problem.limits.keys {
            #expect(solution.cost[resource] == BruteForce.total(problem, solution.choice, resource), sourceLocation: sourceLocation)
        }
        if let bound = solution.lowerBound { #expect(bound <= solution.damage, sourceLocation: sourceLocation) }
    }

    @Test(arguments: CostKind.allCases)
    func exactMethodsMatchBruteForce(kind: CostKind) throws {
        var rng = SeededGenerator(seed: kind == .integer ? 1 : 2)
        var solved = 0
        for _ in 0..<150 {
            let problem = randomProblem(&rng, kind: kind)
            let reference = BruteForce(problem)
            guard let optimum = reference.damage else { continue }
            solved += 1
            for method in [AllocationMethod.mixedInteger, .automatic] {
                let solution = try Allocator.solve(problem, method: method)
                expectConsistent(solution, problem)
                #expect(close(solution.damage, optimum), "\(method): \(solution.damage) vs brute force \(optimum)")
                #expect(solution.provenOptimal)
            }
        }
        #expect(solved > 100)
    }

    @Test func dynamicProgrammingIsExactOnIntegerCosts() throws {
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<150 {
            let problem = randomProblem(&rng, budgets: 1...1, kind: .integer)
            let optimum = try #require(BruteForce(problem).damage)
            let solution = try Allocator.solve(problem, method: .dynamicProgramming)
            expectConsistent(solution, problem)
            #expect(solution.method == .dynamicProgramming || solution.method == .unconstrained)
            #expect(close(solution.damage, optimum))
            #expect(solution.provenOptimal)
        }
    }

    /// With fractional costs the DP is optimal for costs rounded up to buckets: always feasible,
    /// never below the optimum, and its bound (costs rounded down) never above it. Few buckets
    /// make the rounding matter.
    @Test(arguments: [8, 20_000])
    func dynamicProgrammingBracketsTheOptimumOnFractionalCosts(buckets: Int) throws {
        var rng = SeededGenerator(seed: 4)
        var exact = 0
        for _ in 0..<150 {
            let problem = randomProblem(&rng, budgets: 1...1, kind: .fractional)
            let optimum = try #require(BruteForce(problem).damage)
            let solution = try Allocator.solve(problem, method: .dynamicProgramming, settings: AllocatorSettings(buckets: buckets))
            expectConsistent(solution, problem)
            #expect(solution.damage >= optimum - 1e-9)
            let bound = try #require(solution.lowerBound)
            #expect(bound <= optimum + 1e-9)
            if solution.provenOptimal { #expect(close(solution.damage, optimum)) }
            if close(solution.damage, optimum) { exact += 1 }
        }
        if buckets == 20_000 { #expect(exact == 150) }
    }

    @Test(arguments: CostKind.allCases)
    func lagrangianIsFeasibleAndWithinItsBound(kind: CostKind) throws {
        var rng = SeededGenerator(seed: kind == .integer ? 5 : 6)
        var found = 0, optimal = 0
        for _ in 0..<150 {
            let problem = randomProblem(&rng, kind: kind)
            guard let optimum = BruteForce(problem).damage else { continue }
            let solution: Solution
            do {
                solution = try Allocator.solve(problem, method: .lagrangian)
            } catch AllocationError.noFeasibleChoiceFound(.lagrangian, _) {
                continue
            }
            found += 1
            expectConsistent(solution, problem)
            #expect(solution.damage >= optimum - 1e-9)
            let bound = try #require(solution.lowerBound)
            #expect(bound <= optimum + 1e-9, "dual bound \(bound) above the optimum \(optimum)")
            if solution.provenOptimal { #expect(close(solution.damage, optimum)) }
            if close(solution.damage, optimum) { optimal += 1 }
        }
        #expect(found >= 140)
        #expect(optimal >= 135)
    }

    @Test func infeasibleBudgetsAreNamedWithTheSmallestReachableTotal() throws {
        let problem = Problem(
            menus: [
                Menu(group: 1, options: [Option(damage: 0, cost: [.latency: 0.004, .paramBytes: 1e6]),
                                         Option(damage: 1, cost: [.latency: 0.003, .paramBytes: 5e5])]),
                Menu(group: 2, options: [Option(damage: 0, cost: [.latency: 0.002, .paramBytes: 1e6])]),
            ],
            fixedCost: [.latency: 0.001],
            limits: [.latency: 0.005, .paramBytes: 4e6]
        )
        #expect(BruteForce(problem).damage == nil)
        for method in [AllocationMethod.automatic, .dynamicProgramming, .mixedInteger, .lagrangian] {
            let error = #expect(throws: AllocationError.self) { try Allocator.solve(problem, method: method) }
            #expect(error == .infeasible([Shortfall(resource: .latency, limit: 0.005, smallestReachable: 0.001 + 0.003 + 0.002)]))
            #expect(error?.description == "infeasible budget: latency ≤ 5 ms cannot be met: the smallest total reachable "
                + "(every group at its cheapest option) is 6 ms")
        }
    }

    @Test func budgetsMetAloneButNotTogetherAreReported() throws {
        let problem = Problem(
            menus: [Menu(group: 7, options: [Option(damage: 0, cost: [.latency: 1, .macs: 10]),
                                             Option(damage: 1, cost: [.latency: 10, .macs: 1])])],
            limits: [.latency: 5, .macs: 5]
        )
        #expect(BruteForce(problem).damage == nil)
        let mip = #expect(throws: AllocationError.self) { try Allocator.solve(problem, method: .mixedInteger) }
        #expect(mip == .jointlyInfeasible([.latency, .macs]))
        #expect(mip?.description == "infeasible budgets: each of latency, macs can be met alone, but no choice meets all at once")
        let automatic = #expect(throws: AllocationError.self) { try Allocator.solve(problem) }
        #expect(automatic == .jointlyInfeasible([.latency, .macs]))
        let lagrangian = #expect(throws: AllocationError.self) { try Allocator.solve(problem, method: .lagrangian) }
        #expect(lagrangian == .noFeasibleChoiceFound(.lagrangian, [.latency, .macs]))
    }

    /// Random instances the brute force finds infeasible give one of the two infeasibility errors,
    /// the right one for the instance.
    @Test func randomInfeasibleInstancesGiveTheNamedError() throws {
        var rng = SeededGenerator(seed: 7)
        var checked = 0
        for _ in 0..<300 {
            var problem = randomProblem(&rng, budgets: 2...3, kind: .integer)
            for resource in problem.limits.keys { problem.limits[resource]! -= Double(Int.random(in: 0...12, using: &rng)) }
            guard BruteForce(problem).damage == nil else { continue }
            checked += 1
            let shortfalls = problem.limits.keys.sorted().compactMap { resource -> Shortfall? in
                let smallest = problem.menus.reduce(problem.fixedCost[resource]!) { $0 + $1.options.map { $0.cost[resource]! }.min()! }
                return smallest > problem.limits[resource]! ? Shortfall(resource: resource, limit: problem.limits[resource]!, smallestReachable: smallest) : nil
            }
            let error = #expect(throws: AllocationError.self) { try Allocator.solve(problem) }
            #expect(error == (shortfalls.isEmpty ? .jointlyInfeasible(problem.limitedResources) : .infeasible(shortfalls)))
        }
        #expect(checked > 30)
    }

    @Test func malformedProblemsAreRefusedWithTheirPlace() throws {
        let good = Option(damage: 0, cost: [.latency: 1])
        let cases: [(Problem, String)] = [
            (Problem(menus: [Menu(group: 3, options: [])], limits: [.latency: 1]),
             "invalid allocation problem: menu 0 (group 3) has no options; it needs at least \"untouched\""),
            (Problem(menus: [Menu(group: 3, options: [good, Option(damage: .nan, cost: [:])])], limits: [.latency: 1]),
             "invalid allocation problem: group 3 option 1 damage is nan, expected a finite number"),
            (Problem(menus: [Menu(group: 3, options: [Option(damage: 0, cost: [.macs: .infinity])])], limits: [.latency: 1]),
             "invalid allocation problem: group 3 option 0 macs cost is inf, expected a finite number"),
            (Problem(menus: [Menu(group: 3, options: [good]), Menu(group: 3, options: [good])], limits: [.latency: 1]),
             "invalid allocation problem: group 3 has more than one menu"),
            (Problem(menus: [Menu(group: 3, options: [good])], limits: [.paramBytes: .nan]),
             "invalid allocation problem: params limit is nan, expected a finite number"),
        ]
        for (problem, message) in cases {
            let error = #expect(throws: AllocationError.self) { try Allocator.solve(problem) }
            #expect(error?.description == message)
        }
    }

    @Test func dynamicProgrammingRefusesSeveralBindingBudgets() throws {
        var rng = SeededGenerator(seed: 8)
        var refused = 0
        for _ in 0..<40 {
            let problem = randomProblem(&rng, budgets: 2...3, kind: .integer)
            do {
                let solution = try Allocator.solve(problem, method: .dynamicProgramming)
                // Only when at most one budget can bind.
                #expect(solution.method == .dynamicProgramming || solution.method == .unconstrained)
            } catch let error as AllocationError {
                guard case .unsupported(.dynamicProgramming, let reason) = error else { Issue.record("\(error)"); continue }
                #expect(reason.hasPrefix("it takes one limited resource, this problem has "))
                refused += 1
            }
        }
        #expect(refused > 20)
    }

    @Test func withoutBindingBudgetsEachGroupTakesItsLeastDamagingOption() throws {
        let problem = Problem(menus: [
            Menu(group: 1, options: [Option(damage: 2, cost: [.macs: 5]), Option(damage: 1, cost: [.macs: 9]), Option(damage: 1, cost: [:])]),
            Menu(group: 2, options: [Option(damage: 0, cost: [.macs: 5])]),
        ], limits: [.macs: 100])
        let solution = try Allocator.solve(problem)
        #expect(solution.choice == [1, 0])
        #expect(solution.method == .unconstrained)
        #expect(solution.provenOptimal)
        #expect(solution.cost[.macs] == 14)
    }

    /// Equal damage and cost: the lower option index wins, in every method, on every run.
    @Test func tiesGoToTheLowerOptionIndexDeterministically() throws {
        let twin = [Option(damage: 0, cost: [.latency: 4, .macs: 4], tag: 0), Option(damage: 1, cost: [.latency: 1, .macs: 1], tag: 1),
                    Option(damage: 1, cost: [.latency: 1, .macs: 1], tag: 2)]
        let single = Problem(menus: (0..<4).map { Menu(group: $0, options: twin) }, limits: [.latency: 10])
        let double = Problem(menus: single.menus, limits: [.latency: 10, .macs: 10])
        for (problem, method) in [(single, AllocationMethod.dynamicProgramming), (double, .mixedInteger), (double, .lagrangian)] {
            let first = try Allocator.solve(problem, method: method)
            #expect(first.damage == 2)
            #expect(first.choice.allSatisfy { $0 != 2 }, "\(method) took the later twin: \(first.choice)")
            #expect(try Allocator.solve(problem, method: method) == first)
        }
        var rng = SeededGenerator(seed: 9)
        let random = randomProblem(&rng, groups: 6...6, options: 5...5, budgets: 3...3, kind: .fractional)
        for method in [AllocationMethod.automatic, .lagrangian] {
            #expect(try Allocator.solve(random, method: method) == Allocator.solve(random, method: method))
        }
    }

    /// 300 groups × 12 options, two budgets: both large-instance paths finish with a feasible
    /// choice and a bound not above it.
    @Test func aModeratelyLargeInstanceSolves() throws {
        var rng = SeededGenerator(seed: 10)
        let menus = (0..<300).map { g in
            Menu(group: g, options: (0..<12).map { level in
                let kept = 1 - Double(level) / 12
                let damage = level == 0 ? 0 : (Double(level * level) * Double.random(in: 0.5...1.5, using: &rng) * 1000).rounded() / 1000
                return Option(damage: damage, cost: [.latency: kept * Double.random(in: 1e-5...1e-4, using: &rng),
                                                     .paramBytes: (kept * Double.random(in: 1e3...1e5, using: &rng)).rounded()], tag: level)
            })
        }
        let dense = Problem(menus: menus, fixedCost: [.latency: 1e-3, .paramBytes: 1e4], limits: [:])
        let totals = dense.cost(of: [Int](repeating: 0, count: 300))
        let problem = Problem(menus: menus, fixedCost: dense.fixedCost,
                              limits: [.latency: 0.6 * totals[.latency]!, .paramBytes: 0.5 * totals[.paramBytes]!])
        let settings = AllocatorSettings(mixedIntegerTimeLimit: .seconds(20))
        let mip = try Allocator.solve(problem, method: .automatic, settings: settings)
        let lagrangian = try Allocator.solve(problem, method: .lagrangian, settings: settings)
        for solution in [mip, lagrangian] {
            expectConsistent(solution, problem)
            let bound = try #require(solution.lowerBound)
            #expect(bound <= solution.damage)
        }
        #expect(mip.method == .mixedInteger || mip.method == .lagrangian)
        #expect(lagrangian.method == .lagrangian)
        // One budget: dynamic programming over the same 300 groups, checked against the exact solve.
        let latencyOnly = Problem(menus: menus, fixedCost: dense.fixedCost, limits: [.latency: problem.limits[.latency]!])
        let dp = try Allocator.solve(latencyOnly, method: .dynamicProgramming)
        let exact = try Allocator.solve(latencyOnly, method: .mixedInteger, settings: settings)
        expectConsistent(dp, latencyOnly)
        expectConsistent(exact, latencyOnly)
        #expect(dp.lowerBound! <= exact.damage + 1e-9)
        if exact.provenOptimal { #expect(dp.damage >= exact.damage - 1e-9) }
        // Each bound holds for the other method's choice too.
        #expect(lagrangian.lowerBound! <= mip.damage + 1e-9)
        if mip.provenOptimal { #expect(mip.damage <= lagrangian.damage + 1e-9) }
    }

    /// 0.1 + 0.2 exceeds 0.3 in floating point, and 0.1 + 0.31 exceeds 0.41: keeping both groups
    /// untouched meets the budget only up to rounding, and no method may return it. GLPK's
    /// tolerance admits it in the first case (the choice is cut off and the MIP solved again); in
    /// the second, the normalised rows admit it too (0.1/s + 0.31/s ≤ 0.41/s), so the greedy
    /// passes of the Lagrangian method and of dynamic programming take it and the final check
    /// re-solves against a tightened budget.
    @Test(arguments: [(0.1, 0.2, 0.3), (0.1, 0.31, 0.41)])
    func aChoiceOverTheBudgetByRoundingIsNotReturned(first: Double, second: Double, limit: Double) throws {
        let problem = Problem(menus: [
            Menu(group: 1, options: [Option(damage: 0, cost: [.latency: first, .macs: 1]), Option(damage: 1, cost: [.macs: 1])]),
            Menu(group: 2, options: [Option(damage: 0, cost: [.latency: second, .macs: 1]), Option(damage: 2, cost: [.macs: 1])]),
        ], limits: [.latency: limit, .macs: 2])
        #expect(first + second > limit)
        #expect(BruteForce(problem).damage == 1)
        for method in [AllocationMethod.automatic, .dynamicProgramming, .mixedInteger, .lagrangian] {
            let solution = try Allocator.solve(problem, method: method)
            expectConsistent(solution, problem)
            #expect(solution.damage == 1, "\(method)")
        }
    }

    /// Problems and solutions survive JSON, with resources as object keys (`"paramBytes": 17`).
    @Test func problemsAndSolutionsRoundTripThroughJSON() throws {
        var rng = SeededGenerator(seed: 14)
        let problem = randomProblem(&rng, kind: .fractional)
        let solution = try Allocator.solve(problem)
        let encoded = try JSONEncoder().encode(problem)
        #expect(try JSONDecoder().decode(Problem.self, from: encoded) == problem)
        #expect(try JSONDecoder().decode(Solution.self, from: JSONEncoder().encode(solution)) == solution)
        let object = try #require(JSONSerialization.jsonObject(with: encoded) as? [String: Any])
        let limits = try #require(object["limits"] as? [String: Double])
        #expect(Set(limits.keys) == Set(problem.limits.keys.map(\.rawValue)))
    }

    @Test func tagsMapTheChoiceBack() throws {
        let problem = Problem(menus: [Menu(group: 5, options: [Option(damage: 0, cost: [.macs: 10], tag: 40),
                                                               Option(damage: 1, cost: [.macs: 2], tag: 41)])],
                              limits: [.macs: 5])
        #expect(try Allocator.solve(problem).tags(in: problem) == [41])
    }
}
