import Foundation
import LopperModel
import LopperPruning
import LopperTesting
import Testing

@Suite struct CriteriaAndSparsityTests {
    @Test func keptCountsRoundAndRespectTheMinimum() throws {
        #expect(try ChannelSelection(sparsity: 0.5).keptCount(size: 16) == 8)
        #expect(try ChannelSelection(sparsity: 0.7, roundTo: 8).keptCount(size: 24) == 8)      // 7.2 → 7 → 8
        #expect(try ChannelSelection(sparsity: 0.6, roundTo: 8).keptCount(size: 24) == 16)     // 9.6 → 10 → 16
        #expect(try ChannelSelection(sparsity: 0.9, minimumKept: 4).keptCount(size: 16) == 4)
        #expect(try ChannelSelection(sparsity: 0.1, roundTo: 32).keptCount(size: 24) == 24)    // never more than the group
        #expect(throws: ModelError.self) { try ChannelSelection(sparsity: 1.0) }
        #expect(throws: ModelError.self) { try ChannelSelection(sparsity: -0.1) }
    }

    @Test func magnitudeScoresSumFiltersAndInputSlices() throws {
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let group = try DependencyAnalysis.groups(of: model)[0]
        // Independent count: conv_0's filter c ([8,3,3,3]) plus conv_1's input slice c ([16,8,3,3]).
        let w0 = try #require(try model.graph.constant(model.graph.nodes[0].inputs[1])).floats()
        let w1 = try #require(try model.graph.constant(model.graph.nodes[3].inputs[1])).floats()
        let l1 = try MagnitudeImportance(p: 1).scores(for: group, in: model)
        let l2 = try MagnitudeImportance(p: 2).scores(for: group, in: model)
        for c in 0..<8 {
            let filter = (0..<27).map { Double(w0[c * 27 + $0]) }
            let slice = (0..<16).flatMap { o in (0..<9).map { Double(w1[(o * 8 + c) * 9 + $0]) } }
            #expect(abs(l1[c] - (filter.map(abs).reduce(0, +) + slice.map(abs).reduce(0, +))) < 1e-9)
            let norms = filter.map { $0 * $0 }.reduce(0, +).squareRoot() + slice.map { $0 * $0 }.reduce(0, +).squareRoot()
            #expect(abs(l2[c] - norms) < 1e-9)
        }
    }

    @Test func batchNormScaleAndRandom() throws {
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let groups = try DependencyAnalysis.groups(of: model)
        let gamma = try #require(try model.graph.constant(model.graph.nodes[1].inputs[1])).doubles()
        #expect(try BatchNormScaleImportance().scores(for: groups[0], in: model) == gamma.map(abs))
        let a = try RandomImportance(seed: 3).scores(for: groups[0], in: model)
        #expect(a == (try RandomImportance(seed: 3).scores(for: groups[0], in: model)))
        #expect(a != (try RandomImportance(seed: 4).scores(for: groups[0], in: model)))
        let transformer = try Model.load(path: Fixtures.model("transformer_encoder"))
        let mlp = try #require(try DependencyAnalysis.groups(of: transformer).first(where: \.isPrunable))
        #expect(throws: ModelError.self) { try BatchNormScaleImportance().scores(for: mlp, in: transformer) }
    }

    @Test func lowestScoresAreRemoved() throws {
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let groups = try DependencyAnalysis.groups(of: model)
        let removing = try ChannelSelection(sparsity: 0.5).channelsToRemove(groups, in: model, by: MagnitudeImportance(p: 1))
        #expect(Set(removing.keys) == [0, 1, 2])
        let scores = try MagnitudeImportance(p: 1).scores(for: groups[1], in: model)
        let removed = try #require(removing[1])
        #expect(removed.count == 8)
        let kept = Set(0..<16).subtracting(removed)
        #expect(removed.map { scores[$0] }.max()! <= kept.map { scores[$0] }.min()!)
    }

    @Test(arguments: [(2, 4), (4, 8)])
    func nOfMPatternHoldsInEveryBlock(n: Int, m: Int) throws {
        let path = Fixtures.hasRealModels ? Fixtures.ocrDetector : Fixtures.model("mobilenet_block")
        let model = try Model.load(path: path)
        let (sparse, report) = try WeightSparsity.nOfM(model, targets: try WeightSparsity.targets(in: model), n: n, m: m)
        #expect(!report.tensors.isEmpty)
        for entry in report.tensors {
            let target = try #require(try WeightSparsity.targets(in: model).first { $0.tensor == entry.tensor })
            let data = try #require(try sparse.graph.constant(entry.tensor))
            let values = data.floats()
            let extent = data.shape[target.reductionAxis], inner = data.shape[(target.reductionAxis + 1)...].reduce(1, *)
            var blocks = 0
            for o in 0..<(values.count / (extent * inner)) {
                for i in 0..<inner {
                    for start in stride(from: 0, to: extent, by: m) {
                        let nonzero = (start..<(start + m)).filter { values[(o * extent + $0) * inner + i] != 0 }.count
                        #expect(nonzero <= n, "\(entry.tensor) block at \(o),\(start),\(i)")
                        blocks += 1
                    }
                }
            }
            #expect(blocks * m == values.count)
        }
        #expect(throws: ModelError.self) { try WeightSparsity.nOfM(model, targets: try WeightSparsity.targets(in: model), n: 4, m: 4) }
    }

    @Test func unstructuredPerLayerAndGlobal() throws {
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let targets = try WeightSparsity.targets(in: model)
        #expect(targets.map(\.node) == ["conv_0", "conv_1", "conv_2", "gemm_0"])
        let (_, perLayer) = try WeightSparsity.unstructured(model, targets: targets, sparsity: 0.5, global: false)
        for tensor in perLayer.tensors { #expect(tensor.zeros == tensor.elements / 2) }
        let (sparse, global) = try WeightSparsity.unstructured(model, targets: targets, sparsity: 0.5, global: true)
        #expect(global.zeros == global.elements / 2)
        // Globally, every remaining weight is at least as large as every removed one.
        let before = targets.flatMap { try! model.graph.constant($0.tensor)!.floats() }
        let after = targets.flatMap { try! sparse.graph.constant($0.tensor)!.floats() }
        let removed = zip(before, after).filter { $0.1 == 0 }.map { abs($0.0) }
        let kept = after.filter { $0 != 0 }.map(abs)
        #expect(removed.max()! <= kept.min()!)
        #expect(throws: ModelError.self) { try WeightSparsity.targets(in: model, matching: "nothing_*") }
        #expect(try WeightSparsity.targets(in: model, matching: "conv_[12]").map(\.node) == ["conv_1", "conv_2"])
    }
}
