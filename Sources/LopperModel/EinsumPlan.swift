/// A parsed equation: each operand's axis labels, the output's, and every label's size.
public struct EinsumPlan: Sendable {
    /// Labels per operand axis; ellipsis axes get labels of their own.
    public let operandLabels: [[Character]]
    public let outputLabels: [Character]
    public let summedLabels: [Character]
    public let sizes: [Character: Int]

    public var outputShape: [Int] { outputLabels.map { sizes[$0]! } }

    public init(_ equation: String, shapes: [[Int]]) throws {
        let sides = equation.components(separatedBy: "->")
        guard sides.count <= 2 else { throw ModelError("equation '\(equation)' has more than one '->'", field: "attribute 'equation'") }
        let terms = sides[0].components(separatedBy: ",")
        guard terms.count == shapes.count else {
            throw ModelError("equation '\(equation)' names \(terms.count) operands, the node has \(shapes.count) inputs", field: "attribute 'equation'")
        }
        // Ellipsis axes are labelled by these (right-aligned, as they broadcast).
        let ellipsisPool = Array("ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠ")
        var broadcastRank = 0
        var parsed: [[Character]] = []
        for (term, shape) in zip(terms, shapes) {
            let explicit = term.replacingOccurrences(of: "...", with: "").count
            if term.contains("...") {
                let covered = shape.count - explicit
                guard covered >= 0, covered <= ellipsisPool.count else {
                    throw ModelError("term '\(term)' does not fit an operand of shape \(shape)", field: "attribute 'equation'")
                }
                broadcastRank = max(broadcastRank, covered)
            } else if explicit != shape.count {
                throw ModelError("term '\(term)' has \(explicit) labels for an operand of rank \(shape.count)", field: "attribute 'equation'")
            }
            parsed.append([])
        }
        let ellipsis = Array(ellipsisPool.prefix(broadcastRank))
        func expand(_ term: String, covering count: Int) throws -> [Character] {
            let parts = term.components(separatedBy: "...")
            for c in parts.joined() where !(c.isASCII && c.isLetter) { throw ModelError("'\(c)' is not a label", field: "attribute 'equation'") }
            return parts.count == 1 ? Array(term) : Array(parts[0]) + ellipsis.suffix(count) + Array(parts[1])
        }
        var sizes: [Character: Int] = [:]
        for (k, (term, shape)) in zip(terms, shapes).enumerated() {
            let labels = try expand(term, covering: shape.count - term.replacingOccurrences(of: "...", with: "").count)
            parsed[k] = labels
            for (label, size) in zip(labels, shape) {
                // A broadcast axis of size 1 yields to the other operands' size.
                if let known = sizes[label], known != size {
                    guard ellipsis.contains(label), known == 1 || size == 1 else {
                        throw ModelError("label '\(label)' has sizes \(known) and \(size)", field: "attribute 'equation'")
                    }
                    sizes[label] = max(known, size)
                } else {
                    sizes[label] = size
                }
            }
        }
        let output: [Character]
        if sides.count == 2 {
            output = try expand(sides[1], covering: broadcastRank)
            for label in output where sizes[label] == nil {
                throw ModelError("output label '\(label)' appears in no operand", field: "attribute 'equation'")
            }
            guard Set(output).count == output.count else { throw ModelError("an output label repeats", field: "attribute 'equation'") }
        } else {
            let counts = parsed.joined().reduce(into: [Character: Int]()) { $0[$1, default: 0] += 1 }
            output = ellipsis + counts.keys.filter { counts[$0] == 1 && !ellipsis.contains($0) }.sorted()
        }
        operandLabels = parsed
        outputLabels = output
        var seen = Set(output)
        summedLabels = parsed.joined().filter { seen.insert($0).inserted }
        self.sizes = sizes
    }
}
