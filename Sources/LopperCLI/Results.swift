import ArgumentParser
import Foundation
import LopperModel
import LopperSensitivity

struct Results: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a sweep's sensitivity table: groups × sparsity levels.",
        discussion: "csv and json give one row per job, for pandas and other tools; svg draws the sensitivity curves.")

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case table, csv, json, svg
    }

    @Option(help: ArgumentHelp("The results store written by lopper sweep.", valueName: "file"))
    var db: String

    @Option(help: "table, csv, json or svg.")
    var format: OutputFormat = .table

    func validate() throws {
        guard FileManager.default.fileExists(atPath: db) else { throw ValidationError("\(db) does not exist.") }
    }

    func run() throws {
        let store = try ResultsStore(path: db, readOnly: true)
        let rows = try store.allJobs()
        let names = Dictionary(uniqueKeysWithValues: try store.groups().map { ($0.id, $0.name) })
        switch format {
        case .table: print(try table(rows, names: names, store: store))
        case .csv: print(csv(rows, names: names))
        case .json: print(try json(rows, names: names, store: store))
        case .svg: print(SensitivityPlot.svg(rows, names: names, metric: try store.metadata("metric") ?? "score"))
        }
    }

    private func table(_ rows: [ResultsStore.Row], names: [Int: String], store: ResultsStore) throws -> String {
        var sections: [String] = []
        let metric = try store.metadata("metric") ?? "score"
        if let baseline = try store.baseline() {
            sections.append(String(format: "metric %@ (dense model: %.4f)", metric, baseline.value))
        }
        let kinds = Array(Set(rows.map { "\($0.job.granularity.rawValue) / \($0.job.criterion)" })).sorted()
        for kind in kinds {
            let selected = rows.filter { "\($0.job.granularity.rawValue) / \($0.job.criterion)" == kind }
            let levels = Array(Set(selected.map(\.job.level))).sorted()
            var text = TextTable(["group", "name"] + levels.map { String(format: "%.2f", $0) }, rightAligned: Set(2..<(levels.count + 2)))
            for group in Array(Set(selected.map(\.job.group))).sorted() {
                let cells = levels.map { level -> String in
                    guard let row = selected.first(where: { $0.job.group == group && $0.job.level == level }) else { return "" }
                    switch row.state {
                    case .done: return row.score.map { String(format: "%.4f", $0) } ?? "?"
                    case .failed: return "failed"
                    default: return "…"
                    }
                }
                text.append([String(group), names[group] ?? ""] + cells)
            }
            sections.append("\(kind)\n\(text.render())")
        }
        let done = rows.filter { $0.state == .done }.count, failed = rows.filter { $0.state == .failed }.count
        sections.append("\(done) of \(rows.count) jobs done" + (failed > 0 ? ", \(failed) failed (see --format csv for errors)" : ""))
        return sections.joined(separator: "\n\n")
    }

    static let columns = ["group_id", "group", "granularity", "criterion", "level", "state", "score", "removed",
                          "wall_seconds", "macs_executed", "worker", "error", "stderr"]

    private func fields(_ row: ResultsStore.Row, names: [Int: String]) -> [String: Any] {
        var result: [String: Any] = [
            "group_id": row.job.group, "group": names[row.job.group] ?? "", "granularity": row.job.granularity.rawValue,
            "criterion": row.job.criterion, "level": row.job.level, "state": row.state.rawValue,
        ]
        result["score"] = row.score
        result["removed"] = row.removed
        result["wall_seconds"] = row.seconds
        result["macs_executed"] = row.macsExecuted
        result["worker"] = row.worker
        result["error"] = row.error
        result["stderr"] = row.stderr
        return result
    }

    private func csv(_ rows: [ResultsStore.Row], names: [Int: String]) -> String {
        func quote(_ value: Any?) -> String {
            guard let value else { return "" }
            let text: String
            if let double = value as? Double { text = String(describing: double) } else { text = "\(value)" }
            return text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        let lines = rows.map { row in
            let values = fields(row, names: names)
            return Self.columns.map { quote(values[$0]) }.joined(separator: ",")
        }
        return ([Self.columns.joined(separator: ",")] + lines).joined(separator: "\n")
    }

    private func json(_ rows: [ResultsStore.Row], names: [Int: String], store: ResultsStore) throws -> String {
        var object: [String: Any] = ["jobs": rows.map { fields($0, names: names) }, "metric": try store.metadata("metric") ?? ""]
        if let baseline = try store.baseline() { object["baseline"] = baseline.value }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
