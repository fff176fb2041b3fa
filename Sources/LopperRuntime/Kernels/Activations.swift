import CKernels
import Foundation
import LopperModel

/// A pointwise function on floats that can also run fused at the end of Conv, Gemm or MatMul.
enum Activation {
    case relu
    case leakyRelu(alpha: Float)
    case clip(min: Float, max: Float)
    case sigmoid
    case hardSigmoid(alpha: Float, beta: Float)
    case hardSwish
    /// `x · sigmoid(x)` (SiLU, also called Swish): a Mul of a value by its own Sigmoid.
    case silu
    case tanh
    case elu(alpha: Float)
    case selu(alpha: Float, gamma: Float)
    case softplus
    case gelu(tanhApproximation: Bool)
    /// `scale * x + bias`: a Mul and/or Add by scalar constants.
    case affine(scale: Float, bias: Float)
    /// One function after the other.
    indirect case then(Activation, Activation)

    /// The C kernels' function for this activation, when they have it: the Conv tile applies
    /// it as it stores, and `apply` calls the same code, so fused and unfused steps agree.
    var pointwise: lopper_pointwise? {
        switch self {
        case .relu: LOPPER_POINTWISE_RELU
        case .sigmoid: LOPPER_POINTWISE_SIGMOID
        case .silu: LOPPER_POINTWISE_SILU
        case .hardSwish: LOPPER_POINTWISE_HARD_SWISH
        default: nil
        }
    }

    /// Applies the function in place to `count` floats.
    func apply(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        switch self {
        case .relu, .sigmoid, .silu, .hardSwish: lopper_pointwise_map(pointwise!, p, p, count)
        case .leakyRelu(let alpha): for k in 0..<count { let x = p[k]; p[k] = x < 0 ? alpha * x : x }
        case .clip(let lo, let hi): for k in 0..<count { p[k] = Swift.min(Swift.max(p[k], lo), hi) }
        case .hardSigmoid(let alpha, let beta):
            for k in 0..<count { p[k] = Swift.min(Swift.max(alpha * p[k] + beta, 0), 1) }
        case .tanh: VectorMath.map(p, count, VectorMath.tanh)
        case .elu(let alpha): for k in 0..<count { let x = p[k]; p[k] = x < 0 ? alpha * (expf(x) - 1) : x }
        case .selu(let alpha, let gamma):
            for k in 0..<count { let x = p[k]; p[k] = gamma * (x <= 0 ? alpha * (expf(x) - 1) : x) }
        case .softplus: for k in 0..<count { let x = p[k]; p[k] = x > 20 ? x : log1pf(expf(x)) }
        case .affine(let scale, let bias): for k in 0..<count { p[k] = p[k] * scale + bias }
        case .then(let first, let second):
            // In cache-sized pieces, so the second pass reads what the first just wrote.
            var start = 0
            while start < count {
                let n = Swift.min(4096, count - start)
                first.apply(p + start, n)
                second.apply(p + start, n)
                start += n
            }
        case .gelu(let approximate):
            if approximate {
                let c: Float = (2 / Float.pi).squareRoot()
                VectorMath.map(p, count) { x in 0.5 * x * (1 + VectorMath.tanh(c * (x + 0.044715 * x * x * x))) }
            } else {
                VectorMath.map(p, count) { x in 0.5 * x * (1 + VectorMath.erf(x * 0.707_106_78)) }
            }
        }
    }

    /// `first` then `second`, with consecutive affine maps multiplied out.
    static func combine(_ first: Activation, _ second: Activation) -> Activation {
        if case .affine(let a, let b) = first, case .affine(let c, let d) = second {
            return .affine(scale: a * c, bias: b * c + d)
        }
        if case .then(let x, .affine(let a, let b)) = first, case .affine(let c, let d) = second {
            return .then(x, .affine(scale: a * c, bias: b * c + d))
        }
        return .then(first, second)
    }

    /// The activation a node computes, when its parameters are known at load time.
    static func of(_ node: Node, opset: Int, constants: [Tensor?]) throws -> Activation? {
        guard node.domain.isEmpty else { return nil }
        switch node.opType {
        case "Relu": return .relu
        case "LeakyRelu": return .leakyRelu(alpha: try node.float("alpha", default: 0.01))
        case "Sigmoid": return .sigmoid
        case "HardSigmoid":
            return .hardSigmoid(alpha: try node.float("alpha", default: 0.2), beta: try node.float("beta", default: 0.5))
        case "HardSwish": return .hardSwish
        case "Tanh": return .tanh
        case "Elu": return .elu(alpha: try node.float("alpha", default: 1))
        case "Selu":
            return .selu(alpha: try node.float("alpha", default: 1.67326319217681884765625),
                         gamma: try node.float("gamma", default: 1.05070102214813232421875))
        case "Softplus": return .softplus
        case "Gelu": return .gelu(tanhApproximation: try node.string("approximate", default: "none") == "tanh")
        case "Clip":
            if opset < 11 {
                return .clip(min: try node.float("min", default: -.infinity), max: try node.float("max", default: .infinity))
            }
            func bound(_ position: Int, _ fallback: Float) -> Float? {
                guard node.input(position) != nil else { return fallback }
                guard position < constants.count, let t = constants[position], t.kind == .float, t.count == 1 else { return nil }
                return t.f[0]
            }
            guard let lo = bound(1, -.infinity), let hi = bound(2, .infinity) else { return nil }
            return .clip(min: lo, max: hi)
        default: return nil
        }
    }
}

/// The activation operators, one kernel applying `Activation` (Clip also on integers), and PRelu.
enum ActivationKernels {
    /// Operators that are exactly one `Activation` (Clip too, when its bounds are constants).
    static let names = ["Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Softplus", "Gelu"]

    static let all: [KernelVersion] = {
        var list = names.map { op in
            KernelVersion(op) { setup in
                ActivationKernel(activation: try Activation.of(setup.node, opset: setup.opset, constants: setup.constants)!)
            }
        }
        list.append(KernelVersion("Clip") { setup in
            ClipKernel(legacy: setup.opset < 11 ? try Activation.of(setup.node, opset: setup.opset, constants: []) : nil)
        })
        list.append(KernelVersion("PRelu") { _ in PRelu() })
        return list
    }()

    struct ActivationKernel: DestinationWriting {
        let activation: Activation

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            try x.requireFloat()
            let out = try context.output(x.elementType, shape: x.shape)
            let (src, dst) = (x.f, out.f)
            context.parallel(x.count, grain: 1 << 16) { range in
                (dst + range.lowerBound).update(from: src + range.lowerBound, count: range.count)
                activation.apply(dst + range.lowerBound, range.count)
            }
            return [out.normalized()]
        }
    }

    struct ClipKernel: Kernel {
        let legacy: Activation?

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            let lo = inputs.optional(1), hi = inputs.optional(2)
            for bound in [lo, hi].compactMap({ $0 }) where bound.count != 1 {
                throw ModelError("min and max must be scalars, found shape \(bound.shape)")
            }
            let out = try Tensor(uninitialized: x.elementType, shape: x.shape)
            switch x.kind {
            case .float:
                var activation = legacy ?? .clip(min: lo?.floats[0] ?? -.infinity, max: hi?.floats[0] ?? .infinity)
                if case .clip(let a, let b) = activation, a > b { activation = .clip(min: b, max: b) }
                out.f.update(from: x.f, count: x.count)
                activation.apply(out.f, x.count)
            case .int64:
                let a = lo?.int64s[0] ?? .min, b = hi?.int64s[0] ?? .max
                for k in 0..<x.count { out.i[k] = Swift.min(Swift.max(x.i[k], a), b) }
            case .bool: throw ModelError("is not defined for bool tensors")
            }
            return [out]
        }
    }

    struct PRelu: Kernel {
        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0), slope = try inputs.required(1)
            try x.requireFloat()
            var slopeShape = slope.shape
            // Opset < 7 slopes of shape [C] apply along axis 1.
            if slope.rank == 1 && x.rank > 2 && slope.shape[0] == x.shape[1] && x.shape.last != slope.shape[0] {
                slopeShape = [slope.shape[0]] + [Int](repeating: 1, count: x.rank - 2)
            }
            let plan = try Broadcast([x.shape, slopeShape])
            guard plan.shape == x.shape else { throw ModelError("slope of shape \(slope.shape) does not broadcast to \(x.shape)") }
            let out = try Tensor(uninitialized: x.elementType, shape: x.shape)
            broadcastBinary(x.f, slope.f, out.f, plan, context, Functions.PRelu())
            return [out]
        }
    }
}
