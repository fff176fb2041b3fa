/// Shape rules for convolutions and pooling over `[N, C, spatial...]` tensors.
enum ConvolutionRules {
    /// Kernel geometry shared by Conv, ConvTranspose and the pools, read with the spec's defaults.
    struct Window {
        var kernel: [Int]
        var strides: [Int]
        var dilations: [Int]
        /// Begin paddings then end paddings, as in the `pads` attribute.
        var pads: [Int]
        var autoPad: String
        var ceilMode: Bool

        init(_ c: ShapeContext, spatialRank: Int, kernel fromWeight: [Int]?) throws {
            let node = c.node
            guard let kernel = try node.ints("kernel_shape") ?? fromWeight else {
                throw ModelError("attribute 'kernel_shape' is required")
            }
            self.kernel = kernel
            strides = try node.ints("strides") ?? Array(repeating: 1, count: spatialRank)
            dilations = try node.ints("dilations") ?? Array(repeating: 1, count: spatialRank)
            pads = try node.ints("pads") ?? Array(repeating: 0, count: 2 * spatialRank)
            autoPad = try node.string("auto_pad", default: "NOTSET")
            ceilMode = try node.int("ceil_mode", default: 0) != 0
            for (name, values, count) in [("kernel_shape", kernel, spatialRank), ("strides", strides, spatialRank),
                                          ("dilations", dilations, spatialRank), ("pads", pads, 2 * spatialRank)] {
                guard values.count == count else {
                    throw ModelError("has \(values.count) values for \(spatialRank) spatial dimensions", field: "attribute '\(name)'")
                }
            }
            guard kernel.allSatisfy({ $0 > 0 }), strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }),
                  pads.allSatisfy({ $0 >= 0 && $0 < 1 << 32 }), kernel.allSatisfy({ $0 < 1 << 32 }),
                  strides.allSatisfy({ $0 < 1 << 32 }), dilations.allSatisfy({ $0 < 1 << 32 }) else {
                throw ModelError("kernel_shape, strides and dilations must be positive and pads non-negative")
            }
            guard ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"].contains(autoPad) else {
                throw ModelError("'\(autoPad)' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", field: "attribute 'auto_pad'")
            }
        }

        /// Output extent of spatial axis `i` for an input extent.
        func outputExtent(_ input: Dim, axis i: Int) throws -> Dim {
            let span = Dim.value((kernel[i] - 1) * dilations[i] + 1)
            let stride = Dim.value(strides[i])
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER": return try Dim.ceilDiv(input, stride)
            case "VALID": return try Dim.floorDiv(try input - span, stride) + .value(1)
            default:
                let padded = try input + .value(pads[i] + pads[i + kernel.count])
                let out = try (ceilMode ? Dim.ceilDiv(try padded - span, stride) : Dim.floorDiv(try padded - span, stride)) + .value(1)
                // With ceil_mode the last window must start inside the input or its begin padding.
                if ceilMode, let o = out.value, let n = input.value, (o - 1) * strides[i] >= n + pads[i] {
                    return .value(o - 1)
                }
                return out
            }
        }

        func spatialOutput(_ input: [Dim]) throws -> [Dim] {
            let out = try input.indices.map { try outputExtent(input[$0], axis: $0) }
            if let bad = out.first(where: { ($0.value ?? 1) < 1 }) {
                throw ModelError("output size \(bad) is not positive for input \(input)")
            }
            return out
        }
    }

    static func conv(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0), w = try c.input(1)
        guard let xs = x.shape, let ws = w.shape else { return c.unknownOutputs(x.elementType) }
        guard xs.count >= 3, ws.count == xs.count else {
            throw ModelError("input rank \(xs.count) and weight rank \(ws.count) do not make a convolution")
        }
        let group = try c.node.int("group", default: 1)
        guard group > 0 else { throw ModelError("must be positive", field: "attribute 'group'") }
        if let channels = xs[1].value, let perGroup = ws[1].value, channels != perGroup * group {
            throw ModelError("input has \(channels) channels but weight \(ws) with group \(group) expects \(perGroup * group)")
        }
        if let filters = ws[0].value, filters % group != 0 {
            throw ModelError("\(filters) filters are not divisible by group \(group)")
        }
        if let bias = try c.optionalInput(2)?.shape, let length = bias.first?.value, let filters = ws[0].value, length != filters {
            throw ModelError("bias has \(length) values for \(filters) filters")
        }
        let window = try Window(c, spatialRank: xs.count - 2, kernel: concrete(Array(ws.dropFirst(2))))
        return [ValueFacts(TensorType(elementType: x.elementType, shape: [xs[0], ws[0]] + (try window.spatialOutput(Array(xs.dropFirst(2))))))]
    }

    static func convTranspose(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0), w = try c.input(1)
        guard let xs = x.shape, let ws = w.shape else { return c.unknownOutputs(x.elementType) }
        guard xs.count >= 3, ws.count == xs.count else {
            throw ModelError("input rank \(xs.count) and weight rank \(ws.count) do not make a transposed convolution")
        }
        let group = try c.node.int("group", default: 1)
        guard group > 0 else { throw ModelError("must be positive", field: "attribute 'group'") }
        if let channels = xs[1].value, let weightChannels = ws[0].value, channels != weightChannels {
            throw ModelError("input has \(channels) channels but the weight expects \(weightChannels)")
        }
        let spatialRank = xs.count - 2
        let window = try Window(c, spatialRank: spatialRank, kernel: concrete(Array(ws.dropFirst(2))))
        let outputPadding = try c.node.ints("output_padding") ?? Array(repeating: 0, count: spatialRank)
        guard outputPadding.count == spatialRank else {
            throw ModelError("has \(outputPadding.count) values for \(spatialRank) spatial dimensions", field: "attribute 'output_padding'")
        }
        var spatial: [Dim]
        if let explicit = try c.node.ints("output_shape") {
            spatial = explicit.suffix(spatialRank).map { .value($0) }
        } else {
            spatial = try (0..<spatialRank).map { i in
                let input = xs[i + 2]
                if window.autoPad.hasPrefix("SAME") { return try input * .value(window.strides[i]) }
                let span = (window.kernel[i] - 1) * window.dilations[i] + 1
                let pads = window.autoPad == "VALID" ? 0 : window.pads[i] + window.pads[i + spatialRank]
                return try (try (try input - .value(1)) * .value(window.strides[i])) + .value(outputPadding[i] + span - pads)
            }
        }
        if let bad = spatial.first(where: { ($0.value ?? 1) < 1 }) {
            throw ModelError("output size \(bad) is not positive")
        }
        let filters = try ws[1] * .value(group)
        return [ValueFacts(TensorType(elementType: x.elementType, shape: [xs[0], filters] + spatial))]
    }

    static func pool(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let xs = x.shape else { return c.unknownOutputs(x.elementType) }
        guard xs.count >= 3 else { throw ModelError("pooling needs a [N, C, spatial...] input, got rank \(xs.count)") }
        let window = try Window(c, spatialRank: xs.count - 2, kernel: nil)
        let shape = [xs[0], xs[1]] + (try window.spatialOutput(Array(xs.dropFirst(2))))
        return [ValueFacts(TensorType(elementType: x.elementType, shape: shape)),
                ValueFacts(TensorType(elementType: .int64, shape: shape))]
    }

    static func globalPool(_ c: ShapeContext) throws -> [ValueFacts] {
        let x = try c.input(0)
        guard let xs = x.shape else { return c.unknownOutputs(x.elementType) }
        guard xs.count >= 3 else { throw ModelError("global pooling needs a [N, C, spatial...] input, got rank \(xs.count)") }
        return [ValueFacts(TensorType(elementType: x.elementType, shape: [xs[0], xs[1]] + Array(repeating: .value(1), count: xs.count - 2)))]
    }

    private static func concrete(_ dims: [Dim]) -> [Int]? {
        let values = dims.compactMap(\.value)
        return values.count == dims.count ? values : nil
    }
}
