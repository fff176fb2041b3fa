/// Shape rules for GatherElements, TopK, NonZero, Einsum, ArrayFeatureExtractor, DepthToSpace and SpaceToDepth.
enum IndexingRules {
    /// The output has the indices' shape and the data's type.
    static func gatherElements(_ c: ShapeContext) throws -> [ValueFacts] {
        let data = try c.input(0), indices = try c.input(1)
        if let d = data.shape, let i = indices.shape, d.count != i.count {
            throw ModelError("indices has rank \(i.count), data has rank \(d.count)")
        }
        return [ValueFacts(TensorType(elementType: data.elementType, shape: indices.shape))]
    }

    /// Values and int64 indices, the input's shape with K along the axis.
    static func topK(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard var shape = x.shape else { return [ValueFacts(TensorType(elementType: x.elementType, shape: nil)), ValueFacts(TensorType(elementType: .int64, shape: nil))] }
        let axis = try normalizedAxis(try c.node.int("axis", default: -1), rank: shape.count)
        let k = c.opset < 10 ? try c.node.int("k").map(Dim.value) : c.intValues(1)?.first.map(Dim.value)
        shape[axis] = k ?? .unknown
        return [ValueFacts(TensorType(elementType: x.elementType, shape: shape)), ValueFacts(TensorType(elementType: .int64, shape: shape))]
    }

    /// `[rank, number of non-zero elements]`; the count is known only at run time.
    static func nonZero(_ c: ShapeContext) throws -> [ValueFacts] {
        let rank = try c.shape(0)?.count
        return [ValueFacts(TensorType(elementType: .int64, shape: rank.map { [.value($0), .unknown] }))]
    }

    /// The elements at the given indices of the last axis; a 1-D input gives `[1, count]`.
    static func arrayFeatureExtractor(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        let count = try c.shape(1).map { try Dim.product($0) } ?? .unknown
        guard let shape = x.shape else { return c.unknownOutputs(x.elementType) }
        guard !shape.isEmpty else { throw ModelError("X must have at least one axis") }
        let dims = shape.count == 1 ? [.value(1), count] : Array(shape.dropLast()) + [count]
        return [ValueFacts(TensorType(elementType: x.elementType, shape: dims))]
    }

    /// Known when every operand's shape is concrete.
    static func einsum(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let equation = try c.node.string("equation") else { throw ModelError("is required", field: "attribute 'equation'") }
        let shapes = try c.inputs.indices.map { try c.input($0).type.concreteShape }
        guard let known = shapes as? [[Int]] else { return c.unknownOutputs(x.elementType) }
        let plan = try EinsumPlan(equation.filter { !$0.isWhitespace }, shapes: known)
        return [ValueFacts(TensorType(elementType: x.elementType, shape: plan.outputShape.map(Dim.value)))]
    }

    static func spaceDepth(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let block = try c.node.int("blocksize"), block > 0 else { throw ModelError("is required and must be positive", field: "attribute 'blocksize'") }
        guard let shape = x.shape else { return c.unknownOutputs(x.elementType) }
        guard shape.count == 4 else { throw ModelError("input must be 4-D (N, C, H, W), found \(shape)") }
        let b = Dim.value(block), square = Dim.value(block * block)
        let dims: [Dim]
        if c.node.opType == "DepthToSpace" {
            if let channels = shape[1].value, channels % (block * block) != 0 {
                throw ModelError("\(channels) channels are not a multiple of blocksize² = \(block * block)")
            }
            dims = [shape[0], try Dim.floorDiv(shape[1], square), try shape[2] * b, try shape[3] * b]
        } else {
            for d in shape[2...] { if let size = d.value, size % block != 0 { throw ModelError("spatial size \(size) is not a multiple of blocksize \(block)") } }
            dims = [shape[0], try shape[1] * square, try Dim.floorDiv(shape[2], b), try Dim.floorDiv(shape[3], b)]
        }
        return [ValueFacts(TensorType(elementType: x.elementType, shape: dims))]
    }
}
