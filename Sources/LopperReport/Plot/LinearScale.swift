import Foundation

/// A linear axis whose ticks are round numbers: 1, 2 or 5 times a power of ten apart, the
/// domain widened to the outer ticks so that every value lies between two labelled lines.
public struct LinearScale: Sendable, Equatable {
    public let lower: Double
    public let upper: Double
    public let step: Double
    public let ticks: [Double]
    /// Decimals that tell the ticks apart (0 for steps of 1 and more).
    public let decimals: Int

    /// - Parameters:
    ///   - values: what the axis must show; non-finite values are ignored.
    ///   - targetTicks: about how many intervals to draw (the result has between about half and twice as many).
    ///   - includingZero: start the axis at 0 when every value is positive (bars, damage).
    public init(covering values: [Double], targetTicks: Int = 5, includingZero: Bool = true) {
        let finite = values.filter(\.isFinite)
        var low = finite.min() ?? 0, high = finite.max() ?? 1
        if includingZero { low = min(low, 0); high = max(high, 0) }
        if high == low {
            let pad = low == 0 ? 1 : abs(low) / 2
            (low, high) = (includingZero && low >= 0 ? 0 : low - pad, high + pad)
        }
        let (mantissa, exponent) = Self.niceStep(span: high - low, targetTicks: max(1, targetTicks))
        // Ticks as integer multiples of mantissa · 10^exponent, divided once by a power of ten,
        // so that 0.3 is 0.3 and not 0.30000000000000004.
        func value(_ k: Int) -> Double {
            exponent >= 0 ? Double(k * mantissa) * pow(10, Double(exponent)) : Double(k * mantissa) / pow(10, Double(-exponent))
        }
        let stepValue = value(1)
        let first = Int((low / stepValue).rounded(.down)), last = Int((high / stepValue).rounded(.up))
        ticks = (first...max(first + 1, last)).map(value)
        lower = ticks.first!
        upper = ticks.last!
        step = stepValue
        decimals = max(0, -exponent)
    }

    /// The round step nearest to span / targetTicks, as mantissa (1, 2 or 5) and power of ten.
    public static func niceStep(span: Double, targetTicks: Int) -> (mantissa: Int, exponent: Int) {
        let raw = span / Double(targetTicks)
        var exponent = Int(log10(raw).rounded(.down))
        let residual = raw / pow(10, Double(exponent))
        let mantissa: Int
        switch residual {
        case ..<1.5: mantissa = 1
        case ..<3.5: mantissa = 2
        case ..<7.5: mantissa = 5
        default: mantissa = 1; exponent += 1
        }
        return (mantissa, exponent)
    }

    /// Where `value` falls between `start` (at `lower`) and `end` (at `upper`), in pixels.
    public func position(_ value: Double, from start: Double, to end: Double) -> Double {
        start + (min(max(value, lower), upper) - lower) / (upper - lower) * (end - start)
    }

    /// A tick's label: fixed decimals, or k/M/G from 10 000 up (2.5M rather than 2500000).
    public func label(_ value: Double) -> String {
        let magnitude = max(abs(lower), abs(upper))
        if magnitude >= 1e4, let (factor, suffix) = [(1e9, "G"), (1e6, "M"), (1e3, "k")].first(where: { magnitude >= $0.0 }) {
            if value == 0 { return "0" }
            let places = max(0, -Int(log10(step / factor).rounded(.down)))
            return String(format: "%.\(places)f", value / factor) + suffix
        }
        return String(format: "%.\(decimals)f", value == 0 ? 0 : value)
    }
}
