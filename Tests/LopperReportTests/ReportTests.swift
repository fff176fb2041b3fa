import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import LopperExport
import LopperHardware
import LopperModel
@testable import LopperReport
import LopperSensitivity
import LopperTesting
import Testing

/// A real sweep of conv_chain and exports for two profiles, written as a report and opened in
/// headless Chromium.
@Suite(.serialized) struct ReportTests {
    let directory: URL
    let input: ReportInput

    static let profiles = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Config/profiles").path

    init() throws {
        directory = try Fixtures.temporaryDirectory()
        let calibration = try Fixtures.randomCalibration(in: directory, seed: 9, samples: 8, shape: [3, 32, 32])
        let spec = SweepSpec(model: Fixtures.model("conv_chain"), calibration: calibration, criteria: ["l1", "l2"],
                             levels: [0.25, 0.5, 0.75], samples: 8, batchSize: 4)
        let db = directory.appendingPathComponent("sweep.db").path
        try SweepRunner(spec: spec, storePath: db).run()
        let store = try ResultsStore(path: db, readOnly: true)
        let exporter = try Exporter(setup: try SweepSetup(spec: spec), table: try SensitivityTable(store: store),
                                    constraints: PlanningConstraints(), version: "test")
        let exports = directory.appendingPathComponent("exports").path
        for (name, budget) in [("raspberry-pi-5", "macs=0.5x"), ("stm32h7", "latency=0.7x,params=0.7x")] {
            let profile = try HardwareProfile.resolve(name, searching: [Self.profiles])
            try exporter.export(profile: profile, budgets: budget).write(into: (exports as NSString).appendingPathComponent(name))
        }
        input = try ReportInput.load(db: db, exports: exports)
    }

    /// The `<svg …>…</svg>` elements of a page.
    static func charts(_ html: String) -> [String] {
        html.components(separatedBy: "<svg ").dropFirst().map { "<svg " + $0.components(separatedBy: "</svg>")[0] + "</svg>" }
    }

    @Test func everyChartAndTableIsThereAndSelfContained() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let html = try Report(input: input, generator: "lopper test").html()
        #expect(html == (try Report(input: input, generator: "lopper test").html()), "the same input gives the same page")
        for id in ["sensitivity", "heat-maps", "kept", "cost", "damage", "baselines"] { #expect(html.contains("<section id=\"\(id)\">"), "\(id)") }

        // One small multiple per prunable group, one heat map per granularity × criterion, and
        // the four export charts; each is well-formed XML.
        let table = try #require(input.table)
        let groups = Set(table.curves.map(\.group)).count, kinds = Set(table.curves.map(\.kind)).count
        #expect(kinds == 2 && groups == input.groups.filter(\.prunable).count)
        let charts = Self.charts(html)
        #expect(charts.count == groups + kinds + 4)
        for chart in charts { #expect(XMLParser(data: Data(chart.utf8)).parse(), "\(chart.prefix(200))") }
        #expect(charts.filter { $0.contains("class=\"chart heat-map\"") }.count == kinds)

        // Nothing to fetch: no script, no src, and the only URL is SVG's namespace.
        #expect(!html.contains("<script") && !html.contains(" src="))
        #expect(html.components(separatedBy: "http").count - 1 == charts.count, "only xmlns=\"http://www.w3.org/2000/svg\"")

        // The embedded CSV is the store's, byte for byte.
        let link = try #require(html.range(of: "download=\"sweep.csv\" href=\"data:text/csv;base64,"))
        let encoded = html[link.upperBound...].prefix { $0 != "\"" }
        #expect(Data(base64Encoded: String(encoded)) == Data(SweepTables.csv(input.rows, names: input.groupNames).utf8))

        // Each exported group's kept fraction is drawn, and its exact count is in the table.
        for export in input.exports {
            for choice in export.plan.groups {
                let name = "\(choice.group) \(input.groupNames[choice.group]!)"
                #expect(html.contains(escapeMarkup("\(name) · \(export.manifest.profile): \(format(1 - choice.level))")), "\(name)")
                #expect(html.contains("<td class=\"num\">\(choice.kept) (\(choice.family), "))
            }
            #expect(html.contains("<td>\(export.manifest.profile)</td><td>lopper</td><td class=\"num\">\(format(export.manifest.predictedDamage))</td>"))
        }
    }

    /// Depth: a sweep with the layer granularity, exported for an overhead-bound device at a
    /// latency budget only removing blocks reaches; the report lists each removed block with its
    /// damage alone and what it saves there.
    @Test func removedBlocksAreShownPerProfile() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let calibration = try Fixtures.randomCalibration(in: directory, seed: 4, samples: 8, shape: [8, 16, 16])
        let spec = SweepSpec(model: Fixtures.model("residual"), calibration: calibration, granularities: [.channel, .layer],
                             criteria: ["l1"], levels: [0.25, 0.5, 0.75], samples: 8, batchSize: 4)
        let db = directory.appendingPathComponent("depth.db").path
        try SweepRunner(spec: spec, storePath: db).run()
        let table = try SensitivityTable(store: try ResultsStore(path: db, readOnly: true))
        let exporter = try Exporter(setup: try SweepSetup(spec: spec), table: table, constraints: PlanningConstraints(), version: "test")
        let exports = directory.appendingPathComponent("depth-exports").path
        let profile = try HardwareProfile.resolve("jetson-orin-nano", searching: [Self.profiles])
        try exporter.export(profile: profile, budgets: "latency=0.75x").write(into: (exports as NSString).appendingPathComponent(profile.name))
        let input = try ReportInput.load(db: db, exports: exports)
        let removed = try #require(input.exports.first?.plan.blocks)
        try #require(!removed.isEmpty, "the budget is met only by removing a block")
        let html = try Report(input: input, generator: "lopper test").html()
        #expect(html.contains("<section id=\"blocks\">") && html.contains("2 blocks measured by the sweep"))
        for block in removed {
            let curve = try #require(table.curves.first { $0.granularity == .layer && $0.criterion == block.choice.removal.rawValue
                && input.groupNames[$0.group] == "block " + block.choice.join })
            #expect(block.predictedDamage == curve.points.first { $0.level == 1 }?.damage, "the damage alone is the sweep's")
            #expect(try #require(block.alone["latency"]) < 0, "removing it saves latency")
            #expect(html.contains("<tr><td>\(profile.name)</td><td>\(block.choice.join)</td><td class=\"num\">\(block.choice.nodes.count)</td>"
                + "<td>\(block.choice.removal.rawValue)</td><td class=\"num\">\(format(block.predictedDamage))</td>"), "\(block.choice.join)")
        }
        // The report of the conv_chain exports (no layer jobs) says how to offer depth.
        #expect(try Report(input: self.input, generator: "lopper test").html().contains("sweep with --granularity layer to offer depth"))
    }

    @Test func chromiumRendersItWithoutConsoleErrors() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        guard HeadlessBrowser.isAvailable else { print("skipped: chromium is not installed (.ci/setup --test)"); return }
        let html = try Report(input: input, generator: "lopper test").html()
        let file = directory.appendingPathComponent("report.html")
        try Data(html.utf8).write(to: file)
        let page = try HeadlessBrowser.load(file.absoluteString)
        #expect(page.console.isEmpty, "\(page.console)")
        // The browser's DOM has every chart (as SVG elements, not text) and every table.
        #expect(page.dom.components(separatedBy: "<svg ").count == Self.charts(html).count + 1)
        #expect(page.dom.components(separatedBy: "<table").count == html.components(separatedBy: "<table").count)
        for id in ["sensitivity", "heat-maps", "kept", "cost", "damage", "baselines"] { #expect(page.dom.contains("id=\"\(id)\"")) }

        let png = directory.appendingPathComponent("report.png").path
        try HeadlessBrowser.screenshot(file.absoluteString, to: png, width: 1200, height: 1600)
        let image = try #require(FileManager.default.contents(atPath: png))
        #expect(image.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) && image.count > 50_000, "a rendered page, not a blank one")
    }

    /// The console check is not vacuous: a page that logs an error is caught.
    @Test func aConsoleErrorIsSeen() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        guard HeadlessBrowser.isAvailable else { return }
        let file = directory.appendingPathComponent("bad.html")
        try Data("<!DOCTYPE html><html><body><script>console.error('broken chart')</script></body></html>".utf8).write(to: file)
        #expect(try HeadlessBrowser.load(file.absoluteString).console.contains { $0.contains("broken chart") })
    }
}

@Suite struct ChartTests {
    @Test func namesAreEscapedAndDocumentsWellFormed() {
        let bars = BarChart(title: "a <b> & \"c\"", valueTitle: "v", categories: ["x<y", "z&w"], series: [("s1", [1, nil]), ("s2", [0.5, 2])])
        let svg = bars.svg()
        #expect(XMLParser(data: Data(svg.utf8)).parse())
        #expect(svg.contains("x&lt;y") && svg.contains("z&amp;w") && !svg.contains("x<y"))
        // Three bars: the missing value draws none.
        #expect(svg.components(separatedBy: "<rect x=").count - 1 == 3)
        let line = LineChart(title: "t", xTitle: "x", yTitle: "y", series: [.init(name: "a", points: [(0, 0), (0.5, 0.2)]),
                                                                            .init(name: "b", points: [(0, 0.1)])])
        #expect(XMLParser(data: Data(line.svg().utf8)).parse())
        #expect(line.svg().components(separatedBy: "<polyline").count - 1 == 1, "a one-point series is a marker, not a line")
    }

    @Test func heatMapColoursRiseWithTheValue() {
        #expect(HeatMap.color(0) == "#fff7bc" && HeatMap.color(1) == "#662506")
        let map = HeatMap(title: "t", rows: ["g"], columns: ["0.1", "0.2"], values: [[0, 1]], valueTitle: "damage")
        #expect(map.svg().contains("fill=\"#fff7bc\"><title>g at 0.1: 0</title>"))
        #expect(XMLParser(data: Data(map.svg().utf8)).parse())
    }
}
