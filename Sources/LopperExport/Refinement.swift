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
    public func refine(_ first: Planner.Allocation, measured firstDamage: Double, planner: Planner, menus firstMenus: Planner.Menus,
                       limits: ResourceAmounts, tolerance: Double, rounds: Int)
        throws -> (allocation: Planner.Allocation, measured: Double, rounds: [RefinementRound]) {
        var best = (allocation: first, measured: firstDamage)
        var menus = firstMenus
        var history: [RefinementRound] = []
        var measured: [[Int]: Double] = [first.picks: firstDamage]
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
                let key = "\(choice.granularity)/\(choice.criterion ?? "")"
                if let seen = lightest[key], choices[seen].level <= choice.level { continue }
                lightest[key] = index
            }
            return lightest.values.sorted()
        }
        let me = choices[pick]
        let family = choices.indices.filter { index in
            index != 0 && choices[index].granularity == me.granularity && choices[index].criterion == me.criterion
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
        where choice.granularity != me.granularity || choice.criterion != me.criterion {
            let key = "\(choice.granularity)/\(choice.criterion ?? "")"
            if let seen = closest[key], abs(choices[seen].kept - me.kept) <= abs(choice.kept - me.kept) { continue }
            closest[key] = index
        }
        result.formUnion(closest.values)
        return result.sorted()
    }
}
