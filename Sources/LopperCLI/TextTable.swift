/// A plain-text table with right-aligned numeric columns, for terminal output.
struct TextTable {
    var headers: [String]
    /// Columns (by index) whose cells are aligned to the right.
    var rightAligned: Set<Int> = []
    private(set) var rows: [[String]] = []

    init(_ headers: [String], rightAligned: Set<Int> = []) {
        self.headers = headers
        self.rightAligned = rightAligned
    }

    mutating func append(_ row: [String]) { rows.append(row) }

    func render() -> String {
        let widths = headers.indices.map { column in
            ([headers] + rows).map { $0[column].count }.max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return rightAligned.contains(column) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(headers), rule] + rows.map(line)).joined(separator: "\n")
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}

enum Format {
    /// 1234567 → "1,234,567".
    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// 1234567 → "1.23M" (K, M, G, T powers of 1000).
    static func short(_ value: Int) -> String {
        let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")]
        let v = Double(value)
        for (scale, suffix) in units where v >= scale {
            return String(format: "%.2f%@", v / scale, suffix)
        }
        return String(value)
    }

    /// Bytes with binary units: 5_000_000 → "4.77 MiB".
    static func bytes(_ value: Int) -> String {
        let units = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (scale, suffix) in units where value >= scale {
            return String(format: "%.2f %@", Double(value) / Double(scale), suffix)
        }
        return "\(value) B"
    }
}
