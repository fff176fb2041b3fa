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
        // Opset 8's Scan had a batch axis and sequence_lens; from 9 on it is the form below.
        KernelVersion("Scan", since: 9) { setup in
            let node = setup.node
            guard let scanInputs = try node.int("num_scan_inputs"), scanInputs > 0 else {
                throw ModelError("is required and must be positive", field: "attribute 'num_scan_inputs'")
            }
            return Scan(body: try Body(setup, "body"), scanInputs: scanInputs,
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

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let declaredCount = body.declared.count
            let stateCount = declaredCount - scanInputs
            guard stateCount >= 0, body.outputCount >= stateCount else {
                throw ModelError("the body takes \(declaredCount) inputs, fewer than num_scan_inputs \(scanInputs)")
            }
            var states = try (0..<stateCount).map { try inputs.required($0) }
            let sequences = try (0..<scanInputs).map { try inputs.required(stateCount + $0) }
            let axes = try sequences.enumerated().map { k, t in try normalizeAxis(inputAxes?[safe: k] ?? 0, rank: t.rank, "scan_input_axes") }
            guard let length = sequences.first.map({ $0.shape[axes[0]] }) else { return states }
            for (k, t) in sequences.enumerated() where t.shape[axes[k]] != length {
                throw ModelError("scan input \(k) has \(t.shape[axes[k]]) elements along its axis, scan input 0 has \(length)")
            }
            let scanCount = body.outputCount - stateCount
            var scanned = [[Tensor]](repeating: [], count: scanCount)
            for step in 0..<length {
                let elements = try sequences.enumerated().map { k, t in
                    try SliceStack.slice(t, axis: axes[k], index: (inputReversed?[safe: k] ?? 0) != 0 ? length - 1 - step : step)
                }
                let results = try body.run(states + elements, inputs, context)
                states = Array(results[..<stateCount])
                for k in 0..<scanCount { scanned[k].append(results[stateCount + k]) }
            }
            return states + (try scanned.enumerated().map { k, items in
                let ordered = (outputReversed?[safe: k] ?? 0) != 0 ? Array(items.reversed()) : items
                let rank = (items.first?.rank ?? body.executor.outputTypes[stateCount + k]?.shape?.count ?? 0) + 1
                return try body.stack(ordered, output: stateCount + k, axis: normalizeAxis(outputAxes?[safe: k] ?? 0, rank: rank, "scan_output_axes"))
            })
        }
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
