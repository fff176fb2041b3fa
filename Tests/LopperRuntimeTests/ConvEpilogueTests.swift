import CKernels
import Foundation
import LopperModel
@testable import LopperRuntime
import LopperTesting
import Testing

/// The tap kernel's output pass: bias and activation applied as it stores, positions on the
/// padded row width mapped to output columns. Checked against the convolution and the activation
/// in double precision, against the unfused plan's bits, across thread counts, and the pointwise
/// functions across the instruction sets with FMA.
struct ConvEpilogueTests {
    enum Fused: String, CaseIterable, Sendable {
        case silu, sigmoid, relu, hardSwish

        /// The activation in double precision.
        func exact(_ x: Double) -> Double {
            switch self {
            case .silu: x / (1 + Foundation.exp(-x))
            case .sigmoid: 1 / (1 + Foundation.exp(-x))
            case .relu: Swift.max(x, 0)
            case .hardSwish: x * Swift.min(Swift.max(x / 6 + 0.5, 0), 1)
            }
        }

        /// A bound on the activation's slope: how far an error in its input can move its result.
        var slope: Double {
            switch self {
            case .silu: 1.1
            case .sigmoid: 0.25
            case .relu: 1
            case .hardSwish: 1.5
            }
        }

        /// Appends the activation's nodes after `input`, ending in `output`.
        func append(to builder: inout ModelBuilder, _ input: String, _ output: String) {
            switch self {
            case .silu:
                builder.node("Sigmoid", [input], ["s"])
                builder.node("Mul", [input, "s"], [output])
            case .sigmoid: builder.node("Sigmoid", [input], [output])
            case .relu: builder.node("Relu", [input], [output])
            case .hardSwish: builder.node("HardSwish", [input], [output])
            }
        }
    }

    typealias Case = ConvTapsTests.Case

    static let cases: [Case] = [
        // Odd output widths with stride 2 and pads: every row has dropped columns.
        Case(channels: 5, height: 13, width: 11, filters: 9, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
        Case(channels: 3, height: 17, width: 23, filters: 17, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
        // Positions fewer than a tile, a tile spanning several short rows, a 1×1 in place.
        Case(channels: 4, height: 3, width: 5, filters: 6, kernel: [3, 3], pads: [1, 1, 1, 1]),
        Case(channels: 2, height: 6, width: 3, filters: 3, kernel: [2, 2], pads: [0, 1, 1, 0]),
        Case(channels: 7, height: 5, width: 7, filters: 10, kernel: [1, 1], bias: false),
        // Wide rows: full tiles inside a row and tiles crossing the padded columns.
        Case(channels: 6, height: 9, width: 75, filters: 8, kernel: [3, 3], strides: [1, 2], pads: [1, 1, 1, 1]),
        Case(batch: 2, channels: 8, height: 12, width: 12, filters: 12, kernel: [3, 3], pads: [1, 1, 1, 1], group: 2),
        // A 1×1 with enough channels for OpenBLAS: the activation after each SGEMM block.
        Case(batch: 2, channels: 192, height: 6, width: 9, filters: 66, kernel: [1, 1]),
    ]

    static func model(_ c: Case, _ fused: Fused, w: [Float], b: [Float]) throws -> Model {
        var builder = ModelBuilder(opset: 14)
        builder.input("x", c.inputShape)
        builder.constant("w", floats: w, shape: c.weightShape)
        builder.constant("b", floats: b, shape: [c.filters])
        builder.node("Conv", c.bias ? ["x", "w", "b"] : ["x", "w"], ["c"],
                     ints: ["group": c.group], intLists: ["strides": c.strides, "dilations": c.dilations, "pads": c.pads])
        fused.append(to: &builder, "c", "y")
        builder.output("y")
        return try builder.model()
    }

    @Test(arguments: cases, Fused.allCases)
    func fusedActivationMatchesTheDefinitionAndTheUnfusedPlan(_ c: Case, _ fused: Fused) throws {
        let x = ConvTapsTests.random(c.inputShape.reduce(1, *), seed: 11)
        let w = ConvTapsTests.random(c.weightShape.reduce(1, *), seed: 12), b = ConvTapsTests.random(c.filters, seed: 13)
        let model = try Self.model(c, fused, w: w, b: b)
        let feeds = ["x": Tensor(floats: x, shape: c.inputShape)]
        #expect(try Executor(model: model).stepCount == 1, "the \(fused) runs inside the Conv")
        let expected = ConvTapsTests.reference(c, x: x, w: w, b: b)
        let terms = Double(c.weightShape.dropFirst().reduce(1, *) + 2)
        let plain = try #require(try Executor(model: model, options: ExecutorOptions(threads: 1, optimize: false)).run(feeds)["y"])
        for threads in [1, 2, 3] {
            let y = try #require(try Executor(model: model, options: ExecutorOptions(threads: threads)).run(feeds)["y"])
            #expect(y.shape == [c.batch, c.filters] + c.outputSize)
            #expect(y.floats.map(\.bitPattern) == plain.floats.map(\.bitPattern), "threads \(threads): fused and unfused differ")
            var worst = 0.0
            for (i, value) in y.floats.enumerated() {
                // The Conv's rounding bound carried through the activation's slope, plus the
                // activation's own rounding (a few ulps of its result, and x / 6's near zero).
                let exact = fused.exact(expected.values[i])
                let bound = fused.slope * terms * 0x1p-24 * expected.magnitudes[i]
                    + 4 * Double(Float(Swift.abs(exact)).ulp) + 0x1p-24 * Swift.abs(expected.values[i]) + 0x1p-140
                worst = Swift.max(worst, Swift.abs(Double(value) - exact) / bound)
            }
            #expect(worst <= 1, "threads \(threads): largest error \(worst) of the bound")
        }
    }

    static let instructionSets = ["avx2+fma", "avx512f"]
    static let functions = [LOPPER_POINTWISE_EXP, LOPPER_POINTWISE_RELU, LOPPER_POINTWISE_SIGMOID, LOPPER_POINTWISE_SILU,
                            LOPPER_POINTWISE_HARD_SWISH]

    @Test(.enabled(if: TapConvolution.instructionSet != "portable"))
    func pointwiseFunctionsGiveTheSameBitsWithAVX2AndAVX512() throws {
        // A dense sample of every bit pattern, and a count that leaves a partial vector on each.
        let inputs = VectorMathTests.wholeRange + [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, 2.5]
        for function in Self.functions {
            var results: [String: [UInt32]] = [:]
            for isa in Self.instructionSets {
                var output = [Float](repeating: 0, count: inputs.count)
                let ran = lopper_pointwise_map_on(isa, function, inputs, &output, inputs.count)
                if ran == 1 { results[isa] = output.map { $0.isNaN ? Float.nan.bitPattern : $0.bitPattern } }
            }
            let chosen = try #require(results[TapConvolution.instructionSet], "the kernel chosen at load runs here")
            for (isa, bits) in results { #expect(bits == chosen, "function \(function.rawValue): \(isa) differs") }
            var mapped = [Float](repeating: 0, count: inputs.count)
            lopper_pointwise_map(function, inputs, &mapped, inputs.count)
            #expect(mapped.map { $0.isNaN ? Float.nan.bitPattern : $0.bitPattern } == chosen)
        }
        #expect(lopper_pointwise_map_on("sse9", LOPPER_POINTWISE_EXP, [1], nil, 1) == 0)
    }
}
