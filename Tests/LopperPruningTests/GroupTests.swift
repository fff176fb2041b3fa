import Foundation
import LopperModel
import LopperPruning
import LopperTesting
import Testing

@Suite struct GroupTests {
    func groups(_ fixture: String) throws -> [PruneGroup] {
        try DependencyAnalysis.groups(of: try Model.load(path: Fixtures.model(fixture)))
    }

    @Test func convBatchNormChain() throws {
        let groups = try groups("conv_chain")
        #expect(groups.map(\.name) == ["conv_0", "conv_1", "conv_2", "gemm_0"])
        #expect(groups.map(\.isPrunable) == [true, true, true, false])
        #expect(groups[3].blockedBecause == "reaches graph output 'logits'")
        let first = groups[0]
        #expect(first.size == 8)
        // Filters, bias, BN scale/B/mean/var, and conv_1's input channels.
        #expect(first.members.filter { $0.role == .output }.map(\.axis) == [0])
        #expect(first.members.filter { $0.role == .parameter }.count == 5)
        #expect(first.members.filter { $0.role == .input }.map(\.node) == ["conv_1"])
        // GlobalAveragePool → Flatten → Gemm: each channel is one feature of the Gemm input.
        let last = try #require(groups[2].members.first { $0.role == .input })
        #expect(last.node == "gemm_0" && last.block == 1 && last.axis == 1)
    }

    @Test func residualWithGraphInputIsBlocked() throws {
        let groups = try groups("residual")
        #expect(groups[0].isPrunable)
        #expect(groups[1].producers == ["conv_1", "conv_3"])
        #expect(groups[1].blockedBecause?.contains("'add_0' (Add) joins the channels with 'x'") == true)
    }

    @Test func c2fSplitConcatAndBottleneck() throws {
        let groups = try groups("c2f_block")
        // cv1 (16 channels) is split in halves; the bottleneck's residual Add ties its output
        // (conv_3, 8 channels) to the second half: one group of 16 with conv_3 at offset 8.
        let cv1 = try #require(groups.first { $0.name == "conv_1" })
        #expect(cv1.size == 16 && cv1.isPrunable)
        let bottleneck = try #require(cv1.members.first { $0.role == .output && $0.node == "conv_3" })
        #expect(bottleneck.groupOffset == 8 && bottleneck.length == 8)
        #expect(cv1.members.filter { $0.role == .splitSize }.map(\.axis) == [0, 1])
        // The Concat feeds conv_4 with [half 1, half 2, bottleneck]: three input ranges.
        let concatInputs = cv1.members.filter { $0.role == .input && $0.node == "conv_4" }
        #expect(concatInputs.map(\.tensorOffset) == [0, 8, 16])
        #expect(concatInputs.map(\.groupOffset) == [0, 8, 8])
        // The head computes its Reshape target from Shape; the channel count in it is the
        // constant [6, -1] of its Concat, which pruning could rewrite, but the head is the output.
        let head = try #require(groups.last)
        #expect(head.blockedBecause == "reaches graph output 'output0'")
        #expect(head.members.contains { $0.role == .reshapeTarget && $0.node == "concat_1" && $0.tensor == "tail_0" && $0.axis == 0 })
    }

    /// The floor of issue 13: every conv group of the YOLOv8 detector is prunable except the
    /// detection outputs (the box and class convs, and the DFL conv that decodes the boxes).
    @Test func yolov8EveryConvGroupButTheDetectionOutputs() throws {
        let model = try Model.load(path: Fixtures.model("yolov8_tiny"))
        let groups = try DependencyAnalysis.groups(of: model)
        // Independently of the analysis: the detection-output convs are those no SiLU follows.
        let activated = Set(model.graph.nodes.filter { $0.opType == "Sigmoid" }.flatMap(\.inputs))
        let outputConvs = Set(model.graph.nodes.filter { $0.opType == "Conv" && !activated.contains($0.outputs[0]) }.map(\.displayName))
        #expect(outputConvs.count == 7)
        let refused = groups.filter { !$0.isPrunable }
        #expect(Set(refused.flatMap(\.producers)) == outputConvs, "\(refused.map { "\($0.name): \($0.blockedBecause ?? "")" })")
        // C2f: the bottleneck's residual Add couples its conv to the second half of cv1's Split,
        // which shares its sizes constant with other C2f blocks (as exporters store them).
        let split = try #require(model.graph.nodes.first { $0.opType == "Split" && model.graph.consumers[$0.inputs[1]]?.count ?? 0 > 1 })
        let cv1 = try #require(groups.first { $0.members.contains { $0.role == .splitSize && $0.node == split.displayName } })
        #expect(cv1.isPrunable && cv1.producers.count >= 2)
        let coverage = GroupCoverage(model: model, groups: groups)
        #expect(coverage.fraction == 1 && coverage.refused.isEmpty && coverage.outputGroups.count == refused.count)
    }

    @Test func channelAxisSlices() throws {
        let groups = try groups("channel_slice")
        let first = try #require(groups.first)
        #expect(first.isPrunable && first.size == 16)
        // The middle slice's start counts channels 0..<4, its end 0..<12; the tail's start 0..<10
        // (its end runs to the end and stays).
        let bounds = first.members.filter { $0.role == .sliceBound }.map { "\($0.node) \($0.tensor) \($0.units)" }
        #expect(bounds == ["slice_0 starts_0 0..<4", "slice_0 ends_0 0..<12", "slice_1 starts_1 0..<10"])
        // The convs reading the slices read channels 4..<12 and 10..<16 of the group.
        let inputs = first.members.filter { $0.role == .input }.map { "\($0.node) \($0.units) at \($0.tensorOffset)" }
        #expect(inputs == ["conv_1 4..<12 at 0", "conv_out 10..<16 at 8"])
    }

    @Test func attentionHeadsWithComputedTargets() throws {
        // The PyTorch export style: Reshape targets Concat(Unsqueeze(Gather(Shape(x))), [heads], [size]).
        let groups = try groups("transformer_shape_computed")
        let heads = try #require(groups.first { $0.isHeads })
        #expect(heads.size == 4 && heads.channelsPerUnit == 16 && heads.isPrunable)
        // The split's [4] and the merge's [64] are rewritten where their Concats read them.
        let targets = heads.members.filter { $0.role == .reshapeTarget }
        #expect(targets.count == 4 && targets.allSatisfy { $0.node.hasPrefix("concat") })
        #expect(groups.contains { !$0.isHeads && $0.size == 256 && $0.isPrunable }, "the FFN's neurons")
    }

    @Test func squeezeExciteAndDepthwise() throws {
        let groups = try groups("paddle_constants")
        let stem = groups[0]
        // The SE block's excite conv (conv_3) multiplies the stem's channels: same group.
        #expect(stem.producers == ["conv_0", "conv_3"])
        #expect(stem.members.contains { $0.role == .parameter && $0.node == "conv_1" }, "depthwise filters follow the channels")
        #expect(groups.last?.blockedBecause?.contains("Softmax") == true)
    }

    @Test func attentionHeadsFormOneGroup() throws {
        let groups = try groups("transformer_encoder")
        let heads = try #require(groups.first { $0.isHeads })
        #expect(heads.size == 4 && heads.channelsPerUnit == 16 && heads.isPrunable)
        // Q, K and V projections produce the heads; the output projection reads them.
        #expect(heads.producers == ["matmul_0", "matmul_1", "matmul_2"])
        #expect(heads.members.filter { $0.role == .input }.map(\.node) == ["matmul_5"])
        #expect(heads.members.filter { $0.role == .output }.allSatisfy { $0.block == 16 })
        // The [0, 0, 4, 16] targets lose one per head; the [0, 0, 64] target loses 16.
        #expect(heads.members.filter { $0.role == .reshapeTarget }.map(\.block) == [1, 1, 1, 16])
    }

    @Test func transformerMLPIsPrunableAndHiddenIsNot() throws {
        let groups = try groups("transformer_encoder")
        let mlp = try #require(groups.first { $0.size == 256 })
        #expect(mlp.isPrunable)
        #expect(mlp.members.filter { $0.role == .input }.map(\.node) == ["matmul_7"])
        #expect(groups.filter { $0.size == 64 }.allSatisfy { !$0.isPrunable })
    }
}
