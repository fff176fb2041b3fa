import Foundation
import LopperModel
@testable import LopperRuntime
import LopperTesting
import Testing

/// The recurrent and control-flow fixtures against ONNX Runtime, the load-time folding of an If
/// with a constant condition, and the errors bad recurrent and control-flow nodes give.
struct RecurrentControlFlowTests {
    static let vadShapes = ["features": [2, 9, 40], "h_in": [2, 1, 32], "c_in": [2, 1, 32], "reset": [2]]

    @Test(.enabled(if: Reference.isAvailable), arguments: [1, 2, 3, 4] as [UInt64])
    func voiceActivityModelMatchesOnnxRuntime(seed: UInt64) throws {
        try ReferenceTests.crossCheck(Fixtures.model("vad_lstm_if"), shapes: Self.vadShapes, seed: seed, threads: Int(seed % 2) + 1)
    }

    static func vadFeeds(reset: Float, stateScale: Float) -> [String: Tensor] {
        var random = SeededGenerator(seed: 5)
        func tensor(_ shape: [Int], _ scale: Float) -> Tensor {
            Tensor(floats: (0..<Tensor.count(shape)).map { _ in random.normal() * scale }, shape: shape)
        }
        return ["features": tensor([2, 9, 40], 1), "h_in": tensor([2, 1, 32], stateScale), "c_in": tensor([2, 1, 32], stateScale),
                "reset": Tensor(floats: [reset, reset], shape: [2])]
    }

    /// A high `reset` takes the If's then-branch, which zeroes the carried state: the result is
    /// the one a zero state gives without reset.
    @Test func resetBranchStartsFromZeroState() throws {
        let executor = try Executor(path: Fixtures.model("vad_lstm_if"), options: ExecutorOptions(threads: 1))
        let reset = try executor.run(Self.vadFeeds(reset: 1, stateScale: 1))
        let zeroState = try executor.run(Self.vadFeeds(reset: -1, stateScale: 0))
        let kept = try executor.run(Self.vadFeeds(reset: -1, stateScale: 1))
        for name in ["speech", "h_out", "c_out"] {
            #expect(reset[name]!.floats == zeroState[name]!.floats, "\(name)")
        }
        #expect(kept["h_out"]!.floats != reset["h_out"]!.floats)
    }

    /// Sweeps compare scores bit for bit, so recurrent and control-flow results must not depend
    /// on the thread count.
    @Test(arguments: [("wake_word", [3, 1, 40, 32]), ("recurrent_variants", [3, 5, 4]), ("control_flow", [3, 4])])
    func resultsDoNotDependOnThreads(name: String, shape: [Int]) throws {
        let model = try Model.load(path: Fixtures.model(name))
        var random = SeededGenerator(seed: 9)
        var feeds: [String: Tensor] = [:]
        for input in model.graph.feedInputs {
            feeds[input.name] = Tensor(floats: (0..<Tensor.count(shape)).map { _ in random.normal() }, shape: shape)
        }
        let one = try Executor(model: model, options: ExecutorOptions(threads: 1)).run(feeds)
        let two = try Executor(model: model, options: ExecutorOptions(threads: 2)).run(feeds)
        for (output, value) in one { #expect(value.floats == two[output]!.floats, "\(name) output '\(output)'") }
    }

    @Test func constantConditionIfFoldsAwayAtLoad() throws {
        let model = try Model.load(path: Fixtures.model("vad_lstm_if"))
        let optimized = try Executor(model: model, options: ExecutorOptions(threads: 1))
        let plain = try Executor(model: model, options: ExecutorOptions(threads: 1, optimize: false))
        #expect(plain.plan.steps.contains { $0.node.name == "output_mode" })
        #expect(!optimized.plan.steps.contains { $0.node.name == "output_mode" })
        // The other If (on the run-time reset flag) stays.
        #expect(optimized.plan.steps.contains { $0.node.opType == "If" })
        let feeds = Self.vadFeeds(reset: -1, stateScale: 1)
        #expect(try optimized.run(feeds)["speech"]!.floats == plain.run(feeds)["speech"]!.floats)
    }

    @Test func zipMapOutputIsRefusedNamingTheNode() throws {
        let error = #expect(throws: ModelError.self) { try Executor(path: Fixtures.model("zipmap_classifier")) }
        let message = try #require(error).description
        #expect(message.contains("'output_probability' is a sequence, made by node 'zipmap_0' (ZipMap)"), "\(message)")
        #expect(message.contains("zipmap_classifier.onnx"))
    }

    /// An LSTM over x [T=3, N=1, 2] with hidden size 2.
    static func lstm(wRows: Int = 8, attributes: [String: [String]] = [:], ints: [String: Int] = ["hidden_size": 2]) throws -> Model {
        var b = ModelBuilder()
        b.input("x", [3, 1, 2])
        b.constant("W", floats: Array(repeating: 0.1, count: wRows * 2), shape: [1, wRows, 2])
        b.constant("R", floats: Array(repeating: 0.1, count: 16), shape: [1, 8, 2])
        b.node("LSTM", ["x", "W", "R"], ["y"], name: "lstm", ints: ints, strings: attributes)
        b.output("y")
        return try b.model()
    }

    @Test func badRecurrentNodesNameNodeAndField() throws {
        let shape = try #require(#expect(throws: ModelError.self) { try Executor(model: Self.lstm(wRows: 6)).run(["x": Tensor(floats: [0, 0, 0, 0, 0, 0], shape: [3, 1, 2])]) })
        #expect(shape.description.contains("node 'lstm' (LSTM)") && shape.description.contains("W has shape [1, 6, 2], expected [1, 8, 2]"), "\(shape)")
        let activation = try #require(#expect(throws: ModelError.self) { try Executor(model: Self.lstm(attributes: ["activations": ["Sigmoid", "Tanh", "Swish"]])) })
        #expect(activation.description.contains("node 'lstm' (LSTM)") && activation.description.contains("attribute 'activations'")
                && activation.description.contains("'Swish' is not a recurrent activation"), "\(activation)")
        let count = try #require(#expect(throws: ModelError.self) { try Executor(model: Self.lstm(attributes: ["activations": ["Sigmoid"]])) })
        #expect(count.description.contains("lists 1 functions; LSTM forward takes 3"), "\(count)")
        let direction = try #require(#expect(throws: ModelError.self) { try Executor(model: Self.lstm(ints: ["hidden_size": 2, "layout": 2])) })
        #expect(direction.description.contains("attribute 'layout'"), "\(direction)")
    }

    /// x [4] → If(ReduceMax(x) as bool), each branch one node `inner_<op>` applying its op to x.
    static func ifModel(then thenOp: String, else elseOp: String, outputs: [String] = ["y"]) throws -> Model {
        var branches: [String: ModelBuilder] = [:]
        for (attribute, op) in [("then_branch", thenOp), ("else_branch", elseOp)] {
            var body = ModelBuilder()
            body.node(op, ["x"], ["\(op)_out"], name: "inner_\(op.lowercased())")
            body.output("\(op)_out")
            branches[attribute] = body
        }
        var b = ModelBuilder()
        b.input("x", [4])
        b.node("ReduceMax", ["x"], ["m"], name: "reduce", ints: ["keepdims": 0])
        b.node("Cast", ["m"], ["cond"], name: "cast", ints: ["to": 9])
        b.node("If", ["cond"], outputs, name: "branch", subgraphs: branches)
        b.output("y")
        return try b.model()
    }

    /// An If whose then-branch uses an unsupported operator: named up front with its scope.
    @Test func unsupportedOperatorInsideABodyIsListed() throws {
        let error = try #require(#expect(throws: ModelError.self) { try Executor(model: Self.ifModel(then: "Unique", else: "Identity")) })
        #expect(error.description.contains("Unique at 'branch' (If) then_branch 'inner_unique' (Unique)"), "\(error)")
    }

    /// Branches that give fewer values than the If has outputs: an error naming the If.
    @Test func branchGivingTooFewOutputsIsAnError() throws {
        let model = try Self.ifModel(then: "Relu", else: "Neg", outputs: ["y", "extra"])
        let error = try #require(#expect(throws: ModelError.self) {
            try Executor(model: model, options: ExecutorOptions(threads: 1)).run(["x": Tensor(floats: [1, -2, 3, -4], shape: [4])])
        })
        #expect(error.description.contains("'branch' (If)"), "\(error)")
    }

    /// Scan at opset 8: a running sum over seq [batch 2, steps 3, 2] read in reverse, with
    /// sequence_lens given by `lengths`.
    static func batchedScan(lengths: [Int64]) throws -> Model {
        var body = ModelBuilder()
        body.input("sum_in", [2])
        body.input("next", [2])
        body.node("Add", ["sum_in", "next"], ["sum_out"], name: "add")
        body.node("Identity", ["sum_out"], ["scan_out"], name: "copy")
        body.output("sum_out")
        body.output("scan_out")
        var b = ModelBuilder(opset: 8)
        b.constant("lens", ints: lengths, shape: [lengths.count])
        b.input("initial", [2, 2])
        b.input("seq", [2, 3, 2])
        b.node("Scan", ["lens", "initial", "seq"], ["final", "sums"], name: "scan", ints: ["num_scan_inputs": 1],
               intLists: ["directions": [1]], subgraphs: ["body": body])
        b.output("final")
        b.output("sums")
        return try b.model()
    }

    /// Entry 0 (length 3) sums rows 2, 1, 0 of [[0,1],[2,3],[4,5]] from 0: (4,5), (6,8), (6,9).
    /// Entry 1 (length 2) sums rows 1, 0 of [[6,7],[8,9],[10,11]] from 100: (108,109), (114,116),
    /// then zeros past its length (what ONNX Runtime gives too).
    @Test func opset8ScanHonoursSequenceLengths() throws {
        let executor = try Executor(model: Self.batchedScan(lengths: [3, 2]), options: ExecutorOptions(threads: 1))
        let result = try executor.run(["initial": Tensor(floats: [0, 0, 100, 100], shape: [2, 2]),
                                       "seq": Tensor(floats: (0..<12).map(Float.init), shape: [2, 3, 2])])
        #expect(result["final"]!.shape == [2, 2] && result["final"]!.floats == [6, 9, 114, 116])
        #expect(result["sums"]!.shape == [2, 3, 2] && result["sums"]!.floats == [4, 5, 6, 8, 6, 9, 108, 109, 114, 116, 0, 0])
        let error = try #require(#expect(throws: ModelError.self) {
            try Executor(model: Self.batchedScan(lengths: [3, 4])).run(["initial": Tensor(floats: [0, 0, 0, 0], shape: [2, 2]),
                                                                        "seq": Tensor(floats: Array(repeating: 0, count: 12), shape: [2, 3, 2])])
        })
        #expect(error.description.contains("'scan' (Scan)") && error.description.contains("sequence_lens holds 4, outside 0...3"), "\(error)")
    }
}
