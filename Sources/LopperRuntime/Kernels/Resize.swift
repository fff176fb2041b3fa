import Foundation
import LopperModel

/// Resize (opset 10 on) and Upsample: nearest, linear and cubic interpolation, separable per axis.
enum ResizeKernels {
    static let all: [KernelVersion] = [
        KernelVersion("Upsample") { setup in
            try Resize(setup, legacyScales: try setup.node.floats("scales"), scalesInput: nil)
        },
        KernelVersion("Upsample", since: 9) { setup in try Resize(setup, legacyScales: nil, scalesInput: 1) },
        KernelVersion("Resize", since: 10) { setup in try Resize(setup, legacyScales: nil, scalesInput: 1) },
        KernelVersion("Resize", since: 11) { setup in try Resize(setup, legacyScales: nil, scalesInput: 2) },
    ]

    struct Resize: Kernel {
        let mode: String
        let coordinates: String
        let nearest: String
        let cubicA: Float
        let excludeOutside: Bool
        let extrapolation: Float
        let keepAspect: String
        let axes: [Int]?
        let legacyScales: [Float]?
        /// Position of the scales input; sizes follow it (opset 11 on).
        let scalesInput: Int?

        init(_ setup: KernelSetup, legacyScales: [Float]?, scalesInput: Int?) throws {
            let node = setup.node, modern = setup.opset >= 11 && node.opType == "Resize"
            mode = try node.string("mode", default: "nearest").lowercased()
            guard ["nearest", "linear", "bilinear", "cubic"].contains(mode) else { throw ModelError("'\(mode)' is not supported", field: "attribute 'mode'") }
            coordinates = modern ? try node.string("coordinate_transformation_mode", default: "half_pixel") : "asymmetric"
            let known = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize", "half_pixel_symmetric"]
            guard known.contains(coordinates) else { throw ModelError("'\(coordinates)' is not supported", field: "attribute 'coordinate_transformation_mode'") }
            nearest = modern ? try node.string("nearest_mode", default: "round_prefer_floor") : "floor"
            cubicA = try node.float("cubic_coeff_a", default: -0.75)
            excludeOutside = try node.int("exclude_outside", default: 0) != 0
            extrapolation = try node.float("extrapolation_value", default: 0)
            keepAspect = try node.string("keep_aspect_ratio_policy", default: "stretch")
            axes = try node.ints("axes")
            if try node.int("antialias", default: 0) != 0 { throw ModelError("antialiasing is not supported", field: "attribute 'antialias'") }
            self.legacyScales = legacyScales
            self.scalesInput = scalesInput
        }

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            var x = try inputs.required(0)
            let original = x.elementType
            if x.kind != .float { x = try Cast.convert(x, to: .float32) }
            let rank = x.rank
            let axes = try (self.axes ?? Array(0..<rank)).map { try normalizeAxis($0, rank: rank) }
            var scales = [Float](repeating: 1, count: rank)
            var sizes = x.shape
            let givenScales = legacyScales ?? scalesInput.flatMap { inputs.optional($0) }.map(\.floats) ?? []
            let givenSizes = scalesInput.flatMap { inputs.optional($0 + 1) }?.ints ?? []
            if !givenSizes.isEmpty {
                guard givenSizes.count == axes.count else { throw ModelError("sizes \(givenSizes) do not fit axes \(axes)") }
                if keepAspect == "stretch" {
                    for (k, axis) in axes.enumerated() { sizes[axis] = givenSizes[k] }
                } else {
                    let ratios = axes.enumerated().map { Float(givenSizes[$0.offset]) / Float(x.shape[$0.element]) }
                    let ratio = keepAspect == "not_larger" ? ratios.min()! : ratios.max()!
                    for axis in axes { sizes[axis] = try Self.size((ratio * Float(x.shape[axis])).rounded()) }
                }
                for axis in axes { scales[axis] = Float(sizes[axis]) / Float(x.shape[axis]) }
            } else {
                guard givenScales.count == axes.count else { throw ModelError("scales \(givenScales) do not fit axes \(axes) of input \(x.shape)") }
                for (k, axis) in axes.enumerated() {
                    guard givenScales[k] > 0 else { throw ModelError("scales \(givenScales) must be positive") }
                    scales[axis] = givenScales[k]
                    sizes[axis] = try Self.size(Float(x.shape[axis]) * givenScales[k])
                }
            }
            try AllocationLimit.check(x.elementType, shape: sizes)
            var roi = [Float](repeating: 0, count: rank) + [Float](repeating: 1, count: rank)
            if coordinates == "tf_crop_and_resize", scalesInput == 2, let given = inputs.optional(1)?.floats, !given.isEmpty {
                guard given.count == 2 * axes.count else { throw ModelError("roi \(given) does not fit axes \(axes)") }
                for (k, axis) in axes.enumerated() { roi[axis] = given[k]; roi[axis + rank] = given[k + axes.count] }
            }
            let taps = (0..<rank).map { axis in
                weights(input: x.shape[axis], output: sizes[axis], scale: scales[axis], roiStart: roi[axis], roiEnd: roi[axis + rank])
            }
            if taps.allSatisfy({ $0.allSatisfy { $0.count == 1 && $0[0].0 >= 0 } }) {
                // Nearest neighbour (or identity): a pure gather.
                let maps = taps.map { $0.map { $0[0].0 } }
                return [try Cast.convert(try remap(x, shape: sizes, maps: maps, strides: strides(of: x.shape)), to: original)]
            }
            let out = try Tensor(uninitialized: .float32, shape: sizes)
            interpolate(x, out, taps, context)
            return [try Cast.convert(out, to: original)]
        }

        /// For each output index along one axis: input indices and weights (index -1 = extrapolate).
        private func weights(input: Int, output: Int, scale: Float, roiStart: Float, roiEnd: Float) -> [[(Int, Float)]] {
            (0..<output).map { o in
                if input == output && scale == 1 && coordinates != "tf_crop_and_resize" { return [(o, Float(1))] }
                let x = Float(o)
                // The spec's resized length is fractional when scales are given.
                let resized = scale * Float(input)
                var source: Float
                switch coordinates {
                case "half_pixel": source = (x + 0.5) / scale - 0.5
                case "pytorch_half_pixel": source = resized > 1 ? (x + 0.5) / scale - 0.5 : 0
                case "align_corners": source = resized == 1 ? 0 : x * Float(input - 1) / (resized - 1)
                case "tf_half_pixel_for_nn": source = (x + 0.5) / scale
                case "half_pixel_symmetric":
                    let adjustment = Float(output) / (scale * Float(input))
                    source = Float(input) / 2 * (1 - adjustment) + (x + 0.5) / scale - 0.5
                case "tf_crop_and_resize":
                    source = resized > 1 ? roiStart * Float(input - 1) + x * (roiEnd - roiStart) * Float(input - 1) / (resized - 1)
                        : 0.5 * (roiStart + roiEnd) * Float(input - 1)
                    if source < 0 || source > Float(input - 1) { return [(-1, Float(1))] }
                default: source = x / scale
                }
                func clamp(_ i: Int) -> Int { Swift.min(Swift.max(i, 0), input - 1) }
                switch mode {
                case "nearest":
                    let index: Int
                    switch nearest {
                    case "floor": index = Int(source.rounded(.down))
                    case "ceil": index = Int(source.rounded(.up))
                    case "round_prefer_ceil": index = Int(source.rounded(.toNearestOrAwayFromZero))
                    default:
                        let f = source.rounded(.down)
                        index = source - f == 0.5 ? Int(f) : Int(source.rounded(.toNearestOrAwayFromZero))
                    }
                    return [(clamp(index), Float(1))]
                case "cubic":
                    let i0 = Int(source.rounded(.down)), r = source - Float(i0), a = cubicA
                    let d = [r + 1, r, 1 - r, 2 - r]
                    var list = d.enumerated().map { k, t -> (Int, Float) in
                        let w = t <= 1 ? ((a + 2) * t - (a + 3)) * t * t + 1 : ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
                        return (i0 - 1 + k, w)
                    }
                    if excludeOutside {
                        list = list.filter { $0.0 >= 0 && $0.0 < input }
                        let total = list.reduce(0) { $0 + $1.1 }
                        return list.map { ($0.0, $0.1 / total) }
                    }
                    return list.map { (clamp($0.0), $0.1) }
                default:
                    let s = Swift.min(Swift.max(source, 0), Float(input - 1))
                    let i0 = Int(s.rounded(.down)), r = s - Float(i0)
                    return r == 0 ? [(i0, Float(1))] : [(i0, 1 - r), (clamp(i0 + 1), r)]
                }
            }
        }

        /// Sums input elements weighted by the product of per-axis weights, axis by axis from the last.
        private func interpolate(_ x: Tensor, _ out: Tensor, _ taps: [[[(Int, Float)]]], _ context: ExecutionContext) {
            let rank = x.rank
            let inStrides = strides(of: x.shape)
            let fill = extrapolation
            let src = x.f, dst = out.f
            guard rank > 0 else { dst[0] = src[0]; return }
            // Output rows over the leading axes run in parallel.
            let outerShape = Array(out.shape.dropLast()), inner = out.shape.last!
            let rows = outerShape.reduce(1, *)
            let lastTaps = taps[rank - 1], lastStride = inStrides[rank - 1]
            context.parallel(rows, cost: rows * inner * 8) { range in
                for row in range {
                    // Combine taps of the leading axes into (offset, weight) pairs.
                    var terms: [(Int, Float)] = [(0, 1)]
                    var rest = row
                    var outside = false
                    for axis in stride(from: rank - 2, through: 0, by: -1) {
                        let index = rest % outerShape[axis]
                        rest /= outerShape[axis]
                        let axisTaps = taps[axis][index]
                        if axisTaps.contains(where: { $0.0 < 0 }) { outside = true; break }
                        terms = terms.flatMap { t in axisTaps.map { (t.0 + $0.0 * inStrides[axis], t.1 * $0.1) } }
                    }
                    let line = dst + row * inner
                    if outside { line.update(repeating: fill, count: inner); continue }
                    for o in 0..<inner {
                        let last = lastTaps[o]
                        if last[0].0 < 0 { line[o] = fill; continue }
                        var sum: Float = 0
                        for (offset, weight) in terms {
                            for (i, w) in last { sum += weight * w * src[offset + i * lastStride] }
                        }
                        line[o] = sum
                    }
                }
            }
        }

        /// An output size from a float product, refusing what no Int holds.
        static func size(_ value: Float) throws -> Int {
            guard value.isFinite, value >= 0, value < 1e15 else { throw ModelError("output size \(value) is not a usable size") }
            return Int(value)
        }
    }
}
