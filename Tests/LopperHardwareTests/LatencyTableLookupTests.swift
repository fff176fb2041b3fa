@testable import LopperHardware
import Testing

/// How a latency table answers for a step it has no entry for.
@Suite struct LatencyTableLookupTests {
    /// A 1×1 Conv (with its hard-swish) over 8×C×3×96 to `filters` filters.
    static func pointwise(channels: Int, filters: Int) -> (signature: String, ops: Double) {
        ("Conv+Add+Clip+Mul+Div|fp32|group=1 kernel_shape=1x1|8x\(channels)x3x96 \(filters)x\(channels)x1x1 -> 8x\(filters)x3x96",
         Double(2 * 8 * 3 * 96 * filters * channels))
    }

    static func entry(channels: Int, filters: Int, base: Double) -> LatencyTable.Entry {
        let step = pointwise(channels: channels, filters: filters)
        return .init(signature: step.signature, seconds: base + step.ops * 1e-12, opClass: .conv, ops: step.ops, bytes: 1e5)
    }

    /// Two layers of the same kind and spatial size blank to the same layer; the one sharing the
    /// step's other sizes (its 104 filters) answers, not a line through both.
    @Test func theLayerSharingTheStepsOtherSizesAnswers() throws {
        let table = LatencyTable([4, 8, 12].map { Self.entry(channels: $0, filters: 104, base: 400e-6) }
                                 + [4, 16].map { Self.entry(channels: $0, filters: 88, base: 100e-6) })
        let query = Self.pointwise(channels: 6, filters: 104)
        let answer = try #require(table.latency(signature: query.signature, ops: query.ops, bytes: 1e5) { _, _ in 1 })
        #expect(!answer.exact)
        #expect(abs(answer.value - (400e-6 + query.ops * 1e-12)) < 1e-12)
        let other = Self.pointwise(channels: 10, filters: 88)
        let otherAnswer = try #require(table.latency(signature: other.signature, ops: other.ops, bytes: 1e5) { _, _ in 1 })
        #expect(abs(otherAnswer.value - (100e-6 + other.ops * 1e-12)) < 1e-12)
    }

    /// The sizes pruning changes, and which of them sit on the alignment.
    @Test func blankedSizesAndAlignmentClass() {
        let signature = Self.pointwise(channels: 6, filters: 104).signature
        #expect(LatencyTable.blankedSizes(of: signature) == [8, 6, 104, 6, 8, 104])
        #expect(LatencyTable.alignmentClass(LatencyTable.blankedSizes(of: signature), alignment: 8) == [true, false, true, false, true, true])
        #expect(LatencyTable.alignmentClass(LatencyTable.blankedSizes(of: signature), alignment: 1).isEmpty)
        #expect(LatencyTable.layer(of: "Conv|fp32|dilations=1x1 group=18 kernel_shape=3x3|8x18x6x96 18x1x3x3 -> 8x18x6x96")
                == LatencyTable.layer(of: "Conv|fp32|dilations=1x1 group=30 kernel_shape=3x3|8x30x6x96 30x1x3x3 -> 8x30x6x96"))
        #expect(LatencyTable.layer(of: "Conv|fp32|group=2 kernel_shape=3x3|1x8x6x6 8x4x3x3 -> 1x8x6x6")
                != LatencyTable.layer(of: "Conv|fp32|group=4 kernel_shape=3x3|1x8x6x6 8x2x3x3 -> 1x8x6x6"))
    }
}
