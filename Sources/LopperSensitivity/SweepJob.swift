import Foundation
import LopperPruning

/// One measurement: prune one group at one level with one criterion, and score the result.
/// Jobs are pure: the same job on the same model and data gives the same bits on any machine.
public struct SweepJob: Hashable, Codable, Sendable {
    public var group: Int
    public var granularity: Granularity
    public var criterion: String
    public var level: Double

    public init(group: Int, granularity: Granularity, criterion: String, level: Double) {
        self.group = group
        self.granularity = granularity
        self.criterion = criterion
        self.level = level
    }

    /// Stable identity across runs and machines, e.g. `g12/channel/l1/0.3000`.
    public var key: String { "g\(group)/\(granularity.rawValue)/\(criterion)/\(String(format: "%.4f", level))" }
}

/// What evaluating a job produced.
public struct JobOutcome: Sendable, Equatable {
    public var score: Double
    /// Units (channels, heads) removed, or weights zeroed for unstructured jobs.
    public var removed: Int
    /// Multiply-accumulates actually executed over all calibration batches.
    public var macsExecuted: Int
    public var seconds: Double

    public init(score: Double, removed: Int, macsExecuted: Int, seconds: Double) {
        self.score = score
        self.removed = removed
        self.macsExecuted = macsExecuted
        self.seconds = seconds
    }
}
