import ArgumentParser
import Foundation
import Logging
import LopperModel
import LopperPruning
import LopperSensitivity
#if canImport(Glibc)
import Glibc
#endif

/// The sweep settings shared by `lopper sweep` and `lopper coordinator`.
struct SweepOptions: ParsableArguments {
    @Argument(help: "The ONNX model file (optional with --config).")
    var model: String?

    @Option(help: ArgumentHelp("A YAML sweep file (see Config/sweeps/).", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("Calibration inputs: a .npz with one array per model input (samples first), or a .npy.", valueName: "file"))
    var calib: String?

    @Option(help: ArgumentHelp("""
        Integer class labels, one per sample (.npy); for the detection metrics, boxes: rows of \
        (sample, class, cx, cy, w, h).
        """, valueName: "file"))
    var labels: String?

    @Option(help: """
        relative-l2 (default); classifiers: kl, top1-agreement, cosine, accuracy, top-k, cross-entropy; \
        detectors: detection-map50, detection-map (the detection section of --config); encoders: \
        embedding-cosine; segmenters: mean-iou; CTC sequence models: sequence-agreement.
        """)
    var metric: MetricKind?

    @Option(help: "The output classifier metrics read (default: the first).")
    var output: String?

    @Option(help: "Comma-separated: channel, head, unstructured, nm, layer (residual blocks).")
    var granularity: String?

    @Option(help: "Comma-separated channel criteria: l1, l2, bn-scale, random, wanda.")
    var criterion: String?

    @Option(help: "Comma-separated sparsity levels (default 0.1,…,0.9).")
    var levels: String?

    @Option(help: "Use at most this many calibration samples.")
    var samples: Int?

    @Option(name: .customLong("batch-size"), help: "Calibration samples per run.")
    var batchSize: Int?

    @Option(help: "one-shot (prune and run the model), local (error of the layers after the group), magnitude (data-free).")
    var method: SweepMethod?

    @Option(help: ArgumentHelp("Score each pruned model with a command printing a JSON number; {model} is replaced by its path.",
                               valueName: "command"))
    var evaluator: String?

    @Option(name: .customLong("evaluator-timeout"), help: "Seconds before an evaluator run counts as failed.")
    var evaluatorTimeout: Double = 600

    @Option(help: ArgumentHelp("The results store (SQLite).", valueName: "file"))
    var db: String

    @Flag(name: .customLong("retry-failed"), help: "Run the jobs that failed in an earlier run again (otherwise a resumed sweep keeps them failed).")
    var retryFailed = false

    func validate() throws {
        guard model != nil || config != nil else { throw ValidationError("Give a model, or a sweep file with --config.") }
        guard config != nil || calib != nil else { throw ValidationError("--calib is required (or a sweep file with --config).") }
        _ = try parsedLevels()
    }

    func parsedLevels() throws -> [Double]? {
        try levels.map { text in
            try text.split(separator: ",").map { item in
                guard let value = Double(item.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--levels must be comma-separated numbers, got '\(item)'.")
                }
                return value
            }
        }
    }

    /// The YAML file's settings with the flags applied over them.
    func spec() throws -> SweepSpec {
        var spec = try config.map { try SweepSpec.load(yaml: $0) } ?? SweepSpec(model: model!, calibration: calib!)
        if let model { spec.model = model }
        if let calib { spec.calibration = calib }
        if let labels { spec.labels = labels }
        if let metric { spec.metric = metric }
        if let output { spec.output = output }
        if let granularity {
            spec.granularities = try granularity.split(separator: ",").map { item in
                guard let value = Granularity(rawValue: String(item)) else {
                    throw ValidationError("--granularity takes channel, head, unstructured, nm or layer, got '\(item)'.")
                }
                return value
            }
        }
        if let criterion { spec.criteria = criterion.split(separator: ",").map(String.init) }
        if let levels = try parsedLevels() { spec.levels = levels }
        if let samples { spec.samples = samples }
        if let batchSize { spec.batchSize = batchSize }
        if let method { spec.method = method }
        if let evaluator { spec.evaluator = ExternalEvaluator(command: evaluator, timeoutSeconds: evaluatorTimeout) }
        try spec.validate()
        return spec
    }
}

struct Sweep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure how much each prune group tolerates pruning, and store the results.",
        discussion: """
            Every prunable group is pruned alone at every level with every criterion, and the model is \
            scored on the calibration data. Results go to an SQLite store (--db); running the same command \
            again resumes where it stopped. Settings may come from a YAML file (--config); flags override it.

            With --workers N the sweep runs as on a cluster: a coordinator in this process and N worker \
            processes on this machine, talking over ipc://. Scores are the same bits either way.

            Example:
              lopper sweep --config Config/sweeps/chain24.yaml --db chain24.db --workers 2
            """)

    @OptionGroup var sweep: SweepOptions

    @Option(help: "Run a coordinator and this many local worker processes (0: evaluate in this process).")
    var workers = 0

    @Option(help: "Jobs evaluated at once in this process, or per worker with --workers (each single-threaded, so results do not depend on it). Default: all cores, shared among the workers.")
    var jobs: Int?

    @Option(name: .customLong("cache-mb"), help: "Memory for cached dense activations; beyond it they spill to disk.")
    var cacheMB = 512

    @Flag(name: .customLong("no-prefix-reuse"), help: "Run every job on the whole model (slower; for comparison).")
    var noPrefixReuse = false

    @Flag(help: "Print only warnings and errors.")
    var quiet = false

    func validate() throws {
        guard (jobs ?? 1) >= 1 else { throw ValidationError("--jobs must be at least 1.") }
        guard workers >= 0 else { throw ValidationError("--workers must not be negative.") }
        guard cacheMB >= 0 else { throw ValidationError("--cache-mb must not be negative.") }
        if workers > 0 && noPrefixReuse { throw ValidationError("--no-prefix-reuse applies to in-process sweeps (without --workers).") }
    }

    func run() async throws {
        var logger = Logger(label: "lopper.sweep")
        logger.logLevel = quiet ? .warning : .info
        let bar = ProgressBar(label: "sweep", unit: "jobs", quiet: quiet)
        let report: (SweepRunner.Progress, Int?) -> Void = { progress, workers in
            bar.update(done: progress.done, total: progress.total, failed: progress.failed, workers: workers)
        }
        let final: SweepRunner.Progress
        if workers > 0 {
            let cores = ProcessInfo.processInfo.activeProcessorCount
            final = try await LocalCluster(workers: workers, slotsPerWorker: jobs ?? max(1, cores / workers), cacheMB: cacheMB, logger: logger)
                .sweep(try sweep.spec(), storePath: sweep.db, retryFailed: sweep.retryFailed, progress: report)
        } else {
            var runner = SweepRunner(spec: try sweep.spec(), storePath: sweep.db,
                                     parallelJobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount, cacheBytes: cacheMB << 20,
                                     prefixReuse: !noPrefixReuse, logger: logger)
            runner.retryFailed = sweep.retryFailed
            final = try runner.run { report($0, nil) }
        }
        bar.finish()
        if !quiet {
            print("\(final.done) of \(final.total) jobs done\(final.failed > 0 ? ", \(final.failed) failed" : "") → \(sweep.db)")
            print("see the table with: lopper results --db \(sweep.db)")
        }
    }
}

extension MetricKind: ExpressibleByArgument {}
extension SweepMethod: ExpressibleByArgument {}
