import Foundation
import LopperTesting
import Testing

@Suite struct PruneCommandTests {
    let directory: URL
    init() throws { directory = try Fixtures.temporaryDirectory() }

    @Test func channelPruningShrinksTheModel() throws {
        let output = directory.appendingPathComponent("pruned.onnx").path
        let result = try LopperBinary.run(["prune", Fixtures.model("conv_chain"), "--granularity", "channel",
                                           "--sparsity", "0.5", "--round-to", "4", "-o", output])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        // The pruned counts must match an independent count of the written file.
        #expect(lines.contains { $0.hasPrefix("params") && $0.contains("4,042") })
        #expect(lines.last == "wrote \(output)")
        if Reference.isAvailable {
            #expect(try Reference.checkerError(output) == nil)
            let counted = try Reference.call(["count", output])
            #expect(lines.contains { $0.hasPrefix("params") && $0.contains("4,042") && $0.contains(Self.grouped(counted["params"] as! Int)) })
            #expect(lines.contains { $0.hasPrefix("MACs") && $0.contains(Self.grouped(counted["macs"] as! Int)) })
        }
    }

    @Test func headPruningHalvesAttention() throws {
        let output = directory.appendingPathComponent("heads.onnx").path
        let result = try LopperBinary.run(["prune", Fixtures.model("transformer_encoder"), "--granularity", "head",
                                           "--sparsity", "0.5", "--input-shape", "x=1x16x64", "-o", output])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("heads       removed 2 of 4 in 1 groups"))
        if Reference.isAvailable { #expect(try Reference.checkerError(output) == nil) }
        let none = try LopperBinary.run(["prune", Fixtures.model("conv_chain"), "--granularity", "head", "--sparsity", "0.5", "-o", output + "2"])
        #expect(none.stderr.contains("the model has no attention heads Lopper recognizes"))
    }

    @Test func nmReportsSparsityAndEffectiveMACs() throws {
        let output = directory.appendingPathComponent("nm.onnx").path
        let result = try LopperBinary.run(["prune", Fixtures.model("conv_chain"), "--granularity", "nm", "--pattern", "2:4", "-o", output])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("sparsity    50.0% of 3,616 weights in 3 layers are zero"))
        #expect(result.stdout.contains("MACs on non-zeros"))
    }

    @Test func badRequestsGiveClearErrors() throws {
        let output = directory.appendingPathComponent("x.onnx").path
        let model = Fixtures.model("conv_chain")
        let cases: [([String], String)] = [
            (["--granularity", "channel", "--sparsity", "1.0"], "--sparsity must be in [0, 1), got 1.0."),
            (["--granularity", "channel"], "--sparsity is required for --granularity channel."),
            (["--granularity", "nm", "--pattern", "4:4"], "--pattern needs 1 ≤ N < M, got 4:4."),
            (["--granularity", "nm", "--pattern", "two:four"], "--pattern must look like 2:4, got 'two:four'."),
            (["--granularity", "unstructured", "--sparsity", "0.5", "--layers", "nope*"], "--layers 'nope*' matches no Conv"),
            (["--granularity", "channel", "--sparsity", "0.5", "--criterion", "wanda"], "--criterion wanda needs calibration data: --calib FILE.npz."),
            (["--granularity", "nm", "--bias-correction", "--calib", "c.npz"], "--bias-correction applies to --granularity channel or head."),
            (["--granularity", "channel", "--sparsity", "0.5", "--calib", "/nonexistent/c.npz"], "/nonexistent/c.npz"),
            (["--granularity", "channel", "--sparsity", "0.5", "--layers", "gemm_0"],
             "no group matching --layers 'gemm_0' can be pruned: gemm_0: reaches graph output 'logits'"),
        ]
        for (arguments, message) in cases {
            let result = try LopperBinary.run(["prune", model] + arguments + ["-o", output])
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    static func grouped(_ value: Int) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.groupingSeparator = ","
        formatter.usesGroupingSeparator = true
        return formatter.string(from: NSNumber(value: value))!
    }
}
