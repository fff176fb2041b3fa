import ArgumentParser
import Foundation
import LopperExport
import LopperModel
import LopperReport
import LopperSensitivity

struct Results: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a sweep's sensitivity table: groups × sparsity levels.",
        discussion: """
            csv and json give one row per job, for pandas and other tools; svg draws the sensitivity curves.

            Example:
              lopper results --db chain24.db --format csv
            """)

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
        case .csv: print(SweepTables.csv(rows, names: names))
        case .json: print(try json(rows, names: names, store: store))
        case .svg: print(SensitivityDocument.svg(try SensitivityTable(store: store), names: names))
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

    private func json(_ rows: [ResultsStore.Row], names: [Int: String], store: ResultsStore) throws -> String {
        try SweepTables.json(rows, names: names, metric: try store.metadata("metric") ?? "", baseline: try store.baseline()?.value)
    }
}
