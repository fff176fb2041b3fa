import Foundation
import LopperModel

/// InstanceNormalization and GroupNormalization: statistics per sample over groups of channels
/// (one channel per group for instance normalization) and their spatial positions.
enum GroupNormalizationKernels {
    static let all: [KernelVersion] = [
        KernelVersion("InstanceNormalization") { setup in
            GroupNormalization(groups: nil, epsilon: try setup.node.float("epsilon", default: 1e-5), affinePerChannel: true)
        },
        // Opset 18 scales and shifts per group; opset 21 per channel.
        KernelVersion("GroupNormalization", since: 18) { setup in
            GroupNormalization(groups: try groups(setup.node), epsilon: try setup.node.float("epsilon", default: 1e-5), affinePerChannel: false)
        },
        KernelVersion("GroupNormalization", since: 21) { setup in
            GroupNormalization(groups: try groups(setup.node), epsilon: try setup.node.float("epsilon", default: 1e-5), affinePerChannel: true)
        },
    ]

    static func groups(_ node: Node) throws -> Int {
        guard let groups = try node.int("num_groups"), groups > 0 else {
            throw ModelError("is required and must be positive", field: "attribute 'num_groups'")
        }
        return groups
    }

    struct GroupNormalization: Kernel {
        /// `nil`: one group per channel.
        let groups: Int?
        let epsilon: Float
        let affinePerChannel: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0), scale = try inputs.required(1), bias = try inputs.required(2)
            for (t, what) in [(x, "X"), (scale, "scale"), (bias, "B")] { try t.requireFloat(what) }
            guard x.rank >= 2 else { throw ModelError("X must have a batch and a channel axis, found \(x.shape)") }
            let batch = x.shape[0], channels = x.shape[1], spatial = x.shape[2...].reduce(1, *)
            let groups = self.groups ?? channels
            guard channels % groups == 0 else { throw ModelError("\(channels) channels do not split into \(groups) groups") }
            let affineCount = affinePerChannel ? channels : groups
            guard scale.count == affineCount, bias.count == affineCount else {
                throw ModelError("scale and B must hold \(affineCount) values, found \(scale.shape) and \(bias.shape)")
            }
            let perGroup = channels / groups, span = perGroup * spatial
            let out = try Tensor(uninitialized: x.elementType, shape: x.shape)
            for n in 0..<batch {
                for g in 0..<groups {
                    let base = (n * groups + g) * span
                    var sum = 0.0
                    for k in 0..<span { sum += Double(x.f[base + k]) }
                    let mean = sum / Double(max(span, 1))
                    var squares = 0.0
                    for k in 0..<span { let d = Double(x.f[base + k]) - mean; squares += d * d }
                    let inverse = 1 / (squares / Double(max(span, 1)) + Double(epsilon)).squareRoot()
                    for c in 0..<perGroup {
                        let a = affinePerChannel ? g * perGroup + c : g
                        let factor = Float(inverse) * scale.f[a], shift = bias.f[a] - Float(mean) * factor
                        let row = base + c * spatial
                        for k in 0..<spatial { out.f[row + k] = x.f[row + k] * factor + shift }
                    }
                }
            }
            return [out.normalized()]
        }
    }
}
