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

    /// Carried values whose facts the body preserves keep them (by induction, on every
    /// iteration); the others keep what the initial value and the body's result have in common.
    /// Scan outputs gain a leading axis: the trip count when the loop provably runs it out (its
    /// condition known to stay true), unknown otherwise.
    static func loop(_ c: ShapeContext) throws -> [ValueFacts] {
        let carried = Array(c.inputs.dropFirst(2)).map { $0 ?? .unknown }
        let iteration = ValueFacts(TensorType(.int64, []))
        let alwaysTrue = ValueFacts(TensorType(.bool, []), ints: [.value(1)])
        let condition = c.optionalInput(1).map { $0.intValues == [1] ? alwaysTrue : $0 } ?? alwaysTrue
        var outputs = try body(c, "body", declared: [iteration, condition] + carried)
        guard outputs.count >= 1 + carried.count else { throw ModelError("the body gives fewer outputs than cond and the carried values") }
        let stable = zip(carried, outputs[1...]).allSatisfy { $0.type == $1.type }
        if !stable { outputs = try body(c, "body", declared: [iteration, condition] + carried.map(loosened)) }
        let final = zip(carried, outputs[1...]).map { stable ? $1 : merge($0, $1) }
        let trips = c.intValues(0)?.first.flatMap { stable && outputs[0].intValues == [1] && condition.intValues == [1] ? Dim.value($0) : nil }
        let scans = outputs.dropFirst(1 + carried.count).map { stacked($0, length: trips ?? .unknown, axis: 0) }
        return final + scans
    }

    static func scan(_ c: ShapeContext) throws -> [ValueFacts] {
        // Before opset 9, input 0 is sequence_lens and every other input has a batch axis first.
        let batched = c.opset < 9
        guard let scanInputs = try c.node.int("num_scan_inputs"), scanInputs > 0, scanInputs <= c.inputs.count - (batched ? 1 : 0) else {
            throw ModelError("must be positive and at most the number of inputs", field: "attribute 'num_scan_inputs'")
        }
        if batched { return try batchedScan(c, scanInputs: scanInputs) }
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

    /// Scan at opset 8: the body sees each batch entry (states without the batch axis, scan
    /// inputs without batch and step axes); outputs put the batch back first, then the steps.
    private static func batchedScan(_ c: ShapeContext, scanInputs: Int) throws -> [ValueFacts] {
        let all = c.inputs.dropFirst().map { $0 ?? .unknown }
        let stateCount = all.count - scanInputs
        var batch = Dim.unknown, steps = Dim.unknown
        let declared = all.enumerated().map { k, facts -> ValueFacts in
            let dropped = k < stateCount ? 1 : 2
            guard let shape = facts.shape, shape.count >= dropped else { return ValueFacts(TensorType(elementType: facts.elementType, shape: nil)) }
            if k == stateCount { (batch, steps) = (shape[0], shape[1]) }
            return ValueFacts(TensorType(elementType: facts.elementType, shape: Array(shape.dropFirst(dropped))))
        }
        let outputs = try body(c, "body", declared: declared.prefix(stateCount).map(loosened) + declared.dropFirst(stateCount))
        guard outputs.count >= stateCount else { throw ModelError("the body gives fewer outputs than it has states") }
        return outputs.enumerated().map { k, facts in
            let entry = k < stateCount ? merge(declared[k], facts) : stacked(facts, length: steps, axis: 0)
            return stacked(entry, length: batch, axis: 0)
        }
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
