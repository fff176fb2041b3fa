import Foundation
import LopperModel
import LopperPruning
import LopperRuntime
import LopperTesting
import Testing

/// The invariant: a physically pruned model computes exactly what the dense model computes with
/// the removed channels' contribution masked, checked in ONNX Runtime; and it passes the checker.
@Suite struct SurgeryTests {
    /// About half of every prunable group's channels, chosen by a fixed-seed generator.
    static func halfOfEachGroup(_ groups: [PruneGroup], seed: UInt64) -> [Int: [Int]] {
        var random = SeededGenerator(seed: seed)
        var removing: [Int: [Int]] = [:]
        for group in groups where group.isPrunable && group.size > 1 {
            removing[group.id] = (0..<group.size).filter { _ in Bool.random(using: &random) }
            if removing[group.id]!.count == group.size { removing[group.id]!.removeLast() }
        }
        return removing
    }

    /// - Parameter inputShapes: shapes of inputs with symbolic sizes, by input name (default: the
    ///   fixture's single input from `Fixtures.inputShape(for:)`).
    func expectInvariant(_ path: String, inputShapes: [String: [Int]]? = nil, removing choose: ([PruneGroup]) -> [Int: [Int]]) throws {
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let model = try Model.load(path: path)
        let groups = try DependencyAnalysis.groups(of: model)
        let removing = choose(groups)
        try #require(!removing.isEmpty)
        let pruned = try ChannelSurgery.prune(model, groups: groups, removing: removing)
        let masked = try ChannelSurgery.maskContribution(model, groups: groups, removing: removing)
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let prunedPath = directory.appendingPathComponent("pruned.onnx").path
        let maskedPath = directory.appendingPathComponent("masked.onnx").path
        try pruned.save(to: prunedPath)
        try masked.save(to: maskedPath)

        #expect(try Reference.checkerError(prunedPath) == nil, "\(name)")
        let shape = Fixtures.inputShape(for: path)
        let shapeArguments = inputShapes.map { shapes in
            shapes.sorted { $0.key < $1.key }.flatMap { ["--shape", "\($0.key)=" + $0.value.map(String.init).joined(separator: "x")] }
        } ?? Fixtures.shapeArguments(for: path)
        let comparison = try Reference.call(["compare", maskedPath, prunedPath, "--rtol", "1e-4", "--atol", "1e-5"] + shapeArguments)
        #expect(comparison["close"] as? Bool == true, "\(name) in ONNX Runtime: \(comparison)")

        // The same invariant in Lopper's own runtime.
        var feeds: [String: Tensor] = [:]
        var random = SeededGenerator(seed: 99)
        for input in model.graph.feedInputs {
            let dims = inputShapes?[input.name] ?? shape ?? (input.type?.shape ?? []).enumerated().map { $0.element.value ?? ($0.offset == 0 ? 1 : 16) }
            let count = dims.reduce(1, *)
            // Integer inputs (token ids, masks) from [0, 10), as the reference draws them.
            feeds[input.name] = input.type?.elementType == .int64
                ? Tensor(int64s: (0..<count).map { _ in Int64.random(in: 0..<10, using: &random) }, shape: dims)
                : Tensor(floats: random.floats(count), shape: dims)
        }
        let expected = try Executor(model: masked, options: ExecutorOptions(threads: 1)).run(feeds)
        let actual = try Executor(model: pruned, options: ExecutorOptions(threads: 1)).run(feeds)
        for (output, want) in expected {
            let got = try #require(actual[output])
            #expect(got.shape == want.shape)
            let close = zip(got.floats, want.floats).allSatisfy { abs($0 - $1) <= 1e-5 + 1e-4 * abs($1) }
            #expect(close, "\(name) in Lopper's runtime: output '\(output)'")
        }
        let before = try ModelSummary(model, inputShapes: [:]).params
        let after = try ModelSummary(pruned, inputShapes: [:]).params
        #expect(after < before, "\(name): \(before) → \(after) parameters")
    }

    @Test(.enabled(if: Reference.isAvailable), arguments: Fixtures.runnableFixtures)
    func everyGroupAloneOnFixtures(name: String) throws {
        let groups = try DependencyAnalysis.groups(of: try Model.load(path: Fixtures.model(name)))
        for group in groups where group.isPrunable && group.size > 1 {
            // Remove the first and the last channel: exercises both ends of every member range.
            try expectInvariant(Fixtures.model(name)) { _ in [group.id: [0, group.size - 1]] }
        }
    }

    @Test(.enabled(if: Reference.isAvailable), arguments: Fixtures.runnableFixtures)
    func allGroupsTogetherOnFixtures(name: String) throws {
        let groups = try DependencyAnalysis.groups(of: try Model.load(path: Fixtures.model(name)))
        guard groups.contains(where: { $0.isPrunable && $0.size > 1 }) else { return }
        try expectInvariant(Fixtures.model(name)) { Self.halfOfEachGroup($0, seed: 7) }
    }

    @Test(.enabled(if: Reference.isAvailable && Fixtures.hasRealModels),
          arguments: [Fixtures.ocrDetector, Fixtures.ocrClassifier, Fixtures.yolov8Detector])
    func allGroupsTogetherOnRealModels(path: String) throws {
        try expectInvariant(path) { Self.halfOfEachGroup($0, seed: 11) }
    }

    /// The voice-activity model's LSTM carries its state from call to call (h_in/c_in through a
    /// Transpose and a reset If, out as h_out/c_out): its hidden units are a group that reads the
    /// kept units of the state and writes zero for the removed ones, keeping the interface.
    @Test(.enabled(if: Reference.isAvailable)) func carriedLSTMStateOfTheVoiceActivityModel() throws {
        let path = Fixtures.model("vad_lstm_if")
        let model = try Model.load(path: path)
        let groups = try DependencyAnalysis.groups(of: model)
        let lstm = try #require(groups.first { $0.name == "lstm_0" })
        #expect(lstm.isPrunable && lstm.size == 32, "\(lstm.blockedBecause ?? "")")
        #expect(Set(lstm.members.filter { $0.role == .stateInput }.map(\.node)) == ["lstm_0"])
        #expect(lstm.members.filter { $0.role == .stateInput }.count == 2)
        #expect(Set(lstm.members.filter { $0.role == .stateOutput }.map(\.tensor)) == ["h_out", "c_out"])
        let shapes = ["features": [2, 12, 40], "h_in": [2, 1, 32], "c_in": [2, 1, 32], "reset": [2]]
        for group in groups where group.isPrunable && group.size > 1 {
            try expectInvariant(path, inputShapes: shapes) { _ in [group.id: [0, group.size - 1]] }
        }
        try expectInvariant(path, inputShapes: shapes) { Self.halfOfEachGroup($0, seed: 7) }
        // The interface is unchanged, and a pruned model's state output fed back in runs.
        let pruned = try ChannelSurgery.prune(model, groups: groups, removing: [lstm.id: Array(stride(from: 0, to: 32, by: 2))])
        #expect(pruned.graph.inputs.map(\.type) == model.graph.inputs.map(\.type))
        #expect(pruned.graph.outputs.map(\.type) == model.graph.outputs.map(\.type))
        let executor = try Executor(model: pruned, options: ExecutorOptions(threads: 1))
        var random = SeededGenerator(seed: 4)
        var feeds = ["features": Tensor(floats: random.floats(2 * 12 * 40), shape: [2, 12, 40]), "reset": Tensor(floats: [0, 0], shape: [2]),
                     "h_in": Tensor(floats: random.floats(64), shape: [2, 1, 32]), "c_in": Tensor(floats: random.floats(64), shape: [2, 1, 32])]
        for _ in 0..<2 {
            let outputs = try executor.run(feeds)
            for name in ["h_out", "c_out"] {
                let state = try #require(outputs[name])
                #expect(state.shape == [2, 1, 32] && state.floats.enumerated().allSatisfy { $0.offset % 2 == 1 || $0.element == 0 }, "\(name)")
            }
            feeds["h_in"] = outputs["h_out"]
            feeds["c_in"] = outputs["c_out"]
        }
    }

    /// The pretrained encoder as PyTorch exports it: half of every head group and FFN group.
    @Test(.enabled(if: Reference.isAvailable && Fixtures.hasRealModels)) func realEncoderHeadsAndNeurons() throws {
        let groups = try DependencyAnalysis.groups(of: try Model.load(path: Fixtures.sentenceEncoder))
        #expect(groups.filter { $0.isPrunable && $0.isHeads }.map(\.size) == Array(repeating: 12, count: 6))
        #expect(groups.filter { $0.isPrunable && !$0.isHeads }.map(\.size) == Array(repeating: 1536, count: 6))
        try expectInvariant(Fixtures.sentenceEncoder, inputShapes: ["input_ids": [1, 12], "attention_mask": [1, 12]]) {
            Self.halfOfEachGroup($0, seed: 13)
        }
    }

    @Test func refusesBlockedGroupsAndEmptyResults() throws {
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let groups = try DependencyAnalysis.groups(of: model)
        #expect { try ChannelSurgery.prune(model, groups: groups, removing: [3: [0]]) } throws: {
            "\($0)".contains("group 3 'gemm_0' cannot be pruned: reaches graph output 'logits'")
        }
        #expect { try ChannelSurgery.prune(model, groups: groups, removing: [0: Array(0..<8)]) } throws: {
            "\($0)".contains("must keep at least one channel")
        }
        #expect { try ChannelSurgery.prune(model, groups: groups, removing: [0: [8]]) } throws: {
            "\($0)".contains("cannot remove [8]")
        }
    }
}
