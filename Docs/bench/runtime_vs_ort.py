#!/usr/bin/env python3
"""Latency of `lopper bench` against ONNX Runtime on the same model, shape and thread count.

  python3 Docs/bench/runtime_vs_ort.py LOPPER_BINARY [--runs 20] [--warmup 3]

For every case (model, input shape, threads) it runs `lopper bench --json` in a subprocess and
an ONNX Runtime session in this process (CPU provider, intra_op_num_threads equal to Lopper's,
inter_op 1, sequential, all graph optimizations on) on random inputs of the same shape. The two
alternate for --rounds rounds so that load from other processes falls on both; the table gives
the median over rounds of each side's median (and p90) and the median of the per-round ratios
Lopper/ORT, then Lopper's peak RSS per model against the model file's size. The YOLOv8-style
detectors (random weights, fixed batch 1) are built by Tests/Fixtures/make_yolov8.py into
Tests/Fixtures/real when missing.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
REAL = os.path.join(ROOT, "Tests", "Fixtures", "real")
# label: (file, input shape without the batch, batch sizes (None: --batches), YOLOv8 input size to build)
MODELS = {
    "PP-OCRv4 det": ("ch_PP-OCRv4_det_infer.onnx", [3, 640, 640], None, None),
    "PP-OCR cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", [3, 48, 192], None, None),
    "YOLOv8n-style 320": ("yolov8n_320.onnx", [3, 320, 320], [1], 320),
    "YOLOv8n-style 640": ("yolov8n_640.onnx", [3, 640, 640], [1], 640),
}


def ensure_built(file, size):
    path = os.path.join(REAL, file)
    if size is not None and not os.path.exists(path):
        script = os.path.join(ROOT, "Tests", "Fixtures", "make_yolov8.py")
        subprocess.run([sys.executable, script, "--size", str(size), "--out", path], check=True, capture_output=True)
    return path


def lopper(binary, model, name, shape, threads, runs, warmup):
    dims = "x".join(map(str, shape))
    out = subprocess.run([binary, "bench", model, "--input-shape", f"{name}={dims}", "--threads", str(threads),
                          "--runs", str(runs), "--warmup", str(warmup), "--json"],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def ort_session(model, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def onnxruntime(session, shape, runs, warmup):
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)}
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {"median_ms": float(np.median(times)), "p90_ms": times[min(len(times) - 1, int(np.ceil(len(times) * 0.9)) - 1)]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lopper")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated labels from MODELS")
    args = parser.parse_args()

    print("| model | input | threads | Lopper median (p90) ms | ORT median (p90) ms | Lopper / ORT |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    worst = 0.0
    rss = {}
    chosen = {label: MODELS[label] for label in args.models.split(",")}
    for label, (file, sample, batches, size) in chosen.items():
        model = ensure_built(file, size)
        for batch in batches or map(int, args.batches.split(",")):
            shape = [batch] + sample
            for threads in map(int, args.threads.split(",")):
                session = ort_session(model, threads)
                rounds = []
                for _ in range(args.rounds):
                    a = lopper(args.lopper, model, session.get_inputs()[0].name, shape, threads, args.runs, args.warmup)
                    b = onnxruntime(session, shape, args.runs, args.warmup)
                    rounds.append((a, b, a["median_ms"] / b["median_ms"]))
                del session
                mid = lambda key, side: float(np.median([r[side][key] for r in rounds]))
                ours = {"median_ms": mid("median_ms", 0), "p90_ms": mid("p90_ms", 0),
                        "peak_rss_bytes": max(r[0]["peak_rss_bytes"] for r in rounds)}
                theirs = {"median_ms": mid("median_ms", 1), "p90_ms": mid("p90_ms", 1)}
                ratio = float(np.median([r[2] for r in rounds]))
                worst = max(worst, ratio)
                rss[label] = max(rss.get(label, 0), ours["peak_rss_bytes"])
                print(f"| {label} | {'x'.join(map(str, shape))} | {threads} | {ours['median_ms']:.1f} ({ours['p90_ms']:.1f}) "
                      f"| {theirs['median_ms']:.1f} ({theirs['p90_ms']:.1f}) | {ratio:.2f} |", flush=True)
    print(f"\nworst ratio Lopper/ORT: {worst:.2f}\n")
    print("| model | file size | Lopper peak RSS (largest case) | RSS / file size |")
    print("| --- | ---: | ---: | ---: |")
    for label, (file, *_) in chosen.items():
        size = os.path.getsize(os.path.join(REAL, file))
        print(f"| {label} | {size / 2**20:.2f} MiB | {rss[label] / 2**20:.0f} MiB | {rss[label] / size:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
