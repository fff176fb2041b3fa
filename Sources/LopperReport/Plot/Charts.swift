import Foundation

/// Width a legend needs for these names at the legend's font size.
func legendWidth(_ names: [String]) -> Double {
    names.isEmpty ? 0 : 34 + 6 * Double(names.map(\.count).max()!)
}

/// Lines (or points) of y against x on round-ticked axes, with a legend when there is more
/// than one series.
public struct LineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// Points only, for measurements that are not a curve (predicted against measured).
        public var markersOnly: Bool

        public init(name: String, points: [(x: Double, y: Double)], markersOnly: Bool = false) {
            self.name = name
            self.points = points
            self.markersOnly = markersOnly
        }
    }

    public var title: String
    public var xTitle: String
    public var yTitle: String
    public var series: [Series]
    public var width: Double = 420
    public var height: Double = 260
    /// A dashed y = x line (predicted against measured).
    public var diagonal = false

    public init(title: String, xTitle: String, yTitle: String, series: [Series], width: Double = 420, height: Double = 260, diagonal: Bool = false) {
        self.title = title
        self.xTitle = xTitle
        self.yTitle = yTitle
        self.series = series
        self.width = width
        self.height = height
        self.diagonal = diagonal
    }

    public func svg() -> String {
        let names = series.count > 1 ? series.map(\.name) : []
        var svg = SVG(width: width, height: height)
        let area = PlotArea(width: width, height: height, legendWidth: legendWidth(names))
        let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map(\.y) }
        let xScale = LinearScale(covering: diagonal ? xs + ys : xs), yScale = LinearScale(covering: diagonal ? xs + ys : ys)
        area.title(&svg, title)
        area.yAxis(&svg, yScale, title: yTitle)
        area.xAxis(&svg, xScale, title: xTitle)
        func point(_ p: (x: Double, y: Double)) -> (Double, Double) {
            (xScale.position(p.x, from: area.left, to: area.right), yScale.position(p.y, from: area.bottom, to: area.top))
        }
        if diagonal {
            let end = min(xScale.upper, yScale.upper)
            let (x0, y0) = point((0, 0)), (x1, y1) = point((end, end))
            svg.line(x0, y0, x1, y1, stroke: "#999", dashed: true)
        }
        for (i, line) in series.enumerated() {
            let color = Palette.color(i), dashed = i >= Palette.colors.count
            if !line.markersOnly && line.points.count > 1 {
                svg.polyline(line.points.map(point), stroke: color, dashed: dashed, tooltip: line.name)
            }
            for p in line.points {
                let (x, y) = point(p)
                svg.circle(x, y, radius: line.markersOnly ? 4 : 2.5, fill: color,
                           tooltip: "\(line.name): \(String(format: "%.4g", p.x)), \(String(format: "%.4g", p.y))")
            }
        }
        area.legend(&svg, names.enumerated().map { ($1, Palette.color($0), $0 >= Palette.colors.count) })
        return svg.document(title: title, cssClass: "chart line-chart")
    }
}

/// Horizontal bars, one row per category and one bar per series in it, on a round-ticked
/// value axis, with a legend when there is more than one series.
public struct BarChart: Sendable {
    public var title: String
    public var valueTitle: String
    public var categories: [String]
    /// Per series a value per category (nil: no bar).
    public var series: [(name: String, values: [Double?])]
    public var width: Double = 420
    /// A dashed vertical line at this value (the dense model's cost, say).
    public var reference: Double?

    public init(title: String, valueTitle: String, categories: [String], series: [(name: String, values: [Double?])],
                width: Double = 420, reference: Double? = nil) {
        self.title = title
        self.valueTitle = valueTitle
        self.categories = categories
        self.series = series
        self.width = width
        self.reference = reference
    }

    public func svg() -> String {
        let barHeight = 9.0, gap = 6.0
        let rowHeight = Double(series.count) * barHeight + gap
        let labelWidth = 12 + 6 * Double(categories.map(\.count).max() ?? 4)
        let height = 30 + 42 + Double(categories.count) * rowHeight
        let names = series.count > 1 ? series.map(\.name) : []
        var svg = SVG(width: width, height: height)
        let area = PlotArea(width: width, height: height, leftMargin: min(labelWidth, width / 2), legendWidth: legendWidth(names))
        let scale = LinearScale(covering: series.flatMap { $0.values.compactMap { $0 } } + (reference.map { [$0] } ?? []))
        area.title(&svg, title)
        area.xAxis(&svg, scale, title: valueTitle)
        for (row, category) in categories.enumerated() {
            let top = area.top + Double(row) * rowHeight + gap / 2
            svg.text(area.left - 5, top + rowHeight / 2, category, anchor: .end, size: 10, cssClass: "category")
            for (s, line) in series.enumerated() {
                guard let value = line.values[row] else { continue }
                let x0 = scale.position(0, from: area.left, to: area.right), x1 = scale.position(value, from: area.left, to: area.right)
                svg.rect(min(x0, x1), top + Double(s) * barHeight, abs(x1 - x0), barHeight - 1, fill: Palette.color(s),
                         tooltip: "\(category) · \(line.name): \(String(format: "%.4g", value))")
            }
        }
        if let reference {
            let x = scale.position(reference, from: area.left, to: area.right)
            svg.line(x, area.top, x, area.bottom, stroke: "#444", dashed: true)
        }
        area.legend(&svg, names.enumerated().map { ($1, Palette.color($0), false) })
        return svg.document(title: title, cssClass: "chart bar-chart")
    }
}

/// A grid of cells coloured by value (light: low, dark: high), rows × columns, with a colour
/// bar showing the scale's round ticks; missing values are grey and hatched by their title.
public struct HeatMap: Sendable {
    public var title: String
    public var rows: [String]
    public var columns: [String]
    public var values: [[Double?]]
    public var valueTitle: String

    public init(title: String, rows: [String], columns: [String], values: [[Double?]], valueTitle: String) {
        self.title = title
        self.rows = rows
        self.columns = columns
        self.values = values
        self.valueTitle = valueTitle
    }

    /// Light yellow through orange to dark red, for t in 0...1.
    static func color(_ t: Double) -> String {
        let stops: [(Double, Double, Double)] = [(255, 247, 188), (254, 153, 41), (204, 76, 2), (102, 37, 6)]
        let position = min(max(t, 0), 1) * Double(stops.count - 1)
        let i = min(Int(position), stops.count - 2), f = position - Double(i)
        let (a, b) = (stops[i], stops[i + 1])
        return String(format: "#%02x%02x%02x", Int((a.0 + (b.0 - a.0) * f).rounded()), Int((a.1 + (b.1 - a.1) * f).rounded()),
                      Int((a.2 + (b.2 - a.2) * f).rounded()))
    }

    public func svg() -> String {
        let cell = (width: 44.0, height: 16.0)
        let labelWidth = 12 + 6 * Double(rows.map(\.count).max() ?? 4)
        let width = labelWidth + Double(columns.count) * cell.width + 90
        let height = 46 + max(60, Double(rows.count) * cell.height) + 30
        var svg = SVG(width: width, height: height)
        let scale = LinearScale(covering: values.flatMap { $0.compactMap { $0 } }, targetTicks: 4)
        let top = 46.0
        svg.text(labelWidth, 18, title, size: 13, bold: true, cssClass: "chart-title")
        for (c, column) in columns.enumerated() {
            svg.text(labelWidth + (Double(c) + 0.5) * cell.width, top - 5, column, anchor: .middle, size: 10, cssClass: "tick")
        }
        for (r, row) in rows.enumerated() {
            let y = top + Double(r) * cell.height
            svg.text(labelWidth - 5, y + cell.height - 4, row, anchor: .end, size: 10, cssClass: "category")
            for (c, value) in values[r].enumerated() {
                let x = labelWidth + Double(c) * cell.width
                let fill = value.map { Self.color((($0 - scale.lower) / (scale.upper - scale.lower))) } ?? "#d9d9d9"
                svg.rect(x, y, cell.width - 1, cell.height - 1, fill: fill,
                         tooltip: "\(row) at \(columns[c]): " + (value.map { String(format: "%.4g", $0) } ?? "not measured"))
            }
        }
        svg.text(labelWidth + Double(columns.count) * cell.width / 2, top + Double(rows.count) * cell.height + 18,
                 "pruned fraction", anchor: .middle, size: 11, cssClass: "axis-title")
        // The colour bar, low at the bottom, with the scale's ticks beside it.
        let barX = labelWidth + Double(columns.count) * cell.width + 14, barHeight = max(60, Double(rows.count) * cell.height)
        for step in 0..<20 {
            let t = Double(step) / 20
            svg.rect(barX, top + barHeight * (1 - t - 0.05), 12, barHeight / 20 + 0.5, fill: Self.color(t + 0.025))
        }
        for tick in scale.ticks {
            svg.text(barX + 16, scale.position(tick, from: top + barHeight, to: top) + 4, scale.label(tick), size: 10, cssClass: "tick")
        }
        svg.text(barX, top - 5, valueTitle, size: 10, cssClass: "legend")
        return svg.document(title: title, cssClass: "chart heat-map")
    }
}
