#!/usr/bin/env python3
"""Predicted latency on `host` against latency measured by Lopper's runtime and ONNX Runtime.

  python3 Docs/bench/cost_vs_measured.py LOPPER_BINARY [--variants 24] [--runs 15]

For each real development model: `lopper measure` times the steps of the model and of uniformly
pruned copies into a latency table (unless one exists in the work folder), then `lopper
bench-cost` writes the dense model and the pruned variants (uniform fractions, then random
fractions per group), predicts each one's latency from the table and `Config/profiles/host.yaml`,
and times it in Lopper's runtime; this script times the same files in ONNX Runtime (one thread,
sequential, all optimizations). Prints the median absolute error and Spearman rank correlation of
the prediction against each runtime, and how MACs alone would rank the variants.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
REAL = os.path.join(ROOT, "Tests", "Fixtures", "real")
MODELS = {  # label: (file, input shape, output the runtime can reach)
    "PP-OCRv4 det 320x320": ("ch_PP-OCRv4_det_infer.onnx", "x=1x3x320x320", None),
    "PP-OCR cls batch 8": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", "x=8x3x48x192", None),
    "digits MLP batch 1": ("digits_mlp.onnx", None, "probabilities"),
}


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def ort_time(path, shape, runs):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {}
    for i in session.get_inputs():
        dims = shape if shape and i.name == "x" else [d if isinstance(d, int) else 1 for d in i.shape]
        feed[i.name] = np.random.default_rng(0).uniform(-1, 1, dims).astype(np.float32)
    for _ in range(3):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lopper")
    parser.add_argument("--variants", type=int, default=24)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--work", default=tempfile.mkdtemp(prefix="lopper-cost-"))
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    print(f"| model | variants | vs Lopper: median abs. error | Spearman | vs ORT: median abs. error | Spearman | MACs alone: Spearman (Lopper / ORT) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, (file, shape, output) in MODELS.items():
        model = os.path.join(REAL, file)
        shape_args = (["--input-shape", shape] if shape else []) + (["--output", output] if output else [])
        dims = [int(d) for d in shape.split("=")[1].split("x")] if shape else None
        table = os.path.join(args.work, label.replace(" ", "_") + ".latency.csv")
        subprocess.run([args.lopper, "measure", model, "--table", table, *shape_args], check=True,
                       stderr=subprocess.DEVNULL)
        out = subprocess.run([args.lopper, "bench-cost", model, "--profile", "host", "--table", table,
                              "--variants", str(args.variants), "--runs", str(args.runs),
                              "--out", os.path.join(args.work, label.replace(" ", "_") + ".variants"), *shape_args],
                             check=True, capture_output=True, text=True)
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        predicted = np.array([r["predicted_ms"] for r in rows])
        lopper = np.array([r["lopper_ms"] for r in rows])
        macs = np.array([r["macs"] for r in rows], dtype=float)
        onnx = np.array([ort_time(r["file"], dims, args.runs) * 1e3 for r in rows])
        err_l = np.median(np.abs(predicted - lopper) / lopper) * 100
        err_o = np.median(np.abs(predicted - onnx) / onnx) * 100
        print(f"| {label} | {len(rows)} | {err_l:.1f}% | {spearman(predicted, lopper):.3f} | {err_o:.1f}% | "
              f"{spearman(predicted, onnx):.3f} | {spearman(macs, lopper):.3f} / {spearman(macs, onnx):.3f} |", flush=True)


if __name__ == "__main__":
    main()
