import LopperModel
import LopperPruning
import LopperRuntime

/// Layer jobs: a residual block removed, or replaced by its branch's mean output.
extension JobEvaluator {
    /// The block a layer job removes (its unit id is `groups.count + block.id`).
    func block(of job: SweepJob) throws -> ResidualBlock {
        let id = job.group - groups.count
        guard blocks.indices.contains(id), blocks[id].isRemovable else { throw ModelError("there is no removable block \(id) (unit \(job.group))") }
        return blocks[id]
    }

    func removeBlock(_ job: SweepJob) throws -> (Model, Int) {
        let block = try block(of: job)
        guard let removal = BlockRemoval(rawValue: job.criterion) else {
            throw ModelError("unknown block removal '\(job.criterion)' (\(BlockRemoval.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let replacement: BlockSurgery.Replacement
        switch removal {
        case .skip: replacement = .skip
        case .mean:
            guard let mean = blockMeans[block.id] else { throw ModelError("no mean output was gathered for block '\(block.name)'") }
            replacement = .mean(mean)
        }
        return (try BlockSurgery.remove(model, blocks: [(block, replacement)]), block.nodes.count)
    }

    /// Data-free proxy for a removed block: the mean magnitude of the weights that went with it.
    static func removedWeightMagnitude(original: Model, pruned: Model) throws -> Double {
        var sum = 0.0, count = 0
        for (name, tensor) in original.graph.initializers where pruned.graph.initializers[name] == nil && tensor.elementType.isFloatingPoint {
            for x in try tensor.floats() { sum += Double(abs(x)) }
            count += tensor.count
        }
        return count > 0 ? sum / Double(count) : 0
    }
}
