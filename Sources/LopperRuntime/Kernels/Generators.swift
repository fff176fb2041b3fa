import Foundation
import LopperModel

/// Values made from attributes or shapes, type conversion and pass-through operators.
enum GeneratorKernels {
    static let all: [KernelVersion] = [
        KernelVersion("Constant") { setup in
            Fixed(value: try Tensor(try setup.graph.constantValue(of: setup.node)))
        },
        KernelVersion("ConstantOfShape", since: 9) { setup in
            let value = try setup.node.tensor("value").map { proto -> Tensor in
                let model = try TensorData(proto: proto)
                guard model.count == 1 else { throw ModelError("must hold one element", field: "attribute 'value'") }
                return try Tensor(model)
            } ?? Tensor(floats: [0], shape: [1])
            return ConstantOfShape(value: value)
        },
        KernelVersion("Shape") { setup in
            ShapeKernel(start: setup.opset >= 15 ? try setup.node.int("start", default: 0) : 0,
                        end: setup.opset >= 15 ? try setup.node.int("end") : nil)
        },
        KernelVersion("Size") { _ in SizeKernel() },
        KernelVersion("Range", since: 11) { _ in RangeKernel() },
        KernelVersion("Cast") { setup in
            guard let code = try setup.node.int("to") else { throw ModelError("is required", field: "attribute 'to'") }
            let type = try ElementType(onnxCode: Int32(code))
            guard type.storageKind != nil else { throw ModelError("casting to \(type) is not supported", field: "attribute 'to'") }
            return Cast(to: type)
        },
        KernelVersion("Identity") { _ in IdentityKernel() },
        KernelVersion("Dropout") { setup in
            Dropout(ratio: setup.opset < 12 ? try setup.node.float("ratio", default: 0.5) : nil)
        },
    ]

    struct Fixed: Kernel {
        let value: Tensor
        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] { [value] }
    }

    struct ConstantOfShape: Kernel {
        let value: Tensor

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let shape = try inputs.required(0).ints
            guard shape.allSatisfy({ $0 >= 0 }) else { throw ModelError("shape \(shape) has a negative dimension") }
            let out = try Tensor(uninitialized: value.elementType, shape: shape)
            let size = value.kind.byteSize
            for k in 0..<out.count { (out.raw + k * size).copyMemory(from: value.raw, byteCount: size) }
            return [out]
        }
    }

    struct ShapeKernel: Kernel {
        let start: Int
        let end: Int?

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let shape = try inputs.required(0).shape
            let r = shape.count
            func clamp(_ v: Int) -> Int { Swift.min(Swift.max(v < 0 ? v + r : v, 0), r) }
            let s = clamp(start), e = clamp(end ?? r)
            let dims = s < e ? Array(shape[s..<e]) : []
            return [Tensor(int64s: dims.map { Int64($0) }, shape: [dims.count])]
        }
    }

    struct SizeKernel: Kernel {
        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            [Tensor(int64s: [Int64(try inputs.required(0).count)], shape: [])]
        }
    }

    struct RangeKernel: Kernel {
        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let start = try inputs.required(0), limit = try inputs.required(1), delta = try inputs.required(2)
            guard start.count == 1, limit.count == 1, delta.count == 1 else { throw ModelError("start, limit and delta must be scalars") }
            switch start.kind {
            case .float:
                let s = start.f[0], l = limit.floats[0], d = delta.floats[0]
                guard d != 0 else { throw ModelError("delta is zero") }
                let n = try Self.rangeCount((Double(l) - Double(s)) / Double(d))
                let out = try Tensor(uninitialized: start.elementType, shape: [n])
                for k in 0..<n { out.f[k] = s + Float(k) * d }
                return [out]
            case .int64:
                let s = start.i[0], l = limit.int64s[0], d = delta.int64s[0]
                guard d != 0 else { throw ModelError("delta is zero") }
                let n = try Self.rangeCount((Double(l) - Double(s)) / Double(d))
                let out = try Tensor(uninitialized: start.elementType, shape: [n])
                for k in 0..<n { out.i[k] = s &+ Int64(k) &* d }
                return [out]
            case .bool: throw ModelError("is not defined for bool")
            }
        }

        /// ceil(steps), at least 0, refusing a count no tensor could have.
        static func rangeCount(_ steps: Double) throws -> Int {
            guard steps.isFinite, steps < 1e15 else { throw ModelError("start, limit and delta give \(steps) elements") }
            return Swift.max(Int(steps.rounded(.up)), 0)
        }
    }

    struct IdentityKernel: Kernel {
        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] { [try inputs.required(0)] }
    }

    struct Dropout: Kernel {
        /// The ratio attribute of opsets before 12; later opsets take it as input 1.
        let ratio: Float?

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            let ratio = ratio ?? inputs.optional(1)?.floats.first ?? 0.5
            if let training = inputs.optional(2), training.bools.first == true, ratio != 0 {
                throw ModelError("training-mode Dropout with a non-zero ratio is random and not supported")
            }
            return [x, Tensor(bools: [Bool](repeating: true, count: x.count), shape: x.shape)]
        }
    }
}

/// Element type conversion.
struct Cast: Kernel {
    let to: ElementType

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        [try Cast.convert(try inputs.required(0), to: to)]
    }

    static func convert(_ x: Tensor, to type: ElementType) throws -> Tensor {
        guard let target = type.storageKind else { throw ModelError("cannot convert to \(type)") }
        if x.kind == target {
            if x.elementType == type { return x }
            let out = try Tensor(uninitialized: type, shape: x.shape)
            out.raw.copyMemory(from: x.raw, byteCount: x.count * target.byteSize)
            return out.normalized()
        }
        let out = try Tensor(uninitialized: type, shape: x.shape)
        let n = x.count
        switch (x.kind, target) {
        case (.float, .int64):
            for k in 0..<n {
                let v = x.f[k]
                out.i[k] = v.isNaN ? .min : (v >= 9.2e18 ? .max : (v <= -9.2e18 ? .min : Int64(v)))
            }
        case (.float, .bool): for k in 0..<n { out.b[k] = x.f[k] != 0 }
        case (.int64, .float): for k in 0..<n { out.f[k] = x.elementType == .uint64 ? Float(UInt64(bitPattern: x.i[k])) : Float(x.i[k]) }
        case (.int64, .bool): for k in 0..<n { out.b[k] = x.i[k] != 0 }
        case (.bool, .float): for k in 0..<n { out.f[k] = x.b[k] ? 1 : 0 }
        case (.bool, .int64): for k in 0..<n { out.i[k] = x.b[k] ? 1 : 0 }
        default: break
        }
        return out.normalized()
    }
}
