/// Shape rules for operators whose output has the shape of their (broadcast) inputs.
enum ElementwiseRules {
    /// One output shaped and typed like input 0; small integer values pass through.
    static func sameAsInput(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        return [ValueFacts(x.type, ints: c.node.opType == "Identity" ? x.ints : nil)]
    }

    /// Dropout in inference: the data unchanged, and a boolean mask of the same shape.
    static func dropout(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        return [x, ValueFacts(TensorType(elementType: .bool, shape: x.shape))]
    }

    static func cast(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let code = try c.node.int("to") else { throw ModelError("attribute 'to' is required") }
        let type = try ElementType(onnxCode: Int32(truncatingIfNeeded: code))
        var facts = ValueFacts(TensorType(elementType: type, shape: x.shape))
        if type.isInteger {
            facts.ints = x.ints ?? x.floats.map { $0.map { $0.isFinite && abs($0) < 1e15 ? .value(Int($0)) : .unknown } }
        } else if type.isFloatingPoint {
            facts.floats = x.floats ?? x.intValues?.map(Double.init)
        }
        return [facts]
    }

    /// Numpy broadcasting of every input; the output keeps input 0's type unless `resultType` is set.
    static func broadcasting(resultType: ElementType? = nil) -> (ShapeContext) throws -> [ValueFacts] {
        return { c in
            let present = try c.inputs.indices.compactMap { c.inputs[$0] == nil ? nil : try c.input($0) }
            guard !present.isEmpty else { throw ModelError("needs at least one input") }
            let shape = try broadcast(present.map(\.shape))
            let type = resultType ?? present[0].elementType
            var facts = ValueFacts(TensorType(elementType: type, shape: shape))
            facts.ints = try foldIntegers(c.node.opType, present)
            return [facts]
        }
    }

    /// `Where(condition, x, y)`: broadcast of all three, typed like `x`.
    static func `where`(_ c: ShapeContext) throws -> [ValueFacts] {
        let condition = try c.input(0), x = try c.input(1), y = try c.input(2)
        let shape = try broadcast([condition.shape, x.shape, y.shape])
        var facts = ValueFacts(TensorType(elementType: x.elementType ?? y.elementType, shape: shape))
        if let mask = condition.intValues, let a = x.ints, let b = y.ints,
           let n = [mask.count, a.count, b.count].max(), [mask.count, a.count, b.count].allSatisfy({ $0 == n || $0 == 1 }) {
            facts.ints = (0..<n).map { i in mask[mask.count == 1 ? 0 : i] != 0 ? a[a.count == 1 ? 0 : i] : b[b.count == 1 ? 0 : i] }
        }
        return [facts]
    }

    static func batchNormalization(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        let channels = x.shape.flatMap { $0.count > 1 ? $0[1] : nil }
        for (position, name) in [(1, "scale"), (2, "B"), (3, "mean"), (4, "var")] {
            guard let shape = try c.shape(position), let length = shape.first?.value, let channels = channels?.value else { continue }
            guard shape.count == 1, length == channels else {
                throw ModelError("\(name) has shape \(shape) but the input has \(channels) channels")
            }
        }
        return [ValueFacts(x.type)]
    }

    static func layerNormalization(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let shape = x.shape else { return [ValueFacts(x.type), .unknown, .unknown] }
        let axis = try normalizedAxis(try c.node.int("axis", default: -1), rank: shape.count)
        let reduced = Array(shape[..<axis]) + Array(repeating: Dim.value(1), count: shape.count - axis)
        let statType = try c.node.int("stash_type", default: 1) == 1 ? ElementType.float32 : x.elementType
        return [ValueFacts(x.type), ValueFacts(TensorType(elementType: statType, shape: reduced)),
                ValueFacts(TensorType(elementType: statType, shape: reduced))]
    }

    /// Folds integer arithmetic on tracked elements (scalars broadcast), as detectors' shape
    /// subgraphs do: `Shape → Gather → Mul → Concat`.
    private static func foldIntegers(_ op: String, _ inputs: [ValueFacts]) throws -> [Dim]? {
        guard inputs.count == 2, let a = inputs[0].ints, let b = inputs[1].ints,
              inputs.allSatisfy({ $0.elementType?.isInteger ?? false }) else { return nil }
        let n = max(a.count, b.count)
        guard a.count == n || a.count == 1, b.count == n || b.count == 1 else { return nil }
        return try (0..<n).map { i in
            let x = a[a.count == 1 ? 0 : i], y = b[b.count == 1 ? 0 : i]
            switch op {
            case "Add": return try x + y
            case "Sub": return try x - y
            case "Mul": return try x * y
            case "Div":
                // ONNX integer Div truncates toward zero.
                guard let p = x.value, let q = y.value, q != 0, !(p == .min && q == -1) else { return .unknown }
                return .value(p / q)
            case "Max", "Min":
                guard let p = x.value, let q = y.value else { return .unknown }
                return .value(op == "Max" ? max(p, q) : min(p, q))
            case "Equal":
                if x == y, x != .unknown { return .value(1) }
                guard let p = x.value, let q = y.value else { return .unknown }
                return .value(p == q ? 1 : 0)
            default: return .unknown
            }
        }
    }
}
