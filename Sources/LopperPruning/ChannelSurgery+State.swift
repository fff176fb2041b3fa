import LopperModel

/// Carried recurrent states keep the model's interface when hidden units are pruned: the layer
/// reads the kept units of its initial state through a Gather, and a model output holding its
/// final state gets zero for each removed unit (one zero padded on, then a Gather), so a caller
/// that feeds the output back as the next call's input works unchanged.
extension ChannelSurgery {
    /// A `stateInput` or `stateOutput` member's value; with the positions removed along its axis.
    struct StateWire: Hashable {
        var role: Member.Role
        var node: String
        var value: String
        var axis: Int
    }

    /// The state values that pruning `removing` touches, with the positions each one loses.
    static func stateWires(groups: [PruneGroup], removing: [Int: [Int]]) -> [StateWire: Set<Int>] {
        var wires: [StateWire: Set<Int>] = [:]
        for (id, units) in removing where !units.isEmpty {
            guard let group = groups.first(where: { $0.id == id }) else { continue }
            let removed = Set(units)
            for member in group.members where [.stateInput, .stateOutput].contains(member.role) {
                let hit = member.units.filter(removed.contains).flatMap(member.positions(ofUnit:))
                guard !hit.isEmpty else { continue }
                wires[StateWire(role: member.role, node: member.node, value: member.tensor, axis: member.axis), default: []].formUnion(hit)
            }
        }
        return wires
    }

    /// Adds the Gather (state inputs) and Pad + Gather (state outputs) nodes; `shapes` are the
    /// dense model's, which give each state's full width.
    static func rewire(_ model: inout Model, states: [StateWire: Set<Int>], shapes: ShapeTable) throws {
        let opset = model.opset() ?? 1
        var nodes = model.graph.nodes
        var added: [Node] = []
        for (wire, removed) in states.sorted(by: { ($0.key.node, $0.key.value) < ($1.key.node, $1.key.value) }) {
            let (shape, width) = try extent(of: wire, shapes: shapes)
            let kept = (0..<width).filter { !removed.contains($0) }
            let base = "\(wire.node)_\(wire.value)"
            if wire.role == .stateInput {
                guard let position = nodes.firstIndex(where: { $0.displayName == wire.node }) else {
                    throw ModelError("node '\(wire.node)', which reads the state '\(wire.value)', is missing")
                }
                let indices = model.graph.addInitializer(TensorData(int64s: kept.map(Int64.init), shape: [kept.count]), nameBase: base + "_kept_units")
                let gathered = model.graph.unusedName(base + "_kept")
                added.append(makeNode("Gather", [wire.value, indices], [gathered], name: base + "_gather", axis: wire.axis))
                nodes[position].proto.input = nodes[position].inputs.enumerated().map { index, input in
                    ChannelRules.recurrentStateInputs.contains(index) && input == wire.value ? gathered : input
                }
                continue
            }
            let pruned = model.graph.unusedName(base + "_pruned")
            rename(wire.value, to: pruned, in: &nodes)
            // One zero after the last kept unit, and each unit gathered from its new place or the zero.
            var pads = [Int](repeating: 0, count: 2 * shape.count)
            pads[shape.count + wire.axis] = 1
            let padded = model.graph.unusedName(base + "_padded")
            var pad = makeNode("Pad", [pruned], [padded], name: base + "_pad")
            if opset >= 11 {
                pad.proto.input.append(model.graph.addInitializer(TensorData(int64s: pads.map(Int64.init), shape: [pads.count]), nameBase: base + "_pads"))
            } else {
                pad.setAttribute("pads", ints: pads)
            }
            var source = [Int64](repeating: Int64(kept.count), count: width)
            for (place, unit) in kept.enumerated() { source[unit] = Int64(place) }
            let indices = model.graph.addInitializer(TensorData(int64s: source, shape: [width]), nameBase: base + "_unit_places")
            added += [pad, makeNode("Gather", [padded, indices], [wire.value], name: base + "_gather", axis: wire.axis)]
        }
        try model.graph.setNodes(nodes + added)
    }

    /// For the mask reference: each state output multiplied by a 0/1 mask along its axis, so its
    /// removed units read zero as in the pruned model (the masked layer still computes them).
    static func zeroRemovedStates(_ model: inout Model, states: [StateWire: Set<Int>], shapes: ShapeTable) throws {
        var nodes = model.graph.nodes
        var added: [Node] = []
        for (wire, removed) in states.sorted(by: { $0.key.value < $1.key.value }) where wire.role == .stateOutput {
            let (shape, width) = try extent(of: wire, shapes: shapes)
            let dense = model.graph.unusedName("\(wire.node)_\(wire.value)_dense")
            rename(wire.value, to: dense, in: &nodes)
            let mask = TensorData(floats: (0..<width).map { removed.contains($0) ? 0 : 1 },
                                  shape: [width] + Array(repeating: 1, count: shape.count - 1 - wire.axis))
            let constant = model.graph.addInitializer(mask, nameBase: "\(wire.value)_unit_mask")
            added.append(makeNode("Mul", [dense, constant], [wire.value], name: "\(wire.node)_\(wire.value)_mask"))
        }
        try model.graph.setNodes(nodes + added)
    }

    /// A state's dense shape and its width along the wire's axis.
    private static func extent(of wire: StateWire, shapes: ShapeTable) throws -> (shape: [Dim], width: Int) {
        guard let shape = shapes[wire.value]?.shape, wire.axis < shape.count, let width = shape[wire.axis].value else {
            throw ModelError("the state '\(wire.value)' has no known size on axis \(wire.axis)")
        }
        return (shape, width)
    }

    /// Every node that writes or reads `value` uses `name` instead (the model output keeps `value`).
    private static func rename(_ value: String, to name: String, in nodes: inout [Node]) {
        for index in nodes.indices {
            nodes[index].proto.output = nodes[index].outputs.map { $0 == value ? name : $0 }
            nodes[index].proto.input = nodes[index].inputs.map { $0 == value ? name : $0 }
        }
    }

    private static func makeNode(_ op: String, _ inputs: [String], _ outputs: [String], name: String, axis: Int? = nil) -> Node {
        var node = Node(proto: .init(), index: 0)
        node.proto.opType = op
        node.proto.name = name
        node.proto.input = inputs
        node.proto.output = outputs
        if let axis { node.setAttribute("axis", int: axis) }
        return node
    }
}
