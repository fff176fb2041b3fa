import ArgumentParser
import Foundation
import LopperModel
import LopperPruning
import LopperRuntime
#if canImport(Glibc)
import Glibc
#endif

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prune a model uniformly and write the result as ONNX.",
        discussion: """
            channel       removes whole channels, filters and neurons (with everything coupled to them), \
            so the model gets physically smaller and faster.
            head          removes whole attention heads (Q, K, V and the output projection together).
            nm            keeps N of every M weights along each layer's reduction axis (--pattern 2:4).
            unstructured  zeroes the smallest weights, per layer or across layers (--scope global).

            Example:
              lopper prune Tests/Fixtures/models/conv_chain.onnx \\
                --granularity channel --sparsity 0.5 -o pruned.onnx
            """)

    enum Scope: String, ExpressibleByArgument, CaseIterable {
        case layer, global
    }

    @OptionGroup var modelOptions: ModelOptions
    var model: String { modelOptions.model }

    @Option(help: "What to remove.")
    var granularity: Granularity

    @Option(help: "Fraction to remove, in [0, 1): of each group's channels, or of the weights.")
    var sparsity: Double?

    @Option(help: "N:M pattern for --granularity nm.")
    var pattern = "2:4"

    @Option(help: "How channels are ranked (lowest removed first).")
    var criterion: Criterion = .l1

    @Option(help: "Unstructured sparsity per layer, or one threshold across all layers.")
    var scope: Scope = .layer

    @Option(help: ArgumentHelp("Only layers whose names match this shell pattern.", valueName: "glob"))
    var layers: String?

    @Option(name: .customLong("round-to"), help: "Round kept channel counts up to a multiple of this.")
    var roundTo = 1

    @Option(name: .customLong("min-channels"), help: "Keep at least this many channels in every group.")
    var minChannels = 1

    @Option(help: "Seed of the random criterion.")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Calibration inputs: a .npz with one array per model input (samples first), or a .npy.", valueName: "file"))
    var calib: String?

    @Option(help: "Use at most this many calibration samples.")
    var samples = 64

    @Option(name: .customLong("batch-size"), help: "Calibration samples per run.")
    var batchSize = 8

    @Flag(name: .customLong("bias-correction"), help: "Fold the removed channels' mean contribution into the next layer's bias (needs --calib).")
    var biasCorrection = false

    @Option(help: "Threads for calibration runs.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: [.short, .customLong("output")], help: "Where to write the pruned model.")
    var output: String

    func validate() throws {
        try modelOptions.validate()
        if granularity != .nm {
            guard let sparsity else { throw ValidationError("--sparsity is required for --granularity \(granularity.rawValue).") }
            guard sparsity >= 0, sparsity < 1 else { throw ValidationError("--sparsity must be in [0, 1), got \(sparsity).") }
        }
        let nm = try parsedPattern()
        guard nm.n >= 1, nm.n < nm.m else { throw ValidationError("--pattern needs 1 ≤ N < M, got \(pattern).") }
        guard roundTo >= 1 else { throw ValidationError("--round-to must be at least 1.") }
        guard minChannels >= 1 else { throw ValidationError("--min-channels must be at least 1.") }
        if criterion == .wanda && calib == nil { throw ValidationError("--criterion wanda needs calibration data: --calib FILE.npz.") }
        if biasCorrection {
            guard calib != nil else { throw ValidationError("--bias-correction needs calibration data: --calib FILE.npz.") }
            guard granularity == .channel || granularity == .head else {
                throw ValidationError("--bias-correction applies to --granularity channel or head.")
            }
        }
        guard samples >= 1, batchSize >= 1, threads >= 1 else { throw ValidationError("--samples, --batch-size and --threads must be at least 1.") }
    }

    func parsedPattern() throws -> (n: Int, m: Int) {
        let parts = pattern.split(separator: ":").map { Int($0) }
        guard parts.count == 2, let n = parts[0], let m = parts[1] else {
            throw ValidationError("--pattern must look like 2:4, got '\(pattern)'.")
        }
        return (n, m)
    }

    func run() throws {
        let dense = try Model.loadWarning(path: model)
        let pruned: Model
        var notes: [String] = []
        do {
            switch granularity {
            case .channel, .head: (pruned, notes) = try pruneChannels(dense)
            case .layer:
                throw ValidationError("--granularity layer is swept and allocated, not pruned one-shot: use lopper sweep with granularities [layer] and lopper export.")
            case .unstructured, .nm:
                let targets = try WeightSparsity.targets(in: dense, matching: layers)
                let report: WeightSparsity.Report
                if granularity == .nm {
                    let nm = try parsedPattern()
                    (pruned, report) = try WeightSparsity.nOfM(dense, targets: targets, n: nm.n, m: nm.m)
                } else {
                    (pruned, report) = try WeightSparsity.unstructured(dense, targets: targets, sparsity: sparsity!, global: scope == .global)
                }
                notes.append(String(format: "sparsity    %.1f%% of %@ weights in %d layers are zero", report.sparsity * 100,
                                    Format.grouped(report.elements), report.tensors.count))
                notes.append("compressed  \(Format.bytes(report.compressedBytes)) as non-zeros + bitmask (dense \(Format.bytes(report.denseBytes)))")
            }
            try pruned.save(to: output)
        } catch let error as ModelError {
            throw error.inFile(model)
        }
        let shapes = try modelOptions.parsedInputShapes()
        let before = try ModelSummary(dense, inputShapes: shapes, batch: modelOptions.batch)
        let after = try ModelSummary(pruned, inputShapes: shapes, batch: modelOptions.batch)
        var table = TextTable(["", "before", "after", "ratio"], rightAligned: [1, 2, 3])
        func row(_ name: String, _ a: Int, _ b: Int, _ format: (Int) -> String) {
            table.append([name, format(a), format(b), a == 0 ? "" : String(format: "%.3f", Double(b) / Double(a))])
        }
        row("params", before.params, after.params, Format.grouped)
        row("MACs", before.macs, after.macs, Format.grouped)
        if granularity == .nm || granularity == .unstructured {
            row("MACs on non-zeros", try effectiveMACs(dense, before), try effectiveMACs(pruned, after), Format.grouped)
        }
        row("file", fileSize(model), fileSize(output), Format.bytes)
        print(table.render())
        if before.layersWithUnknownMACs > 0 {
            print("(MACs count layers of known size only: give symbolic input sizes with --input-shape)")
        }
        for note in notes { print(note) }
        print("wrote \(output)")
    }

    private func pruneChannels(_ dense: Model) throws -> (Model, [String]) {
        var groups = try DependencyAnalysis.groups(of: dense).filter { $0.isHeads == (granularity == .head) }
        guard !groups.isEmpty else {
            throw ModelError(granularity == .head ? "the model has no attention heads Lopper recognizes" : "the model has no layer that produces channels")
        }
        if let layers {
            groups = groups.filter { group in group.producers.contains { fnmatch(layers, $0, 0) == 0 } }
            guard !groups.isEmpty else { throw ModelError("--layers '\(layers)' matches no layer that produces channels") }
            guard groups.contains(where: \.isPrunable) else {
                throw ModelError("no group matching --layers '\(layers)' can be pruned: "
                                 + groups.map { "\($0.name): \($0.blockedBecause!)" }.joined(separator: "; "))
            }
        }
        let calibration = try calib.map { try Calibration(path: $0, for: dense, limit: samples, batchSize: batchSize) }
        let statistics = try calibration.map { try ActivationStatistics.collect(dense, groups: groups, calibration: $0, threads: threads) }
        let importance = try criterion.importance(seed: seed, statistics: statistics)
        let selection = try ChannelSelection(sparsity: sparsity!, roundTo: roundTo, minimumKept: minChannels)
        let removing = try selection.channelsToRemove(groups, in: dense, by: importance)
        var pruned = try ChannelSurgery.prune(dense, groups: groups, removing: removing)
        var notes: [String] = []
        if let calibration {
            let options = ExecutorOptions(threads: threads)
            let reference = try Executor(model: dense, options: options)
            let plain = try RelativeError.measure(reference: reference, candidate: try Executor(model: pruned, options: options),
                                                           on: calibration.batches)
            notes.append("drift       relative L2 error of the outputs on \(calibration.samples) calibration samples: " + Self.describe(plain))
            if biasCorrection {
                let corrected = try BiasCorrection.apply(dense, groups: groups, removing: removing, statistics: statistics!)
                pruned = try ChannelSurgery.prune(corrected.model, groups: groups, removing: removing)
                let drift = try RelativeError.measure(reference: reference, candidate: try Executor(model: pruned, options: options),
                                                               on: calibration.batches)
                notes.append("            with bias correction (\(corrected.corrected.count) layers corrected, \(corrected.skipped.count) not): " + Self.describe(drift))
            }
        }
        let prunable = groups.filter(\.isPrunable)
        let removed = removing.values.reduce(0) { $0 + $1.count }
        let unit = granularity == .head ? "heads" : "channels"
        return (pruned, notes + ["\(unit.padding(toLength: 11, withPad: " ", startingAt: 0)) removed \(removed) of \(prunable.reduce(0) { $0 + $1.size }) in \(removing.count) groups; "
                         + "\(groups.count - prunable.count) groups cannot be pruned (lopper groups lists why)"])
    }

    private static func describe(_ errors: [String: Double]) -> String {
        errors.sorted { $0.key < $1.key }.map { String(format: "%@ %.4f", $0.key, $0.value) }.joined(separator: ", ")
    }

    /// MACs that multiply a non-zero weight: what a sparse kernel has to do.
    private func effectiveMACs(_ model: Model, _ summary: ModelSummary) throws -> Int {
        var total = 0.0
        for (node, layer) in zip(model.graph.nodes.filter { $0.opType != "Constant" || !$0.domain.isEmpty }, summary.layers) {
            guard let macs = layer.macs, macs > 0 else { continue }
            guard let weight = node.input(1), let data = try model.graph.constant(weight), data.count > 0 else {
                total += Double(macs)
                continue
            }
            let values = data.floats()
            total += Double(macs) * Double(values.filter { $0 != 0 }.count) / Double(values.count)
        }
        return Int(total.rounded())
    }

    private func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }
}

extension Criterion: ExpressibleByArgument {}
extension Granularity: ExpressibleByArgument {}
