import Foundation
import LopperModel
@testable import LopperReport
import Testing

@Suite struct LinearScaleTests {
    @Test func handComputedScales() {
        // 0.87 / 5 = 0.174 → step 0.2, ending at the first tick above 0.87.
        let damage = LinearScale(covering: [0.01, 0.87])
        #expect(damage.ticks == [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        #expect(damage.ticks.map(damage.label) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        // 7300 / 5 = 1460 → step 1000.
        #expect(LinearScale(covering: [120, 7300]).ticks == stride(from: 0.0, through: 8000, by: 1000).map { $0 })
        // Away from zero: 0.0037 / 5 = 0.00074 → step 0.0005, from 0.0010 to 0.0050.
        let small = LinearScale(covering: [0.0012, 0.0049], includingZero: false)
        #expect(small.ticks == [0.001, 0.0015, 0.002, 0.0025, 0.003, 0.0035, 0.004, 0.0045, 0.005])
        #expect(small.label(0.0015) == "0.0015")
        // Negative values: −3.2 … 1.1 → step 1.
        #expect(LinearScale(covering: [-3.2, 1.1]).ticks == [-4, -3, -2, -1, 0, 1, 2])
        // Large values get SI suffixes: 2.4e6 MACs.
        let macs = LinearScale(covering: [0, 2.4e6])
        #expect(macs.ticks.map(macs.label) == ["0", "0.5M", "1.0M", "1.5M", "2.0M", "2.5M"])
    }

    @Test func degenerateInputsStillGiveAnAxis() {
        #expect(LinearScale(covering: []).ticks == [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        #expect(LinearScale(covering: [0, 0]).ticks == [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        #expect(LinearScale(covering: [.nan, .infinity, 0.5]).upper == 0.5)
        let constant = LinearScale(covering: [3, 3], includingZero: false)
        #expect(constant.lower < 3 && constant.upper > 3)
    }

    /// Over many random ranges: the ticks cover the values, are 1, 2 or 5 × 10^k apart, are
    /// exact decimals (their labels read back as the same number) and number between 3 and 12.
    @Test func randomRangesGetRoundTicks() {
        var random = SeededGenerator(seed: 14)
        for _ in 0..<2000 {
            let exponent = Double(Int.random(in: -6...9, using: &random))
            let a = Double.random(in: -1...1, using: &random) * pow(10, exponent)
            let b = a + Double.random(in: 0.001...10, using: &random) * pow(10, exponent)
            let scale = LinearScale(covering: [a, b], includingZero: false)
            #expect(scale.lower <= a && scale.upper >= b, "\(a)…\(b)")
            #expect((3...12).contains(scale.ticks.count), "\(a)…\(b): \(scale.ticks)")
            let (mantissa, power) = LinearScale.niceStep(span: b - a, targetTicks: 5)
            #expect([1, 2, 5].contains(mantissa))
            #expect(abs(scale.step - Double(mantissa) * pow(10, Double(power))) <= 1e-12 * scale.step)
            for tick in scale.ticks {
                #expect(Double(String(format: "%.\(scale.decimals)f", tick)) == tick, "\(tick) is not a round decimal")
            }
        }
    }
}
