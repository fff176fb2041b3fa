import CKernels
import Foundation

/// Transcendental functions on eight floats at a time, for the activation, unary and Softmax
/// kernels (scalar libm calls were a third of a detector's run time).
///
/// Maximum error against the correctly rounded result, in units in the last place of that
/// result (subnormal results: in units of the smallest subnormal), over every float input:
/// exp ≤ 1.5 ulp, log ≤ 1 ulp, tanh ≤ 2 ulp, erf ≤ 2 ulp, sigmoid ≤ 3 ulp. `VectorMathTests`
/// checks these bounds against double-precision libm on a dense sample of all 2³² bit patterns
/// and at the edge cases (NaN, ±∞, ±0, subnormals, the overflow and underflow thresholds).
/// NaN gives NaN; no input traps.
///
/// Methods (textbook numerics, constants derived by us): exp reduces x = n·ln2 + r with ln 2 split
/// in two (Cody–Waite) and evaluates eʳ by its Taylor series to degree 7, sigmoid is
/// 1 / (1 + e^(−|x|)) (times e^(−|x|) for x < 0); these two are C (`Sources/CKernels/pointwise.inc`,
/// 4, 8 or 16 floats at a time as the CPU allows, exp's multiply-adds fused with AVX2 and AVX-512,
/// which give the same bits, and rounded one by one otherwise; the bounds hold for both), the
/// others Swift; log splits off the
/// binary exponent so the mantissa m lies in [√½, √2) and uses log m = 2·atanh(s), s = (m−1)/(m+1);
/// tanh is an odd polynomial below 0.625 and 1 − 2/(e²ˣ+1) above; erf is an odd polynomial below 1
/// and 1 − e^(−x²)·q(x) above, q fitted to erfc(x)·e^(x²) on [1, 4]. The fitted coefficients come
/// from `Docs/tools/fit_vector_math.py`.
enum VectorMath {
    typealias Vector = SIMD8<Float>
    typealias Bits = SIMD8<Int32>

    @inline(__always) static func bits(_ v: Vector) -> Bits { unsafeBitCast(v, to: Bits.self) }
    @inline(__always) static func float(_ b: Bits) -> Vector { unsafeBitCast(b, to: Vector.self) }

    /// `magnitude` with the sign bit of `sign`.
    @inline(__always) static func copySign(_ magnitude: Vector, _ sign: Vector) -> Vector {
        float((bits(magnitude) & 0x7fff_ffff) | (bits(sign) & Int32(bitPattern: 0x8000_0000)))
    }

    @inline(__always) static func abs(_ v: Vector) -> Vector { float(bits(v) & 0x7fff_ffff) }

    /// `v` limited to `[lower, upper]`, NaN kept (the standard library's `clamped` is not inlined).
    @inline(__always) static func clamp(_ v: Vector, _ lower: Float, _ upper: Float) -> Vector {
        v.replacing(with: lower, where: v .< lower).replacing(with: upper, where: v .> upper)
    }

    /// 1.5·2²³: adding it rounds a float below 2²² in magnitude to an integer, held in the low mantissa bits.
    static let roundingMagic: Float = 12_582_912
    static let roundingMagicBits: Int32 = 0x4B40_0000

    /// eˣ and sigmoid are C (`lopper_pointwise_map`), the code the Conv tile runs on its sums.
    @inline(__always) static func exp(_ x: Vector) -> Vector { pointwise(LOPPER_POINTWISE_EXP, x) }

    @inline(__always) static func log(_ x: Vector) -> Vector {
        // Subnormals are scaled into the normal range first.
        let subnormal = x .< Float.leastNormalMagnitude
        let scaled = x.replacing(with: x * 8_388_608, where: subnormal)
        let exponentBias = Bits(repeating: 127).replacing(with: 150, where: subnormal)
        // Moves the mantissa into [√½, √2): 0x3f3504f3 is √½.
        let u = bits(scaled) &+ (0x3f80_0000 - 0x3f35_04f3)
        let e = (u &>> 23) &- exponentBias
        let m = float((u & 0x007f_ffff) &+ 0x3f35_04f3)
        let f = m - 1
        let s = f / (f + 2)
        let z = s * s
        // 2·atanh(s) = 2s + s·R with R = z·(2/3 + 2z/5 + 2z²/7 + 2z³/9 + …); written around f for accuracy.
        var series = Vector(repeating: 2 / 9) * z + 2 / 7
        series = series * z + 2 / 5
        series = series * z + 2 / 3
        let remainder = series * z
        let halfSquare = 0.5 * f * f
        let logMantissa = f - (halfSquare - s * (halfSquare + remainder))
        let exponent = float(e &+ roundingMagicBits) - roundingMagic
        // ln 2 = 0.693138123 + 9.05800061e-6 (the first part has 16 bits).
        var result = exponent * 0.693_138_123 + (logMantissa + exponent * 9.058_000_61e-6)
        result.replace(with: -.infinity, where: x .== 0)
        result.replace(with: .nan, where: x .< 0)
        result.replace(with: x, where: (x .== .infinity) .| (x .!= x))
        return result
    }

    @inline(__always) static func sigmoid(_ x: Vector) -> Vector { pointwise(LOPPER_POINTWISE_SIGMOID, x) }

    /// `function` of each lane, by the C kernels.
    static func pointwise(_ function: lopper_pointwise, _ x: Vector) -> Vector {
        var v = x
        withUnsafeMutableBytes(of: &v) { bytes in
            let floats = bytes.baseAddress!.assumingMemoryBound(to: Float.self)
            lopper_pointwise_map(function, floats, floats, Vector.scalarCount)
        }
        return v
    }

    @inline(__always) static func tanh(_ x: Vector) -> Vector {
        let a = abs(x)
        let z = x * x
        var p = Vector(repeating: 0.002_148_991) * z - 0.008_184_67
        p = p * z + 0.021_704_003
        p = p * z - 0.053_947_456
        p = p * z + 0.133_332_12
        p = p * z - 0.333_333_3
        let small = copySign(x + x * z * p, x)
        let large = copySign(1 - 2 / (exp(a + a) + 1), x)
        return large.replacing(with: small, where: a .< 0.625)
    }

    @inline(__always) static func erf(_ x: Vector) -> Vector {
        let a = abs(x)
        let z = x * x
        var p = Vector(repeating: 7.898_202e-05) * z - 0.000_802_435_16
        p = p * z + 0.005_190_053
        p = p * z - 0.026_854_808
        p = p * z + 0.112_836_12
        p = p * z - 0.376_126_3
        p = p * z + 0.128_379_17
        let small = x + x * p
        // Past 4, erfc(x) is below half an ulp of 1, and q(4)·e^(−x²) only shrinks further.
        let t = clamp(a, 1, 4) - 2.5
        var q = Vector(repeating: -3.015_710_4e-05) * t - 7.030_655e-05
        q = q * t - 0.000_162_975_24
        q = q * t + 0.000_201_644_81
        q = q * t - 0.000_645_301_95
        q = q * t + 0.002_538_868_7
        q = q * t - 0.007_990_187
        q = q * t + 0.024_930_323
        q = q * t - 0.074_350_03
        q = q * t + 0.210_806_24
        let large = copySign(1 - exp(-(a * a)) * q, x)
        return large.replacing(with: small, where: a .< 1)
    }

    /// Writes `function` of each of `count` floats at `source` to `destination` (which may be `source`).
    @inline(__always)
    static func map(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>, _ count: Int,
                    _ function: (Vector) -> Vector) {
        let width = Vector.scalarCount
        var k = 0
        while k + width <= count {
            let v = UnsafeRawPointer(source + k).loadUnaligned(as: Vector.self)
            UnsafeMutableRawPointer(destination + k).storeBytes(of: function(v), as: Vector.self)
            k += width
        }
        if k < count {
            var v = Vector()
            for lane in 0..<(count - k) { v[lane] = source[k + lane] }
            let y = function(v)
            for lane in 0..<(count - k) { destination[k + lane] = y[lane] }
        }
    }

    /// Applies `function` in place to `count` floats.
    @inline(__always)
    static func map(_ values: UnsafeMutablePointer<Float>, _ count: Int, _ function: (Vector) -> Vector) {
        map(UnsafePointer(values), values, count, function)
    }
}
