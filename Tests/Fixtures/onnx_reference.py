#!/usr/bin/env python3
"""Independent reference for the Lopper test suite, backed by onnx and onnxruntime.

Every subcommand prints one JSON object on stdout. Exit status: 0 on success,
1 on a runtime failure, 2 on a usage error (message on stderr in both cases).

  check MODEL                                   {"ok": bool[, "error": str]}
  compare MODEL_A MODEL_B [--seed S] [--shape NAME=1x3x64x64 ...]
                                                {"identical", "max_abs_diff", "outputs"}
  count MODEL [--shape ...]                     {"params", "macs", "per_node"}
  shapes MODEL [--shape ...]                    {value_name: [dims]} for every node output
  run MODEL --input NAME=FILE.npy ... --output-dir DIR

Random inputs: symbolic or unknown dims take their value from --shape; a symbolic
first (batch) axis defaults to 1. Float inputs are standard normal, integer inputs
are drawn from [0, 10), bool inputs are fair coin flips.
ONNX Runtime runs on the CPU with one thread and graph optimizations disabled
(compare and run accept --opt to change that).
"""
import argparse
import json
import math
import os
import re
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto

FLOAT_TYPES = {v for n, v in TensorProto.DataType.items() if "FLOAT" in n or n == "DOUBLE"}
ORT_DTYPES = {"float": np.float32, "double": np.float64, "float16": np.float16, "bool": np.bool_,
              **{t: getattr(np, t) for t in ["int8", "int16", "int32", "int64",
                                              "uint8", "uint16", "uint32", "uint64"]}}
OPT_LEVELS = {"none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


class UsageError(Exception):
    pass


def model_path(path):
    if not os.path.isfile(path):
        raise UsageError(f"no such model file: {path}")
    return path


def parse_assignments(items, what):
    result = {}
    for item in items or []:
        name, sep, value = item.rpartition("=")
        if not sep or not name:
            raise UsageError(f"expected NAME={what}, got {item!r}")
        result[name] = value
    return result


def parse_shapes(items):
    try:
        return {name: [int(d) for d in dims.split("x")] if dims else []
                for name, dims in parse_assignments(items, "DIMS").items()}
    except ValueError as e:
        raise UsageError(f"bad --shape value: {e}") from None


def session(model, opt="none", external_dir=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = OPT_LEVELS[opt]
    options.log_severity_level = 3
    if external_dir:  # model given as bytes: resolve external data next to the original file
        options.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                         external_dir)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def random_inputs(sess, shapes, seed):
    rng = np.random.default_rng(seed)
    names = [i.name for i in sess.get_inputs()]
    unknown = set(shapes) - set(names)
    if unknown:
        raise UsageError(f"--shape names unknown inputs {sorted(unknown)}; "
                         f"model inputs are {names}")
    feeds = {}
    for inp in sess.get_inputs():
        shape = shapes.get(inp.name)
        if shape is None:
            shape = []
            for axis, d in enumerate(inp.shape):
                if isinstance(d, int) and d >= 0:
                    shape.append(d)
                elif axis == 0:
                    shape.append(1)
                else:
                    raise UsageError(f"input {inp.name!r} has symbolic dim {d!r} at axis {axis}; "
                                     f"pass --shape {inp.name}=DIMS (declared shape {inp.shape})")
        kind = inp.type.removeprefix("tensor(").removesuffix(")")
        if kind not in ORT_DTYPES:
            raise UsageError(f"input {inp.name!r} has unsupported type {inp.type}")
        dtype = ORT_DTYPES[kind]
        if np.issubdtype(dtype, np.floating):
            feeds[inp.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype is np.bool_:
            feeds[inp.name] = rng.random(shape) < 0.5
        else:
            feeds[inp.name] = rng.integers(0, 10, shape).astype(dtype)
    return feeds


def observe(path, shapes, seed):
    """Run the model with every node output exposed; return (model, {value name: shape})."""
    model = onnx.load(path, load_external_data=False)
    exposed = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in exposed:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                exposed.add(name)
    sess = session(model.SerializeToString(), external_dir=os.path.dirname(os.path.abspath(path)))
    feeds = random_inputs(sess, shapes, seed)
    names = [o.name for o in sess.get_outputs()]
    observed = {n: list(np.shape(v)) for n, v in zip(names, sess.run(None, feeds))}
    return model, feeds, observed


def count_params(graph):
    total = sum(math.prod(t.dims) for t in graph.initializer if t.data_type in FLOAT_TYPES)
    total += sum(math.prod(t.dims) for t in graph.sparse_initializer
                 if t.values.data_type in FLOAT_TYPES)
    for node in graph.node:
        for a in node.attribute:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                if a.name == "value" and a.t.data_type in FLOAT_TYPES:
                    total += math.prod(a.t.dims)
                elif a.name == "sparse_value" and a.sparse_tensor.values.data_type in FLOAT_TYPES:
                    total += math.prod(a.sparse_tensor.dims)
                elif a.name == "value_float":
                    total += 1
                elif a.name == "value_floats":
                    total += len(a.floats)
            subgraphs = ([a.g] if a.HasField("g") else []) + list(a.graphs)
            total += sum(count_params(g) for g in subgraphs)
    return total


def node_macs(node, shape):
    if node.domain not in ("", "ai.onnx"):
        return 0
    out = shape[node.output[0]]
    if node.op_type == "Conv":        # N*Cout*out_spatial * (Cin/group)*kernel
        return math.prod(out) * math.prod(shape[node.input[1]][1:])
    if node.op_type == "ConvTranspose":  # N*Cin*in_spatial * (Cout/group)*kernel
        return math.prod(shape[node.input[0]]) * math.prod(shape[node.input[1]][1:])
    if node.op_type == "Gemm":        # M*N*K
        a = shape[node.input[0]]
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        return math.prod(out) * (a[0] if trans_a else a[1])
    if node.op_type == "MatMul":      # batch*M*N*K; a 1-D operand just drops M or N from out
        return math.prod(out) * shape[node.input[0]][-1]
    if node.op_type in ("RNN", "GRU", "LSTM"):  # T*N*directions * (gates*hidden) * (input + hidden)
        x, w, r = (shape[node.input[i]] for i in range(3))
        return x[0] * x[1] * w[0] * w[1] * (w[2] + r[2])
    return 0


def cmd_check(args):
    path = model_path(args.model)
    try:  # the path form lets the checker handle external data and models over 2 GB
        onnx.checker.check_model(path, full_check=True)
        return {"ok": True}
    except Exception as e:  # ValidationError, InferenceError, ValueError, ...
        return {"ok": False, "error": str(e)}


def cmd_compare(args):
    a = session(model_path(args.model_a), args.opt)
    b = session(model_path(args.model_b), args.opt)
    if {i.name for i in a.get_inputs()} != {i.name for i in b.get_inputs()}:
        raise RuntimeError(f"input names differ: {[i.name for i in a.get_inputs()]} vs "
                           f"{[i.name for i in b.get_inputs()]}")
    feeds = random_inputs(a, parse_shapes(args.shape), args.seed)
    out_a, out_b = a.run(None, feeds), b.run(None, feeds)
    result = {"identical": True, "close": True, "max_abs_diff": 0.0, "outputs": [o.name for o in a.get_outputs()]}
    if len(out_a) != len(out_b):
        return {**result, "identical": False, "max_abs_diff": None,
                "close": False, "mismatch": f"{len(out_a)} outputs vs {len(out_b)}"}
    for name, x, y in zip(result["outputs"], map(np.asarray, out_a), map(np.asarray, out_b)):
        if x.shape != y.shape or x.dtype != y.dtype:
            return {**result, "identical": False, "close": False, "max_abs_diff": None,
                    "mismatch": f"output {name!r}: {x.dtype}{list(x.shape)} "
                                f"vs {y.dtype}{list(y.shape)}"}
        if x.tobytes() != y.tobytes():
            result["identical"] = False
        x, y = x.astype(np.float64), y.astype(np.float64)
        # "close" uses numpy's allclose with --rtol/--atol (NaN equal to NaN).
        result["close"] = result["close"] and bool(np.allclose(x, y, rtol=args.rtol, atol=args.atol, equal_nan=True))
        diff = np.abs(x - y)
        diff[np.isnan(diff) & (np.isnan(x) == np.isnan(y))] = 0  # NaN vs NaN, inf vs inf
        worst = float(diff.max()) if diff.size else 0.0
        if not math.isfinite(worst):
            result["max_abs_diff"] = None
        elif result["max_abs_diff"] is not None:
            result["max_abs_diff"] = max(result["max_abs_diff"], worst)
    return result


def node_key(node, index, seen):
    key = node.name if node.name and node.name not in seen else f"{node.op_type}#{index}"
    seen.add(key)
    return key


def cmd_count(args):
    model, feeds, observed = observe(model_path(args.model), parse_shapes(args.shape), args.seed)
    shape = {t.name: list(t.dims) for t in model.graph.initializer}
    shape.update({n: list(v.shape) for n, v in feeds.items()})
    shape.update(observed)
    per_node, seen = {}, set()
    for index, node in enumerate(model.graph.node):
        per_node[node_key(node, index, seen)] = {
            "macs": node_macs(node, shape),
            "output_shapes": [shape.get(o) if o else None for o in node.output]}
    return {"params": count_params(model.graph),
            "macs": sum(n["macs"] for n in per_node.values()), "per_node": per_node}


def cmd_shapes(args):
    model, _, observed = observe(model_path(args.model), parse_shapes(args.shape), args.seed)
    return {o: observed[o] for node in model.graph.node for o in node.output if o}


def cmd_run(args):
    sess = session(model_path(args.model), args.opt)
    files = parse_assignments(args.input, "FILE.npy")
    names = [i.name for i in sess.get_inputs()]
    if set(files) != set(names):
        raise UsageError(f"model inputs are {names}; --input given for {sorted(files)}")
    feeds = {}
    for name, file in files.items():
        if not os.path.isfile(file):
            raise UsageError(f"no such input file: {file}")
        feeds[name] = np.load(file)
    os.makedirs(args.output_dir, exist_ok=True)
    written = {}
    for out, value in zip(sess.get_outputs(), sess.run(None, feeds)):
        value = np.asarray(value)
        file = os.path.join(args.output_dir, re.sub(r"[^A-Za-z0-9._-]", "_", out.name) + ".npy")
        np.save(file, value)
        written[out.name] = {"file": file, "shape": list(value.shape), "dtype": str(value.dtype)}
    return {"outputs": written}


def parser():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, func, models=("model",), shapes=False, opt=False):
        s = sub.add_parser(name)
        for m in models:
            s.add_argument(m)
        if shapes:
            s.add_argument("--shape", action="append", metavar="NAME=DIMS",
                           help="input shape, e.g. x=1x3x64x64 (repeatable)")
            s.add_argument("--seed", type=int, default=0)
        if opt:
            s.add_argument("--opt", choices=OPT_LEVELS, default="none",
                           help="ONNX Runtime graph optimization level")
        s.set_defaults(func=func)
        return s

    add("check", cmd_check)
    compare = add("compare", cmd_compare, models=("model_a", "model_b"), shapes=True, opt=True)
    compare.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance of 'close'")
    compare.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance of 'close'")
    add("count", cmd_count, shapes=True)
    add("shapes", cmd_shapes, shapes=True)
    run = add("run", cmd_run, opt=True)
    run.add_argument("--input", action="append", metavar="NAME=FILE.npy", required=True)
    run.add_argument("--output-dir", required=True)
    return p


def main():
    args = parser().parse_args()
    try:
        result = args.func(args)
    except UsageError as e:
        print(f"onnx_reference: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        print(f"onnx_reference: {args.command} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
