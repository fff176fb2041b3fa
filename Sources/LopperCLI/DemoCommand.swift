import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import LopperSensitivity

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole flow on the bundled digits classifier: sweep, export for two devices, report.",
        discussion: """
            The same commands a user runs, one after another: lopper sweep (a coordinator and --workers local \
            worker processes), lopper export for each profile at --budget, and lopper report. The model is a \
            scikit-learn MLP trained on the digits data set, made by .ci/setup (Tests/Fixtures/fetch_real_models.py, \
            checked by SHA-256). Run it from the repository's folder.

            Example:
              lopper demo --out demo
            """)

    @Option(help: ArgumentHelp("The sweep file.", valueName: "file"))
    var config = "Config/sweeps/digits.yaml"

    @Option(help: ArgumentHelp("Folder for the store, the exports and the report.", valueName: "folder"))
    var out = "demo"

    @Option(help: "Local worker processes for the sweep.")
    var workers = 2

    @Option(parsing: .upToNextOption, help: "Profiles to export for: YAML files or shipped names.")
    var profiles = ["raspberry-pi-5", "stm32h7"]

    @Option(help: "The budgets every profile's export must meet.")
    var budget = "params=0.5x"

    func validate() throws {
        guard FileManager.default.fileExists(atPath: config) else {
            throw ValidationError("\(config) does not exist: run lopper demo from the repository's folder, or give --config.")
        }
        let model = try SweepSpec.load(yaml: config).model
        guard FileManager.default.fileExists(atPath: model) else {
            throw ValidationError("\(model) is missing: run .ci/setup first (it trains the digits model with scikit-learn).")
        }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1.") }
    }

    func run() async throws {
        let db = (out as NSString).appendingPathComponent("digits.db")
        let exports = (out as NSString).appendingPathComponent("exports")
        let report = (out as NSString).appendingPathComponent("report.html")
        try OutputFolder.create(out)
        print("1/3 sweep: lopper sweep --config \(config) --db \(db) --workers \(workers)")
        fflush(stdout)
        let sweep = try Sweep.parse(["--config", config, "--db", db, "--workers", String(workers)])
        try await sweep.run()
        print("\n2/3 export: lopper export --db \(db) --profiles \(profiles.joined(separator: " ")) --budget \(budget) --tolerance 0.001 --out \(exports)")
        fflush(stdout)
        let export = try ExportCommand.parse(["--db", db, "--profiles"] + profiles + ["--budget", budget, "--tolerance", "0.001", "--out", exports])
        try await export.run()
        print("\n3/3 report: lopper report --db \(db) --exports \(exports) -o \(report)")
        fflush(stdout)
        let html = try ReportCommand.parse(["--db", db, "--exports", exports, "-o", report])
        try html.run()
        print("""

            results store  \(db)   (lopper results --db \(db))
            pruned models  \(profiles.map { (exports as NSString).appendingPathComponent("\($0)/model.onnx") }.joined(separator: "  "))
            report         \(report)   (open it in a browser)
            """)
    }
}
