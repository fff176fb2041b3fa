import Foundation
import LopperModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Zeroing individual weights: unstructured magnitude pruning and N:M semi-structured sparsity.
/// Shapes do not change; the zeros are what sparse kernels and compressed storage exploit.
public enum WeightSparsity {
    /// A layer weight that can be sparsified, and the axis its dot products run along.
    public struct Target: Sendable, Equatable {
        public var node: String
        public var opType: String
        public var tensor: String
        public var reductionAxis: Int
    }

    public struct Report: Sendable {
        public struct Tensor: Sendable {
            public var node: String
            public var tensor: String
            public var elements: Int
            public var zeros: Int
        }
        public var tensors: [Tensor]
        public var elements: Int { tensors.reduce(0) { $0 + $1.elements } }
        public var zeros: Int { tensors.reduce(0) { $0 + $1.zeros } }
        public var sparsity: Double { elements == 0 ? 0 : Double(zeros) / Double(elements) }
        /// float32 weights stored as their non-zero values plus a one-bit-per-element mask.
        public var compressedBytes: Int { (elements - zeros) * 4 + (elements + 7) / 8 }
        public var denseBytes: Int { elements * 4 }
    }

    /// The float32 weights of Conv, ConvTranspose, Gemm and MatMul layers whose names match `glob`
    /// (shell-style, e.g. `backbone.*`); all of them when `glob` is nil.
    public static func targets(in model: Model, matching glob: String? = nil) throws -> [Target] {
        var found: [Target] = []
        for node in model.graph.nodes where node.domain.isEmpty {
            if let glob, fnmatch(glob, node.displayName, 0) != 0 { continue }
            guard let weight = node.input(1), !found.contains(where: { $0.tensor == weight }),
                  let data = try model.graph.constant(weight), data.elementType == .float32, data.shape.count >= 2 else { continue }
            let axis: Int
            switch node.opType {
            case "Conv": axis = 1
            case "ConvTranspose": axis = 0
            case "Gemm": axis = try node.int("transB", default: 0) != 0 ? 1 : 0
            case "MatMul": axis = data.shape.count - 2
            default: continue
            }
            found.append(Target(node: node.displayName, opType: node.opType, tensor: weight, reductionAxis: axis))
        }
        if found.isEmpty {
            throw ModelError(glob.map { "--layers '\($0)' matches no Conv, ConvTranspose, Gemm or MatMul layer with a float32 weight" }
                             ?? "the model has no Conv, ConvTranspose, Gemm or MatMul layer with a float32 weight")
        }
        return found
    }

    /// Zeroes the smallest-magnitude fraction `sparsity` of weights, per tensor or across all
    /// targets at once (`global`, which lets robust layers give up more).
    public static func unstructured(_ model: Model, targets: [Target], sparsity: Double, global: Bool) throws -> (Model, Report) {
        guard sparsity >= 0, sparsity < 1 else { throw ModelError("sparsity \(sparsity) must be in [0, 1)") }
        var pruned = model
        var weights = try targets.map { try floats(of: $0, in: model) }
        if global {
            var all: [(magnitude: Float, tensor: Int, index: Int)] = []
            for (t, values) in weights.enumerated() { for (i, v) in values.enumerated() { all.append((abs(v), t, i)) } }
            let count = Int(Double(all.count) * sparsity)
            all.sort { $0.magnitude != $1.magnitude ? $0.magnitude < $1.magnitude : ($0.tensor, $0.index) < ($1.tensor, $1.index) }
            for entry in all.prefix(count) { weights[entry.tensor][entry.index] = 0 }
        } else {
            for t in weights.indices {
                let count = Int(Double(weights[t].count) * sparsity)
                let order = weights[t].indices.sorted { abs(weights[t][$0]) != abs(weights[t][$1]) ? abs(weights[t][$0]) < abs(weights[t][$1]) : $0 < $1 }
                for index in order.prefix(count) { weights[t][index] = 0 }
            }
        }
        let report = try store(weights, into: &pruned, targets: targets)
        return (pruned, report)
    }

    /// Keeps the `n` largest of every `m` consecutive weights along the reduction axis (2:4, 4:8
    /// as sparse tensor cores require). Tensors whose reduction length is not a multiple of `m`
    /// are left dense and not reported.
    public static func nOfM(_ model: Model, targets: [Target], n: Int, m: Int) throws -> (Model, Report) {
        guard n >= 1, m >= 2, n < m else { throw ModelError("an N:M pattern needs 1 ≤ N < M, got \(n):\(m)") }
        var pruned = model
        var kept: [Target] = [], weights: [[Float]] = []
        for target in targets {
            guard let data = try model.graph.constant(target.tensor), data.shape[target.reductionAxis] % m == 0 else { continue }
            var values = try floats(of: target, in: model)
            let extent = data.shape[target.reductionAxis], inner = data.shape[(target.reductionAxis + 1)...].reduce(1, *)
            let outer = values.count / (extent * inner)
            for o in 0..<outer {
                for i in 0..<inner {
                    for start in stride(from: 0, to: extent, by: m) {
                        let block = (start..<(start + m)).map { (o * extent + $0) * inner + i }
                        let order = block.sorted { abs(values[$0]) != abs(values[$1]) ? abs(values[$0]) > abs(values[$1]) : $0 < $1 }
                        for index in order.dropFirst(n) { values[index] = 0 }
                    }
                }
            }
            kept.append(target)
            weights.append(values)
        }
        guard !kept.isEmpty else {
            throw ModelError("no selected layer has a reduction length divisible by \(m), so \(n):\(m) sparsity applies nowhere")
        }
        let report = try store(weights, into: &pruned, targets: kept)
        return (pruned, report)
    }

    private static func floats(of target: Target, in model: Model) throws -> [Float] {
        guard let data = try model.graph.constant(target.tensor) else { throw ModelError("'\(target.tensor)' is not a constant") }
        return data.floats()
    }

    private static func store(_ weights: [[Float]], into model: inout Model, targets: [Target]) throws -> Report {
        var report = Report(tensors: [])
        for (target, values) in zip(targets, weights) {
            let shape = try model.graph.constant(target.tensor)!.shape
            try model.graph.setConstant(target.tensor, to: TensorData(floats: values, shape: shape))
            report.tensors.append(.init(node: target.node, tensor: target.tensor, elements: values.count,
                                        zeros: values.filter { $0 == 0 }.count))
        }
        return report
    }
}
