import Foundation
import LopperModel

/// Data-driven compensation without training: the mean contribution that removed channels made
/// to each consuming layer is folded into that layer's bias, so the next layer sees the same
/// average input. Conv, Gemm and MatMul (through the Add of its bias) consumers are corrected;
/// ConvTranspose consumers, whose contribution spreads over strided windows, are left as they are.
public enum BiasCorrection {
    public struct Result: Sendable {
        public var model: Model
        /// Consumers whose bias was adjusted, and those that could not be.
        public var corrected: [String]
        public var skipped: [String]
    }

    /// The dense model with biases adjusted for the channels `removing` will take away. Apply it
    /// before `ChannelSurgery.prune` with the same groups and removals.
    public static func apply(_ model: Model, groups: [PruneGroup], removing: [Int: [Int]],
                             statistics: ActivationStatistics) throws -> Result {
        // Removed positions along each consumer's input axis.
        var removedInputs: [String: (member: Member, positions: Set<Int>)] = [:]
        for (id, units) in removing where !units.isEmpty {
            guard let group = groups.first(where: { $0.id == id }) else { throw ModelError("there is no group \(id)") }
            let removed = Set(units)
            for member in group.members where member.role == .input {
                for unit in member.units where removed.contains(unit) {
                    removedInputs[member.node, default: (member, [])].positions.formUnion(member.positions(ofUnit: unit))
                }
            }
        }
        var result = Result(model: model, corrected: [], skipped: [])
        for (nodeName, entry) in removedInputs.sorted(by: { $0.key < $1.key }) {
            guard let (value, _, node) = ActivationStatistics.consumedActivation(entry.member, in: model),
                  let means = statistics.means(value), let weight = try model.graph.constant(entry.member.tensor),
                  let shift = try biasShift(node, weight: weight, axis: entry.member.axis, removed: entry.positions, means: means),
                  let bias = try biasTensor(for: node, outputs: shift.count, in: &result.model) else {
                result.skipped.append(nodeName)
                continue
            }
            let current = try result.model.graph.constant(bias)!
            var values = current.floats()
            for index in values.indices { values[index] += Float(shift[index % shift.count]) }
            try result.model.graph.setConstant(bias, to: TensorData(floats: values, shape: current.shape))
            result.corrected.append(nodeName)
        }
        return result
    }

    /// Σ over removed input positions p of mean(X_p) · (sum of the weights reading p), per output.
    private static func biasShift(_ node: Node, weight: TensorData, axis: Int, removed: Set<Int>, means: [Double]) throws -> [Double]? {
        let outputAxis: Int
        switch node.opType {
        case "Conv": outputAxis = 0
        case "Gemm", "MatMul": outputAxis = axis == 0 ? 1 : 0
        default: return nil
        }
        let w = weight.floats(), shape = weight.shape
        var shift = [Double](repeating: 0, count: shape[outputAxis])
        let axisInner = shape[(axis + 1)...].reduce(1, *), outputInner = shape[(outputAxis + 1)...].reduce(1, *)
        for (index, value) in w.enumerated() {
            let position = (index / axisInner) % shape[axis]
            guard removed.contains(position), position < means.count else { continue }
            shift[(index / outputInner) % shape[outputAxis]] += Double(value) * means[position]
        }
        return shift
    }

    /// The constant holding the node's per-output bias, created for a Conv or Gemm without one;
    /// for a MatMul, the constant of the Add that follows it.
    private static func biasTensor(for node: Node, outputs: Int, in model: inout Model) throws -> String? {
        switch node.opType {
        case "Conv", "Gemm":
            if let bias = node.input(2) {
                guard let data = try model.graph.constant(bias), data.elementType == .float32, data.count == outputs else { return nil }
                return bias
            }
            let name = model.graph.addInitializer(TensorData(floats: Array(repeating: 0, count: outputs), shape: [outputs]),
                                                  nameBase: "\(node.displayName)_bias")
            guard let position = model.graph.nodes.firstIndex(where: { $0.displayName == node.displayName }) else { return nil }
            try model.graph.modifyNode(at: position) { node in
                while node.proto.input.count < 2 { node.proto.input.append("") }
                if node.proto.input.count == 2 { node.proto.input.append(name) } else { node.proto.input[2] = name }
            }
            return name
        case "MatMul":
            guard let output = node.outputs.first, let readers = model.graph.consumers[output], readers.count == 1 else { return nil }
            let add = model.graph.nodes[readers[0]]
            guard add.opType == "Add", let other = add.inputs.first(where: { $0 != output }),
                  let data = try model.graph.constant(other), data.elementType == .float32, data.count == outputs,
                  (model.graph.consumers[other]?.count ?? 0) == 1 else { return nil }
            return other
        default:
            return nil
        }
    }
}
