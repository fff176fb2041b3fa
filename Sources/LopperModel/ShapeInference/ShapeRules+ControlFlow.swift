/// Shape rules for If, Loop and Scan: each body is inferred from the facts of what it reads.
enum ControlFlowRules {
    /// A known condition selects one branch (so its values, such as folded shapes, carry over);
    /// otherwise the two branches' facts are merged.
    static func `if`(_ c: ShapeContext) throws -> [ValueFacts] {
        let chosen = c.intValues(0)?.first.map { [$0 != 0 ? "then_branch" : "else_branch"] }
        let results = try (chosen ?? ["then_branch", "else_branch"]).map { try body(c, $0, declared: []) }
        guard results.allSatisfy({ $0.count == c.node.outputs.count }) else {
            throw ModelError("then_branch and else_branch must each give \(c.node.outputs.count) outputs")
        }
        return results.dropFirst().reduce(results[0]) { zip($0, $1).map(merge) }
    }

    /// Carried values keep what is common to their initial value and the body's result; scan
    /// outputs gain a leading axis of unknown length.
    static func loop(_ c: ShapeContext) throws -> [ValueFacts] {
        let carried = Array(c.inputs.dropFirst(2)).map { $0 ?? .unknown }
        let iteration = ValueFacts(TensorType(.int64, [])), condition = ValueFacts(TensorType(.bool, []))
        let outputs = try body(c, "body", declared: [iteration, condition] + carried.map(loosened))
        guard outputs.count >= 1 + carried.count else { throw ModelError("the body gives fewer outputs than cond and the carried values") }
        let final = zip(carried, outputs[1...]).map { merge($0, $1) }
        let scans = outputs.dropFirst(1 + carried.count).map { stacked($0, length: .unknown, axis: 0) }
        return final + scans
    }

    static func scan(_ c: ShapeContext) throws -> [ValueFacts] {
        guard let scanInputs = try c.node.int("num_scan_inputs"), scanInputs > 0, scanInputs <= c.inputs.count else {
            throw ModelError("must be positive and at most the number of inputs", field: "attribute 'num_scan_inputs'")
        }
        let all = c.inputs.map { $0 ?? .unknown }
        let states = Array(all.prefix(all.count - scanInputs)), sequences = Array(all.suffix(scanInputs))
        let inputAxes = try c.node.ints("scan_input_axes") ?? []
        var length = Dim.unknown
        let elements = try sequences.enumerated().map { k, facts -> ValueFacts in
            guard var shape = facts.shape else { return ValueFacts(TensorType(elementType: facts.elementType, shape: nil)) }
            let axis = try normalizedAxis(k < inputAxes.count ? inputAxes[k] : 0, rank: shape.count)
            if k == 0 { length = shape[axis] }
            shape.remove(at: axis)
            return ValueFacts(TensorType(elementType: facts.elementType, shape: shape))
        }
        let outputs = try body(c, "body", declared: states.map(loosened) + elements)
        guard outputs.count >= states.count else { throw ModelError("the body gives fewer outputs than it has states") }
        let outputAxes = try c.node.ints("scan_output_axes") ?? []
        let scans = try outputs.dropFirst(states.count).enumerated().map { k, facts in
            let rank = (facts.shape?.count ?? 0) + 1
            return stacked(facts, length: length, axis: try normalizedAxis(k < outputAxes.count ? outputAxes[k] : 0, rank: rank))
        }
        return zip(states, outputs).map { merge($0, $1) } + scans
    }

    /// Infers a body with `declared` facts for its declared inputs and the enclosing scope's
    /// facts for the rest; the facts of its outputs.
    private static func body(_ c: ShapeContext, _ attribute: String, declared: [ValueFacts]) throws -> [ValueFacts] {
        let graph = try c.graph.subgraph(of: c.node, attribute: attribute)
        var given: [String: ValueFacts] = [:]
        for (position, input) in graph.feedInputs.enumerated() {
            given[input.name] = position < declared.count ? declared[position] : (c.scope[input.name] ?? .unknown)
        }
        let table: ShapeTable
        do { table = try ShapeInference.infer(graph, opset: c.opset, given: given) } catch let error as ModelError {
            throw ModelError([error.node.map { "node \($0)" }, error.field, error.message].compactMap { $0 }.joined(separator: ": "), field: "attribute '\(attribute)'")
        }
        return graph.outputs.map { output in table.facts[output.name] ?? output.type.map { ValueFacts($0) } ?? .unknown }
    }

    /// What two values have in common: the element type if equal, and each axis that agrees.
    static func merge(_ a: ValueFacts, _ b: ValueFacts) -> ValueFacts {
        if a == b { return a }
        let type = a.elementType == b.elementType ? a.elementType : nil
        guard let p = a.shape, let q = b.shape, p.count == q.count else { return ValueFacts(TensorType(elementType: type, shape: nil)) }
        return ValueFacts(TensorType(elementType: type, shape: zip(p, q).map { $0 == $1 ? $0 : .unknown }))
    }

    /// A carried value as the body sees it on a later iteration: type and rank only.
    private static func loosened(_ facts: ValueFacts) -> ValueFacts {
        ValueFacts(TensorType(elementType: facts.elementType, shape: facts.shape.map { $0.map { _ in .unknown } }))
    }

    private static func stacked(_ facts: ValueFacts, length: Dim, axis: Int) -> ValueFacts {
        guard var shape = facts.shape else { return ValueFacts(TensorType(elementType: facts.elementType, shape: nil)) }
        shape.insert(length, at: min(axis, shape.count))
        return ValueFacts(TensorType(elementType: facts.elementType, shape: shape))
    }
}
