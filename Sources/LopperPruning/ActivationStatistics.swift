import Foundation
import LopperModel
import LopperRuntime

/// Per-channel statistics of the activations that consuming layers read, gathered by running
/// the dense model on calibration data. Activation-aware importance (Wanda) uses the norms;
/// bias correction uses the means.
public struct ActivationStatistics: Sendable {
    /// For each activation: its channel axis, and per position along it the sum of squares,
    /// the sum, and how many elements were added up.
    struct Accumulator: Sendable {
        var axis: Int
        var sumOfSquares: [Double]
        var sum: [Double]
        var count: Int
    }

    private(set) var values: [String: Accumulator] = [:]

    /// ‖X_c‖₂ over every sample and position, per channel of `value`.
    public func norms(_ value: String) -> [Double]? { values[value]?.sumOfSquares.map { $0.squareRoot() } }

    /// Mean of each channel of `value`.
    public func means(_ value: String) -> [Double]? {
        values[value].map { v in v.sum.map { $0 / Double(max(v.count, 1)) } }
    }

    /// The activation a consumer member reads, and the axis its channels lie on (-1: the last).
    static func consumedActivation(_ member: Member, in model: Model) -> (value: String, axis: Int, node: Node)? {
        guard member.role == .input, let node = model.graph.nodes.first(where: { $0.displayName == member.node }),
              let value = node.input(0) else { return nil }
        switch node.opType {
        case "Conv", "ConvTranspose", "Gemm": return (value, 1, node)
        case "MatMul": return (value, -1, node)  // the last axis, whatever the rank
        default: return nil
        }
    }

    /// Runs the dense model over the calibration batches and accumulates the inputs of every
    /// layer that consumes a group's channels.
    public static func collect(_ model: Model, groups: [PruneGroup], calibration: Calibration, threads: Int) throws -> ActivationStatistics {
        var wanted: [String: Int] = [:]
        for group in groups {
            for member in group.members {
                guard let (value, axis, _) = consumedActivation(member, in: model) else { continue }
                wanted[value] = axis
            }
        }
        return try collect(model, values: wanted, calibration: calibration, threads: threads)
    }

    /// Runs the dense model over the calibration batches and accumulates `values` (each with its
    /// channel axis, -1 for the last).
    public static func collect(_ model: Model, values wanted: [String: Int], calibration: Calibration, threads: Int) throws -> ActivationStatistics {
        var observed = model
        for value in wanted.keys.sorted() where !observed.graph.outputs.contains(where: { $0.name == value }) {
            observed.graph.outputs.append(ValueInfo(name: value, type: TensorType(elementType: nil, shape: nil)))
        }
        // No fusion: every observed value must be computed as the graph defines it.
        let executor = try Executor(model: observed, options: ExecutorOptions(threads: threads, optimize: false))
        var statistics = ActivationStatistics()
        for batch in calibration.batches {
            let outputs = try executor.run(batch)
            for (value, requested) in wanted {
                guard let tensor = outputs[value] else { continue }
                let axis = requested >= 0 ? requested : tensor.rank - 1
                let extent = tensor.shape[axis], inner = tensor.shape[(axis + 1)...].reduce(1, *)
                var entry = statistics.values[value] ?? Accumulator(axis: axis, sumOfSquares: Array(repeating: 0, count: extent),
                                                                     sum: Array(repeating: 0, count: extent), count: 0)
                for (index, x) in tensor.floats.enumerated() {
                    let channel = (index / inner) % extent
                    entry.sumOfSquares[channel] += Double(x) * Double(x)
                    entry.sum[channel] += Double(x)
                }
                entry.count += tensor.count / max(extent, 1)
                statistics.values[value] = entry
            }
        }
        return statistics
    }
}

/// Wanda (Sun et al. 2023), per channel: Σ |W| · ‖X_c‖ over the weights that read channel c in
/// every consuming layer, where ‖X_c‖ is the channel's activation norm on calibration data.
public struct ActivationImportance: Importance {
    public var statistics: ActivationStatistics

    public init(statistics: ActivationStatistics) { self.statistics = statistics }

    public func scores(for group: PruneGroup, in model: Model) throws -> [Double] {
        var total = [Double](repeating: 0, count: group.size)
        for member in group.members where member.role == .input {
            guard let (value, _, _) = ActivationStatistics.consumedActivation(member, in: model),
                  let norms = statistics.norms(value), let weight = try model.graph.constant(member.tensor) else {
                throw ModelError("no calibration activations for the input of '\(member.node)'")
            }
            let magnitudes = axisSums(weight, axis: member.axis, power: 1)
            for unit in 0..<member.length {
                let first = member.tensorOffset + unit * member.block
                for position in first..<(first + member.block) where position < norms.count {
                    total[member.groupOffset + unit] += magnitudes[position] * norms[position]
                }
            }
        }
        return total
    }
}
