import Foundation
import LopperModel
import LopperPruning
import Yams

/// What a sweep measures. Written in YAML (see `Config/sweeps/`) or given as `lopper sweep`
/// flags; the two merge, flags winning. Stored in the results database with the SHA-256 of the
/// model and data, so a store is never reused for other inputs.
public struct SweepSpec: Codable, Equatable, Sendable {
    public var model: String
    /// Calibration inputs: `.npz` with one array per model input (samples first), or `.npy`.
    public var calibration: String
    /// Integer class labels (`.npy`, one per sample) for the labelled metrics; for the detection
    /// metrics, labelled boxes (rows of sample, class, cx, cy, w, h), scored against instead of
    /// the dense model's boxes.
    public var labels: String?
    public var metric: MetricKind
    /// The output the classifier metrics read; the model's first output when absent.
    public var output: String?
    public var granularities: [Granularity]
    /// Channel criteria: l1, l2, bn-scale, random, wanda. Unstructured jobs rank by magnitude;
    /// N:M jobs use the 2:4 and 4:8 patterns.
    public var criteria: [String]
    public var levels: [Double]
    /// Use at most this many calibration samples.
    public var samples: Int?
    public var batchSize: Int
    /// `k` of the top-k metric.
    public var topK: Int
    public var method: SweepMethod
    /// A command that scores a pruned model in the user's own framework (task metrics such as mAP).
    public var evaluator: ExternalEvaluator?
    /// How the detection metrics read boxes from the output.
    public var detection: DetectionDecoding?
    /// The calibration input holding the attention mask that embedding agreement pools over
    /// (all tokens when absent).
    public var maskInput: String?
    /// The blank class of sequence agreement's CTC decoding.
    public var ctcBlank: Int

    public static let defaultLevels: [Double] = (1...9).map { Double($0) / 10 }
    public static let knownCriteria = Criterion.allCases.map(\.rawValue)

    public init(model: String, calibration: String, labels: String? = nil, metric: MetricKind = .relativeL2,
                output: String? = nil, granularities: [Granularity] = [.channel], criteria: [String] = ["l1"],
                levels: [Double] = SweepSpec.defaultLevels, samples: Int? = nil, batchSize: Int = 8, topK: Int = 5,
                method: SweepMethod = .oneShot, evaluator: ExternalEvaluator? = nil, detection: DetectionDecoding? = nil,
                maskInput: String? = nil, ctcBlank: Int = 0) {
        self.model = model
        self.calibration = calibration
        self.labels = labels
        self.metric = metric
        self.output = output
        self.granularities = granularities
        self.criteria = criteria
        self.levels = levels
        self.samples = samples
        self.batchSize = batchSize
        self.topK = topK
        self.method = method
        self.evaluator = evaluator
        self.detection = detection
        self.maskInput = maskInput
        self.ctcBlank = ctcBlank
    }

    /// Reads a YAML sweep file. Relative paths in it are resolved against the file's folder.
    public static func load(yaml path: String) throws -> SweepSpec {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ModelError("cannot be read: \(error.localizedDescription)", file: path)
        }
        var spec = try YAMLSettings(text, file: path, schema: yamlSchema, needs: "model and calibration").decode(SweepSpec.self)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        func resolve(_ file: String) -> String { file.hasPrefix("/") ? file : folder.appendingPathComponent(file).standardizedFileURL.path }
        spec.model = resolve(spec.model)
        spec.calibration = resolve(spec.calibration)
        spec.labels = spec.labels.map(resolve)
        try spec.validate()
        return spec
    }

    /// Checks that the settings make sense together; the message names the field.
    public func validate() throws {
        guard !levels.isEmpty, levels.allSatisfy({ $0 > 0 && $0 < 1 }) else {
            throw ModelError("levels must be fractions in (0, 1), got \(levels)", field: "levels")
        }
        guard !granularities.isEmpty else { throw ModelError("at least one granularity is needed", field: "granularities") }
        guard !criteria.isEmpty else { throw ModelError("at least one criterion is needed", field: "criteria") }
        if let unknown = criteria.first(where: { !Self.knownCriteria.contains($0) }) {
            throw ModelError("'\(unknown)' is not one of \(Self.knownCriteria.joined(separator: ", "))", field: "criteria")
        }
        guard batchSize >= 1 else { throw ModelError("must be at least 1", field: "batchSize") }
        if let samples, samples < 1 { throw ModelError("must be at least 1", field: "samples") }
        guard topK >= 1 else { throw ModelError("must be at least 1", field: "topK") }
        if let evaluator {
            guard method == .oneShot else { throw ModelError("an external evaluator scores whole models: use method one-shot", field: "method") }
            try evaluator.validate()
        }
        if metric.decodesDetections && detection == nil && evaluator == nil {
            throw ModelError("metric \(metric.rawValue) needs a detection section (layout, classes)", field: "detection")
        }
        try detection?.validate()
        guard ctcBlank >= 0 else { throw ModelError("must be a class index (0 or more)", field: "ctc_blank") }
        if metric.needsLabels && labels == nil && evaluator == nil && method == .oneShot {
            throw ModelError("metric \(metric.rawValue) needs labels (--labels y.npy)", field: "labels")
        }
    }

    /// The keys a sweep file may hold.
    static let yamlSchema = YAMLSettings.Schema.mapping(Dictionary(uniqueKeysWithValues: CodingKeys.allCases.map { key in
        let section: [String]? = switch key {
        case .evaluator: ExternalEvaluator.CodingKeys.allCases.map(\.stringValue)
        case .detection: DetectionDecoding.CodingKeys.allCases.map(\.stringValue)
        default: nil
        }
        return (key.stringValue, section.map { .mapping(Dictionary(uniqueKeysWithValues: $0.map { ($0, .value) })) } ?? .value)
    }))

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, calibration, labels, metric, output, granularities, criteria, levels, samples, batchSize = "batch_size", topK = "top_k", method, evaluator, detection, maskInput = "mask_input", ctcBlank = "ctc_blank"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(model: try c.decode(String.self, forKey: .model), calibration: try c.decode(String.self, forKey: .calibration))
        labels = try c.decodeIfPresent(String.self, forKey: .labels)
        metric = try c.decodeIfPresent(MetricKind.self, forKey: .metric) ?? metric
        output = try c.decodeIfPresent(String.self, forKey: .output)
        granularities = try c.decodeIfPresent([Granularity].self, forKey: .granularities) ?? granularities
        criteria = try c.decodeIfPresent([String].self, forKey: .criteria) ?? criteria
        levels = try c.decodeIfPresent([Double].self, forKey: .levels) ?? levels
        samples = try c.decodeIfPresent(Int.self, forKey: .samples)
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
        topK = try c.decodeIfPresent(Int.self, forKey: .topK) ?? topK
        method = try c.decodeIfPresent(SweepMethod.self, forKey: .method) ?? method
        evaluator = try c.decodeIfPresent(ExternalEvaluator.self, forKey: .evaluator)
        detection = try c.decodeIfPresent(DetectionDecoding.self, forKey: .detection)
        maskInput = try c.decodeIfPresent(String.self, forKey: .maskInput)
        ctcBlank = try c.decodeIfPresent(Int.self, forKey: .ctcBlank) ?? ctcBlank
    }
}

/// How a job is scored.
public enum SweepMethod: String, Codable, CaseIterable, Sendable {
    /// Prune, run the model to its outputs, and apply the metric (the default).
    case oneShot = "one-shot"
    /// Relative L2 error of the layers right after the group (its consumers), on cached dense
    /// activations: only the part of the graph between the cut and those layers runs.
    case local
    /// Data-free proxy: mean |w| of the weights removed.
    case magnitude
}

