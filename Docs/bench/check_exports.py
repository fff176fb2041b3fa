#!/usr/bin/env python3
"""Checks every profile folder of a `lopper export` batch from outside Lopper: the ONNX checker
(full check, with shape inference), a run in ONNX Runtime on the given data (outputs finite, the
same names and shapes as the dense model's), and the manifest's own verdict on the budgets.

    python3 Docs/bench/check_exports.py DENSE.onnx DATA.npz EXPORTS_DIR
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort


def weights(path):
    """Values held in initializers and Constant nodes."""
    graph = onnx.load(str(path)).graph
    tensors = list(graph.initializer) + [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    return sum(int(np.prod(t.dims)) for t in tensors)


def run(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return {o.name: v for o, v in zip(session.get_outputs(), session.run(None, feeds))}


def main():
    dense_path, data_path, exports = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    data = np.load(data_path)
    session = ort.InferenceSession(dense_path, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feeds = {name: (data[name] if name in data.files else data[data.files[0]])[:1] for name in names}
    dense = run(dense_path, feeds)
    failures = 0
    print(f"{'profile':18} {'checker':8} {'runtime':8} {'budgets':8} {'weights':>10} {'dense':>10}")
    dense_params = weights(dense_path)
    for folder in sorted(p for p in exports.iterdir() if (p / "model.onnx").exists()):
        model_path = folder / "model.onnx"
        try:
            onnx.checker.check_model(str(model_path), full_check=True)
            checker = "ok"
        except Exception as error:  # the checker's own exception types vary by version
            checker = f"FAILED: {error}"
        try:
            outputs = run(model_path, feeds)
            same = outputs.keys() == dense.keys() and all(outputs[k].shape == dense[k].shape for k in dense)
            finite = all(np.isfinite(v).all() for v in outputs.values())
            runtime = "ok" if same and finite else "FAILED: " + ("outputs differ in form" if not same else "non-finite output")
        except Exception as error:
            runtime = f"FAILED: {error}"
        manifest = json.loads((folder / "manifest.json").read_text())
        budgets = "ok" if manifest["meetsBudgets"] else "OVER"
        params = weights(model_path)
        print(f"{folder.name:18} {checker[:8]:8} {runtime[:8]:8} {budgets:8} {params:10d} {dense_params:10d}")
        for verdict in (checker, runtime):
            if verdict != "ok":
                print(f"  {folder.name}: {verdict}")
        failures += checker != "ok" or runtime != "ok" or budgets != "ok"
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
