@testable import LopperRuntime
import Testing

struct BLASKernelsTests {
    @Test func fallbackKernelsAreReplacedByTheCPUsVectorOnes() {
        let avx512: Set = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        #expect(BLASKernels.betterCoreType(current: "Prescott", flags: avx512) == "SkylakeX")
        #expect(BLASKernels.betterCoreType(current: "Prescott", flags: ["sse3", "avx", "avx2", "fma"]) == "Haswell")
        #expect(BLASKernels.betterCoreType(current: "Core2", flags: ["sse3", "avx", "avx2", "fma", "avx512f"]) == "Haswell")
        #expect(BLASKernels.betterCoreType(current: "Prescott", flags: ["sse3", "avx"]) == nil)
        #expect(BLASKernels.betterCoreType(current: "Haswell", flags: avx512) == nil)
        #expect(BLASKernels.betterCoreType(current: "Zen", flags: avx512) == nil)
    }
}
