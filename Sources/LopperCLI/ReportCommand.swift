import ArgumentParser
import Foundation
import LopperReport

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a sweep (and its exports) as one self-contained HTML page.",
        discussion: """
            The page has the sensitivity curves per group, a heat map of damage by group and level, and, with \
            --exports, per profile the kept fraction per group, the cost before and after for each budget, \
            predicted against measured damage and the baselines; every chart has a table of its numbers beside it, \
            and the sweep's CSV and JSON and each export's manifest.json and plan.json are embedded for download. \
            It loads nothing from the network and runs no script.

            Example:
              lopper report --db chain24.db --exports exports -o report.html
            """)

    @Option(help: ArgumentHelp("The results store written by lopper sweep.", valueName: "file"))
    var db: String

    @Option(help: ArgumentHelp("The folder written by lopper export --out (optional).", valueName: "folder"))
    var exports: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("The HTML file to write.", valueName: "file"))
    var output: String = "report.html"

    func validate() throws {
        guard FileManager.default.fileExists(atPath: db) else { throw ValidationError("\(db) does not exist.") }
    }

    func run() throws {
        let input = try ReportInput.load(db: db, exports: exports)
        let html = try Report(input: input, generator: "lopper \(Lopper.configuration.version)").html()
        try Data(html.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        print("wrote \(output) (\(input.rows.count) jobs, \(input.exports.count) exports)")
    }
}
