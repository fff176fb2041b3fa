#!/usr/bin/env python3
"""A latency table measured by ONNX Runtime, in the CSV form `lopper cost --table` reads.

  lopper measure MODEL --step-models steps/ [--input-shape x=1x3x320x320]
  python3 Docs/bench/ort_latency_table.py steps/ --table ort.csv [--profile-out host-ort.yaml] [--runs 31]

`lopper measure --step-models` writes each distinct step of the model and of its uniformly pruned
copies (a step: a layer with what Lopper's runtime fuses into it) as an ONNX model of its own, and
`steps.jsonl` with each one's signature, file, op class, ops and bytes. This script times every
step model in ONNX Runtime (one thread, sequential, all graph optimizations: the session a
deployment uses) and writes its fastest run less ONNX Runtime's per-call cost: the time of a
model of one one-element Add, which every step model pays once and a whole model pays once per
run. With --profile-out it writes `host.yaml` with that per-call cost as `run_overhead_us`, so
that a prediction is the table's step times plus one run's fixed cost.
"""
import argparse
import json
import os
import re
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
               "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}


def session(path):
    """The session a deployment on one core uses: one thread, sequential, all optimizations."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def feeds(sess, shapes=None):
    """Seeded uniform inputs at the declared shapes (or `shapes[name]`; symbolic sizes as 1)."""
    rng = np.random.default_rng(0)
    result = {}
    for i in sess.get_inputs():
        dims = (shapes or {}).get(i.name) or [d if isinstance(d, int) else 1 for d in i.shape]
        kind = NUMPY_TYPES.get(i.type, np.float32)
        if np.issubdtype(kind, np.floating):
            result[i.name] = rng.uniform(-1, 1, dims).astype(kind)
        else:
            result[i.name] = np.zeros(dims, dtype=kind)
    return result


def fastest_seconds(path, runs, shapes=None, warmup=3):
    """The fastest of `runs` timed runs of `session.run` after `warmup` untimed ones, in CPU time
    of this thread: with one intra-op thread ONNX Runtime runs on the caller, so this is the work
    without the time other processes of a loaded machine held the core (as `lopper` times). The
    minimum, not the median: steps and small models take microseconds, and noise only adds."""
    sess = session(path)
    feed = feeds(sess, shapes)
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.thread_time()
        sess.run(None, feed)
        times.append(time.thread_time() - start)
    return min(times)


def per_call_seconds(folder, runs):
    """ONNX Runtime's fixed cost of one run: a model of one one-element Add."""
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "per_call",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = os.path.join(folder, "per_call.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return fastest_seconds(path, runs * 10)


def write_profile(path, per_call_us):
    """Config/profiles/host.yaml with ONNX Runtime's per-call cost as the run overhead."""
    with open(os.path.join(ROOT, "Config", "profiles", "host.yaml")) as source:
        lines = source.read().splitlines()
    name = os.path.splitext(os.path.basename(path))[0]
    header = [f"# host.yaml with run_overhead_us measured in ONNX Runtime {ort.__version__} (one thread) by",
              "# Docs/bench/ort_latency_table.py: the fastest run of a one-element Add model. Use it with the",
              "# latency table that script wrote; the rest of the figures are Lopper's runtime's."]
    body = []
    for line in lines:
        if line.startswith("#") or line.startswith("run_overhead_us:"):
            continue
        if line.startswith("name:"):
            line = f"name: {name}"
        elif line.startswith("description:"):
            line = re.sub(r"Lopper's runtime", f"ONNX Runtime {ort.__version__}", line)
        body.append(line)
    body.append(f"run_overhead_us: {per_call_us:.4g}")
    with open(path, "w") as out:
        out.write("\n".join(header + body) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("steps", help="folder written by lopper measure --step-models")
    parser.add_argument("--table", required=True, help="latency table to write (CSV)")
    parser.add_argument("--profile-out", help="also write host.yaml with ONNX Runtime's per-call cost as run_overhead_us")
    parser.add_argument("--runs", type=int, default=31)
    args = parser.parse_args()
    manifest = os.path.join(args.steps, "steps.jsonl")
    with open(manifest) as source:
        entries = [json.loads(line) for line in source if line.strip()]
    per_call = per_call_seconds(args.steps, args.runs)
    rows, failed = [], []
    for entry in entries:
        try:
            seconds = fastest_seconds(entry["file"], args.runs)
        except Exception as error:  # a step ONNX Runtime cannot run alone keeps the cost model's estimate
            failed.append(f"{entry['file']}: {str(error).splitlines()[0]}")
            continue
        rows.append((entry["signature"], max(0.0, seconds - per_call) * 1e3, entry["op_class"], entry["ops"], entry["bytes"]))
    for signature, *_ in rows:
        if "," in signature:
            raise SystemExit(f"{manifest}: signature '{signature}' has a comma, which the CSV cannot hold")
    with open(args.table, "w") as out:
        out.write("signature,milliseconds,op_class,ops,bytes\n")
        for signature, ms, op_class, ops, size in sorted(rows):
            out.write(f"{signature},{ms:.6g},{op_class},{ops:.6g},{size:.6g}\n")
    print(f"{len(rows)} steps timed in ONNX Runtime {ort.__version__} -> {args.table}; "
          f"per-call cost {per_call * 1e6:.1f} us subtracted from each")
    for line in failed:
        print(f"not timed: {line}")
    if args.profile_out:
        write_profile(args.profile_out, per_call * 1e6)
        print(f"profile with run_overhead_us {per_call * 1e6:.1f} -> {args.profile_out}")


if __name__ == "__main__":
    main()
