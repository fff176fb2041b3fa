/// Shape rules for operators that rearrange data: reshaping, transposing, joining, slicing.
/// Small integer tensors are folded through them so computed `Reshape` targets are known.
enum LayoutRules {
    static func reshape(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        // The target's elements may be symbolic: `Concat(Gather(Shape(x)), …)` copies x's sizes.
        let target: [Dim]?
        if c.opset < 5 {
            target = try c.node.ints("shape")?.map(Dim.value)
        } else {
            target = c.optionalInput(1)?.ints
            if target == nil, let rank = try c.shape(1)?.first?.value {
                return [ValueFacts(TensorType(elementType: x.elementType, shape: Array(repeating: .unknown, count: rank)))]
            }
        }
        guard let target else { return c.unknownOutputs(x.elementType) }
        let allowZero = try c.node.int("allowzero", default: 0) != 0
        guard target.filter({ $0 == .value(-1) }).count <= 1, target.allSatisfy({ ($0.value ?? 0) >= -1 }) else {
            throw ModelError("target shape \(target) may hold at most one -1 and no other negative value")
        }
        var dims: [Dim] = try target.enumerated().map { i, t in
            if t == .value(0) && !allowZero {
                guard let xs = x.shape else { return .unknown }
                guard i < xs.count else { throw ModelError("target shape \(target) copies dimension \(i) of a rank-\(xs.count) input") }
                return xs[i]
            }
            return t == .value(-1) ? .unknown : t
        }
        if let inferred = target.firstIndex(of: .value(-1)) {
            dims[inferred] = try inferMissing(input: x.shape, known: dims.enumerated().filter { $0.offset != inferred }.map(\.element))
        } else if let input = x.shape, let a = try Dim.product(input).value, let b = try Dim.product(dims).value, a != b {
            throw ModelError("cannot reshape \(input) (\(a) elements) to \(dims) (\(b) elements)")
        }
        return [ValueFacts(TensorType(elementType: x.elementType, shape: dims), ints: x.ints)]
    }

    /// The `-1` of a reshape: input elements divided by the other target dimensions, cancelling
    /// matching symbols so `[N, 64, 4] → [N, -1]` gives `256`.
    private static func inferMissing(input: [Dim]?, known: [Dim]) throws -> Dim {
        guard let input else { return .unknown }
        var symbols = input.filter { $0.value == nil }
        var numerator = try Dim.product(input.filter { $0.value != nil }).value ?? 1
        var denominator = 1
        for dim in known {
            if let v = dim.value {
                denominator = try Dim.checked(Int.multipliedReportingOverflow, denominator, v)
            } else if let match = symbols.firstIndex(where: { $0 == dim && $0 != .unknown }) {
                symbols.remove(at: match)
            } else {
                return .unknown
            }
        }
        guard denominator != 0 else { return .unknown }
        guard numerator % denominator == 0 else {
            if symbols.isEmpty { throw ModelError("cannot reshape \(input) into \(known) plus an inferred dimension") }
            return .unknown
        }
        numerator /= denominator
        if symbols.isEmpty { return .value(numerator) }
        if symbols.count == 1, numerator == 1 { return symbols[0] }
        return .unknown
    }

    static func flatten(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let xs = x.shape else { return c.unknownOutputs(x.elementType) }
        var axis = try c.node.int("axis", default: 1)
        if axis < 0 { axis += xs.count }
        guard axis >= 0, axis <= xs.count else { throw ModelError("axis is out of range for rank \(xs.count)", field: "attribute 'axis'") }
        return [ValueFacts(TensorType(elementType: x.elementType, shape: [try Dim.product(xs[..<axis]), try Dim.product(xs[axis...])]))]
    }

    static func transpose(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let xs = x.shape else { return c.unknownOutputs(x.elementType) }
        let perm = try c.node.ints("perm") ?? Array((0..<xs.count).reversed())
        guard perm.sorted() == Array(0..<xs.count) else {
            throw ModelError("\(perm) is not a permutation of \(xs.count) axes", field: "attribute 'perm'")
        }
        return [ValueFacts(TensorType(elementType: x.elementType, shape: perm.map { xs[$0] }))]
    }

    static func squeeze(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let xs = x.shape else { return c.unknownOutputs(x.elementType) }
        let axes: [Int]
        switch try c.list("axes", attributeBefore: 13, input: 1) {
        case .unknown: return c.unknownOutputs(x.elementType)
        case .absent:
            guard xs.allSatisfy({ $0.value != nil }) else { return c.unknownOutputs(x.elementType) }
            axes = xs.indices.filter { xs[$0] == .value(1) }
        case .known(let given):
            axes = try given.map { try normalizedAxis($0, rank: xs.count, name: "axis") }
            for axis in axes where (xs[axis].value ?? 1) != 1 {
                throw ModelError("cannot squeeze axis \(axis) of size \(xs[axis])")
            }
        }
        let dims = xs.indices.filter { !axes.contains($0) }.map { xs[$0] }
        return [ValueFacts(TensorType(elementType: x.elementType, shape: dims), ints: x.ints)]
    }

    static func unsqueeze(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let xs = x.shape, case .known(let given) = try c.list("axes", attributeBefore: 13, input: 1) else {
            return c.unknownOutputs(x.elementType)
        }
        let rank = xs.count + given.count
        let axes = Set(try given.map { try normalizedAxis($0, rank: rank, name: "axis") })
        guard axes.count == given.count else { throw ModelError("axes \(given) repeat an axis") }
        var rest = xs.makeIterator()
        let dims = (0..<rank).map { axes.contains($0) ? Dim.value(1) : rest.next()! }
        return [ValueFacts(TensorType(elementType: x.elementType, shape: dims), ints: x.ints)]
    }

    static func concat(_ c: ShapeContext) throws -> [ValueFacts] {
        let parts = try c.inputs.indices.compactMap { c.inputs[$0] == nil ? nil : try c.input($0) }
        guard let first = parts.first else { throw ModelError("needs at least one input") }
        guard let axisValue = try c.node.int("axis") else { throw ModelError("attribute 'axis' is required") }
        let shapes = parts.compactMap(\.shape)
        var facts = ValueFacts(TensorType(elementType: first.elementType, shape: nil))
        if shapes.count == parts.count, let rank = shapes.first?.count {
            guard shapes.allSatisfy({ $0.count == rank }) else { throw ModelError("inputs have different ranks: \(shapes)") }
            let axis = try normalizedAxis(axisValue, rank: rank)
            facts.type.shape = try (0..<rank).map { i in
                if i == axis { return try shapes.reduce(Dim.value(0)) { try $0 + $1[i] } }
                let known = shapes.compactMap { $0[i].value }
                if let a = known.first, known.contains(where: { $0 != a }) {
                    throw ModelError("inputs disagree on dimension \(i): \(shapes.map { $0[i] })")
                }
                return known.first.map(Dim.value) ?? shapes[0][i]
            }
            if rank <= 1 {
                let all = parts.compactMap(\.ints)
                if all.count == parts.count { facts.ints = all.flatMap { $0 } }
            }
        }
        return [facts]
    }

    static func split(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        let count = c.node.outputs.count
        guard let xs = x.shape else { return c.unknownOutputs(x.elementType) }
        let axis = try normalizedAxis(try c.node.int("axis", default: 0), rank: xs.count)
        var sizes: [Dim]
        switch try c.list("split", attributeBefore: 13, input: 1) {
        case .unknown: sizes = Array(repeating: .unknown, count: count)
        case .known(let given):
            guard given.count == count, given.allSatisfy({ $0 >= 0 }) else {
                throw ModelError("split sizes \(given) do not fit \(count) outputs")
            }
            if let total = xs[axis].value, given.reduce(0, +) != total {
                throw ModelError("split sizes \(given) do not add up to dimension \(total)")
            }
            sizes = given.map { .value($0) }
        case .absent:
            // Equal parts; from opset 18 the last may be smaller.
            guard let total = xs[axis].value else { sizes = Array(repeating: .unknown, count: count); break }
            let part = (total + count - 1) / count
            if c.opset < 18 || !c.node.hasAttribute("num_outputs") {
                guard total % count == 0 else { throw ModelError("dimension \(total) does not split into \(count) equal parts") }
            }
            sizes = (0..<count).map { .value(max(0, min(part, total - $0 * part))) }
        }
        return sizes.map { size in
            var dims = xs
            dims[axis] = size
            return ValueFacts(TensorType(elementType: x.elementType, shape: dims))
        }
    }

    static func slice(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let xs = x.shape else { return c.unknownOutputs(x.elementType) }
        let starts, ends: [Int]?
        var axes: [Int]?, steps: [Int]?
        if c.opset < 10 {
            starts = try c.node.ints("starts"); ends = try c.node.ints("ends"); axes = try c.node.ints("axes")
        } else {
            starts = c.intValues(1); ends = c.intValues(2)
            axes = c.optionalInput(3) == nil ? nil : c.intValues(3)
            steps = c.optionalInput(4) == nil ? nil : c.intValues(4)
            if (c.optionalInput(3) != nil && axes == nil) || (c.optionalInput(4) != nil && steps == nil) { return c.unknownOutputs(x.elementType) }
        }
        guard let starts, let ends else {
            return [ValueFacts(TensorType(elementType: x.elementType, shape: xs.map { _ in .unknown }))]
        }
        let resolvedAxes = try (axes ?? Array(0..<starts.count)).map { try normalizedAxis($0, rank: xs.count) }
        let resolvedSteps = steps ?? Array(repeating: 1, count: starts.count)
        guard ends.count == starts.count, resolvedAxes.count == starts.count, resolvedSteps.count == starts.count else {
            throw ModelError("starts, ends, axes and steps have different lengths")
        }
        guard resolvedSteps.allSatisfy({ $0 != 0 }) else { throw ModelError("steps must not be 0") }
        var dims = xs
        var ints = x.ints
        for (k, axis) in resolvedAxes.enumerated() {
            guard let extent = xs[axis].value else { dims[axis] = .unknown; ints = nil; continue }
            let range = sliceRange(start: starts[k], end: ends[k], step: resolvedSteps[k], extent: extent)
            dims[axis] = .value(range.count)
            if let values = ints, xs.count == 1, values.count == extent {
                ints = range.indices.map { values[$0] }
            } else {
                ints = nil
            }
        }
        return [ValueFacts(TensorType(elementType: x.elementType, shape: dims), ints: xs.count == 1 ? ints : nil)]
    }

    /// The elements a Slice selects along one axis, after the spec's clamping.
    struct SliceRange {
        var start: Int
        var step: Int
        var count: Int
        var indices: [Int] { (0..<count).map { start + $0 * step } }
    }

    static func sliceRange(start: Int, end: Int, step: Int, extent: Int) -> SliceRange {
        func resolve(_ v: Int) -> Int { v < 0 ? (v < -extent ? -1 : v + extent) : min(v, extent) }
        var s = resolve(start), e = resolve(end)
        if step > 0 {
            s = min(max(s, 0), extent); e = min(max(e, 0), extent)
        } else {
            s = min(max(s, -1), extent - 1); e = min(max(e, -1), extent - 1)
        }
        // Both ends now lie in [-1, extent]; divide the magnitude so a huge step cannot overflow.
        let span = e - s
        let count: Int
        if step > 0 {
            count = span <= 0 ? 0 : 1 + (span - 1) / step
        } else {
            count = span >= 0 ? 0 : 1 + (-span - 1) / step.magnitude.clampedToInt
        }
        return SliceRange(start: s, step: step, count: count)
    }

    static func gather(_ c: ShapeContext) throws -> [ValueFacts] {
        let data = try c.input(0), indices = try c.input(1)
        guard let ds = data.shape, let indexShape = indices.shape else { return c.unknownOutputs(data.elementType) }
        let axis = try normalizedAxis(try c.node.int("axis", default: 0), rank: ds.count)
        let shape = Array(ds[..<axis]) + indexShape + Array(ds[(axis + 1)...])
        var facts = ValueFacts(TensorType(elementType: data.elementType, shape: shape))
        if ds.count == 1, let values = data.ints, let picks = indices.intValues {
            facts.ints = try picks.map { i in
                let j = i < 0 ? i + values.count : i
                guard j >= 0, j < values.count else { throw ModelError("index \(i) is out of range for \(values.count) elements") }
                return values[j]
            }
        }
        return [facts]
    }

    static func expand(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let target = c.optionalInput(1)?.ints else { return c.unknownOutputs(x.elementType) }
        let shape = try broadcast([x.shape, target])
        return [ValueFacts(TensorType(elementType: x.elementType, shape: shape))]
    }

    static func tile(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let xs = x.shape, let repeats = c.intValues(1) else { return c.unknownOutputs(x.elementType) }
        guard repeats.count == xs.count, repeats.allSatisfy({ $0 >= 0 }) else {
            throw ModelError("repeats \(repeats) do not fit rank \(xs.count)")
        }
        return [ValueFacts(TensorType(elementType: x.elementType, shape: try zip(xs, repeats).map { try $0 * .value($1) }))]
    }

    static func pad(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let xs = x.shape else { return c.unknownOutputs(x.elementType) }
        guard case .known(let pads) = try c.list("pads", attributeBefore: 11, input: 1) else {
            return [ValueFacts(TensorType(elementType: x.elementType, shape: xs.map { _ in .unknown }))]
        }
        var axes = Array(0..<xs.count)
        if c.opset >= 18, let given = c.optionalInput(3) {
            guard let values = given.intValues else { return c.unknownOutputs(x.elementType) }
            axes = try values.map { try normalizedAxis($0, rank: xs.count) }
        }
        guard pads.count == 2 * axes.count else { throw ModelError("pads \(pads) do not fit \(axes.count) axes") }
        var dims = xs
        for (k, axis) in axes.enumerated() {
            dims[axis] = try xs[axis] + (try Dim.value(pads[k]) + .value(pads[k + axes.count]))
            if (dims[axis].value ?? 0) < 0 { throw ModelError("pads \(pads) make dimension \(axis) negative") }
        }
        return [ValueFacts(TensorType(elementType: x.elementType, shape: dims))]
    }

    /// Resize (opset 10+) and Upsample: sizes when given, otherwise floor(input × scale).
    static func resize(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let xs = x.shape else { return c.unknownOutputs(x.elementType) }
        let scales: [Double]?
        var sizes: [Int]? = nil
        if c.node.opType == "Upsample" {
            scales = c.opset < 9 ? try c.node.floats("scales")?.map(Double.init) : c.optionalInput(1)?.floats
        } else if c.opset < 11 {
            scales = c.optionalInput(1)?.floats
        } else {
            sizes = c.intValues(3)
            let given = c.optionalInput(2)?.floats
            scales = (given?.isEmpty ?? true) ? nil : given
            if sizes == nil, scales == nil {
                return [ValueFacts(TensorType(elementType: x.elementType, shape: xs.map { _ in .unknown }))]
            }
        }
        let axes = try (c.opset >= 18 ? c.node.ints("axes") : nil)?.map { try normalizedAxis($0, rank: xs.count) } ?? Array(xs.indices)
        var dims = xs
        if let sizes {
            guard sizes.count == axes.count else { throw ModelError("sizes \(sizes) do not fit \(axes.count) axes") }
            for (k, axis) in axes.enumerated() { dims[axis] = .value(sizes[k]) }
        } else if let scales {
            guard scales.count == axes.count else { throw ModelError("scales \(scales) do not fit \(axes.count) axes") }
            guard scales.allSatisfy({ $0 > 0 && $0 < 1e6 }) else { throw ModelError("scales \(scales) must be positive") }
            for (k, axis) in axes.enumerated() {
                if let extent = xs[axis].value {
                    guard let scaled = Int(exactly: (Double(extent) * scales[k]).rounded(.down)) else {
                        throw ModelError("scale \(scales[k]) of dimension \(extent) is out of range")
                    }
                    dims[axis] = .value(scaled)
                } else {
                    dims[axis] = scales[k] == 1 ? xs[axis] : .unknown
                }
            }
        } else {
            dims = xs.map { _ in .unknown }
        }
        return [ValueFacts(TensorType(elementType: x.elementType, shape: dims))]
    }
}

private extension UInt {
    var clampedToInt: Int { self > UInt(Int.max) ? Int.max : Int(self) }
}
