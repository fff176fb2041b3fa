import LopperModel

/// How far a candidate model's outputs drift from a reference model's on the same inputs.
public enum OutputComparison {
    /// Relative L2 error per output, ‖y − y_ref‖ / ‖y_ref‖, accumulated over every batch.
    public static func relativeError(reference: Executor, candidate: Executor, on batches: [[String: Tensor]]) throws -> [String: Double] {
        var difference: [String: Double] = [:], magnitude: [String: Double] = [:]
        for batch in batches {
            let expected = try reference.run(batch), actual = try candidate.run(batch)
            for (name, want) in expected {
                guard let got = actual[name], got.shape == want.shape else {
                    throw ModelError("output '\(name)' has shape \(actual[name]?.shape ?? []) instead of \(want.shape)")
                }
                var d = 0.0, m = 0.0
                for (x, y) in zip(got.doubles, want.doubles) {
                    d += (x - y) * (x - y)
                    m += y * y
                }
                difference[name, default: 0] += d
                magnitude[name, default: 0] += m
            }
        }
        return difference.reduce(into: [:]) { result, entry in
            let m = magnitude[entry.key] ?? 0
            result[entry.key] = m > 0 ? (entry.value / m).squareRoot() : entry.value.squareRoot()
        }
    }
}
