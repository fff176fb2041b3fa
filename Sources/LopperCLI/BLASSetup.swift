import Foundation
import LopperRuntime

/// Before any command runs: OpenBLAS kernels for this CPU's vector units (`BLASKernels`).
public enum BLASSetup {
    /// Re-executes this program with `OPENBLAS_CORETYPE` set when OpenBLAS chose kernels without
    /// AVX2 on a CPU that has it. Returns when there is nothing to do, or when the exec fails
    /// (the run then goes on with OpenBLAS's choice). Worker processes inherit the variable, so a
    /// sweep's processes all run the same kernels.
    public static func useVectorKernels() {
        #if os(Linux)
        guard let core = BLASKernels.betterCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        #endif
    }
}
