import LopperModel
@testable import LopperRuntime
import LopperTesting
import Testing

/// The tap convolution (`TapConvolution`, `lopper_conv_taps`) against a plain loop summed in
/// double precision, over strides, pads, dilations, groups and odd sizes, and bit-identical
/// across thread counts.
struct ConvTapsTests {
    struct Case: CustomTestStringConvertible {
        var batch = 1, channels: Int, height: Int, width: Int, filters: Int
        var kernel: [Int], strides = [1, 1], dilations = [1, 1]
        /// Top, left, bottom, right.
        var pads = [0, 0, 0, 0]
        var group = 1
        var bias = true
        /// The weights as a graph input rather than a constant (packed per run).
        var weightsAsInput = false
        var oneDimensional: Bool { height == 0 }

        var testDescription: String {
            "\(batch)x\(channels)x\(height)x\(width) → \(filters), k\(kernel) s\(strides) d\(dilations) p\(pads) g\(group)"
        }

        var inputShape: [Int] { oneDimensional ? [batch, channels, width] : [batch, channels, height, width] }
        var weightShape: [Int] { [filters, channels / group] + kernel }
        var outputSize: [Int] {
            let input = oneDimensional ? [width] : [height, width]
            let axes = input.count
            return (0..<axes).map { a in
                (input[a] + pads[a] + pads[a + axes] - dilations[a] * (kernel[a] - 1) - 1) / strides[a] + 1
            }
        }
    }

    static let cases: [Case] = [
        // YOLOv8's shapes, small: 3×3 stride 1 and 2, 1×1, the stem.
        Case(channels: 16, height: 20, width: 20, filters: 16, kernel: [3, 3], pads: [1, 1, 1, 1]),
        Case(channels: 16, height: 21, width: 19, filters: 32, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
        Case(channels: 48, height: 10, width: 10, filters: 32, kernel: [1, 1]),
        Case(channels: 3, height: 33, width: 31, filters: 16, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
        // Filters not a multiple of any block, odd sizes, positions fewer than a tile.
        Case(channels: 5, height: 7, width: 9, filters: 13, kernel: [3, 3], pads: [1, 1, 1, 1]),
        Case(channels: 7, height: 3, width: 2, filters: 3, kernel: [1, 1], bias: false),
        Case(channels: 2, height: 1, width: 1, filters: 9, kernel: [1, 1]),
        // Asymmetric and large pads, rectangular kernels, mixed strides, dilations.
        Case(channels: 4, height: 11, width: 13, filters: 6, kernel: [2, 3], strides: [1, 2], pads: [0, 2, 1, 0]),
        Case(channels: 3, height: 12, width: 15, filters: 10, kernel: [3, 3], dilations: [2, 3], pads: [2, 3, 2, 3]),
        Case(channels: 3, height: 14, width: 14, filters: 5, kernel: [3, 2], strides: [3, 2], dilations: [2, 1], pads: [1, 0, 2, 1]),
        Case(channels: 2, height: 5, width: 6, filters: 4, kernel: [5, 5], pads: [4, 4, 4, 4]),
        Case(channels: 6, height: 9, width: 9, filters: 8, kernel: [1, 1], strides: [2, 2]),
        Case(channels: 6, height: 8, width: 8, filters: 8, kernel: [1, 1], pads: [1, 0, 0, 1]),
        // Groups (not depthwise), a batch, weights known only at run time, 1-D.
        Case(channels: 8, height: 9, width: 10, filters: 12, kernel: [3, 3], pads: [1, 1, 1, 1], group: 4),
        Case(channels: 6, height: 7, width: 7, filters: 6, kernel: [1, 1], group: 3),
        Case(batch: 3, channels: 5, height: 6, width: 11, filters: 7, kernel: [3, 3], strides: [2, 1], pads: [1, 1, 0, 1]),
        Case(batch: 2, channels: 4, height: 10, width: 10, filters: 9, kernel: [3, 3], pads: [1, 1, 1, 1], weightsAsInput: true),
        Case(channels: 5, height: 0, width: 40, filters: 11, kernel: [3], strides: [2], dilations: [2], pads: [2, 1]),
        Case(batch: 2, channels: 3, height: 0, width: 17, filters: 4, kernel: [1], strides: [1], dilations: [1], pads: [0, 0]),
        // 1×1 Convs with enough channels for OpenBLAS (fixed blocks of filters and positions).
        Case(channels: 200, height: 9, width: 7, filters: 70, kernel: [1, 1]),
        Case(batch: 2, channels: 384, height: 50, width: 45, filters: 130, kernel: [1, 1], group: 2),
        // An empty batch (a 1×1 read in place, and one through the padded copy).
        Case(batch: 0, channels: 3, height: 5, width: 5, filters: 4, kernel: [1, 1]),
        Case(batch: 0, channels: 3, height: 5, width: 5, filters: 4, kernel: [3, 3], pads: [1, 1, 1, 1]),
        // Enough positions for several work items per image, and many taps.
        Case(channels: 32, height: 70, width: 66, filters: 24, kernel: [3, 3], pads: [1, 1, 1, 1]),
    ]

    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var random = SeededGenerator(seed: seed)
        return (0..<count).map { _ in random.normal() }
    }

    /// The convolution by its definition, summed in double precision, and per output the sum of
    /// its terms' magnitudes (what bounds the float rounding error).
    static func reference(_ c: Case, x: [Float], w: [Float], b: [Float]) -> (values: [Double], magnitudes: [Double]) {
        let (H, W) = c.oneDimensional ? (1, c.width) : (c.height, c.width)
        let out = c.outputSize, (oh, ow) = c.oneDimensional ? (1, out[0]) : (out[0], out[1])
        let (kh, kw) = c.oneDimensional ? (1, c.kernel[0]) : (c.kernel[0], c.kernel[1])
        let (sh, sw) = c.oneDimensional ? (1, c.strides[0]) : (c.strides[0], c.strides[1])
        let (dh, dw) = c.oneDimensional ? (1, c.dilations[0]) : (c.dilations[0], c.dilations[1])
        let (top, left) = c.oneDimensional ? (0, c.pads[0]) : (c.pads[0], c.pads[1])
        let cinG = c.channels / c.group, coutG = c.filters / c.group
        var y = [Double](repeating: 0, count: c.batch * c.filters * oh * ow), magnitudes = y
        for n in 0..<c.batch { for m in 0..<c.filters { for oy in 0..<oh { for ox in 0..<ow {
            var sum = c.bias ? Double(b[m]) : 0, magnitude = abs(sum)
            for ci in 0..<cinG { for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * sh - top + ky * dh, ix = ox * sw - left + kx * dw
                guard iy >= 0, iy < H, ix >= 0, ix < W else { continue }
                let channel = (m / coutG) * cinG + ci
                let term = Double(x[((n * c.channels + channel) * H + iy) * W + ix]) * Double(w[((m * cinG + ci) * kh + ky) * kw + kx])
                sum += term
                magnitude += abs(term)
            } } }
            y[((n * c.filters + m) * oh + oy) * ow + ox] = sum
            magnitudes[((n * c.filters + m) * oh + oy) * ow + ox] = magnitude
        } } } }
        return (y, magnitudes)
    }

    static func model(_ c: Case, w: [Float], b: [Float]) throws -> Model {
        var builder = ModelBuilder(opset: 13)
        builder.input("x", c.inputShape)
        if c.weightsAsInput { builder.input("w", c.weightShape) } else { builder.constant("w", floats: w, shape: c.weightShape) }
        builder.constant("b", floats: b, shape: [c.filters])
        builder.node("Conv", c.bias ? ["x", "w", "b"] : ["x", "w"], ["y"],
                     ints: ["group": c.group], intLists: ["strides": c.strides, "dilations": c.dilations, "pads": c.pads])
        builder.output("y")
        return try builder.model()
    }

    @Test(arguments: cases)
    func matchesTheDefinitionAndNotTheThreadCount(_ c: Case) throws {
        let x = Self.random(c.inputShape.reduce(1, *), seed: 1)
        let w = Self.random(c.weightShape.reduce(1, *), seed: 2), b = Self.random(c.filters, seed: 3)
        let model = try Self.model(c, w: w, b: b)
        var feeds = ["x": Tensor(floats: x, shape: c.inputShape)]
        if c.weightsAsInput { feeds["w"] = Tensor(floats: w, shape: c.weightShape) }
        let expected = Self.reference(c, x: x, w: w, b: b)
        // Summing n terms in float, one rounding each, errs by at most about n·2⁻²⁴ times the
        // sum of their magnitudes (the taps, the bias, and one for the products' own rounding).
        let terms = Double(c.weightShape.dropFirst().reduce(1, *) + 2)
        var first: [UInt32]?
        for threads in [1, 2, 3] {
            let y = try #require(try Executor(model: model, options: ExecutorOptions(threads: threads)).run(feeds)["y"])
            #expect(y.shape == [c.batch, c.filters] + c.outputSize)
            let values = y.floats
            var worst = 0.0
            for i in values.indices {
                let error = abs(Double(values[i]) - expected.values[i])
                let bound: Double = terms * 0x1p-24 * expected.magnitudes[i]
                worst = Swift.max(worst, error / Swift.max(bound, .leastNormalMagnitude))
            }
            #expect(worst <= 1, "threads \(threads): largest error \(worst) of the bound")
            let bits = values.map(\.bitPattern)
            if let first { #expect(bits == first, "threads \(threads) differ from one thread") } else { first = bits }
        }
    }

    @Test func packedWeightsAreTheBlocksTheKernelReads() throws {
        // Two groups of three filters of four taps: each group's filters in blocks of `rows`,
        // tap-major, zero past the group's last filter.
        let weights = Tensor(floats: (0..<24).map(Float.init), shape: [6, 4, 1, 1])
        let packed = try #require(PackedConvWeights(weights, group: 2))
        let rows = PackedConvWeights.rows
        #expect(packed.taps == 4 && packed.blocksPerGroup == (3 + rows - 1) / rows)
        for g in 0..<2 {
            let block = packed.first(ofGroup: g)
            for filter in 0..<(packed.blocksPerGroup * rows) { for t in 0..<4 {
                let expected: Float = filter < 3 ? Float((g * 3 + filter) * 4 + t) : 0
                #expect(block[(filter / rows) * rows * 4 + t * rows + filter % rows] == expected)
            } }
        }
        #expect(packed.packs(weights))
        #expect(!packed.packs(Tensor(floats: (0..<24).map(Float.init), shape: [6, 4, 1, 1])))
        #expect(PackedConvWeights(weights, group: 4) == nil)
    }
}
