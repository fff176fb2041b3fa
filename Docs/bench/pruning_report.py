#!/usr/bin/env python3
"""Prunes a model with `lopper prune` at several settings and measures each result in ONNX
Runtime (same input, same thread count): file size, parameters and MACs as lopper reports them,
and median latency against the dense model.

usage: pruning_report.py LOPPER_BINARY MODEL --shape x=1x3x640x640 [--threads 1] [--runs 20]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

SETTINGS = [
    ["--granularity", "channel", "--sparsity", "0.3"],
    ["--granularity", "channel", "--sparsity", "0.5"],
    ["--granularity", "channel", "--sparsity", "0.5", "--round-to", "8"],
    ["--granularity", "nm", "--pattern", "2:4"],
    ["--granularity", "unstructured", "--sparsity", "0.5", "--scope", "global"],
]


def latency(path, feeds, threads, runs):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lopper")
    parser.add_argument("model")
    parser.add_argument("--shape", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    name, dims = args.shape.split("=")
    feeds = {name: np.random.default_rng(0).standard_normal([int(d) for d in dims.split("x")]).astype(np.float32)}
    dense_ms = latency(args.model, feeds, args.threads, args.runs)
    print(f"dense: {os.path.getsize(args.model) / 2**20:.2f} MiB, {dense_ms:.1f} ms median "
          f"(ONNX Runtime {ort.__version__}, {args.threads} thread(s), {args.shape})")
    print(f"{'setting':58} {'params':>8} {'MACs':>8} {'file':>6} {'ORT ms':>7} {'speedup':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for setting in SETTINGS:
            out = os.path.join(tmp, "pruned.onnx")
            result = subprocess.run([args.lopper, "prune", args.model, "--input-shape", args.shape, *setting, "-o", out],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(result.stderr)
            ratios = {line.split()[0]: line.split()[-1] for line in result.stdout.splitlines()
                      if line.split() and line.split()[0] in ("params", "MACs", "file")}
            ms = latency(out, feeds, args.threads, args.runs)
            print(f"{' '.join(setting):58} {ratios['params']:>8} {ratios['MACs']:>8} {ratios['file']:>6} "
                  f"{ms:7.1f} {dense_ms / ms:6.2f}x")


if __name__ == "__main__":
    main()
