import CKernels
import Foundation
@testable import LopperRuntime
import Testing

/// `VectorMath` against double-precision libm: the documented error bounds over a dense sample
/// of every float bit pattern, dense runs at the thresholds, and the special values.
struct VectorMathTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let maxUlps: Double
        let vector: @Sendable (VectorMath.Vector) -> VectorMath.Vector
        let reference: @Sendable (Double) -> Double
        /// Inputs where the function changes method or its result leaves the normal range.
        let thresholds: [Float]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "exp", maxUlps: 1.5, vector: VectorMath.exp, reference: { Foundation.exp($0) },
             thresholds: [0, 88.722_83, -87.336_54, -103.278_93, -104]),
        Case(name: "log", maxUlps: 1, vector: VectorMath.log, reference: { Foundation.log($0) },
             thresholds: [1, 0.707_106_77, 1.414_213_5, Float.leastNormalMagnitude, Float.leastNonzeroMagnitude, .greatestFiniteMagnitude]),
        Case(name: "tanh", maxUlps: 2, vector: VectorMath.tanh, reference: { Foundation.tanh($0) },
             thresholds: [0, 0.625, -0.625, 9.01, 44.4]),
        Case(name: "erf", maxUlps: 2, vector: VectorMath.erf, reference: { Foundation.erf($0) },
             thresholds: [0, 1, -1, 3.92, 4]),
        Case(name: "sigmoid", maxUlps: 3, vector: VectorMath.sigmoid, reference: { 1 / (1 + Foundation.exp(-$0)) },
             thresholds: [0, -87.336_54, -103.278_93, 16.64, 88.72]),
    ]

    /// Distance of `value` from the exact `exact`, in ulps of the correctly rounded result
    /// (in units of the smallest subnormal below the normal range); ∞ counts as 2¹²⁸.
    static func ulps(_ value: Float, _ exact: Double) -> Double {
        if exact.isNaN { return value.isNaN ? 0 : .infinity }
        if value.isNaN { return .infinity }
        let rounded = Float(exact)
        if rounded == value { return 0 }
        func widened(_ x: Float) -> Double { x.isInfinite ? (x < 0 ? -0x1p128 : 0x1p128) : Double(x) }
        let target = exact.isInfinite ? widened(rounded) : exact
        let unit = Double(Swift.max(rounded.isInfinite ? Float.greatestFiniteMagnitude.ulp : rounded.ulp, Float.leastNonzeroMagnitude))
        return Swift.abs(widened(value) - target) / unit
    }

    /// Largest error of `function` over `inputs`, and the input where it occurs.
    static func worst(_ function: Case, _ inputs: [Float]) -> (ulps: Double, at: Float) {
        var worst: (ulps: Double, at: Float) = (0, 0)
        var start = 0
        let width = VectorMath.Vector.scalarCount
        while start < inputs.count {
            var v = VectorMath.Vector()
            let n = Swift.min(width, inputs.count - start)
            for lane in 0..<n { v[lane] = inputs[start + lane] }
            let y = function.vector(v)
            for lane in 0..<n {
                let error = ulps(y[lane], function.reference(Double(v[lane])))
                if error > worst.ulps { worst = (error, v[lane]) }
            }
            start += width
        }
        return worst
    }

    /// Every 2039th bit pattern (2.1 million floats, both signs, subnormals to NaNs).
    static let wholeRange: [Float] = stride(from: 0, to: 1 << 32, by: 2039).map { Float(bitPattern: UInt32($0)) }

    static func around(_ x: Float, count: Int = 2000) -> [Float] {
        var result: [Float] = []
        var up = x, down = x
        for _ in 0..<count { result += [up, down]; up = up.nextUp; down = down.nextDown }
        return result
    }

    @Test(arguments: cases)
    func errorStaysWithinTheDocumentedBoundOverTheWholeRange(_ function: Case) {
        let worst = Self.worst(function, Self.wholeRange)
        #expect(worst.ulps <= function.maxUlps, "\(function.name): \(worst.ulps) ulp at \(worst.at) (bits \(String(worst.at.bitPattern, radix: 16)))")
    }

    @Test(arguments: cases)
    func errorStaysWithinTheDocumentedBoundAtThresholdsAndSpecialValues(_ function: Case) {
        let specials: [Float] = [.nan, -.nan, .signalingNaN, .infinity, -.infinity, 0, -0, .leastNonzeroMagnitude,
                                 -.leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        let inputs = specials + function.thresholds.flatMap { Self.around($0) + Self.around(-$0) }
        let worst = Self.worst(function, inputs)
        #expect(worst.ulps <= function.maxUlps, "\(function.name): \(worst.ulps) ulp at \(worst.at) (bits \(String(worst.at.bitPattern, radix: 16)))")
    }

    /// exp and sigmoid are C, one kernel per instruction set: each this CPU has keeps the bound.
    @Test(arguments: ["portable", "avx2+fma", "avx512f"])
    func cKernelsKeepTheBoundOnEachInstructionSet(_ isa: String) throws {
        let inputs = Self.wholeRange + Self.cases.flatMap { $0.thresholds.flatMap { Self.around($0, count: 200) + Self.around(-$0, count: 200) } }
        for (function, name) in [(LOPPER_POINTWISE_EXP, "exp"), (LOPPER_POINTWISE_SIGMOID, "sigmoid")] {
            let bound = try #require(Self.cases.first { $0.name == name })
            var output = [Float](repeating: 0, count: inputs.count)
            guard lopper_pointwise_map_on(isa, function, inputs, &output, inputs.count) == 1 else { return }
            var worst: (ulps: Double, at: Float) = (0, 0)
            for (x, y) in zip(inputs, output) {
                let error = Self.ulps(y, bound.reference(Double(x)))
                if error > worst.ulps { worst = (error, x) }
            }
            #expect(worst.ulps <= bound.maxUlps, "\(isa) \(name): \(worst.ulps) ulp at \(worst.at)")
        }
    }

    @Test func specialValuesAreExact() {
        func one(_ f: (VectorMath.Vector) -> VectorMath.Vector, _ x: Float) -> Float { f(VectorMath.Vector(repeating: x))[0] }
        #expect(one(VectorMath.exp, .infinity) == .infinity)
        #expect(one(VectorMath.exp, -.infinity) == 0)
        #expect(one(VectorMath.exp, 88.8) == .infinity)
        #expect(one(VectorMath.exp, -105) == 0)
        #expect(one(VectorMath.exp, 0) == 1)
        #expect(one(VectorMath.log, 0) == -.infinity)
        #expect(one(VectorMath.log, -0.0) == -.infinity)
        #expect(one(VectorMath.log, -1).isNaN)
        #expect(one(VectorMath.log, .infinity) == .infinity)
        #expect(one(VectorMath.log, 1) == 0)
        #expect(one(VectorMath.tanh, .infinity) == 1 && one(VectorMath.tanh, -.infinity) == -1)
        #expect(one(VectorMath.erf, .infinity) == 1 && one(VectorMath.erf, -.infinity) == -1)
        #expect(one(VectorMath.sigmoid, .infinity) == 1 && one(VectorMath.sigmoid, -.infinity) == 0)
        #expect(one(VectorMath.tanh, -0.0).sign == .minus && one(VectorMath.erf, -0.0).sign == .minus)
        for function in [VectorMath.exp, VectorMath.log, VectorMath.tanh, VectorMath.erf, VectorMath.sigmoid] {
            #expect(one(function, .nan).isNaN)
        }
    }

    @Test func mapCoversPartialVectorsAndWorksInPlace() {
        for count in [1, 7, 8, 9, 23] {
            let input = (0..<count).map { Float($0) * 0.37 - 3 }
            var output = [Float](repeating: .nan, count: count)
            input.withUnsafeBufferPointer { source in
                output.withUnsafeMutableBufferPointer { VectorMath.map(source.baseAddress!, $0.baseAddress!, count, VectorMath.exp) }
            }
            var inPlace = input
            inPlace.withUnsafeMutableBufferPointer { VectorMath.map($0.baseAddress!, count, VectorMath.exp) }
            #expect(output == inPlace)
            for (x, y) in zip(input, output) { #expect(Self.ulps(y, Foundation.exp(Double(x))) <= 1) }
        }
    }
}
