#!/usr/bin/env python3
"""Generate the small ONNX fixture models under Tests/Fixtures/models/.

Deterministic: every fixture draws its weights from np.random.default_rng(0),
so each file depends only on its own builder. Run from anywhere:

    python3 Tests/Fixtures/make_fixtures.py
"""
import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

MODELS = Path(__file__).resolve().parent / "models"
FLOAT = TensorProto.FLOAT


class Builder:
    """Accumulates nodes and weights; weights become initializers or Constant nodes."""

    def __init__(self, weights_as_constants=False, name_constants=True):
        self.rng = np.random.default_rng(0)
        self.nodes, self.inits, self.counts = [], [], {}
        self.as_constants = weights_as_constants
        self.name_constants = name_constants

    def fresh(self, prefix):
        n = self.counts.get(prefix, 0)
        self.counts[prefix] = n + 1
        return f"{prefix}_{n}"

    def const(self, prefix, value, dtype=np.float32):
        name = self.fresh(prefix)
        tensor = numpy_helper.from_array(np.asarray(value, dtype=dtype), name)
        if self.as_constants:
            node_name = self.fresh("constant") if self.name_constants else ""
            self.nodes.append(helper.make_node("Constant", [], [name], name=node_name,
                                               value=tensor))
        else:
            self.inits.append(tensor)
        return name

    def op(self, op_type, inputs, n_out=1, domain=None, **attrs):
        name = self.fresh(op_type.lower())
        outs = [name] if n_out == 1 else [f"{name}_out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, domain=domain,
                                           **attrs))
        return outs[0] if n_out == 1 else outs

    def normal(self, shape, scale):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def conv(self, x, cin, cout, k=3, stride=1, group=1, bias=True):
        fan_in = cin // group * k * k
        weight = self.normal((cout, cin // group, k, k), math.sqrt(2 / fan_in))
        inputs = [x, self.const("w", weight)]
        if bias:
            inputs.append(self.const("b", self.normal(cout, 0.1)))
        return self.op("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride],
                       pads=[k // 2] * 4, group=group)

    def bn(self, x, c):
        params = [1 + self.normal(c, 0.1), self.normal(c, 0.1), self.normal(c, 0.1),
                  self.rng.uniform(0.5, 1.5, c).astype(np.float32)]
        names = [self.const(p, v) for p, v in zip(["gamma", "beta", "mean", "var"], params)]
        return self.op("BatchNormalization", [x, *names], epsilon=1e-5)

    def silu(self, x):
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def linear(self, x, n_in, n_out):
        w = self.const("w", self.normal((n_in, n_out), 1 / math.sqrt(n_in)))
        return self.op("Add", [self.op("MatMul", [x, w]), self.const("b", self.normal(n_out, 0.1))])

    def model(self, name, inputs, outputs, opset, extra_opsets=(), **kwargs):
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.inits)
        opsets = [helper.make_opsetid(d, v) for d, v in [("", opset), *extra_opsets]]
        return helper.make_model(graph, opset_imports=opsets, ir_version=8,
                                 producer_name=kwargs.get("producer", "lopper-fixtures"))


def tensor(name, shape, elem_type=FLOAT):
    return helper.make_tensor_value_info(name, elem_type, shape)


def conv_chain():
    b = Builder()
    h = "x"
    for cin, cout, stride in [(3, 8, 1), (8, 16, 2), (16, 16, 1)]:
        h = b.op("Relu", [b.bn(b.conv(h, cin, cout, stride=stride), cout)])
    h = b.op("Flatten", [b.op("GlobalAveragePool", [h])], axis=1)
    w = b.const("fc_w", b.normal((10, 16), 0.25))
    b.nodes.append(helper.make_node("Gemm", [h, w, b.const("fc_b", b.normal(10, 0.1))], ["logits"],
                                    name="gemm_0", transB=1))
    return b.model("conv_chain", [tensor("x", ["N", 3, 32, 32])], [tensor("logits", ["N", 10])], 13)


def chain24():
    """24 Conv+BN+ReLU layers of 16 channels: the prefix-reuse benchmark's long chain."""
    b = Builder()
    h = "x"
    for i in range(24):
        cin = 3 if i == 0 else 16
        h = b.op("Relu", [b.bn(b.conv(h, cin, 16, stride=2 if i in (8, 16) else 1), 16)])
    h = b.op("Flatten", [b.op("GlobalAveragePool", [h])], axis=1)
    w = b.const("fc_w", b.normal((10, 16), 0.25))
    b.nodes.append(helper.make_node("Gemm", [h, w, b.const("fc_b", b.normal(10, 0.1))], ["logits"],
                                    name="gemm_0", transB=1))
    return b.model("chain24", [tensor("x", ["N", 3, 32, 32])], [tensor("logits", ["N", 10])], 13)


def example_calibration():
    """16 samples for chain24 (the README example and benchmarks), uniform noise with mean 0.5."""
    rng = np.random.default_rng(1)
    np.savez(MODELS / "chain24_calib.npz", x=rng.uniform(-0.5, 1.5, (16, 3, 32, 32)).astype(np.float32))


def residual():
    b = Builder()
    h = "x"
    for _ in range(2):
        y = b.conv(b.op("Relu", [b.conv(h, 8, 8)]), 8, 8)
        h = b.op("Relu", [b.op("Add", [y, h])])
    b.nodes[-1].output[0] = "y"
    return b.model("residual", [tensor("x", ["N", 8, 16, 16])], [tensor("y", ["N", 8, 16, 16])], 13)


def c2f_block():
    b = Builder()
    h = b.silu(b.conv("images", 3, 16, stride=2))                       # [1,16,32,32]
    h = b.silu(b.conv(h, 16, 16, k=1))
    half1, half2 = b.op("Split", [h, b.const("split_sizes", [8, 8], np.int64)], n_out=2, axis=1)
    y = b.silu(b.conv(b.silu(b.conv(half2, 8, 8)), 8, 8))
    y = b.op("Add", [half2, y])
    h = b.silu(b.conv(b.op("Concat", [half1, half2, y], axis=1), 24, 16, k=1))
    h = b.op("Resize", [h, "", b.const("scales", [1, 1, 2, 2])], mode="nearest",
             coordinate_transformation_mode="asymmetric", nearest_mode="floor")  # [1,16,64,64]
    det = b.conv(h, 16, 6, k=1)
    batch = b.op("Gather", [b.op("Shape", [det]), b.const("index", 0, np.int64)], axis=0)
    batch = b.op("Unsqueeze", [batch, b.const("axes", [0], np.int64)])
    shape = b.op("Concat", [batch, b.const("tail", [6, -1], np.int64)], axis=0)
    h = b.op("Reshape", [det, shape])
    b.nodes.append(helper.make_node("Transpose", [h], ["output0"], name="transpose_0",
                                    perm=[0, 2, 1]))
    return b.model("c2f_block", [tensor("images", [1, 3, 64, 64])],
                   [tensor("output0", [1, 4096, 6])], 13)


def channel_slice():
    """Slices on the channel axis: channels 4..11 of a conv's 16, and its last 6 (to the end)."""
    b = Builder()
    h = b.op("Relu", [b.conv("x", 3, 16)])
    int64 = lambda prefix, v: b.const(prefix, v, np.int64)
    middle = b.op("Slice", [h, int64("starts", [4]), int64("ends", [12]), int64("axes", [1]), int64("steps", [1])])
    tail = b.op("Slice", [h, int64("starts", [10]), int64("ends", [2**62]), int64("axes", [1])])
    h = b.op("Concat", [b.op("Relu", [b.conv(middle, 8, 8)]), tail], axis=1)
    b.nodes.append(helper.make_node("Conv", [h, b.const("w", b.normal((4, 14, 1, 1), 0.3))], ["y"], name="conv_out",
                                    kernel_shape=[1, 1]))
    return b.model("channel_slice", [tensor("x", ["N", 3, 16, 16])], [tensor("y", ["N", 4, 16, 16])], 13)


def paddle_constants():
    # Paddle style: every weight is an unnamed Constant node; HardSwish is decomposed
    # (x * Clip(x + 3, 0, 6) / 6) because the HardSwish op only exists from opset 14.
    b = Builder(weights_as_constants=True, name_constants=False)
    h = b.bn(b.conv("x", 3, 8, stride=2, bias=False), 8)
    clipped = b.op("Clip", [b.op("Add", [h, b.const("three", 3.0)]),
                            b.const("zero", 0.0), b.const("six", 6.0)])
    h = b.op("Div", [b.op("Mul", [h, clipped]), b.const("six", 6.0)])
    h = b.conv(h, 8, 8, group=8)                                          # depthwise
    se = b.op("Relu", [b.conv(b.op("GlobalAveragePool", [h]), 8, 4, k=1)])
    se = b.op("HardSigmoid", [b.conv(se, 4, 8, k=1)], alpha=0.2, beta=0.5)
    h = b.op("Mul", [h, se])
    h = b.op("Reshape", [b.op("GlobalAveragePool", [h]), b.const("shape", [-1, 8], np.int64)])
    h = b.op("Softmax", [b.linear(h, 8, 2)], axis=1)
    b.nodes[-1].output[0] = "softmax_0.tmp_0"
    m = b.model("paddle_constants", [tensor("x", ["N", 3, 32, 32])],
                [tensor("softmax_0.tmp_0", ["N", 2])], 11, producer="PaddlePaddle")
    # 3,312 entries joined by "\n" -> exactly 6,623 characters (multi-byte in UTF-8).
    chars = [str(d) for d in range(10)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    chars += [chr(c) for c in range(ord("a"), ord("z") + 1)]
    chars += [chr(0x4E00 + i) for i in range(3312 - len(chars))]
    helper.set_model_props(m, {"character": "\n".join(chars), "model_type": "cls"})
    assert len(m.metadata_props[0].value) == 6623
    return m


def transformer_encoder(computed_targets=False):
    """A BERT-style layer. With computed_targets, the heads' Reshape targets are computed from
    Shape as PyTorch exports them, and equal constants are shared."""
    b = Builder()
    heads, dh, d = 4, 16, 64

    def target(t, tail):
        if not computed_targets:
            return b.const("shape", [0, 0, *tail], np.int64)
        shape = b.op("Shape", [t])
        dims = [b.op("Unsqueeze", [b.op("Gather", [shape, b.const("index", i, np.int64)], axis=0),
                                   b.const("axes", [0], np.int64)]) for i in (0, 1)]
        return b.op("Concat", dims + [b.const("size", [n], np.int64) for n in tail], axis=0)

    def split_heads(t, perm):
        return b.op("Transpose", [b.op("Reshape", [t, target(t, [heads, dh])])], perm=perm)

    q = split_heads(b.linear("x", d, d), [0, 2, 1, 3])                   # [N,4,S,16]
    k = split_heads(b.linear("x", d, d), [0, 2, 3, 1])                   # [N,4,16,S]
    v = split_heads(b.linear("x", d, d), [0, 2, 1, 3])
    scores = b.op("Div", [b.op("MatMul", [q, k]), b.const("scale", math.sqrt(dh))])
    ctx = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
    ctx = b.op("Transpose", [ctx], perm=[0, 2, 1, 3])
    ctx = b.op("Reshape", [ctx, target(ctx, [d])])

    def layer_norm(t):
        gamma, beta = b.const("gamma", 1 + b.normal(d, 0.1)), b.const("beta", b.normal(d, 0.1))
        return b.op("LayerNormalization", [t, gamma, beta], axis=-1, epsilon=1e-5)

    h = layer_norm(b.op("Add", [b.linear(ctx, d, d), "x"]))
    u = b.linear(h, d, 4 * d)
    erf = b.op("Erf", [b.op("Div", [u, b.const("sqrt2", math.sqrt(2))])])
    u = b.op("Mul", [u, b.op("Add", [erf, b.const("one", 1.0)])])
    u = b.op("Mul", [u, b.const("half", 0.5)])
    layer_norm(b.op("Add", [b.linear(u, 4 * d, d), h]))
    b.nodes[-1].output[0] = "y"
    model = b.model("transformer_encoder", [tensor("x", ["N", "S", d])], [tensor("y", ["N", "S", d])], 17)
    return share_constants(model) if computed_targets else model


def transformer_shape_computed():
    return transformer_encoder(computed_targets=True)


def share_constants(model):
    """Points every reader of an initializer at the first one with the same type, shape and
    bytes, as the PyTorch exporter stores equal constants once."""
    first, renamed, kept = {}, {}, []
    for t in model.graph.initializer:
        key = (t.data_type, tuple(t.dims), t.raw_data)
        if key in first:
            renamed[t.name] = first[key]
        else:
            first[key] = t.name
            kept.append(t)
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)
    return model


def nhwc_input():
    b = Builder()
    h = b.op("Transpose", ["input"], perm=[0, 3, 1, 2])
    h = b.op("MaxPool", [b.op("Relu", [b.conv(h, 3, 8)])], kernel_shape=[2, 2], strides=[2, 2])
    h = b.op("GlobalAveragePool", [b.conv(h, 8, 16)])
    shape = b.const("shape", [-1, 16], np.int64)
    b.nodes.append(helper.make_node("Reshape", [h, shape], ["output"], name="reshape_0"))
    return b.model("nhwc_input", [tensor("input", ["N", 32, 32, 3])],
                   [tensor("output", ["N", 16])], 13)


def mobilenet_block():
    # Opset 14, not 13: HardSwish was introduced in opset 14.
    b = Builder()
    h = b.op("HardSwish", [b.conv("x", 16, 48, k=1)])
    h = b.op("Relu", [b.bn(b.conv(h, 48, 48, group=48, bias=False), 48)])
    h = b.op("Add", [b.conv(h, 48, 16, k=1), "x"])
    w = b.const("w", b.normal((16, 8, 2, 2), 0.25))
    h = b.op("ConvTranspose", [h, w, b.const("b", b.normal(8, 0.1))], kernel_shape=[2, 2],
             strides=[2, 2])
    b.nodes.append(helper.make_node("Sigmoid", [h], ["y"], name="sigmoid_0"))
    return b.model("mobilenet_block", [tensor("x", ["N", 16, 16, 16])],
                   [tensor("y", ["N", 8, 32, 32])], 14)


def unsupported_ops():
    b = Builder()
    u = b.op("Unique", ["x"], sorted=1)  # the distinct values, flattened: [U]
    h = b.op("Relu", [u])
    b.nodes.append(helper.make_node("MyOp", [h], ["y"], name="myop_0", domain="com.example",
                                    alpha=0.5))
    return b.model("unsupported_ops", [tensor("x", ["T", "N", 8])],
                   [tensor("y", ["U"])], 13, extra_opsets=[("com.example", 1)])


def escape_external():
    m = conv_chain()
    m.graph.name = "escape_external"
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in [("location", "../../etc/passwd"), ("offset", "0"),
                       ("length", str(4 * math.prod(t.dims)))]:
        t.external_data.add(key=key, value=value)
    return m


def count_params(model):
    floats = {FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
    tensors = list(model.graph.initializer)
    tensors += [a.t for n in model.graph.node if n.op_type == "Constant"
                for a in n.attribute if a.name == "value"]
    return sum(math.prod(t.dims) for t in tensors if t.data_type in floats)


def validate(path):
    onnx.checker.check_model(str(path), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sess.get_inputs():  # symbolic dims -> 2
        shape = [d if isinstance(d, int) else 2 for d in i.shape]
        feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    for out in sess.run(None, feeds):
        assert np.all(np.isfinite(out)), f"{path.name}: non-finite output"


def summarize(name, model, path):
    print(f"{name:20s} nodes={len(model.graph.node):3d} params={count_params(model):6d} "
          f"size={path.stat().st_size:7d}B -> {path.relative_to(MODELS.parent)}")


def main():
    MODELS.mkdir(parents=True, exist_ok=True)
    import make_yolov8  # imports this module's Builder

    def yolov8_tiny():
        """The YOLOv8 detector's structure at 1/16 width, 8 classes, 64 × 64: every group in a second."""
        return make_yolov8.build(size=64, width=0.0625, classes=8)

    for build in [conv_chain, chain24, residual, c2f_block, paddle_constants, transformer_encoder,
                  transformer_shape_computed, nhwc_input, mobilenet_block, yolov8_tiny, channel_slice]:
        model, path = build(), MODELS / f"{build.__name__}.onnx"
        onnx.save(model, path)
        validate(path)
        summarize(build.__name__, model, path)

    model, path = unsupported_ops(), MODELS / "unsupported_ops.onnx"
    onnx.save(model, path)  # not checked or run: MyOp has no implementation
    summarize("unsupported_ops", model, path)

    model, ext_dir = conv_chain(), MODELS / "external"
    model.graph.name = "external_weights"
    ext_dir.mkdir(exist_ok=True)
    path = ext_dir / "external_weights.onnx"
    (ext_dir / "external_weights.bin").unlink(missing_ok=True)  # onnx.save appends to it
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="external_weights.bin", size_threshold=0)
    validate(path)
    summarize("external_weights", model, path)

    example_calibration()

    # Data already cleared, so onnx.save writes nothing external; not checked or run.
    model, path = escape_external(), MODELS / "escape_external.onnx"
    onnx.save(model, path)
    summarize("escape_external", model, path)


if __name__ == "__main__":
    main()
