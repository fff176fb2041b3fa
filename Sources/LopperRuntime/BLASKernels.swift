import CBLAS
import Foundation

/// Which SGEMM kernels OpenBLAS runs. OpenBLAS chooses them from the CPU model when it loads; a
/// model it does not know (virtual machines often report a generic one) gets its SSE3 fallback,
/// "Prescott", whose SGEMM ran a YOLOv8n-style detector 5.8× slower than the AVX-512 kernels on
/// the benchmark machine (`Docs/benchmarks.md`). The choice is made before `main` runs and only
/// `OPENBLAS_CORETYPE` changes it, so `lopper` re-executes itself with that variable set.
public enum BLASKernels {
    /// The kernel set OpenBLAS is using, as it names it ("Haswell", "SkylakeX", "Prescott", …).
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// OpenBLAS's kernel sets that use AVX2 and FMA (or more), lowercased.
    static let vectorCores: Set<String> = ["haswell", "skylakex", "cooperlake", "sapphirerapids", "zen", "excavator"]

    /// The `OPENBLAS_CORETYPE` for a CPU with `flags` (as in /proc/cpuinfo) when OpenBLAS chose
    /// `current`, a kernel set without AVX2: SkylakeX with AVX-512, Haswell with AVX2 and FMA;
    /// nil when the choice is already a vector one or the CPU has neither.
    static func betterCoreType(current: String, flags: Set<String>) -> String? {
        guard !vectorCores.contains(current.lowercased()) else { return nil }
        if ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// `betterCoreType` for this process and machine; nil when `OPENBLAS_CORETYPE` is set already.
    public static func betterCoreType() -> String? {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
              let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: ":").last.map { $0.split(separator: " ").map(String.init) } ?? [])
        return betterCoreType(current: coreName, flags: flags)
    }
}
