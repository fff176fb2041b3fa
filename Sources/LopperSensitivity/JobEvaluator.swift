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
        public var method: SweepMethod
        public var evaluator: ExternalEvaluator?
        public var detection: DetectionDecoding?
        public var maskInput: String?
        public var ctcBlank: Int
        /// Labelled boxes per sample for the detection metrics (set by `SweepSetup`).
        var groundTruth: [[Detection]]?

        public init(metric: MetricKind, output: String? = nil, topK: Int = 5, prefixReuse: Bool = true, cacheBytes: Int = 512 << 20,
                    method: SweepMethod = .oneShot, evaluator: ExternalEvaluator? = nil, detection: DetectionDecoding? = nil,
                    maskInput: String? = nil, ctcBlank: Int = 0) {
            self.metric = metric
            self.output = output
            self.topK = topK
            self.prefixReuse = prefixReuse
            self.cacheBytes = cacheBytes
            self.method = method
            self.evaluator = evaluator
            self.detection = detection
            self.maskInput = maskInput
            self.ctcBlank = ctcBlank
        }

        /// A fresh accumulator of `kind` with these settings.
        func accumulator(_ kind: MetricKind, output: String) -> MetricAccumulator {
            MetricAccumulator(kind: kind, output: output, topK: topK, detection: detection, maskInput: maskInput, blank: ctcBlank,
                              groundTruth: groundTruth)
        }
    }

    public let model: Model
    public let groups: [PruneGroup]
    /// Residual blocks for layer jobs (unit id `groups.count + block.id`).
    public let blocks: [ResidualBlock]
    public let options: Options
    /// The dense model's own score (accuracy against labels, or the metric's value at no pruning).
    public private(set) var baseline: Double = 0
    private let calibration: Calibration
    private let labels: [[Int64]]?
    private let types: ShapeTable
    private let cache: ActivationCache
    private var plans: [Set<String>: PrefixPlan] = [:]
    private var statistics: ActivationStatistics?
    /// Each block's branch output's mean per channel, for `mean` layer jobs.
    private(set) var blockMeans: [Int: TensorData] = [:]
    private let output: String
    /// The dense model with every value some job needs as an extra output (set at the end of
    /// the first phase of init: which values is asked of the plans, which need `self`).
    private var dense: Executor!
    private var prepared = Set<Int>()
    /// Dense values cached for every batch.
    private var cached = Set<String>()
    /// The sweep's jobs: what the dense run observes, and what `prepare` caches when there is room.
    private var jobs: [SweepJob] = []
    private let lock = NSLock()
    private let preparation = NSLock()

    /// Runs the dense model over the calibration data (its baseline) and caches what the
    /// `preparing` jobs will need (by default all of `jobs`, the sweep's whole job list),
    /// spilling to disk beyond the memory budget. What the other jobs need is kept too while it
    /// fits in memory, so later `prepare` calls rarely run the dense model again.
    public init(model: Model, groups: [PruneGroup], blocks: [ResidualBlock] = [], calibration: Calibration, labels: [Int64]?,
                jobs: [SweepJob], options: Options, preparing: [SweepJob]? = nil) throws {
        self.model = model
        self.groups = groups
        self.blocks = blocks
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
            self.labels = Self.batched(labels, like: calibration)
        } else {
            self.labels = nil
        }
        types = try ShapeInference.run(model)
        cache = try ActivationCache(budgetBytes: options.cacheBytes)

        // The dense run observes the values every job of the sweep may need, whichever of them
        // this evaluator prepares: what a plan computes must not depend on which jobs ran here.
        var observedValues = Set(model.graph.outputs.map(\.name))
        if options.prefixReuse || options.method == .local {
            for job in jobs { observedValues.formUnion(try self.neededValues(for: job)) }
        }
        var observed = model
        for value in observedValues.sorted() where !observed.graph.outputs.contains(where: { $0.name == value }) {
            observed.graph.outputs.append(ValueInfo(name: value, type: TensorType(elementType: types[value]?.elementType, shape: nil)))
        }
        dense = try Executor(model: observed, options: ExecutorOptions(threads: 1))
        self.jobs = jobs
        let storing = try (preparing ?? jobs).reduce(into: Set(model.graph.outputs.map(\.name))) { needed, job in
            needed.formUnion(try neededValues(for: job))
        }
        var accumulator = options.accumulator(options.metric, output: output)
        try runDense(storing: storing, ifRoom: observedValues.subtracting(storing)) { index, values in
            let outputs = Dictionary(uniqueKeysWithValues: model.graph.outputs.map { ($0.name, values[$0.name]!) })
            try accumulator.add(dense: outputs, candidate: outputs, labels: self.labels?[index], inputs: calibration.batches[index])
        }
        baseline = accumulator.value
        if let evaluator = options.evaluator {
            baseline = try Self.scoreExternally(model, with: evaluator)
        }
        if jobs.contains(where: { $0.criterion == "wanda" }) {
            statistics = try ActivationStatistics.collect(model, groups: groups, calibration: calibration, threads: 1)
        }
        if jobs.contains(where: { $0.granularity == .layer && $0.criterion == BlockRemoval.mean.rawValue }) {
            blockMeans = try BlockSurgery.branchMeans(of: blocks.filter(\.isRemovable), in: model, calibration: calibration)
        }
    }

    /// Labels cut into the calibration's batches (there are at least as many labels as samples).
    static func batched(_ labels: [Int64], like calibration: Calibration) -> [[Int64]] {
        var batches: [[Int64]] = []
        var start = 0
        for batch in calibration.batches {
            let size = batch.values.first?.shape.first ?? 0
            batches.append(Array(labels[start..<(start + size)]))
            start += size
        }
        return batches
    }

    /// Groups whose jobs find every dense value they need in the cache.
    public var preparedGroups: Set<Int> {
        lock.lock()
        defer { lock.unlock() }
        return prepared
    }

    /// Caches the dense values `jobs` need that are not cached yet (one dense run over the
    /// calibration data when something is missing). `evaluate` prepares its job itself; a worker
    /// calls this for a whole lease at once.
    public func prepare(_ jobs: [SweepJob]) throws {
        guard options.prefixReuse || options.method == .local else { return }
        preparation.lock()
        defer { preparation.unlock() }
        var missing = Set<String>()
        for job in jobs { missing.formUnion(try neededValues(for: job)) }
        missing.subtract(lock.withLock { cached })
        guard !missing.isEmpty else { return }
        let others = try self.jobs.reduce(into: Set<String>()) { $0.formUnion(try neededValues(for: $1)) }
        try runDense(storing: missing, ifRoom: others.subtracting(missing).subtracting(lock.withLock { cached })) { _, _ in }
    }

    /// Runs the dense model over every calibration batch, caching `values` (graph inputs
    /// included) and, while they fit in memory, `ifRoom`.
    private func runDense(storing values: Set<String>, ifRoom optional: Set<String>,
                          _ body: (Int, [String: Tensor]) throws -> Void) throws {
        var dropped = Set<String>()
        for (index, batch) in calibration.batches.enumerated() {
            var computed = try dense.run(batch)
            for (name, tensor) in batch { computed[name] = tensor }
            for name in values.sorted() { try cache.store(computed[name]!, batch: index, value: name) }
            for name in optional.subtracting(dropped).sorted() where !(try cache.store(computed[name]!, batch: index, value: name, spill: false)) {
                dropped.insert(name)
                cache.removeFromMemory(value: name)
            }
            try body(index, computed)
        }
        let now = lock.withLock { () -> Set<String> in
            cached.formUnion(values.union(optional.subtracting(dropped)))
            return cached
        }
        var ready = Set(jobs.map(\.group))
        for job in jobs where !(try Set(neededValues(for: job)).isSubset(of: now)) { ready.remove(job.group) }
        lock.withLock { prepared = ready }
    }

    /// The dense values a job reads: its suffix's feeds, and the local method's references.
    private func neededValues(for job: SweepJob) throws -> [String] {
        guard options.prefixReuse || options.method == .local else { return [] }
        return try plan(for: job).cut + (options.method == .local ? try localTargets(for: job) : [])
    }

    /// Prunes and scores one job.
    public func evaluate(_ job: SweepJob) throws -> JobOutcome {
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        let (pruned, removed) = try prune(job)
        switch (options.method, options.evaluator) {
        case (_, let evaluator?):
            return JobOutcome(score: try Self.scoreExternally(pruned, with: evaluator), removed: removed, macsExecuted: 0, seconds: elapsed())
        case (.magnitude, nil):
            return JobOutcome(score: try removedMagnitude(original: model, pruned: pruned, job: job), removed: removed, macsExecuted: 0, seconds: elapsed())
        default:
            break
        }
        try prepare([job])
        let plan = options.prefixReuse || options.method == .local ? try self.plan(for: job) : nil
        var runnable = try plan.map { try $0.suffix(of: pruned, types: types) } ?? pruned
        var referenceNames = model.graph.outputs.map(\.name)
        if options.method == .local {
            referenceNames = try localTargets(for: job)
            runnable.graph.outputs = referenceNames.map { ValueInfo(name: $0, type: TensorType(elementType: types[$0]?.elementType, shape: nil)) }
            runnable = try runnable.restricted(toOutputs: referenceNames)
        }
        let executor = try Executor(model: runnable, options: ExecutorOptions(threads: 1))
        var accumulator = options.accumulator(options.method == .local ? .relativeL2 : options.metric, output: output)
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
            for name in referenceNames { dense[name] = try cache.load(batch: index, value: name) }
            try accumulator.add(dense: dense, candidate: outputs, labels: labels?[index], inputs: batch)
            let batchSize = batch.values.first?.shape.first ?? 0
            if macsPerBatchSize[batchSize] == nil {
                let shapes = Dictionary(uniqueKeysWithValues: feeds.map { ($0.key, $0.value.shape) })
                macsPerBatchSize[batchSize] = try ModelSummary(runnable, inputShapes: shapes).macs
            }
            macs += macsPerBatchSize[batchSize]!
        }
        return JobOutcome(score: accumulator.value, removed: removed, macsExecuted: macs, seconds: elapsed())
    }

    /// The values the local method compares: outputs of the layers that read the group (or, for
    /// unstructured jobs, of the pruned layers), when their shapes do not change with pruning.
    func localTargets(for job: SweepJob) throws -> [String] {
        if job.granularity == .layer { return [try block(of: job).output] }
        guard let group = groups.first(where: { $0.id == job.group }) else { throw ModelError("there is no group \(job.group)") }
        let producers = Set(group.members.filter { $0.role == .output }.map(\.node))
        let wanted = job.granularity.zeroesWeights ? producers
            : Set(group.members.filter { $0.role == .input }.map(\.node)).subtracting(producers)
        let targets = model.graph.nodes.filter { wanted.contains($0.displayName) }.compactMap(\.outputs.first)
        return targets.isEmpty ? model.graph.outputs.map(\.name) : targets
    }

    /// Data-free proxy: the mean magnitude of the weights the job removes or zeroes.
    private func removedMagnitude(original: Model, pruned: Model, job: SweepJob) throws -> Double {
        if job.granularity == .layer { return try Self.removedWeightMagnitude(original: original, pruned: pruned) }
        guard let group = groups.first(where: { $0.id == job.group }) else { throw ModelError("there is no group \(job.group)") }
        var sum = 0.0, count = 0
        for tensor in Set(group.members.filter { $0.role == .output || $0.role == .input }.map(\.tensor)).sorted() {
            guard let before = try original.graph.constant(tensor)?.floats() else { continue }
            let after = try pruned.graph.constant(tensor)?.floats() ?? []
            if job.granularity.zeroesWeights {
                guard after.count == before.count else { continue }
                for (x, y) in zip(before, after) where y == 0 && x != 0 { sum += Double(abs(x)); count += 1 }
            } else {
                // Structured: what is missing is what was removed (magnitude of all minus what remains).
                sum += before.reduce(0) { $0 + Double(abs($1)) } - after.reduce(0) { $0 + Double(abs($1)) }
                count += before.count - after.count
            }
        }
        return count > 0 ? sum / Double(count) : 0
    }

    /// Writes the model to a temporary file and runs the user's evaluator on it.
    static func scoreExternally(_ model: Model, with evaluator: ExternalEvaluator) throws -> Double {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-eval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("model.onnx").path
        try model.save(to: path)
        return try evaluator.score(modelPath: path)
    }

    /// The pruned model and how many units (or weights) were removed.
    func prune(_ job: SweepJob) throws -> (Model, Int) {
        if job.granularity == .layer { return try removeBlock(job) }
        guard let group = groups.first(where: { $0.id == job.group }) else { throw ModelError("there is no group \(job.group)") }
        if job.granularity.zeroesWeights {
            let weights = Set(group.members.filter { $0.role == .output }.map(\.tensor))
            let targets = try WeightSparsity.targets(in: model).filter { weights.contains($0.tensor) }
            if job.granularity == .nm {
                let pattern = job.criterion.split(separator: ":").compactMap { Int($0) }
                guard pattern.count == 2 else { throw ModelError("'\(job.criterion)' is not an N:M pattern") }
                let (pruned, report) = try WeightSparsity.nOfM(model, targets: targets, n: pattern[0], m: pattern[1])
                return (pruned, report.zeros)
            }
            let (pruned, report) = try WeightSparsity.unstructured(model, targets: targets, sparsity: job.level, global: false)
            return (pruned, report.zeros)
        }
        guard let criterion = Criterion(rawValue: job.criterion) else { throw ModelError("unknown criterion '\(job.criterion)'") }
        let importance = try criterion.importance(statistics: statistics)
        let removing = try ChannelSelection(sparsity: job.level).channelsToRemove([group], in: model, by: importance)
        return (try ChannelSurgery.prune(model, groups: groups, removing: removing), removing.values.reduce(0) { $0 + $1.count })
    }

    private func plan(for job: SweepJob) throws -> PrefixPlan {
        let touched: Set<String>
        if job.granularity == .layer {
            let block = try block(of: job)
            touched = Set(block.nodes + [block.join])
        } else {
            guard let group = groups.first(where: { $0.id == job.group }) else { throw ModelError("there is no group \(job.group)") }
            touched = PrefixPlan.touchedNodes(group, granularity: job.granularity)
        }
        lock.lock()
        defer { lock.unlock() }
        if let plan = plans[touched] { return plan }
        let plan = PrefixPlan(graph: model.graph, touched: touched)
        plans[touched] = plan
        return plan
    }
}
