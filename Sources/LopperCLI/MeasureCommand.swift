import ArgumentParser
import Foundation
import LopperHardware
import LopperModel
import LopperPruning

struct MeasureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure",
        abstract: "Time a model's layers (and pruned variants of them) on this machine; write a latency table and a fitted profile.",
        discussion: """
            The model runs in Lopper's runtime with each step timed in place (a step is a layer with what the \
            runtime fuses into it), for the dense model and for copies with every prunable group cut to each \
            --fractions value (L1 criterion). The fastest of --runs runs goes to --table as CSV (signature, milliseconds, op class, \
            ops, bytes), which lopper cost --table reads; a table measured by another tool in the same form works \
            too: --step-models writes each distinct step as an ONNX model of its own, with steps.jsonl listing \
            signatures and files, and Docs/bench/ort_latency_table.py times them in ONNX Runtime into such a table. With --profile-out, micro-benchmarks (a large MatMul, a large and a cache-sized Add, chains of \
            one-element Adds) and the efficiencies fitted to the measured steps make a profile of this machine: run it on the \
            device itself (Lopper builds on Linux ARM64) to add a device, or to refresh Config/profiles/host.yaml.

            Example:
              lopper measure Tests/Fixtures/models/conv_chain.onnx \\
                --table conv_chain-latency.csv --profile-out host.yaml
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Where to write the latency table (CSV).")
    var table: String?

    @Option(name: .customLong("step-models"), help: "Instead of timing here, write each distinct step as an ONNX model of its own to this folder, with steps.jsonl, for another runtime to time.")
    var stepModels: String?

    @Option(name: .customLong("profile-out"), help: "Also write a profile of this machine (YAML) fitted to the measurements.")
    var profileOut: String?

    @Option(help: "The profile whose number format and alignment the table's ops and bytes use (without --profile-out).")
    var profile: String = "host"

    @Option(help: "Fractions of each prunable group's units kept in the pruned variants timed beside the dense model.")
    var fractions: String = "0.9,0.75,0.6,0.5,0.4,0.25"

    @Option(help: "Keep only the part of the model that computes this output (for models with operators the runtime lacks after it).")
    var output: String?

    @Option(help: "Intra-op threads for the runtime.")
    var threads: Int = 1

    @Option(help: "Timed runs per step (the fastest is kept).")
    var runs: Int = 15

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1.") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1.") }
        guard (table == nil) != (stepModels == nil) else { throw ValidationError("Give one of --table and --step-models.") }
        guard stepModels == nil || profileOut == nil else { throw ValidationError("--profile-out needs --table: it is fitted to the steps timed here.") }
        _ = try keptFractions()
    }

    func keptFractions() throws -> [Double] {
        let values = fractions.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0.map { $0 > 0 && $0 <= 1 } ?? false }) else {
            throw ValidationError("--fractions '\(fractions)' must be comma-separated kept fractions in (0, 1], such as 0.75,0.5.")
        }
        return values.map { $0! }
    }

    func run() throws {
        var model = try modelOptions.load()
        if let output { model = try model.restricted(toOutputs: [output]) }
        let shapes = try modelOptions.parsedInputShapes()
        let timer = LatencyMeasurement(threads: threads, runs: runs)
        var profile: HardwareProfile
        if let profileOut {
            log("micro-benchmarks …")
            let figures = try HostCalibration(timer: timer).microbenchmarks()
            profile = figures.profile(name: ((profileOut as NSString).lastPathComponent as NSString).deletingPathExtension)
            log(String(format: "peak %.1f GOPS, memory %.1f GB/s, cache %@ at %.1f GB/s, launch %.1f µs", figures.peakGops,
                       figures.bandwidthGBs, Format.bytes(figures.cacheBytes), figures.cacheBandwidthGBs, figures.launchOverheadSeconds * 1e6))
        } else {
            profile = try ProfileSearch.profile(self.profile)
        }
        let groups = try DependencyAnalysis.groups(of: model)
        var variants: [(String, Model)] = [("dense", model)]
        for fraction in try keptFractions() where fraction < 1 {
            let removing = try ChannelSelection(sparsity: 1 - fraction).channelsToRemove(groups, in: model, by: MagnitudeImportance(p: 1))
            variants.append((String(format: "kept %.2f", fraction), try ChannelSurgery.prune(model, groups: groups, removing: removing)))
        }
        if let stepModels { return try writeStepModels(variants, inputShapes: shapes, profile: profile, to: stepModels) }
        guard let table else { return }
        var measured = LatencyTable()
        for (label, variant) in variants {
            let bar = ProgressBar(label: "measuring \(label)", unit: "steps")
            let result = try timer.measureSteps(of: variant, inputShapes: shapes, profile: profile) { done, total in bar.update(done: done, total: total) }
            bar.finish()
            for entry in result.entries { measured.insert(entry) }
            if result.unattributed > 0.01 {
                log(String(format: "%@: %.1f%% of the step time is on nodes the cost model does not price", label, result.unattributed * 100))
            }
        }
        try measured.csv().write(toFile: table, atomically: true, encoding: .utf8)
        log("\(measured.entries.count) step signatures → \(table)")
        if let profileOut {
            profile.efficiency = HostCalibration.fitEfficiencies(Array(measured.entries.values), profile: profile)
            let header = [
                "This machine, measured by `lopper measure` with Lopper's runtime (\(threads) thread\(threads == 1 ? "" : "s")), \(ISO8601DateFormatter().string(from: Date())).",
                "peak_gops: a \(256)x1024x1024 MatMul; memory_bandwidth_gb_s: an Add of two 32 MiB vectors;",
                "on_chip: the L2 size (sysconf) and an Add that fits it; launch_overhead_us: per step of a chain of one-element Adds;",
                "efficiency: least squares on log latency over the steps of \((modelOptions.model as NSString).lastPathComponent) and its pruned variants.",
                "Refresh on a new machine: lopper measure MODEL --table host-latency.csv --profile-out Config/profiles/host.yaml",
            ]
            try profile.yaml(header: header).write(toFile: profileOut, atomically: true, encoding: .utf8)
            log("profile → \(profileOut)")
        }
    }

    /// The distinct steps of the variants as models, and `steps.jsonl`: per line a step's
    /// signature, file, op class, ops and bytes (`Docs/bench/ort_latency_table.py` reads it);
    /// and each variant whole, with `models.jsonl`: per line a model's file and where its steps
    /// are (for `ort_latency_table.py --in-place`).
    func writeStepModels(_ variants: [(String, Model)], inputShapes: [String: [Int]], profile: HardwareProfile, to folder: String) throws {
        try OutputFolder.create(folder)
        var written = Set<String>()
        var lines: [String] = [], wholeLines: [String] = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for (index, (label, variant)) in variants.enumerated() {
            let (entries, whole) = try StepModels.write(variant, label: label, inputShapes: inputShapes, profile: profile, to: folder,
                                                        prefix: "variant\(index)", skipping: &written)
            lines += try entries.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
            wholeLines.append(String(decoding: try encoder.encode(whole), as: UTF8.self))
            log("\(label): \(entries.count) new step models")
        }
        for (name, manifestLines) in [("steps.jsonl", lines), ("models.jsonl", wholeLines)] {
            let manifest = (folder as NSString).appendingPathComponent(name)
            try (manifestLines.joined(separator: "\n") + "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        }
        log("\(lines.count) step signatures and \(variants.count) whole models → \(folder)")
    }

    func log(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
