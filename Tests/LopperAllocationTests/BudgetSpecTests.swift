import LopperAllocation
import Testing

@Suite struct BudgetSpecTests {
    func limits(_ text: String, dense: ResourceAmounts = [:]) throws -> ResourceAmounts {
        try BudgetSpec(parsing: text).resolve(dense: dense)
    }

    /// Same resources, values equal to the last bit or two (`8 * 1e-3` need not be `8e-3`).
    func expectClose(_ a: ResourceAmounts, _ b: ResourceAmounts, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(Set(a.keys) == Set(b.keys), comment, sourceLocation: sourceLocation)
        for (resource, value) in a {
            #expect((value - (b[resource] ?? .nan)).magnitude <= 4 * value.ulp, comment, sourceLocation: sourceLocation)
        }
    }

    @Test func everyUnitScalesByItsFactor() throws {
        let cases: [(String, Resource, Double)] = [
            ("latency=8ms", .latency, 8e-3), ("latency=250us", .latency, 250e-6), ("latency=250µs", .latency, 250e-6),
            ("latency=1.5s", .latency, 1.5),
            ("params=512B", .paramBytes, 512), ("params=2KB", .paramBytes, 2e3), ("params=2kB", .paramBytes, 2e3),
            ("params=2MB", .paramBytes, 2e6), ("params=1GB", .paramBytes, 1e9), ("params=3KiB", .paramBytes, 3072),
            ("params=2MiB", .paramBytes, 2_097_152), ("params=1GiB", .paramBytes, 1_073_741_824),
            ("activations=512KiB", .peakActivationBytes, 524_288), ("activations=.5MB", .peakActivationBytes, 5e5),
            ("macs=1000", .macs, 1000), ("macs=3K", .macs, 3e3), ("macs=1.2G", .macs, 1.2e9), ("macs=40M", .macs, 40e6),
            ("macs=2.5e3", .macs, 2500), ("latency=1e-1s", .latency, 0.1),
        ]
        for (text, resource, value) in cases {
            expectClose(try limits(text), [resource: value], "\(text)")
        }
    }

    @Test func relativeTermsMultiplyTheDenseTotalAndTheTighterLimitWins() throws {
        let dense: ResourceAmounts = [.latency: 0.02, .paramBytes: 8e6, .macs: 2e9, .peakActivationBytes: 1e6]
        let resolved = try limits(" latency=0.5x, params=2MB,macs=1.2G,activations=512KiB,latency=8ms", dense: dense)
        expectClose(resolved, [.latency: 8e-3, .paramBytes: 2e6, .macs: 1.2e9, .peakActivationBytes: 524_288])
        #expect(try limits("latency=0.25x,latency=8ms", dense: dense) == [.latency: 0.25 * 0.02])
        #expect(try limits("MACS=0.5x", dense: dense) == [.macs: 1e9])
        let spec = try BudgetSpec(parsing: "params=0.5x")
        #expect(spec.terms == [BudgetSpec.Term(resource: .paramBytes, amount: .relative(0.5), text: "params=0.5x")])
    }

    @Test func badTermsAreQuotedWithWhatIsExpected() throws {
        let cases: [(String, String)] = [
            ("latency=fast", "budget 'latency=fast': expected a number with ms/us/s or a ratio like 0.5x"),
            ("latency=8", "budget 'latency=8': expected a number with ms/us/s or a ratio like 0.5x"),
            ("latency=8ms,params=2MBs", "budget 'params=2MBs': expected a number with B/KB/MB/GB/KiB/MiB/GiB or a ratio like 0.5x"),
            ("params=2mb", "budget 'params=2mb': expected a number with B/KB/MB/GB/KiB/MiB/GiB or a ratio like 0.5x"),
            ("macs=1.2T", "budget 'macs=1.2T': expected a number, optionally with K/M/G, or a ratio like 0.5x"),
            ("macs=inf", "budget 'macs=inf': expected a number, optionally with K/M/G, or a ratio like 0.5x"),
            ("macs=-5", "budget 'macs=-5': expected a number, optionally with K/M/G, or a ratio like 0.5x"),
            ("latency=0ms", "budget 'latency=0ms': the amount must be positive"),
            ("params=0x", "budget 'params=0x': the amount must be positive"),
            ("energy=3J", "budget 'energy=3J': unknown resource 'energy'; expected one of latency, macs, params, activations"),
            ("latency", "budget 'latency': expected resource=amount, e.g. latency=8ms or params=0.5x"),
            ("latency=8ms,", "budget '': expected resource=amount, e.g. latency=8ms or params=0.5x"),
            ("", "budget '': expected resource=amount terms separated by commas, e.g. latency=8ms,params=0.5x"),
        ]
        for (text, message) in cases {
            let error = #expect(throws: BudgetError.self) { try BudgetSpec(parsing: text) }
            #expect(error?.description == message, "\(text)")
        }
    }

    @Test func relativeTermsNeedTheDenseTotal() throws {
        let error = #expect(throws: BudgetError.self) { try limits("latency=0.5x", dense: [.macs: 1]) }
        #expect(error?.description == "budget 'latency=0.5x': relative to the dense model, whose latency total is unknown")
    }
}
