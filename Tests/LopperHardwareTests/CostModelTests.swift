import Foundation
import LopperHardware
import LopperModel
import LopperPruning
import LopperTesting
import Testing

/// A round-number device: 100 GOPS fp32, efficiency 0.5 for convolutions, 10 GB/s, 5 µs per step.
func testProfile(alignment: Int = 1, sparsity: [SparsityPattern: Double] = [:], onChip: Int? = nil) -> HardwareProfile {
    HardwareProfile(name: "test", description: "round numbers", dtype: .fp32, peakGops: [.fp32: 100],
                    efficiency: [.conv: 0.5, .depthwiseConv: 0.2, .gemm: 0.5, .elementwise: 0.25, .pooling: 0.25, .dataMovement: 0.25],
                    memoryBandwidthGBs: 10, onChipBytes: onChip, onChipBandwidthGBs: onChip.map { _ in 100 },
                    weightMemoryBytes: 1 << 20, activationMemoryBytes: 1 << 20, launchOverheadSeconds: 5e-6,
                    channelAlignment: alignment, sparsitySpeedup: sparsity)
}

/// x[1,8,10,10] → Conv A (16 filters 3×3, pads 1, bias) → Relu → Conv B (4 filters 1×1) → y[1,4,10,10].
func twoConvModel() throws -> Model {
    try convActivationModel { $0.node("Relu", ["a"], ["r"], name: "relu") }
}

@Suite struct CostModelTests {
    @Test func handComputedDenseCost() throws {
        let graph = try CostGraph(twoConvModel())
        let report = CostModel(graph: graph, profile: testProfile()).report()
        #expect(report.steps.map(\.kind) == ["Conv+Relu", "Conv"])
        // A: 1600 outputs × 72 = 115,200 MACs; B: 400 × 16 = 6,400.
        #expect(report.steps.map(\.macs) == [115_200, 6_400])
        #expect(report.totals.macs == 121_600)
        // (1152 + 16 + 64) floats.
        #expect(report.totals.paramBytes == 4_928)
        // x and A's output are alive together: (800 + 1600) × 4 bytes.
        #expect(report.totals.peakActivationBytes == 9_600)
        // A: ops 2 × 115,200 + 1,600 (the fused Relu) at 50 GOPS = 4.64 µs, beats 14,272 B at 10 GB/s; + 5 µs.
        // B: 12,800 ops = 0.256 µs, under 8,256 B = 0.8256 µs; + 5 µs.
        #expect(abs(report.steps[0].latencySeconds - 9.64e-6) < 1e-12)
        #expect(abs(report.steps[1].latencySeconds - 5.8256e-6) < 1e-12)
        #expect(abs(report.totals.latencySeconds - 15.4656e-6) < 1e-12)
        #expect(report.steps[1].computeSeconds < report.steps[1].memorySeconds)
    }

    @Test func alignmentPadsComputeNotMACs() throws {
        let report = CostModel(graph: try CostGraph(twoConvModel()), profile: testProfile(alignment: 32)).report()
        #expect(report.totals.macs == 121_600)
        // A: 100 positions × 32 × 32 × 9 = 921,600 padded MACs → (1,843,200 + 1,600) ops = 36.896 µs.
        // B: 100 × 32 × 32 = 102,400 → 204,800 ops = 4.096 µs, now above its memory time.
        #expect(abs(report.steps[0].computeSeconds - 36.896e-6) < 1e-12)
        #expect(abs(report.totals.latencySeconds - 50.992e-6) < 1e-12)
        // The latency step: 17 kept filters cost what 32 do, 16 cost the same too.
        let graph = try CostGraph(twoConvModel())
        let model = CostModel(graph: graph, profile: testProfile(alignment: 32))
        let keep16 = model.totals(PruningPlan(groups: [.init(group: 0, kept: 16)]))
        let keep9 = model.totals(PruningPlan(groups: [.init(group: 0, kept: 9)]))
        #expect(abs(keep16.latencySeconds - keep9.latencySeconds) < 0.001 * keep16.latencySeconds)
        #expect(keep9.macs < keep16.macs)
    }

    @Test func planShrinksProducerAndConsumer() throws {
        let graph = try CostGraph(twoConvModel())
        #expect(graph.groups.map(\.isPrunable) == [true, false])
        let totals = CostModel(graph: graph, profile: testProfile()).totals(PruningPlan(groups: [.init(group: 0, kept: 8)]))
        // A: 800 × 72; B: 400 × 8.
        #expect(totals.macs == 57_600 + 3_200)
        #expect(totals.paramBytes == (576 + 8 + 32) * 4)
        #expect(totals.peakActivationBytes == (800 + 800) * 4)
    }

    @Test func sparsitySpeedsUpOnlyWhereSupported() throws {
        let graph = try CostGraph(twoConvModel())
        let plan = PruningPlan(layers: [.init(node: "A", pattern: .nOfM(n: 2, m: 4), sparsity: 0.5)])
        let plain = CostModel(graph: graph, profile: testProfile())
        let sparse = CostModel(graph: graph, profile: testProfile(sparsity: [.nOfM(n: 2, m: 4): 1.6]))
        let dense = plain.report()
        let unsupported = plain.report(plan)
        let supported = sparse.report(plan)
        #expect(unsupported.totals.nonZeroMACs == 57_600 + 6_400)
        #expect(unsupported.totals.latencySeconds == dense.totals.latencySeconds)
        #expect(unsupported.totals.paramBytes == dense.totals.paramBytes)
        // 2:4 on a device that accelerates it: compute / 1.6; weights stored as half the values
        // plus a 2-bit index per non-zero.
        #expect(abs(supported.steps[0].computeSeconds - 4.64e-6 / 1.6) < 1e-12)
        #expect(supported.totals.paramBytes == 1152 * 2 + (576 * 2 + 7) / 8 + 16 * 4 + 64 * 4)
        // Unstructured sparsity gets nothing on a device with only a 2:4 engine.
        let unstructured = sparse.report(PruningPlan(layers: [.init(node: "A", pattern: .unstructured, sparsity: 0.5)]))
        #expect(unstructured.totals.latencySeconds == dense.totals.latencySeconds)
    }

    @Test func onChipBandwidthForSmallWorkingSets() throws {
        let graph = try CostGraph(twoConvModel())
        // B moves 8,256 B: on chip (100 GB/s) with a 10,000-byte cache, A's 14,272 B do not fit.
        let report = CostModel(graph: graph, profile: testProfile(onChip: 10_000)).report()
        #expect(abs(report.steps[1].memorySeconds - 8256 / 100e9) < 1e-15)
        #expect(abs(report.steps[0].memorySeconds - 14272 / 10e9) < 1e-15)
    }

    @Test func planValidationNamesTheGroup() throws {
        let graph = try CostGraph(twoConvModel())
        #expect(throws: ModelError.self) { try PruningPlan(groups: [.init(group: 1, kept: 2)]).validate(against: graph.groups) }
        #expect(throws: ModelError.self) { try PruningPlan(groups: [.init(group: 7, kept: 2)]).validate(against: graph.groups) }
        #expect(throws: ModelError.self) { try PruningPlan(groups: [.init(group: 0, kept: 0)]).validate(against: graph.groups) }
        do {
            try PruningPlan(groups: [.init(group: 1, kept: 2)]).validate(against: graph.groups)
        } catch let error as ModelError {
            #expect(error.message.contains("group 1 'B' cannot be pruned"))
        }
    }

    /// The plan priced on the dense graph equals the physically pruned model priced from scratch.
    @Test(arguments: ["conv_chain", "residual", "c2f_block", "mobilenet_block", "transformer_encoder", "paddle_constants", "chain24",
                      "wake_word", "recurrent_variants"])
    func planCostEqualsPrunedModelCost(fixture: String) throws {
        let path = Fixtures.model(fixture)
        try planMatchesSurgery(path: path)
    }

    @Test func planCostEqualsPrunedModelCostOnRealModels() throws {
        guard Fixtures.hasRealModels else { return }
        try planMatchesSurgery(path: Fixtures.ocrDetector)
        try planMatchesSurgery(path: Fixtures.ocrClassifier)
        try planMatchesSurgery(path: Fixtures.digitsClassifier)
        // The label path after the MLP (ai.onnx.ml.ArrayFeatureExtractor over the classes) is priced too.
        let digits = try CostGraph(Model.load(path: Fixtures.digitsClassifier))
        #expect(digits.uncosted.isEmpty, "\(digits.uncosted)")
    }

    func planMatchesSurgery(path: String) throws {
        let model = try Model.load(path: path)
        let shapes = Fixtures.inputShape(for: path).map { shape in [model.graph.feedInputs[0].name: shape] } ?? [:]
        let graph = try CostGraph(model, inputShapes: shapes)
        let removing = try ChannelSelection(sparsity: 0.5).channelsToRemove(graph.groups, in: model, by: MagnitudeImportance(p: 1))
        #expect(!removing.isEmpty, "\(path) has prunable groups")
        let plan = PruningPlan(groups: removing.map { id, removed in
            let size = graph.groups[id].size
            let kept = (0..<size).filter { !Set(removed).contains($0) }
            return .init(group: id, kept: kept.count, indices: kept)
        }.sorted { $0.group < $1.group })
        try plan.validate(against: graph.groups)
        let pruned = try ChannelSurgery.prune(model, groups: graph.groups, removing: removing)
        for profile in [testProfile(), testProfile(alignment: 8, onChip: 1 << 16)] {
            let planned = CostModel(graph: graph, profile: profile).totals(plan)
            let fromScratch = CostModel(graph: try CostGraph(pruned, inputShapes: shapes), profile: profile).totals()
            #expect(planned.macs == fromScratch.macs, "\(path) MACs")
            #expect(planned.paramBytes == fromScratch.paramBytes, "\(path) weights")
            #expect(planned.peakActivationBytes == fromScratch.peakActivationBytes, "\(path) peak memory")
            #expect(abs(planned.latencySeconds - fromScratch.latencySeconds) <= 1e-9 * fromScratch.latencySeconds, "\(path) latency")
            #expect(planned.macs < CostModel(graph: graph, profile: profile).totals().macs)
        }
    }

    /// MACs agree with `lopper inspect`'s independent count (checked against ONNX Runtime's shapes).
    @Test func denseMACsEqualModelSummary() throws {
        for fixture in ["conv_chain", "residual", "c2f_block", "mobilenet_block", "transformer_encoder", "chain24", "wake_word",
                        "recurrent_variants"] {
            let model = try Model.load(path: Fixtures.model(fixture))
            let shapes = Fixtures.inputShape(for: Fixtures.model(fixture)).map { [model.graph.feedInputs[0].name: $0] } ?? [:]
            let cost = CostModel(graph: try CostGraph(model, inputShapes: shapes), profile: testProfile()).totals()
            #expect(cost.macs == (try ModelSummary(model, inputShapes: shapes)).macs, "\(fixture)")
        }
    }
}
