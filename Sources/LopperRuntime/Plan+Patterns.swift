import LopperModel

/// Chains of nodes that exporters emit for one activation, replaced by one unary step of its
/// input so that it can merge with other unary steps and fuse into the producing kernel.
extension Plan {
    /// The nodes being planned, with the questions the recognisers ask of them.
    struct PatternScan {
        var nodes: [Pending]
        let constants: [String: Tensor]
        let keep: Set<String>
        let readers: [String: [Int]]
        var removed = Set<Int>()

        init(_ nodes: [Pending], _ constants: [String: Tensor], keep: Set<String>) {
            self.nodes = nodes
            self.constants = constants
            self.keep = keep
            readers = Plan.readers(nodes)
        }

        func scalar(_ name: String) -> Float? {
            guard let t = constants[name], t.kind == .float, t.count == 1 else { return nil }
            return t.f[0]
        }

        /// The single reader of a node's only output, when nothing else needs that output.
        func onlyReader(_ position: Int) -> Int? {
            let item = nodes[position]
            guard item.outputs.count == 1, !keep.contains(item.outputs[0]),
                  let list = readers[item.outputs[0]], list.count == 1, !removed.contains(list[0]) else { return nil }
            return list[0]
        }

        func isOp(_ position: Int, _ op: String) -> Bool {
            let item = nodes[position]
            return item.node.opType == op && item.node.domain.isEmpty && item.unary == nil
        }

        /// For a two-input node with a scalar constant operand: the other operand and the scalar.
        func scalarOperand(_ position: Int) -> (other: String, value: Float)? {
            let inputs = nodes[position].inputs
            guard inputs.count == 2 else { return nil }
            if let value = scalar(inputs[1]), constants[inputs[0]] == nil { return (inputs[0], value) }
            if let value = scalar(inputs[0]), constants[inputs[1]] == nil { return (inputs[1], value) }
            return nil
        }

        /// Node `position` becomes `activation` of `x`; the nodes `absorbed` go.
        mutating func replace(_ position: Int, by activation: Activation, of x: String, absorbing absorbed: [Int]) {
            nodes[position].inputs = [x]
            nodes[position].unary = activation
            for other in absorbed { nodes[position].absorb(nodes[other]) }
            removed.formUnion(absorbed)
        }

        var result: [Pending] { nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element) }
    }

    /// `x * Clip(x + 3, 0, 6) / 6` (how Paddle exports hard-swish).
    static func recognizeHardSwish(_ nodes: [Pending], _ constants: [String: Tensor], opset: Int, keep: Set<String>) -> [Pending] {
        var scan = PatternScan(nodes, constants, keep: keep)
        for position in nodes.indices where scan.isOp(position, "Add") {
            guard let (x, three) = scan.scalarOperand(position), three == 3,
                  let clipAt = scan.onlyReader(position), scan.isOp(clipAt, "Clip"), scan.nodes[clipAt].inputs.first == nodes[position].outputs[0],
                  case .clip(0, 6)? = try? Activation.of(nodes[clipAt].node, opset: opset, constants: nodes[clipAt].inputs.map { constants[$0] }),
                  let mulAt = scan.onlyReader(clipAt), scan.isOp(mulAt, "Mul"),
                  Set(nodes[mulAt].inputs) == [x, nodes[clipAt].outputs[0]],
                  let scaleAt = scan.onlyReader(mulAt), nodes[scaleAt].inputs.first == nodes[mulAt].outputs[0],
                  nodes[scaleAt].inputs.count == 2, let factor = scan.scalar(nodes[scaleAt].inputs[1]),
                  (scan.isOp(scaleAt, "Div") && factor == 6) || (scan.isOp(scaleAt, "Mul") && abs(factor - 1 / 6) < 1e-7) else { continue }
            scan.replace(scaleAt, by: .hardSwish, of: x, absorbing: [position, clipAt, mulAt])
        }
        return scan.result
    }

    /// `0.5 · x · (1 + Erf(x / √2))` (how PyTorch exports exact GELU before opset 20), with the
    /// halving either last or applied to `x` first, and `/ √2` also as `· (1/√2)`.
    static func recognizeGELU(_ nodes: [Pending], _ constants: [String: Tensor], keep: Set<String>) -> [Pending] {
        var scan = PatternScan(nodes, constants, keep: keep)
        let root2: Float = 1.414_213_5
        for position in nodes.indices where scan.isOp(position, "Div") || scan.isOp(position, "Mul") {
            guard let (x, factor) = scan.scalarOperand(position),
                  scan.isOp(position, "Div") ? (nodes[position].inputs[1] != x && abs(factor - root2) < 1e-6)
                                             : abs(factor - 1 / root2) < 1e-6,
                  let erfAt = scan.onlyReader(position), scan.isOp(erfAt, "Erf"),
                  let addAt = scan.onlyReader(erfAt), scan.isOp(addAt, "Add"), scan.scalarOperand(addAt)?.value == 1,
                  let mulAt = scan.onlyReader(addAt), scan.isOp(mulAt, "Mul"), nodes[mulAt].inputs.count == 2 else { continue }
            let inputs = nodes[mulAt].inputs
            let other = inputs[0] == nodes[addAt].outputs[0] ? inputs[1] : inputs[0]
            if other == x, let halfAt = scan.onlyReader(mulAt), scan.isOp(halfAt, "Mul"), scan.scalarOperand(halfAt)?.value == 0.5 {
                scan.replace(halfAt, by: .gelu(tanhApproximation: false), of: x, absorbing: [position, erfAt, addAt, mulAt])
            } else if let halfAt = nodes.indices.first(where: { nodes[$0].outputs == [other] }), scan.isOp(halfAt, "Mul"),
                      let (input, half) = scan.scalarOperand(halfAt), input == x, half == 0.5, scan.onlyReader(halfAt) == mulAt {
                scan.replace(mulAt, by: .gelu(tanhApproximation: false), of: x, absorbing: [position, erfAt, addAt, halfAt])
            }
        }
        return scan.result
    }

    /// `Mul(x, Sigmoid(x))`: SiLU (after `recognizeUnary` marked the float Sigmoids). The Conv
    /// producing `x` then has one reader and can fuse it.
    static func recognizeSiLU(_ nodes: [Pending], keep: Set<String>) -> [Pending] {
        var scan = PatternScan(nodes, [:], keep: keep)
        for position in nodes.indices {
            guard case .sigmoid? = nodes[position].unary, let x = nodes[position].inputs.first,
                  let mulAt = scan.onlyReader(position), scan.isOp(mulAt, "Mul"),
                  Set(nodes[mulAt].inputs) == [x, nodes[position].outputs[0]], nodes[mulAt].inputs.count == 2 else { continue }
            scan.replace(mulAt, by: .silu, of: x, absorbing: [position])
        }
        return scan.result
    }
}
