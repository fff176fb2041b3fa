#!/usr/bin/env python3
"""Re-applies a Lopper plan to the original ONNX model's weights.

  python3 Docs/tools/apply_plan.py ORIGINAL.onnx plan.json OUT.npz

For each entry of the plan's `tensors` (an initializer name, an axis and the positions kept),
keeps those positions of the original initializer; then sets every tensor of `replaced` (biases
changed by bias correction, weights zeroed by N:M or unstructured sparsity) to its values.
Writes the resulting initializers by name to OUT.npz: they equal the exported model's. The plan
format is described in Docs/allocation.md.
"""
import json
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def apply(model_path, plan_path):
    model = onnx.load(model_path)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    plan = json.load(open(plan_path))
    out = {}
    for cut in plan.get("tensors", []):
        name = cut["tensor"]
        source = out.get(name, weights[name])
        out[name] = np.take(source, np.array(cut["keep"], dtype=np.int64), axis=cut["axis"])
    for replacement in plan.get("replaced", []):
        values = np.array(replacement["values"], dtype=np.float32).reshape(replacement["shape"])
        out[replacement["tensor"]] = values
    return out


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    np.savez(sys.argv[3], **apply(sys.argv[1], sys.argv[2]))
