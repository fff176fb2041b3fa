import Foundation
import LopperModel
import LopperRuntime

/// Scores whole models the way a sweep scores its jobs: the sweep's metric on its calibration
/// batches (or on another split of the same form, such as held-out data) against the dense
/// model's outputs, or the sweep's external evaluator. What export uses to measure the damage of
/// an assembled model.
public final class ModelScorer: @unchecked Sendable {
    public let setup: SweepSetup
    /// The dense model's score.
    public let dense: Double
    private let denseOutputs: [[String: Tensor]]
    private let data: Calibration
    /// The metric's settings; labelled boxes only for the sweep's own calibration data.
    private let options: JobEvaluator.Options
    /// The samples scored.
    public var samples: Int { data.samples }
    private let labels: [[Int64]]?

    /// Scores on the sweep's own calibration data.
    public convenience init(setup: SweepSetup) throws {
        try self.init(setup: setup, data: setup.calibration, labels: setup.labels, options: setup.metricOptions)
    }

    /// Scores on other data of the same form (a held-out split), with `labels` when the metric
    /// needs them; a detection metric scores against the dense model's boxes there.
    public convenience init(setup: SweepSetup, data: Calibration, labels: [Int64]?) throws {
        var options = setup.metricOptions
        options.groundTruth = nil
        try self.init(setup: setup, data: data, labels: labels, options: options)
    }

    private init(setup: SweepSetup, data: Calibration, labels: [Int64]?, options: JobEvaluator.Options) throws {
        if setup.spec.evaluator == nil && setup.spec.metric.needsLabels && labels == nil {
            throw ModelError("the sweep's metric \(setup.spec.metric.rawValue) needs labels for this data")
        }
        self.setup = setup
        self.data = data
        self.options = options
        self.labels = labels.map { JobEvaluator.batched($0, like: data) }
        let executor = try Executor(model: setup.model, options: ExecutorOptions(threads: 1))
        denseOutputs = try data.batches.map { try executor.run($0) }
        if let evaluator = setup.spec.evaluator {
            dense = try JobEvaluator.scoreExternally(setup.model, with: evaluator)
        } else {
            var accumulator = options.accumulator(setup.spec.metric, output: setup.output)
            for (index, outputs) in denseOutputs.enumerated() {
                try accumulator.add(dense: outputs, candidate: outputs, labels: self.labels?[index], inputs: data.batches[index])
            }
            dense = accumulator.value
        }
    }

    /// The metric of `candidate` (a pruned copy of the sweep's model, same inputs and outputs).
    public func score(_ candidate: Model) throws -> Double {
        if let evaluator = setup.spec.evaluator { return try JobEvaluator.scoreExternally(candidate, with: evaluator) }
        let executor = try Executor(model: candidate, options: ExecutorOptions(threads: 1))
        var accumulator = options.accumulator(setup.spec.metric, output: setup.output)
        for (index, batch) in data.batches.enumerated() {
            try accumulator.add(dense: denseOutputs[index], candidate: try executor.run(batch),
                                labels: labels?[index], inputs: batch)
        }
        return accumulator.value
    }
}
