import LopperAllocation
import LopperModel
import LopperPruning
import LopperSensitivity

/// Depth beside width: a residual block's removal is one more option in the menu of the group
/// inside it (the block's inner channels), so the allocator never prunes the width of a block it
/// removes. A block with no group inside (or none with a menu) gets a menu of its own. A block
/// with several inner groups (a bottleneck's two) puts its removal in the first one's menu; the
/// others' width choices are dropped from any plan that removes the block (`clearingRemovedBlocks`),
/// and the plan's real cost is what the budgets are checked on.
extension Planner {
    /// The unit id of a block in the sweep (its layer jobs' group): after the channel groups.
    func unit(of block: ResidualBlock) -> Int { groups.count + block.id }

    /// The block's removals the sweep measured, with their damage.
    func blockOptions(_ block: ResidualBlock) -> [GroupChoice] {
        table.curves.filter { $0.group == unit(of: block) && $0.granularity == .layer }.compactMap { curve in
            guard let point = curve.points.first(where: { $0.level == 1 }) else { return nil }
            return GroupChoice(group: unit(of: block), name: "block " + block.name, granularity: .layer,
                               criterion: curve.criterion, level: 1, size: 1, kept: 0, predictedDamage: point.damage, interpolated: false)
        }
    }

    /// Prunable groups whose every member lies in the block's branch.
    func innerGroups(of block: ResidualBlock) -> [Int] {
        let inside = Set(block.nodes)
        return groups.filter { group in group.isPrunable && group.members.allSatisfy { inside.contains($0.node) } }.map(\.id)
    }

    func addBlockOptions(to menus: inout Menus, limits: ResourceAmounts) throws {
        guard constraints.removeBlocks else { return }
        for block in blocks where block.isRemovable && !constraints.skipGroups.contains(unit(of: block)) {
            let removals = blockOptions(block)
            guard !removals.isEmpty else { continue }
            // Inner groups with a menu: one whose every width option costs the same (an
            // overhead-bound device) has none, and its block gets a menu of its own.
            let inner = innerGroups(of: block).filter { menus.groups.contains($0) }
            if inner.isEmpty {
                let untouched = GroupChoice(group: unit(of: block), name: "block " + block.name, granularity: nil, criterion: nil,
                                            level: 0, size: 1, kept: 1, predictedDamage: 0, interpolated: false)
                menus.groups.append(unit(of: block))
                menus.choices.append([untouched] + removals)
                menus.costs.append(try costs(of: [untouched] + removals, limits: limits))
            } else if let m = menus.groups.firstIndex(of: inner[0]) {
                menus.choices[m] += removals
                menus.costs[m] += try costs(of: removals, limits: limits, untouchedFirst: false)
            }
        }
    }

    /// The choices with every width choice inside a removed block made untouched: a removed
    /// block's groups no longer run, so pruning them neither saves nor damages anything.
    func clearingRemovedBlocks(_ choices: [GroupChoice]) throws -> [GroupChoice] {
        let removed = try choices.filter { $0.granularity == .layer }.map { blocks[try blockChoice($0).block] }
        let inside = Set(removed.flatMap(innerGroups(of:)))
        guard !inside.isEmpty else { return choices }
        return choices.map { choice in
            choice.granularity != .layer && inside.contains(choice.group) ? GroupChoice.untouched(groups[choice.group]) : choice
        }
    }

    /// Each choice's cost change from the dense model, per limited resource.
    func costs(of choices: [GroupChoice], limits: ResourceAmounts, untouchedFirst: Bool = true) throws -> [ResourceAmounts] {
        let denseAmounts = Self.amounts(dense)
        return try choices.enumerated().map { index, choice in
            let amounts = Self.amounts(untouchedFirst && index == 0 ? dense : cost.totals(try plan([choice], withIndices: false)))
            return Dictionary(uniqueKeysWithValues: limits.keys.map { ($0, (amounts[$0] ?? 0) - (denseAmounts[$0] ?? 0)) })
        }
    }

    func blockChoice(_ choice: GroupChoice) throws -> PruningPlan.BlockChoice {
        let id = choice.group - groups.count
        guard blocks.indices.contains(id), let removal = BlockRemoval(rawValue: choice.criterion ?? "") else {
            throw ModelError("choice '\(choice.name)' names no removable block")
        }
        return PruningPlan.BlockChoice(block: blocks[id], removal: removal)
    }
}
