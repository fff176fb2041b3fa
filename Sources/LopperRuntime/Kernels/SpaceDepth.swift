import Foundation
import LopperModel

/// DepthToSpace and SpaceToDepth: blocks of channels moved to or from spatial positions, as
/// the reshape–transpose–reshape the ONNX spec defines them by.
enum SpaceDepthKernels {
    static let all: [KernelVersion] = [
        KernelVersion("DepthToSpace") { setup in
            let mode = try setup.node.string("mode", default: "DCR")
            guard mode == "DCR" || mode == "CRD" else { throw ModelError("must be DCR or CRD, found '\(mode)'", field: "attribute 'mode'") }
            return Rearrange(block: try blockSize(setup.node), toSpace: true, columnRowDepth: mode == "CRD")
        },
        KernelVersion("SpaceToDepth") { setup in Rearrange(block: try blockSize(setup.node), toSpace: false, columnRowDepth: false) },
    ]

    static func blockSize(_ node: Node) throws -> Int {
        guard let size = try node.int("blocksize"), size > 0 else {
            throw ModelError("is required and must be positive", field: "attribute 'blocksize'")
        }
        return size
    }

    struct Rearrange: Kernel {
        let block: Int
        let toSpace: Bool
        let columnRowDepth: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            guard x.rank == 4 else { throw ModelError("input must be 4-D (N, C, H, W), found \(x.shape)") }
            let (n, c, h, w, b) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], block)
            if toSpace {
                guard c % (b * b) == 0 else { throw ModelError("\(c) channels are not a multiple of blocksize² = \(b * b)") }
                let depth = c / (b * b)
                let moved = columnRowDepth
                    ? try x.reshaped([n, depth, b, b, h, w]).permuted([0, 1, 4, 2, 5, 3])
                    : try x.reshaped([n, b, b, depth, h, w]).permuted([0, 3, 4, 1, 5, 2])
                return [moved.reshaped([n, depth, h * b, w * b])]
            }
            guard h % b == 0, w % b == 0 else { throw ModelError("spatial size \(h)×\(w) is not a multiple of blocksize \(b)") }
            let moved = try x.reshaped([n, c, h / b, b, w / b, b]).permuted([0, 3, 5, 1, 2, 4])
            return [moved.reshaped([n, c * b * b, h / b, w / b])]
        }
    }
}
