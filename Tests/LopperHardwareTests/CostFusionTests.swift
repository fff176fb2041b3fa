import Foundation
import LopperHardware
import LopperModel
import LopperRuntime
import LopperTesting
import Testing

/// x[1,8,10,10] → Conv A (16 filters 3×3, pads 1, bias) → `activation` → Conv B (4 filters 1×1) → y[1,4,10,10].
/// `activation` adds the nodes from "a" to "r".
func convActivationModel(_ activation: (inout ModelBuilder) -> Void) throws -> Model {
    var b = ModelBuilder()
    b.input("x", [1, 8, 10, 10])
    b.constant("wa", floats: (0..<(16 * 8 * 9)).map { Float($0 % 7) - 3 }, shape: [16, 8, 3, 3])
    b.constant("ba", floats: (0..<16).map(Float.init), shape: [16])
    b.constant("wb", floats: (0..<64).map { Float($0 % 5) - 2 }, shape: [4, 16, 1, 1])
    b.node("Conv", ["x", "wa", "ba"], ["a"], name: "A", intLists: ["pads": [1, 1, 1, 1], "kernel_shape": [3, 3]])
    activation(&b)
    b.node("Conv", ["r", "wb"], ["y"], name: "B")
    b.output("y")
    return try b.model()
}

/// The cost model cuts a model into the steps Lopper's runtime executes, with its SiLU,
/// hard-swish and GELU patterns fused into the producing layer.
@Suite struct CostFusionTests {
    /// The number of steps the runtime executes in one run.
    static func executedSteps(_ model: Model, shapes: [String: [Int]] = [:]) throws -> Int {
        let executor = try Executor(model: model, options: ExecutorOptions(threads: 1))
        var feeds: [String: Tensor] = [:]
        for input in executor.inputs {
            let shape = shapes[input.name] ?? input.type!.concreteShape!
            feeds[input.name] = Tensor(floats: [Float](repeating: 0.5, count: shape.reduce(1, *)), shape: shape)
        }
        return try executor.timedRun(feeds).count
    }

    @Test func siluAfterAConvIsOneStep() throws {
        let model = try convActivationModel { b in
            b.node("Sigmoid", ["a"], ["s"], name: "sigmoid")
            b.node("Mul", ["a", "s"], ["r"], name: "silu")
        }
        let report = CostModel(graph: try CostGraph(model), profile: testProfile()).report()
        #expect(report.steps.map(\.kind) == ["Conv+Sigmoid+Mul", "Conv"])
        #expect(try Self.executedSteps(model) == 2)
        // A: 2 × 115,200 MACs + 2 × 1,600 for the two fused nodes = 233,600 ops at 50 GOPS = 4.672 µs,
        // above 14,272 B at 10 GB/s (x 3,200 + A's weights 4,672 + output 6,400); + 5 µs.
        #expect(report.steps[0].macs == 115_200)
        #expect(report.steps[0].bytesMoved == 14_272)
        #expect(abs(report.steps[0].latencySeconds - 9.672e-6) < 1e-12)
        // B as in the Relu model: 5.8256 µs. The sigmoid's output is never stored: x and A's output peak.
        #expect(abs(report.totals.latencySeconds - 15.4976e-6) < 1e-12)
        #expect(report.totals.peakActivationBytes == 9_600)
    }

    @Test func paddleHardSwishAfterAConvIsOneStep() throws {
        let model = try convActivationModel { b in
            b.constant("three", floats: [3], shape: [])
            b.constant("zero", floats: [0], shape: [])
            b.constant("six", floats: [6], shape: [])
            b.node("Add", ["a", "three"], ["p"], name: "plus3")
            b.node("Clip", ["p", "zero", "six"], ["c"], name: "clip")
            b.node("Mul", ["a", "c"], ["m"], name: "times")
            b.node("Div", ["m", "six"], ["r"], name: "over6")
        }
        let report = CostModel(graph: try CostGraph(model), profile: testProfile()).report()
        #expect(report.steps.map(\.kind) == ["Conv+Add+Clip+Mul+Div", "Conv"])
        #expect(try Self.executedSteps(model) == 2)
        // Four fused nodes: 2 × 115,200 + 4 × 1,600 = 236,800 ops = 4.736 µs; the scalars add 12 bytes.
        #expect(report.steps[0].bytesMoved == 14_284)
        #expect(abs(report.steps[0].latencySeconds - 9.736e-6) < 1e-12)
    }

    @Test func exactGELUAfterAMatMulIsOneStep() throws {
        var b = ModelBuilder()
        b.input("x", [4, 8])
        b.constant("w", floats: (0..<64).map { Float($0 % 5) - 2 }, shape: [8, 8])
        b.constant("root2", floats: [1.414_213_5], shape: [])
        b.constant("one", floats: [1], shape: [])
        b.constant("half", floats: [0.5], shape: [])
        b.node("MatMul", ["x", "w"], ["h"], name: "fc")
        b.node("Div", ["h", "root2"], ["d"], name: "scaled")
        b.node("Erf", ["d"], ["e"], name: "erf")
        b.node("Add", ["e", "one"], ["p"], name: "plus1")
        b.node("Mul", ["h", "p"], ["m"], name: "times")
        b.node("Mul", ["m", "half"], ["y"], name: "halved")
        b.output("y")
        let model = try b.model()
        let report = CostModel(graph: try CostGraph(model), profile: testProfile()).report()
        #expect(report.steps.map(\.kind) == ["MatMul+Div+Erf+Add+Mul+Mul"])
        #expect(try Self.executedSteps(model) == 1)
    }

    @Test func siluIsNotFusedWhereTheConvOutputIsReadElsewhere() throws {
        // A's output also feeds the Add after the SiLU: the runtime runs the SiLU as a step of its own.
        let model = try convActivationModel { b in
            b.node("Sigmoid", ["a"], ["s"], name: "sigmoid")
            b.node("Mul", ["a", "s"], ["q"], name: "silu")
            b.node("Add", ["q", "a"], ["r"], name: "residual")
        }
        let report = CostModel(graph: try CostGraph(model), profile: testProfile()).report()
        #expect(report.steps.map(\.kind) == ["Conv", "Sigmoid+Mul", "Add", "Conv"])
        #expect(try Self.executedSteps(model) == 4)
    }

    /// On the YOLOv8n-style detector (Conv+SiLU everywhere, C2f and SPPF blocks), `lopper cost`
    /// has as many steps as the runtime executes.
    @Test func yolov8StepsAreTheRuntimeSteps() throws {
        guard Fixtures.hasRealModels else { return }
        let model = try Model.load(path: Fixtures.yolov8Detector)
        let graph = try CostGraph(model)
        #expect(graph.steps.count == (try Self.executedSteps(model)))
        #expect(graph.steps.filter { $0.kind == "Conv+Sigmoid+Mul" }.count > 50)
    }

    /// Each step written as a model of its own computes what the step computes in the whole
    /// model: run one after another on the values the earlier ones made, they give the model's output.
    @Test func stepModelsComposeToTheModel() throws {
        let model = try convActivationModel { b in
            b.node("Sigmoid", ["a"], ["s"], name: "sigmoid")
            b.node("Mul", ["a", "s"], ["q"], name: "silu")
            b.node("Add", ["q", "a"], ["r"], name: "residual")
        }
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        var written = Set<String>()
        let entries = try StepModels.write(model, label: "dense", profile: testProfile(), to: folder.path, prefix: "dense", skipping: &written).steps
        #expect(entries.count == 4)
        #expect(try StepModels.write(model, label: "again", profile: testProfile(), to: folder.path, prefix: "again", skipping: &written).steps.isEmpty)
        let x = Tensor(floats: (0..<800).map { Float($0 % 11) / 11 - 0.5 }, shape: [1, 8, 10, 10])
        var values = ["x": x]
        for entry in entries {
            let step = try Executor(model: try Model.load(path: entry.file), options: ExecutorOptions(threads: 1))
            let outputs = try step.run(Dictionary(uniqueKeysWithValues: step.inputs.map { ($0.name, values[$0.name]!) }))
            values.merge(outputs) { _, new in new }
        }
        let whole = try Executor(model: model, options: ExecutorOptions(threads: 1)).run(["x": x])["y"]!
        #expect(values["y"]!.floats == whole.floats)
        #expect(entries.map(\.opClass) == [.conv, .elementwise, .elementwise, .conv])
    }
}
