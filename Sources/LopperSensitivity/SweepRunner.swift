import Foundation
import Logging
import LopperModel
import LopperPruning
import LopperRuntime

/// Runs a sweep in this process: finds the groups, lists the jobs, binds the results store, and
/// evaluates every unfinished job, `parallelJobs` at a time. Re-running on the same store
/// resumes: finished jobs are never computed again.
public struct SweepRunner {
    public var spec: SweepSpec
    public var storePath: String
    public var parallelJobs: Int
    public var cacheBytes: Int
    public var prefixReuse: Bool
    public var logger: Logger

    public struct Progress: Sendable {
        public var done: Int
        public var total: Int
        public var failed: Int
        public var elapsed: Double
        public var jobsPerSecond: Double { elapsed > 0 ? Double(done) / elapsed : 0 }
    }

    public init(spec: SweepSpec, storePath: String, parallelJobs: Int = ProcessInfo.processInfo.activeProcessorCount,
                cacheBytes: Int = 512 << 20, prefixReuse: Bool = true, logger: Logger = Logger(label: "lopper.sweep")) {
        self.spec = spec
        self.storePath = storePath
        self.parallelJobs = max(1, parallelJobs)
        self.cacheBytes = cacheBytes
        self.prefixReuse = prefixReuse
        self.logger = logger
    }

    /// The jobs a spec asks for on these groups. Groups that cannot be pruned get none (they are
    /// still listed in the store with the reason); N:M jobs go only to groups whose producing
    /// layers have a reduction length the pattern divides (`model` tells).
    public static func jobs(for spec: SweepSpec, groups: [PruneGroup], model: Model? = nil) -> [SweepJob] {
        let targets = model.flatMap { try? WeightSparsity.targets(in: $0) } ?? []
        var jobs: [SweepJob] = []
        for granularity in spec.granularities {
            let eligible = groups.filter { group in
                guard group.isPrunable else { return false }
                switch granularity {
                case .channel: return !group.isHeads && group.size > 1
                case .head: return group.isHeads && group.size > 1
                case .unstructured, .nm: return !group.isHeads
                }
            }
            for group in eligible {
                if granularity == .nm {
                    let weights = Set(group.members.filter { $0.role == .output }.map(\.tensor))
                    let reductions = targets.filter { weights.contains($0.tensor) }.compactMap { target in
                        (try? model?.graph.constant(target.tensor))??.shape[target.reductionAxis]
                    }
                    for (n, m) in [(2, 4), (4, 8)] where reductions.contains(where: { $0 % m == 0 }) {
                        jobs.append(SweepJob(group: group.id, granularity: .nm, criterion: "\(n):\(m)", level: 1 - Double(n) / Double(m)))
                    }
                    continue
                }
                let criteria = granularity == .unstructured ? ["magnitude"] : spec.criteria
                for criterion in criteria {
                    for level in spec.levels {
                        jobs.append(SweepJob(group: group.id, granularity: granularity, criterion: criterion, level: level))
                    }
                }
            }
        }
        return jobs
    }

    /// Checks every input before any job runs, then evaluates what is left to do.
    @discardableResult
    public func run(progress: ((Progress) -> Void)? = nil) throws -> Progress {
        try spec.validate()
        var model = try Model.load(path: spec.model)
        if spec.metric != .relativeL2 && spec.evaluator == nil && spec.method == .oneShot {
            // Classifier metrics read one output; the rest of the graph (a label branch with
            // operators Lopper does not run, say) is not needed.
            model = try model.restricted(toOutputs: [spec.output ?? model.graph.outputs.first?.name ?? ""])
        }
        let groups = try DependencyAnalysis.groups(of: model)
        let calibration = try Calibration(path: spec.calibration, for: model, limit: spec.samples, batchSize: spec.batchSize)
        let labels = try spec.labels.map { try Self.readLabels($0, calibration: calibration) }
        let jobs = Self.jobs(for: spec, groups: groups, model: model)
        guard !jobs.isEmpty else {
            throw ModelError("has no prunable group for \(spec.granularities.map(\.rawValue).joined(separator: ", ")) (lopper groups lists why)", file: spec.model)
        }

        let store = try ResultsStore(path: storePath)
        let output = spec.output ?? model.graph.outputs.first?.name ?? ""
        try store.bind(to: ResultsStore.Identity(
            modelSHA256: try FileDigest.sha256(spec.model), calibrationSHA256: try FileDigest.sha256(spec.calibration),
            labelsSHA256: try spec.labels.map(FileDigest.sha256), metric: spec.metric, samples: calibration.samples,
            batchSize: spec.batchSize, output: output,
            method: spec.evaluator.map { "external: \($0.command)" } ?? spec.method.rawValue), spec: spec)
        try store.register(groups: groups, jobs: jobs)
        let wanted = Set(jobs.map(\.key))
        let pending = try store.unfinishedJobs().filter { wanted.contains($0.job.key) }
        let total = jobs.count
        var state = Progress(done: total - pending.count, total: total, failed: 0, elapsed: 0)
        logger.info("sweep: \(groups.count) groups, \(total) jobs, \(pending.count) to run", metadata: ["db": "\(storePath)"])
        guard !pending.isEmpty else { return state }

        let evaluator = try JobEvaluator(model: model, groups: groups, calibration: calibration, labels: labels,
                                         jobs: pending.map(\.job),
                                         options: .init(metric: spec.metric, output: spec.output, topK: spec.topK,
                                                        prefixReuse: prefixReuse, cacheBytes: cacheBytes,
                                                        method: spec.method, evaluator: spec.evaluator))
        try store.setBaseline(evaluator.baseline, metric: spec.metric)

        let start = DispatchTime.now().uptimeNanoseconds
        let alreadyDone = state.done
        let lock = NSLock()
        var next = 0
        var firstError: Error?
        let worker = "local-\(ProcessInfo.processInfo.processIdentifier)"
        DispatchQueue.concurrentPerform(iterations: min(parallelJobs, pending.count)) { _ in
            while true {
                lock.lock()
                guard next < pending.count, firstError == nil else { lock.unlock(); return }
                let row = pending[next]
                next += 1
                lock.unlock()
                do {
                    try store.markRunning(row.id, worker: worker)
                    do {
                        let outcome = try evaluator.evaluate(row.job)
                        try store.recordResult(row.id, outcome, worker: worker)
                    } catch let error as ExternalEvaluator.Failure {
                        try store.recordFailure(row.id, error.description, stderr: error.stderr, worker: worker)
                        logger.warning("job \(row.job.key) failed: \(error)")
                        lock.lock(); state.failed += 1; lock.unlock()
                    } catch let error as ModelError {
                        try store.recordFailure(row.id, error.description, worker: worker)
                        logger.warning("job \(row.job.key) failed: \(error)")
                        lock.lock(); state.failed += 1; lock.unlock()
                    }
                } catch {
                    lock.lock(); firstError = firstError ?? error; lock.unlock()
                    return
                }
                lock.lock()
                state.done += 1
                state.elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                var report = state
                report.done -= alreadyDone
                report.total -= alreadyDone
                lock.unlock()
                progress?(report)
            }
        }
        if let firstError { throw firstError }
        return state
    }

    /// Integer class labels, one per sample, from a `.npy`.
    static func readLabels(_ path: String, calibration: Calibration) throws -> [Int64] {
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
