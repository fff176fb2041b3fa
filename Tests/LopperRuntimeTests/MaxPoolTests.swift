import LopperModel
@testable import LopperRuntime
import LopperTesting
import Testing

/// Plain 2-D MaxPool (rows' maxima, then columns') against the window scanned row by row:
/// the same bits, NaN skipped and the later of +0 and −0 kept, over strides, pads, dilations and
/// ceil mode, and whatever the thread count.
struct MaxPoolTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var height: Int, width: Int, kernel: [Int], strides = [1, 1], dilations = [1, 1]
        /// Top, left, bottom, right.
        var pads = [0, 0, 0, 0]
        var ceilMode = false
        var testDescription: String { "\(height)x\(width) k\(kernel) s\(strides) d\(dilations) p\(pads) ceil \(ceilMode)" }

        var output: (Int, Int) {
            func size(_ n: Int, _ a: Int) -> Int {
                let span = n + pads[a] + pads[a + 2] - dilations[a] * (kernel[a] - 1) - 1
                var out = (ceilMode ? (span + strides[a] - 1) / strides[a] : span / strides[a]) + 1
                // A window starting in the end padding is dropped (the ONNX rule for ceil mode).
                if ceilMode && (out - 1) * strides[a] >= n + pads[a] { out -= 1 }
                return out
            }
            return (size(height, 0), size(width, 1))
        }
    }

    static let cases: [Case] = [
        // YOLOv8's SPPF pool, and ResNet's stem pool.
        Case(height: 10, width: 10, kernel: [5, 5], pads: [2, 2, 2, 2]),
        Case(height: 17, width: 15, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
        Case(height: 9, width: 12, kernel: [2, 3], strides: [1, 2], dilations: [2, 1], pads: [1, 0, 0, 2]),
        Case(height: 7, width: 8, kernel: [3, 3], strides: [2, 3], ceilMode: true),
        Case(height: 3, width: 4, kernel: [5, 5], pads: [3, 3, 3, 3]),
    ]

    /// The window scanned row by row with Swift's `max` (the later of equal values).
    static func reference(_ c: Case, _ x: [Float], planes: Int) -> [Float] {
        let (oh, ow) = c.output
        var y: [Float] = []
        for p in 0..<planes { for oy in 0..<oh { for ox in 0..<ow {
            var best = -Float.infinity
            for b in 0..<c.kernel[0] { for e in 0..<c.kernel[1] {
                let iy = oy * c.strides[0] - c.pads[0] + b * c.dilations[0], ix = ox * c.strides[1] - c.pads[1] + e * c.dilations[1]
                if iy >= 0 && iy < c.height && ix >= 0 && ix < c.width { best = Swift.max(best, x[(p * c.height + iy) * c.width + ix]) }
            } }
            y.append(best)
        } } }
        return y
    }

    @Test(arguments: cases)
    func matchesTheWindowScannedRowByRow(_ c: Case) throws {
        let shape = [2, 3, c.height, c.width]
        var random = SeededGenerator(seed: 7)
        // Rounded values, so windows tie often; ±0 and NaN sprinkled in.
        let x: [Float] = (0..<Tensor.count(shape)).map { k in
            switch k % 11 { case 3: 0; case 5: -0.0; case 7: .nan; default: (2 * random.normal()).rounded() }
        }
        var builder = ModelBuilder(opset: 12)
        builder.input("x", shape)
        builder.node("MaxPool", ["x"], ["y"], ints: ["ceil_mode": c.ceilMode ? 1 : 0],
                     intLists: ["kernel_shape": c.kernel, "strides": c.strides, "dilations": c.dilations, "pads": c.pads])
        builder.output("y")
        let model = try builder.model()
        let expected = Self.reference(c, x, planes: 6).map(\.bitPattern)
        for threads in [1, 2] {
            let y = try #require(try Executor(model: model, options: ExecutorOptions(threads: threads)).run(["x": Tensor(floats: x, shape: shape)])["y"])
            #expect(y.shape == [2, 3, c.output.0, c.output.1])
            #expect(y.floats.map(\.bitPattern) == expected, "threads \(threads)")
        }
    }
}
