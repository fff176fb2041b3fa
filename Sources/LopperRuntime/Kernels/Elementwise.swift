import Foundation
import LopperModel

/// Broadcasting arithmetic, comparison and logic, plus `Where` and the unary math functions.
enum ElementwiseKernels {
    static let all: [KernelVersion] = {
        var list: [KernelVersion] = []
        for (op, kind) in [("Add", BinaryOp.add), ("Sub", .sub), ("Mul", .mul), ("Div", .div), ("Pow", .pow)] {
            list.append(KernelVersion(op) { setup in
                // Opsets 1-6 broadcast only with broadcast=1 and an axis; that form is not supported.
                if setup.opset < 7, try setup.node.int("broadcast", default: 0) != 0 {
                    throw ModelError("legacy broadcast with 'axis' (opset < 7) is not supported")
                }
                return Arithmetic(op: kind)
            })
        }
        for (op, kind) in [("Max", BinaryOp.max), ("Min", .min), ("Sum", .add), ("Mean", .add)] {
            list.append(KernelVersion(op) { _ in Variadic(op: kind, mean: op == "Mean") })
        }
        for (op, kind) in [("Equal", CompareOp.equal), ("Less", .less), ("Greater", .greater),
                           ("LessOrEqual", .lessOrEqual), ("GreaterOrEqual", .greaterOrEqual)] {
            list.append(KernelVersion(op) { _ in Comparison(op: kind) })
        }
        list.append(KernelVersion("And") { _ in Logic { $0 && $1 } })
        list.append(KernelVersion("Or") { _ in Logic { $0 || $1 } })
        list.append(KernelVersion("Not") { _ in NotKernel() })
        list.append(KernelVersion("Where") { _ in WhereKernel() })

        let unary: [(String, (Float) -> Float, ((Int64) -> Int64)?)] = [
            ("Sqrt", { $0.squareRoot() }, nil),
            ("Exp", { expf($0) }, nil),
            ("Log", { logf($0) }, nil),
            ("Neg", { -$0 }, { 0 &- $0 }),
            ("Abs", { Swift.abs($0) }, { $0 < 0 ? 0 &- $0 : $0 }),
            ("Reciprocal", { 1 / $0 }, nil),
            ("Erf", { erff($0) }, nil),
        ]
        for (op, f, i) in unary {
            list.append(KernelVersion(op) { _ in Unary(float: f, int: i) })
        }
        return list
    }()

    static func integerPower(_ base: Int64, _ exponent: Int64) -> Int64 {
        if exponent < 0 { return base == 1 ? 1 : (base == -1 ? (exponent & 1 == 0 ? 1 : -1) : 0) }
        var result: Int64 = 1, b = base, e = exponent
        while e > 0 {
            if e & 1 == 1 { result = result &* b }
            b = b &* b
            e >>= 1
        }
        return result
    }

    enum BinaryOp { case add, sub, mul, div, pow, max, min }
    enum CompareOp { case equal, less, greater, lessOrEqual, greaterOrEqual }

    /// `a op b` with broadcasting, into a new tensor of `a`'s type. Each case passes a literal
    /// closure so the loop is specialised for it.
    static func apply(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ context: ExecutionContext) throws -> Tensor {
        let plan = try Broadcast([a.shape, b.shape])
        let out = Tensor(uninitialized: a.elementType, shape: plan.shape)
        switch a.kind {
        case .float:
            let (x, y, z) = (a.f, b.f, out.f)
            switch op {
            case .add: broadcastBinary(x, y, z, plan, context) { $0 + $1 }
            case .sub: broadcastBinary(x, y, z, plan, context) { $0 - $1 }
            case .mul: broadcastBinary(x, y, z, plan, context) { $0 * $1 }
            case .div: broadcastBinary(x, y, z, plan, context) { $0 / $1 }
            case .pow: broadcastBinary(x, y, z, plan, context) { powf($0, $1) }
            case .max: broadcastBinary(x, y, z, plan, context) { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) }
            case .min: broadcastBinary(x, y, z, plan, context) { $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1) }
            }
        case .int64:
            let (x, y, z) = (a.i, b.i, out.i)
            switch op {
            case .add: broadcastBinary(x, y, z, plan, context) { $0 &+ $1 }
            case .sub: broadcastBinary(x, y, z, plan, context) { $0 &- $1 }
            case .mul: broadcastBinary(x, y, z, plan, context) { $0 &* $1 }
            case .div: broadcastBinary(x, y, z, plan, context) { $1 == 0 ? 0 : $0 / $1 }
            case .pow: broadcastBinary(x, y, z, plan, context) { integerPower($0, $1) }
            case .max: broadcastBinary(x, y, z, plan, context) { Swift.max($0, $1) }
            case .min: broadcastBinary(x, y, z, plan, context) { Swift.min($0, $1) }
            }
        case .bool: throw ModelError("is not defined for bool tensors")
        }
        return out.normalized()
    }

    struct Arithmetic: Kernel {
        let op: BinaryOp

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let a = try inputs.required(0)
            var b = try inputs.required(1)
            if b.kind != a.kind { b = try Cast.convert(b, to: a.elementType) }
            return [try ElementwiseKernels.apply(op, a, b, context)]
        }
    }

    struct Variadic: Kernel {
        let op: BinaryOp
        let mean: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            var result = try inputs.required(0)
            guard inputs.count > 1 else { return [result] }
            for position in 1..<inputs.count {
                result = try ElementwiseKernels.apply(op, result, try inputs.required(position), context)
            }
            if mean {
                try result.requireFloat()
                let scale = 1 / Float(inputs.count)
                for k in 0..<result.count { result.f[k] *= scale }
            }
            return [result]
        }
    }

    struct Comparison: Kernel {
        let op: CompareOp

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            var a = try inputs.required(0), b = try inputs.required(1)
            guard a.kind == b.kind else { throw ModelError("operands have different types \(a.elementType) and \(b.elementType)") }
            if a.kind == .bool {
                a = try Cast.convert(a, to: .int64)
                b = try Cast.convert(b, to: .int64)
            }
            let plan = try Broadcast([a.shape, b.shape])
            let out = Tensor(uninitialized: .bool, shape: plan.shape)
            func compare<T: Comparable>(_ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>) {
                switch op {
                case .equal: broadcastBinary(x, y, out.b, plan, context) { $0 == $1 }
                case .less: broadcastBinary(x, y, out.b, plan, context) { $0 < $1 }
                case .greater: broadcastBinary(x, y, out.b, plan, context) { $0 > $1 }
                case .lessOrEqual: broadcastBinary(x, y, out.b, plan, context) { $0 <= $1 }
                case .greaterOrEqual: broadcastBinary(x, y, out.b, plan, context) { $0 >= $1 }
                }
            }
            if a.kind == .float { compare(a.f, b.f) } else { compare(a.i, b.i) }
            return [out]
        }
    }

    struct Logic: Kernel {
        let op: (Bool, Bool) -> Bool
        init(_ op: @escaping (Bool, Bool) -> Bool) { self.op = op }

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let a = try inputs.required(0), b = try inputs.required(1)
            guard a.kind == .bool, b.kind == .bool else { throw ModelError("operands must be bool") }
            let plan = try Broadcast([a.shape, b.shape])
            let out = Tensor(uninitialized: .bool, shape: plan.shape)
            broadcastBinary(a.b, b.b, out.b, plan, context, op)
            return [out]
        }
    }

    struct NotKernel: Kernel {
        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let a = try inputs.required(0)
            guard a.kind == .bool else { throw ModelError("operand must be bool") }
            let out = Tensor(uninitialized: .bool, shape: a.shape)
            for k in 0..<a.count { out.b[k] = !a.b[k] }
            return [out]
        }
    }

    struct WhereKernel: Kernel {
        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let c = try inputs.required(0), x = try inputs.required(1), y = try inputs.required(2)
            guard c.kind == .bool else { throw ModelError("condition must be bool") }
            guard x.kind == y.kind else { throw ModelError("X and Y have different types") }
            let plan = try Broadcast([c.shape, x.shape, y.shape])
            let out = Tensor(uninitialized: x.elementType, shape: plan.shape)
            let size = x.kind.byteSize
            plan.forEachRow { o, offsets, n, s in
                for k in 0..<n {
                    let source = c.b[offsets[0] + k * s[0]] ? x.raw + (offsets[1] + k * s[1]) * size
                        : y.raw + (offsets[2] + k * s[2]) * size
                    (out.raw + (o + k) * size).copyMemory(from: source, byteCount: size)
                }
            }
            return [out]
        }
    }

    struct Unary: Kernel {
        let float: (Float) -> Float
        let int: ((Int64) -> Int64)?

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let a = try inputs.required(0)
            let out = Tensor(uninitialized: a.elementType, shape: a.shape)
            switch (a.kind, int) {
            case (.float, _):
                let (x, y) = (a.f, out.f)
                context.parallel(a.count, grain: 1 << 15) { range in
                    for k in range { y[k] = float(x[k]) }
                }
            case (.int64, let int?): for k in 0..<a.count { out.i[k] = int(a.i[k]) }
            default: throw ModelError("is not defined for \(a.elementType) tensors")
            }
            return [out.normalized()]
        }
    }
}
