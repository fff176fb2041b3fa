#!/usr/bin/env python3
"""Every Conv of an ONNX model as one line for conv_taps_vs_sgemm.c (2-D, square kernels and strides).

  python3 Docs/bench/conv_shapes.py MODEL > shapes.txt

Columns: filters, input channels, input height, width, kernel, stride, pad, output height, width.
Group and dilated Convs are left out (the detectors measured have none).
"""
import sys

import onnx
from onnx import shape_inference

model = shape_inference.infer_shapes(onnx.load(sys.argv[1]))
values = list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)
shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}
weights = {t.name: list(t.dims) for t in model.graph.initializer}
for node in model.graph.node:
    if node.op_type != "Conv":
        continue
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if attributes.get("group", 1) != 1 or any(d != 1 for d in attributes.get("dilations", [1, 1])):
        continue
    w, x, y = weights[node.input[1]], shapes[node.input[0]], shapes[node.output[0]]
    stride, pads = attributes.get("strides", [1, 1]), attributes.get("pads", [0, 0, 0, 0])
    print(w[0], w[1], x[2], x[3], w[2], stride[0], pads[0], y[2], y[3])
