import Foundation
import LopperModel
import LopperRuntime
@testable import LopperSensitivity
import LopperTesting
import Testing

/// Embedding, segmentation and sequence agreement against hand-computed values and the numpy
/// reference (`metric_reference.py`).
@Suite struct TaskMetricTests {
    func value(_ kind: MetricKind, dense: Tensor, candidate: Tensor, inputs: [String: Tensor] = [:], maskInput: String? = nil,
               blank: Int = 0) throws -> Double {
        var accumulator = MetricAccumulator(kind: kind, output: "y", topK: 1, maskInput: maskInput, blank: blank)
        try accumulator.add(dense: ["y": dense], candidate: ["y": candidate], labels: nil, inputs: inputs)
        return accumulator.value
    }

    @Test func handComputed() throws {
        // Embeddings [1, 2 tokens, 2]: the padded second token is left out of the mean.
        let dense = Tensor(floats: [1, 0, 9, 9], shape: [1, 2, 2]), pruned = Tensor(floats: [1, 1, -5, 7], shape: [1, 2, 2])
        let mask = ["mask": Tensor(int64s: [1, 0], shape: [1, 2])]
        #expect(abs(try value(.embeddingCosine, dense: dense, candidate: pruned, inputs: mask, maskInput: "mask") - 0.5.squareRoot()) < 1e-12)
        #expect(throws: (any Error).self) { try value(.embeddingCosine, dense: dense, candidate: pruned, maskInput: "absent") }
        // Masks of 4 pixels, classes 0/1 (scores [1, 2, 2, 2]): dense 0,0,1,1 and pruned 0,1,1,1.
        // IoU of class 0 = 1/2, of class 1 = 2/3.
        let a = Tensor(floats: [1, 1, 0, 0, 0, 0, 1, 1], shape: [1, 2, 2, 2]), b = Tensor(floats: [1, 0, 0, 0, 0, 1, 1, 1], shape: [1, 2, 2, 2])
        #expect(abs(try value(.meanIoU, dense: a, candidate: b) - (0.5 + 2.0 / 3) / 2) < 1e-12)
        // CTC over 4 steps, 3 classes (0 blank): 1 1 0 2 → [1, 2]; 1 0 1 2 → [1, 1, 2].
        func steps(_ classes: [Int]) -> [Float] { classes.flatMap { c in (0..<3).map { $0 == c ? 1 : 0 } } }
        let s1 = Tensor(floats: steps([1, 1, 0, 2]) + steps([2, 2, 2, 2]), shape: [2, 4, 3])
        let s2 = Tensor(floats: steps([1, 0, 1, 2]) + steps([0, 2, 0, 2]), shape: [2, 4, 3])
        // Sample 1: [2] against [2, 2]: also different.
        #expect(try value(.sequenceAgreement, dense: s1, candidate: s1) == 1)
        #expect(try value(.sequenceAgreement, dense: s1, candidate: s2) == 0)
        let s3 = Tensor(floats: steps([1, 2, 2, 0]) + steps([2, 0, 0, 2]), shape: [2, 4, 3])
        #expect(try value(.sequenceAgreement, dense: s1, candidate: s3) == 0.5)
        #expect { try value(.sequenceAgreement, dense: s1, candidate: s1, blank: 3) } throws: { "\($0)".contains("blank class 3 is outside 0..<3") }
    }

    /// Random outputs and a perturbed copy, scored by Lopper and by numpy.
    @Test(.enabled(if: Reference.isAvailable)) func matchNumpyReference() throws {
        var random = SeededGenerator(seed: 3)
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func pair(_ shape: [Int], noise: Float) throws -> (Tensor, Tensor, String, String) {
            let count = shape.reduce(1, *)
            let dense = random.floats(count)
            let pruned = dense.map { $0 + Float.random(in: -noise...noise, using: &random) }
            let (a, b) = (directory.appendingPathComponent("dense\(shape).npy").path, directory.appendingPathComponent("pruned\(shape).npy").path)
            try NumPy.write(TensorData(floats: dense, shape: shape), to: a)
            try NumPy.write(TensorData(floats: pruned, shape: shape), to: b)
            return (Tensor(floats: dense, shape: shape), Tensor(floats: pruned, shape: shape), a, b)
        }
        func reference(_ arguments: [String], _ key: String) throws -> Double {
            try #require(try Reference.call(arguments, script: "metric_reference.py")[key] as? Double)
        }
        let masks = (0..<24).map { Int64($0 % 6 < 4 ? 1 : 0) }
        let maskPath = directory.appendingPathComponent("mask.npy").path
        try NumPy.write(TensorData(int64s: masks, shape: [4, 6]), to: maskPath)
        let (e1, e2, ea, eb) = try pair([4, 6, 8], noise: 0.5)
        let cosine = try value(.embeddingCosine, dense: e1, candidate: e2, inputs: ["m": Tensor(int64s: masks, shape: [4, 6])], maskInput: "m")
        #expect(abs(cosine - (try reference(["embedding", ea, eb, "--mask", maskPath], "cosine"))) < 1e-9)
        let (m1, m2, ma, mb) = try pair([2, 5, 6, 7], noise: 0.3)
        let iou = try value(.meanIoU, dense: m1, candidate: m2)
        #expect(abs(iou - (try reference(["mean-iou", ma, mb], "miou"))) < 1e-9 && iou < 1)
        let (c1, c2, ca, cb) = try pair([16, 10, 4], noise: 0.2)
        let agreement = try value(.sequenceAgreement, dense: c1, candidate: c2)
        #expect(abs(agreement - (try reference(["ctc", ca, cb], "agreement"))) < 1e-9 && agreement > 0 && agreement < 1)
    }
}
