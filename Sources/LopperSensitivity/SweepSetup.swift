import Foundation
import LopperModel
import LopperPruning
import LopperRuntime

/// Everything a sweep derives from its spec before any job runs: the model it scores, its
/// groups, the calibration batches and labels, and the job list. The in-process runner, the
/// coordinator and every worker build it the same way, so they agree on group ids and jobs.
public struct SweepSetup: @unchecked Sendable {
    public let spec: SweepSpec
    public let model: Model
    public let groups: [PruneGroup]
    /// Residual blocks, when the sweep has the layer granularity (their unit ids follow the groups').
    public let blocks: [ResidualBlock]
    public let calibration: Calibration
    public let labels: [Int64]?
    /// Labelled boxes per sample, when a detection metric has labels.
    let boxLabels: [[Detection]]?
    public let jobs: [SweepJob]
    /// The output the metric reads.
    public let output: String

    /// Checks every input and lists the jobs; nothing is evaluated.
    public init(spec: SweepSpec) throws {
        try spec.validate()
        var model = try Model.load(path: spec.model)
        if spec.metric != .relativeL2 && spec.evaluator == nil && spec.method == .oneShot {
            // Classifier metrics read one output; the rest of the graph (a label branch with
            // operators Lopper does not run, say) is not needed.
            model = try model.restricted(toOutputs: [spec.output ?? model.graph.outputs.first?.name ?? ""])
        }
        let groups = try DependencyAnalysis.groups(of: model)
        let calibration = try Calibration(path: spec.calibration, for: model, limit: spec.samples, batchSize: spec.batchSize)
        if spec.metric.decodesDetections, let detection = spec.detection {
            boxLabels = try spec.labels.map { try DetectionDecoding.readLabels($0, samples: calibration.samples,
                                                                             available: calibration.available, classes: detection.classes) }
            labels = nil
        } else {
            boxLabels = nil
            labels = try spec.labels.map { try Self.readLabels($0, calibration: calibration) }
        }
        let blocks = spec.granularities.contains(.layer) ? try ResidualBlocks.find(in: model) : []
        jobs = SweepRunner.jobs(for: spec, groups: groups, blocks: blocks, model: model)
        guard !jobs.isEmpty else {
            throw ModelError("has no prunable group for \(spec.granularities.map(\.rawValue).joined(separator: ", ")) (lopper groups lists why)", file: spec.model)
        }
        self.spec = spec
        self.model = model
        self.groups = groups
        self.blocks = blocks
        self.calibration = calibration
        output = spec.output ?? model.graph.outputs.first?.name ?? ""
    }

    /// What the results store is bound to and the sweep id derives from (hashes the input files,
    /// external-data side files included).
    public func identity() throws -> ResultsStore.Identity {
        var sideFiles: [String: String] = [:]
        for location in model.externalDataLocations { sideFiles[location] = try FileDigest.sha256(modelDataPath(location)) }
        return ResultsStore.Identity(
            modelSHA256: try FileDigest.sha256(spec.model), modelDataSHA256: sideFiles, calibrationSHA256: try FileDigest.sha256(spec.calibration),
            labelsSHA256: try spec.labels.map(FileDigest.sha256), metric: spec.metric, samples: calibration.samples,
            batchSize: spec.batchSize, output: output,
            method: spec.evaluator.map { "external: \($0.command)" } ?? spec.method.rawValue, topK: spec.topK,
            metricSettings: metricSettings)
    }

    /// Where the model's external-data side file named `location` is.
    public func modelDataPath(_ location: String) -> String {
        URL(fileURLWithPath: spec.model).deletingLastPathComponent().appendingPathComponent(location).path
    }

    /// The settings that change the metric's value beyond its kind (nil when none do).
    var metricSettings: String? {
        switch spec.metric {
        case .detectionMAP50, .detectionMAP: spec.detection.map(ResultsStore.canonicalJSON)
        case .embeddingCosine: spec.maskInput.map { "mask_input: \($0)" }
        case .sequenceAgreement: "ctc_blank: \(spec.ctcBlank)"
        default: nil
        }
    }

    /// The evaluator options this sweep's spec gives (metric settings included).
    var metricOptions: JobEvaluator.Options {
        var options = JobEvaluator.Options(metric: spec.metric, output: spec.output, topK: spec.topK, method: spec.method,
                                           evaluator: spec.evaluator, detection: spec.detection, maskInput: spec.maskInput,
                                           ctcBlank: spec.ctcBlank)
        options.groundTruth = boxLabels
        return options
    }

    /// Opens the store, binds it to this sweep's inputs and registers the groups and jobs.
    public func openStore(at path: String) throws -> ResultsStore {
        let store = try ResultsStore(path: path)
        try store.bind(to: try identity(), spec: spec)
        try store.register(groups: groups, blocks: blocks, jobs: jobs)
        return store
    }

    /// An evaluator for this sweep's jobs, caching dense values for `preparing` (default: all).
    public func evaluator(cacheBytes: Int, prefixReuse: Bool = true, preparing: [SweepJob]? = nil) throws -> JobEvaluator {
        var options = metricOptions
        options.prefixReuse = prefixReuse
        options.cacheBytes = cacheBytes
        return try JobEvaluator(model: model, groups: groups, blocks: blocks, calibration: calibration, labels: labels, jobs: jobs,
                                options: options, preparing: preparing)
    }

    /// Integer class labels, one per sample, from a `.npy`.
    public static func readLabels(_ path: String, calibration: Calibration) throws -> [Int64] {
        let data = try NumPy.read(path: path)
        guard data.elementType.isInteger else {
            throw ModelError("labels must be integers, found \(data.elementType)", file: path)
        }
        guard data.shape.count == 1 || (data.shape.count == 2 && data.shape[1] == 1) else {
            throw ModelError("labels must be one per sample (shape [n]), found \(data.shape)", file: path)
        }
        guard data.shape[0] == calibration.available else {
            throw ModelError("holds \(data.shape[0]) labels, but the calibration data has \(calibration.available) samples", file: path)
        }
        return Array(data.int64s().prefix(calibration.samples))
    }
}
