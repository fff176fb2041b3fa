import Foundation
import LopperModel
@testable import LopperRuntime
import LopperTesting
import Testing

/// Load-time fusion and in-place Concat parts: fewer steps and copies, the same bits as the
/// unoptimised plan, and ONNX Runtime's results on a YOLOv8-style detector.
struct FusionTests {
    static func randomInput(_ shape: [Int], seed: UInt64) -> Tensor {
        var random = SeededGenerator(seed: seed)
        return Tensor(floats: (0..<Tensor.count(shape)).map { _ in 3 * random.normal() }, shape: shape)
    }

    /// Runs `model` optimised and not, and expects identical bits in every output.
    static func expectSameBits(_ model: Model, _ feeds: [String: Tensor], threads: Int = 2) throws {
        let fused = try Executor(model: model, options: ExecutorOptions(threads: threads))
        let plain = try Executor(model: model, options: ExecutorOptions(threads: threads, optimize: false))
        let a = try fused.run(feeds), b = try plain.run(feeds)
        for name in fused.outputNames {
            let x = try #require(a[name]), y = try #require(b[name])
            #expect(x.shape == y.shape)
            #expect(x.floats.map(\.bitPattern) == y.floats.map(\.bitPattern), "output \(name) differs")
        }
    }

    @Test func siluFusesIntoTheConvWithTheSameBits() throws {
        // Conv → Sigmoid → Mul(Sigmoid, Conv): YOLOv8's SiLU, with the Sigmoid as Mul's first operand.
        var builder = ModelBuilder(opset: 13)
        builder.input("x", [1, 3, 8, 8])
        builder.constant("w", floats: (0..<108).map { Float($0 % 7) / 3 - 1 }, shape: [4, 3, 3, 3])
        builder.constant("b", floats: [0.5, -0.25, 0, 1], shape: [4])
        builder.node("Conv", ["x", "w", "b"], ["c"], intLists: ["pads": [1, 1, 1, 1]])
        builder.node("Sigmoid", ["c"], ["s"])
        builder.node("Mul", ["s", "c"], ["y"])
        builder.output("y")
        let model = try builder.model()
        #expect(try Executor(model: model).stepCount == 1)
        try Self.expectSameBits(model, ["x": Self.randomInput([1, 3, 8, 8], seed: 3)])
    }

    @Test func siluWhoseInputIsAlsoAnOutputRunsAsOneStepAfterTheConv() throws {
        var builder = ModelBuilder(opset: 13)
        builder.input("x", [1, 2, 5, 5])
        builder.constant("w", floats: (0..<4).map { Float($0) - 1.5 }, shape: [2, 2, 1, 1])
        builder.node("Conv", ["x", "w"], ["c"])
        builder.node("Sigmoid", ["c"], ["s"])
        builder.node("Mul", ["c", "s"], ["y"])
        builder.output("y")
        builder.output("c")
        let model = try builder.model()
        #expect(try Executor(model: model).stepCount == 2)
        try Self.expectSameBits(model, ["x": Self.randomInput([1, 2, 5, 5], seed: 4)])
    }

    @Test(arguments: [false, true])
    func exportedGeluFusesIntoTheConv(halvingFirst: Bool) throws {
        // PyTorch's exact GELU before opset 20: 0.5 · c · (1 + Erf(c / √2)), halving last or first.
        var builder = ModelBuilder(opset: 13)
        builder.input("x", [1, 2, 6, 6])
        builder.constant("w", floats: [0.5, -1, 2, 0.25], shape: [2, 2, 1, 1])
        for (name, value) in [("root2", 1.414_213_5), ("one", 1), ("half", 0.5)] as [(String, Float)] {
            builder.constant(name, floats: [value], shape: [])
        }
        builder.node("Conv", ["x", "w"], ["c"])
        builder.node("Div", ["c", "root2"], ["d"])
        builder.node("Erf", ["d"], ["e"])
        builder.node("Add", ["one", "e"], ["a"])
        if halvingFirst {
            builder.node("Mul", ["c", "half"], ["h"])
            builder.node("Mul", ["h", "a"], ["y"])
        } else {
            builder.node("Mul", ["c", "a"], ["m"])
            builder.node("Mul", ["m", "half"], ["y"])
        }
        builder.output("y")
        let model = try builder.model()
        let fused = try Executor(model: model, options: ExecutorOptions(threads: 2))
        let plain = try Executor(model: model, options: ExecutorOptions(threads: 1, optimize: false))
        #expect(fused.stepCount == 1)
        let x = Self.randomInput([1, 2, 6, 6], seed: 9)
        let a = try #require(try fused.run(["x": x])["y"]), b = try #require(try plain.run(["x": x])["y"])
        #expect(Comparison.mismatch(a, b, rtol: 1e-5, atol: 1e-6) == nil)
    }

    @Test func c2fBlockPartsAreWrittenIntoTheConcat() throws {
        // Conv → Split → [half1, half2]; half2 + Conv(Conv(half2)) → y; Concat(half1, half2, y).
        let model = try Model.load(path: Fixtures.model("c2f_block"))
        let executor = try Executor(model: model)
        let concat = try #require(executor.plan.steps.firstIndex { $0.node.opType == "Concat" && $0.gatheredShape != nil })
        // The Conv before the Split (both halves at once) and the Add.
        let placed = executor.plan.steps.filter { $0.placement?.concat == concat }.map(\.node.opType)
        #expect(placed.sorted() == ["Add", "Conv"])
        try Self.expectSameBits(model, ["images": Self.randomInput([1, 3, 64, 64], seed: 5)])
        try Self.expectSameBits(model, ["images": Self.randomInput([1, 3, 64, 64], seed: 6)], threads: 1)
    }

    @Test func concatPartsThatCannotBeWrittenInPlaceAreCopied() throws {
        // The same value twice, a graph input, a part also read elsewhere, and a batch of two
        // (parts not contiguous): each Concat still gives what the copying plan gives.
        for batch in [1, 2] {
            var builder = ModelBuilder(opset: 13)
            builder.input("x", [batch, 2, 4, 4])
            builder.constant("w", floats: [1, -2, 0.5, 3], shape: [2, 2, 1, 1])
            builder.node("Conv", ["x", "w"], ["c"])
            builder.node("Relu", ["c"], ["r"])
            builder.node("MaxPool", ["r"], ["p"], intLists: ["kernel_shape": [3, 3], "pads": [1, 1, 1, 1]])
            builder.node("Concat", ["p", "x", "p", "r"], ["y"], ints: ["axis": 1])
            builder.node("Concat", ["r", "p"], ["z"], ints: ["axis": 1])
            builder.output("y")
            builder.output("z")
            builder.output("r")
            try Self.expectSameBits(try builder.model(), ["x": Self.randomInput([batch, 2, 4, 4], seed: UInt64(batch))])
        }
    }

    @Test(.enabled(if: Reference.isAvailable))
    func yoloDetectorMatchesOnnxRuntime() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("yolov8n_128.onnx").path
        let script = Fixtures.root.appendingPathComponent("make_yolov8.py").path
        let built = try Reference.run(["python3", script, "--size", "128", "--out", path])
        try #require(built.status == 0, "make_yolov8.py failed: \(built.stderr)")
        let executor = try Executor(path: path)
        // Every SiLU runs inside its Conv (what is left is the boxes' Mul by the strides and the
        // class scores' Sigmoid), and C2f/SPPF Concats have parts written in place.
        #expect(executor.plan.steps.filter { ["Sigmoid", "Mul"].contains($0.node.opType) }.map(\.node.opType).sorted() == ["Mul", "Sigmoid"])
        #expect(executor.plan.steps.filter { $0.gatheredShape != nil }.count >= 8)
        try ReferenceTests.crossCheck(path)
        try ReferenceTests.crossCheck(path, seed: 2, threads: 1)
        try Self.expectSameBits(try Model.load(path: path), ["images": Self.randomInput([1, 3, 128, 128], seed: 8)])
    }
}
