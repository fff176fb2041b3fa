import CKernels
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
        list.append(KernelVersion("And") { _ in Logic(and: true) })
        list.append(KernelVersion("Or") { _ in Logic(and: false) })
        list.append(KernelVersion("Not") { _ in NotKernel() })
        list.append(KernelVersion("Where") { _ in WhereKernel() })

        for (op, kind) in [("Sqrt", UnaryOp.sqrt), ("Exp", .exp), ("Log", .log), ("Neg", .neg), ("Abs", .abs),
                           ("Reciprocal", .reciprocal), ("Erf", .erf)] {
            list.append(KernelVersion(op) { _ in Unary(op: kind) })
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

    /// `a op b` with broadcasting, into a new tensor of `a`'s type (or the context's destination). Each case passes a literal
    /// closure so the loop is specialised for it.
    static func apply(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ context: ExecutionContext) throws -> Tensor {
        let plan = try Broadcast([a.shape, b.shape])
        let out = try context.output(a.elementType, shape: plan.shape)
        switch a.kind {
        case .float:
            let (x, y, z) = (a.f, b.f, out.f)
            switch op {
            case .add: broadcastBinary(x, y, z, plan, context, Functions.Add<Float>())
            case .sub: broadcastBinary(x, y, z, plan, context, Functions.Sub<Float>())
            case .mul: broadcastBinary(x, y, z, plan, context, Functions.Mul<Float>())
            case .div: broadcastBinary(x, y, z, plan, context, Functions.FloatDiv())
            case .pow: broadcastBinary(x, y, z, plan, context, Functions.FloatPow())
            case .max: broadcastBinary(x, y, z, plan, context, Functions.FloatMax())
            case .min: broadcastBinary(x, y, z, plan, context, Functions.FloatMin())
            }
        case .int64:
            let (x, y, z) = (a.i, b.i, out.i)
            switch op {
            case .add: broadcastBinary(x, y, z, plan, context, Functions.WrappingAdd())
            case .sub: broadcastBinary(x, y, z, plan, context, Functions.WrappingSub())
            case .mul: broadcastBinary(x, y, z, plan, context, Functions.WrappingMul())
            case .div: broadcastBinary(x, y, z, plan, context, Functions.IntDiv())
            case .pow: broadcastBinary(x, y, z, plan, context, Functions.IntPow())
            case .max: broadcastBinary(x, y, z, plan, context, Functions.Max<Int64>())
            case .min: broadcastBinary(x, y, z, plan, context, Functions.Min<Int64>())
            }
        case .bool: throw ModelError("is not defined for bool tensors")
        }
        return out.normalized()
    }

    struct Arithmetic: DestinationWriting {
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
            let out = try Tensor(uninitialized: .bool, shape: plan.shape)
            func compare<T: Comparable>(_ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>) {
                switch op {
                case .equal: broadcastBinary(x, y, out.b, plan, context, Functions.Equal<T>())
                case .less: broadcastBinary(x, y, out.b, plan, context, Functions.Less<T>())
                case .greater: broadcastBinary(x, y, out.b, plan, context, Functions.Greater<T>())
                case .lessOrEqual: broadcastBinary(x, y, out.b, plan, context, Functions.LessOrEqual<T>())
                case .greaterOrEqual: broadcastBinary(x, y, out.b, plan, context, Functions.GreaterOrEqual<T>())
                }
            }
            if a.kind == .float { compare(a.f, b.f) } else { compare(a.i, b.i) }
            return [out]
        }
    }

    struct Logic: Kernel {
        let and: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let a = try inputs.required(0), b = try inputs.required(1)
            guard a.kind == .bool, b.kind == .bool else { throw ModelError("operands must be bool") }
            let plan = try Broadcast([a.shape, b.shape])
            let out = try Tensor(uninitialized: .bool, shape: plan.shape)
            if and {
                broadcastBinary(a.b, b.b, out.b, plan, context, Functions.And())
            } else {
                broadcastBinary(a.b, b.b, out.b, plan, context, Functions.Or())
            }
            return [out]
        }
    }

    struct NotKernel: Kernel {
        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let a = try inputs.required(0)
            guard a.kind == .bool else { throw ModelError("operand must be bool") }
            let out = try Tensor(uninitialized: .bool, shape: a.shape)
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
            let out = try Tensor(uninitialized: x.elementType, shape: plan.shape)
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

    enum UnaryOp { case sqrt, exp, log, neg, abs, reciprocal, erf }

    struct Unary: Kernel {
        let op: UnaryOp

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let a = try inputs.required(0)
            let out = try Tensor(uninitialized: a.elementType, shape: a.shape)
            switch a.kind {
            case .float:
                let (x, y, op) = (a.f, out.f, self.op)
                context.parallel(a.count, grain: 1 << 16) { range in
                    switch op {
                    case .sqrt: for k in range { y[k] = x[k].squareRoot() }
                    case .exp: lopper_pointwise_map(LOPPER_POINTWISE_EXP, x + range.lowerBound, y + range.lowerBound, range.count)
                    case .log: VectorMath.map(x + range.lowerBound, y + range.lowerBound, range.count, VectorMath.log)
                    case .neg: for k in range { y[k] = -x[k] }
                    case .abs: for k in range { y[k] = Swift.abs(x[k]) }
                    case .reciprocal: for k in range { y[k] = 1 / x[k] }
                    case .erf: VectorMath.map(x + range.lowerBound, y + range.lowerBound, range.count, VectorMath.erf)
                    }
                }
            case .int64:
                switch op {
                case .neg: for k in 0..<a.count { out.i[k] = 0 &- a.i[k] }
                case .abs: for k in 0..<a.count { out.i[k] = a.i[k] < 0 ? 0 &- a.i[k] : a.i[k] }
                default: throw ModelError("is not defined for \(a.elementType) tensors")
                }
            case .bool: throw ModelError("is not defined for bool tensors")
            }
            return [out.normalized()]
        }
    }
}
