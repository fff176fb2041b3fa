import Foundation
import LopperModel
import LopperTesting
import Testing

/// Parameters and MACs against an independent count: ONNX Runtime's observed shapes and numpy's
/// tensor sizes, computed by `onnx_reference.py count`.
@Suite struct ModelSummaryTests {
    @Test(.enabled(if: Reference.isAvailable), arguments: Fixtures.runnableFixtures.map(Fixtures.model))
    func fixtureCountsMatchReference(path: String) throws {
        try expectCountsMatchReference(path)
    }

    @Test(.enabled(if: Reference.isAvailable && Fixtures.hasRealModels),
          arguments: [Fixtures.ocrDetector, Fixtures.ocrClassifier, Fixtures.digitsClassifier])
    func realModelCountsMatchReference(path: String) throws {
        try expectCountsMatchReference(path)
    }

    private func expectCountsMatchReference(_ path: String) throws {
        let given = Fixtures.inputShape(for: path).map { ["x": $0] } ?? [:]
        let summary = try ModelSummary(try Model.load(path: path), inputShapes: given)
        let reference = try Reference.call(["count", path] + Fixtures.shapeArguments(for: path))
        #expect(summary.params == reference["params"] as? Int)
        #expect(summary.macs == reference["macs"] as? Int)
        #expect(summary.layersWithUnknownMACs == 0 || !summary.unsupported.isEmpty)
    }

    @Test(.enabled(if: Fixtures.hasRealModels)) func realDetectorTotals() throws {
        // Hand-checked once against two independent counts (ONNX Runtime shapes, ONNX shape inference).
        let summary = try ModelSummary(try Model.load(path: Fixtures.ocrDetector), inputShapes: ["x": [1, 3, 640, 640]])
        #expect(summary.params == 1_171_841)
        #expect(summary.macs == 2_301_935_744)
        #expect(summary.unsupported.isEmpty)
    }

    @Test func unsupportedOperatorsAreListedWithNodes() throws {
        let summary = try ModelSummary(try Model.load(path: Fixtures.model("unsupported_ops")))
        #expect(summary.unsupported.map(\.opType) == ["Unique", "MyOp"])
        #expect(summary.unsupported.map(\.domain) == ["ai.onnx", "com.example"])
        #expect(summary.unsupported.flatMap(\.nodes) == ["unique_0", "myop_0"])
    }

    @Test func granularities() throws {
        let summary = try ModelSummary(try Model.load(path: Fixtures.model("mobilenet_block")))
        let byName = Dictionary(uniqueKeysWithValues: summary.layers.map { ($0.name, $0.granularities) })
        // 1x1 expand conv over 16 channels: reduction 16 → both N:M patterns.
        #expect(byName["conv_0"] == ["unstructured", "2:4", "4:8", "channel"])
        // Depthwise 3x3: reduction 9 → no N:M.
        #expect(byName["conv_1"] == ["unstructured", "channel"])
        #expect(byName["relu_0"] == [])
    }
}
