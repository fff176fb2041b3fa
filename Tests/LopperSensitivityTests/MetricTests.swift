import Foundation
@testable import LopperSensitivity
import LopperRuntime
import Testing

/// Metrics against values computed by hand.
@Suite struct MetricTests {
    func value(_ kind: MetricKind, dense: [Float], candidate: [Float], shape: [Int], labels: [Int64]? = nil, k: Int = 2) throws -> Double {
        var accumulator = MetricAccumulator(kind: kind, output: "y", topK: k)
        try accumulator.add(dense: ["y": Tensor(floats: dense, shape: shape)], candidate: ["y": Tensor(floats: candidate, shape: shape)], labels: labels)
        return accumulator.value
    }

    @Test func relativeL2() throws {
        // ‖(3,4) − (0,0)‖ / ‖(3,4)‖ = 1; ‖(3,4) − (3,0)‖ / 5 = 0.8.
        #expect(try value(.relativeL2, dense: [3, 4], candidate: [0, 0], shape: [2]) == 1)
        #expect(try value(.relativeL2, dense: [3, 4], candidate: [3, 0], shape: [2]) == 0.8)
        // Accumulated over batches, not averaged per batch: sqrt((16 + 0) / (25 + 25)).
        var accumulator = MetricAccumulator(kind: .relativeL2, output: "y", topK: 1)
        try accumulator.add(dense: ["y": Tensor(floats: [3, 4], shape: [2])], candidate: ["y": Tensor(floats: [3, 0], shape: [2])], labels: nil)
        try accumulator.add(dense: ["y": Tensor(floats: [4, 3], shape: [2])], candidate: ["y": Tensor(floats: [4, 3], shape: [2])], labels: nil)
        #expect(abs(accumulator.value - (16.0 / 50).squareRoot()) < 1e-15)
    }

    @Test func classifierAgreement() throws {
        // Probabilities (rows sum to 1): sample 0 agrees, sample 1 does not.
        let dense: [Float] = [0.7, 0.2, 0.1, 0.1, 0.8, 0.1]
        let pruned: [Float] = [0.6, 0.3, 0.1, 0.5, 0.4, 0.1]
        #expect(try value(.top1Agreement, dense: dense, candidate: pruned, shape: [2, 3]) == 0.5)
        // KL(p‖q) summed over classes, averaged over samples.
        let kl0 = 0.7 * log(0.7 / 0.6) + 0.2 * log(0.2 / 0.3) + 0.1 * log(0.1 / 0.1)
        let kl1 = 0.1 * log(0.1 / 0.5) + 0.8 * log(0.8 / 0.4) + 0.1 * log(0.1 / 0.1)
        #expect(abs(try value(.kl, dense: dense, candidate: pruned, shape: [2, 3]) - (kl0 + kl1) / 2) < 1e-6)
        // Cosine of (1,0) with (1,1) is 1/√2; of (0,2) with (0,3) is 1.
        #expect(abs(try value(.cosine, dense: [1, 1, 0, 3], candidate: [1, 0, 0, 2], shape: [2, 2]) - (0.5.squareRoot() + 1) / 2) < 1e-12)
    }

    @Test func labelledMetrics() throws {
        // Logits: softmax applies for cross-entropy. Sample 0 predicts 2 (label 2), sample 1 predicts 0 (label 1).
        let logits: [Float] = [0, 1, 3, 2, 1, 0]
        let labels: [Int64] = [2, 1]
        #expect(try value(.accuracy, dense: logits, candidate: logits, shape: [2, 3], labels: labels) == 0.5)
        #expect(try value(.topK, dense: logits, candidate: logits, shape: [2, 3], labels: labels, k: 2) == 1)
        #expect(try value(.topK, dense: logits, candidate: logits, shape: [2, 3], labels: labels, k: 1) == 0.5)
        let p0 = exp(3.0) / (exp(0.0) + exp(1.0) + exp(3.0)), p1 = exp(1.0) / (exp(2.0) + exp(1.0) + exp(0.0))
        #expect(abs(try value(.crossEntropy, dense: logits, candidate: logits, shape: [2, 3], labels: labels) - (-log(p0) - log(p1)) / 2) < 1e-6)
        #expect(throws: (any Error).self) { try value(.accuracy, dense: logits, candidate: logits, shape: [2, 3], labels: [1]) }
    }
}
