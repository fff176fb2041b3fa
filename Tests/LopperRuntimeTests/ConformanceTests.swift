import Foundation
import LopperModel
@testable import LopperRuntime
import Testing

/// The ONNX backend node tests from Debian's libonnx-testdata, for every test whose model uses
/// only supported operators.
struct ConformanceTests {
    static let root = "/usr/share/libonnx-testdata/data/node"

    /// Every supported-operator test that is not run, with the reason. The only place tests are skipped.
    static let skipped: [String: String] = [
        "test_batchnorm_epsilon_training_mode": "training-mode BatchNormalization",
        "test_batchnorm_example_training_mode": "training-mode BatchNormalization",
        "test_training_dropout": "training-mode Dropout is random",
        "test_training_dropout_default": "training-mode Dropout is random",
        "test_training_dropout_default_mask": "training-mode Dropout is random",
        "test_training_dropout_mask": "training-mode Dropout is random",
        "test_cast_BFLOAT16_to_FLOAT": "the test data stores bfloat16 tensors with type uint16",
        "test_cast_FLOAT_to_BFLOAT16": "the test data stores bfloat16 tensors with type uint16",
        "test_castlike_BFLOAT16_to_FLOAT_expanded": "the test data stores bfloat16 tensors with type uint16",
        "test_castlike_FLOAT_to_BFLOAT16_expanded": "the test data stores bfloat16 tensors with type uint16",
        "test_cast_FLOAT_to_STRING": "string tensors are not computed with",
        "test_cast_STRING_to_FLOAT": "string tensors are not computed with",
        "test_castlike_STRING_to_FLOAT_expanded": "string tensors are not computed with",
        "test_castlike_FLOAT_to_STRING_expanded": "string tensors are not computed with",
    ]

    /// Tests of the recurrent, control-flow and other operators added for voice and wake-word
    /// models that must run (not drop out as unsupported) and pass.
    static let required = [
        "test_lstm_defaults", "test_lstm_with_initial_bias", "test_lstm_with_peepholes", "test_lstm_batchwise",
        "test_gru_defaults", "test_gru_seq_length", "test_gru_with_initial_bias", "test_gru_batchwise",
        "test_rnn_seq_length", "test_simple_rnn_defaults", "test_simple_rnn_with_initial_bias", "test_simple_rnn_batchwise",
        "test_if", "test_loop11", "test_scan_sum", "test_scan9_sum",
        "test_reduce_prod_keepdims_random", "test_reduce_log_sum_exp_keepdims_random", "test_einsum_batch_diagonal",
        "test_einsum_batch_matmul", "test_einsum_inner_prod", "test_einsum_sum", "test_einsum_transpose",
        "test_instancenorm_epsilon", "test_depthtospace_crd_mode", "test_depthtospace_dcr_mode", "test_spacetodepth",
        "test_hardmax_axis_0", "test_hardmax_default_axis", "test_top_k", "test_top_k_smallest", "test_nonzero_example",
        "test_scatternd", "test_scatternd_add", "test_scatternd_multiply", "test_gather_elements_negative_indices",
        "test_cumsum_1d_reverse_exclusive", "test_cumsum_2d_negative_axis", "test_mod_mixed_sign_int64",
        "test_mod_mixed_sign_float32", "test_floor", "test_ceil", "test_round", "test_sign", "test_sin", "test_cos",
    ]

    static var available: Bool { FileManager.default.fileExists(atPath: root) }

    struct Outcome {
        var passed: [String] = []
        var failed: [String] = []
        var skipped: [String] = []
        var notApplicable = 0
    }

    @Test(.enabled(if: available))
    func nodeTests() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.root).filter { $0.hasPrefix("test_") }.sorted()
        var outcome = Outcome()
        for name in names {
            let directory = "\(Self.root)/\(name)"
            guard let model = try? Model.load(path: "\(directory)/model.onnx") else { outcome.notApplicable += 1; continue }
            if (try? Executor.checkSupport(model.graph, opset: model.opset() ?? 1)) == nil {
                outcome.notApplicable += 1
                continue
            }
            if Self.skipped[name] != nil { outcome.skipped.append(name); continue }
            if let problem = Self.run(model, directory: directory) {
                outcome.failed.append("\(name): \(problem)")
            } else {
                outcome.passed.append(name)
            }
        }
        print("ONNX conformance: \(outcome.passed.count) of \(outcome.passed.count + outcome.failed.count) node tests for supported operators pass; \(outcome.skipped.count) skipped (listed in ConformanceTests.skipped), \(outcome.notApplicable) use unsupported operators")
        for failure in outcome.failed { Issue.record("\(failure)") }
        #expect(outcome.passed.count > 400)
        #expect(outcome.skipped.count == Self.skipped.count, "a skip-listed test no longer exists or became unsupported")
        let missing = Self.required.filter { !outcome.passed.contains($0) }
        #expect(missing.isEmpty, "required node tests that did not run and pass: \(missing)")
    }

    /// Runs every data set of one test; a description of the first mismatch, or nil.
    static func run(_ model: Model, directory: String) -> String? {
        do {
            let executor = try Executor(model: model, options: ExecutorOptions(threads: 1))
            let sets = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("test_data_set_") }.sorted()
            for set in sets {
                let folder = "\(directory)/\(set)"
                var feeds: [String: Tensor] = [:]
                for (position, input) in model.graph.feedInputs.enumerated() {
                    let file = "\(folder)/input_\(position).pb"
                    guard FileManager.default.fileExists(atPath: file) else { continue }
                    feeds[input.name] = try Tensor(try TensorData(serializedTensor: try Data(contentsOf: URL(fileURLWithPath: file))))
                }
                let results = try executor.run(feeds)
                for (position, output) in model.graph.outputs.enumerated() {
                    let expected = try Tensor(try TensorData(serializedTensor: try Data(contentsOf: URL(fileURLWithPath: "\(folder)/output_\(position).pb"))))
                    guard let actual = results[output.name] else { return "\(set): output \(output.name) missing" }
                    if let problem = Comparison.mismatch(actual, expected, rtol: 1e-3, atol: 1e-7) {
                        return "\(set): output '\(output.name)': \(problem)"
                    }
                }
            }
            return nil
        } catch {
            return "\(error)"
        }
    }
}
