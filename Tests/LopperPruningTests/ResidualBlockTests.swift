import Foundation
import LopperModel
import LopperPruning
import LopperRuntime
import LopperTesting
import Testing

/// Residual blocks found on the graph, and their removal: the removed model equals the dense
/// model with the block's branch multiplied by zero, in ONNX Runtime and in Lopper's runtime.
@Suite struct ResidualBlockTests {
    static let fixtures = ["residual", "mobilenet_block", "c2f_block", "transformer_encoder"]

    /// The dense model with the branch of `block` multiplied by zero before its join.
    static func zeroingBranch(_ model: Model, _ block: ResidualBlock) throws -> Model {
        var zeroed = model
        let zero = zeroed.graph.addInitializer(TensorData(floats: [0], shape: []), nameBase: "zero")
        let join = try #require(zeroed.graph.nodes.firstIndex { $0.displayName == block.join })
        var scale = Node(proto: .init(), index: zeroed.graph.nodes.count)
        scale.proto.opType = "Mul"
        scale.proto.input = [block.branchOutput, zero]
        scale.proto.output = [block.branchOutput + "_zeroed"]
        var nodes = zeroed.graph.nodes
        nodes[join].proto.input = nodes[join].inputs.map { $0 == block.branchOutput ? block.branchOutput + "_zeroed" : $0 }
        try zeroed.graph.setNodes(nodes + [scale])
        return zeroed
    }

    @Test func blocksOfTheFixtures() throws {
        let residual = try ResidualBlocks.find(in: try Model.load(path: Fixtures.model("residual")))
        #expect(residual.count == 2)
        #expect(residual.allSatisfy { $0.isRemovable })
        #expect(residual[0].skip == "x")
        #expect(residual.map(\.nodes.count) == [3, 3], "conv, relu, conv: \(residual.map(\.nodes))")

        let mobile = try ResidualBlocks.find(in: try Model.load(path: Fixtures.model("mobilenet_block")))
        #expect(mobile.count == 1)
        #expect(mobile[0].skip == "x" && mobile[0].isRemovable)
        #expect(mobile[0].nodes.count == 6, "expand conv, HardSwish, depthwise conv, BN, Relu, project conv: \(mobile[0].nodes)")

        // The bottleneck of a C2f block: its skip is the Split's second section, which the
        // Concat reads as well (outside the block, but the skip is not inside it).
        let c2f = try ResidualBlocks.find(in: try Model.load(path: Fixtures.model("c2f_block")))
        #expect(c2f.count == 1 && c2f[0].isRemovable)

        // Post-LayerNorm encoder: the attention sub-layer (from x) and the FFN sub-layer.
        let encoderModel = try Model.load(path: Fixtures.model("transformer_encoder"))
        let encoder = try ResidualBlocks.find(in: encoderModel)
        #expect(encoder.count == 2 && encoder.allSatisfy { $0.isRemovable }, "\(encoder)")
        #expect(encoder[0].skip == "x")
        let opTypes = { (block: ResidualBlock) in
            Set(block.nodes.compactMap { name in encoderModel.graph.nodes.first { $0.displayName == name }?.opType })
        }
        #expect(opTypes(encoder[0]).isSuperset(of: ["MatMul", "Softmax", "Reshape", "Transpose"]), "\(encoder[0].nodes)")
        #expect(!opTypes(encoder[0]).contains("LayerNormalization"))
        #expect(opTypes(encoder[1]).isSuperset(of: ["MatMul", "Erf", "Mul"]), "\(encoder[1].nodes)")
    }

    @Test(.enabled(if: Reference.isAvailable), arguments: fixtures)
    func removedBlockEqualsZeroedBranch(name: String) throws {
        let path = Fixtures.model(name)
        let model = try Model.load(path: path)
        let blocks = try ResidualBlocks.find(in: model).filter(\.isRemovable)
        try #require(!blocks.isEmpty)
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for block in blocks {
            let removed = try BlockSurgery.remove(model, blocks: [(block, .skip)])
            let zeroed = try Self.zeroingBranch(model, block)
            #expect(removed.graph.nodes.count <= model.graph.nodes.count - block.nodes.count, "\(name) \(block.name)")
            let removedPath = directory.appendingPathComponent("removed.onnx").path
            let zeroedPath = directory.appendingPathComponent("zeroed.onnx").path
            try removed.save(to: removedPath)
            try zeroed.save(to: zeroedPath)
            #expect(try Reference.checkerError(removedPath) == nil, "\(name) \(block.name)")
            let comparison = try Reference.call(["compare", zeroedPath, removedPath, "--rtol", "0", "--atol", "0"]
                                                + Fixtures.shapeArguments(for: path))
            #expect(comparison["close"] as? Bool == true, "\(name) \(block.name) in ONNX Runtime: \(comparison)")

            var feeds: [String: Tensor] = [:]
            var random = SeededGenerator(seed: 7)
            for input in model.graph.feedInputs {
                let dims = Fixtures.inputShape(for: path)
                    ?? (input.type?.shape ?? []).enumerated().map { $0.element.value ?? ($0.offset == 0 ? 1 : 16) }
                feeds[input.name] = Tensor(floats: random.floats(dims.reduce(1, *)), shape: dims)
            }
            let expected = try Executor(model: zeroed, options: ExecutorOptions(threads: 1)).run(feeds)
            let actual = try Executor(model: removed, options: ExecutorOptions(threads: 1)).run(feeds)
            for (output, want) in expected {
                #expect(actual[output]?.floats == want.floats, "\(name) \(block.name) in Lopper's runtime: output '\(output)'")
            }
            let before = try ModelSummary(model, inputShapes: [:]).params
            #expect(try ModelSummary(removed, inputShapes: [:]).params < before, "\(name) \(block.name)")
        }
        // All of them at once.
        let all = try BlockSurgery.remove(model, blocks: blocks.map { ($0, .skip) })
        let allPath = directory.appendingPathComponent("all.onnx").path
        try all.save(to: allPath)
        #expect(try Reference.checkerError(allPath) == nil, "\(name): every block removed")
    }

    @Test func refusedStructuresSayWhy() throws {
        // x → conv → relu (also a model output) → conv → Add(x, ·): an inner value read outside.
        var leaky = ModelBuilder()
        leaky.input("x", [1, 4, 8, 8])
        leaky.constant("w1", floats: [Float](repeating: 0.1, count: 4 * 4), shape: [4, 4, 1, 1])
        leaky.constant("w2", floats: [Float](repeating: 0.2, count: 4 * 4), shape: [4, 4, 1, 1])
        leaky.node("Conv", ["x", "w1"], ["a"], name: "c1")
        leaky.node("Relu", ["a"], ["h"], name: "r1")
        leaky.node("Conv", ["h", "w2"], ["b"], name: "c2")
        leaky.node("Add", ["x", "b"], ["y"], name: "join")
        leaky.output("y")
        leaky.output("h")
        let inner = try ResidualBlocks.find(in: try leaky.model())
        #expect(inner.count == 1)
        #expect(inner[0].refusal?.contains("'h' inside the block is a model output") == true, "\(inner)")

        // A branch that pools to [1, 4, 1, 1] and is broadcast back: the shape changes.
        var pooled = ModelBuilder()
        pooled.input("x", [1, 4, 8, 8])
        pooled.node("GlobalAveragePool", ["x"], ["p"], name: "gap")
        pooled.node("Sigmoid", ["p"], ["s"], name: "gate")
        pooled.node("Add", ["x", "s"], ["y"], name: "join")
        pooled.output("y")
        let broadcast = try ResidualBlocks.find(in: try pooled.model())
        #expect(broadcast.first?.refusal == "the branch changes the shape ([1, 4, 8, 8] → [1, 4, 1, 1])", "\(broadcast)")

        // A projection shortcut: both addends are layers of x.
        var projection = ModelBuilder()
        projection.input("x", [1, 4, 8, 8])
        projection.constant("w1", floats: [Float](repeating: 0.1, count: 16), shape: [4, 4, 1, 1])
        projection.constant("w2", floats: [Float](repeating: 0.2, count: 16), shape: [4, 4, 1, 1])
        projection.node("Conv", ["x", "w1"], ["a"], name: "main")
        projection.node("Conv", ["x", "w2"], ["b"], name: "shortcut")
        projection.node("Add", ["a", "b"], ["y"], name: "join")
        projection.output("y")
        let shortcut = try ResidualBlocks.find(in: try projection.model())
        #expect(shortcut.first?.refusal?.contains("shortcut through a layer of its own") == true, "\(shortcut)")
        #expect(throws: ModelError.self) { try BlockSurgery.remove(try projection.model(), blocks: [(shortcut[0], .skip)]) }
    }

    /// A block that is a model's last node keeps the output's name (through an Identity).
    @Test func blockEndingAtTheOutputKeepsItsName() throws {
        var builder = ModelBuilder()
        builder.input("x", [1, 4, 8, 8])
        builder.constant("w", floats: [Float](repeating: 0.1, count: 16), shape: [4, 4, 1, 1])
        builder.node("Conv", ["x", "w"], ["b"], name: "conv")
        builder.node("Add", ["x", "b"], ["y"], name: "join")
        builder.output("y")
        let model = try builder.model()
        let blocks = try ResidualBlocks.find(in: model)
        let removed = try BlockSurgery.remove(model, blocks: [(blocks[0], .skip)])
        #expect(removed.graph.outputs.map(\.name) == ["y"])
        #expect(removed.graph.nodes.map(\.opType) == ["Identity"])
        #expect(removed.graph.initializers.isEmpty, "the conv's weight goes with it")
        let input = Tensor(floats: (0..<256).map { Float($0) / 7 }, shape: [1, 4, 8, 8])
        #expect(try Executor(model: removed, options: ExecutorOptions(threads: 1)).run(["x": input])["y"]?.floats == input.floats)
    }
}
