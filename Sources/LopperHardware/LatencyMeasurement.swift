import Foundation
import LopperModel
import LopperPruning
import LopperRuntime

/// Times a model's steps on this machine with Lopper's runtime, each as a model of its own, and
/// calibrates a profile of the machine from micro-benchmarks and those timings.
public struct LatencyMeasurement {
    public var threads: Int
    /// Timed runs per step (the median is kept) after `warmup` untimed ones.
    public var runs: Int
    public var warmup: Int

    public init(threads: Int = 1, runs: Int = 15, warmup: Int = 3) {
        self.threads = threads
        self.runs = runs
        self.warmup = warmup
    }

    /// Median seconds of one run of `model` on random inputs of the declared shapes (or `inputShapes`).
    public func time(_ model: Model, inputShapes: [String: [Int]] = [:]) throws -> Double {
        let executor = try Executor(model: model, options: ExecutorOptions(threads: threads))
        var generator = SplitMix(seed: 0x10bbe7)
        var feeds: [String: Tensor] = [:]
        for input in executor.inputs {
            guard let type = input.type, let shape = inputShapes[input.name] ?? type.concreteShape else {
                throw ModelError("input '\(input.name)' has no concrete shape to time with")
            }
            let count = shape.reduce(1, *)
            let floats = (0..<count).map { _ in Float(generator.unit() * 2 - 1) }
            let tensor = Tensor(floats: floats, shape: shape)
            feeds[input.name] = type.elementType?.isFloatingPoint ?? true ? tensor
                : Tensor(int64s: [Int64](repeating: 0, count: count), shape: shape, type: type.elementType ?? .int64)
        }
        for _ in 0..<warmup { _ = try executor.run(feeds) }
        var times: [Double] = []
        for _ in 0..<max(1, runs) {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try executor.run(feeds)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return times.sorted()[times.count / 2]
    }

    /// What a model run costs beyond its steps' work: `call`, once per `run` (feeds, outputs),
    /// and `perStep`, for each step inside a run. From chains of 1 and 65 one-element Adds.
    public func overheads() throws -> (call: Double, perStep: Double) {
        let one = try time(HostCalibration.chain(length: 1))
        let many = try time(HostCalibration.chain(length: 65))
        let perStep = max(0, (many - one) / 64)
        return (max(0, one - perStep), perStep)
    }

    /// One latency-table entry per distinct step signature of `model`: the median time of the
    /// step run alone, less the once-per-run overhead (`overheads().call`). Steps whose constant
    /// inputs cannot be recovered (computed at load time from shapes Lopper does not track) are
    /// skipped and named in `skipped`.
    public func measureSteps(of model: Model, inputShapes: [String: [Int]] = [:], profile: HardwareProfile,
                             progress: (Int, Int) -> Void = { _, _ in }) throws -> (entries: [LatencyTable.Entry], skipped: [String]) {
        let graph = try CostGraph(model, inputShapes: inputShapes)
        let report = CostModel(graph: graph, profile: profile).report()
        let facts = try ShapeInference.run(model, inputShapes: graph.graphInputs.reduce(into: [:]) { shapes, v in
            shapes[graph.values[v].name] = graph.values[v].shape.map { .value($0) }
        })
        var entries: [String: LatencyTable.Entry] = [:]
        var skipped: [String] = []
        let call = try overheads().call
        for (position, (step, cost)) in zip(graph.steps, report.steps).enumerated() {
            progress(position, graph.steps.count)
            guard !step.isView, entries[cost.signature] == nil else { continue }
            var constants: [String: TensorData] = [:]
            var complete = true
            for w in step.weights {
                let name = graph.values[w].name
                if let data = try model.graph.constant(name) {
                    constants[name] = data
                } else if let ints = facts.facts[name]?.intValues {
                    constants[name] = TensorData(int64s: ints.map(Int64.init), shape: graph.values[w].shape)
                } else {
                    complete = false
                }
            }
            guard complete else { skipped.append(step.name); continue }
            let inputs = step.inputs.map { (name: graph.values[$0].name, type: TensorType(graph.values[$0].elementType, graph.values[$0].shape)) }
            let sub = try model.extract(nodes: step.nodes, inputs: inputs, constants: constants,
                                        outputs: step.outputs.map { graph.values[$0].name })
            let seconds = max(try time(sub) - call, 0)
            entries[cost.signature] = LatencyTable.Entry(signature: cost.signature, seconds: seconds, opClass: step.opClass,
                                                         ops: cost.ops, bytes: Double(cost.bytesMoved))
        }
        progress(graph.steps.count, graph.steps.count)
        return (entries.values.sorted { $0.signature < $1.signature }, skipped)
    }
}

/// A small seeded generator (SplitMix64) for timing inputs and benchmark variants.
public struct SplitMix {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
