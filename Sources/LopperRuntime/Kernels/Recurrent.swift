import Foundation
import LopperModel

/// RNN, GRU and LSTM (ONNX operator spec, opsets 7 and 14): forward, reverse and bidirectional,
/// initial states, `sequence_lens`, the `activations` attributes, `clip`, layouts 0 and 1, LSTM
/// peepholes and `input_forget`.
enum RecurrentKernels {
    static let all: [KernelVersion] = RecurrentCell.allCases.map { cell in
        KernelVersion(cell.op, since: 7) { setup in try Recurrent(setup.node, cell: cell) }
    }

    struct Recurrent: Kernel {
        let cell: RecurrentCell
        let hiddenSize: Int?
        let directions: [RecurrentDirection]
        /// `f`, `g` (and `h` for LSTM) per direction, in that order.
        let activations: [[RecurrentActivation]]
        let clip: Float?
        /// Layout 1 puts the batch first in X, Y and the states.
        let batchFirst: Bool
        let linearBeforeReset: Bool
        let inputForget: Bool

        init(_ node: Node, cell: RecurrentCell) throws {
            self.cell = cell
            let attributes = try RecurrentAttributes(node, cell: cell)
            hiddenSize = attributes.hiddenSize
            directions = attributes.direction.passes
            activations = attributes.activations
            clip = attributes.clip
            batchFirst = attributes.batchFirst
            linearBeforeReset = try node.int("linear_before_reset", default: 0) != 0
            inputForget = try node.int("input_forget", default: 0) != 0
        }

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            var x = try inputs.required(0)
            let w = try inputs.required(1), r = try inputs.required(2)
            for (tensor, what) in [(x, "X"), (w, "W"), (r, "R")] { try tensor.requireFloat(what) }
            guard x.rank == 3, w.rank == 3, r.rank == 3 else {
                throw ModelError("X, W and R must be 3-D, found \(x.shape), \(w.shape) and \(r.shape)")
            }
            if batchFirst { x = try transposeLeadingAxes(x) }
            let steps = x.shape[0], batch = x.shape[1], inputSize = x.shape[2]
            let gates = cell.gateCount, count = directions.count
            let hidden = hiddenSize ?? r.shape[2]
            guard w.shape == [count, gates * hidden, inputSize] else {
                throw ModelError("W has shape \(w.shape), expected \([count, gates * hidden, inputSize]) (directions, \(gates)×hidden_size, input size)")
            }
            guard r.shape == [count, gates * hidden, hidden] else {
                throw ModelError("R has shape \(r.shape), expected \([count, gates * hidden, hidden])")
            }
            let bias = try inputs.optional(3).map { try floats($0, "B", shape: [count, 2 * gates * hidden]) }
            let lengths = try sequenceLengths(inputs.optional(4), steps: steps, batch: batch)
            let stateShape = [count, batch, hidden]
            let initialH = try inputs.optional(5).map { try floats(batchFirst ? transposeLeadingAxes($0) : $0, "initial_h", shape: stateShape) }
            var initialC: [Float]?, peepholes: [Float]?
            if cell.hasCellState {
                initialC = try inputs.optional(6).map { try floats(batchFirst ? transposeLeadingAxes($0) : $0, "initial_c", shape: stateShape) }
                peepholes = try inputs.optional(7).map { try floats($0, "P", shape: [count, 3 * hidden]) }
            }

            // Y is [steps, directions, batch, hidden]; steps past a sequence's length stay zero.
            let y = try Tensor(uninitialized: .float32, shape: [steps, count, batch, hidden])
            y.f.update(repeating: 0, count: y.count)
            let lastH = try Tensor(uninitialized: .float32, shape: stateShape)
            let lastC = try Tensor(uninitialized: .float32, shape: stateShape)
            for (d, direction) in directions.enumerated() {
                let layer = RecurrentLayer(
                    cell: cell, hidden: hidden, inputSize: inputSize, batch: batch, steps: steps,
                    w: w.f + d * gates * hidden * inputSize, r: r.f + d * gates * hidden * hidden,
                    bias: bias.map { Array($0[(d * 2 * gates * hidden)..<((d + 1) * 2 * gates * hidden)]) },
                    peepholes: peepholes.map { Array($0[(d * 3 * hidden)..<((d + 1) * 3 * hidden)]) },
                    activations: activations[d], clip: clip, linearBeforeReset: linearBeforeReset, inputForget: inputForget)
                let stateRange = (d * batch * hidden)..<((d + 1) * batch * hidden)
                var h = initialH.map { Array($0[stateRange]) } ?? [Float](repeating: 0, count: batch * hidden)
                var c = initialC.map { Array($0[stateRange]) } ?? [Float](repeating: 0, count: batch * hidden)
                layer.run(x.f, reverse: direction == .reverse, lengths: lengths, h: &h, c: &c) { t, b, state in
                    (y.f + ((t * count + d) * batch + b) * hidden).update(from: state, count: hidden)
                }
                (lastH.f + d * batch * hidden).update(from: h, count: h.count)
                (lastC.f + d * batch * hidden).update(from: c, count: c.count)
            }
            var outputs = [y, lastH]
            if cell.hasCellState { outputs.append(lastC) }
            if batchFirst {
                // Layout 1: Y is [batch, steps, directions, hidden] and the states [batch, directions, hidden].
                outputs[0] = try y.permuted([2, 0, 1, 3])
                for k in 1..<outputs.count { outputs[k] = try transposeLeadingAxes(outputs[k]) }
            }
            return try outputs.map { try Cast.convert($0, to: x.elementType) }
        }

        private func floats(_ tensor: Tensor, _ what: String, shape: [Int]) throws -> [Float] {
            try tensor.requireFloat(what)
            guard tensor.shape == shape else { throw ModelError("\(what) has shape \(tensor.shape), expected \(shape)") }
            return Array(UnsafeBufferPointer(start: tensor.f, count: tensor.count))
        }

        private func sequenceLengths(_ tensor: Tensor?, steps: Int, batch: Int) throws -> [Int] {
            guard let tensor else { return [Int](repeating: steps, count: batch) }
            guard tensor.shape == [batch], tensor.kind == .int64 else {
                throw ModelError("sequence_lens must be an integer tensor of shape [\(batch)], found \(tensor)")
            }
            let lengths = tensor.ints
            if let bad = lengths.first(where: { $0 < 0 || $0 > steps }) {
                throw ModelError("sequence_lens holds \(bad), outside 0...\(steps)")
            }
            return lengths
        }
    }

    /// Swaps the first two axes of a 3-D tensor.
    static func transposeLeadingAxes(_ t: Tensor) throws -> Tensor {
        guard t.rank == 3 else { throw ModelError("expected a 3-D tensor, found \(t.shape)") }
        return try t.permuted([1, 0, 2])
    }
}

/// One direction of one recurrent layer over a whole batch of sequences.
struct RecurrentLayer {
    let cell: RecurrentCell
    let hidden: Int, inputSize: Int, batch: Int, steps: Int
    /// `[gates × hidden, inputSize]` and `[gates × hidden, hidden]`, gates in the ONNX order.
    let w: UnsafePointer<Float>, r: UnsafePointer<Float>
    /// `Wb` then `Rb`, each `gates × hidden`.
    let bias: [Float]?
    /// LSTM peepholes `i`, `o`, `f`.
    let peepholes: [Float]?
    let activations: [RecurrentActivation]
    let clip: Float?
    let linearBeforeReset: Bool
    let inputForget: Bool

    /// Runs the recurrence, updating `h` and `c` (`[batch, hidden]`) in place and reporting each
    /// sequence's new hidden state at each time it reaches.
    func run(_ x: UnsafePointer<Float>, reverse: Bool, lengths: [Int], h: inout [Float], c: inout [Float],
             emit: (_ time: Int, _ batch: Int, _ state: UnsafePointer<Float>) -> Void) {
        let width = cell.gateCount * hidden
        // The input projection of every time step at once: [steps × batch, width].
        var projected = [Float](repeating: 0, count: steps * batch * width)
        MatMulKernels.sgemm(transA: false, transB: true, m: steps * batch, n: width, k: inputSize, a: x, lda: inputSize,
                            b: w, ldb: inputSize, beta: 0, c: &projected, ldc: width)
        var recurrent = [Float](repeating: 0, count: batch * width)
        var gated = [Float](repeating: 0, count: batch * hidden)
        for step in 0..<(lengths.max() ?? 0) {
            // The GRU candidate (without linear_before_reset) needs the reset gate first.
            let lateCandidate = cell == .gru && !linearBeforeReset
            let early = lateCandidate ? 2 * hidden : width
            MatMulKernels.sgemm(transA: false, transB: true, m: batch, n: early, k: hidden, a: h, lda: hidden,
                                b: r, ldb: hidden, beta: 0, c: &recurrent, ldc: width)
            var times = [Int?](repeating: nil, count: batch)
            for b in 0..<batch where step < lengths[b] {
                times[b] = reverse ? lengths[b] - 1 - step : step
            }
            if lateCandidate {
                for b in 0..<batch {
                    guard let t = times[b] else { continue }
                    for j in 0..<hidden {
                        let reset = gate(projected, (t * batch + b) * width, recurrent[b * width + hidden + j], 1, j, activations[0])
                        gated[b * hidden + j] = reset * h[b * hidden + j]
                    }
                }
                gated.withUnsafeBufferPointer { g in
                    recurrent.withUnsafeMutableBufferPointer { out in
                        MatMulKernels.sgemm(transA: false, transB: true, m: batch, n: hidden, k: hidden, a: g.baseAddress!, lda: hidden,
                                            b: r + 2 * hidden * hidden, ldb: hidden, beta: 0, c: out.baseAddress! + 2 * hidden, ldc: width)
                    }
                }
            }
            for b in 0..<batch {
                guard let t = times[b] else { continue }
                let row = (t * batch + b) * width
                for j in 0..<hidden {
                    let s = b * hidden + j
                    let rec = { (g: Int) in recurrent[b * width + g * hidden + j] }
                    switch cell {
                    case .rnn:
                        h[s] = gate(projected, row, rec(0), 0, j, activations[0])
                    case .gru:
                        let z = gate(projected, row, rec(0), 0, j, activations[0])
                        let candidateRecurrent: Float
                        if linearBeforeReset {
                            let reset = gate(projected, row, rec(1), 1, j, activations[0])
                            candidateRecurrent = reset * (rec(2) + recurrentBias(2, j))
                        } else {
                            candidateRecurrent = rec(2) + recurrentBias(2, j)
                        }
                        let candidate = activate(projected[row + 2 * hidden + j] + inputBias(2, j) + candidateRecurrent, activations[1])
                        h[s] = (1 - z) * candidate + z * h[s]
                    case .lstm:
                        // Gates i, o, f, c; peepholes i, o, f.
                        let peep = { (k: Int) in self.peepholes?[k * self.hidden + j] ?? 0 }
                        let input = gate(projected, row, rec(0) + peep(0) * c[s], 0, j, activations[0])
                        let forget = inputForget ? 1 - input : gate(projected, row, rec(2) + peep(2) * c[s], 2, j, activations[0])
                        let candidate = gate(projected, row, rec(3), 3, j, activations[1])
                        c[s] = forget * c[s] + input * candidate
                        let output = gate(projected, row, rec(1) + peep(1) * c[s], 1, j, activations[0])
                        h[s] = output * activate(c[s], activations[2])
                    }
                }
                h.withUnsafeBufferPointer { emit(t, b, $0.baseAddress! + b * hidden) }
            }
        }
    }

    private func inputBias(_ g: Int, _ j: Int) -> Float { bias?[g * hidden + j] ?? 0 }
    private func recurrentBias(_ g: Int, _ j: Int) -> Float { bias?[(cell.gateCount + g) * hidden + j] ?? 0 }

    /// Gate `g` of unit `j`: the activation of input projection + `recurrentTerm` + both biases.
    private func gate(_ projected: [Float], _ row: Int, _ recurrentTerm: Float, _ g: Int, _ j: Int,
                      _ function: RecurrentActivation) -> Float {
        activate(projected[row + g * hidden + j] + recurrentTerm + inputBias(g, j) + recurrentBias(g, j), function)
    }

    /// The activation of a pre-activation, clipped first when `clip` is set.
    private func activate(_ value: Float, _ function: RecurrentActivation) -> Float {
        function(clip.map { Swift.min(Swift.max(value, -$0), $0) } ?? value)
    }
}
