import Foundation
import LopperAllocation
import LopperPruning
import LopperSensitivity

/// One round of the correction loop: what the plan was predicted and measured to damage.
public struct RefinementRound: Codable, Sendable, Equatable {
    public var round: Int
    public var predictedDamage: Double
    public var measuredDamage: Double
    /// Neighbouring plans measured in this round (each group one option lighter and heavier).
    public var neighboursMeasured: Int
    /// Whether this round's plan replaced the best so far.
    public var kept: Bool
}

extension Exporter {
    /// Per-group damages add only approximately. This loop measures the chosen plan and its
    /// neighbours (each group one option lighter and one heavier, the others as chosen), takes
    /// what was measured in context as the groups' damages (the plan's measured damage shared in
    /// proportion to the predictions; a neighbour's as the plan's plus its measured difference;
    /// other options scaled like the chosen one; a plan measured worse than predicted has the
    /// excess added to the options it changed), and solves again, until the plan the solver
    /// proposes measures within `tolerance` of its prediction, the solver proposes no plan it has
    /// not measured and no better one, or `rounds` run out; the plan with the lowest measured damage is kept. No plan is measured twice.
    ///
    /// `seeds` (the baselines' plans) are measured too, where the menus offer their kept counts
    /// within the limits: the search starts from the best measured plan, so that it ends at least
    /// as good as each of them.
    public func refine(_ first: Planner.Allocation, measured firstDamage: Double, planner: Planner, menus firstMenus: Planner.Menus,
                       limits: ResourceAmounts, tolerance: Double, rounds: Int, seeds: [PruningPlan] = [])
        throws -> (allocation: Planner.Allocation, measured: Double, rounds: [RefinementRound]) {
        var best = (allocation: first, measured: firstDamage)
        var menus = firstMenus
        var history: [RefinementRound] = []
        var measured: [[Int]: Double] = [first.picks: firstDamage]
        for seed in seeds {
            guard let allocation = try Self.allocation(of: seed, like: first, planner: planner, menus: &menus, limits: limits),
                  measured[allocation.picks] == nil else { continue }
            let damage = try measuredDamage(allocation.plan)
            measured[allocation.picks] = damage
            if damage < best.measured { best = (allocation, damage) }
        }
        func measure(_ picks: [Int]) throws -> Double {
            if let known = measured[picks] { return known }
            let damage = try measuredDamage(try planner.plan(zip(menus.choices, picks).map { $0[$1] }, withIndices: true))
            measured[picks] = damage
            return damage
        }
        for round in 1...max(1, rounds) {
            // Done when the last plan the solver proposed measured what it predicted.
            let last = history.last.map { ($0.predictedDamage, $0.measuredDamage) } ?? (first.predictedDamage, firstDamage)
            if abs(last.0 - last.1) <= tolerance { break }
            let current = best.allocation
            let predicted = zip(menus.choices, current.picks).reduce(0) { $0 + $1.0[$1.1].predictedDamage }
            let scale = predicted > 0 ? best.measured / predicted : 1
            var revised = menus
            let known = measured.count
            for (m, pick) in current.picks.enumerated() {
                for o in revised.choices[m].indices { revised.choices[m][o].predictedDamage = menus.choices[m][o].predictedDamage * scale }
                let share = revised.choices[m][pick].predictedDamage
                for neighbour in Self.neighbours(of: pick, in: menus.choices[m]) {
                    var picks = current.picks
                    picks[m] = neighbour
                    revised.choices[m][neighbour].predictedDamage = max(0, share + (try measure(picks)) - best.measured)
                }
            }
            // Plans measured worse than the revised menus predict: the excess goes to the options
            // they changed, so the solver does not propose them again on the same hopes.
            for (picks, damage) in measured {
                let changed = picks.indices.filter { picks[$0] != current.picks[$0] }
                let hoped = zip(revised.choices, picks).reduce(0) { $0 + $1.0[$1.1].predictedDamage }
                guard !changed.isEmpty, hoped < damage else { continue }
                for m in changed { revised.choices[m][picks[m]].predictedDamage += (damage - hoped) / Double(changed.count) }
            }
            menus = revised
            let next = try planner.allocate(revised, limits: limits)
            let proposedBefore = measured[next.picks] != nil
            let damage = try measure(next.picks)
            let improved = damage < best.measured
            history.append(RefinementRound(round: round, predictedDamage: next.predictedDamage, measuredDamage: damage,
                                           neighboursMeasured: measured.count - known - (proposedBefore ? 0 : 1), kept: improved))
            if improved { best = (next, damage) }
            if proposedBefore && !improved { break }
        }
        return (best.allocation, best.measured, history)
    }

    /// The menus' picks with a channel plan's kept counts (the l2 option, which ranks as the
    /// baselines do; a count the menu lacks is added to it, its damage the nearest option's),
    /// priced; nil when the plan misses a limit or a group has no l2 curve.
    static func allocation(of plan: PruningPlan, like first: Planner.Allocation, planner: Planner, menus: inout Planner.Menus,
                           limits: ResourceAmounts) throws -> Planner.Allocation? {
        var picks: [Int] = []
        for (m, group) in menus.groups.enumerated() {
            guard let kept = plan.groups.first(where: { $0.group == group })?.kept else { picks.append(0); continue }
            let l2 = menus.choices[m].indices.filter {
                menus.choices[m][$0].granularity == .channel && menus.choices[m][$0].criterion == "l2"
            }
            if let pick = l2.first(where: { menus.choices[m][$0].kept == kept }) {
                picks.append(pick)
                continue
            }
            guard let nearest = l2.min(by: { abs(menus.choices[m][$0].kept - kept) < abs(menus.choices[m][$1].kept - kept) }) else { return nil }
            var option = menus.choices[m][nearest]
            option.kept = kept
            option.level = 1 - Double(kept) / Double(option.size)
            option.interpolated = true
            let before = try planner.costs(of: [option], limits: limits, untouchedFirst: false)
            menus.choices[m].append(option)
            menus.costs[m].append(before[0])
            picks.append(menus.choices[m].count - 1)
        }
        let chosen = zip(menus.choices, picks).map { $0[$1] }
        let priced = try planner.plan(chosen, withIndices: true)
        let cost = Planner.amounts(planner.cost.totals(priced))
        guard limits.allSatisfy({ (cost[$0.key] ?? 0) <= $0.value * (1 + 1e-9) }) else { return nil }
        var allocation = first
        allocation.choices = chosen + first.choices.filter { choice in !menus.groups.contains(choice.group) }
        allocation.choices.sort { $0.group < $1.group }
        allocation.plan = priced
        allocation.picks = picks
        allocation.cost = cost
        allocation.predictedDamage = chosen.reduce(0) { $0 + $1.predictedDamage }
        return allocation
    }

    /// The measured damage of a plan, assembled as export assembles it.
    func measuredDamage(_ plan: PruningPlan) throws -> Double {
        SensitivityTable.damage(score: try assemble(plan).score, dense: scorer.dense, metric: table.metric)
    }

    /// The options near `pick`: in its option family (granularity and criterion) by level, with
    /// untouched as the lightest of every family, and the closest kept count of other families.
    static func neighbours(of pick: Int, in choices: [GroupChoice]) -> [Int] {
        if pick == 0 {
            // From untouched: the lightest option of each family.
            var lightest: [String: Int] = [:]
            for (index, choice) in choices.enumerated().dropFirst() {
                let key = choice.family
                if let seen = lightest[key], choices[seen].level <= choice.level { continue }
                lightest[key] = index
            }
            return lightest.values.sorted()
        }
        let me = choices[pick]
        let family = choices.indices.filter { index in
            index != 0 && choices[index].family == me.family
        }.sorted { choices[$0].level < choices[$1].level }
        guard let position = family.firstIndex(of: pick) else { return [] }
        // One option and a sixth of the family away on each side (fine levels differ by little),
        // and the same kept count (or the closest) in every other family.
        var result = Set<Int>()
        for step in Set([1, max(1, family.count / 6)]) {
            result.insert(position - step >= 0 ? family[position - step] : 0)
            if position + step < family.count { result.insert(family[position + step]) }
        }
        var closest: [String: Int] = [:]
        for (index, choice) in choices.enumerated().dropFirst()
        where choice.family != me.family {
            let key = choice.family
            if let seen = closest[key], abs(choices[seen].kept - me.kept) <= abs(choice.kept - me.kept) { continue }
            closest[key] = index
        }
        result.formUnion(closest.values)
        return result.sorted()
    }
}
