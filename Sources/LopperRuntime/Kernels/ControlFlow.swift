import Foundation
import LopperModel

/// If, Loop and Scan. Each body is planned once, at load, as an executor of its own; the values
/// it reads from enclosing scopes arrive after the node's declared inputs (see `Plan`).
enum ControlFlowKernels {
    static let all: [KernelVersion] = [
        KernelVersion("If") { setup in
            If(thenBranch: try Body(setup, "then_branch"), elseBranch: try Body(setup, "else_branch"))
        },
        KernelVersion("Loop") { setup in Loop(body: try Body(setup, "body")) },
        // Opset 8's Scan had a batch axis on every input and a leading sequence_lens input.
        KernelVersion("Scan", since: 8) { setup in
            BatchedScan(scan: Scan(body: try Body(setup, "body"), scanInputs: try scanInputCount(setup.node),
                                   inputAxes: nil, inputReversed: try setup.node.ints("directions"), outputAxes: nil, outputReversed: nil))
        },
        KernelVersion("Scan", since: 9) { setup in
            let node = setup.node
            return Scan(body: try Body(setup, "body"), scanInputs: try scanInputCount(node),
                        inputAxes: try node.ints("scan_input_axes"), inputReversed: try node.ints("scan_input_directions"),
                        outputAxes: try node.ints("scan_output_axes"), outputReversed: try node.ints("scan_output_directions"))
        },
    ]

    /// A planned subgraph and where its outer-scope inputs come from among the node's inputs.
    struct Body {
        let attribute: String
        let executor: Executor
        /// Declared body inputs, fed by the operator.
        let declared: [String]
        /// Outer-scope names the body reads, with their position among the node's inputs.
        let outer: [(name: String, position: Int)]

        init(_ setup: KernelSetup, _ attribute: String) throws {
            self.attribute = attribute
            let node = setup.node
            let model = try setup.model.subgraph(of: node, attribute: attribute)
            let declaredCount = Graph.declaredInputCount(of: node, attribute: attribute)
            do {
                executor = try Executor(model: model, options: ExecutorOptions(threads: 1))
            } catch let error as ModelError {
                throw ModelError(Body.describe(error), field: "attribute '\(attribute)'")
            }
            let names = executor.inputs.map(\.name)
            declared = Array(names.prefix(declaredCount))
            let implicit = node.implicitInputs
            outer = names.dropFirst(declaredCount).map { name in
                (name, node.inputs.count + implicit.firstIndex(of: name)!)
            }
        }

        var outputCount: Int { executor.outputNames.count }

        /// Runs the body on `values` for its declared inputs; its outputs in order.
        func run(_ values: [Tensor], _ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            guard values.count == declared.count else {
                throw ModelError("\(attribute) declares \(declared.count) inputs, the operator feeds it \(values.count)")
            }
            var feeds = Dictionary(uniqueKeysWithValues: zip(declared, values))
            for (name, position) in outer {
                guard let value = inputs.optional(position) else { throw ModelError("outer-scope value '\(name)' read by \(attribute) is missing") }
                feeds[name] = value
            }
            let results: [String: Tensor]
            do { results = try executor.run(feeds, in: context) } catch let error as ModelError {
                throw ModelError(Body.describe(error), field: "attribute '\(attribute)'")
            }
            return executor.outputNames.map { results[$0]! }
        }

        /// The values body output `output` took on each iteration, stacked along a new `axis`;
        /// with no iteration, an empty tensor of the output's declared type and shape.
        func stack(_ items: [Tensor], output: Int, axis: Int) throws -> Tensor {
            guard items.isEmpty else { return try SliceStack.stack(items, axis: axis) }
            let declared = executor.outputTypes[output]
            var shape = declared?.concreteShape ?? []
            shape.insert(0, at: min(axis, shape.count))
            return try Tensor(uninitialized: declared?.elementType ?? .float32, shape: shape)
        }

        /// An error inside a body, with the inner node kept in the message.
        private static func describe(_ error: ModelError) -> String {
            [error.node.map { "node \($0)" }, error.field, error.message].compactMap { $0 }.joined(separator: ": ")
        }
    }

    struct If: Kernel {
        let thenBranch: Body, elseBranch: Body

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let condition = try inputs.required(0)
            guard condition.count == 1 else { throw ModelError("the condition must hold one element, found \(condition.shape)") }
            return try (condition.bools[0] ? thenBranch : elseBranch).run([], inputs, context)
        }
    }

    /// Loop: `M` (trip count) and `cond` may each be omitted; the body maps (iteration, cond,
    /// carried…) to (cond, carried…, scan outputs…), the scan outputs stacked on a new first axis.
    struct Loop: Kernel {
        let body: Body
        /// A loop with no trip count that runs this long is taken to be stuck rather than left to hang.
        static let untilLimit: Int64 = 10_000_000

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let tripCount = try inputs.optional(0).map { try scalarInt($0, "M") }
            var condition = try inputs.optional(1).map { try scalarBool($0, "cond") } ?? true
            let carriedCount = body.declared.count - 2
            guard carriedCount >= 0, body.outputCount >= carriedCount + 1 else {
                throw ModelError("the body must take (iteration, cond, carried…) and give (cond, carried…, scan outputs…)")
            }
            var carried: [Tensor] = []
            for k in 0..<carriedCount {
                guard let value = inputs.optional(2 + k) else { throw ModelError("loop-carried input \(2 + k) is missing") }
                carried.append(value)
            }
            let scanCount = body.outputCount - 1 - carriedCount
            var scanned = [[Tensor]](repeating: [], count: scanCount)
            var iteration: Int64 = 0
            while condition && tripCount.map({ iteration < $0 }) ?? true {
                if tripCount == nil && iteration >= Self.untilLimit {
                    throw ModelError("ran \(Self.untilLimit) iterations without a trip count and its condition is still true")
                }
                let results = try body.run([Tensor(int64s: [iteration], shape: []), Tensor(bools: [condition], shape: [])] + carried, inputs, context)
                condition = try scalarBool(results[0], "the body's condition output")
                carried = Array(results[1..<(1 + carriedCount)])
                for k in 0..<scanCount { scanned[k].append(results[1 + carriedCount + k]) }
                iteration += 1
            }
            return carried + (try scanned.enumerated().map { k, items in try body.stack(items, output: 1 + carriedCount + k, axis: 0) })
        }
    }

    /// Scan: states threaded through the body, scan inputs sliced along their axes and scan
    /// outputs stacked along theirs, in either direction.
    struct Scan: Kernel {
        let body: Body
        let scanInputs: Int
        let inputAxes: [Int]?, inputReversed: [Int]?
        let outputAxes: [Int]?, outputReversed: [Int]?

        var stateCount: Int { body.declared.count - scanInputs }

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            try checkCounts()
            let states = try (0..<stateCount).map { try inputs.required($0) }
            let sequences = try (0..<scanInputs).map { try inputs.required(stateCount + $0) }
            let axes = try sequences.enumerated().map { k, t in try normalizeAxis(inputAxes?[safe: k] ?? 0, rank: t.rank, "scan_input_axes") }
            guard let length = sequences.first.map({ $0.shape[axes[0]] }) else { return states }
            let (final, scanned) = try iterate(states, sequences, axes: axes, length: length, inputs, context)
            return final + (try scanned.enumerated().map { k, items in
                let ordered = (outputReversed?[safe: k] ?? 0) != 0 ? Array(items.reversed()) : items
                let rank = (items.first?.rank ?? body.executor.outputTypes[stateCount + k]?.shape?.count ?? 0) + 1
                return try body.stack(ordered, output: stateCount + k, axis: normalizeAxis(outputAxes?[safe: k] ?? 0, rank: rank, "scan_output_axes"))
            })
        }

        func checkCounts() throws {
            guard stateCount >= 0, body.outputCount >= stateCount else {
                throw ModelError("the body takes \(body.declared.count) inputs, fewer than num_scan_inputs \(scanInputs)")
            }
        }

        /// Runs the body over the first `length` elements of the sequences along `axes` (a
        /// reversed input is read from element `length - 1` down), threading the states; the
        /// final states and each scan output's values in iteration order.
        func iterate(_ initial: [Tensor], _ sequences: [Tensor], axes: [Int], length: Int, _ inputs: [Tensor?],
                     _ context: ExecutionContext) throws -> (states: [Tensor], scanned: [[Tensor]]) {
            for (k, t) in sequences.enumerated() where t.shape[axes[k]] < length || (k > 0 && t.shape[axes[k]] != sequences[0].shape[axes[0]]) {
                throw ModelError("scan input \(k) has \(t.shape[axes[k]]) elements along its axis, scan input 0 has \(sequences[0].shape[axes[0]])")
            }
            var states = initial
            var scanned = [[Tensor]](repeating: [], count: body.outputCount - stateCount)
            for step in 0..<length {
                let elements = try sequences.enumerated().map { k, t in
                    try SliceStack.slice(t, axis: axes[k], index: (inputReversed?[safe: k] ?? 0) != 0 ? length - 1 - step : step)
                }
                let results = try body.run(states + elements, inputs, context)
                states = Array(results[..<stateCount])
                for k in scanned.indices { scanned[k].append(results[stateCount + k]) }
            }
            return (states, scanned)
        }
    }

    /// Scan before opset 9: input 0 is the optional `sequence_lens` ([batch]), every state and
    /// scan input has a leading batch axis (scan inputs [batch, steps, …]), and each batch
    /// entry is scanned on its own for its length; scan outputs are [batch, steps, …], zero
    /// past an entry's length.
    struct BatchedScan: Kernel {
        let scan: Scan

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            try scan.checkCounts()
            let states = try (0..<scan.stateCount).map { try inputs.required(1 + $0) }
            let sequences = try (0..<scan.scanInputs).map { try inputs.required(1 + scan.stateCount + $0) }
            guard let first = sequences.first, first.rank >= 2 else { throw ModelError("scan input 0 must be [batch, steps, …]") }
            let (batch, steps) = (first.shape[0], first.shape[1])
            for (k, t) in (states + sequences).enumerated() where t.rank < 1 || t.shape[0] != batch {
                throw ModelError("input \(1 + k) has shape \(t.shape), not batch \(batch) on axis 0 like scan input 0")
            }
            var lengths = [Int](repeating: steps, count: batch)
            if let given = inputs.optional(0) {
                guard given.kind == .int64, given.count == batch else {
                    throw ModelError("sequence_lens must hold \(batch) integers, found \(given)")
                }
                lengths = (0..<batch).map { Int(given.i[$0]) }
                if let bad = lengths.first(where: { $0 < 0 || $0 > steps }) {
                    throw ModelError("sequence_lens holds \(bad), outside 0...\(steps)")
                }
            }
            var finals: [[Tensor]] = [], scans: [[[Tensor]]] = []
            for b in 0..<batch {
                let entry = try sequences.map { try SliceStack.slice($0, axis: 0, index: b) }
                let (final, scanned) = try scan.iterate(try states.map { try SliceStack.slice($0, axis: 0, index: b) }, entry,
                                                        axes: Array(repeating: 0, count: entry.count), length: lengths[b], inputs, context)
                finals.append(final)
                scans.append(scanned)
            }
            let stateOutputs = try (0..<scan.stateCount).map { k in try SliceStack.stack(finals.map { $0[k] }, axis: 0) }
            let scanOutputs = try (0..<(scan.body.outputCount - scan.stateCount)).map { k -> Tensor in
                let items = scans.map { $0[k] }
                guard let element = items.lazy.compactMap(\.first).first else {
                    let empty = try scan.body.stack([], output: scan.stateCount + k, axis: 0)
                    return try Tensor(zeros: empty.elementType, shape: [batch, steps] + empty.shape.dropFirst())
                }
                let padding = try Tensor(zeros: element.elementType, shape: element.shape)
                return try SliceStack.stack(try items.map { entry in
                    try SliceStack.stack(entry + Array(repeating: padding, count: steps - entry.count), axis: 0)
                }, axis: 0)
            }
            return stateOutputs + scanOutputs
        }
    }

    static func scanInputCount(_ node: Node) throws -> Int {
        guard let count = try node.int("num_scan_inputs"), count > 0 else {
            throw ModelError("is required and must be positive", field: "attribute 'num_scan_inputs'")
        }
        return count
    }

    static func scalarInt(_ t: Tensor, _ what: String) throws -> Int64 {
        guard t.count == 1, t.kind == .int64 else { throw ModelError("\(what) must be one integer, found \(t)") }
        return t.i[0]
    }

    static func scalarBool(_ t: Tensor, _ what: String) throws -> Bool {
        guard t.count == 1 else { throw ModelError("\(what) must be one boolean, found \(t)") }
        return t.bools[0]
    }
}

/// Taking one index along an axis, and stacking equal tensors along a new axis, for any type.
enum SliceStack {
    static func slice(_ t: Tensor, axis: Int, index: Int) throws -> Tensor {
        var shape = t.shape
        let dim = shape.remove(at: axis)
        let out = try Tensor(uninitialized: t.elementType, shape: shape)
        let outer = t.shape[..<axis].reduce(1, *)
        let inner = t.shape[(axis + 1)...].reduce(1, *) * t.kind.byteSize
        for o in 0..<outer { (out.raw + o * inner).copyMemory(from: t.raw + (o * dim + index) * inner, byteCount: inner) }
        return out
    }

    static func stack(_ items: [Tensor], axis: Int) throws -> Tensor {
        let first = items[0]
        for item in items where item.shape != first.shape || item.kind != first.kind {
            throw ModelError("values to stack differ: \(first) and \(item)")
        }
        var shape = first.shape
        shape.insert(items.count, at: axis)
        let out = try Tensor(uninitialized: first.elementType, shape: shape)
        let outer = first.shape[..<axis].reduce(1, *)
        let inner = first.shape[axis...].reduce(1, *) * first.kind.byteSize
        for o in 0..<outer {
            for (k, item) in items.enumerated() {
                (out.raw + (o * items.count + k) * inner).copyMemory(from: item.raw + o * inner, byteCount: inner)
            }
        }
        return out
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { index >= 0 && index < count ? self[index] : nil }
}
