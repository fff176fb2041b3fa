import Foundation
import LopperModel
import LopperPruning
import LopperRuntime

/// Runs sweep jobs on calibration data.
///
/// The dense model runs once per batch; its outputs (the reference for label-free metrics) and
/// the activations every job's suffix needs are cached under a memory budget. A job then prunes
/// its group, cuts the pruned graph after the untouched prefix, and runs only the suffix.
/// Jobs run single-threaded, so scores do not depend on how many run side by side.
public final class JobEvaluator: @unchecked Sendable {
    public struct Options: Sendable {
        public var metric: MetricKind
        public var output: String?
        public var topK: Int
        /// Reuse the dense prefix (the default); `false` runs every job on the whole model.
        public var prefixReuse: Bool
        public var cacheBytes: Int

        public init(metric: MetricKind, output: String? = nil, topK: Int = 5, prefixReuse: Bool = true, cacheBytes: Int = 512 << 20) {
            self.metric = metric
            self.output = output
            self.topK = topK
            self.prefixReuse = prefixReuse
            self.cacheBytes = cacheBytes
        }
    }

    public let model: Model
    public let groups: [PruneGroup]
    public let options: Options
    /// The dense model's own score (accuracy against labels, or the metric's value at no pruning).
    public private(set) var baseline: Double = 0
    private let calibration: Calibration
    private let labels: [[Int64]]?
    private let types: ShapeTable
    private let cache: ActivationCache
    private var plans: [Set<String>: PrefixPlan] = [:]
    private var statistics: ActivationStatistics?
    private let output: String
    private let lock = NSLock()

    /// Runs the dense model over the calibration data and caches what `jobs` will need.
    public init(model: Model, groups: [PruneGroup], calibration: Calibration, labels: [Int64]?, jobs: [SweepJob], options: Options) throws {
        self.model = model
        self.groups = groups
        self.calibration = calibration
        self.options = options
        let output = options.output ?? model.graph.outputs.first?.name ?? ""
        self.output = output
        guard model.graph.outputs.contains(where: { $0.name == output }) else {
            throw ModelError("has no output '\(output)' (outputs: \(model.graph.outputs.map(\.name).joined(separator: ", ")))", file: model.path)
        }
        if let labels {
            guard labels.count >= calibration.samples else {
                throw ModelError("\(labels.count) labels for \(calibration.samples) calibration samples")
            }
            var batches: [[Int64]] = []
            var start = 0
            for batch in calibration.batches {
                let size = batch.values.first?.shape.first ?? 0
                batches.append(Array(labels[start..<(start + size)]))
                start += size
            }
            self.labels = batches
        } else {
            self.labels = nil
        }
        types = try ShapeInference.run(model)
        cache = try ActivationCache(budgetBytes: options.cacheBytes)

        var needed = Set(model.graph.outputs.map(\.name))
        if options.prefixReuse {
            for job in jobs {
                let plan = try self.plan(for: job)
                needed.formUnion(plan.cut)
            }
        }
        var observed = model
        for value in needed.sorted() where !observed.graph.outputs.contains(where: { $0.name == value }) {
            observed.graph.outputs.append(ValueInfo(name: value, type: TensorType(elementType: types[value]?.elementType, shape: nil)))
        }
        let dense = try Executor(model: observed, options: ExecutorOptions(threads: 1))
        var accumulator = MetricAccumulator(kind: options.metric, output: output, topK: options.topK)
        for (index, batch) in calibration.batches.enumerated() {
            var values = try dense.run(batch)
            for (name, tensor) in batch { values[name] = tensor }
            for name in needed { try cache.store(values[name]!, batch: index, value: name) }
            let outputs = Dictionary(uniqueKeysWithValues: model.graph.outputs.map { ($0.name, values[$0.name]!) })
            try accumulator.add(dense: outputs, candidate: outputs, labels: self.labels?[index])
        }
        baseline = accumulator.value
        if jobs.contains(where: { $0.criterion == "wanda" }) {
            statistics = try ActivationStatistics.collect(model, groups: groups, calibration: calibration, threads: 1)
        }
    }

    /// Prunes and scores one job.
    public func evaluate(_ job: SweepJob) throws -> JobOutcome {
        let start = DispatchTime.now().uptimeNanoseconds
        let (pruned, removed) = try prune(job)
        let plan = options.prefixReuse ? try self.plan(for: job) : nil
        let runnable = try plan.map { try $0.suffix(of: pruned, types: types) } ?? pruned
        let executor = try Executor(model: runnable, options: ExecutorOptions(threads: 1))
        var accumulator = MetricAccumulator(kind: options.metric, output: output, topK: options.topK)
        var macs = 0
        var macsPerBatchSize: [Int: Int] = [:]
        for (index, batch) in calibration.batches.enumerated() {
            var feeds: [String: Tensor] = [:]
            if let plan {
                for name in plan.cut { feeds[name] = try cache.load(batch: index, value: name) }
            } else {
                feeds = batch
            }
            let outputs = try executor.run(feeds)
            var dense: [String: Tensor] = [:]
            for output in model.graph.outputs { dense[output.name] = try cache.load(batch: index, value: output.name) }
            try accumulator.add(dense: dense, candidate: outputs, labels: labels?[index])
            let batchSize = batch.values.first?.shape.first ?? 0
            if macsPerBatchSize[batchSize] == nil {
                let shapes = Dictionary(uniqueKeysWithValues: feeds.map { ($0.key, $0.value.shape) })
                macsPerBatchSize[batchSize] = try ModelSummary(runnable, inputShapes: shapes).macs
            }
            macs += macsPerBatchSize[batchSize]!
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return JobOutcome(score: accumulator.value, removed: removed, macsExecuted: macs, seconds: seconds)
    }

    /// The pruned model and how many units (or weights) were removed.
    func prune(_ job: SweepJob) throws -> (Model, Int) {
        guard let group = groups.first(where: { $0.id == job.group }) else { throw ModelError("there is no group \(job.group)") }
        if job.granularity == .unstructured {
            let weights = Set(group.members.filter { $0.role == .output }.map(\.tensor))
            let targets = try WeightSparsity.targets(in: model).filter { weights.contains($0.tensor) }
            let (pruned, report) = try WeightSparsity.unstructured(model, targets: targets, sparsity: job.level, global: false)
            return (pruned, report.zeros)
        }
        let importance: Importance
        switch job.criterion {
        case "l1": importance = MagnitudeImportance(p: 1)
        case "l2": importance = MagnitudeImportance(p: 2)
        case "bn-scale": importance = BatchNormScaleImportance()
        case "random": importance = RandomImportance(seed: 0)
        case "wanda":
            guard let statistics else { throw ModelError("wanda needs activation statistics") }
            importance = ActivationImportance(statistics: statistics)
        default: throw ModelError("unknown criterion '\(job.criterion)'")
        }
        let removing = try ChannelSelection(sparsity: job.level).channelsToRemove([group], in: model, by: importance)
        return (try ChannelSurgery.prune(model, groups: groups, removing: removing), removing.values.reduce(0) { $0 + $1.count })
    }

    private func plan(for job: SweepJob) throws -> PrefixPlan {
        guard let group = groups.first(where: { $0.id == job.group }) else { throw ModelError("there is no group \(job.group)") }
        let touched = PrefixPlan.touchedNodes(group, granularity: job.granularity)
        lock.lock()
        defer { lock.unlock() }
        if let plan = plans[touched] { return plan }
        let plan = PrefixPlan(graph: model.graph, touched: touched)
        plans[touched] = plan
        return plan
    }
}
