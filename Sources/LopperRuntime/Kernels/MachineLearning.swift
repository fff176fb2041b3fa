import Foundation
import LopperModel

/// Operators of the `ai.onnx.ml` domain that scikit-learn exports use on tensors.
enum MachineLearningKernels {
    static let all: [KernelVersion] = [
        KernelVersion("ai.onnx.ml.ArrayFeatureExtractor") { _ in ArrayFeatureExtractor() },
    ]

    /// The elements of X at the indices Y along its last axis (a 1-D X gives `[1, count]`).
    struct ArrayFeatureExtractor: Kernel {
        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0), y = try inputs.required(1)
            guard y.kind == .int64 else { throw ModelError("Y must hold integer indices, found \(y.elementType)") }
            guard let last = x.shape.last else { throw ModelError("X must have at least one axis") }
            let picks = try y.int64s.map { value -> Int in
                guard value >= 0 && value < Int64(last) else { throw ModelError("Y holds index \(value), out of range for the last axis of X \(x.shape)") }
                return Int(value)
            }
            let rows = x.count / max(last, 1)
            let shape = x.rank == 1 ? [1, picks.count] : Array(x.shape.dropLast()) + [picks.count]
            let out = try Tensor(uninitialized: x.elementType, shape: shape)
            let size = x.kind.byteSize
            for row in 0..<rows {
                for (k, pick) in picks.enumerated() {
                    (out.raw + (row * picks.count + k) * size).copyMemory(from: x.raw + (row * last + pick) * size, byteCount: size)
                }
            }
            return [out]
        }
    }
}
