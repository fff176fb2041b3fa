/// Budgets as a user writes them: `latency=0.5x,params=2MB,macs=1.2G,activations=512KiB`.
///
/// Each comma-separated term limits one resource, absolutely or relative to the dense model
/// (`0.5x`). Units: latency `s`, `ms`, `us` (or `µs`); bytes `B`, `KB`/`kB`, `MB`, `GB` (powers of
/// 10^3) and `KiB`, `MiB`, `GiB` (powers of 2^10); MACs a plain number or `K`, `M`, `G` (10^3…).
/// A resource named twice gets the tighter of its limits once resolved.
public struct BudgetSpec: Codable, Hashable, Sendable {
    public enum Amount: Codable, Hashable, Sendable {
        /// In the resource's units (seconds, MACs, bytes).
        case absolute(Double)
        /// A multiple of the dense model's total.
        case relative(Double)
    }

    public struct Term: Codable, Hashable, Sendable {
        public var resource: Resource
        public var amount: Amount
        /// The term as written, for messages.
        public var text: String

        public init(resource: Resource, amount: Amount, text: String) {
            self.resource = resource
            self.amount = amount
            self.text = text
        }
    }

    public var terms: [Term]

    public init(terms: [Term]) { self.terms = terms }

    public init(parsing text: String) throws {
        let pieces = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces() }
        guard !(pieces.count == 1 && pieces[0].isEmpty) else {
            throw BudgetError("budget '': expected resource=amount terms separated by commas, e.g. latency=8ms,params=0.5x")
        }
        terms = try pieces.map(Self.term)
    }

    /// Absolute limits per resource, relative terms multiplied by `dense` (the unpruned model's
    /// totals, in the resource's units).
    public func resolve(dense: ResourceAmounts) throws -> ResourceAmounts {
        var limits: ResourceAmounts = [:]
        for term in terms {
            let limit: Double
            switch term.amount {
            case .absolute(let value): limit = value
            case .relative(let ratio):
                guard let total = dense[term.resource] else {
                    throw BudgetError("budget '\(term.text)': relative to the dense model, whose \(term.resource.budgetName) total is unknown")
                }
                limit = ratio * total
            }
            limits[term.resource] = min(limits[term.resource] ?? .infinity, limit)
        }
        return limits
    }

    private static func term(_ text: String) throws -> Term {
        let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw BudgetError("budget '\(text)': expected resource=amount, e.g. latency=8ms or params=0.5x")
        }
        let name = parts[0].trimmingSpaces().lowercased()
        guard let resource = Resource(budgetName: name) else {
            let valid = Resource.allCases.map(\.budgetName).joined(separator: ", ")
            throw BudgetError("budget '\(text)': unknown resource '\(parts[0].trimmingSpaces())'; expected one of \(valid)")
        }
        let written = parts[1].trimmingSpaces()
        guard let (number, unit) = splitNumber(written) else {
            throw BudgetError("budget '\(text)': expected \(expectation(resource))")
        }
        let amount: Amount
        if unit == "x" {
            amount = .relative(number)
        } else if let factor = unitFactors(resource)[unit] {
            amount = .absolute(number * factor)
        } else {
            throw BudgetError("budget '\(text)': expected \(expectation(resource))")
        }
        guard number > 0 else { throw BudgetError("budget '\(text)': the amount must be positive") }
        return Term(resource: resource, amount: amount, text: text)
    }

    private static func unitFactors(_ resource: Resource) -> [String: Double] {
        switch resource {
        case .latency: return ["s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6]
        case .macs: return ["": 1, "K": 1e3, "M": 1e6, "G": 1e9]
        case .paramBytes, .peakActivationBytes:
            return ["B": 1, "KB": 1e3, "kB": 1e3, "MB": 1e6, "GB": 1e9,
                    "KiB": 1024, "MiB": 1024 * 1024, "GiB": 1024 * 1024 * 1024]
        }
    }

    private static func expectation(_ resource: Resource) -> String {
        switch resource {
        case .latency: return "a number with ms/us/s or a ratio like 0.5x"
        case .macs: return "a number, optionally with K/M/G, or a ratio like 0.5x"
        case .paramBytes, .peakActivationBytes: return "a number with B/KB/MB/GB/KiB/MiB/GiB or a ratio like 0.5x"
        }
    }

    /// A plain decimal number (`12`, `0.5`, `.5`, `1e-3`) and the unit after it; nil when the text
    /// does not start with one.
    private static func splitNumber(_ text: String) -> (Double, String)? {
        let characters = Array(text)
        var end = 0, digits = 0
        while end < characters.count, characters[end].isASCIIDigit { end += 1; digits += 1 }
        if end < characters.count, characters[end] == "." {
            end += 1
            while end < characters.count, characters[end].isASCIIDigit { end += 1; digits += 1 }
        }
        guard digits > 0 else { return nil }
        if end < characters.count, characters[end] == "e" || characters[end] == "E" {
            var exponentEnd = end + 1
            if exponentEnd < characters.count, characters[exponentEnd] == "+" || characters[exponentEnd] == "-" { exponentEnd += 1 }
            let exponentStart = exponentEnd
            while exponentEnd < characters.count, characters[exponentEnd].isASCIIDigit { exponentEnd += 1 }
            if exponentEnd > exponentStart { end = exponentEnd }
        }
        guard let number = Double(String(characters[..<end])), number.isFinite else { return nil }
        return (number, String(characters[end...]).trimmingSpaces())
    }
}

/// A budget that cannot be parsed or resolved; the message quotes the term.
public struct BudgetError: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

private extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

private extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
