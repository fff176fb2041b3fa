import Foundation
import LopperModel
import LopperTesting
import Testing

@Suite struct RunBenchCommandTests {
    @Test func runWritesEveryOutputAsNpy() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("x.npy").path
        let values: [Float] = (0..<6144).map { Float($0 % 17) / 17 }
        try NumPy.write(TensorData(floats: values, shape: [2, 3, 32, 32]), to: input)
        let out = directory.appendingPathComponent("out").path
        let result = try LopperBinary.run(["run", Fixtures.model("conv_chain"), "--input", "x=\(input)", "--output-dir", out, "--threads", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        for output in model.graph.outputs {
            let tensor = try NumPy.read(path: "\(out)/\(output.name).npy")
            #expect(tensor.shape.first == 2)
            #expect(tensor.elementType == .float32)
            #expect(result.stdout.contains("\(output.name): float32"))
        }
    }

    @Test func runReportsAMissingInputAndABadFile() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = try LopperBinary.run(["run", Fixtures.model("conv_chain"), "--output-dir", directory.path])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("input 'x' is missing"))
        let bad = directory.appendingPathComponent("bad.npy").path
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: bad))
        let corrupt = try LopperBinary.run(["run", Fixtures.model("conv_chain"), "--input", "x=\(bad)"])
        #expect(corrupt.status != 0)
        #expect(corrupt.stderr.contains("\(bad): is not a .npy file"))
    }

    @Test func runRefusesUnsupportedOperatorsUpFront() throws {
        let result = try LopperBinary.run(["run", Fixtures.model("unsupported_ops"), "--input", "x=/nonexistent.npy"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("2 nodes use operators the runtime does not support"))
        #expect(result.stderr.contains("Unique") && result.stderr.contains("MyOp"))
    }

    @Test func benchPrintsLatencyAndThroughput() throws {
        let result = try LopperBinary.run(["bench", Fixtures.model("conv_chain"), "--batch", "2", "--runs", "3", "--warmup", "1", "--threads", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasSuffix("x=2x3x32x32, 1 thread, 3 runs") == true)
        #expect(lines.contains { $0.hasPrefix("median  ") && $0.hasSuffix(" ms") })
        #expect(lines.contains { $0.hasPrefix("p90     ") })
        // conv_chain has 1,106,080 MACs per image: 2 images, 2 FLOPs each.
        #expect(lines.contains { $0.hasPrefix("GFLOP/s ") && $0.hasSuffix("(0.004 GFLOP per run)") })
    }

    @Test func benchJsonAndValidation() throws {
        let result = try LopperBinary.run(["bench", Fixtures.model("residual"), "--runs", "2", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect((json["median_ms"] as? Double).map { $0 > 0 } == true)
        #expect(json["runs"] as? Int == 2)
        let bad = try LopperBinary.run(["bench", Fixtures.model("residual"), "--threads", "0"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--threads must be at least 1."))
    }

    /// OpenBLAS falls back to SSE3 kernels on CPUs it does not recognise; `lopper` then
    /// re-executes itself with `OPENBLAS_CORETYPE` naming kernels for the CPU's AVX2 or AVX-512.
    @Test func benchRunsVectorBLASKernelsOnAVX2Machines() throws {
        let (flags, json) = try Self.cpuFlagsAndOneBench()
        let core = try #require(json["blas_core"] as? String)
        if flags.isSuperset(of: ["avx2", "fma"]) && ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil {
            #expect(["haswell", "skylakex", "cooperlake", "sapphirerapids", "zen", "excavator"].contains(core.lowercased()), "\(core)")
        }
    }

    /// The Conv tile runs the widest vectors the CPU has (the kernel chooses when it loads).
    @Test func benchReportsTheConvKernelsInstructionSet() throws {
        let (flags, json) = try Self.cpuFlagsAndOneBench()
        let expected = flags.contains("avx512f") ? "avx512f" : flags.isSuperset(of: ["avx2", "fma"]) ? "avx2+fma" : "portable"
        #expect(json["conv_isa"] as? String == expected)
    }

    /// The CPU's flags from /proc/cpuinfo, and `lopper bench --json` of one run.
    static func cpuFlagsAndOneBench() throws -> (Set<String>, [String: Any]) {
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let result = try LopperBinary.run(["bench", Fixtures.model("residual"), "--runs", "1", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        return (flags, try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]))
    }
}
