import Foundation

/// The element functions of the broadcasting kernels, one small type each (see `ElementFunction`).
enum Functions {
    struct Add<T: Numeric>: ElementFunction { func callAsFunction(_ a: T, _ b: T) -> T { a + b } }
    struct Sub<T: Numeric>: ElementFunction { func callAsFunction(_ a: T, _ b: T) -> T { a - b } }
    struct Mul<T: Numeric>: ElementFunction { func callAsFunction(_ a: T, _ b: T) -> T { a * b } }
    struct FloatDiv: ElementFunction { func callAsFunction(_ a: Float, _ b: Float) -> Float { a / b } }
    struct FloatPow: ElementFunction { func callAsFunction(_ a: Float, _ b: Float) -> Float { powf(a, b) } }
    struct FloatMax: ElementFunction {
        func callAsFunction(_ a: Float, _ b: Float) -> Float { a.isNaN || b.isNaN ? .nan : Swift.max(a, b) }
    }
    struct FloatMin: ElementFunction {
        func callAsFunction(_ a: Float, _ b: Float) -> Float { a.isNaN || b.isNaN ? .nan : Swift.min(a, b) }
    }
    struct WrappingAdd: ElementFunction { func callAsFunction(_ a: Int64, _ b: Int64) -> Int64 { a &+ b } }
    struct WrappingSub: ElementFunction { func callAsFunction(_ a: Int64, _ b: Int64) -> Int64 { a &- b } }
    struct WrappingMul: ElementFunction { func callAsFunction(_ a: Int64, _ b: Int64) -> Int64 { a &* b } }
    struct IntDiv: ElementFunction { func callAsFunction(_ a: Int64, _ b: Int64) -> Int64 { b == 0 ? 0 : a / b } }
    struct IntPow: ElementFunction {
        func callAsFunction(_ a: Int64, _ b: Int64) -> Int64 { ElementwiseKernels.integerPower(a, b) }
    }
    struct Max<T: Comparable>: ElementFunction { func callAsFunction(_ a: T, _ b: T) -> T { Swift.max(a, b) } }
    struct Min<T: Comparable>: ElementFunction { func callAsFunction(_ a: T, _ b: T) -> T { Swift.min(a, b) } }

    struct Equal<T: Comparable>: ElementFunction { func callAsFunction(_ a: T, _ b: T) -> Bool { a == b } }
    struct Less<T: Comparable>: ElementFunction { func callAsFunction(_ a: T, _ b: T) -> Bool { a < b } }
    struct Greater<T: Comparable>: ElementFunction { func callAsFunction(_ a: T, _ b: T) -> Bool { a > b } }
    struct LessOrEqual<T: Comparable>: ElementFunction { func callAsFunction(_ a: T, _ b: T) -> Bool { a <= b } }
    struct GreaterOrEqual<T: Comparable>: ElementFunction { func callAsFunction(_ a: T, _ b: T) -> Bool { a >= b } }
    struct And: ElementFunction { func callAsFunction(_ a: Bool, _ b: Bool) -> Bool { a && b } }
    struct Or: ElementFunction { func callAsFunction(_ a: Bool, _ b: Bool) -> Bool { a || b } }

    /// PRelu: negative inputs scaled by the slope.
    struct PRelu: ElementFunction { func callAsFunction(_ x: Float, _ slope: Float) -> Float { x < 0 ? x * slope : x } }
    /// Gemm's `beta * C`, ignoring the second operand.
    struct Scale: ElementFunction {
        let factor: Float
        func callAsFunction(_ x: Float, _ unused: Float) -> Float { x * factor }
    }
}
