import Foundation

/// Text for HTML and SVG: `&`, `<`, `>` and quotes escaped.
public func escapeMarkup(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(character)
        }
    }
    return out
}

/// The ten colours series are drawn in, in order (after the 10th, lines are dashed).
public enum Palette {
    public static let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    public static func color(_ index: Int) -> String { colors[index % colors.count] }
}

/// An SVG document written element by element. Every text given to it is escaped.
struct SVG {
    let width: Double
    let height: Double
    private(set) var body = ""

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    private static func n(_ value: Double) -> String { String(format: "%.1f", value) }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String = "#222",
                       width: Double = 1, dashed: Bool = false) {
        body += "<line x1=\"\(Self.n(x1))\" y1=\"\(Self.n(y1))\" x2=\"\(Self.n(x2))\" y2=\"\(Self.n(y2))\" stroke=\"\(stroke)\""
            + " stroke-width=\"\(width)\"\(dashed ? " stroke-dasharray=\"5 3\"" : "")/>\n"
    }

    mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, tooltip: String? = nil) {
        body += "<rect x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" width=\"\(Self.n(max(0, w)))\" height=\"\(Self.n(max(0, h)))\" fill=\"\(fill)\""
        body += tooltip.map { "><title>\(escapeMarkup($0))</title></rect>\n" } ?? "/>\n"
    }

    mutating func circle(_ x: Double, _ y: Double, radius: Double, fill: String, tooltip: String? = nil) {
        body += "<circle cx=\"\(Self.n(x))\" cy=\"\(Self.n(y))\" r=\"\(radius)\" fill=\"\(fill)\""
        body += tooltip.map { "><title>\(escapeMarkup($0))</title></circle>\n" } ?? "/>\n"
    }

    mutating func polyline(_ points: [(Double, Double)], stroke: String, dashed: Bool, tooltip: String) {
        let list = points.map { "\(Self.n($0.0)),\(Self.n($0.1))" }.joined(separator: " ")
        body += "<polyline fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"6 3\"" : "")"
            + " points=\"\(list)\"><title>\(escapeMarkup(tooltip))</title></polyline>\n"
    }

    enum Anchor: String { case start, middle, end }

    mutating func text(_ x: Double, _ y: Double, _ content: String, anchor: Anchor = .start, size: Double = 11,
                       bold: Bool = false, rotated: Bool = false, cssClass: String? = nil) {
        body += "<text x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" text-anchor=\"\(anchor.rawValue)\" font-size=\"\(size)\""
            + (bold ? " font-weight=\"bold\"" : "") + (rotated ? " transform=\"rotate(-90 \(Self.n(x)) \(Self.n(y)))\"" : "")
            + (cssClass.map { " class=\"\($0)\"" } ?? "") + ">\(escapeMarkup(content))</text>\n"
    }

    /// The document, with a white background and a title for screen readers and tooltips.
    func document(title: String, cssClass: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"\(cssClass)\" role=\"img\" width=\"\(Int(width))\" height=\"\(Int(height))\""
            + " viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\">\n<title>\(escapeMarkup(title))</title>\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\(body)</svg>"
    }
}

/// The rectangle data is drawn in, with the margins around it for the title, tick labels and
/// axis titles; draws the title, both axes with grid lines at the ticks, and a legend.
struct PlotArea {
    var left: Double, top: Double, right: Double, bottom: Double

    init(width: Double, height: Double, leftMargin: Double = 56, legendWidth: Double = 0) {
        left = leftMargin
        top = 30
        right = width - 12 - legendWidth
        bottom = height - 42
    }

    func title(_ svg: inout SVG, _ text: String) {
        svg.text(left, 18, text, size: 13, bold: true, cssClass: "chart-title")
    }

    /// A value axis along y: grid lines and labels at the scale's ticks, the title turned up.
    func yAxis(_ svg: inout SVG, _ scale: LinearScale, title: String) {
        for tick in scale.ticks {
            let y = scale.position(tick, from: bottom, to: top)
            svg.line(left, y, right, y, stroke: "#e3e3e3")
            svg.text(left - 5, y + 4, scale.label(tick), anchor: .end, size: 10, cssClass: "tick")
        }
        svg.line(left, top, left, bottom)
        svg.text(14, (top + bottom) / 2, title, anchor: .middle, size: 11, rotated: true, cssClass: "axis-title")
    }

    /// A value axis along x: ticks and labels below the area, the title under them.
    func xAxis(_ svg: inout SVG, _ scale: LinearScale, title: String) {
        for tick in scale.ticks {
            let x = scale.position(tick, from: left, to: right)
            svg.line(x, top, x, bottom, stroke: "#e3e3e3")
            svg.text(x, bottom + 14, scale.label(tick), anchor: .middle, size: 10, cssClass: "tick")
        }
        svg.line(left, bottom, right, bottom)
        svg.text((left + right) / 2, bottom + 32, title, anchor: .middle, size: 11, cssClass: "axis-title")
    }

    /// One line per entry to the right of the area: a swatch in the series' colour and its name.
    func legend(_ svg: inout SVG, _ entries: [(name: String, color: String, dashed: Bool)]) {
        let x = right + 14
        for (i, entry) in entries.enumerated() {
            let y = top + 6 + Double(i) * 15
            svg.line(x, y - 4, x + 16, y - 4, stroke: entry.color, width: 3, dashed: entry.dashed)
            svg.text(x + 21, y, entry.name, size: 10, cssClass: "legend")
        }
    }
}
