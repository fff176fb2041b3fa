import ArgumentParser
import Foundation
import LopperHardware
import LopperModel
import LopperPruning

/// Where `--profile NAME` looks for `NAME.yaml`.
enum ProfileSearch {
    static var folders: [String] {
        var folders: [String] = []
        if let custom = ProcessInfo.processInfo.environment["LOPPER_PROFILES"] { folders.append(custom) }
        folders.append("Config/profiles")
        // Beside a build of the repository: the executable is .build/<config>/lopper, where
        // .build/<config> may be a link to .build/<triple>/<config>.
        let invoked = URL(fileURLWithPath: CommandLine.arguments[0]).absoluteURL
        for executable in [invoked, invoked.resolvingSymlinksInPath()] {
            var folder = executable.deletingLastPathComponent()
            for _ in 0..<3 {
                folder = folder.deletingLastPathComponent()
                let candidate = folder.appendingPathComponent("Config/profiles").standardized.path
                if FileManager.default.fileExists(atPath: candidate), !folders.contains(candidate) {
                    folders.append(candidate)
                    break
                }
            }
        }
        return folders
    }

    static func profile(_ reference: String) throws -> HardwareProfile {
        try HardwareProfile.resolve(reference, searching: folders)
    }
}

struct CostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cost",
        abstract: "Predict a model's MACs, weight bytes, peak activation memory and latency on a hardware profile.",
        discussion: """
            Prices the dense model, or a pruning plan of it (--plan plan.json), step by step: each step (a layer \
            with the BatchNormalization and activation a runtime fuses into it) takes the larger of its compute \
            time and its memory time on the profile, plus the profile's launch overhead. A latency table measured \
            on the device (lopper measure --table) answers for the steps it has.

            Example:
              lopper cost Tests/Fixtures/models/conv_chain.onnx --profile raspberry-pi-5
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "A profile YAML file, or the name of a shipped profile in Config/profiles (host, raspberry-pi-5, …).")
    var profile: String

    @Option(help: "A pruning plan (JSON) to price instead of the dense model.")
    var plan: String?

    @Option(help: "A measured latency table (CSV from lopper measure, or another tool in the same form).")
    var table: String?

    @Flag(help: "Print machine-readable JSON instead of a table.")
    var json = false

    func run() throws {
        let model = try modelOptions.load()
        let profile = try ProfileSearch.profile(self.profile)
        let graph: CostGraph
        do {
            graph = try CostGraph(model, inputShapes: try modelOptions.parsedInputShapes(), batch: modelOptions.batch)
        } catch let error as ModelError {
            throw error.inFile(modelOptions.model)
        }
        let plan = try self.plan.map(PruningPlan.load) ?? .dense
        do { try graph.validate(plan) } catch let error as ModelError { throw error.inFile(self.plan ?? "plan") }
        let model_ = CostModel(graph: graph, profile: profile, table: try table.map(LatencyTable.load))
        let report = model_.report(plan)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            let dense = self.plan == nil ? nil : model_.totals()
            print(Self.render(report, dense: dense, profile: profile, path: modelOptions.model))
        }
    }

    static func render(_ report: CostReport, dense: CostReport.Totals?, profile: HardwareProfile, path: String) -> String {
        var table = TextTable(["#", "step", "kind", "class", "MACs", "weights", "moved", "compute µs", "memory µs", "latency µs", ""],
                              rightAligned: [0, 4, 5, 6, 7, 8, 9])
        func micro(_ seconds: Double) -> String { String(format: "%.1f", seconds * 1e6) }
        for (i, step) in report.steps.enumerated() {
            let bound = step.measured ? "measured" : step.latencySeconds == 0 ? "view"
                : step.computeSeconds >= step.memorySeconds ? "compute" : "memory"
            table.append([String(i), step.name, step.kind, step.opClass.rawValue, step.macs == 0 ? "" : Format.short(step.macs),
                          step.paramBytes == 0 ? "" : Format.bytes(step.paramBytes), Format.bytes(step.bytesMoved),
                          micro(step.computeSeconds), micro(step.memorySeconds), micro(step.latencySeconds), bound])
        }
        let t = report.totals
        func line(_ label: String, _ value: String, _ before: String?, limit: String? = nil) -> String {
            var text = label.padding(toLength: 20, withPad: " ", startingAt: 0) + value
            if let before { text += "  (dense \(before))" }
            if let limit { text += "  limit \(limit)" }
            return text
        }
        var lines = ["\(path) on \(profile.name) (\(profile.dtype.rawValue)): \(profile.description)", "", table.render(), ""]
        lines.append(line("steps", String(report.steps.count), nil))
        lines.append(line("MACs", Format.grouped(t.macs), dense.map { Format.grouped($0.macs) }))
        if t.nonZeroMACs != t.macs { lines.append(line("MACs on non-zeros", Format.grouped(t.nonZeroMACs), nil)) }
        lines.append(line("weights", Format.bytes(t.paramBytes), dense.map { Format.bytes($0.paramBytes) },
                          limit: Format.bytes(profile.weightMemoryBytes) + (t.paramBytes > profile.weightMemoryBytes ? " EXCEEDED" : "")))
        lines.append(line("peak activations", Format.bytes(t.peakActivationBytes), dense.map { Format.bytes($0.peakActivationBytes) },
                          limit: Format.bytes(profile.activationMemoryBytes) + (t.peakActivationBytes > profile.activationMemoryBytes ? " EXCEEDED" : "")))
        lines.append(line("latency", String(format: "%.3f ms", t.latencySeconds * 1e3), dense.map { String(format: "%.3f ms", $0.latencySeconds * 1e3) }))
        return lines.joined(separator: "\n")
    }
}
