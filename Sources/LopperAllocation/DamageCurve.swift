/// A group's damage as a function of its pruning level, between the levels the sweep measured.
///
/// The measured damages are first made non-decreasing by isotonic regression (least squares,
/// pool-adjacent-violators): a dip in measured damage at a higher level is noise, and pooling
/// replaces each violating run by its mean rather than by its maximum. The point (0, 0) — the
/// dense model — is implied. Between knots the curve is the monotone piecewise-cubic Hermite
/// interpolant of Fritsch and Carlson (SIAM J. Numer. Anal. 17(2), 1980): tangents start as the
/// mean of the neighbouring secants (one-sided at the ends), are zero next to a flat segment,
/// and are scaled down where α² + β² > 9, which keeps each piece monotone. Levels above the
/// largest measured one are not extrapolated.
public struct DamageCurve: Hashable, Sendable {
    /// The knots: (0, 0) and the measured levels with their monotone damages, by level.
    public let levels: [Double]
    public let damages: [Double]
    private let tangents: [Double]

    /// - Parameter points: measured (level, damage) pairs, levels in [0, 1) and distinct, damages
    ///   finite and ≥ 0. A point at level 0 must have damage 0.
    public init(points: [(level: Double, damage: Double)]) throws {
        guard !points.isEmpty else { throw CurveError("a damage curve needs at least one measured point") }
        for point in points {
            guard point.level >= 0, point.level < 1 else {
                throw CurveError("damage curve point at level \(point.level): levels must be in [0, 1)")
            }
            guard point.damage.isFinite, point.damage >= 0 else {
                throw CurveError("damage curve point at level \(point.level): damage \(point.damage) must be finite and ≥ 0")
            }
            if point.level == 0, point.damage != 0 {
                throw CurveError("damage curve point at level 0 has damage \(point.damage); level 0 is the dense model, damage 0")
            }
        }
        let sorted = points.filter { $0.level > 0 }.sorted { $0.level < $1.level }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.level == b.level {
            throw CurveError("damage curve has two points at level \(a.level)")
        }
        levels = [0] + sorted.map(\.level)
        damages = [0] + Self.isotonic(sorted.map(\.damage))
        tangents = Self.fritschCarlsonTangents(levels, damages)
    }

    /// How levels between the measured ones are filled in, for a plan to print beside its choices.
    public static let method = "measured damage made monotone by isotonic regression, "
        + "then Fritsch–Carlson monotone cubic interpolation between measured levels; no extrapolation"

    /// The largest level the curve answers for.
    public var maximumLevel: Double { levels.last! }

    /// The interpolated damage at `level`; nil outside [0, `maximumLevel`].
    public func damage(at level: Double) -> Double? {
        guard level >= 0, level <= maximumLevel else { return nil }
        // The last knot not above `level`.
        var low = 0, high = levels.count - 1
        while high - low > 1 {
            let middle = (low + high) / 2
            if levels[middle] <= level { low = middle } else { high = middle }
        }
        if level == levels[low] { return damages[low] }
        if level == levels[high] { return damages[high] }
        let width = levels[high] - levels[low], t = (level - levels[low]) / width
        let t2: Double = t * t, t3: Double = t2 * t
        // The cubic Hermite basis.
        let h00: Double = 2 * t3 - 3 * t2 + 1, h10: Double = t3 - 2 * t2 + t
        let h01: Double = 3 * t2 - 2 * t3, h11: Double = t3 - t2
        let fromLow: Double = h00 * damages[low] + h10 * width * tangents[low]
        let fromHigh: Double = h01 * damages[high] + h11 * width * tangents[high]
        let value = fromLow + fromHigh
        // Rounding can leave the cubic a hair outside its monotone range.
        return min(max(value, damages[low]), damages[high])
    }

    /// Pool-adjacent-violators with unit weights: the non-decreasing sequence nearest in least squares.
    static func isotonic(_ values: [Double]) -> [Double] {
        var blocks: [(sum: Double, count: Int)] = []
        for value in values {
            blocks.append((value, 1))
            while blocks.count > 1 {
                let last = blocks[blocks.count - 1], previous = blocks[blocks.count - 2]
                guard previous.sum / Double(previous.count) > last.sum / Double(last.count) else { break }
                blocks.removeLast(2)
                blocks.append((previous.sum + last.sum, previous.count + last.count))
            }
        }
        return blocks.flatMap { block in Array(repeating: block.sum / Double(block.count), count: block.count) }
    }

    static func fritschCarlsonTangents(_ x: [Double], _ y: [Double]) -> [Double] {
        let n = x.count
        guard n > 1 else { return [0] }
        let secants: [Double] = (0..<n - 1).map { k -> Double in (y[k + 1] - y[k]) / (x[k + 1] - x[k]) }
        var m = [Double](repeating: 0, count: n)
        m[0] = secants[0]
        m[n - 1] = secants[n - 2]
        for k in 1..<n - 1 { m[k] = (secants[k - 1] + secants[k]) / 2 }
        for k in 0..<n - 1 {
            if secants[k] == 0 {
                m[k] = 0
                m[k + 1] = 0
                continue
            }
            let alpha: Double = m[k] / secants[k], beta: Double = m[k + 1] / secants[k]
            let radius: Double = alpha * alpha + beta * beta
            if radius > 9 {
                let tau: Double = 3 / radius.squareRoot()
                m[k] = tau * alpha * secants[k]
                m[k + 1] = tau * beta * secants[k]
            }
        }
        return m
    }
}

/// A damage curve that cannot be built; the message names the point.
public struct CurveError: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
