import LopperAllocation
import LopperModel

enum CostKind: CaseIterable { case integer, fractional }

/// A random instance: option 0 of each group is "untouched" (damage 0, usually the most costly);
/// limits lie between the smallest and largest reachable totals, so most instances bind.
func randomProblem(_ rng: inout SeededGenerator, groups: ClosedRange<Int> = 2...6, options: ClosedRange<Int> = 2...5,
                   budgets: ClosedRange<Int> = 1...3, kind: CostKind) -> Problem {
    let resources = Array([Resource.latency, .macs, .paramBytes].shuffled(using: &rng).prefix(Int.random(in: budgets, using: &rng)))
    func cost() -> Double {
        kind == .integer ? Double(Int.random(in: 0...20, using: &rng)) : (Double.random(in: 0..<10, using: &rng) * 1000).rounded() / 1000 + 0.0001
    }
    let menus = (0..<Int.random(in: groups, using: &rng)).map { g in
        Menu(group: 100 + g, options: (0..<Int.random(in: options, using: &rng)).map { o in
            let damage = o == 0 ? 0 : (Double.random(in: 0..<5, using: &rng) * 1000).rounded() / 1000
            return Option(damage: damage, cost: Dictionary(uniqueKeysWithValues: resources.map { ($0, cost() + (o == 0 ? 10 : 0)) }), tag: o)
        })
    }
    let fixed = Dictionary(uniqueKeysWithValues: resources.map { ($0, kind == .integer ? 3.0 : 2.5) })
    var limits: ResourceAmounts = [:]
    for resource in resources {
        let smallest = menus.reduce(fixed[resource]!) { $0 + $1.options.map { $0.cost[resource]! }.min()! }
        let largest = menus.reduce(fixed[resource]!) { $0 + $1.options.map { $0.cost[resource]! }.max()! }
        let limit = smallest + Double.random(in: 0.1...0.9, using: &rng) * (largest - smallest)
        limits[resource] = kind == .integer ? limit.rounded(.down) : limit
    }
    return Problem(menus: menus, fixedCost: fixed, limits: limits)
}

/// The reference: every combination, totals summed as fixed cost then groups in order.
struct BruteForce {
    var damage: Double?  // nil when no combination meets every limit
    var choice: [Int]?

    init(_ problem: Problem) {
        var choice = [Int](repeating: 0, count: problem.menus.count)
        func visit(_ g: Int) {
            if g == problem.menus.count {
                guard BruteForce.meets(problem, choice) else { return }
                let total = BruteForce.damage(problem, choice)
                if damage == nil || total < damage! { damage = total; self.choice = choice }
                return
            }
            for o in problem.menus[g].options.indices { choice[g] = o; visit(g + 1) }
        }
        visit(0)
    }

    static func damage(_ problem: Problem, _ choice: [Int]) -> Double {
        var total = 0.0
        for (g, o) in choice.enumerated() { total += problem.menus[g].options[o].damage }
        return total
    }

    static func total(_ problem: Problem, _ choice: [Int], _ resource: Resource) -> Double {
        var total = problem.fixedCost[resource] ?? 0
        for (g, o) in choice.enumerated() { total += problem.menus[g].options[o].cost[resource] ?? 0 }
        return total
    }

    static func meets(_ problem: Problem, _ choice: [Int]) -> Bool {
        problem.limits.allSatisfy { resource, limit in total(problem, choice, resource) <= limit }
    }
}

func close(_ a: Double, _ b: Double) -> Bool { (a - b).magnitude <= 1e-9 * max(1, a.magnitude, b.magnitude) }
