import LopperModel

/// Relative L2 error of each output, ‖y − y_ref‖ / ‖y_ref‖, accumulated batch by batch in
/// Double (so the same outputs always give the same bits). Used by `lopper prune`'s drift report
/// and by the sweeps' relative-l2 metric.
public struct RelativeError: Sendable {
    private var difference: [String: Double] = [:]
    private var magnitude: [String: Double] = [:]

    public init() {}

    /// Adds one batch: every reference output against the candidate's output of the same name.
    public mutating func add(reference: [String: Tensor], candidate: [String: Tensor]) throws {
        for (name, want) in reference {
            guard let got = candidate[name] else { throw ModelError("the candidate model has no output '\(name)'") }
            guard got.shape == want.shape else {
                throw ModelError("output '\(name)' has shape \(got.shape), the reference's \(want.shape)")
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

    /// The error of each output over everything added so far.
    public var perOutput: [String: Double] {
        difference.reduce(into: [:]) { result, entry in
            let m = magnitude[entry.key] ?? 0
            result[entry.key] = m > 0 ? (entry.value / m).squareRoot() : entry.value.squareRoot()
        }
    }

    /// Runs both models on every batch and compares their outputs.
    public static func measure(reference: Executor, candidate: Executor, on batches: [[String: Tensor]]) throws -> [String: Double] {
        var error = RelativeError()
        for batch in batches { try error.add(reference: try reference.run(batch), candidate: try candidate.run(batch)) }
        return error.perOutput
    }
}
