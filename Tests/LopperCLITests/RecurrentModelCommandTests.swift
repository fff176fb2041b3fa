import Foundation
import LopperModel
import LopperSensitivity
import LopperTesting
import Testing

/// The voice-activity model (LSTM with state inputs and outputs, an If on a run-time flag and
/// one on a constant) and the wake-word model (convolutions, GRU, dense) through the commands.
@Suite struct RecurrentModelCommandTests {
    let directory: URL
    init() throws { directory = try Fixtures.temporaryDirectory() }

    var vad: String { Fixtures.model("vad_lstm_if") }
    var calibration: String { Fixtures.root.appendingPathComponent("models/vad_calib.npz").path }

    @Test func inspectListsTheRecurrentAndControlFlowLayers() throws {
        let result = try LopperBinary.run(["inspect", vad, "--input-shape", "features=1x12x40", "--input-shape", "h_in=1x1x32",
                                           "--input-shape", "c_in=1x1x32", "--input-shape", "reset=1"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("lstm_0") && result.stdout.contains("output_mode") && result.stdout.contains("unsupported none"))
        // 12 steps × 4 gates × 32 units × (48 inputs + 32 recurrent) for the LSTM, plus the two dense layers.
        let macs = 12 * 4 * 32 * (48 + 32) + 12 * 40 * 48 + 12 * 32
        #expect(result.stdout.contains("MACs        \(macs.formatted(.number.grouping(.automatic)))"), "\(result.stdout)")
    }

    @Test func runWritesTheStateOutputs() throws {
        let archive = try NumPy.readArchive(path: calibration)
        var arguments = ["run", vad, "--output-dir", directory.path]
        for (name, data) in archive {
            let file = directory.appendingPathComponent("\(name).npy").path
            try NumPy.write(data, to: file)
            arguments += ["--input", "\(name)=\(file)"]
        }
        let result = try LopperBinary.run(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        let state = try NumPy.read(path: directory.appendingPathComponent("h_out.npy").path)
        #expect(state.shape == [24, 1, 32])
        #expect(try NumPy.read(path: directory.appendingPathComponent("speech.npy").path).shape == [24, 12, 1])
    }

    @Test func groupsListTheCarriedStateLSTM() throws {
        let result = try LopperBinary.run(["groups", vad, "--verbose"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.contains { $0.contains("lstm_0") && $0.contains("32") && $0.hasSuffix("yes") }, "\(result.stdout)")
        #expect(lines.contains { $0.contains("stateInput") && $0.contains("lstm_0") && $0.contains("axis 2") }, "\(result.stdout)")
        #expect(lines.contains { $0.contains("stateOutput") && $0.contains("state_h") && $0.contains("h_out axis 2") }, "\(result.stdout)")
        // The output layer's one channel is read inside the output_mode If's branches: it stays.
        #expect(lines.contains { $0.contains("matmul_1") && $0.contains("reaches 'output_mode' (If)") }, "\(result.stdout)")
        let wake = try LopperBinary.run(["groups", Fixtures.model("wake_word")])
        #expect(wake.stdout.split(separator: "\n").contains { $0.contains("gru_0") && $0.contains("yes") }, "\(wake.stdout)")
    }

    @Test func pruneShrinksTheFrontEndAndTheGRU() throws {
        let output = directory.appendingPathComponent("vad.onnx").path
        let result = try LopperBinary.run(["prune", vad, "--granularity", "channel", "--sparsity", "0.5", "-o", output])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("removed 40 of 80 in 2 groups"), "\(result.stdout)")
        let lstm = try #require(try Model.load(path: output).graph.nodes.first { $0.opType == "LSTM" })
        #expect(try lstm.int("hidden_size") == 16)
        let wakeOutput = directory.appendingPathComponent("wake.onnx").path
        let wake = try LopperBinary.run(["prune", Fixtures.model("wake_word"), "--granularity", "channel", "--sparsity", "0.5", "-o", wakeOutput])
        #expect(wake.status == 0, "\(wake.stderr)")
        let gru = try #require(try Model.load(path: wakeOutput).graph.nodes.first { $0.opType == "GRU" })
        #expect(try gru.int("hidden_size") == 12)
        if Reference.isAvailable {
            let vadShapes = ["features=2x12x40", "h_in=2x1x32", "c_in=2x1x32", "reset=2"].flatMap { ["--shape", $0] }
            for (path, shapes) in [(output, vadShapes), (wakeOutput, [])] {
                #expect(try Reference.checkerError(path) == nil)
                _ = try Reference.call(["count", path] + shapes)  // runs in ONNX Runtime
            }
        }
    }

    @Test func sweepScoresTheVoiceActivityModel() throws {
        let store = directory.appendingPathComponent("vad.db").path
        let result = try LopperBinary.run(["sweep", vad, "--calib", calibration,
                                           "--db", store, "--criterion", "l1", "--levels", "0.25,0.5", "--batch-size", "8", "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try ResultsStore(path: store, readOnly: true).allJobs()
        let groups = try ResultsStore(path: store, readOnly: true).groups()
        let lstm = try #require(groups.first { $0.name == "lstm_0" }, "\(groups.map(\.name))")
        #expect(rows.count == 4 && rows.allSatisfy { $0.state == .done && $0.score != nil })
        // Half the hidden units damage the output more than a quarter.
        let scores = rows.filter { $0.job.group == lstm.id }.sorted { $0.job.level < $1.job.level }.compactMap(\.score)
        #expect(scores.count == 2 && scores[0] > 0 && scores[0] < scores[1], "\(scores)")
    }
}
