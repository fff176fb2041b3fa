import Foundation
import LopperModel
@testable import LopperSensitivity
import LopperPruning
import LopperRuntime
import LopperTesting
import OrderedCollections
import Testing

@Suite struct SweepTests {
    let directory: URL
    init() throws { directory = try Fixtures.temporaryDirectory() }

    /// Seeded calibration data for a fixture, shaped like its input with `samples` first.
    func calibration(_ fixture: String, samples: Int = 6, dims: [Int]) throws -> String {
        var random = SeededGenerator(seed: 17)
        let values = random.floats(samples * dims.reduce(1, *), in: -2...2)
        let model = try Model.load(path: Fixtures.model(fixture))
        let path = directory.appendingPathComponent("\(fixture).npz").path
        try NumPy.writeArchive([model.graph.feedInputs[0].name: TensorData(floats: values, shape: [samples] + dims)], to: path)
        return path
    }

    func scores(_ store: String) throws -> [String: Double] {
        Dictionary(uniqueKeysWithValues: try ResultsStore(path: store).allJobs().map { ($0.job.key, $0.score ?? .nan) })
    }

    func sweep(_ spec: SweepSpec, _ name: String, parallel: Int = 1, prefixReuse: Bool = true) throws -> [String: Double] {
        let store = directory.appendingPathComponent("\(name).db").path
        try SweepRunner(spec: spec, storePath: store, parallelJobs: parallel, prefixReuse: prefixReuse).run()
        return try scores(store)
    }

    static let cases: [(fixture: String, dims: [Int], granularities: [Granularity], batch: Int)] = [
        ("conv_chain", [3, 32, 32], [.channel, .unstructured, .nm], 4),
        ("c2f_block", [3, 64, 64], [.channel], 1),
        ("paddle_constants", [3, 32, 32], [.channel], 4),
        ("transformer_encoder", [16, 64], [.channel, .head], 4),
    ]

    @Test(arguments: 0..<cases.count)
    func prefixReuseGivesExactlyTheFullResults(index: Int) throws {
        let c = Self.cases[index]
        var spec = SweepSpec(model: Fixtures.model(c.fixture), calibration: try calibration(c.fixture, dims: c.dims),
                             granularities: c.granularities, criteria: ["l1", "random"], levels: [0.3, 0.6], batchSize: c.batch)
        spec.samples = 6
        let reused = try sweep(spec, "reused")
        let full = try sweep(spec, "full", prefixReuse: false)
        #expect(!reused.isEmpty)
        #expect(reused == full, "\(c.fixture)")
        #expect(reused.values.allSatisfy { $0.isFinite })
    }

    @Test func deterministicWhateverTheParallelismOrOrder() throws {
        let spec = SweepSpec(model: Fixtures.model("c2f_block"), calibration: try calibration("c2f_block", dims: [3, 64, 64]),
                             criteria: ["l2"], levels: [0.25, 0.5, 0.75], batchSize: 1)
        let first = try sweep(spec, "one", parallel: 1)
        let second = try sweep(spec, "two", parallel: 3)
        #expect(first == second)
        // Same bits for each job on its own, in reverse order, with a fresh evaluator.
        let model = try Model.load(path: spec.model)
        let groups = try DependencyAnalysis.groups(of: model)
        let calibration = try Calibration(path: spec.calibration, for: model, batchSize: 1)
        let jobs = SweepRunner.jobs(for: spec, groups: groups).reversed()
        let evaluator = try JobEvaluator(model: model, groups: groups, calibration: calibration, labels: nil, jobs: Array(jobs),
                                         options: .init(metric: .relativeL2))
        for job in jobs { #expect(try evaluator.evaluate(job).score == first[job.key], "\(job.key)") }
    }

    @Test func prefixReuseExecutesFewerMACs() throws {
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let groups = try DependencyAnalysis.groups(of: model)
        let calibration = try Calibration(path: try calibration("conv_chain", dims: [3, 32, 32]), for: model, batchSize: 3)
        let job = SweepJob(group: 2, granularity: .channel, criterion: "l1", level: 0.5)
        let reuse = try JobEvaluator(model: model, groups: groups, calibration: calibration, labels: nil, jobs: [job], options: .init(metric: .relativeL2))
        let full = try JobEvaluator(model: model, groups: groups, calibration: calibration, labels: nil, jobs: [job],
                                    options: .init(metric: .relativeL2, prefixReuse: false))
        let a = try reuse.evaluate(job), b = try full.evaluate(job)
        #expect(a.score == b.score)
        // conv_2's group starts at conv_2: conv_0 and conv_1 (and their BN/ReLU) are skipped.
        #expect(a.macsExecuted < b.macsExecuted)
        #expect(b.macsExecuted == 6 * 1_106_080 - 6 * (589_824 - 294_912) - 6 * 80)   // conv_2 and the Gemm lose half their inputs
    }

    @Test func storeRefusesOtherInputsAndResumes() throws {
        let spec = SweepSpec(model: Fixtures.model("conv_chain"), calibration: try calibration("conv_chain", dims: [3, 32, 32]), levels: [0.5])
        let store = directory.appendingPathComponent("bound.db").path
        try SweepRunner(spec: spec, storePath: store).run()
        let before = try ResultsStore(path: store).allJobs()
        #expect(before.allSatisfy { $0.state == .done && $0.attempts == 1 })
        // Running again recomputes nothing.
        let again = try SweepRunner(spec: spec, storePath: store).run()
        #expect(again.done == again.total)
        #expect(try ResultsStore(path: store).allJobs() == before)

        var other = spec
        other.calibration = try calibration("conv_chain", samples: 5, dims: [3, 32, 32])
        #expect { try SweepRunner(spec: other, storePath: store).run() } throws: {
            "\($0)".contains("was made for calibration_sha256")
        }
    }

    @Test func failedJobsStayFailedUnlessRetried() throws {
        let spec = SweepSpec(model: Fixtures.model("conv_chain"), calibration: try calibration("conv_chain", dims: [3, 32, 32]), levels: [0.5])
        let store = directory.appendingPathComponent("failed.db").path
        let victim = try #require(try SweepSetup(spec: spec).openStore(at: store).allJobs().first)
        try ResultsStore(path: store).recordFailure(victim.id, "made to fail", worker: "test")
        let reference = try sweep(spec, "reference")
        let resumed = try SweepRunner(spec: spec, storePath: store).run()
        #expect(resumed.failed == 1 && resumed.done == resumed.total)
        #expect(try ResultsStore(path: store).allJobs().first { $0.id == victim.id }?.state == .failed)
        var retrying = SweepRunner(spec: spec, storePath: store)
        retrying.retryFailed = true
        let retried = try retrying.run()
        #expect(retried.failed == 0)
        let row = try #require(try ResultsStore(path: store).allJobs().first { $0.id == victim.id })
        #expect(row.state == .done && row.score?.bitPattern == reference[victim.job.key]?.bitPattern, "the retried job scores the same bits")
    }

    @Test func topKAndSideFilesArePartOfTheIdentity() throws {
        var spec = SweepSpec(model: Fixtures.model("conv_chain"), calibration: try calibration("conv_chain", dims: [3, 32, 32]), levels: [0.5])
        let store = directory.appendingPathComponent("topk.db").path
        try SweepRunner(spec: spec, storePath: store).run()
        let setup = try SweepSetup(spec: spec)
        let identity = try setup.identity()
        spec.topK = 3
        let other = try SweepSetup(spec: spec).identity()
        #expect(other.sweepID(jobKeys: setup.jobs.map(\.key)) != identity.sweepID(jobKeys: setup.jobs.map(\.key)))
        #expect { try SweepRunner(spec: spec, storePath: store).run() } throws: { "\($0)".contains("was made for top_k 5") }
        var sideFile = identity
        sideFile.modelDataSHA256 = ["weights.bin": String(repeating: "0", count: 64)]
        #expect(sideFile.sweepID(jobKeys: []) != identity.sweepID(jobKeys: []))
    }

    @Test func badInputsFailBeforeAnyJob() throws {
        let good = try calibration("conv_chain", dims: [3, 32, 32])
        let store = directory.appendingPathComponent("bad.db").path
        func failure(_ spec: SweepSpec) -> String {
            do { try SweepRunner(spec: spec, storePath: store).run() } catch { return "\(error)" }
            return "no error"
        }
        let wrongShape = directory.appendingPathComponent("wrong.npz").path
        try NumPy.writeArchive(["x": TensorData(floats: Array(repeating: 0, count: 2 * 3 * 8 * 8), shape: [2, 3, 8, 8])], to: wrongShape)
        #expect(failure(SweepSpec(model: Fixtures.model("conv_chain"), calibration: wrongShape)).contains("needs 32 on axis 2"))

        let labels = directory.appendingPathComponent("labels.npy").path
        try NumPy.write(TensorData(int64s: [1, 2, 3], shape: [3]), to: labels)
        #expect(failure(SweepSpec(model: Fixtures.model("conv_chain"), calibration: good, labels: labels, metric: .accuracy))
            .contains("holds 3 labels, but the calibration data has 6 samples"))
        let floatLabels = directory.appendingPathComponent("float.npy").path
        try NumPy.write(TensorData(floats: Array(repeating: 0, count: 6), shape: [6]), to: floatLabels)
        #expect(failure(SweepSpec(model: Fixtures.model("conv_chain"), calibration: good, labels: floatLabels, metric: .accuracy))
            .contains("labels must be integers"))
        let corrupt = directory.appendingPathComponent("corrupt.npy").path
        try Data("\u{93}NUMPY garbage".utf8).write(to: URL(fileURLWithPath: corrupt))
        #expect(failure(SweepSpec(model: Fixtures.model("conv_chain"), calibration: corrupt)).contains(corrupt))
        #expect(failure(SweepSpec(model: Fixtures.model("conv_chain"), calibration: good, metric: .accuracy)).contains("needs labels"))
        #expect(!FileManager.default.fileExists(atPath: store))
    }

    @Test(.enabled(if: Fixtures.hasRealModels)) func digitsAccuracySweep() throws {
        // The real digits classifier with its labels; the sweep scores the probabilities output.
        let spec = SweepSpec(model: Fixtures.digitsClassifier, calibration: Fixtures.real("digits_calib.npz"),
                             labels: Fixtures.real("digits_labels.npy"), metric: .accuracy, output: "probabilities",
                             levels: [0.25, 0.75], batchSize: 64)
        let store = directory.appendingPathComponent("digits.db").path
        try SweepRunner(spec: spec, storePath: store).run()
        let results = try ResultsStore(path: store)
        let baseline = try #require(try results.baseline())
        #expect(abs(baseline.value - 0.9192) < 0.001, "the dense model's accuracy matches ONNX Runtime's")
        let rows = try results.allJobs()
        #expect(!rows.isEmpty && rows.allSatisfy { $0.state == .done })
        // More pruning of a group never helps by more than noise.
        for group in Set(rows.map(\.job.group)) {
            let scores = rows.filter { $0.job.group == group }.sorted { $0.job.level < $1.job.level }.map { $0.score! }
            #expect(scores.last! <= scores.first! + 0.02)
        }
    }
}

/// The local and magnitude methods, the external evaluator and the disk spill.
@Suite struct SweepMethodTests {
    let directory: URL
    init() throws { directory = try Fixtures.temporaryDirectory() }

    func spec(_ method: SweepMethod = .oneShot) throws -> SweepSpec {
        let calibration = directory.appendingPathComponent("calib.npz").path
        var random = SeededGenerator(seed: 3)
        let values = random.floats(4 * 3 * 32 * 32, in: -2...2)
        try NumPy.writeArchive(["x": TensorData(floats: values, shape: [4, 3, 32, 32])], to: calibration)
        return SweepSpec(model: Fixtures.model("conv_chain"), calibration: calibration, levels: [0.25, 0.75], batchSize: 2, method: method)
    }

    func run(_ spec: SweepSpec, _ name: String, cacheBytes: Int = 512 << 20) throws -> [ResultsStore.Row] {
        let store = directory.appendingPathComponent("\(name).db").path
        try SweepRunner(spec: spec, storePath: store, cacheBytes: cacheBytes).run()
        return try ResultsStore(path: store).allJobs()
    }

    @Test func spillingToDiskChangesNothing() throws {
        let inMemory = try run(try spec(), "memory").map(\.score)
        let spilled = try run(try spec(), "disk", cacheBytes: 0).map(\.score)
        #expect(inMemory == spilled)
    }

    @Test func localMethodRunsOnlyUpToTheConsumers() throws {
        let local = try run(try spec(.local), "local")
        let full = try run(try spec(), "full")
        #expect(local.allSatisfy { $0.state == .done && ($0.score ?? -1) >= 0 })
        // Group 0 (conv_0) is read by conv_1: the local job runs conv_0..conv_1 only.
        let localMACs = local.filter { $0.job.group == 0 }.compactMap(\.macsExecuted)
        let fullMACs = full.filter { $0.job.group == 0 }.compactMap(\.macsExecuted)
        #expect(zip(localMACs, fullMACs).allSatisfy { $0 < $1 })
        // More pruning of one group damages its consumer more.
        for group in Set(local.map(\.job.group)) {
            let scores = local.filter { $0.job.group == group }.sorted { $0.job.level < $1.job.level }.map { $0.score! }
            #expect(scores[0] < scores[1], "group \(group)")
        }
    }

    @Test func magnitudeProxyIsTheMeanRemovedWeight() throws {
        let rows = try run(try spec(.magnitude), "magnitude")
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let groups = try DependencyAnalysis.groups(of: model)
        // Independent: remove the same channels, measure what left the weights.
        let row = try #require(rows.first { $0.job.group == 1 && $0.job.level == 0.25 })
        let removing = try ChannelSelection(sparsity: 0.25).channelsToRemove([groups[1]], in: model, by: MagnitudeImportance(p: 1))
        let removed = Set(removing[1]!)
        let w1 = try model.graph.constant(model.graph.nodes[3].inputs[1])!.floats()   // [16, 8, 3, 3] filters
        let w2 = try model.graph.constant(model.graph.nodes[6].inputs[1])!.floats()   // [16, 16, 3, 3] reads them
        var sum = 0.0, count = 0
        for (i, w) in w1.enumerated() where removed.contains(i / 72) { sum += Double(abs(w)); count += 1 }
        for (i, w) in w2.enumerated() where removed.contains((i / 9) % 16) { sum += Double(abs(w)); count += 1 }
        #expect(abs(row.score! - sum / Double(count)) < 1e-9)
    }

    @Test func externalEvaluatorScoresAndFailuresAreKept() throws {
        var spec = try spec()
        spec.levels = [0.5]
        // Prints the model's size in bytes: smaller models score lower.
        spec.evaluator = ExternalEvaluator(command: "wc -c < {model}")
        let rows = try run(spec, "external")
        let baseline = try #require(try ResultsStore(path: directory.appendingPathComponent("external.db").path).baseline())
        #expect(rows.allSatisfy { $0.state == .done && $0.score! < baseline.value })

        let failing = ExternalEvaluator(command: "echo broken >&2; exit 3 # {model}")
        #expect { try failing.score(modelPath: Fixtures.model("conv_chain")) } throws: {
            ($0 as? ExternalEvaluator.Failure).map { $0.description.contains("status 3") && $0.stderr.contains("broken") } ?? false
        }
        let silent = ExternalEvaluator(command: "echo not-a-number # {model}")
        #expect { try silent.score(modelPath: Fixtures.model("conv_chain")) } throws: { "\($0)".contains("not a JSON number") }
        let slow = ExternalEvaluator(command: "sleep 5 # {model}", timeoutSeconds: 0.3)
        #expect { try slow.score(modelPath: Fixtures.model("conv_chain")) } throws: { "\($0)".contains("timed out") }
    }

    @Test func aFailingEvaluatorFailsJobsNotTheSweep() throws {
        var spec = try spec()
        spec.levels = [0.5]
        let marker = directory.appendingPathComponent("dense-done").path
        // The dense model (first call) scores 1; every pruned model makes the command fail.
        spec.evaluator = ExternalEvaluator(command: "if [ -e '\(marker)' ]; then echo pruned >&2; exit 1; fi; touch '\(marker)'; echo 1 # {model}")
        let rows = try run(spec, "failing")
        #expect(!rows.isEmpty && rows.allSatisfy { $0.state == .failed && $0.stderr == "pruned\n" && $0.error!.contains("status 1") })
    }
}
