import Foundation
import LopperModel

/// Scores each channel of a group: the higher, the more the channel matters. Pruning removes the
/// lowest-scoring channels.
public protocol Importance: Sendable {
    /// One score per channel of `group` (in the group's numbering).
    func scores(for group: PruneGroup, in model: Model) throws -> [Double]
}

/// Weight magnitude summed over every member weight: the L1 or L2 norm of each channel's filters
/// in the producing layers plus its input slices in the consuming layers.
public struct MagnitudeImportance: Importance {
    /// 1 for the L1 norm, 2 for the L2 norm.
    public var p: Int

    public init(p: Int) { self.p = p }

    public func scores(for group: PruneGroup, in model: Model) throws -> [Double] {
        var total = [Double](repeating: 0, count: group.size)
        for member in group.members where member.role == .output || member.role == .input {
            guard let data = try model.graph.constant(member.tensor) else { continue }
            let norms = axisSums(data, axis: member.axis, power: p)
            for channel in 0..<member.length {
                let first = member.tensorOffset + channel * member.block
                let sum = norms[first..<(first + member.block)].reduce(0, +)
                total[member.groupOffset + channel] += p == 2 ? sum.squareRoot() : sum
            }
        }
        return total
    }
}

/// Network slimming: the magnitude of the BatchNormalization scale (γ) of each channel.
public struct BatchNormScaleImportance: Importance {
    public init() {}

    public func scores(for group: PruneGroup, in model: Model) throws -> [Double] {
        var total = [Double](repeating: 0, count: group.size)
        var found = false
        for member in group.members where member.role == .parameter {
            guard let node = model.graph.nodes.first(where: { $0.displayName == member.node }),
                  node.opType == "BatchNormalization", node.input(1) == member.tensor,
                  let scale = try model.graph.constant(member.tensor) else { continue }
            found = true
            let values = scale.doubles()
            for channel in 0..<member.length { total[member.groupOffset + channel] += abs(values[member.tensorOffset + channel]) }
        }
        guard found else { throw ModelError("group '\(group.name)' has no BatchNormalization, so the bn-scale criterion does not apply") }
        return total
    }
}

/// Uniformly random scores from a fixed seed: the baseline every criterion must beat.
public struct RandomImportance: Importance {
    public var seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    public func scores(for group: PruneGroup, in model: Model) throws -> [Double] {
        var state = seed ^ (UInt64(group.id) &* 0x9E37_79B9_7F4A_7C15)
        return (0..<group.size).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
    }
}

/// Sum over every axis but `axis` of |x|^power: one value per position along `axis`.
func axisSums(_ data: TensorData, axis: Int, power: Int) -> [Double] {
    let values = data.floats()
    let extent = data.shape[axis], inner = data.shape[(axis + 1)...].reduce(1, *)
    var sums = [Double](repeating: 0, count: extent)
    for (index, value) in values.enumerated() {
        let magnitude = Double(abs(value))
        sums[(index / inner) % extent] += power == 2 ? magnitude * magnitude : magnitude
    }
    return sums
}

/// How units are ranked for removal (lowest first): the vocabulary of `lopper prune`, sweep
/// specs and plans, with the one mapping to an `Importance`.
public enum Criterion: String, CaseIterable, Codable, Sendable {
    case l1, l2, bnScale = "bn-scale", random, wanda

    /// - Parameters:
    ///   - seed: for `random`.
    ///   - statistics: calibration activations, which `wanda` needs.
    public func importance(seed: UInt64 = 0, statistics: ActivationStatistics? = nil) throws -> Importance {
        switch self {
        case .l1: return MagnitudeImportance(p: 1)
        case .l2: return MagnitudeImportance(p: 2)
        case .bnScale: return BatchNormScaleImportance()
        case .random: return RandomImportance(seed: seed)
        case .wanda:
            guard let statistics else { throw ModelError("the wanda criterion needs activation statistics from calibration data") }
            return ActivationImportance(statistics: statistics)
        }
    }
}
