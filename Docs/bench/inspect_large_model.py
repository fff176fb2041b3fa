#!/usr/bin/env python3
"""Load time and peak memory of `lopper inspect` on a generated 1 GiB external-data model,
against the Python `onnx` package loading the same model in the same run.

usage: inspect_large_model.py LOPPER_BINARY [--dir DIR] [--runs N]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper

LAYERS, WIDTH = 16, 4096  # 16 MatMul weights of 4096 x 4096 float32 = 1 GiB


def build(path):
    nodes, inits = [], []
    x = "x"
    for i in range(LAYERS):
        w = np.full((WIDTH, WIDTH), 1.0 / WIDTH, dtype=np.float32)
        inits.append(onnx.numpy_helper.from_array(w, f"w{i}"))
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"], name=f"matmul_{i}"),
                  helper.make_node("Relu", [f"m{i}"], [f"r{i}"], name=f"relu_{i}")]
        x = f"r{i}"
    graph = helper.make_graph(nodes, "large", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", WIDTH])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", WIDTH])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="large.onnx.data")


def measure(command):
    """Wall seconds and peak RSS (MiB, from GNU time) of one run."""
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M"] + command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    return seconds, int(result.stderr.strip().splitlines()[-1]) / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lopper")
    parser.add_argument("--dir", default="/tmp/lopper-large-model")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, "large.onnx")
    if not os.path.exists(path):
        build(path)
    size = (os.path.getsize(path) + os.path.getsize(path + ".data")) / 2**20

    commands = {
        "lopper inspect": [args.lopper, "inspect", path],
        "onnx.load (with data)": [sys.executable, "-c", f"import onnx; onnx.load({path!r})"],
        "onnx.load + check_model": [sys.executable, "-c", f"import onnx; onnx.checker.check_model({path!r})"],
    }
    print(f"model: {path}, {size:.0f} MiB on disk ({LAYERS} x {WIDTH}x{WIDTH} float32 weights, external data)")
    print(f"{'command':28} {'median s':>9} {'peak RSS MiB':>13} {'RSS / model':>12}")
    results = {}
    for name, command in commands.items():
        runs = [measure(command) for _ in range(args.runs)]
        seconds = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        results[name] = (seconds, rss)
        print(f"{name:28} {seconds:9.3f} {rss:13.0f} {rss / size:12.3f}")
    ours, theirs = results["lopper inspect"], results["onnx.load (with data)"]
    print(f"lopper / onnx.load: time {ours[0] / theirs[0]:.3f}x, peak RSS {ours[1] / theirs[1]:.3f}x")


if __name__ == "__main__":
    main()
