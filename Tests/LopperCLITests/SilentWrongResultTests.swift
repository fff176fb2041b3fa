import Foundation
import LopperModel
import LopperSensitivity
import LopperTesting
import OrderedCollections
import Testing

/// Inputs that used to give a wrong answer without a word: each is now refused with the file
/// and the place, or handled.
@Suite struct SilentWrongResultTests {
    let directory: URL
    init() throws { directory = try Fixtures.temporaryDirectory() }

    func write(_ text: String, to name: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// chain24's calibration data with one value replaced.
    func calibration(with value: Float, at index: Int) throws -> String {
        let archive = try NumPy.readArchive(path: Fixtures.root.appendingPathComponent("models/chain24_calib.npz").path)
        let original = try #require(archive.values.first)
        var floats = original.floats()
        floats[index] = value
        let path = directory.appendingPathComponent("bad-\(index).npy").path
        try NumPy.write(try TensorData(floats: floats, shape: original.shape), to: path)
        return path
    }

    @Test func nonFiniteCalibrationIsRefusedWithTheIndex() async throws {
        let perSample = try NumPy.readArchive(path: Fixtures.root.appendingPathComponent("models/chain24_calib.npz").path)
            .values.first!.shape.dropFirst().reduce(1, *)
        // Sample 2, element 5 of it.
        let nan = try calibration(with: .nan, at: 2 * perSample + 5)
        let sweep = try await offThePool { try LopperBinary.run(["sweep", "--config", SweepCommandTests.config, "--calib", nan, "--levels", "0.5",
                                          "--db", directory.appendingPathComponent("nan.db").path, "--quiet"]) }
        #expect(sweep.status != 0)
        #expect(sweep.stderr.contains(nan) && sweep.stderr.contains("NaN") && sweep.stderr.contains("sample 2"), "\(sweep.stderr)")
        let inf = try calibration(with: -.infinity, at: 7)
        let prune = try await offThePool { try LopperBinary.run(["prune", Fixtures.model("chain24"), "--granularity", "channel", "--sparsity", "0.5", "--bias-correction", "--calib", inf,
                                          "--output", directory.appendingPathComponent("pruned.onnx").path]) }
        #expect(prune.status != 0)
        #expect(prune.stderr.contains(inf) && prune.stderr.contains("-inf") && prune.stderr.contains("sample 0"), "\(prune.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("pruned.onnx").path))
    }

    /// `a/b` and `a_b` both sanitise to `a_b`: each output gets a file of its own.
    @Test func outputsWhoseFileNamesCollideAreAllWritten() async throws {
        var builder = ModelBuilder()
        builder.input("x", [1, 3])
        builder.node("Neg", ["x"], ["a/b"])
        builder.node("Abs", ["x"], ["a_b"])
        builder.output("a/b")
        builder.output("a_b")
        let model = directory.appendingPathComponent("collide.onnx").path
        try builder.model().save(to: model)
        let input = directory.appendingPathComponent("x.npy").path
        try NumPy.write(try TensorData(floats: [1, -2, 3], shape: [1, 3]), to: input)
        let out = directory.appendingPathComponent("out").path
        let run = try await offThePool { try LopperBinary.run(["run", model, "--input", "x=\(input)", "--output-dir", out]) }
        #expect(run.status == 0, "\(run.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(files.count == 2, "\(files)")
        let values = try files.map { try NumPy.read(path: out + "/" + $0).floats() }
        #expect(Set(values) == [[-1, 2, -3], [1, 2, 3]])
        // The mapping is printed, so each file can be told apart.
        for file in files { #expect(run.stdout.contains(file)) }
    }

    @Test func unknownYAMLKeysAreRefusedWithTheirLine() throws {
        let misspelt = try write("model: m.onnx\ncalibration: c.npz\nlevles: [0.5]\n", to: "misspelt.yaml")
        #expect { try SweepSpec.load(yaml: misspelt) } throws: {
            "\($0)".contains("\(misspelt): line 3") && "\($0)".contains("'levles'") && "\($0)".contains("levels")
        }
        let pattern = try write("model: m.onnx\ncalibration: c.npz\ngranularities: [nm]\npattern: 5:4\n", to: "pattern.yaml")
        #expect { try SweepSpec.load(yaml: pattern) } throws: { "\($0)".contains("line 4") && "\($0)".contains("'pattern'") }
        let nested = try write("model: m.onnx\ncalibration: c.npz\nevaluator:\n  command: run {model}\n  timeout: 5\n", to: "nested.yaml")
        #expect { try SweepSpec.load(yaml: nested) } throws: { "\($0)".contains("line 5") && "\($0)".contains("'evaluator.timeout'") }
    }

    @Test func badYAMLValuesNameTheirLine() throws {
        let path = try write("model: m.onnx\ncalibration: c.npz\nbatch_size: eight\n", to: "value.yaml")
        #expect { try SweepSpec.load(yaml: path) } throws: { "\($0)".contains("line 3") && "\($0)".contains("batch_size") }
    }

    @Test func yamlSyntaxErrorsNameTheirLine() throws {
        let path = try write("model: m.onnx\ncalibration: c.npz\nlevels: [0.1, 0.2\nsamples: 4\n", to: "syntax.yaml")
        #expect { try SweepSpec.load(yaml: path) } throws: { "\($0)".contains("\(path): line ") }
    }

    @Test func emptyYAMLSaysSo() throws {
        for text in ["", "# nothing but a comment\n"] {
            let path = try write(text, to: "empty.yaml")
            #expect { try SweepSpec.load(yaml: path) } throws: { "\($0)" == "\(path): is empty; a sweep file needs at least model and calibration" }
        }
    }
}
