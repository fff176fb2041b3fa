import Foundation
import Logging
import LopperModel
import LopperPruning

/// Runs a sweep in this process: finds the groups, lists the jobs, binds the results store, and
/// evaluates every unfinished job, `parallelJobs` slots at a time, as the coordinator's
/// `Scheduler` hands them out. Re-running on the same store
/// resumes: finished jobs are never computed again, and failed ones only with `retryFailed`
/// (the coordinator's policy too).
public struct SweepRunner {
    public var spec: SweepSpec
    public var storePath: String
    public var parallelJobs: Int
    public var cacheBytes: Int
    public var prefixReuse: Bool
    /// Runs the jobs that failed before again; otherwise they stay failed.
    public var retryFailed = false
    public var logger: Logger

    public struct Progress: Sendable {
        public var done: Int
        public var total: Int
        public var failed: Int
        public var elapsed: Double
        public var jobsPerSecond: Double { elapsed > 0 ? Double(done) / elapsed : 0 }

        public init(done: Int, total: Int, failed: Int, elapsed: Double) {
            self.done = done
            self.total = total
            self.failed = failed
            self.elapsed = elapsed
        }
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
    /// Layer jobs go to the removable `blocks`, whose unit ids follow the groups' (`groups.count + block.id`).
    public static func jobs(for spec: SweepSpec, groups: [PruneGroup], blocks: [ResidualBlock] = [], model: Model? = nil) -> [SweepJob] {
        let targets = model.flatMap { try? WeightSparsity.targets(in: $0) } ?? []
        var jobs: [SweepJob] = []
        for granularity in spec.granularities {
            if granularity == .layer {
                for block in blocks where block.isRemovable {
                    for criterion in BlockRemoval.allCases {
                        jobs.append(SweepJob(group: groups.count + block.id, granularity: .layer, criterion: criterion.rawValue, level: 1))
                    }
                }
                continue
            }
            let eligible = groups.filter { group in
                guard group.isPrunable else { return false }
                switch granularity {
                case .channel: return !group.isHeads && group.size > 1
                case .head: return group.isHeads && group.size > 1
                case .unstructured, .nm: return !group.isHeads
                case .layer: return false
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
        let setup = try SweepSetup(spec: spec)
        let store = try setup.openStore(at: storePath)
        let wanted = Set(setup.jobs.map(\.key))
        let unfinished = try store.unfinishedJobs().filter { wanted.contains($0.job.key) }
        let pending = unfinished.filter { retryFailed || $0.state != .failed }
        let total = setup.jobs.count
        var state = Progress(done: total - pending.count, total: total, failed: unfinished.count - pending.count, elapsed: 0)
        if state.failed > 0 { logger.warning("\(state.failed) jobs failed before and stay failed (--retry-failed runs them again)") }
        logger.info("sweep: \(setup.groups.count) groups, \(total) jobs, \(pending.count) to run", metadata: ["db": "\(storePath)"])
        guard !pending.isEmpty else { return state }

        let evaluator = try setup.evaluator(cacheBytes: cacheBytes, prefixReuse: prefixReuse, preparing: pending.map(\.job))
        try store.setBaseline(evaluator.baseline, metric: spec.metric)

        let start = DispatchTime.now().uptimeNanoseconds
        let alreadyDone = state.done
        let lock = NSLock()
        // The coordinator's scheduler with in-process slots: the same affinity and failure
        // policy, no leases to expire and no speculation (the slots share this machine).
        var scheduler = Scheduler(entries: pending.map { Scheduler.Entry(id: $0.id, key: $0.job.key, group: $0.job.group) },
                                  leaseDuration: .infinity, maxAttempts: 1, speculates: false, now: 0)
        let rows = Dictionary(uniqueKeysWithValues: pending.map { ($0.id, $0) })
        var firstError: Error?
        let worker = "local-\(ProcessInfo.processInfo.processIdentifier)"
        DispatchQueue.concurrentPerform(iterations: min(parallelJobs, pending.count)) { slot in
            let name = "slot-\(slot)"
            while true {
                lock.lock()
                guard firstError == nil, let id = scheduler.lease(to: name, want: 1, now: 0).first?.id else { lock.unlock(); return }
                lock.unlock()
                let row = rows[id]!
                var failed = false
                do {
                    try store.markRunning(row.id, worker: worker)
                    do {
                        let outcome = try evaluator.evaluate(row.job)
                        try store.recordResult(row.id, outcome, worker: worker)
                    } catch let error as ExternalEvaluator.Failure {
                        try store.recordFailure(row.id, error.description, stderr: error.stderr, worker: worker)
                        logger.warning("job \(row.job.key) failed: \(error)")
                        failed = true
                    } catch let error as ModelError {
                        try store.recordFailure(row.id, error.description, worker: worker)
                        logger.warning("job \(row.job.key) failed: \(error)")
                        failed = true
                    }
                } catch {
                    lock.lock(); firstError = firstError ?? error; lock.unlock()
                    return
                }
                lock.lock()
                _ = scheduler.finish(id, by: name, key: row.job.key, failed: failed, now: 0)
                if failed { state.failed += 1 }
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
}
