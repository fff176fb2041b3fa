#!/usr/bin/env python3
"""A latency table measured by ONNX Runtime, in the CSV form `lopper cost --table` reads.

  lopper measure MODEL --step-models steps/ [--input-shape x=1x3x320x320] [--profile host-ort.yaml]
  python3 Docs/bench/ort_latency_table.py steps/ --table ort.csv [--in-place] [--profile-out host-ort.yaml] [--runs 31]

`lopper measure --step-models` writes each distinct step of the model and of its uniformly pruned
copies (a step: a layer with what Lopper's runtime fuses into it) as an ONNX model of its own,
with `steps.jsonl` (each one's signature, file, op class, ops and bytes), and each of those
models whole, with `models.jsonl` (where its steps are). Two ways to time them in ONNX Runtime
(one thread, sequential, all graph optimizations: the session a deployment uses):

- by default every step model alone, less ONNX Runtime's per-call cost (a model of one
  one-element Add, which every step model pays once and a whole model once per run);
- with --in-place, the whole models with ONNX Runtime's per-node profiler: each of its nodes is
  charged to the step it computes (`charge_to_steps`), so layout reorders and the kernels ONNX
  Runtime picks inside a whole model are where they run. Its blocked (NCHWc) convolutions take
  only filter counts that are multiples of their block, so a pruned width off that multiple can
  be slower than a wider one; the profile written gets that block as `channel_alignment`, which
  keeps the table's widths on and off it apart. Measure the steps with `--profile` of a profile
  of that alignment, so that their ops are counted as `lopper cost` will count them.

With --profile-out it writes `host.yaml` with the per-call cost as `run_overhead_us`, so that a
prediction is the table's step times plus one run's fixed cost.
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


def session_options():
    """What a deployment on one core uses: one thread, sequential, all optimizations."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def session(path, options=None):
    return ort.InferenceSession(path, options or session_options(), providers=["CPUExecutionProvider"])


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


def node_times(path, runs, shapes=None, warmup=3):
    """Each node of ONNX Runtime's optimized graph of the model at `path` (a NodeProto) with its
    kernel times (seconds) in `runs` profiled runs."""
    options = session_options()
    folder = os.path.dirname(os.path.abspath(path))
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(folder, "ort-profile")
    options.optimized_model_filepath = os.path.join(folder, "ort-optimized.onnx")
    options.log_severity_level = 3  # the NCHWc warning on saving the optimized graph
    sess = session(path, options)
    feed = feeds(sess, shapes)
    for _ in range(warmup + runs):
        sess.run(None, feed)
    trace = sess.end_profiling()
    with open(trace) as source:
        events = json.load(source)
    os.remove(trace)
    durations = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            durations.setdefault(event["name"][: -len("_kernel_time")], []).append(event["dur"] * 1e-6)
    graph = onnx.load(options.optimized_model_filepath).graph
    return [(node, durations[node.name][warmup:]) for node in graph.node if node.name in durations]


def fast_mean(seconds):
    """The mean of the faster half: the profiler counts whole microseconds, so the fastest run
    alone cannot tell apart kernels of 1–10 µs; the faster half's mean can, and leaves out the
    runs the machine's load slowed."""
    faster = sorted(seconds)[: max(1, len(seconds) // 2)]
    return sum(faster) / len(faster)


def nchwc_block(folder):
    """The filter multiple ONNX Runtime's blocked (NCHWc) convolutions take on this CPU (its
    block size depends on the instruction set; 8 on the AVX-512 machine of Docs/benchmarks.md),
    found by which of two small Convs, of 8 and 16 filters, it rewrites; 1 if neither."""
    for block in (8, 16):
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], "probe",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, block, 8, 8])],
            [helper.make_tensor("w", TensorProto.FLOAT, [block, 16, 3, 3], [0.0] * (block * 144))])
        path = os.path.join(folder, f"nchwc_probe_{block}.onnx")
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
        options = session_options()
        options.optimized_model_filepath = path + ".optimized"
        options.log_severity_level = 3
        session(path, options)
        if any(node.domain == "com.microsoft.nchwc" for node in onnx.load(options.optimized_model_filepath).graph.node):
            return block
    return 1


def charge_to_steps(nodes, steps):
    """Seconds per step of `steps` (a models.jsonl entry's, in order) from ONNX Runtime's nodes:
    a node is charged to the step that writes a value it writes (a blocked NCHWc Conv writes a
    value of its own and is named for the one it replaces, with the suffix `_nchwc`), or to the
    largest of the steps fused into it; a node that writes only values of its own to the step
    holding the node it is named after (ONNX Runtime keeps a node's name when it renames its
    output, and names a fusion "first/FusionName/": QuickGelu from a SiLU on blocked data), else
    to the step of what it reads; a layout reorder (ReorderInput/
    ReorderOutput) to the step of the plain-layout node beside it, which is what it is there for.
    Returns the charges and the unattributed seconds."""
    writer = {value: index for index, step in enumerate(steps) for value in step["values"]}
    named = {name: index for index, step in enumerate(steps) for name in step.get("nodes", []) if name}
    def original(value):
        while value.endswith("_nchwc"):
            value = value[: -len("_nchwc")]
        return value
    producer, consumers = {}, {}
    for node, _ in nodes:
        for value in node.output:
            producer[value] = node
        for value in node.input:
            consumers.setdefault(value, []).append(node)
    present = {original(v) for node, _ in nodes for v in node.output}
    present |= {original(node.name) for node, _ in nodes if node.name.endswith("_nchwc")}
    def step_of(node):
        found = [writer[original(v)] for v in node.output if original(v) in writer]
        if not found and original(node.name) in writer:  # a blocked Conv writes a new value, named for the old one
            found = [writer[original(node.name)]]
        if not found:  # a node kept under its name whose output was renamed, or one fused as "name/Fusion/"
            base = node.name if node.name in named else node.name.split("/")[0]
            found = [named[base]] if base in named else []
        if not found:
            return None
        # Steps just before whose values no node writes any more were fused into this node
        # (MatMul + Add + Relu into one Gemm): it is charged to the one of most ops among them.
        last = first = max(found)
        while first > 0 and not any(v in present for v in steps[first - 1]["values"]):
            first -= 1
        return max(range(first, last + 1), key=lambda i: (steps[i]["ops"], i))
    def is_reorder(node):
        return node.op_type in ("ReorderInput", "ReorderOutput")
    def step_upstream(node, depth=0):
        source = producer.get(node.input[0]) if node.input else None
        if source is None or depth > 8:
            return None
        found = step_of(source)
        return found if found is not None else step_upstream(source, depth + 1)
    charges, unattributed = [0.0] * len(steps), 0.0
    for node, seconds in nodes:
        index = step_of(node)
        if index is None and not is_reorder(node):
            # A node of ONNX Runtime's own that writes only values of its own: the step of what
            # it reads, as Lopper fuses an activation into the step that produces its input.
            index = step_upstream(node)
        if is_reorder(node):
            beside = [producer.get(node.input[0])] if node.op_type == "ReorderInput" else consumers.get(node.output[0], [])
            plain = [n for n in beside if n is not None and not is_reorder(n) and step_of(n) is not None]
            if plain:
                index = step_of(plain[0])
        if index is None:
            unattributed += seconds
        else:
            charges[index] += seconds
    return charges, unattributed


def in_place_rows(folder, runs, rounds=3):
    """Table rows from per-node profiles of the whole models in `models.jsonl`, and ONNX
    Runtime's per-call cost as the run overhead. The models are measured in turn, `rounds`
    times, so that a busy spell of the machine slows all of them alike. Profiling slows every
    node by a little, so each model's charges are scaled to add up to its fastest unprofiled run
    less the per-call cost: the table reproduces every model it was measured on."""
    with open(os.path.join(folder, "models.jsonl")) as source:
        models = [json.loads(line) for line in source if line.strip()]
    per_call = per_call_seconds(folder, runs)
    profiled, fastest = [None] * len(models), [float("inf")] * len(models)
    for _ in range(rounds):
        for i, entry in enumerate(models):
            nodes = node_times(entry["file"], runs, entry.get("input_shapes"))
            profiled[i] = nodes if profiled[i] is None else [(n, a + b) for (n, a), (_, b) in zip(profiled[i], nodes)]
            fastest[i] = min(fastest[i], fastest_seconds(entry["file"], runs, entry.get("input_shapes")))
    measured = {}
    for entry, nodes, run in zip(models, profiled, fastest):
        charges, unattributed = charge_to_steps([(node, fast_mean(times)) for node, times in nodes], entry["steps"])
        scale = max(0.0, run - per_call) / max(sum(charges), 1e-12)
        for step, seconds in zip(entry["steps"], charges):
            measured.setdefault(step["signature"], (step, []))[1].append(seconds * scale)
        print(f"{entry['label']}: {len(entry['steps'])} steps, fastest run {run * 1e3:.4f} ms, profiled nodes "
              f"{(sum(charges) + unattributed) * 1e3:.4f} ms ({unattributed * 1e3:.4f} on no step), scaled by {scale:.3f}")
    rows = [(signature, float(np.median(times)) * 1e3, step["op_class"], step["ops"], step["bytes"])
            for signature, (step, times) in measured.items()]
    return rows, per_call


def write_profile(path, per_call_us, alignment):
    """Config/profiles/host.yaml with ONNX Runtime's per-call cost as the run overhead and the
    filter multiple of its blocked convolutions as the channel alignment."""
    with open(os.path.join(ROOT, "Config", "profiles", "host.yaml")) as source:
        lines = source.read().splitlines()
    name = os.path.splitext(os.path.basename(path))[0]
    header = [f"# host.yaml with run_overhead_us measured in ONNX Runtime {ort.__version__} (one thread) by",
              "# Docs/bench/ort_latency_table.py: the fastest run of a one-element Add model. Use it with the",
              "# latency table that script wrote; the rest of the figures are Lopper's runtime's."]
    body = []
    for line in lines:
        if line.startswith("#") or line.startswith("run_overhead_us:") or line.startswith("channel_alignment:"):
            continue
        if line.startswith("name:"):
            line = f"name: {name}"
        elif line.startswith("description:"):
            line = re.sub(r"Lopper's runtime", f"ONNX Runtime {ort.__version__}", line)
        body.append(line)
    body.append(f"run_overhead_us: {per_call_us:.4g}")
    body.append(f"channel_alignment: {alignment}")
    with open(path, "w") as out:
        out.write("\n".join(header + body) + "\n")


def step_model_rows(folder, runs):
    """Table rows from the step models in `steps.jsonl`, each less ONNX Runtime's per-call cost,
    and that cost as the run overhead."""
    with open(os.path.join(folder, "steps.jsonl")) as source:
        entries = [json.loads(line) for line in source if line.strip()]
    per_call = per_call_seconds(folder, runs)
    rows = []
    for entry in entries:
        try:
            seconds = fastest_seconds(entry["file"], runs)
        except Exception as error:  # a step ONNX Runtime cannot run alone keeps the cost model's estimate
            print(f"not timed: {entry['file']}: {str(error).splitlines()[0]}")
            continue
        rows.append((entry["signature"], max(0.0, seconds - per_call) * 1e3, entry["op_class"], entry["ops"], entry["bytes"]))
    return rows, per_call


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("steps", help="folder written by lopper measure --step-models")
    parser.add_argument("--table", required=True, help="latency table to write (CSV)")
    parser.add_argument("--profile-out", help="also write host.yaml with ONNX Runtime's run overhead as run_overhead_us")
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--in-place", action="store_true",
                        help="charge the steps from per-node profiles of the whole models (models.jsonl) instead of timing step models")
    args = parser.parse_args()
    rows, overhead = in_place_rows(args.steps, args.runs) if args.in_place else step_model_rows(args.steps, args.runs)
    for signature, *_ in rows:
        if "," in signature:
            raise SystemExit(f"{args.steps}: signature '{signature}' has a comma, which the CSV cannot hold")
    with open(args.table, "w") as out:
        out.write("signature,milliseconds,op_class,ops,bytes\n")
        for signature, ms, op_class, ops, size in sorted(rows):
            out.write(f"{signature},{ms:.6g},{op_class},{ops:.6g},{size:.6g}\n")
    print(f"{len(rows)} steps timed in ONNX Runtime {ort.__version__} -> {args.table}; run overhead {overhead * 1e6:.1f} us")
    if args.profile_out:
        block = nchwc_block(args.steps)
        write_profile(args.profile_out, overhead * 1e6, block)
        print(f"profile with run_overhead_us {overhead * 1e6:.1f}, channel_alignment {block} -> {args.profile_out}")


if __name__ == "__main__":
    main()
