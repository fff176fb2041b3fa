import LopperAllocation
import Testing
import LopperModel

@Suite struct DamageCurveTests {
    /// Every 1/1000 of the range, as a list of (level, damage).
    func sampled(_ curve: DamageCurve) -> [(Double, Double)] {
        (0...1000).map { i in
            let level = curve.maximumLevel * Double(i) / 1000
            return (level, curve.damage(at: level)!)
        }
    }

    @Test func monotoneDataIsInterpolatedThroughItsPointsAndStaysMonotone() throws {
        let points: [(level: Double, damage: Double)] = [(0.1, 0.01), (0.3, 0.02), (0.5, 0.3), (0.7, 0.31), (0.9, 2.0)]
        var rng = SeededGenerator(seed: 12)
        let curve = try DamageCurve(points: points.shuffled(using: &rng))  // the order must not matter
        #expect(curve.damage(at: 0) == 0)
        for point in points { #expect(curve.damage(at: point.level) == point.damage) }
        let samples = sampled(curve)
        for (a, b) in zip(samples, samples.dropFirst()) { #expect(a.1 <= b.1, "not monotone between \(a.0) and \(b.0)") }
        // Between two knots the curve stays between their damages (no overshoot).
        for (level, damage) in samples where level > 0.5 && level < 0.7 { #expect(damage >= 0.3 && damage <= 0.31) }
    }

    @Test func dipsArePooledByIsotonicRegression() throws {
        // 0.3 then 0.2: pooled to their mean, 0.25, at both levels.
        let curve = try DamageCurve(points: [(0.2, 0.1), (0.4, 0.3), (0.6, 0.2), (0.8, 0.9)])
        #expect(curve.damages == [0, 0.1, 0.25, 0.25, 0.9])
        #expect(curve.damage(at: 0.5) == 0.25)  // flat segment: zero tangents at both ends
        let samples = sampled(curve)
        for (a, b) in zip(samples, samples.dropFirst()) { #expect(a.1 <= b.1) }
        // A longer run: [3, 1, 2] → all 2.
        #expect(try DamageCurve(points: [(0.1, 3), (0.2, 1), (0.3, 2)]).damages == [0, 2, 2, 2])
    }

    @Test func linearDataGivesTheLine() throws {
        let curve = try DamageCurve(points: [(0.25, 0.5), (0.5, 1.0), (0.75, 1.5)])
        for level in [0.1, 0.3, 0.45, 0.6, 0.7] {
            #expect((curve.damage(at: level)! - 2 * level).magnitude < 1e-12, "at \(level)")
        }
    }

    @Test func levelsBeyondTheMeasuredRangeAreRefused() throws {
        let curve = try DamageCurve(points: [(0.5, 1.0)])
        #expect(curve.damage(at: 0.25) == 0.5)
        #expect(curve.damage(at: 0.5) == 1.0)
        #expect(curve.damage(at: 0.5000001) == nil)
        #expect(curve.damage(at: -0.1) == nil)
        #expect(curve.damage(at: .nan) == nil)
    }

    @Test func badPointsAreNamed() throws {
        let cases: [([(level: Double, damage: Double)], String)] = [
            ([], "a damage curve needs at least one measured point"),
            ([(1.0, 2)], "damage curve point at level 1.0: levels must be in [0, 1)"),
            ([(-0.1, 2)], "damage curve point at level -0.1: levels must be in [0, 1)"),
            ([(0.3, -1)], "damage curve point at level 0.3: damage -1.0 must be finite and ≥ 0"),
            ([(0.3, .nan)], "damage curve point at level 0.3: damage nan must be finite and ≥ 0"),
            ([(0, 0.5)], "damage curve point at level 0 has damage 0.5; level 0 is the dense model, damage 0"),
            ([(0.3, 1), (0.3, 2)], "damage curve has two points at level 0.3"),
        ]
        for (points, message) in cases {
            let error = #expect(throws: CurveError.self) { try DamageCurve(points: points) }
            #expect(error?.description == message)
        }
        // A point at level 0 with damage 0 is the implied one.
        #expect(try DamageCurve(points: [(0, 0), (0.5, 1)]).levels == [0, 0.5])
    }

    /// Random data: monotone everywhere, and through the isotonic fit's points.
    @Test func randomCurvesAreMonotone() throws {
        var rng = SeededGenerator(seed: 11)
        for _ in 0..<50 {
            let levels = Set((0..<Int.random(in: 1...8, using: &rng)).map { _ in (Double.random(in: 0.01..<0.99, using: &rng) * 100).rounded() / 100 })
            let points = levels.sorted().map { (level: $0, damage: Double.random(in: 0...3, using: &rng)) }
            let curve = try DamageCurve(points: points)
            for (level, damage) in zip(curve.levels, curve.damages) { #expect(curve.damage(at: level) == damage) }
            let samples = sampled(curve)
            for (a, b) in zip(samples, samples.dropFirst()) { #expect(a.1 <= b.1) }
        }
    }
}
