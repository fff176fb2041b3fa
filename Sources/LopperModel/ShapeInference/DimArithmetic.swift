/// Dimension arithmetic that never traps: unknown operands give unknown results, and numeric
/// overflow (possible with a corrupt model) is an error rather than a crash.
extension Dim {
    /// Applies `op` (e.g. `Int.multipliedReportingOverflow`) and throws on overflow.
    static func checked(_ op: (Int) -> (Int) -> (partialValue: Int, overflow: Bool), _ a: Int, _ b: Int) throws -> Int {
        let (result, overflow) = op(a)(b)
        guard !overflow else { throw ModelError("dimension arithmetic overflows (\(a), \(b))") }
        return result
    }

    static func + (a: Dim, b: Dim) throws -> Dim {
        if case .value(0) = b { return a }
        if case .value(0) = a { return b }
        guard let x = a.value, let y = b.value else { return .unknown }
        return .value(try checked(Int.addingReportingOverflow, x, y))
    }

    static func - (a: Dim, b: Dim) throws -> Dim {
        if case .value(0) = b { return a }
        guard let x = a.value, let y = b.value else { return .unknown }
        return .value(try checked(Int.subtractingReportingOverflow, x, y))
    }

    static func * (a: Dim, b: Dim) throws -> Dim {
        if case .value(1) = b { return a }
        if case .value(1) = a { return b }
        guard let x = a.value, let y = b.value else { return .unknown }
        return .value(try checked(Int.multipliedReportingOverflow, x, y))
    }

    /// Division rounding toward negative infinity, as shape formulas use.
    static func floorDiv(_ a: Dim, _ b: Dim) throws -> Dim {
        if case .value(1) = b { return a }
        guard let x = a.value, let y = b.value else { return .unknown }
        guard y != 0 else { throw ModelError("division by zero in shape arithmetic") }
        guard !(x == .min && y == -1) else { throw ModelError("dimension arithmetic overflows") }
        let q = x / y
        return .value((x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q)
    }

    static func ceilDiv(_ a: Dim, _ b: Dim) throws -> Dim {
        guard let y = b.value else { return .unknown }
        return try floorDiv(try a + .value(y - 1), b)
    }

    /// Product of dimensions; unknown when any is not a number.
    static func product<S: Sequence>(_ dims: S) throws -> Dim where S.Element == Dim {
        try dims.reduce(Dim.value(1)) { try $0 * $1 }
    }
}

/// Numpy-style multidirectional broadcasting of shapes.
func broadcast(_ shapes: [[Dim]?]) throws -> [Dim]? {
    var result: [Dim] = []
    for shape in shapes {
        guard let shape else { return nil }
        result = try broadcastPair(result, shape)
    }
    return result
}

private func broadcastPair(_ a: [Dim], _ b: [Dim]) throws -> [Dim] {
    let rank = max(a.count, b.count)
    return try (0..<rank).map { i -> Dim in
        let x = i < rank - a.count ? Dim.value(1) : a[i - (rank - a.count)]
        let y = i < rank - b.count ? Dim.value(1) : b[i - (rank - b.count)]
        if x == y { return x }
        if x == .value(1) { return y }
        if y == .value(1) { return x }
        if let p = x.value, let q = y.value {
            throw ModelError("cannot broadcast shapes \(a) and \(b): \(p) against \(q)")
        }
        // A known size other than 1 wins over a symbol (which must then equal it at run time).
        if x.value != nil { return x }
        if y.value != nil { return y }
        return .unknown
    }
}

/// Resolves a possibly negative axis against a rank, or fails naming the attribute.
func normalizedAxis(_ axis: Int, rank: Int, name: String = "axis") throws -> Int {
    let resolved = axis < 0 ? axis + rank : axis
    guard resolved >= 0, resolved < rank else {
        throw ModelError("\(name) \(axis) is out of range for rank \(rank)")
    }
    return resolved
}
