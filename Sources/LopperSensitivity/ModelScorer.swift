import Foundation
import LopperModel
import LopperRuntime

/// Scores whole models the way a sweep scores its jobs: the sweep's metric on its calibration
/// batches against the dense model's outputs (or the sweep's external evaluator). What export
/// uses to measure the damage of an assembled model.
public final class ModelScorer: @unchecked Sendable {
    public let setup: SweepSetup
    /// The dense model's score.
    public let dense: Double
    private let denseOutputs: [[String: Tensor]]
    private let labels: [[Int64]]?

    public init(setup: SweepSetup) throws {
        self.setup = setup
        labels = setup.labels.map { JobEvaluator.batched($0, like: setup.calibration) }
        let executor = try Executor(model: setup.model, options: ExecutorOptions(threads: 1))
        denseOutputs = try setup.calibration.batches.map { try executor.run($0) }
        if let evaluator = setup.spec.evaluator {
            dense = try JobEvaluator.scoreExternally(setup.model, with: evaluator)
        } else {
            var accumulator = setup.metricOptions.accumulator(setup.spec.metric, output: setup.output)
            for (index, outputs) in denseOutputs.enumerated() {
                try accumulator.add(dense: outputs, candidate: outputs, labels: labels?[index], inputs: setup.calibration.batches[index])
            }
            dense = accumulator.value
        }
    }

    /// The metric of `candidate` (a pruned copy of the sweep's model, same inputs and outputs).
    public func score(_ candidate: Model) throws -> Double {
        if let evaluator = setup.spec.evaluator { return try JobEvaluator.scoreExternally(candidate, with: evaluator) }
        let executor = try Executor(model: candidate, options: ExecutorOptions(threads: 1))
        var accumulator = setup.metricOptions.accumulator(setup.spec.metric, output: setup.output)
        for (index, batch) in setup.calibration.batches.enumerated() {
            try accumulator.add(dense: denseOutputs[index], candidate: try executor.run(batch),
                                labels: labels?[index], inputs: batch)
        }
        return accumulator.value
    }
}
