import Foundation
import LopperModel
@testable import LopperRuntime
import LopperTesting
import Testing

/// Outputs against ONNX Runtime on the same random inputs, passed as `.npy` files.
struct ReferenceTests {
    /// Runs `path` in Lopper and in ONNX Runtime and records every output that differs.
    static func crossCheck(_ path: String, shapes: [String: [Int]] = [:], batch: Int = 1, seed: UInt64 = 1,
                           threads: Int = 2, rtol: Double = 1e-4, atol: Double = 1e-5) throws {
        let model = try Model.load(path: path)
        let executor = try Executor(model: model, options: ExecutorOptions(threads: threads))
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var random = SeededGenerator(seed: seed)
        var feeds: [String: Tensor] = [:]
        var arguments = ["run", path, "--output-dir", directory.appendingPathComponent("ort").path]
        for (position, input) in model.graph.feedInputs.enumerated() {
            let declared = input.type?.shape ?? []
            let shape = try shapes[input.name] ?? declared.enumerated().map { axis, dim in
                if let value = dim.value { return value }
                // Other symbolic sizes (a sequence length) get a small odd value.
                return axis == 0 ? batch : 7
            }
            let tensor = Tensor(floats: (0..<Tensor.count(shape)).map { _ in random.normal() }, shape: shape)
            let file = directory.appendingPathComponent("input\(position).npy").path
            try NumPy.write(tensor.tensorData(), to: file)
            feeds[input.name] = tensor
            arguments += ["--input", "\(input.name)=\(file)"]
        }
        let answer = try Reference.call(arguments)
        let written = try #require(answer["outputs"] as? [String: [String: Any]])
        let ours = try executor.run(feeds)
        for name in executor.outputNames {
            let file = try #require(written[name]?["file"] as? String, "ONNX Runtime wrote no output \(name)")
            let expected = try Tensor(try NumPy.read(path: file))
            let actual = try #require(ours[name])
            if let problem = Comparison.mismatch(actual, expected, rtol: rtol, atol: atol) {
                Issue.record("\(URL(fileURLWithPath: path).lastPathComponent) output '\(name)': \(problem)")
            }
        }
    }

    @Test(.enabled(if: Reference.isAvailable), arguments: Fixtures.runnableFixtures)
    func fixtureMatchesOnnxRuntime(name: String) throws {
        let path = Fixtures.model(name)
        try Self.crossCheck(path, batch: 1)
        try Self.crossCheck(path, batch: 3, seed: 7, threads: 1)
    }

    @Test(.enabled(if: Reference.isAvailable && Fixtures.hasRealModels))
    func ocrDetectorMatchesOnnxRuntime() throws {
        try Self.crossCheck(Fixtures.ocrDetector, shapes: ["x": [1, 3, 320, 320]])
        try Self.crossCheck(Fixtures.ocrDetector, shapes: ["x": [2, 3, 96, 160]], seed: 3, threads: 1)
    }

    @Test(.enabled(if: Reference.isAvailable && Fixtures.hasRealModels))
    func ocrClassifierMatchesOnnxRuntime() throws {
        try Self.crossCheck(Fixtures.ocrClassifier, shapes: ["x": [1, 3, 48, 192]])
        try Self.crossCheck(Fixtures.ocrClassifier, shapes: ["x": [8, 3, 48, 192]], seed: 5, threads: 1)
    }
}

