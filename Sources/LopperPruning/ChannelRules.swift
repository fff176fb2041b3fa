import LopperModel

/// How each operator moves channels from its inputs to its outputs, and which of its tensors
/// follow them. An operator without a rule blocks every channel that reaches it.
enum ChannelRules {
    typealias Rule = (inout GroupBuilder, Node) throws -> Void

    static let table: [String: Rule] = {
        var rules: [String: Rule] = [:]
        let unary = ["Relu", "Sigmoid", "Tanh", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Erf", "Sqrt", "LeakyRelu",
                     "HardSigmoid", "HardSwish", "Elu", "Selu", "Softplus", "Gelu", "Clip", "Identity", "Dropout", "Cast",
                     "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Resize", "Upsample"]
        for op in unary { rules[op] = passThrough }
        for op in ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu"] { rules[op] = elementwise }
        rules["BatchNormalization"] = batchNormalization
        rules["Conv"] = conv
        rules["ConvTranspose"] = convTranspose
        rules["Gemm"] = gemm
        rules["MatMul"] = matMul
        for cell in RecurrentCell.allCases { rules[cell.op] = recurrent }
        rules["Concat"] = concat
        rules["Split"] = split
        rules["Transpose"] = transpose
        rules["Reshape"] = reshape
        rules["Flatten"] = flatten
        rules["Squeeze"] = squeezeOrUnsqueeze
        rules["Unsqueeze"] = squeezeOrUnsqueeze
        rules["Shape"] = readsShapeOnly
        rules["Size"] = readsShapeOnly
        rules["Constant"] = readsShapeOnly
        for op in ["Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2",
                   "LayerNormalization", "Pad"] {
            rules[op] = keepsAxisUnlessMixed
        }
        rules["Slice"] = slice
        return rules
    }()

    /// Output 0 has input 0's channels. Resize/Upsample and the pools keep the channel axis.
    static func passThrough(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let input = node.input(0), let layout = b.layouts[input] else { return }
        if ["Resize", "Upsample"].contains(node.opType), let i = b.shape(input), let o = node.outputs.first.flatMap(b.shape),
           i.count == o.count, i[layout.axis] != o[layout.axis] {
            b.block(layout, because: "\(node.label) resizes the channel axis")
            return
        }
        b.layouts[node.outputs[0]] = layout
    }

    /// Shape, Size: read no values, so channels may change freely.
    static func readsShapeOnly(_ b: inout GroupBuilder, _ node: Node) throws {}

    /// Operators that keep every axis but may mix along some: fine unless they mix the channel axis.
    static func keepsAxisUnlessMixed(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let input = node.input(0), let layout = b.layouts[input], let shape = b.shape(input) else {
            if let input = node.input(0) { b.block(b.layouts[input], because: "\(node.label) has unknown shapes") }
            return
        }
        let rank = shape.count
        func resolve(_ axis: Int) -> Int { axis < 0 ? axis + rank : axis }
        let mixes: Bool
        switch node.opType {
        case "Softmax", "LogSoftmax":
            let axis = resolve(try node.int("axis", default: b.opset >= 13 ? -1 : 1))
            // Before opset 13 these flatten every axis from `axis` on into one.
            mixes = b.opset >= 13 ? axis == layout.axis : layout.axis >= axis
        case "LayerNormalization":
            mixes = layout.axis >= resolve(try node.int("axis", default: -1))
        case "Slice", "Pad":
            // Only when the channel axis is left alone (checked from the shapes).
            mixes = node.outputs.first.flatMap(b.shape).map { $0.count != rank || $0[layout.axis] != shape[layout.axis] } ?? true
        default:
            let axes = try node.ints("axes") ?? node.input(1).flatMap { b.shapes.facts[$0]?.intValues } ?? Array(0..<rank)
            let reduced = Set(axes.map(resolve))
            mixes = reduced.contains(layout.axis)
            if !mixes, try node.int("keepdims", default: 1) == 0 {
                var kept = layout
                kept.axis -= reduced.filter { $0 < layout.axis }.count
                b.layouts[node.outputs[0]] = kept
                return
            }
        }
        if mixes {
            b.block(layout, because: "\(node.label) mixes values across the channels")
        } else {
            b.layouts[node.outputs[0]] = layout
        }
    }

    /// Broadcasting elementwise ops: inputs' channels (aligned from the last axis) become one.
    static func elementwise(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let output = node.outputs.first, let outRank = b.shape(output)?.count else {
            b.blockInputs(of: node, because: "\(node.label) has unknown shapes")
            return
        }
        // The channel axis counted from the end, from the first input that carries channels.
        let carriers = node.inputs.filter { !$0.isEmpty && b.layouts[$0] != nil }
        guard let first = carriers.first, let firstShape = b.shape(first) else { return }
        let fromEnd = firstShape.count - b.layouts[first]!.axis
        var reference = b.layouts[first]!
        reference.axis = outRank - fromEnd
        for input in node.inputs where !input.isEmpty && input != first {
            guard let shape = b.shape(input) else {
                b.block(reference, because: "\(node.label) has unknown shapes")
                continue
            }
            let axis = shape.count - fromEnd
            let extent = axis >= 0 ? shape[axis] : .value(1)
            if let layout = b.layouts[input] {
                if layout.axis != axis {
                    b.block(layout, because: "\(node.label) joins channels on different axes")
                    b.block(reference, because: "\(node.label) joins channels on different axes")
                } else {
                    b.unite(reference, layout, at: node)
                }
            } else if extent == .value(1) {
                continue
            } else if extent == .value(reference.width) && b.isConstant(input) {
                var layout = reference
                layout.axis = axis
                b.record(.parameter, node, input, axis: axis, layout: layout)
            } else {
                b.block(reference, because: "\(node.label) joins the channels with '\(input)', which no prunable layer produces")
            }
        }
        b.layouts[output] = reference
    }

    static func batchNormalization(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let input = node.input(0), let layout = b.layouts[input] else { return }
        guard layout.axis == 1 else {
            b.block(layout, because: "\(node.label) normalizes a different axis than the channels")
            return
        }
        for position in 1...4 {
            guard let tensor = node.input(position), b.isConstant(tensor) else {
                b.block(layout, because: "\(node.label) has statistics that are not constants")
                return
            }
            b.record(.parameter, node, tensor, axis: 0, layout: ChannelLayout(axis: 0, segments: layout.segments))
        }
        b.layouts[node.outputs[0]] = layout
    }

    /// Conv: input channels are consumed (weight axis 1) and output channels produced (axis 0).
    /// A depthwise Conv instead carries its input channels through, its filters following them.
    static func conv(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let x = node.input(0), let weight = node.input(1), let w = b.concreteShape(weight), w.count >= 3, b.isConstant(weight) else {
            b.blockInputs(of: node, because: "\(node.label) has a weight that is not a constant of known shape")
            return
        }
        let group = try node.int("group", default: 1)
        let input = b.layouts[x]
        if let input, input.axis != 1 {
            b.block(input, because: "\(node.label) reads the channels on axis \(input.axis), not 1")
        }
        if group > 1 {
            if group == w[0], w[1] == 1, let input, input.axis == 1, input.width == group {
                // Depthwise with one filter per channel: channels pass through.
                b.record(.parameter, node, weight, axis: 0, layout: input)
                b.record(.convGroups, node, "", axis: 0, layout: input)
                if let bias = node.input(2) { b.record(.parameter, node, bias, axis: 0, layout: input) }
                b.layouts[node.outputs[0]] = input
                return
            }
            b.block(input, because: "\(node.label) is a grouped convolution (group \(group)) that ties channels within groups")
            let set = b.produce(node, width: w[0], weight: weight, axis: 0)
            b.sets.block(set, because: "\(node.label) is a grouped convolution (group \(group))")
            b.layouts[node.outputs[0]] = ChannelLayout(axis: 1, segments: [Segment(set: set, start: 0, length: w[0], block: 1)])
            return
        }
        if let input, input.axis == 1 { b.record(.input, node, weight, axis: 1, layout: input) }
        producer(&b, node, width: w[0], weight: weight, axis: 0, bias: node.input(2), outputAxis: 1)
    }

    static func convTranspose(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let x = node.input(0), let weight = node.input(1), let w = b.concreteShape(weight), w.count >= 3, b.isConstant(weight),
              try node.int("group", default: 1) == 1 else {
            b.blockInputs(of: node, because: "\(node.label) is a grouped transposed convolution or has no constant weight")
            return
        }
        if let input = b.layouts[x] {
            if input.axis == 1 { b.record(.input, node, weight, axis: 0, layout: input) } else {
                b.block(input, because: "\(node.label) reads the channels on axis \(input.axis), not 1")
            }
        }
        producer(&b, node, width: w[1], weight: weight, axis: 1, bias: node.input(2), outputAxis: 1)
    }

    static func gemm(_ b: inout GroupBuilder, _ node: Node) throws {
        let transA = try node.int("transA", default: 0) != 0, transB = try node.int("transB", default: 0) != 0
        guard let a = node.input(0), let weight = node.input(1), let w = b.concreteShape(weight), w.count == 2, b.isConstant(weight), !transA else {
            b.blockInputs(of: node, because: "\(node.label) multiplies by something other than a constant weight")
            return
        }
        if let input = b.layouts[a] {
            if input.axis == 1 { b.record(.input, node, weight, axis: transB ? 1 : 0, layout: input) } else {
                b.block(input, because: "\(node.label) reads the channels on axis \(input.axis)")
            }
        }
        var bias = node.input(2)
        if let c = bias, let shape = b.concreteShape(c), shape.last == 1 || shape.isEmpty { bias = nil }
        if let c = bias, let shape = b.concreteShape(c), !(shape.count == 1 || (shape.count == 2 && shape[0] == 1)) || !b.isConstant(c) {
            let set = b.produce(node, width: transB ? w[0] : w[1], weight: weight, axis: transB ? 0 : 1)
            b.sets.block(set, because: "\(node.label) adds a bias that is not a per-output constant")
            return
        }
        producer(&b, node, width: transB ? w[0] : w[1], weight: weight, axis: transB ? 0 : 1, bias: bias, outputAxis: 1,
                 biasAxis: bias.flatMap(b.shape).map { $0.count - 1 } ?? 0)
    }

    /// MatMul by a constant 2-D weight consumes the last axis and produces a new one; a product
    /// of two activations (attention scores) blocks what reaches it.
    static func matMul(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let a = node.input(0), let weight = node.input(1), let rank = b.shape(a)?.count, rank >= 2 else {
            b.blockInputs(of: node, because: "\(node.label) has operands of unknown rank")
            return
        }
        guard let w = b.concreteShape(weight), w.count == 2, b.isConstant(weight) else {
            try batchedProduct(&b, node)
            return
        }
        if let input = b.layouts[a] {
            if input.axis == rank - 1 { b.record(.input, node, weight, axis: 0, layout: input) } else {
                b.block(input, because: "\(node.label) reads the channels on axis \(input.axis)")
            }
        }
        producer(&b, node, width: w[1], weight: weight, axis: 1, bias: nil, outputAxis: rank - 1)
    }

    /// A product of two activations (attention scores, attention-weighted values): channels on a
    /// shared batch axis (the heads) pass through and are joined; channels on the multiplied
    /// axes would be mixed, so they block.
    static func batchedProduct(_ b: inout GroupBuilder, _ node: Node) throws {
        guard let a = node.input(0), let c = node.input(1), let output = node.outputs.first,
              let ra = b.shape(a)?.count, let rc = b.shape(c)?.count, let ro = b.shape(output)?.count, ra >= 2, rc >= 2 else {
            b.blockInputs(of: node, because: "\(node.label) multiplies activations of unknown rank")
            return
        }
        var carried: ChannelLayout?
        for (value, rank) in [(a, ra), (c, rc)] {
            guard var layout = b.layouts[value] else { continue }
            let fromEnd = rank - layout.axis
            guard fromEnd > 2 else {
                b.block(layout, because: "\(node.label) multiplies two activations along the channels")
                continue
            }
            layout.axis = ro - fromEnd
            if let first = carried {
                b.unite(first, layout, at: node)
            } else {
                carried = layout
            }
        }
        if let carried { b.layouts[output] = carried }
    }

    private static func producer(_ b: inout GroupBuilder, _ node: Node, width: Int, weight: String, axis: Int,
                                 bias: String?, outputAxis: Int, biasAxis: Int = 0) {
        let set = b.produce(node, width: width, weight: weight, axis: axis)
        let layout = ChannelLayout(axis: outputAxis, segments: [Segment(set: set, start: 0, length: width, block: 1)])
        if let bias {
            guard b.isConstant(bias) else {
                b.sets.block(set, because: "\(node.label) has a bias that is not a constant")
                return
            }
            b.record(.parameter, node, bias, axis: biasAxis, layout: layout)
        }
        b.layouts[node.outputs[0]] = layout
    }
}
