import Foundation
import LopperModel
import LopperPruning
import LopperSensitivity

/// A finished sweep as the allocator reads it: per group and option (granularity × criterion),
/// the damage measured at each level, as the drop from the dense model's score in one direction
/// whatever the metric (accuracy and cosine fall from the dense value, relative L2 and KL rise
/// from zero: both become damage ≥ 0).
public struct SensitivityTable: Sendable {
    /// One measured curve: a group pruned by one granularity and criterion at several levels.
    public struct Curve: Sendable, Equatable {
        public var group: Int
        public var granularity: Granularity
        public var criterion: String
        /// (fraction removed, damage), by level.
        public var points: [(level: Double, damage: Double)]

        public init(group: Int, granularity: Granularity, criterion: String, points: [(level: Double, damage: Double)]) {
            self.group = group
            self.granularity = granularity
            self.criterion = criterion
            self.points = points
        }

        public static func == (a: Curve, b: Curve) -> Bool {
            a.group == b.group && a.granularity == b.granularity && a.criterion == b.criterion
                && a.points.map(\.level) == b.points.map(\.level) && a.points.map(\.damage) == b.points.map(\.damage)
        }
    }

    public var spec: SweepSpec
    public var metric: MetricKind
    /// The dense model's score.
    public var dense: Double
    public var curves: [Curve]
    /// Jobs not finished (pending, running or failed): their levels are missing from the curves.
    public var unfinished: Int

    /// The drop from the dense score, ≥ 0 (a pruned model scoring better than the dense one counts as no damage).
    public static func damage(score: Double, dense: Double, metric: MetricKind) -> Double {
        max(0, metric.higherIsBetter ? dense - score : score - dense)
    }

    public init(spec: SweepSpec, dense: Double, curves: [Curve], unfinished: Int = 0) {
        self.spec = spec
        metric = spec.metric
        self.dense = dense
        self.curves = curves
        self.unfinished = unfinished
    }

    public init(store: ResultsStore) throws {
        guard let specJSON = try store.metadata("spec") else {
            throw ModelError("holds no sweep (no spec): run lopper sweep with this --db first", file: store.path)
        }
        do { spec = try JSONDecoder().decode(SweepSpec.self, from: Data(specJSON.utf8)) } catch {
            throw ModelError("its sweep spec cannot be read: \(error)", file: store.path)
        }
        guard let baseline = try store.baseline() else {
            throw ModelError("has no dense baseline score yet: let the sweep run its first job", file: store.path)
        }
        metric = spec.metric
        dense = baseline.value
        var byKey: [String: Curve] = [:]
        var unfinished = 0
        for row in try store.allJobs() {
            guard row.state == .done, let score = row.score else { unfinished += 1; continue }
            let key = "\(row.job.group)/\(row.job.granularity.rawValue)/\(row.job.criterion)"
            byKey[key, default: Curve(group: row.job.group, granularity: row.job.granularity, criterion: row.job.criterion, points: [])]
                .points.append((row.job.level, Self.damage(score: score, dense: dense, metric: metric)))
        }
        curves = byKey.values.map { curve in
            var curve = curve
            curve.points.sort { $0.level < $1.level }
            return curve
        }.sorted { ($0.group, $0.granularity.rawValue, $0.criterion) < ($1.group, $1.granularity.rawValue, $1.criterion) }
        self.unfinished = unfinished
    }
}

/// A table travels to export workers as JSON: damages as written by `JSONEncoder` (shortest
/// round-trip digits), so a worker plans from the same bits.
extension SensitivityTable: Codable {}

extension SensitivityTable.Curve: Codable {
    private enum CodingKeys: String, CodingKey { case group, granularity, criterion, points }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let pairs = try container.decode([[Double]].self, forKey: .points)
        guard pairs.allSatisfy({ $0.count == 2 }) else {
            throw DecodingError.dataCorruptedError(forKey: .points, in: container, debugDescription: "each point is [level, damage]")
        }
        self.init(group: try container.decode(Int.self, forKey: .group), granularity: try container.decode(Granularity.self, forKey: .granularity),
                  criterion: try container.decode(String.self, forKey: .criterion), points: pairs.map { ($0[0], $0[1]) })
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(group, forKey: .group)
        try container.encode(granularity, forKey: .granularity)
        try container.encode(criterion, forKey: .criterion)
        try container.encode(points.map { [$0.level, $0.damage] }, forKey: .points)
    }
}
