import Foundation
import LopperModel

/// Rounding, sign, trigonometry and `Mod`.
enum ElementwiseMathKernels {
    static let all: [KernelVersion] = {
        var list: [KernelVersion] = []
        for (op, function) in [("Floor", MathFunction.floor), ("Ceil", .ceil), ("Round", .round), ("Sign", .sign),
                               ("Sin", .sin), ("Cos", .cos)] {
            list.append(KernelVersion(op) { _ in MathUnary(function: function) })
        }
        list.append(KernelVersion("Mod", since: 10) { setup in Mod(truncated: try setup.node.int("fmod", default: 0) != 0) })
        return list
    }()

    enum MathFunction { case floor, ceil, round, sign, sin, cos }

    struct MathUnary: Kernel {
        let function: MathFunction

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let a = try inputs.required(0)
            let out = try Tensor(uninitialized: a.elementType, shape: a.shape)
            switch a.kind {
            case .float:
                let (x, y) = (a.f, out.f)
                switch function {
                case .floor: for k in 0..<a.count { y[k] = x[k].rounded(.down) }
                case .ceil: for k in 0..<a.count { y[k] = x[k].rounded(.up) }
                // Halves go to the even neighbour, as in the ONNX spec.
                case .round: for k in 0..<a.count { y[k] = x[k].rounded(.toNearestOrEven) }
                case .sign: for k in 0..<a.count { y[k] = x[k] > 0 ? 1 : (x[k] < 0 ? -1 : (x[k].isNaN ? .nan : 0)) }
                case .sin: for k in 0..<a.count { y[k] = sinf(x[k]) }
                case .cos: for k in 0..<a.count { y[k] = cosf(x[k]) }
                }
            case .int64 where function == .sign:
                for k in 0..<a.count { out.i[k] = a.i[k].signum() }
            default:
                throw ModelError("is not defined for \(a.elementType) tensors")
            }
            return [out.normalized()]
        }
    }

    /// The remainder with the divisor's sign (integer `Mod`), or with the dividend's (`fmod`=1,
    /// C's fmod; required for floating-point inputs).
    struct Mod: Kernel {
        let truncated: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let a = try inputs.required(0), b = try inputs.required(1)
            guard a.elementType == b.elementType else { throw ModelError("operands have different types \(a.elementType) and \(b.elementType)") }
            let plan = try Broadcast([a.shape, b.shape])
            let out = try Tensor(uninitialized: a.elementType, shape: plan.shape)
            switch a.kind {
            case .float:
                guard truncated else { throw ModelError("fmod must be 1 for floating-point inputs", field: "attribute 'fmod'") }
                broadcastBinary(a.f, b.f, out.f, plan, context, FloatRemainder())
            case .int64:
                if truncated {
                    broadcastBinary(a.i, b.i, out.i, plan, context, TruncatedRemainder())
                } else {
                    broadcastBinary(a.i, b.i, out.i, plan, context, FlooredRemainder())
                }
            case .bool: throw ModelError("is not defined for bool tensors")
            }
            return [out.normalized()]
        }
    }

    struct FloatRemainder: ElementFunction { func callAsFunction(_ a: Float, _ b: Float) -> Float { fmodf(a, b) } }
    /// Division by zero gives 0, as integer `Div` does here.
    struct TruncatedRemainder: ElementFunction {
        func callAsFunction(_ a: Int64, _ b: Int64) -> Int64 { b == 0 ? 0 : a.remainderReportingOverflow(dividingBy: b).partialValue }
    }
    struct FlooredRemainder: ElementFunction {
        func callAsFunction(_ a: Int64, _ b: Int64) -> Int64 {
            guard b != 0 else { return 0 }
            let r = a.remainderReportingOverflow(dividingBy: b).partialValue
            return r != 0 && (r < 0) != (b < 0) ? r + b : r
        }
    }
}
