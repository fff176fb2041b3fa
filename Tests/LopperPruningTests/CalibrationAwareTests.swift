import Foundation
import LopperModel
import LopperPruning
import LopperRuntime
import LopperTesting
import OrderedCollections
import Testing

/// Wanda and bias correction, which need activations from calibration data.
@Suite struct CalibrationAwareTests {
    let directory: URL
    init() throws { directory = try Fixtures.temporaryDirectory() }

    /// Inputs with a non-zero mean, so that removed channels carry a mean contribution.
    func calibration(for model: Model, samples: Int = 16, shape: [Int] = [3, 32, 32]) throws -> (path: String, data: Calibration) {
        var generator = SeededGenerator(seed: 5)
        let values = generator.floats(samples * shape.reduce(1, *), in: -0.5...1.5)
        let path = directory.appendingPathComponent("calib.npz").path
        try NumPy.writeArchive(["x": TensorData(floats: values, shape: [samples] + shape)], to: path)
        return (path, try Calibration(path: path, for: model, batchSize: 4))
    }

    @Test(.enabled(if: Reference.isAvailable)) func activationNormsMatchONNXRuntime() throws {
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let groups = try DependencyAnalysis.groups(of: model)
        let (path, calibration) = try calibration(for: model)
        let statistics = try ActivationStatistics.collect(model, groups: groups, calibration: calibration, threads: 1)

        // Independent: ONNX Runtime computes the same activations as extra graph outputs.
        var observed = model
        let value = model.graph.nodes[2].outputs[0]   // relu_0: conv_1 reads it
        observed.graph.outputs.append(ValueInfo(name: value, type: TensorType(elementType: .float32, shape: nil)))
        let observedPath = directory.appendingPathComponent("observed.onnx").path
        try observed.save(to: observedPath)
        let inputPath = directory.appendingPathComponent("x.npy").path
        try NumPy.write(try NumPy.readArchive(path: path)["x"]!, to: inputPath)
        _ = try Reference.call(["run", observedPath, "--input", "x=\(inputPath)", "--output-dir", directory.path])
        let activations = try NumPy.read(path: directory.appendingPathComponent("\(value).npy").path)
        let x = activations.floats(), channels = activations.shape[1], inner = activations.shape[2...].reduce(1, *)
        var expected = [Double](repeating: 0, count: channels)
        for (index, v) in x.enumerated() { expected[(index / inner) % channels] += Double(v) * Double(v) }
        let norms = try #require(statistics.norms(value))
        for c in 0..<channels {
            #expect(abs(norms[c] - expected[c].squareRoot()) <= 1e-4 * expected[c].squareRoot(), "channel \(c)")
        }
    }

    @Test func wandaWeighsMagnitudesByActivationNorms() throws {
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let groups = try DependencyAnalysis.groups(of: model)
        let (_, calibration) = try calibration(for: model)
        let statistics = try ActivationStatistics.collect(model, groups: groups, calibration: calibration, threads: 1)
        let scores = try ActivationImportance(statistics: statistics).scores(for: groups[0], in: model)
        let norms = try #require(statistics.norms(model.graph.nodes[2].outputs[0]))
        let w1 = try #require(try model.graph.constant(model.graph.nodes[3].inputs[1])).floats()
        for c in 0..<8 {
            var magnitude = 0.0
            for o in 0..<16 { for k in 0..<9 { magnitude += Double(abs(w1[(o * 8 + c) * 9 + k])) } }
            #expect(abs(scores[c] - magnitude * norms[c]) <= 1e-9 * max(1, scores[c]))
        }
    }

    @Test func biasCorrectionRestoresTheMeanOfALinearConsumer() throws {
        // Removing conv_2's channels: the Gemm reads their pooled values linearly, so folding their
        // mean contribution into its bias makes the mean logits over the calibration set exact.
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let groups = try DependencyAnalysis.groups(of: model)
        let (_, calibration) = try calibration(for: model)
        let statistics = try ActivationStatistics.collect(model, groups: groups, calibration: calibration, threads: 1)
        let removing = [2: [0, 3, 5, 6, 9, 12, 14, 15]]
        let corrected = try BiasCorrection.apply(model, groups: groups, removing: removing, statistics: statistics)
        #expect(corrected.corrected == ["gemm_0"] && corrected.skipped.isEmpty)
        let pruned = try ChannelSurgery.prune(corrected.model, groups: groups, removing: removing)
        let uncorrected = try ChannelSurgery.prune(model, groups: groups, removing: removing)

        func meanLogits(_ model: Model) throws -> [Double] {
            let executor = try Executor(model: model, options: ExecutorOptions(threads: 1))
            var sum = [Double](repeating: 0, count: 10)
            for batch in calibration.batches {
                let logits = try executor.run(batch)["logits"]!
                for (index, v) in logits.floats.enumerated() { sum[index % 10] += Double(v) }
            }
            return sum.map { $0 / Double(calibration.samples) }
        }
        let dense = try meanLogits(model), exact = try meanLogits(pruned), drifted = try meanLogits(uncorrected)
        for i in 0..<10 { #expect(abs(exact[i] - dense[i]) < 1e-4, "logit \(i): \(exact[i]) vs \(dense[i])") }
        #expect(zip(drifted, dense).map { abs($0 - $1) }.max()! > 1e-2, "the removed channels must matter")

        let reference = try Executor(model: model)
        let errorWith = try RelativeError.measure(reference: reference, candidate: try Executor(model: pruned), on: calibration.batches)
        let errorWithout = try RelativeError.measure(reference: reference, candidate: try Executor(model: uncorrected), on: calibration.batches)
        #expect(errorWith["logits"]! < errorWithout["logits"]!)
    }

    @Test func calibrationFilesAreChecked() throws {
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        func error(_ arrays: OrderedDictionary<String, TensorData>) throws -> String {
            let path = directory.appendingPathComponent("bad.npz").path
            try NumPy.writeArchive(arrays, to: path)
            do { _ = try Calibration(path: path, for: model) } catch { return "\(error)" }
            return "no error"
        }
        #expect(try error(["y": TensorData(floats: Array(repeating: 0, count: 3 * 3 * 32 * 32), shape: [3, 3, 32, 32])])
            .contains("holds array 'y', which is not a model input (inputs: x)"))
        #expect(try error(["x": TensorData(floats: Array(repeating: 0, count: 3 * 3 * 16 * 16), shape: [3, 3, 16, 16])])
            .contains("array 'x': has shape [3, 3, 16, 16], but the model input needs 32 on axis 2"))
        #expect(try error(["x": TensorData(int64s: Array(repeating: 0, count: 3 * 3 * 32 * 32), shape: [3, 3, 32, 32])])
            .contains("is int64, but the model input is float32"))
        let corrupt = directory.appendingPathComponent("corrupt.npz").path
        try Data("PK\u{3}\u{4} not really a zip".utf8).write(to: URL(fileURLWithPath: corrupt))
        #expect(throws: ModelError.self) { try Calibration(path: corrupt, for: model) }
    }
}
