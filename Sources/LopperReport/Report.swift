import Foundation
import LopperExport
import LopperSensitivity

/// A sweep and its exports as one self-contained HTML page: inline SVG charts with tables of the
/// exact numbers beside them, and the data embedded for download. Nothing is loaded from the
/// network; no script runs. The same input gives the same bytes.
public struct Report {
    public var input: ReportInput
    /// Who wrote the page (`lopper 0.9`), shown in its footer.
    public var generator: String
    /// Reload the page every so many seconds (the coordinator's live status page).
    public var refreshSeconds: Int?
    /// Rows shown first in the summary (the coordinator's counters on the live page).
    public var status: [[String]] = []

    public init(input: ReportInput, generator: String, refreshSeconds: Int? = nil) {
        self.input = input
        self.generator = generator
        self.refreshSeconds = refreshSeconds
    }

    public func html() throws -> String {
        let title = "Lopper report: " + ((input.model as NSString?)?.lastPathComponent ?? (input.storePath as NSString).lastPathComponent)
        var body = "<h1>\(escapeMarkup(title))</h1>\n" + summary() + (try downloads())
        body += section("Sensitivity per group", id: "sensitivity", sensitivityCurves())
        body += section("Damage by group and level", id: "heat-maps", heatMaps())
        if input.exports.isEmpty {
            body += section("Exports", id: "exports", "<p class=\"note\">No exports in this report: run <code>lopper export … --out DIR</code> and pass <code>--exports DIR</code>.</p>\n")
        } else {
            body += section("Kept fraction per group", id: "kept", keptFractions())
            body += section("Removed blocks", id: "blocks", removedBlocks())
            body += section("Cost before and after, per budget", id: "cost", costs())
            body += section("Predicted and measured damage", id: "damage", predictedAgainstMeasured())
            body += section("Against the baselines at the same budgets", id: "baselines", baselines())
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            \(refreshSeconds.map { "<meta http-equiv=\"refresh\" content=\"\($0)\">" } ?? "")
            <title>\(escapeMarkup(title))</title>
            <style>\(Self.style)</style></head>
            <body>
            \(body)<footer>Written by \(escapeMarkup(generator)) from \(escapeMarkup(input.storePath)).</footer>
            </body></html>

            """
    }

    static let style = """
        body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}
        h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
        .figure{display:flex;flex-wrap:wrap;gap:20px;align-items:flex-start;margin:12px 0}
        .multiples{display:flex;flex-wrap:wrap;gap:8px}
        table{border-collapse:collapse;font-size:12px}th,td{padding:2px 8px;border-bottom:1px solid #e5e5e5;text-align:left}
        td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
        .note{color:#666}.downloads a{margin-right:14px}footer{margin-top:40px;color:#888;font-size:12px}
        """

    func section(_ title: String, id: String, _ content: String) -> String {
        "<section id=\"\(id)\"><h2>\(escapeMarkup(title))</h2>\n\(content)</section>\n"
    }

    private func summary() -> String {
        let states = Dictionary(grouping: input.rows, by: \.state).mapValues(\.count)
        var rows = status + [["metric", input.metric]]
        rows.append(["dense score", input.denseScore.map { format($0) } ?? "not measured yet"])
        rows.append(["groups", "\(input.groups.count) (\(input.groups.filter(\.prunable).count) prunable)"])
        rows.append(["jobs", "\(input.rows.count): " + [ResultsStore.JobState.done, .running, .pending, .failed].map { "\(states[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")])
        return htmlTable(["", ""], rows, cssClass: "summary")
    }

    private func downloads() throws -> String {
        let names = input.groupNames
        var links = [downloadLink("sweep.csv", type: "text/csv", Data(SweepTables.csv(input.rows, names: names).utf8))]
        links.append(downloadLink("sweep.json", type: "application/json",
                                  Data(try SweepTables.json(input.rows, names: names, metric: input.metric, baseline: input.denseScore).utf8)))
        for export in input.exports {
            links.append(downloadLink("\(export.manifest.profile)-manifest.json", type: "application/json", export.manifestJSON))
            links.append(downloadLink("\(export.manifest.profile)-plan.json", type: "application/json", export.planJSON))
        }
        return "<p class=\"downloads\">Download: \(links.joined(separator: " "))</p>\n"
    }

    private func downloadLink(_ name: String, type: String, _ data: Data) -> String {
        "<a download=\"\(escapeMarkup(name))\" href=\"data:\(type);base64,\(data.base64EncodedString())\">\(escapeMarkup(name))</a>"
    }
}

/// An HTML table (no header row when every header is empty); cells that read as numbers are right-aligned.
func htmlTable(_ headers: [String], _ rows: [[String]], cssClass: String = "data") -> String {
    func isNumber(_ cell: String) -> Bool { Double(cell.split(separator: " ").first.map(String.init) ?? "") != nil }
    var out = "<table class=\"\(cssClass)\">"
    if headers.contains(where: { !$0.isEmpty }) { out += "<thead><tr>" + headers.map { "<th>\(escapeMarkup($0))</th>" }.joined() + "</tr></thead>" }
    out += "<tbody>\n"
    for row in rows {
        out += "<tr>" + row.map { "<td\(isNumber($0) ? " class=\"num\"" : "")>\(escapeMarkup($0))</td>" }.joined() + "</tr>\n"
    }
    return out + "</tbody></table>\n"
}

/// A number with four significant digits, as every table of the report shows them.
func format(_ value: Double) -> String { String(format: "%.4g", value) }
