import Foundation
import LopperModel
import LopperTesting
import Testing

/// `bench` and `run` with inputs or values the machine cannot hold: an error naming the input
/// or node, exit status 1, never an abort.
@Suite struct AllocationLimitCommandTests {
    let directory: URL
    init() throws { directory = try Fixtures.temporaryDirectory() }

    /// x → Relu → y, with x declared as `dims`.
    func model(_ dims: [Any]) throws -> String {
        var builder = ModelBuilder()
        builder.input("x", dims)
        builder.node("Relu", ["x"], ["y"], name: "relu")
        builder.output("y")
        let path = directory.appendingPathComponent("model-\(UUID().uuidString.prefix(6)).onnx").path
        try builder.model().save(to: path)
        return path
    }

    @Test func hugeInputsAreRefusedNamingTheInput() async throws {
        let declared = try model([1 << 40, 4])
        let symbolic = try model(["n", 4])
        let runs: [[String]] = [
            ["bench", declared],
            ["bench", symbolic, "--batch", "1099511627776"],
            ["bench", symbolic, "--input-shape", "x=4000000000x4"],
            ["bench", symbolic, "--input-shape", "x=4611686018427387904x4"],
        ]
        for arguments in runs {
            let result = try await offThePool { try LopperBinary.run(arguments + ["--runs", "1", "--warmup", "0"]) }
            #expect(result.status == 1, "\(arguments): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("input 'x'") && result.stderr.contains(arguments[1]), "\(arguments): \(result.stderr)")
        }
    }

    @Test func aNodeProducingTerabytesIsRefusedByRun() async throws {
        var builder = ModelBuilder()
        builder.input("x", [1, 4])
        builder.constant("shape", ints: [1 << 40, 4], shape: [2])
        builder.node("Expand", ["x", "shape"], ["y"], name: "blow_up")
        builder.output("y")
        let path = directory.appendingPathComponent("expand.onnx").path
        try builder.model().save(to: path)
        let input = directory.appendingPathComponent("x.npy").path
        try NumPy.write(TensorData(floats: [1, 2, 3, 4], shape: [1, 4]), to: input)
        let result = try await offThePool { try LopperBinary.run(["run", path, "--input", "x=\(input)", "--output-dir", directory.path]) }
        #expect(result.status == 1 && result.stderr.contains("blow_up") && result.stderr.contains("LOPPER_MAX_TENSOR_BYTES"), "\(result.stderr)")
    }
}
