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
        // The head computes its Reshape target from Shape: not rewritable, so not prunable.
        #expect(groups.last?.blockedBecause?.contains("computed target shape") == true)
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
