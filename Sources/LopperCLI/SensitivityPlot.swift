import Foundation
import LopperSensitivity

/// Sensitivity curves as an SVG document: one chart per granularity and criterion, one line per
/// group (score against level), a legend naming the groups.
enum SensitivityPlot {
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    static func svg(_ rows: [ResultsStore.Row], names: [Int: String], metric: String) -> String {
        let kinds = Array(Set(rows.map { "\($0.job.granularity.rawValue) / \($0.job.criterion)" })).sorted()
        let (width, chartHeight, legendWidth) = (900.0, 420.0, 260.0)
        var body = ""
        for (k, kind) in kinds.enumerated() {
            let selected = rows.filter { "\($0.job.granularity.rawValue) / \($0.job.criterion)" == kind && $0.state == .done }
            let top = 20 + Double(k) * (chartHeight + 40)
            body += chart(selected, names: names, title: "\(kind) — \(metric)", x: 60, y: top,
                          width: width - legendWidth - 80, height: chartHeight - 60, legendX: width - legendWidth)
        }
        let height = 20 + Double(kinds.count) * (chartHeight + 40)
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            \(body)</svg>
            """
    }

    private static func chart(_ rows: [ResultsStore.Row], names: [Int: String], title: String,
                              x: Double, y: Double, width: Double, height: Double, legendX: Double) -> String {
        let scores = rows.compactMap(\.score).filter(\.isFinite)
        let maxScore = max(scores.max() ?? 1, 1e-12)
        func px(_ level: Double) -> Double { x + level * width }
        func py(_ score: Double) -> Double { y + 20 + height - min(score, maxScore) / maxScore * height }
        var out = "<text x=\"\(x)\" y=\"\(y + 10)\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>\n"
        out += "<line x1=\"\(x)\" y1=\"\(y + 20 + height)\" x2=\"\(x + width)\" y2=\"\(y + 20 + height)\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(x)\" y1=\"\(y + 20)\" x2=\"\(x)\" y2=\"\(y + 20 + height)\" stroke=\"black\"/>\n"
        for tick in 0...10 {
            let level = Double(tick) / 10, value = maxScore * Double(tick) / 10
            out += "<text x=\"\(px(level))\" y=\"\(y + 35 + height)\" text-anchor=\"middle\">\(String(format: "%.1f", level))</text>\n"
            out += "<text x=\"\(x - 5)\" y=\"\(py(value) + 4)\" text-anchor=\"end\">\(String(format: "%.3g", value))</text>\n"
        }
        out += "<text x=\"\(x + width / 2)\" y=\"\(y + 50 + height)\" text-anchor=\"middle\">pruned fraction</text>\n"
        let groups = Array(Set(rows.map(\.job.group))).sorted()
        for (i, group) in groups.enumerated() {
            let color = palette[i % palette.count], dash = i >= palette.count ? " stroke-dasharray=\"4 3\"" : ""
            let points = rows.filter { $0.job.group == group }.sorted { $0.job.level < $1.job.level }
                .compactMap { row in row.score.map { String(format: "%.1f,%.1f", px(row.job.level), py($0)) } }
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\"\(dash) points=\"\(points.joined(separator: " "))\"><title>\(escape(names[group] ?? "group \(group)"))</title></polyline>\n"
            let ly = y + 20 + Double(i) * 13
            if ly + 13 >= y + 20 + height, i < groups.count - 1 {
                if ly < y + 20 + height { out += "<text x=\"\(legendX)\" y=\"\(ly)\">… \(groups.count - i) more (hover a line for its name)</text>\n" }
            } else if ly < y + 20 + height {
                out += "<line x1=\"\(legendX)\" y1=\"\(ly - 4)\" x2=\"\(legendX + 18)\" y2=\"\(ly - 4)\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>"
                out += "<text x=\"\(legendX + 24)\" y=\"\(ly)\">\(group) \(escape(names[group] ?? ""))</text>\n"
            }
        }
        return out
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
