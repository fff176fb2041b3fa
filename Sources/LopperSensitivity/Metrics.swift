import Foundation
import LopperModel
import LopperRuntime

/// How a pruned model is scored on calibration data.
public enum MetricKind: String, Codable, CaseIterable, Sendable {
    /// Relative L2 error of each output against the dense model, averaged over outputs (any model).
    case relativeL2 = "relative-l2"
    /// KL divergence of the pruned class distribution from the dense one (classifiers).
    case kl
    /// Fraction of samples whose top class matches the dense model's.
    case top1Agreement = "top1-agreement"
    /// Mean cosine similarity of each sample's output with the dense output.
    case cosine
    /// Fraction of samples classified as their label.
    case accuracy
    /// Fraction of samples whose label is among the top k classes.
    case topK = "top-k"
    /// Mean −log p(label).
    case crossEntropy = "cross-entropy"
    /// mAP@0.5 of the pruned model's detections against the dense model's (`DetectionDecoding`),
    /// or against labelled boxes when the sweep has labels.
    case detectionMAP50 = "detection-map50"
    /// mAP@0.5:0.95 (COCO's ten IoU thresholds) against the dense model's detections.
    case detectionMAP = "detection-map"
    /// Mean cosine of mean-pooled token embeddings (`[N, S, D]`, pooled over `mask_input`).
    case embeddingCosine = "embedding-cosine"
    /// Mean over classes of the IoU of the argmax masks (`[N, C, …]`), summed over all samples.
    case meanIoU = "mean-iou"
    /// Fraction of samples whose CTC greedy decoding (`[N, T, C]`) equals the dense model's.
    case sequenceAgreement = "sequence-agreement"

    public var needsLabels: Bool { [.accuracy, .topK, .crossEntropy].contains(self) }

    /// Whether the metric decodes boxes, which needs the spec's `detection` settings.
    public var decodesDetections: Bool { [.detectionMAP50, .detectionMAP].contains(self) }

    /// Whether a larger value means a better model (accuracy) rather than more damage (error).
    public var higherIsBetter: Bool {
        [.top1Agreement, .cosine, .accuracy, .topK, .detectionMAP50, .detectionMAP, .embeddingCosine, .meanIoU, .sequenceAgreement].contains(self)
    }
}

/// Accumulates a metric over batches in order. Sums are kept in Double and added batch by batch,
/// so the same outputs always give the same bits.
struct MetricAccumulator {
    let kind: MetricKind
    /// The output classifier metrics read.
    let output: String
    let topK: Int
    let detection: DetectionDecoding?
    /// The input holding the attention mask that embedding agreement pools over.
    let maskInput: String?
    /// The blank class of CTC decoding.
    let blank: Int
    /// Labelled boxes per calibration sample: the reference of the detection metrics instead of
    /// the dense model's boxes.
    let groundTruth: [[Detection]]?
    private var intersections: [Int: Double] = [:], unions: [Int: Double] = [:]
    private var denseDetections: [[Detection]] = []
    private var candidateDetections: [[Detection]] = []
    private var numerator: [String: Double] = [:]
    private var denominator: [String: Double] = [:]
    private var relativeError = RelativeError()

    init(kind: MetricKind, output: String, topK: Int, detection: DetectionDecoding? = nil, maskInput: String? = nil, blank: Int = 0,
         groundTruth: [[Detection]]? = nil) {
        self.groundTruth = groundTruth
        self.kind = kind
        self.output = output
        self.topK = topK
        self.detection = detection
        self.maskInput = maskInput
        self.blank = blank
    }

    /// Adds one batch: the dense model's outputs, the candidate's, the batch's labels, and its
    /// inputs (for the attention mask).
    mutating func add(dense: [String: Tensor], candidate: [String: Tensor], labels: [Int64]?, inputs: [String: Tensor] = [:]) throws {
        if kind == .relativeL2 {
            try relativeError.add(reference: dense, candidate: candidate)
            return
        }
        guard let reference = dense[output] else { throw ModelError("the model has no output '\(output)'") }
        if kind.decodesDetections {
            guard let detection else { throw ModelError("metric \(kind.rawValue) needs detection settings", field: "detection") }
            let values = try Self.values(candidate, output, like: reference)
            let found = try detection.detections(values, shape: reference.shape, output: output)
            if let groundTruth {
                let first = candidateDetections.count
                guard first + found.count <= groundTruth.count else { throw ModelError("more samples than box labels") }
                denseDetections += groundTruth[first..<(first + found.count)]
            } else {
                denseDetections += try detection.detections(reference.doubles, shape: reference.shape, output: output)
            }
            candidateDetections += found
            return
        }
        if [.embeddingCosine, .meanIoU, .sequenceAgreement].contains(kind) {
            try addTaskBatch(dense: reference, candidate: try Self.values(candidate, output, like: reference), inputs: inputs)
            return
        }
        let rows = try Self.rows(try Self.values(candidate, output, like: reference), shape: reference.shape)
        let denseRows = try Self.rows(reference.doubles, shape: reference.shape)
        if kind.needsLabels {
            guard let labels, labels.count == rows.count else {
                throw ModelError("\(labels?.count ?? 0) labels for \(rows.count) samples of output '\(output)'")
            }
        }
        var total = 0.0
        for (i, row) in rows.enumerated() {
            switch kind {
            case .kl:
                let p = Self.probabilities(denseRows[i]), q = Self.probabilities(row)
                total += zip(p, q).reduce(0) { $0 + ($1.0 > 0 ? $1.0 * log($1.0 / max($1.1, 1e-12)) : 0) }
            case .top1Agreement:
                total += Self.argmax(row) == Self.argmax(denseRows[i]) ? 1 : 0
            case .cosine:
                let dot = zip(row, denseRows[i]).reduce(0) { $0 + $1.0 * $1.1 }
                let norms = (row.reduce(0) { $0 + $1 * $1 } * denseRows[i].reduce(0) { $0 + $1 * $1 }).squareRoot()
                total += norms > 0 ? dot / norms : (dot == 0 ? 1 : 0)
            case .accuracy:
                total += Self.argmax(row) == Int(labels![i]) ? 1 : 0  // an out-of-range label never matches
            case .topK:
                let label = Int(labels![i])
                guard label >= 0, label < row.count else { throw ModelError("label \(label) is outside 0..<\(row.count)") }
                let better = row.indices.filter { row[$0] > row[label] || (row[$0] == row[label] && $0 < label) }.count
                total += better < topK ? 1 : 0
            case .crossEntropy:
                let label = Int(labels![i])
                guard label >= 0, label < row.count else { throw ModelError("label \(label) is outside 0..<\(row.count)") }
                total -= log(max(Self.probabilities(row)[label], 1e-12))
            case .relativeL2, .detectionMAP50, .detectionMAP, .embeddingCosine, .meanIoU, .sequenceAgreement:
                fatalError("handled above")
            }
        }
        numerator[output, default: 0] += total
        denominator[output, default: 0] += Double(rows.count)
    }

    /// The metric over everything added so far.
    var value: Double {
        if kind == .relativeL2 {
            let errors = relativeError.perOutput.sorted { $0.key < $1.key }.map(\.value)
            return errors.isEmpty ? 0 : errors.reduce(0, +) / Double(errors.count)
        }
        if kind.decodesDetections {
            return MeanAveragePrecision.value(predicted: candidateDetections, reference: denseDetections,
                                              thresholds: kind == .detectionMAP50 ? MeanAveragePrecision.coarse : MeanAveragePrecision.coco)
        }
        if kind == .meanIoU {
            let classes = unions.keys.filter { unions[$0]! > 0 }.sorted()
            return classes.isEmpty ? 1 : classes.reduce(0) { $0 + intersections[$1, default: 0] / unions[$1]! } / Double(classes.count)
        }
        let n = denominator[output] ?? 0
        return n > 0 ? numerator[output]! / n : 0
    }

    private mutating func addTaskBatch(dense reference: Tensor, candidate values: [Double], inputs: [String: Tensor]) throws {
        let shape = reference.shape
        switch kind {
        case .embeddingCosine:
            var mask: [Double]?
            if let maskInput {
                guard let tensor = inputs[maskInput] else { throw ModelError("the calibration data has no input '\(maskInput)'", field: "mask_input") }
                mask = tensor.doubles
            }
            let cosines = try TaskMetrics.embeddingCosines(dense: reference.doubles, candidate: values, shape: shape, mask: mask)
            numerator[output, default: 0] += cosines.reduce(0, +)
            denominator[output, default: 0] += Double(cosines.count)
        case .meanIoU:
            let want = try TaskMetrics.argmaxMasks(reference.doubles, shape: shape), got = try TaskMetrics.argmaxMasks(values, shape: shape)
            for (a, b) in zip(want, got) {
                if a == b {
                    intersections[a, default: 0] += 1
                    unions[a, default: 0] += 1
                } else {
                    unions[a, default: 0] += 1
                    unions[b, default: 0] += 1
                }
            }
        default:
            let want = try TaskMetrics.greedyCTC(reference.doubles, shape: shape, blank: blank)
            let got = try TaskMetrics.greedyCTC(values, shape: shape, blank: blank)
            numerator[output, default: 0] += Double(zip(want, got).filter { $0 == $1 }.count)
            denominator[output, default: 0] += Double(want.count)
        }
    }

    private static func values(_ outputs: [String: Tensor], _ name: String, like reference: Tensor) throws -> [Double] {
        guard let tensor = outputs[name] else { throw ModelError("the pruned model has no output '\(name)'") }
        guard tensor.shape == reference.shape else {
            throw ModelError("output '\(name)' has shape \(tensor.shape), the dense model's \(reference.shape)")
        }
        return tensor.doubles
    }

    /// Samples × classes: the last axis holds classes, every other axis indexes samples.
    private static func rows(_ values: [Double], shape: [Int]) throws -> [[Double]] {
        guard let classes = shape.last, classes > 0 else { throw ModelError("output of shape \(shape) has no class axis") }
        return stride(from: 0, to: values.count, by: classes).map { Array(values[$0..<($0 + classes)]) }
    }

    /// The row as probabilities: used as is when it already is a distribution, softmax otherwise.
    static func probabilities(_ row: [Double]) -> [Double] {
        let sum = row.reduce(0, +)
        if row.allSatisfy({ $0 >= 0 }) && abs(sum - 1) < 1e-3 { return row }
        let top = row.max() ?? 0
        let exps = row.map { exp($0 - top) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }

    static func argmax(_ row: [Double]) -> Int {
        var best = 0
        for i in row.indices where row[i] > row[best] { best = i }
        return best
    }
}
