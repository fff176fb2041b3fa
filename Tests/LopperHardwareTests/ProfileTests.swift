import Foundation
import LopperHardware
import LopperModel
import LopperPruning
import LopperTesting
import Testing

@Suite struct ProfileTests {
    static let shipped = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Config/profiles").path

    static let valid = """
        name: dev
        description: a device
        dtype: fp16
        peak_gops:
          fp32: 10
          fp16: 20
        efficiency:
          conv: 0.5
          depthwise_conv: 0.1
          gemm: 0.6
          elementwise: 0.2
          pooling: 0.2
          data_movement: 0.2
        memory_bandwidth_gb_s: 5
        on_chip:
          bytes: 512KiB
          bandwidth_gb_s: 40
        memory:
          weights: 2MB
          activations: 1MiB
        launch_overhead_us: 12.5
        channel_alignment: 8
        sparsity:
          "2:4": 1.25
        default_budgets: latency=0.5x
        """

    @Test func everyShippedProfileLoads() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.shipped).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 7, "\(files)")
        for file in files {
            let profile = try HardwareProfile.load(path: (Self.shipped as NSString).appendingPathComponent(file))
            #expect(profile.name + ".yaml" == file)
            #expect(profile.peakOpsPerSecond > 0)
            #expect(profile.weightMemoryBytes > 0 && profile.activationMemoryBytes > 0)
        }
        for name in ["host", "raspberry-pi-5", "jetson-orin-nano", "imx8mp-npu", "stm32h7", "phone-soc", "x86-laptop"] {
            #expect(throws: Never.self) { try HardwareProfile.resolve(name, searching: [Self.shipped]) }
        }
    }

    @Test func parsesEveryField() throws {
        let p = try HardwareProfile.parse(yaml: Self.valid, file: "dev.yaml")
        #expect(p.dtype == .fp16 && p.peakOpsPerSecond == 20e9)
        #expect(p.efficiency[.depthwiseConv] == 0.1)
        #expect(p.onChipBytes == 512 * 1024 && p.onChipBandwidthGBs == 40)
        #expect(p.weightMemoryBytes == 2_000_000 && p.activationMemoryBytes == 1 << 20)
        #expect(abs(p.launchOverheadSeconds - 12.5e-6) < 1e-15)
        #expect(p.channelAlignment == 8 && p.aligned(9) == 16 && p.aligned(16) == 16)
        #expect(p.sparsitySpeedup == [.nOfM(n: 2, m: 4): 1.25])
        #expect(p.defaultBudgets == "latency=0.5x")
    }

    /// Each broken profile is refused with the file, the line and the field.
    @Test(arguments: [
        ("efficiency:\n  conv: 0.5", "efficiency:\n  conv: 0.5\n  convv: 0.3", "dev.yaml: efficiency.convv: line 9: unknown key 'convv'"),
        ("channel_alignment: 8", "channel_alignment: 8\nlevles: 3", "dev.yaml: levles: line 23: unknown key 'levles'"),
        ("dtype: fp16", "dtype: fp64", "dev.yaml: dtype: line 3: 'fp64' is not one of fp32, fp16, int8"),
        ("  conv: 0.5", "  conv: 1.5", "dev.yaml: efficiency.conv: line 8: must be in (0, 1], found 1.5"),
        ("  weights: 2MB", "  weights: lots", "dev.yaml: memory.weights: line 19: 'lots' is not one of a size such as 2MB, 512KiB or 4096"),
        ("memory_bandwidth_gb_s: 5\n", "", "dev.yaml: memory_bandwidth_gb_s: line 1: missing required key 'memory_bandwidth_gb_s'"),
        ("  \"2:4\": 1.25", "  \"5:4\": 1.25", "dev.yaml: sparsity.5:4: line 24: '5:4' is not a sparsity pattern"),
        ("  fp16: 20", "  fp8: 20", "dev.yaml: peak_gops.fp8: line 6: is not a number format"),
        ("launch_overhead_us: 12.5", "launch_overhead_us: [1, 2]", "dev.yaml: launch_overhead_us: line 21: expected a single value, found a list"),
        ("channel_alignment: 8", "channel_alignment: 0", "dev.yaml: channel_alignment: line 22: must be at least 1, found 0"),
    ])
    func malformedProfileNamesFileLineAndField(find: String, replace: String, expected: String) throws {
        let yaml = Self.valid.replacingOccurrences(of: find, with: replace)
        #expect(yaml != Self.valid)
        do {
            _ = try HardwareProfile.parse(yaml: yaml, file: "dev.yaml")
            Issue.record("accepted: \(replace)")
        } catch let error as ModelError {
            #expect(error.description.hasPrefix(expected), "\(error.description)")
        }
    }

    @Test func syntaxErrorsAndEmptyFiles() throws {
        for (yaml, expected) in [("name: [unclosed\n", "dev.yaml: line 2"), ("", "dev.yaml: the profile is empty"),
                                 ("- a\n- b\n", "dev.yaml: line 1: expected a mapping")] {
            do {
                _ = try HardwareProfile.parse(yaml: yaml, file: "dev.yaml")
                Issue.record("accepted: \(yaml)")
            } catch let error as ModelError {
                #expect(error.description.hasPrefix(expected), "\(error.description)")
            }
        }
        #expect(throws: ModelError.self) { try HardwareProfile.load(path: "/nonexistent/dev.yaml") }
        #expect(throws: ModelError.self) { try HardwareProfile.resolve("no-such-device", searching: [Self.shipped]) }
    }

    @Test func byteSizes() {
        #expect(ByteSize.parse("2MB") == 2_000_000)
        #expect(ByteSize.parse("2 MiB") == 2 * 1024 * 1024)
        #expect(ByteSize.parse("1.5GB") == 1_500_000_000)
        #expect(ByteSize.parse("4096") == 4096)
        #expect(ByteSize.parse("512KiB") == 524_288)
        #expect(ByteSize.parse("-1") == nil)
        #expect(ByteSize.parse("MB") == nil)
    }

    @Test func latencyTableRoundTripAndErrors() throws {
        let table = LatencyTable([.init(signature: "Conv|fp32|group=1|1x8x10x10 16x8x3x3 -> 1x16x10x10", seconds: 0.000412,
                                        opClass: .conv, ops: 2.3e5, bytes: 1.4e4)])
        let url = try Fixtures.temporaryDirectory().appendingPathComponent("t.csv")
        try table.csv().write(to: url, atomically: true, encoding: .utf8)
        let loaded = try LatencyTable.load(path: url.path)
        #expect(loaded.entries == table.entries)
        for (text, expected) in [("sig,ms\n", "line 1: expected the header"),
                                 ("signature,milliseconds\nConv|x,fast\n", "line 2: milliseconds 'fast'"),
                                 ("signature,milliseconds,op_class\nConv|x,1,convolution\n", "line 2: op_class 'convolution'")] {
            try text.write(to: url, atomically: true, encoding: .utf8)
            do {
                _ = try LatencyTable.load(path: url.path)
                Issue.record("accepted \(text)")
            } catch let error as ModelError {
                #expect(error.description.contains(expected), "\(error.description)")
            }
        }
    }
}

@Suite struct LatencyTableTests {
    let graph: CostGraph
    let model: CostModel

    init() throws {
        graph = try CostGraph(twoConvModel())
        model = CostModel(graph: graph, profile: testProfile())
    }

    /// Exact signatures answer with the measurement; the same layer at another width follows
    /// the line through its measured widths; unknown layers keep the roofline.
    @Test func exactThenSameLayerLineThenRoofline() throws {
        let dense = model.report()
        let half = model.report(PruningPlan(groups: [.init(group: 0, kept: 8)]))
        let quarter = model.report(PruningPlan(groups: [.init(group: 0, kept: 4)]))
        // Step A measured at 16 and 4 filters: 100 µs + 1 ns per op.
        let entries = [dense.steps[0], quarter.steps[0]].map { step in
            LatencyTable.Entry(signature: step.signature, seconds: 100e-6 + step.ops * 1e-9, opClass: .conv, ops: step.ops, bytes: Double(step.bytesMoved))
        }
        let measured = CostModel(graph: graph, profile: testProfile(), table: LatencyTable(entries))
        let exact = measured.report()
        #expect(exact.steps[0].measured && abs(exact.steps[0].latencySeconds - entries[0].seconds) < 1e-15)
        let between = measured.report(PruningPlan(groups: [.init(group: 0, kept: 8)]))
        #expect(!between.steps[0].measured)
        #expect(abs(between.steps[0].latencySeconds - (100e-6 + half.steps[0].ops * 1e-9)) < 1e-12)
        // Step B's signatures are not in the table: roofline.
        #expect(between.steps[1].latencySeconds == half.steps[1].latencySeconds)
    }

    /// With a channel alignment, widths on and off the multiple follow lines of their own: a
    /// runtime may run another kernel off it (ONNX Runtime's blocked convolutions).
    @Test func widthsOffTheAlignmentFollowTheirOwnLine() throws {
        let profile = testProfile(alignment: 8)
        let aligned = CostModel(graph: graph, profile: profile)
        func stepA(kept: Int) -> StepCost { aligned.report(PruningPlan(groups: [.init(group: 0, kept: kept)])).steps[0] }
        // Filters 16 and 8 at 100 µs + 1 ns per op; 12 and 4 (off the multiple) at 300 µs + 1 ns per op.
        let entries = [(16, 100e-6), (8, 100e-6), (12, 300e-6), (4, 300e-6)].map { kept, base in
            let step = stepA(kept: kept)
            return LatencyTable.Entry(signature: step.signature, seconds: base + step.ops * 1e-9, opClass: .conv, ops: step.ops,
                                      bytes: Double(step.bytesMoved))
        }
        let measured = CostModel(graph: graph, profile: profile, table: LatencyTable(entries))
        let ten = measured.report(PruningPlan(groups: [.init(group: 0, kept: 10)])).steps[0]
        #expect(!ten.measured)
        #expect(abs(ten.latencySeconds - (300e-6 + stepA(kept: 10).ops * 1e-9)) < 1e-12)
        // Without an alignment every width is one class: the line through all four.
        let unaligned = CostModel(graph: graph, profile: testProfile(), table: LatencyTable(entries))
        let mixed = unaligned.report(PruningPlan(groups: [.init(group: 0, kept: 10)])).steps[0]
        #expect(mixed.latencySeconds > 100e-6 && mixed.latencySeconds < 300e-6 + stepA(kept: 10).ops * 1e-9)
    }

    /// A depthwise Conv's `group` is its channel count: other widths of it are the same layer.
    @Test func depthwiseWidthsAreOneLayer() throws {
        let model = try Model.load(path: Fixtures.model("mobilenet_block"))
        let graph = try CostGraph(model)
        let costs = CostModel(graph: graph, profile: testProfile())
        guard let depthwise = costs.report().steps.firstIndex(where: { $0.opClass == .depthwiseConv }),
              let group = graph.groups.indices.first(where: { g in
                  costs.report(PruningPlan(groups: [.init(group: g, kept: graph.groups[g].size / 2)])).steps[depthwise].macs
                      < costs.report().steps[depthwise].macs
              }) else {
            Issue.record("mobilenet_block has a prunable depthwise Conv")
            return
        }
        let size = graph.groups[group].size
        func step(kept: Int) -> StepCost { costs.report(PruningPlan(groups: [.init(group: group, kept: kept)])).steps[depthwise] }
        let entries = [size, size / 4].map { kept in
            let cost = step(kept: kept)
            return LatencyTable.Entry(signature: cost.signature, seconds: 50e-6 + cost.ops * 1e-9, opClass: .depthwiseConv, ops: cost.ops,
                                      bytes: Double(cost.bytesMoved))
        }
        #expect(entries[0].signature.contains("group=\(size)"))
        let measured = CostModel(graph: graph, profile: testProfile(), table: LatencyTable(entries))
        let half = measured.report(PruningPlan(groups: [.init(group: group, kept: size / 2)])).steps[depthwise]
        #expect(abs(half.latencySeconds - (50e-6 + step(kept: size / 2).ops * 1e-9)) < 1e-12)
    }

    @Test func inContextTimingsAddUpToTheRun() throws {
        let timer = LatencyMeasurement(threads: 1, runs: 3, warmup: 1)
        let (entries, unattributed) = try timer.measureSteps(of: try twoConvModel(), profile: testProfile())
        #expect(entries.count == 2)
        #expect(Set(entries.map(\.signature)) == Set(model.report().steps.map(\.signature)))
        #expect(entries.allSatisfy { $0.seconds > 0 && $0.ops != nil })
        #expect(unattributed == 0)
    }
}
