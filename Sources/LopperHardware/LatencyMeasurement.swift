import Foundation
import LopperModel
import LopperPruning
import LopperRuntime

/// Times a model's steps on this machine with Lopper's runtime, in place in runs of the whole
/// model, and calibrates a profile of the machine from micro-benchmarks and those timings.
public struct LatencyMeasurement {
    public var threads: Int
    /// Timed runs (the fastest is kept: noise only adds) after `warmup` untimed ones.
    public var runs: Int
    public var warmup: Int

    public init(threads: Int = 1, runs: Int = 15, warmup: Int = 3) {
        self.threads = threads
        self.runs = runs
        self.warmup = warmup
    }

    /// Seconds of the fastest of `runs` runs of `model` on random inputs of the declared shapes
    /// (or `inputShapes`), by `RunClock`: CPU time on one thread.
    public func time(_ model: Model, inputShapes: [String: [Int]] = [:]) throws -> Double {
        let executor = try Executor(model: model, options: ExecutorOptions(threads: threads))
        let feeds = try randomFeeds(for: executor, inputShapes: inputShapes)
        for _ in 0..<warmup { _ = try executor.run(feeds) }
        let clock = RunClock(threads: threads)
        var times: [Double] = []
        for _ in 0..<max(1, runs) {
            let start = clock.now()
            _ = try executor.run(feeds)
            times.append(clock.now() - start)
        }
        return times.min()!
    }

    /// What a run costs beyond its steps' work: once per run (`run`: feeds, outputs) and per
    /// executed step (`step`), from chains of 1 and 65 one-element Adds: step = (t65 − t1) / 64.
    public func overheads() throws -> (run: Double, step: Double) {
        let one = try time(HostCalibration.chain(length: 1))
        let many = try time(HostCalibration.chain(length: 65))
        let step = max(0, (many - one) / 64)
        return (max(0, one - step), step)
    }

    /// One latency-table entry per distinct step signature of `model`, timed in context: the
    /// whole model runs `runs` times and each runtime step's fastest time goes to the cost step
    /// whose nodes include it (runtimes fuse what the cost model fuses, and a little more).
    /// `unattributed` is the share of the run's step time on nodes the cost model does not price.
    public func measureSteps(of model: Model, inputShapes: [String: [Int]] = [:], profile: HardwareProfile,
                             progress: (Int, Int) -> Void = { _, _ in }) throws -> (entries: [LatencyTable.Entry], unattributed: Double) {
        let graph = try CostGraph(model, inputShapes: inputShapes)
        let report = CostModel(graph: graph, profile: profile).report()
        var stepOfNode: [String: Int] = [:]
        for (index, step) in graph.steps.enumerated() {
            for node in step.nodes { stepOfNode[graph.nodes[node].displayName] = index }
        }
        let executor = try Executor(model: model, options: ExecutorOptions(threads: threads))
        let feeds = try randomFeeds(for: executor, inputShapes: graph.inputShapes)
        for _ in 0..<warmup { _ = try executor.run(feeds) }
        var samples: [String: [Double]] = [:]
        for run in 0..<max(1, runs) {
            progress(run, runs)
            for (node, seconds) in try executor.timedRun(feeds) { samples[node, default: []].append(seconds) }
        }
        progress(runs, runs)
        var perStep = [Double](repeating: 0, count: graph.steps.count)
        var unattributed = 0.0, total = 0.0
        for (node, times) in samples {
            let fastest = times.min()!
            total += fastest
            if let step = stepOfNode[node] { perStep[step] += fastest } else { unattributed += fastest }
        }
        // A signature that occurs at several steps (repeated blocks) gets their mean.
        var entries: [String: LatencyTable.Entry] = [:]
        var occurrences: [String: Int] = [:]
        for (index, (step, cost)) in zip(graph.steps, report.steps).enumerated() where !step.isView {
            let seen = occurrences[cost.signature, default: 0]
            var entry = entries[cost.signature] ?? LatencyTable.Entry(signature: cost.signature, seconds: 0, opClass: step.opClass,
                                                                      ops: cost.ops, bytes: Double(cost.bytesMoved))
            entry.seconds = (entry.seconds * Double(seen) + perStep[index]) / Double(seen + 1)
            entries[cost.signature] = entry
            occurrences[cost.signature] = seen + 1
        }
        return (entries.values.sorted { $0.signature < $1.signature }, total > 0 ? unattributed / total : 0)
    }

    func randomFeeds(for executor: Executor, inputShapes: [String: [Int]]) throws -> [String: Tensor] {
        var generator = SeededGenerator(seed: 0x10bbe7)
        var feeds: [String: Tensor] = [:]
        for input in executor.inputs {
            guard let type = input.type, let shape = inputShapes[input.name] ?? type.concreteShape else {
                throw ModelError("input '\(input.name)' has no concrete shape to time with")
            }
            let count = shape.reduce(1, *)
            let floats = (0..<count).map { _ in Float(generator.uniform() * 2 - 1) }
            feeds[input.name] = type.elementType?.isFloatingPoint ?? true ? Tensor(floats: floats, shape: shape)
                : Tensor(int64s: [Int64](repeating: 0, count: count), shape: shape, type: type.elementType ?? .int64)
        }
        return feeds
    }
}
