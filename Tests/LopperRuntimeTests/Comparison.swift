@testable import LopperRuntime

/// Element-wise closeness as numpy's `assert_allclose` defines it: |a - e| <= atol + rtol * |e|.
enum Comparison {
    /// A description of the first difference in shape, type kind or value; nil when close.
    static func mismatch(_ actual: Tensor, _ expected: Tensor, rtol: Double, atol: Double) -> String? {
        guard actual.shape == expected.shape else { return "shape \(actual.shape), expected \(expected.shape)" }
        guard actual.kind == expected.kind else { return "type \(actual.elementType), expected \(expected.elementType)" }
        let a = actual.doubles, e = expected.doubles
        var worst = 0.0, worstIndex = -1
        for k in a.indices {
            if a[k].isNaN && e[k].isNaN { continue }
            if a[k] == e[k] { continue }
            let excess = abs(a[k] - e[k]) - (atol + rtol * abs(e[k]))
            if !(excess <= 0) && (worstIndex < 0 || excess > worst || excess.isNaN) { worst = excess; worstIndex = k }
        }
        guard worstIndex >= 0 else { return nil }
        let bad = a.indices.filter { k in !(a[k].isNaN && e[k].isNaN) && a[k] != e[k] && !(abs(a[k] - e[k]) <= atol + rtol * abs(e[k])) }.count
        return "\(bad) of \(a.count) elements differ; worst at \(worstIndex): \(a[worstIndex]) vs expected \(e[worstIndex])"
    }
}
