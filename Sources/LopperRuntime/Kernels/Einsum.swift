import Foundation
import LopperModel

/// Einsum (opset 12): sums of products over labelled axes, with `...` for broadcast axes,
/// repeated labels for diagonals and the implicit output (labels seen once, alphabetically).
enum EinsumKernels {
    static let all: [KernelVersion] = [
        KernelVersion("Einsum", since: 12) { setup in
            guard let equation = try setup.node.string("equation") else { throw ModelError("is required", field: "attribute 'equation'") }
            return Einsum(equation: equation.filter { !$0.isWhitespace })
        },
    ]

    struct Einsum: Kernel {
        let equation: String

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let operands = try inputs.indices.map { try inputs.required($0) }
            guard let first = operands.first else { throw ModelError("needs at least one input") }
            for t in operands { try t.requireFloat("every input") }
            let plan = try EinsumPlan(equation, shapes: operands.map(\.shape))
            let out = try Tensor(uninitialized: first.elementType, shape: plan.outputShape)
            let labels = plan.outputLabels + plan.summedLabels
            let sizes = labels.map { plan.sizes[$0]! }
            // Per operand, the element step each label takes (summed over repeated labels; 0 when broadcast).
            let steps = operands.indices.map { k in labels.map { plan.stride(of: $0, operand: k, shape: operands[k].shape) } }
            let outputCount = out.count, summedCount = plan.summedLabels.reduce(1) { $0 * plan.sizes[$1]! }
            let summedStart = plan.outputLabels.count
            var index = [Int](repeating: 0, count: labels.count)
            for o in 0..<outputCount {
                var rest = o
                for d in stride(from: summedStart - 1, through: 0, by: -1) { index[d] = rest % sizes[d]; rest /= sizes[d] }
                var total = 0.0
                for s in 0..<summedCount {
                    var r = s
                    for d in stride(from: labels.count - 1, through: summedStart, by: -1) { index[d] = r % sizes[d]; r /= sizes[d] }
                    var product = 1.0
                    for (k, operand) in operands.enumerated() {
                        var offset = 0
                        for d in labels.indices { offset += index[d] * steps[k][d] }
                        product *= Double(operand.f[offset])
                    }
                    total += product
                }
                out.f[o] = Float(total)
            }
            return [out.normalized()]
        }
    }
}

extension EinsumPlan {
    /// The element step `label` takes in operand `k` (summed over repeated labels; 0 on a broadcast axis).
    func stride(of label: Character, operand k: Int, shape: [Int]) -> Int {
        let steps = strides(of: shape)
        return operandLabels[k].indices.reduce(0) { total, axis in
            operandLabels[k][axis] == label && shape[axis] != 1 ? total + steps[axis] : total
        }
    }
}
