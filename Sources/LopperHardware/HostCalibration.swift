import Foundation
import LopperModel
import LopperPruning
import LopperRuntime
import ONNXProto

/// The figures of a `host` profile, measured on this machine with Lopper's runtime: peak compute
/// from a large MatMul, memory bandwidth from a large Add, on-chip bandwidth from an Add that
/// fits in the L2 cache, launch overhead per step from chains of one-element Adds, and the efficiency of each
/// operator class fitted to measured steps.
public struct HostCalibration {
    public var timer: LatencyMeasurement

    public init(timer: LatencyMeasurement) { self.timer = timer }

    public struct Figures: Sendable {
        public var peakGops: Double
        public var bandwidthGBs: Double
        public var cacheBytes: Int
        public var cacheBandwidthGBs: Double
        public var launchOverheadSeconds: Double
        public var runOverheadSeconds: Double

        /// A profile of this machine from the figures; efficiencies start at 1 until fitted.
        public func profile(name: String) -> HardwareProfile {
            let memory = Int(ProcessInfo.processInfo.physicalMemory)
            var cpu = "this machine"
            if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
               let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
               let model = line.split(separator: ":", maxSplits: 1).last {
                cpu = model.trimmingCharacters(in: .whitespaces)
            }
            return HardwareProfile(
                name: name, description: "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, Lopper's runtime, fp32",
                dtype: .fp32, peakGops: [.fp32: peakGops], efficiency: Dictionary(uniqueKeysWithValues: OpClass.allCases.map { ($0, 1.0) }),
                memoryBandwidthGBs: bandwidthGBs, onChipBytes: cacheBytes, onChipBandwidthGBs: cacheBandwidthGBs,
                weightMemoryBytes: memory, activationMemoryBytes: memory, launchOverheadSeconds: launchOverheadSeconds,
                channelAlignment: 1, runOverhead: runOverheadSeconds)
        }
    }

    public func microbenchmarks() throws -> Figures {
        let (m, k, n) = (256, 1024, 1024)
        let matmul = try Self.model(inputs: [("a", [m, k])], constants: [("b", [k, n])], op: "MatMul", output: [m, n])
        let peak = 2 * Double(m * k * n) / (try timer.time(matmul)) / 1e9

        let large = 8 << 20
        let add = try Self.model(inputs: [("a", [large]), ("b", [large])], constants: [], op: "Add", output: [large])
        let bandwidth = Double(3 * large * 4) / (try timer.time(add)) / 1e9

        let l2 = sysconf(Int32(_SC_LEVEL2_CACHE_SIZE))
        let cache = l2 > 0 ? Int(l2) : 1 << 20
        let small = cache / 4 / 4
        let cached = try Self.model(inputs: [("a", [small]), ("b", [small])], constants: [], op: "Add", output: [small])
        let cacheBandwidth = Double(3 * small * 4) / (try timer.time(cached)) / 1e9

        let (run, step) = try timer.overheads()
        return Figures(peakGops: peak, bandwidthGBs: bandwidth, cacheBytes: cache, cacheBandwidthGBs: cacheBandwidth,
                       launchOverheadSeconds: step, runOverheadSeconds: run)
    }

    /// `length` one-element Adds in a row (`y = y + y`), which no runtime folds or fuses away.
    static func chain(length: Int) throws -> Model {
        var graph = Onnx_GraphProto()
        graph.name = "overhead"
        graph.input = [ValueInfo(name: "v0", type: TensorType(.float32, [1])).proto]
        graph.node = (0..<length).map { i in
            Onnx_NodeProto.with {
                $0.opType = "Add"
                $0.input = ["v\(i)", "v\(i)"]
                $0.output = ["v\(i + 1)"]
            }
        }
        graph.output = [ValueInfo(name: "v\(length)", type: TensorType(.float32, [1])).proto]
        return try wrap(graph)
    }

    /// A one-node float model.
    static func model(inputs: [(String, [Int])], constants: [(String, [Int])], op: String, output: [Int]) throws -> Model {
        var graph = Onnx_GraphProto()
        graph.name = "calibration"
        graph.input = inputs.map { ValueInfo(name: $0.0, type: TensorType(.float32, $0.1)).proto }
        for (name, shape) in constants {
            let count = shape.reduce(1, *)
            var floats = [Float](repeating: 0, count: count)
            for i in 0..<count { floats[i] = Float(i % 13) / 13 - 0.5 }
            graph.initializer.append(TensorData(floats: floats, shape: shape).encoded(over: Onnx_TensorProto.with { $0.name = name }))
        }
        graph.node = [Onnx_NodeProto.with {
            $0.opType = op
            $0.input = inputs.map(\.0) + constants.map(\.0)
            $0.output = ["y"]
        }]
        graph.output = [ValueInfo(name: "y", type: TensorType(.float32, output)).proto]
        return try wrap(graph)
    }

    /// A model (IR 8, opset 17) around a calibration graph.
    static func wrap(_ graph: Onnx_GraphProto) throws -> Model {
        var model = Onnx_ModelProto()
        model.irVersion = 8
        model.opsetImport = [Onnx_OperatorSetIdProto.with { $0.version = 17 }]
        model.graph = graph
        return try Model(serialized: try model.serializedData())
    }

    /// The efficiency per operator class that best explains measured steps on `profile`'s
    /// roofline (least squares on log latency); classes with no measured step keep theirs.
    public static func fitEfficiencies(_ entries: [LatencyTable.Entry], profile: HardwareProfile) -> [OpClass: Double] {
        var efficiency = profile.efficiency
        let candidates = (0...400).map { pow(10, -3 + 3 * Double($0) / 400) }
        for opClass in OpClass.allCases {
            let samples = entries.filter { $0.opClass == opClass && $0.ops != nil && $0.bytes != nil && $0.seconds > 0 }
            guard !samples.isEmpty else { continue }
            var best = (error: Double.infinity, value: efficiency[opClass] ?? 1)
            for candidate in candidates {
                var trial = profile
                trial.efficiency[opClass] = candidate
                let model = CostModel.Roofline(profile: trial)
                let error = samples.reduce(0.0) { total, entry in
                    let predicted = model.latency(ops: entry.ops!, bytes: entry.bytes!, opClass: opClass)
                    let d = log(predicted / entry.seconds)
                    return total + d * d
                }
                if error < best.error { best = (error, candidate) }
            }
            efficiency[opClass] = best.value
        }
        return efficiency
    }
}

extension HardwareProfile {
    /// The profile as YAML in the shipped schema, with a comment heading it.
    public func yaml(header: [String]) -> String {
        func number(_ value: Double) -> String { String(format: "%.4g", value) }
        var lines = header.map { "# \($0)" }
        lines.append("name: \(name)")
        lines.append("description: \"\(description.replacingOccurrences(of: "\"", with: "'"))\"")
        lines.append("dtype: \(dtype.rawValue)")
        lines.append("peak_gops:")
        for type in DeploymentType.allCases { if let peak = peakGops[type] { lines.append("  \(type.rawValue): \(number(peak))") } }
        lines.append("efficiency:")
        for opClass in OpClass.allCases { lines.append("  \(opClass.rawValue): \(number(efficiency[opClass] ?? 1))") }
        lines.append("memory_bandwidth_gb_s: \(number(memoryBandwidthGBs))")
        if let onChipBytes, let onChipBandwidthGBs {
            lines += ["on_chip:", "  bytes: \(onChipBytes)", "  bandwidth_gb_s: \(number(onChipBandwidthGBs))"]
        }
        lines += ["memory:", "  weights: \(weightMemoryBytes)", "  activations: \(activationMemoryBytes)"]
        lines.append("launch_overhead_us: \(number(launchOverheadSeconds * 1e6))")
        if runOverheadSeconds > 0 { lines.append("run_overhead_us: \(number(runOverheadSeconds * 1e6))") }
        lines.append("channel_alignment: \(channelAlignment)")
        if !sparsitySpeedup.isEmpty {
            lines.append("sparsity:")
            for (pattern, speedup) in sparsitySpeedup.sorted(by: { $0.key.description < $1.key.description }) {
                lines.append("  \"\(pattern)\": \(number(speedup))")
            }
        }
        if let defaultBudgets { lines.append("default_budgets: \"\(defaultBudgets)\"") }
        return lines.joined(separator: "\n") + "\n"
    }
}
