import Foundation

/// The three recurrent operators of the ONNX default domain.
public enum RecurrentCell: String, CaseIterable, Sendable {
    case rnn, gru, lstm

    public var op: String {
        switch self {
        case .rnn: return "RNN"
        case .gru: return "GRU"
        case .lstm: return "LSTM"
        }
    }

    public init?(_ node: Node) {
        guard node.domain.isEmpty, let cell = Self.allCases.first(where: { $0.op == node.opType }) else { return nil }
        self = cell
    }

    /// Gate blocks stacked along W's and R's first axis: 1 (RNN), 3 (z, r, h) or 4 (i, o, f, c).
    public var gateCount: Int {
        switch self {
        case .rnn: return 1
        case .gru: return 3
        case .lstm: return 4
        }
    }

    /// LSTM carries a cell state beside the hidden state (inputs initial_c and P, output Y_c).
    public var hasCellState: Bool { self == .lstm }

    /// Activation functions per direction: f (and g, and h).
    var activationCount: Int { gateCount == 1 ? 1 : (self == .gru ? 2 : 3) }

    var defaultActivations: [String] {
        switch self {
        case .rnn: return ["Tanh"]
        case .gru: return ["Sigmoid", "Tanh"]
        case .lstm: return ["Sigmoid", "Tanh", "Tanh"]
        }
    }
}

/// Which way a recurrent layer reads its sequence.
public enum RecurrentDirection: String, Sendable {
    case forward, reverse, bidirectional

    /// The passes in the order their results are stacked (forward first).
    public var passes: [RecurrentDirection] { self == .bidirectional ? [.forward, .reverse] : [self] }
}

/// An activation of the recurrent operators' `activations` attribute, with its alpha and beta.
public enum RecurrentActivation: Sendable, Equatable {
    case relu, tanh, sigmoid, softsign, softplus
    case affine(alpha: Float, beta: Float)
    case leakyRelu(alpha: Float)
    case thresholdedRelu(alpha: Float)
    case scaledTanh(alpha: Float, beta: Float)
    case hardSigmoid(alpha: Float, beta: Float)
    case elu(alpha: Float)

    /// Parses one name, taking its alpha and beta (when it has them) from the front of the lists;
    /// a list that runs out gives the spec's default.
    static func parse(_ name: String, alphas: inout ArraySlice<Float>, betas: inout ArraySlice<Float>) throws -> RecurrentActivation {
        func alpha(_ fallback: Float) -> Float { alphas.popFirst() ?? fallback }
        func beta(_ fallback: Float) -> Float { betas.popFirst() ?? fallback }
        switch name.lowercased() {
        case "relu": return .relu
        case "tanh": return .tanh
        case "sigmoid": return .sigmoid
        case "softsign": return .softsign
        case "softplus": return .softplus
        case "affine": return .affine(alpha: alpha(1), beta: beta(0))
        case "leakyrelu": return .leakyRelu(alpha: alpha(0.01))
        case "thresholdedrelu": return .thresholdedRelu(alpha: alpha(1))
        case "scaledtanh": return .scaledTanh(alpha: alpha(1), beta: beta(1))
        case "hardsigmoid": return .hardSigmoid(alpha: alpha(0.2), beta: beta(0.5))
        case "elu": return .elu(alpha: alpha(1))
        default:
            throw ModelError("'\(name)' is not a recurrent activation (Relu, Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus)", field: "attribute 'activations'")
        }
    }

    public func callAsFunction(_ x: Float) -> Float {
        switch self {
        case .relu: return Swift.max(x, 0)
        case .tanh: return tanhf(x)
        case .sigmoid: return x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x))
        case .softsign: return x / (1 + abs(x))
        case .softplus: return x > 20 ? x : log1pf(expf(x))
        case .affine(let alpha, let beta): return alpha * x + beta
        case .leakyRelu(let alpha): return x < 0 ? alpha * x : x
        case .thresholdedRelu(let alpha): return x > alpha ? x : 0
        case .scaledTanh(let alpha, let beta): return alpha * tanhf(beta * x)
        case .hardSigmoid(let alpha, let beta): return Swift.min(Swift.max(alpha * x + beta, 0), 1)
        case .elu(let alpha): return x < 0 ? alpha * (expf(x) - 1) : x
        }
    }
}

/// The attributes of an RNN, GRU or LSTM node, checked, with the spec's defaults.
public struct RecurrentAttributes: Sendable {
    public let cell: RecurrentCell
    public let hiddenSize: Int?
    public let direction: RecurrentDirection
    /// Per direction: f (and g, and h).
    public let activations: [[RecurrentActivation]]
    public let clip: Float?
    /// Layout 1 (opset 14): batch first in X, Y and the states.
    public let batchFirst: Bool

    public init(_ node: Node, cell: RecurrentCell) throws {
        self.cell = cell
        hiddenSize = try node.int("hidden_size")
        if let size = hiddenSize, size <= 0 { throw node.error("must be positive, found \(size)", field: "attribute 'hidden_size'") }
        let name = try node.string("direction", default: "forward")
        guard let direction = RecurrentDirection(rawValue: name) else {
            throw node.error("must be forward, reverse or bidirectional, found '\(name)'", field: "attribute 'direction'")
        }
        self.direction = direction
        let passes = direction.passes.count
        var names = try node.strings("activations") ?? []
        if names.isEmpty { names = Array(repeating: cell.defaultActivations, count: passes).flatMap { $0 } }
        guard names.count == cell.activationCount * passes else {
            throw node.error("lists \(names.count) functions; \(cell.op) \(direction.rawValue) takes \(cell.activationCount * passes)", field: "attribute 'activations'")
        }
        var alphas = ArraySlice(try node.floats("activation_alpha") ?? [])
        var betas = ArraySlice(try node.floats("activation_beta") ?? [])
        let parsed = try names.map { try RecurrentActivation.parse($0, alphas: &alphas, betas: &betas) }
        activations = (0..<passes).map { Array(parsed[($0 * cell.activationCount)..<(($0 + 1) * cell.activationCount)]) }
        if node.hasAttribute("clip") {
            let value = try node.float("clip", default: 0)
            guard value > 0 else { throw node.error("must be positive, found \(value)", field: "attribute 'clip'") }
            clip = value
        } else {
            clip = nil
        }
        let layout = try node.int("layout", default: 0)
        guard layout == 0 || layout == 1 else { throw node.error("must be 0 or 1, found \(layout)", field: "attribute 'layout'") }
        batchFirst = layout == 1
    }
}
