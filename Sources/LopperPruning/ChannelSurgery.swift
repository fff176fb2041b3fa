import LopperModel

/// Physically removes channels from a model: every member tensor of a group loses the same
/// channels, and Split sizes and Reshape targets that count them are rewritten, so the result is
/// smaller and faster, not just sparser.
public enum ChannelSurgery {
    /// The positions each tensor of the groups (weights along their output or input channels,
    /// per-channel parameters) loses along each axis when `removing` is cut.
    public static func cuts(groups: [PruneGroup], removing: [Int: [Int]]) -> [String: [Int: Set<Int>]] {
        var cuts: [String: [Int: Set<Int>]] = [:]
        for (id, units) in removing where !units.isEmpty {
            guard let group = groups.first(where: { $0.id == id }) else { continue }
            let removed = Set(units)
            for member in group.members where [.output, .input, .parameter].contains(member.role) {
                for unit in member.units where removed.contains(unit) {
                    cuts[member.tensor, default: [:]][member.axis, default: []].formUnion(member.positions(ofUnit: unit))
                }
            }
        }
        return cuts
    }

    /// - Parameter removing: for each group id, the channels to remove (in the group's numbering).
    public static func prune(_ model: Model, groups: [PruneGroup], removing: [Int: [Int]]) throws -> Model {
        var shrink: [Member.Role: [String: [Int: Int]]] = [.splitSize: [:], .convGroups: [:], .hiddenSize: [:]]
        // Reshape targets and Slice bounds by (reading node, constant): a constant shared by
        // several readers is rewritten for each reader separately.
        var targets: [ConstantReader: [Int: Int]] = [:]
        var splitTensors: [String: String] = [:]
        for (id, channels) in removing where !channels.isEmpty {
            guard let group = groups.first(where: { $0.id == id }) else { throw ModelError("there is no group \(id)") }
            if let reason = group.blockedBecause { throw ModelError("group \(id) '\(group.name)' cannot be pruned: \(reason)") }
            let removed = Set(channels)
            guard removed.allSatisfy({ $0 >= 0 && $0 < group.size }) else {
                throw ModelError("group \(id) '\(group.name)' has channels 0..<\(group.size); cannot remove \(channels.filter { $0 < 0 || $0 >= group.size })")
            }
            guard removed.count < group.size else { throw ModelError("group \(id) '\(group.name)' must keep at least one channel") }
            for member in group.members {
                let hit = member.units.filter(removed.contains)
                guard !hit.isEmpty else { continue }
                switch member.role {
                case .output, .input, .parameter:
                    break  // tensor cuts: `cuts(groups:removing:)`
                case .reshapeTarget, .sliceBound:
                    targets[ConstantReader(node: member.node, tensor: member.tensor), default: [:]][member.axis, default: 0] += hit.count * member.block
                case .splitSize:
                    shrink[.splitSize]![member.node, default: [:]][member.axis, default: 0] += hit.count * member.block
                    splitTensors[member.node] = member.tensor
                case .convGroups, .hiddenSize:
                    shrink[member.role]![member.node, default: [:]][0, default: 0] += hit.count
                case .stateInput, .stateOutput:
                    break  // `stateWires(groups:removing:)`
                }
            }
        }

        var pruned = model
        for (tensor, axes) in cuts(groups: groups, removing: removing).sorted(by: { $0.key < $1.key }) {
            guard var data = try pruned.graph.constant(tensor) else { throw ModelError("'\(tensor)' is not a constant") }
            for (axis, positions) in axes.sorted(by: { $0.key < $1.key }) {
                data = try data.keeping(axis: axis, indices: (0..<data.shape[axis]).filter { !positions.contains($0) })
            }
            try pruned.graph.setConstant(tensor, to: data)
        }
        var rewrites: [String: [String: TensorData]] = [:]
        for (reader, elements) in targets {
            guard let data = try pruned.graph.constant(reader.tensor) else { throw ModelError("'\(reader.tensor)' read by '\(reader.node)' is not a constant") }
            var values = data.int64s()
            for (index, amount) in elements { values[index] -= Int64(amount) }
            rewrites[reader.tensor, default: [:]][reader.node] = TensorData(int64s: values, shape: data.shape)
        }
        for (tensor, values) in rewrites.sorted(by: { $0.key < $1.key }) { try rewrite(&pruned, constant: tensor, for: values) }
        let states = stateWires(groups: groups, removing: removing)
        // Split sizes and state widths come from the dense model's shapes, inferred only when needed.
        let shapes = shrink[.splitSize]!.isEmpty && states.isEmpty ? nil : try ShapeInference.run(model)
        if let shapes {
            for (nodeName, outputs) in shrink[.splitSize]! {
                try rewriteSplit(&pruned, node: nodeName, tensor: splitTensors[nodeName] ?? "", shrinking: outputs,
                                 original: model, shapes: shapes)
            }
        }
        // Attributes that count the channels: a depthwise Conv's group, a recurrent layer's hidden_size.
        for (role, attribute) in [(Member.Role.convGroups, "group"), (.hiddenSize, "hidden_size")] {
            for (nodeName, removed) in shrink[role]! {
                guard let position = pruned.graph.nodes.firstIndex(where: { $0.displayName == nodeName }) else {
                    throw ModelError("node '\(nodeName)', whose \(attribute) counts pruned channels, is missing")
                }
                try pruned.graph.modifyNode(at: position) { node in
                    guard let count = try node.int(attribute) else { return }
                    node.setAttribute(attribute, int: count - removed[0, default: 0])
                }
            }
        }
        if let shapes, !states.isEmpty { try rewire(&pruned, states: states, shapes: shapes) }
        // Intermediate shapes changed; the declared ones would now be wrong.
        pruned.graph.valueInfo = []
        return pruned
    }

    /// Writes a Split's new sizes where the old ones were: its constant input, its `split`
    /// attribute (opset < 13), or, for an equal split, as new explicit sizes.
    private static func rewriteSplit(_ model: inout Model, node name: String, tensor: String, shrinking: [Int: Int],
                                     original: Model, shapes: ShapeTable) throws {
        guard let position = model.graph.nodes.firstIndex(where: { $0.displayName == name }) else {
            throw ModelError("split node '\(name)' is missing")
        }
        let node = model.graph.nodes[position]
        let axis = try node.int("axis", default: 0)
        var sizes = try node.outputs.map { output -> Int in
            guard let shape = shapes[output]?.shape else { throw node.error("has outputs of unknown shape") }
            let resolved = axis < 0 ? axis + shape.count : axis
            guard let size = shape[resolved].value else { throw node.error("has outputs of unknown size") }
            return size
        }
        for (index, amount) in shrinking { sizes[index] -= amount }
        let opset = original.opset() ?? 1
        if !tensor.isEmpty {
            try rewrite(&model, constant: tensor, for: [name: TensorData(int64s: sizes.map(Int64.init), shape: [sizes.count])])
        } else if opset < 13 {
            try model.graph.modifyNode(at: position) { $0.setAttribute("split", ints: sizes) }
        } else {
            let constant = model.graph.addInitializer(TensorData(int64s: sizes.map(Int64.init), shape: [sizes.count]),
                                                      nameBase: "\(name)_split")
            try model.graph.modifyNode(at: position) { node in
                node.removeAttribute("num_outputs")
                if node.proto.input.count < 2 { node.proto.input.append(constant) } else { node.proto.input[1] = constant }
            }
        }
    }

    /// Gives readers of a constant (by node name) new values. The constant is rewritten in place
    /// when every reader gets the same value; otherwise each listed reader gets a copy of its own
    /// and the others keep the original.
    private static func rewrite(_ model: inout Model, constant tensor: String, for values: [String: TensorData]) throws {
        let readers = (model.graph.consumers[tensor] ?? []).map { model.graph.nodes[$0].displayName }
        let distinct = Set(values.values.map { $0.int64s() })
        if Set(readers) == Set(values.keys), distinct.count == 1, let value = values.values.first {
            try model.graph.setConstant(tensor, to: value)
            return
        }
        for (reader, value) in values.sorted(by: { $0.key < $1.key }) {
            guard let position = model.graph.nodes.firstIndex(where: { $0.displayName == reader }) else {
                throw ModelError("node '\(reader)' reading '\(tensor)' is missing")
            }
            let copy = model.graph.addInitializer(value, nameBase: "\(tensor)_\(reader)")
            try model.graph.modifyNode(at: position) { node in
                for index in node.proto.input.indices where node.proto.input[index] == tensor { node.proto.input[index] = copy }
            }
        }
    }
}

/// A node reading a constant: where a shared constant's rewrite applies.
private struct ConstantReader: Hashable {
    var node: String
    var tensor: String
}
