#!/usr/bin/env python3
"""Generate the recurrent, control-flow and extra-operator fixtures under Tests/Fixtures/models/.

Built with onnx.helper from make_fixtures.Builder (deterministic weights), checked with ONNX's
full checker and run once in ONNX Runtime. Run from anywhere:

    python3 Tests/Fixtures/make_recurrent_fixtures.py
"""
import numpy as np
import onnx
from onnx import TensorProto, helper

from make_fixtures import MODELS, Builder, summarize, tensor, validate

INT64 = TensorProto.INT64


def branch(name, nodes, outputs, inits=()):
    """A subgraph with no declared inputs: it reads the enclosing scope's values."""
    return helper.make_graph(nodes, name, [], outputs, initializer=list(inits))


def vad_lstm_if():
    """Voice-activity style: features [N, T, 40] -> dense -> LSTM carrying state across calls
    (h_in/c_in in, h_out/c_out out, batch first like every input and output), reset by an If
    when `reset` is high; a second If with a constant condition (the deployed configuration)
    chooses probabilities over logits."""
    b = Builder()
    hidden, feat, proj = 32, 40, 48
    x = b.op("Transpose", ["features"], perm=[1, 0, 2])  # [T, N, 40]
    h = b.op("Relu", [b.linear(x, feat, proj)])  # [T, N, 48]
    reset = b.op("Greater", [b.op("ReduceMax", ["reset"], keepdims=0), b.const("threshold", 0.5)])
    h_in = b.op("Transpose", ["h_in"], perm=[1, 0, 2])  # [1, N, 32]
    c_in = b.op("Transpose", ["c_in"], perm=[1, 0, 2])
    zero = b.const("zero", 0.0)
    then_branch = branch("reset_state", [
        helper.make_node("Mul", [h_in, zero], ["h_reset"]),
        helper.make_node("Mul", [c_in, zero], ["c_reset"]),
    ], [tensor("h_reset", [1, "N", hidden]), tensor("c_reset", [1, "N", hidden])])
    else_branch = branch("keep_state", [
        helper.make_node("Identity", [h_in], ["h_kept"]),
        helper.make_node("Identity", [c_in], ["c_kept"]),
    ], [tensor("h_kept", [1, "N", hidden]), tensor("c_kept", [1, "N", hidden])])
    h0, c0 = b.op("If", [reset], n_out=2, then_branch=then_branch, else_branch=else_branch)
    w = b.const("W", b.normal((1, 4 * hidden, proj), 0.15))
    r = b.const("R", b.normal((1, 4 * hidden, hidden), 0.15))
    bias = b.const("B", b.normal((1, 8 * hidden), 0.1))
    y, y_h, y_c = b.op("LSTM", [h, w, r, bias, "", h0, c0], n_out=3, hidden_size=hidden)
    b.nodes.append(helper.make_node("Transpose", [y_h], ["h_out"], name="state_h", perm=[1, 0, 2]))
    b.nodes.append(helper.make_node("Transpose", [y_c], ["c_out"], name="state_c", perm=[1, 0, 2]))
    seq = b.op("Squeeze", [y, b.const("axis", [1], dtype=np.int64)])  # [T, N, 32]
    logits = b.op("Transpose", [b.linear(seq, hidden, 1)], perm=[1, 0, 2])  # [N, T, 1]
    deployed = b.const("deployed", True, dtype=np.bool_)
    probabilities = branch("probabilities", [helper.make_node("Sigmoid", [logits], ["p"])],
                           [tensor("p", ["N", "T", 1])])
    raw = branch("logits", [helper.make_node("Identity", [logits], ["l"])], [tensor("l", ["N", "T", 1])])
    b.nodes.append(helper.make_node("If", [deployed], ["speech"], name="output_mode",
                                    then_branch=probabilities, else_branch=raw))
    return b.model("vad_lstm_if", [tensor("features", ["N", "T", feat]), tensor("h_in", ["N", 1, hidden]),
                                   tensor("c_in", ["N", 1, hidden]), tensor("reset", ["N"])],
                   [tensor("speech", ["N", "T", 1]), tensor("h_out", ["N", 1, hidden]),
                    tensor("c_out", ["N", 1, hidden])], 17)


def wake_word():
    """Wake-word style: a log-mel patch [N, 1, 40, 32] -> two convolutions -> GRU over time ->
    dense -> softmax over (silence, unknown, keyword)."""
    b = Builder()
    hidden = 24
    h = b.op("Relu", [b.conv("mel", 1, 8)])
    h = b.op("Relu", [b.conv(h, 8, 8, stride=2)])  # [N, 8, 20, 16]
    h = b.op("Reshape", [h, b.const("shape", [0, 160, -1], dtype=np.int64)])  # [N, 160, 16]
    h = b.op("Transpose", [h], perm=[2, 0, 1])  # [16, N, 160]
    w = b.const("W", b.normal((1, 3 * hidden, 160), 0.08))
    r = b.const("R", b.normal((1, 3 * hidden, hidden), 0.2))
    bias = b.const("B", b.normal((1, 6 * hidden), 0.1))
    _, last = b.op("GRU", [h, w, r, bias], n_out=2, hidden_size=hidden, linear_before_reset=1)
    last = b.op("Squeeze", [last, b.const("axis", [0], dtype=np.int64)])  # [N, 24]
    fc = b.const("fc_w", b.normal((3, hidden), 0.3))
    logits = b.op("Gemm", [last, fc, b.const("fc_b", b.normal(3, 0.1))], transB=1)
    b.nodes.append(helper.make_node("Softmax", [logits], ["scores"], name="softmax_0", axis=1))
    return b.model("wake_word", [tensor("mel", ["N", 1, 40, 32])], [tensor("scores", ["N", 3])], 17)


def recurrent_variants():
    """A forward LSTM with peepholes, clip and input_forget, then a reverse RNN with LeakyRelu
    (alpha from activation_alpha), then a bidirectional GRU whose final states (both
    directions summed) feed a dense layer: every hidden-unit group but the GRU's has a consumer
    to prune with it, and the GRU's is pruned in both directions at once."""
    b = Builder()
    x = b.op("Transpose", ["x"], perm=[1, 0, 2])  # [T=5, N, 4]
    lstm = [b.const("W", b.normal((1, 4 * 6, 4), 0.4)), b.const("R", b.normal((1, 4 * 6, 6), 0.4)),
            b.const("B", b.normal((1, 8 * 6), 0.2)), "", "", "", b.const("P", b.normal((1, 3 * 6), 0.3))]
    y, _, _ = b.op("LSTM", [x] + lstm, n_out=3, hidden_size=6, clip=2.5, input_forget=1)
    y = b.op("Squeeze", [y, b.const("axis", [1], dtype=np.int64)])  # [T, N, 6]
    rnn = [b.const("W", b.normal((1, 5, 6), 0.4)), b.const("R", b.normal((1, 5, 5), 0.4)),
           b.const("B", b.normal((1, 2 * 5), 0.2))]
    y, _ = b.op("RNN", [y] + rnn, n_out=2, hidden_size=5, direction="reverse",
                activations=["LeakyRelu"], activation_alpha=[0.2])
    y = b.op("Squeeze", [y, b.const("axis", [1], dtype=np.int64)])  # [T, N, 5]
    gru = [b.const("W", b.normal((2, 3 * 4, 5), 0.4)), b.const("R", b.normal((2, 3 * 4, 4), 0.4)),
           b.const("B", b.normal((2, 6 * 4), 0.2))]
    _, last = b.op("GRU", [y] + gru, n_out=2, hidden_size=4, direction="bidirectional")  # Y_h [2, N, 4]
    summed = b.op("ReduceSum", [last, b.const("axes", [0], dtype=np.int64)], keepdims=0)  # [N, 4]
    b.nodes.append(helper.make_node("MatMul", [summed, b.const("fc", b.normal((4, 3), 0.5))], ["y"], name="matmul_out"))
    return b.model("recurrent_variants", [tensor("x", ["N", 5, 4])], [tensor("y", ["N", 3])], 14)


def control_flow():
    """Loop and Scan whose bodies read outer-scope values, with an If nested in the Scan body
    that reads a value two scopes out."""
    b = Builder()
    weight = b.const("weight", b.normal((4, 4), 0.5))
    bias = b.const("bias", b.normal(4, 0.1))
    limit = b.const("limit", 0.0)
    # Loop: 3 iterations of state = tanh(state @ weight + bias), each state also scanned out.
    loop_body = helper.make_graph([
        helper.make_node("MatMul", ["state", weight], ["product"]),
        helper.make_node("Add", ["product", bias], ["shifted"]),
        helper.make_node("Tanh", ["shifted"], ["next"]),
        helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        helper.make_node("Identity", ["next"], ["trace"]),
    ], "step", [tensor("i", [], INT64), tensor("cond_in", [], TensorProto.BOOL), tensor("state", ["N", 4])],
        [tensor("cond_out", [], TensorProto.BOOL), tensor("next", ["N", 4]), tensor("trace", ["N", 4])])
    final, trace = b.op("Loop", [b.const("trips", 3, dtype=np.int64), ""] + ["x"], n_out=2, body=loop_body)
    # Scan over the rows of `sequence` ([T, 4]): a running sum, each row passed through an If
    # on the sign of its sum (reading `limit` from the main graph).
    inner_then = branch("positive", [helper.make_node("Relu", ["row"], ["kept"])], [tensor("kept", [4])])
    inner_else = branch("negative", [helper.make_node("Neg", ["row"], ["flipped"])], [tensor("flipped", [4])])
    scan_body = helper.make_graph([
        helper.make_node("Add", ["total", "row"], ["total_next"]),
        helper.make_node("ReduceSum", ["row"], ["row_sum"], keepdims=0),
        helper.make_node("Greater", ["row_sum", limit], ["positive"]),
        helper.make_node("If", ["positive"], ["row_out"], then_branch=inner_then, else_branch=inner_else),
    ], "accumulate", [tensor("total", [4]), tensor("row", [4])], [tensor("total_next", [4]), tensor("row_out", [4])])
    total, rows = b.op("Scan", [b.const("start", np.zeros(4)), "sequence"], n_out=2, body=scan_body,
                       num_scan_inputs=1, scan_output_directions=[1])
    b.nodes.append(helper.make_node("MatMul", [trace, b.op("Unsqueeze", [total, b.const("axis", [1], dtype=np.int64)])],
                                    ["mixed"], name="matmul_mix"))
    b.nodes.append(helper.make_node("Add", [final, b.op("ReduceMean", [rows], axes=[0], keepdims=0)], ["summary"],
                                    name="add_summary"))
    return b.model("control_flow", [tensor("x", ["N", 4]), tensor("sequence", ["T", 4])],
                   [tensor("mixed", [3, "N", 1]), tensor("summary", ["N", 4])], 17)


def more_ops():
    """The newly supported operators without ONNX backend test data in Debian's package, plus a
    few with it, on one path: GroupNormalization, Einsum, TopK, GatherElements, CumSum, Mod,
    ArrayFeatureExtractor, ReduceLogSumExp, Hardmax."""
    b = Builder()
    x = "x"  # [N, 8, 4, 4]
    g = b.op("GroupNormalization", [x, b.const("scale", 1 + b.normal(8, 0.2)), b.const("shift", b.normal(8, 0.2))],
             num_groups=2)
    e = b.op("Einsum", [g, b.const("mix", b.normal((8, 6), 0.4))], equation="nchw,cd->ndhw")  # [N, 6, 4, 4]
    flat = b.op("Reshape", [e, b.const("shape", [0, 6, 16], dtype=np.int64)])
    values, indices = b.op("TopK", [flat, b.const("k", [5], dtype=np.int64)], n_out=2, axis=2)
    gathered = b.op("GatherElements", [flat, indices], axis=2)
    summed = b.op("CumSum", [gathered, b.const("axis", 2, dtype=np.int64)], reverse=1)
    wrapped = b.op("Mod", [summed, b.const("modulus", 1.5)], fmod=1)
    picked = b.op("ArrayFeatureExtractor", [wrapped, b.const("pick", [4, 0, 2], dtype=np.int64)], domain="ai.onnx.ml")
    lse = b.op("ReduceLogSumExp", [values, b.const("axes", [2], dtype=np.int64)], keepdims=1)
    hard = b.op("Hardmax", [lse], axis=1)
    b.nodes.append(helper.make_node("Concat", [picked, b.op("Add", [lse, hard])], ["y"], name="concat_0", axis=2))
    model = b.model("more_ops", [tensor("x", ["N", 8, 4, 4])], [tensor("y", ["N", 6, 4])], 21,
                    extra_opsets=[("ai.onnx.ml", 3)])
    model.ir_version = 10  # opset 21 (per-channel GroupNormalization) needs IR 10
    return model


def zipmap_classifier():
    """A scikit-learn style classifier head whose probabilities go through ZipMap into a
    sequence of maps (what skl2onnx exports by default)."""
    b = Builder()
    probs = b.op("Softmax", [b.linear("x", 4, 3)], axis=1)
    b.nodes.append(helper.make_node("ZipMap", [probs], ["output_probability"], name="zipmap_0",
                                    domain="ai.onnx.ml", classlabels_int64s=[0, 1, 2]))
    value = helper.make_tensor_type_proto(TensorProto.FLOAT, [])
    seq = helper.make_value_info("output_probability",
                                 helper.make_sequence_type_proto(helper.make_map_type_proto(INT64, value)))
    return b.model("zipmap_classifier", [tensor("x", ["N", 4])], [seq], 17, extra_opsets=[("ai.onnx.ml", 1)])


def vad_calibration(path, samples=24):
    """Calibration batches for sweeping vad_lstm_if: every input, samples first."""
    rng = np.random.default_rng(3)
    np.savez(path, features=rng.standard_normal((samples, 12, 40)).astype(np.float32),
             h_in=(rng.standard_normal((samples, 1, 32)) * 0.5).astype(np.float32),
             c_in=(rng.standard_normal((samples, 1, 32)) * 0.5).astype(np.float32),
             reset=rng.uniform(0, 1, samples).astype(np.float32))


def main():
    vad_calibration(MODELS / "vad_calib.npz")
    for build in [vad_lstm_if, wake_word, recurrent_variants, control_flow, more_ops]:
        model, path = build(), MODELS / f"{build.__name__}.onnx"
        onnx.save(model, path)
        validate(path)
        summarize(build.__name__, model, path)
    model, path = zipmap_classifier(), MODELS / "zipmap_classifier.onnx"
    onnx.save(model, path)
    onnx.checker.check_model(str(path), full_check=True)  # valid, but its output is not a tensor
    summarize("zipmap_classifier", model, path)


if __name__ == "__main__":
    main()
