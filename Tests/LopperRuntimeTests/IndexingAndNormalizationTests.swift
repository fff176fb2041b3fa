import Foundation
import LopperModel
@testable import LopperRuntime
import LopperTesting
import Testing

/// Bad arguments to the indexing and Einsum kernels are errors naming the node, never a crash.
struct IndexingErrorTests {
    /// One node `op` over x [2, 3] and a constant second input.
    static func run(_ op: String, second: [Int64], shape: [Int], strings: [String: [String]] = [:], ints: [String: Int] = [:]) throws -> ModelError? {
        var b = ModelBuilder(opset: 18)
        b.input("x", [2, 3])
        b.constant("k", ints: second, shape: shape)
        b.node(op, ["x", "k"], ["y"], name: "bad", ints: ints, strings: strings)
        b.output("y")
        do {
            _ = try Executor(model: b.model(), options: ExecutorOptions(threads: 1)).run(["x": Tensor(floats: [1, 2, 3, 4, 5, 6], shape: [2, 3])])
            return nil
        } catch let error as ModelError { return error }
    }

    @Test func outOfRangeArgumentsAreErrors() throws {
        let gather = try #require(try Self.run("GatherElements", second: [0, 3, 1, 0, 0, 0], shape: [2, 3], ints: ["axis": 1]))
        #expect(gather.description.contains("node 'bad' (GatherElements)") && gather.description.contains("index 3, out of range for size 3"), "\(gather)")
        let topK = try #require(try Self.run("TopK", second: [4], shape: [1]))
        #expect(topK.description.contains("node 'bad' (TopK)") && topK.description.contains("K is 4, outside 0...3"), "\(topK)")
        let cumSum = try #require(try Self.run("CumSum", second: [2], shape: []))
        #expect(cumSum.description.contains("node 'bad' (CumSum)") && cumSum.description.contains("axis 2 is out of range for rank 2"), "\(cumSum)")
    }

    @Test func einsumEquationsAreChecked() throws {
        var b = ModelBuilder(opset: 18)
        b.input("x", [2, 3])
        b.input("w", [4, 5])
        b.node("Einsum", ["x", "w"], ["y"], name: "mix")
        b.output("y")
        var proto = b
        proto.graph.node[0].attribute.append(.with { $0.name = "equation"; $0.type = .string; $0.s = Data("ij,jk->ik".utf8) })
        let feeds = ["x": Tensor(floats: Array(repeating: 1, count: 6), shape: [2, 3]), "w": Tensor(floats: Array(repeating: 1, count: 20), shape: [4, 5])]
        let error = try #require(#expect(throws: ModelError.self) { try Executor(model: proto.model(), options: ExecutorOptions(threads: 1)).run(feeds) })
        #expect(error.description.contains("node 'mix' (Einsum)") && error.description.contains("label 'j' has sizes 3 and 4"), "\(error)")
    }
}

/// GroupNormalization's two meanings, by hand: opset 18 scales per group, opset 21 per channel.
struct GroupNormalizationTests {
    static func run(opset: Int64, scale: [Float], bias: [Float]) throws -> [Float] {
        var b = ModelBuilder(opset: opset)
        b.input("x", [1, 4, 1, 1])
        b.constant("scale", floats: scale, shape: [scale.count])
        b.constant("bias", floats: bias, shape: [bias.count])
        b.node("GroupNormalization", ["x", "scale", "bias"], ["y"], name: "norm", ints: ["num_groups": 2], floats: ["epsilon": 0])
        b.output("y")
        return try Executor(model: b.model(), options: ExecutorOptions(threads: 1)).run(["x": Tensor(floats: [1, 2, 3, 4], shape: [1, 4, 1, 1])])["y"]!.floats
    }

    @Test func scalesPerGroupThenPerChannel() throws {
        // Each group {1, 2} and {3, 4} normalises to [-1, 1].
        #expect(try Self.run(opset: 18, scale: [2, 3], bias: [0.5, -1]) == [-1.5, 2.5, -4, 2])
        #expect(try Self.run(opset: 21, scale: [1, 2, 3, 4], bias: [0, 1, 2, 3]) == [-1, 3, -1, 7])
    }
}
