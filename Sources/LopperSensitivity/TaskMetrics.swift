import Foundation
import LopperModel

/// Per-sample agreement of a pruned model with the dense one for encoders, segmenters and
/// CTC sequence models. `MetricAccumulator` sums what these return.
enum TaskMetrics {
    /// Cosine similarity of each sample's mean-pooled embedding, `[N, S, D]` pooled over the
    /// tokens whose mask (`[N, S]`, non-zero = real token) is set, or over all tokens.
    static func embeddingCosines(dense: [Double], candidate: [Double], shape: [Int], mask: [Double]?) throws -> [Double] {
        guard shape.count == 3 else { throw ModelError("embedding agreement needs a [batch, tokens, features] output, got \(shape)") }
        let (samples, tokens, features) = (shape[0], shape[1], shape[2])
        if let mask, mask.count != samples * tokens {
            throw ModelError("the attention mask has \(mask.count) elements for \(samples) × \(tokens) tokens")
        }
        return (0..<samples).map { n in
            var a = [Double](repeating: 0, count: features), b = a
            for t in 0..<tokens where (mask?[n * tokens + t] ?? 1) != 0 {
                let base = (n * tokens + t) * features
                for f in 0..<features { a[f] += dense[base + f]; b[f] += candidate[base + f] }
            }
            // The mean's divisor cancels in the cosine.
            let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
            let norms = (a.reduce(0) { $0 + $1 * $1 } * b.reduce(0) { $0 + $1 * $1 }).squareRoot()
            return norms > 0 ? dot / norms : (dot == 0 ? 1 : 0)
        }
    }

    /// The class of each pixel of a `[N, C, …]` score map (first class on ties), sample-major.
    static func argmaxMasks(_ values: [Double], shape: [Int]) throws -> [Int] {
        guard shape.count >= 3, shape[1] >= 1 else { throw ModelError("mean IoU needs a [batch, classes, …] output, got \(shape)") }
        let classes = shape[1], pixels = shape[2...].reduce(1, *)
        var labels: [Int] = []
        labels.reserveCapacity(shape[0] * pixels)
        for n in 0..<shape[0] {
            for p in 0..<pixels {
                var best = 0
                for c in 1..<classes where values[(n * classes + c) * pixels + p] > values[(n * classes + best) * pixels + p] { best = c }
                labels.append(best)
            }
        }
        return labels
    }

    /// CTC greedy decoding of each sample of a `[N, T, C]` output: the best class per step,
    /// repeats merged, then `blank` dropped.
    static func greedyCTC(_ values: [Double], shape: [Int], blank: Int) throws -> [[Int]] {
        guard shape.count == 3 else { throw ModelError("sequence agreement needs a [batch, steps, classes] output, got \(shape)") }
        let (steps, classes) = (shape[1], shape[2])
        guard blank >= 0 && blank < classes else { throw ModelError("blank class \(blank) is outside 0..<\(classes)", field: "ctc_blank") }
        return (0..<shape[0]).map { n in
            var sequence: [Int] = [], previous = -1
            for t in 0..<steps {
                let base = (n * steps + t) * classes
                var best = 0
                for c in 1..<classes where values[base + c] > values[base + best] { best = c }
                if best != previous && best != blank { sequence.append(best) }
                previous = best
            }
            return sequence
        }
    }
}
