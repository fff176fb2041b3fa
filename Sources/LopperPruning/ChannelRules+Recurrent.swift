import LopperModel

/// RNN, GRU and LSTM: their input features are consumed (W's last axis) and their hidden units
/// form a group. One hidden unit is a row in every gate block of W, R and both biases (4 gates
/// of an LSTM, 3 of a GRU, 1 of an RNN), R's column (the recurrence reads the unit back), its
/// three peephole weights, its element of any constant initial state (a computed one is read
/// through a Gather of the kept units), and its channel in Y, Y_h and Y_c (for both directions
/// of a bidirectional layer, which share the numbering).
extension ChannelRules {
    static func recurrent(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let cell = RecurrentCell(node) else { return }
        let gates = cell.gateCount
        guard let x = node.input(0), let w = node.input(1), let r = node.input(2),
              let wShape = b.concreteShape(w), let rShape = b.concreteShape(r), wShape.count == 3, rShape.count == 3,
              b.isConstant(w), b.isConstant(r) else {
            b.blockInputs(of: node, because: "\(node.label) has W or R that is not a constant of known shape")
            return
        }
        let hidden = rShape[2]
        if let input = b.layouts[x] {
            if input.axis == 2 { b.record(.input, node, w, axis: 2, layout: input) } else {
                b.block(input, because: "\(node.label) reads the features on axis \(input.axis), not 2")
            }
        }
        let set = b.produce(node, width: hidden, weight: w, axis: 1)
        let units = ChannelLayout(axis: 1, segments: [Segment(set: set, start: 0, length: hidden, block: 1)])
        /// `count` blocks of the hidden units along `axis` of `tensor`, from block `first` on.
        func blocks(_ role: Member.Role, _ tensor: String, axis: Int, count: Int, first: Int = 0) {
            for block in first..<count {
                b.append(Member(role: role, node: node.displayName, tensor: tensor, axis: axis, tensorOffset: block * hidden,
                                groupOffset: 0, length: hidden, block: 1), to: set)
            }
        }
        blocks(.output, w, axis: 1, count: gates, first: 1)
        blocks(.output, r, axis: 1, count: gates)
        b.record(.input, node, r, axis: 2, layout: units)
        if b.readers(r) > 1 { b.sets.block(set, because: "weight '\(r)' is shared by several layers") }
        // B (Wb then Rb); initial_h, initial_c; P (input, output and forget peepholes).
        var perUnit: [(position: Int, axis: Int, blocks: Int)] = [(3, 1, 2 * gates), (5, 2, 1)]
        if cell.hasCellState { perUnit += [(6, 2, 1), (7, 1, 3)] }
        for (position, axis, count) in perUnit {
            guard let tensor = node.input(position) else { continue }
            if Self.recurrentStateInputs.contains(position), !b.isConstant(tensor) {
                // A computed state: its units are read through a Gather when pruned; one that
                // carries another group's channels would have to shrink with them, so both stay.
                if let layout = b.layouts[tensor] {
                    b.block(layout, because: "\(node.label) takes these channels as its \(Self.recurrentInputNames[position])")
                    b.sets.block(set, because: "\(node.label) has \(Self.recurrentInputNames[position]) '\(tensor)' made of another group's channels")
                } else {
                    b.append(Member(role: .stateInput, node: node.displayName, tensor: tensor, axis: 2, tensorOffset: 0,
                                    groupOffset: 0, length: hidden, block: 1), to: set)
                }
                continue
            }
            guard b.isConstant(tensor), b.readers(tensor) == 1 else {
                b.sets.block(set, because: "\(node.label) has \(Self.recurrentInputNames[position]) '\(tensor)', which is not a constant of its own")
                continue
            }
            // States are [directions, batch, hidden], or batch first with layout 1.
            blocks(.parameter, tensor, axis: axis, count: count)
        }
        b.record(.hiddenSize, node, "", axis: 0, layout: units)
        // Y is [T, directions, batch, hidden] (or [batch, T, directions, hidden]); Y_h and Y_c put
        // the hidden units on axis 2 either way.
        for (position, output) in node.outputs.enumerated() where !output.isEmpty {
            b.layouts[output] = ChannelLayout(axis: position == 0 ? 3 : 2, segments: units.segments)
        }
    }

    static let recurrentInputNames = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    /// Input positions of initial_h and initial_c.
    static let recurrentStateInputs: Set = [5, 6]

    /// Whether model output `value` is a recurrent layer's final state (Y_h or Y_c, moved only by
    /// Transpose, Identity, Squeeze, Unsqueeze or Reshape) whose initial state of the same kind is
    /// computed: a state the caller feeds back, which keeps its width when units are pruned.
    static func isCarriedState(_ value: String, in graph: Graph) -> Bool {
        var current = value
        while let producer = graph.producer(of: current) {
            if RecurrentCell(producer) != nil, let output = producer.outputs.firstIndex(of: current), output > 0,
               let state = producer.input(4 + output) {
                return !(graph.initializers[state] != nil || graph.producer(of: state)?.opType == "Constant")
            }
            guard ["Transpose", "Identity", "Squeeze", "Unsqueeze", "Reshape"].contains(producer.opType),
                  let input = producer.input(0) else { return false }
            current = input
        }
        return false
    }
}
