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

    public var needsLabels: Bool { [.accuracy, .topK, .crossEntropy].contains(self) }

    /// Whether a larger value means a better model (accuracy) rather than more damage (error).
    public var higherIsBetter: Bool { [.top1Agreement, .cosine, .accuracy, .topK].contains(self) }
}

/// Accumulates a metric over batches in order. Sums are kept in Double and added batch by batch,
/// so the same outputs always give the same bits.
struct MetricAccumulator {
    let kind: MetricKind
    /// The output classifier metrics read.
    let output: String
    let topK: Int
    private var numerator: [String: Double] = [:]
    private var denominator: [String: Double] = [:]
    private var relativeError = RelativeError()

    init(kind: MetricKind, output: String, topK: Int) {
        self.kind = kind
        self.output = output
        self.topK = topK
    }

    /// Adds one batch: the dense model's outputs, the candidate's, and the batch's labels.
    mutating func add(dense: [String: Tensor], candidate: [String: Tensor], labels: [Int64]?) throws {
        if kind == .relativeL2 {
            try relativeError.add(reference: dense, candidate: candidate)
            return
        }
        guard let reference = dense[output] else { throw ModelError("the model has no output '\(output)'") }
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
            case .relativeL2:
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
        let n = denominator[output] ?? 0
        return n > 0 ? numerator[output]! / n : 0
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
