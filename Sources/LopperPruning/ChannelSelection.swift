import LopperModel

/// How many channels to keep in each group and which ones.
public struct ChannelSelection: Sendable {
    /// Fraction of each group's channels to remove, in [0, 1).
    public var sparsity: Double
    /// Kept counts are rounded up to a multiple of this (hardware channel alignment).
    public var roundTo: Int
    /// Never keep fewer channels than this in a group.
    public var minimumKept: Int

    public init(sparsity: Double, roundTo: Int = 1, minimumKept: Int = 1) throws {
        guard sparsity >= 0, sparsity < 1 else { throw ModelError("sparsity \(sparsity) must be in [0, 1)") }
        guard roundTo >= 1 else { throw ModelError("round-to \(roundTo) must be at least 1") }
        guard minimumKept >= 1 else { throw ModelError("the minimum kept channel count \(minimumKept) must be at least 1") }
        self.sparsity = sparsity
        self.roundTo = roundTo
        self.minimumKept = minimumKept
    }

    /// Channels kept in a group of `size`.
    public func keptCount(size: Int) -> Int {
        let wanted = Int((Double(size) * (1 - sparsity)).rounded())
        let aligned = (wanted + roundTo - 1) / roundTo * roundTo
        return min(size, max(aligned, minimumKept))
    }

    /// The channels to remove from each group: the lowest scores, ties broken by channel index
    /// so the choice is the same on every machine.
    public func channelsToRemove(_ groups: [PruneGroup], in model: Model, by importance: Importance) throws -> [Int: [Int]] {
        var removing: [Int: [Int]] = [:]
        for group in groups where group.isPrunable {
            let removeCount = group.size - keptCount(size: group.size)
            guard removeCount > 0 else { continue }
            let scores = try importance.scores(for: group, in: model)
            let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] < scores[$1] : $0 < $1 }
            removing[group.id] = order.prefix(removeCount).sorted()
        }
        return removing
    }
}
