#!/usr/bin/env python3
"""Build a YOLOv8-style detector as ONNX, with seeded random weights.

Our own code, following the published YOLOv8 architecture (ultralytics yolov8.yaml):
backbone Conv/C2f stages and SPPF, a PAN neck with nearest ×2 Resize and Concats, and the
decoupled anchor-free detection head with DFL (4 sides × 16 bins, Softmax, 1×1 conv with
arange weights), dist2bbox and class sigmoid. Output `output0` is [1, 4 + classes, anchors]:
rows 0..3 are the box centre x, y, width, height in input pixels, the rest class scores.

    python3 Tests/Fixtures/make_yolov8.py --size 320 --out yolov8n_320.onnx

Width/depth multiples default to the `n` scale (0.25 / 0.33). A Conv is Conv2d → BN → SiLU;
with --bn folded (the default, as exported models are) the BN is folded into the conv's bias,
with --bn separate it is a BatchNormalization node.
"""
import argparse
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from make_fixtures import Builder, tensor, validate

REG_MAX = 16           # DFL bins per box side
STRIDES = (8, 16, 32)  # P3, P4, P5


class YOLOv8:
    def __init__(self, width, depth, classes, separate_bn, max_channels=1024):
        self.b = Builder()
        self.width, self.depth, self.max_channels = width, depth, max_channels
        self.classes, self.separate_bn = classes, separate_bn

    def channels(self, c):
        """make_divisible(min(c, max_channels) × width, 8)."""
        return int(math.ceil(min(c, self.max_channels) * self.width / 8) * 8)

    def repeats(self, n):
        return max(round(n * self.depth), 1) if n > 1 else n

    def conv(self, x, cin, cout, k=1, s=1):
        """Conv2d(k, s, pad k//2) → BN (folded or separate) → SiLU."""
        h = self.b.conv(x, cin, cout, k=k, stride=s, bias=not self.separate_bn)
        if self.separate_bn:
            h = self.b.bn(h, cout)
        return self.b.silu(h)

    def bottleneck(self, x, c, shortcut):
        y = self.conv(self.conv(x, c, c, k=3), c, c, k=3)
        return self.b.op("Add", [x, y]) if shortcut else y

    def c2f(self, x, cin, cout, n, shortcut):
        c = cout // 2
        h = self.conv(x, cin, 2 * c)
        sizes = self.b.const("split", [c, c], np.int64)
        parts = list(self.b.op("Split", [h, sizes], n_out=2, axis=1))
        for _ in range(n):
            parts.append(self.bottleneck(parts[-1], c, shortcut))
        return self.conv(self.b.op("Concat", parts, axis=1), (2 + n) * c, cout)

    def sppf(self, x, cin, cout):
        c = cin // 2
        parts = [self.conv(x, cin, c)]
        for _ in range(3):
            parts.append(self.b.op("MaxPool", [parts[-1]], kernel_shape=[5, 5], strides=[1, 1],
                                   pads=[2, 2, 2, 2]))
        return self.conv(self.b.op("Concat", parts, axis=1), 4 * c, cout)

    def upsample(self, x):
        scales = self.b.const("scales", [1, 1, 2, 2])
        return self.b.op("Resize", [x, "", scales], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def backbone(self, x):
        ch = self.channels
        h = self.conv(x, 3, ch(64), k=3, s=2)                                 # P1/2
        h = self.conv(h, ch(64), ch(128), k=3, s=2)                           # P2/4
        h = self.c2f(h, ch(128), ch(128), self.repeats(3), True)
        h = self.conv(h, ch(128), ch(256), k=3, s=2)                          # P3/8
        p3 = self.c2f(h, ch(256), ch(256), self.repeats(6), True)
        h = self.conv(p3, ch(256), ch(512), k=3, s=2)                         # P4/16
        p4 = self.c2f(h, ch(512), ch(512), self.repeats(6), True)
        h = self.conv(p4, ch(512), ch(1024), k=3, s=2)                        # P5/32
        h = self.c2f(h, ch(1024), ch(1024), self.repeats(3), True)
        return p3, p4, self.sppf(h, ch(1024), ch(1024))

    def neck(self, p3, p4, p5):
        ch, n = self.channels, self.repeats(3)
        cat = lambda parts: self.b.op("Concat", parts, axis=1)
        h = cat([self.upsample(p5), p4])
        n4 = self.c2f(h, ch(1024) + ch(512), ch(512), n, False)
        h = cat([self.upsample(n4), p3])
        out3 = self.c2f(h, ch(512) + ch(256), ch(256), n, False)             # P3 out
        h = cat([self.conv(out3, ch(256), ch(256), k=3, s=2), n4])
        out4 = self.c2f(h, ch(256) + ch(512), ch(512), n, False)             # P4 out
        h = cat([self.conv(out4, ch(512), ch(512), k=3, s=2), p5])
        out5 = self.c2f(h, ch(512) + ch(1024), ch(1024), n, False)           # P5 out
        return [(out3, ch(256)), (out4, ch(512)), (out5, ch(1024))]

    def head(self, levels, size):
        b = self.b
        c_box = max(16, levels[0][1] // 4, 4 * REG_MAX)
        c_cls = max(levels[0][1], min(self.classes, 100))
        no = 4 * REG_MAX + self.classes
        flat = []
        for x, c in levels:
            box = self.conv(self.conv(x, c, c_box, k=3), c_box, c_box, k=3)
            box = b.conv(box, c_box, 4 * REG_MAX, k=1)                        # detection output
            cls = self.conv(self.conv(x, c, c_cls, k=3), c_cls, c_cls, k=3)
            cls = b.conv(cls, c_cls, self.classes, k=1)                       # detection output
            h = b.op("Concat", [box, cls], axis=1)
            flat.append(b.op("Reshape", [h, b.const("shape", [1, no, -1], np.int64)]))
        h = b.op("Concat", flat, axis=2)                                      # [1, no, A]
        sizes = b.const("split", [4 * REG_MAX, self.classes], np.int64)
        box, cls = b.op("Split", [h, sizes], n_out=2, axis=1)
        anchors, strides = anchor_grid(size)
        # DFL: [1, 64, A] → [1, 4, 16, A] → bins first → softmax over bins → expectation.
        dist = b.op("Reshape", [box, b.const("shape", [1, 4, REG_MAX, -1], np.int64)])
        dist = b.op("Softmax", [b.op("Transpose", [dist], perm=[0, 2, 1, 3])], axis=1)
        bins = b.const("dfl_w", np.arange(REG_MAX, dtype=np.float32).reshape(1, REG_MAX, 1, 1))
        dist = b.op("Conv", [dist, bins], kernel_shape=[1, 1])               # [1, 1, 4, A]
        dist = b.op("Reshape", [dist, b.const("shape", [1, 4, -1], np.int64)])
        lt, rb = b.op("Split", [dist, b.const("split", [2, 2], np.int64)], n_out=2, axis=1)
        anchor = b.const("anchors", anchors)
        x1y1, x2y2 = b.op("Sub", [anchor, lt]), b.op("Add", [anchor, rb])
        centre = b.op("Div", [b.op("Add", [x1y1, x2y2]), b.const("two", 2.0)])
        wh = b.op("Sub", [x2y2, x1y1])
        xywh = b.op("Mul", [b.op("Concat", [centre, wh], axis=1), b.const("strides", strides)])
        b.nodes.append(helper.make_node("Concat", [xywh, b.op("Sigmoid", [cls])], ["output0"],
                                        name="concat_output", axis=1))
        return no, anchors.shape[-1]

    def build(self, size):
        p3, p4, p5 = self.backbone("images")
        _, count = self.head(self.neck(p3, p4, p5), size)
        return self.b.model("yolov8", [tensor("images", [1, 3, size, size])],
                            [tensor("output0", [1, 4 + self.classes, count])], 17)


def anchor_grid(size):
    """Grid-cell centres in cells ([1, 2, A]) and each anchor's stride ([1, 1, A]), P3 to P5."""
    points, strides = [], []
    for stride in STRIDES:
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells) + 0.5, np.arange(cells) + 0.5, indexing="ij")
        points.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full(cells * cells, stride))
    return (np.concatenate(points, axis=1)[None].astype(np.float32),
            np.concatenate(strides)[None, None].astype(np.float32))


def build(size=320, width=0.25, depth=0.33, classes=80, separate_bn=False):
    if size % 32:
        raise SystemExit(f"error: --size {size} is not a multiple of 32 (the P5 stride)")
    return YOLOv8(width, depth, classes, separate_bn).build(size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=320, help="input height and width (×32)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--width", type=float, default=0.25, help="width multiple (n: 0.25)")
    parser.add_argument("--depth", type=float, default=0.33, help="depth multiple (n: 0.33)")
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--bn", choices=["folded", "separate"], default="folded")
    args = parser.parse_args()
    model = build(args.size, args.width, args.depth, args.classes, args.bn == "separate")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.out)
    validate(args.out)
    params = sum(math.prod(t.dims) for t in model.graph.initializer
                 if t.data_type == TensorProto.FLOAT)
    print(f"yolov8 size={args.size} nodes={len(model.graph.node)} params={params} -> {args.out}")


if __name__ == "__main__":
    main()
