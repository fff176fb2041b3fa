import Foundation
import LopperModel
@testable import LopperRuntime
import LopperTesting
import Testing

struct ExecutorTests {
    @Test func registryCoversExactlyTheOpSet() {
        #expect(KernelRegistry.operators == OpSet.supportedOperators)
    }

    @Test func unsupportedOperatorsAreAllListedBeforeRunning() throws {
        let error = #expect(throws: ModelError.self) { try Executor(path: Fixtures.model("unsupported_ops")) }
        let message = try #require(error).description
        let model = try Model.load(path: Fixtures.model("unsupported_ops"))
        let unsupported = model.graph.nodes.filter { $0.opType != "Relu" }
        #expect(unsupported.count >= 2)
        for node in unsupported {
            #expect(message.contains(node.label), "\(node.label) missing from: \(message)")
        }
        #expect(message.contains("unsupported_ops.onnx"))
    }

    /// The scikit-learn classifier's label path (ArgMax → ai.onnx.ml.ArrayFeatureExtractor over
    /// its classes) runs, and agrees with ONNX Runtime beside the probabilities.
    @Test(.enabled(if: Reference.isAvailable && Fixtures.hasRealModels))
    func scikitLearnClassifierRunsWithItsLabelPath() throws {
        try ReferenceTests.crossCheck(Fixtures.digitsClassifier, shapes: ["input": [6, 64]])
    }

    @Test func shapeMismatchAtRunTimeNamesTheNode() throws {
        var builder = ModelBuilder()
        builder.input("a", ["N"])
        builder.input("b", ["M"])
        builder.node("Add", ["a", "b"], ["c"], name: "sum")
        builder.output("c")
        let executor = try Executor(model: try builder.model())
        let ok = try executor.run(["a": Tensor(floats: [1, 2, 3], shape: [3]), "b": Tensor(floats: [10], shape: [1])])
        #expect(ok["c"]?.floats == [11, 12, 13])
        let error = #expect(throws: ModelError.self) {
            try executor.run(["a": Tensor(floats: [1, 2, 3], shape: [3]), "b": Tensor(floats: [1, 2], shape: [2])])
        }
        #expect(error?.node == "'sum' (Add)")
        #expect(error?.description.contains("cannot be broadcast") == true)
    }

    @Test func inputShapeMustMatchDeclaredSizes() throws {
        let executor = try Executor(path: Fixtures.model("conv_chain"))
        let error = #expect(throws: ModelError.self) {
            try executor.run(["x": Tensor(floats: [Float](repeating: 0, count: 4 * 32 * 32), shape: [1, 4, 32, 32])])
        }
        #expect(error?.description.contains("input 'x' has shape [1, 4, 32, 32]") == true)
        #expect(throws: ModelError.self) { try executor.run([:]) }
    }

    @Test func foldingAndFusionKeepResults() throws {
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let optimized = try Executor(model: model)
        let plain = try Executor(model: model, options: ExecutorOptions(threads: 1, optimize: false))
        #expect(optimized.stepCount < plain.stepCount)
        #expect(plain.stepCount == model.graph.nodes.count)
        var random = SeededGenerator(seed: 11)
        let x = Tensor(floats: (0..<(2 * 3 * 32 * 32)).map { _ in random.normal() }, shape: [2, 3, 32, 32])
        let a = try optimized.run(["x": x]), b = try plain.run(["x": x])
        for name in optimized.outputNames {
            #expect(Comparison.mismatch(try #require(a[name]), try #require(b[name]), rtol: 1e-5, atol: 1e-6) == nil)
        }
    }

    @Test func shapeSubgraphsFoldWhenSizesAreFixed() throws {
        // Shape → Gather → Unsqueeze → Concat → Reshape on an input of fixed size folds away.
        var builder = ModelBuilder(opset: 13)
        builder.input("x", [2, 3, 4])
        builder.constant("zero", ints: [0], shape: [])
        builder.constant("minus", ints: [-1], shape: [1])
        builder.node("Shape", ["x"], ["s"])
        builder.node("Gather", ["s", "zero"], ["n"], ints: ["axis": 0])
        builder.constant("axes", ints: [0], shape: [1])
        builder.node("Unsqueeze", ["n", "axes"], ["n1"])
        builder.node("Concat", ["n1", "minus"], ["target"], ints: ["axis": 0])
        builder.node("Reshape", ["x", "target"], ["y"])
        builder.output("y")
        let executor = try Executor(model: try builder.model())
        #expect(executor.stepCount == 1)
        let y = try executor.run(["x": Tensor(floats: (0..<24).map(Float.init), shape: [2, 3, 4])])["y"]
        #expect(y?.shape == [2, 12])
        #expect(y?.floats == (0..<24).map(Float.init))
    }

    @Test func exportedHardSwishAndScalarAffinesFuseIntoTheConv() throws {
        // Conv → Mul(0.5) → Add(0.25) → x·Clip(x+3, 0, 6)/6 (Paddle's hard-swish) → Mul(2) → Add(-1).
        var builder = ModelBuilder(opset: 13)
        builder.input("x", [1, 2, 4, 4])
        builder.constant("w", floats: (0..<18).map { Float($0 % 5) - 2 }, shape: [2, 1, 3, 3])
        for (name, value) in [("half", 0.5), ("quarter", 0.25), ("three", 3), ("zero", 0), ("six", 6), ("two", 2), ("minus", -1)] as [(String, Float)] {
            builder.constant(name, floats: [value], shape: [])
        }
        builder.node("Conv", ["x", "w"], ["c"], name: "conv", ints: ["group": 2])
        builder.node("Mul", ["half", "c"], ["m"])
        builder.node("Add", ["m", "quarter"], ["a"])
        builder.node("Add", ["a", "three"], ["a3"])
        builder.node("Clip", ["a3", "zero", "six"], ["clipped"])
        builder.node("Mul", ["a", "clipped"], ["product"])
        builder.node("Div", ["product", "six"], ["swished"])
        builder.node("Mul", ["swished", "two"], ["scaled"])
        builder.node("Add", ["scaled", "minus"], ["y"])
        builder.output("y")
        let model = try builder.model()
        let fused = try Executor(model: model, options: ExecutorOptions(threads: 2))
        let plain = try Executor(model: model, options: ExecutorOptions(threads: 1, optimize: false))
        #expect(fused.stepCount == 1)
        #expect(plain.stepCount == 9)
        var random = SeededGenerator(seed: 5)
        let x = Tensor(floats: (0..<32).map { _ in 3 * random.normal() }, shape: [1, 2, 4, 4])
        let a = try #require(try fused.run(["x": x])["y"]), b = try #require(try plain.run(["x": x])["y"])
        #expect(Comparison.mismatch(a, b, rtol: 1e-5, atol: 1e-6) == nil)
    }

    @Test func opsetSelectsSoftmaxSemantics() throws {
        // Before opset 13 Softmax normalises over all axes from `axis` (default 1); from 13 over the last axis only.
        func run(_ opset: Int64) throws -> [Float] {
            var builder = ModelBuilder(opset: opset)
            builder.input("x", [1, 2, 2])
            builder.node("Softmax", ["x"], ["y"])
            builder.output("y")
            return try Executor(model: try builder.model()).run(["x": Tensor(floats: [0, 0, 0, 0], shape: [1, 2, 2])])["y"]!.floats
        }
        #expect(try run(11) == [0.25, 0.25, 0.25, 0.25])
        #expect(try run(13) == [0.5, 0.5, 0.5, 0.5])
    }

    @Test func comparisonReportsDifferences() {
        let a = Tensor(floats: [1, 2, 3], shape: [3])
        #expect(Comparison.mismatch(a, Tensor(floats: [1, 2, 3.0001], shape: [3]), rtol: 1e-3, atol: 0) == nil)
        #expect(Comparison.mismatch(a, Tensor(floats: [1, 2, 3.1], shape: [3]), rtol: 1e-3, atol: 0) != nil)
        #expect(Comparison.mismatch(a, Tensor(floats: [1, 2, 3], shape: [1, 3]), rtol: 1, atol: 1) != nil)
    }
}
