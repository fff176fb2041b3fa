/// Shape rules for RNN, GRU and LSTM.
enum RecurrentRules {
    /// Y `[steps, directions, batch, hidden]`, Y_h (and Y_c) `[directions, batch, hidden]`; with
    /// layout 1 the batch comes first: `[batch, steps, directions, hidden]`, `[batch, directions, hidden]`.
    static func recurrent(_ c: ShapeContext) throws -> [ValueFacts] {
        guard let cell = RecurrentCell(c.node) else { throw ModelError("is not a recurrent operator") }
        let attributes = try RecurrentAttributes(c.node, cell: cell)
        let x = try c.input(0)
        let directions = Dim.value(attributes.direction.passes.count)
        let r = try c.shape(2)
        if let r, r.count != 3 { throw ModelError("R must be 3-D, found \(r)") }
        let hidden = attributes.hiddenSize.map(Dim.value) ?? r?[2] ?? .unknown
        if let w = try c.shape(1), w.count == 3, let rows = w[1].value, let size = hidden.value, rows != cell.gateCount * size {
            throw ModelError("W has \(rows) rows; \(cell.op) with hidden_size \(size) needs \(cell.gateCount * size)")
        }
        let outputs: [[Dim]?]
        if let xs = x.shape {
            guard xs.count == 3 else { throw ModelError("X must be 3-D, found \(xs)") }
            let (steps, batch) = attributes.batchFirst ? (xs[1], xs[0]) : (xs[0], xs[1])
            let state = attributes.batchFirst ? [batch, directions, hidden] : [directions, batch, hidden]
            let y = attributes.batchFirst ? [batch, steps, directions, hidden] : [steps, directions, batch, hidden]
            outputs = [y, state, state]
        } else {
            outputs = [nil, nil, nil]
        }
        return c.node.outputs.indices.map { k in
            ValueFacts(TensorType(elementType: x.elementType, shape: k < outputs.count ? outputs[k] : nil))
        }
    }
}
