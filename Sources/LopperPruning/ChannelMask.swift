import Foundation
import LopperModel

extension ChannelSurgery {
    /// The dense model with the given channels' *contribution* removed: every consumer's weight
    /// slice that reads them is zeroed, and nothing is cut (a carried recurrent state output is
    /// multiplied by a mask, since pruning writes zero there). Its outputs equal those of the
    /// physically pruned model, which makes it the reference for surgery and a cheap way to
    /// simulate pruning without rewriting the graph.
    public static func maskContribution(_ model: Model, groups: [PruneGroup], removing: [Int: [Int]]) throws -> Model {
        var zeroed: [String: [Int: Set<Int>]] = [:]
        for (id, channels) in removing where !channels.isEmpty {
            guard let group = groups.first(where: { $0.id == id }) else { throw ModelError("there is no group \(id)") }
            let removed = Set(channels)
            for member in group.members where member.role == .input {
                for channel in member.units where removed.contains(channel) {
                    zeroed[member.tensor, default: [:]][member.axis, default: []].formUnion(member.positions(ofUnit: channel))
                }
            }
        }
        var masked = model
        for (tensor, axes) in zeroed {
            guard let data = try masked.graph.constant(tensor), data.elementType == .float32 else {
                throw ModelError("'\(tensor)' is not a float32 constant")
            }
            var values = data.floats()
            let shape = data.shape
            for (axis, positions) in axes {
                let inner = shape[(axis + 1)...].reduce(1, *), extent = shape[axis]
                for index in values.indices where positions.contains((index / inner) % extent) { values[index] = 0 }
            }
            try masked.graph.setConstant(tensor, to: TensorData(floats: values, shape: shape))
        }
        let states = stateWires(groups: groups, removing: removing)
        if !states.isEmpty { try zeroRemovedStates(&masked, states: states, shapes: try ShapeInference.run(model)) }
        return masked
    }
}
