/// Shape rules for matrix products, reductions and value-producing operators.
enum MathRules {
    static func matMul(_ c: ShapeContext) throws -> [ValueFacts] {
        let a = try c.input(0), b = try c.input(1)
        guard var left = a.shape, var right = b.shape else { return c.unknownOutputs(a.elementType) }
        guard !left.isEmpty, !right.isEmpty else { throw ModelError("MatMul operands must not be scalars") }
        let leftVector = left.count == 1, rightVector = right.count == 1
        if leftVector { left.insert(.value(1), at: 0) }
        if rightVector { right.append(.value(1)) }
        let k1 = left[left.count - 1], k2 = right[right.count - 2]
        if let p = k1.value, let q = k2.value, p != q {
            throw ModelError("inner dimensions differ: \(a.shape!) × \(b.shape!)")
        }
        var shape = (try broadcast([Array(left.dropLast(2)), Array(right.dropLast(2))]) ?? [])
        if !leftVector { shape.append(left[left.count - 2]) }
        if !rightVector { shape.append(right[right.count - 1]) }
        return [ValueFacts(TensorType(elementType: a.elementType, shape: shape))]
    }

    static func gemm(_ c: ShapeContext) throws -> [ValueFacts] {
        let a = try c.input(0), b = try c.input(1)
        guard let left = a.shape, let right = b.shape else { return c.unknownOutputs(a.elementType) }
        guard left.count == 2, right.count == 2 else { throw ModelError("Gemm needs 2-D operands, got \(left) and \(right)") }
        let transA = try c.node.int("transA", default: 0) != 0, transB = try c.node.int("transB", default: 0) != 0
        let (m, k1) = transA ? (left[1], left[0]) : (left[0], left[1])
        let (k2, n) = transB ? (right[1], right[0]) : (right[0], right[1])
        if let p = k1.value, let q = k2.value, p != q {
            throw ModelError("inner dimensions differ: A \(left)\(transA ? "ᵀ" : "") × B \(right)\(transB ? "ᵀ" : "")")
        }
        if let bias = try c.optionalInput(2)?.shape {
            _ = try broadcast([[m, n], bias])
        }
        return [ValueFacts(TensorType(elementType: a.elementType, shape: [m, n]))]
    }

    /// ReduceMean/Sum/Max/Min/L2: axes from the attribute or (ReduceSum from 13, others from 18) an input.
    static func reduce(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let xs = x.shape else { return c.unknownOutputs(x.elementType) }
        let keepDims = try c.node.int("keepdims", default: 1) != 0
        let inputSince = c.node.opType == "ReduceSum" ? 13 : 18
        var axes: [Int]
        switch try c.list("axes", attributeBefore: inputSince, input: 1) {
        case .unknown:
            return [ValueFacts(TensorType(elementType: x.elementType, shape: keepDims ? xs.map { _ in .unknown } : nil))]
        case .absent: axes = []
        case .known(let given): axes = try given.map { try normalizedAxis($0, rank: xs.count) }
        }
        if axes.isEmpty {
            if try c.node.int("noop_with_empty_axes", default: 0) != 0 { return [ValueFacts(x.type)] }
            axes = Array(xs.indices)
        }
        let reduced = Set(axes)
        let dims = xs.indices.compactMap { i -> Dim? in reduced.contains(i) ? (keepDims ? .value(1) : nil) : xs[i] }
        return [ValueFacts(TensorType(elementType: x.elementType, shape: dims))]
    }

    static func argMax(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let xs = x.shape else { return c.unknownOutputs(.int64) }
        let axis = try normalizedAxis(try c.node.int("axis", default: 0), rank: xs.count)
        var dims = xs
        if try c.node.int("keepdims", default: 1) != 0 { dims[axis] = .value(1) } else { dims.remove(at: axis) }
        return [ValueFacts(TensorType(elementType: .int64, shape: dims))]
    }

    static func constant(_ c: ShapeContext) throws -> [ValueFacts] {
        [ShapeInference.facts(of: try c.graph.constantValue(of: c.node))]
    }

    static func constantOfShape(_ c: ShapeContext) throws -> [ValueFacts] {
        let type: ElementType
        if let value = try c.node.tensor("value") {
            type = try ElementType(onnxCode: value.dataType)
        } else {
            type = .float32
        }
        guard let dims = c.optionalInput(0)?.ints else {
            let rank = try c.shape(0)?.first?.value
            return [ValueFacts(TensorType(elementType: type, shape: rank.map { Array(repeating: .unknown, count: $0) }))]
        }
        if let negative = dims.compactMap(\.value).first(where: { $0 < 0 }) {
            throw ModelError("shape holds negative dimension \(negative)")
        }
        return [ValueFacts(TensorType(elementType: type, shape: dims))]
    }

    static func shape(_ c: ShapeContext) throws -> [ValueFacts] {
        guard let xs = try c.shape(0) else { return [ValueFacts(TensorType(elementType: .int64, shape: [.unknown]))] }
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + xs.count : v, 0), xs.count) }
        let start = clamp(try c.node.int("start", default: 0))
        let end = max(start, clamp(try c.node.int("end", default: xs.count)))
        let dims = Array(xs[start..<end])
        return [ValueFacts(TensorType(.int64, [dims.count]), ints: dims)]
    }

    static func size(_ c: ShapeContext) throws -> [ValueFacts] {
        let total = try c.shape(0).map { try Dim.product($0) }
        return [ValueFacts(TensorType(.int64, []), ints: total.map { [$0] })]
    }

    static func range(_ c: ShapeContext) throws -> [ValueFacts] {
        let start = try c.input(0), limit = try c.input(1), delta = try c.input(2)
        let type = start.elementType
        if let s = start.intValues?.first, let l = limit.intValues?.first, let d = delta.intValues?.first {
            guard d != 0 else { throw ModelError("delta must not be 0") }
            let span = Double(l) - Double(s)
            let count = max(0, Int(exactly: (span / Double(d)).rounded(.up)) ?? 0)
            let tracked = count <= ValueFacts.trackedElementLimit ? (0..<count).map { Dim.value(s + $0 * d) } : nil
            return [ValueFacts(TensorType(type, [count]), ints: tracked)]
        }
        if let s = start.floats?.first, let l = limit.floats?.first, let d = delta.floats?.first {
            guard d != 0 else { throw ModelError("delta must not be 0") }
            guard let count = Int(exactly: max(((l - s) / d).rounded(.up), 0)) else {
                throw ModelError("start \(s), limit \(l) and delta \(d) give no valid length")
            }
            return [ValueFacts(TensorType(type, [count]))]
        }
        return [ValueFacts(TensorType(elementType: type, shape: [.unknown]))]
    }
}
