import ArgumentParser
import Foundation
import LopperHardware
import LopperModel
import LopperPruning

/// `lopper bench-cost`: the cost model's predicted latency against Lopper's measured latency
/// for the dense model and pruned variants, with the variants written out so another runtime
/// can time the same files (`Docs/bench/cost_vs_measured.py` adds ONNX Runtime).
struct BenchCost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-cost",
        abstract: "Check predicted latency against measured latency on the dense model and pruned variants.",
        discussion: """
            Variants: uniform kept fractions 0.9 … 0.3 of every prunable group and, beyond those, a random \
            overall kept fraction in [0.3, 1] with each group departing from it by up to ±0.2 (seeded), each pruned physically with the L1 criterion and written to --out. \
            The variants are timed in --rounds turns through all of them (each turn --runs / --rounds runs of each), \
            so that a busy spell of the machine slows all of them alike; the fastest run counts. \
            Prints one JSON object per variant (file, predicted and measured ms, the fastest run of each turn, MACs) \
            and the median absolute error and Spearman rank correlation of the prediction, and of MACs alone.

            Example:
              lopper bench-cost Tests/Fixtures/models/conv_chain.onnx --profile host \\
                --out variants
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Profile to predict with (a file or a shipped name).")
    var profile: String = "host"

    @Option(help: "A measured latency table (lopper measure) to predict with.")
    var table: String?

    @Option(help: "Number of variants besides the dense model (at least 7; the first 7 are uniform).")
    var variants: Int = 24

    @Option(help: "Folder for the variant models.")
    var out: String

    @Option(help: "Timed runs per variant.")
    var runs: Int = 15

    @Option(help: "Turns through the variants the runs are spread over.")
    var rounds: Int = 1

    @Option(help: "Seed of the random per-group fractions.")
    var seed: UInt64 = 1

    @Option(help: "Keep only the part of the model that computes this output (for models with operators the runtime lacks after it).")
    var output: String?

    func validate() throws {
        guard variants >= 7 else { throw ValidationError("--variants must be at least 7.") }
        guard rounds >= 1, runs >= rounds else { throw ValidationError("--rounds must be at least 1 and at most --runs.") }
    }

    func run() throws {
        var model = try modelOptions.load()
        if let output { model = try model.restricted(toOutputs: [output]) }
        let shapes = try modelOptions.parsedInputShapes()
        let graph = try CostGraph(model, inputShapes: shapes)
        let cost = CostModel(graph: graph, profile: try ProfileSearch.profile(profile), table: try table.map(LatencyTable.load))
        let timer = LatencyMeasurement(threads: 1, runs: runs / rounds)
        try OutputFolder.create(out)
        var random = SeededGenerator(seed: seed)
        let prunable = graph.groups.filter(\.isPrunable)
        var predicted: [Double] = [], macs: [Double] = [], files: [String] = []
        var lastPlan = PruningPlan.dense
        for index in 0...variants {
            // Uniform variants first; then a random overall level with random per-group departures from it.
            let overall = index == 0 ? 1.0 : index <= 7 ? 1.0 - 0.1 * Double(index) : 0.3 + 0.7 * random.uniform()
            let fractions: [Int: Double] = Dictionary(uniqueKeysWithValues: prunable.map { group in
                (group.id, index <= 7 ? overall : min(1, max(0.15, overall + 0.4 * (random.uniform() - 0.5))))
            })
            var removing: [Int: [Int]] = [:]
            for group in prunable {
                let selection = try ChannelSelection(sparsity: 1 - fractions[group.id]!)
                removing.merge(try selection.channelsToRemove([group], in: model, by: MagnitudeImportance(p: 1))) { a, _ in a }
            }
            let plan = PruningPlan(groups: removing.keys.sorted().map { id in
                let kept = (0..<graph.groups[id].size).filter { !Set(removing[id]!).contains($0) }
                return .init(group: id, kept: kept.count, indices: kept)
            })
            let variant = removing.isEmpty ? model : try ChannelSurgery.prune(model, groups: graph.groups, removing: removing)
            let file = (out as NSString).appendingPathComponent(String(format: "variant-%02d.onnx", index))
            try variant.save(to: file)
            let totals = cost.totals(plan)
            lastPlan = plan
            predicted.append(totals.latencySeconds)
            macs.append(Double(totals.macs))
            files.append(file)
        }
        let loaded = try files.map { try Model.load(path: $0) }
        var turns = [[Double]](repeating: [], count: files.count)
        for _ in 0..<rounds {
            for (index, variant) in loaded.enumerated() { turns[index].append(try timer.time(variant, inputShapes: graph.inputShapes)) }
        }
        let measured = turns.map { $0.min()! }
        for index in files.indices {
            let perTurn = turns[index].map { String(format: "%.4f", $0 * 1e3) }.joined(separator: ", ")
            print(String(format: "{\"file\": \"%@\", \"predicted_ms\": %.4f, \"lopper_ms\": %.4f, \"lopper_rounds_ms\": [%@], \"macs\": %d}",
                         files[index], predicted[index] * 1e3, measured[index] * 1e3, perTurn, Int(macs[index])))
        }
        // What the allocator pays per plan it prices: the last variant's plan, many times.
        let start = DispatchTime.now().uptimeNanoseconds
        let repeats = 200
        for _ in 0..<repeats { _ = cost.totals(lastPlan) }
        let perPlan = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3 / Double(repeats)
        FileHandle.standardError.write(Data(String(format: "pricing a plan: %.1f µs (%.2f µs per step, %d steps)\n",
                                                   perPlan, perPlan / Double(graph.steps.count), graph.steps.count).utf8))
        let errors = zip(predicted, measured).map { abs($0 - $1) / $1 }.sorted()
        FileHandle.standardError.write(Data(String(format: "median |error| %.1f%%, Spearman %.3f (MACs alone %.3f) over %d models\n",
                                                   errors[errors.count / 2] * 100, Rank.spearman(predicted, measured),
                                                   Rank.spearman(macs, measured), measured.count).utf8))
    }
}

/// Spearman rank correlation (average ranks for ties).
enum Rank {
    static func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && values[order[j + 1]] == values[order[i]] { j += 1 }
            for k in i...j { ranks[order[k]] = Double(i + j) / 2 }
            i = j + 1
        }
        return ranks
    }

    static func spearman(_ a: [Double], _ b: [Double]) -> Double {
        let ra = ranks(a), rb = ranks(b)
        let ma = ra.reduce(0, +) / Double(ra.count), mb = rb.reduce(0, +) / Double(rb.count)
        var num = 0.0, da = 0.0, db = 0.0
        for (x, y) in zip(ra, rb) {
            num += (x - ma) * (y - mb)
            da += (x - ma) * (x - ma)
            db += (y - mb) * (y - mb)
        }
        return da == 0 || db == 0 ? 0 : num / (da * db).squareRoot()
    }
}
