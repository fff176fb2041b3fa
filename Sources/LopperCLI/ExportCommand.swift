import ArgumentParser
import Foundation
import Logging
import LopperCoordination
import LopperExport
import enum LopperAllocation.Resource
import LopperHardware
import LopperModel
import LopperSensitivity

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Allocate, assemble and validate a pruned model for each profile of a batch.",
        discussion: """
            For every profile: allocate within its budgets (--budget, or the profile's default_budgets), cut the \
            model physically (bias correction where it lowers the measured damage), score it on the sweep's \
            calibration data with the sweep's metric, price the written model from scratch on the profile, and \
            measure the uniform, global magnitude and LAMP baselines at the same budgets the same way. Writes \
            <out>/<profile>/model.onnx (metadata: Lopper's version, profile, budgets, plan digest), plan.json \
            (the choice per group, with the kept indices per tensor by initializer name) and manifest.json \
            (costs, predicted and measured damage, baselines), and <out>/summary.json. A profile that fails is \
            reported with its reason and the others go on; the exit status is 1 if any failed.

            Each profile's export is one job. With --workers N the jobs run on N local worker processes (as \
            `lopper sweep --workers N` does); with --listen they are served to `lopper worker --connect ADDR` \
            processes anywhere. The files are written here, and are the same bytes either way.

            Example:
              lopper export --db chain24.db --profiles raspberry-pi-5 stm32h7 \\
                --budget latency=0.5x --out exports
            """)

    @Argument(help: "The sweep's model (optional: checked against the one the sweep measured).")
    var model: String?

    @OptionGroup var allocation: AllocationOptions

    @Option(parsing: .upToNextOption, help: "Profiles: YAML files or shipped names.")
    var profiles: [String]

    @Option(help: "Folder for the exports (one sub-folder per profile).")
    var out: String

    @Option(help: "Correct the allocation with measured damages (the plan and its neighbours) until the prediction is within this of the measurement.")
    var tolerance: Double?

    @Option(help: "Most rounds of the correction loop.")
    var rounds: Int = 4

    @Flag(help: "Also write each baseline's model to <out>/<profile>/baseline-<name>.onnx.")
    var writeBaselines = false

    @Option(help: "Held-out data (.npy/.npz of the calibration data's form) to score each export and baseline on as well (sent to the workers with --workers or --listen).")
    var holdout: String?

    @Option(help: "Labels (.npy, one integer per sample) of the held-out data, when the sweep's metric needs them.")
    var holdoutLabels: String?

    @Option(help: "Run the exports on this many local worker processes (0: in this process).")
    var workers = 0

    @Option(help: "Exports run at once per worker with --workers (each single-threaded). Default: all cores, shared among the workers.")
    var jobs: Int?

    @Option(help: ArgumentHelp("Serve the exports to workers that connect to this address (repeatable; lopper worker --connect), instead of running them here.",
                               valueName: "url"))
    var listen: [String] = []

    @OptionGroup var network: NetworkOptions

    func validate() throws {
        guard !profiles.isEmpty else { throw ValidationError("--profiles needs at least one profile.") }
        guard tolerance.map({ $0 >= 0 }) ?? true else { throw ValidationError("--tolerance must be at least 0.") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1.") }
        guard holdout != nil || holdoutLabels == nil else { throw ValidationError("--holdout-labels needs --holdout.") }
        guard workers >= 0 else { throw ValidationError("--workers must not be negative.") }
        guard (jobs ?? 1) >= 1 else { throw ValidationError("--jobs must be at least 1.") }
        guard workers == 0 || listen.isEmpty else { throw ValidationError("--workers and --listen exclude each other: local workers listen on their own address.") }
        if let tls = listen.first(where: { $0.hasPrefix("tls+") }), network.tlsCertificate == nil || network.tlsKey == nil {
            throw ValidationError("--listen \(tls) needs --tls-cert and --tls-key (this process's certificate and its private key).")
        }
    }

    func run() async throws {
        let (setup, table) = try allocation.load()
        if let model, (try FileDigest.sha256(model)) != (try FileDigest.sha256(setup.spec.model)) {
            throw ValidationError("\(model) is not the model the sweep in \(allocation.db) measured (\(setup.spec.model)).")
        }
        let requests = profiles.map { reference in Result { try request(for: reference) } }
        let bar = ProgressBar(label: "export", unit: "profiles")
        let outcomes = ExportOutcomes(count: profiles.count, progress: bar)
        for (index, request) in requests.enumerated() {
            if case .failure(let error) = request { outcomes.record(index, profile: profiles[index], .failure(error)) }
        }
        let jobs = requests.enumerated().compactMap { index, request in
            (try? request.get()).map { (index: index, request: $0) }
        }
        if workers == 0 && listen.isEmpty {
            let exporter = try Exporter(setup: setup, table: table, constraints: try allocation.constraints, version: Lopper.configuration.version,
                                        heldOut: holdout.map { Exporter.HeldOutSplit(data: $0, labels: holdoutLabels) })
            for (index, job) in jobs {
                outcomes.record(index, profile: job.reference, Result { try deliver(try exporter.run(job.request), name: job.name) })
            }
        } else {
            // A held-out split the workers could not read fails here, before any job runs.
            try holdout.map { try Exporter.HeldOutSplit(data: $0, labels: holdoutLabels).validate(for: setup) }
            try await runOnWorkers(jobs, setup: setup, table: table, outcomes: outcomes)
        }
        bar.finish()
        let rows = zip(profiles, outcomes.all).map { ($0, $1) }
        print(Self.summary(rows, out: out))
        let summary = rows.map { reference, outcome -> [String: String] in
            switch outcome {
            case .success(let m):
                var row = ["profile": m.profile, "status": m.meetsBudgets ? "ok" : "over budget",
                           "measured_damage": String(m.measuredDamage), "folder": (out as NSString).appendingPathComponent(m.profile)]
                if let heldOut = m.heldOut { row["held_out_damage"] = String(heldOut.damage) }
                return row
            case .failure(let error): return ["profile": reference, "status": "failed", "error": "\(error)"]
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try OutputFolder.create(out)
        try encoder.encode(summary).write(to: URL(fileURLWithPath: (out as NSString).appendingPathComponent("summary.json")))
        if rows.contains(where: { if case .failure = $0.1 { return true } else { return false } }) { throw ExitCode(1) }
    }

    /// One profile's job: the profile read here (its YAML travels with the job) and its budgets.
    private func request(for reference: String) throws -> (reference: String, name: String, request: ExportRequest) {
        let path = try HardwareProfile.locate(reference, searching: ProfileSearch.folders)
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ModelError("cannot read profile: \(error.localizedDescription)", file: path)
        }
        let profile = try HardwareProfile.parse(yaml: text, file: path)
        guard let budgets = allocation.budget ?? profile.defaultBudgets else {
            throw ValidationError("profile '\(profile.name)' has no default_budgets: give --budget, e.g. --budget latency=0.5x.")
        }
        return (reference, profile.name, ExportRequest(reference: reference, profileYAML: text, profileFile: path, budgets: budgets,
                                                       constraints: try allocation.constraints, tolerance: tolerance, rounds: rounds,
                                                       writeBaselines: writeBaselines))
    }

    /// Writes one profile's files into its folder; its manifest for the summary.
    private func deliver(_ artifacts: ExportArtifacts, name: String) throws -> Manifest {
        try artifacts.write(into: (out as NSString).appendingPathComponent(name))
        return try artifacts.manifest
    }

    /// The jobs on workers (local ones, or any that connect to --listen), each profile's files
    /// written here as its worker returns them.
    private func runOnWorkers(_ jobs: [(index: Int, request: (reference: String, name: String, request: ExportRequest))],
                              setup: SweepSetup, table: SensitivityTable, outcomes: ExportOutcomes) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-export-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let tablePath = folder.appendingPathComponent("table.json").path
        try ExportJobHandler.encode(table).write(to: URL(fileURLWithPath: tablePath))
        var offer = try SweepOffer(setup: setup)
        offer.kinds = [.export]
        try offer.attach(.table, path: tablePath)
        if let holdout { try offer.attach(.heldOut, path: holdout) }
        if let holdoutLabels { try offer.attach(.heldOutLabels, path: holdoutLabels) }
        let byKey = Dictionary(uniqueKeysWithValues: jobs.map { ("\($0.index)/\($0.request.reference)", $0) })
        let command = self
        let batch = JobBatch(jobs: try jobs.map { job in
            BatchJob(key: "\(job.index)/\(job.request.reference)", kind: .export, payload: try job.request.request.encoded())
        }) { job, outcome in
            let (index, request) = byKey[job.key]!
            outcomes.record(index, profile: request.reference, Result {
                try command.deliver(try ExportArtifacts(files: try outcome.get().map { ($0.name, $0.data) }), name: request.name)
            })
        }
        var logger = Logger(label: "lopper.export")
        logger.logLevel = .warning
        if workers > 0 {
            let cores = ProcessInfo.processInfo.activeProcessorCount
            let cluster = LocalCluster(workers: workers, slotsPerWorker: self.jobs ?? max(1, cores / workers), cacheMB: 512, logger: logger)
            _ = try await cluster.run(kept: "; their files are written") { options in
                try Coordinator(batch: batch, offer: offer, options: Self.exportOptions(options), logger: logger)
            }
        } else {
            logger.logLevel = .info
            let options = Coordinator.Options(listen: listen, token: try network.token(), tls: network.tls(.server))
            _ = try await Coordinator(batch: batch, offer: offer, options: Self.exportOptions(options), logger: logger).run()
        }
    }

    /// An export's result carries its model: requests may be far larger than a sweep's.
    static func exportOptions(_ options: Coordinator.Options) -> Coordinator.Options {
        var options = options
        options.maximumMessageBytes = 1 << 30
        return options
    }

    static func summary(_ rows: [(String, Result<Manifest, Error>)], out: String) -> String {
        let heldOut = rows.contains { if case .success(let m) = $0.1 { return m.heldOut != nil } else { return false } }
        var table = TextTable(["profile", "budgets", "cost before → after", "damage (measured)", "predicted", "uniform at same budget"]
                              + (heldOut ? ["held-out damage", "uniform held-out"] : []) + ["folder"],
                              rightAligned: heldOut ? [3, 4, 5, 6, 7] : [3, 4, 5])
        for (reference, outcome) in rows {
            switch outcome {
            case .success(let m):
                let costs = m.limits.keys.sorted().map { name -> String in
                    let resource = Resource(budgetName: name)!
                    return "\(name) \(resource.format(m.denseCost[name] ?? 0)) → \(resource.format(m.assembledCost[name] ?? 0))"
                }.joined(separator: "; ")
                let uniform = m.baselines.first { $0.name == "uniform" }
                let format = { (value: Double?) in value.map { String(format: "%.4g", $0) } ?? "-" }
                table.append([m.profile, m.budgets, costs + (m.meetsBudgets ? "" : " (OVER BUDGET)"), format(m.measuredDamage),
                              format(m.predictedDamage), format(uniform?.measuredDamage)]
                             + (heldOut ? [format(m.heldOut?.damage), format(uniform?.heldOutDamage)] : [])
                             + [(out as NSString).appendingPathComponent(m.profile)])
            case .failure(let error):
                table.append([reference, "", "failed: \(error)"] + Array(repeating: "", count: heldOut ? 6 : 4))
            }
        }
        return table.render()
    }
}
