#!/usr/bin/env python3
"""Text boxes a pruned PP-OCR-style (DB) detector finds, against the dense model's.

Runs every model in ONNX Runtime, decodes the probability map into boxes the way the DB
post-process does (threshold 0.3, connected regions, box score = mean probability inside, boxes
scoring under 0.6 or smaller than 3 px dropped, each box grown by D = area * 1.5 / perimeter;
Liao et al., "Real-time Scene Text Detection with Differentiable Binarization", AAAI 2020, with
axis-aligned boxes instead of rotated rectangles), and scores the pruned model's boxes against the
dense model's as pseudo ground truth: one-to-one matches at IoU >= 0.5, precision, recall and
their harmonic mean (the ICDAR detection score). Also prints the output map's relative L2.

    python3 Docs/bench/det_text_boxes.py DENSE.onnx DATA.npz [DATA2.npz ...] --models EXPORT_DIR ... [--json]

Each EXPORT_DIR is a `lopper export` profile folder: its model.onnx and, when exported with
--write-baselines, its baseline-*.onnx are scored.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from scipy import ndimage

THRESHOLD, BOX_THRESHOLD, MIN_SIZE, UNCLIP = 0.3, 0.6, 3, 1.5


def run(path, batches):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: batch})[0] for batch in batches]).astype(np.float64)


def boxes(probability):
    """Boxes (x0, y0, x1, y1) of one [H, W] probability map."""
    labels, count = ndimage.label(probability > THRESHOLD)
    found = []
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        ys, xs = region
        height, width = ys.stop - ys.start, xs.stop - xs.start
        if min(height, width) < MIN_SIZE:
            continue
        if probability[region][labels[region] == index].mean() < BOX_THRESHOLD:
            continue
        grow = height * width * UNCLIP / (2 * (height + width))
        found.append((xs.start - grow, ys.start - grow, xs.stop + grow, ys.stop + grow))
    return found


def iou(a, b):
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def matches(found, truth):
    """One-to-one matches at IoU >= 0.5, best pairs first."""
    pairs = sorted(((iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)), reverse=True)
    used_found, used_truth, count = set(), set(), 0
    for value, i, j in pairs:
        if value < 0.5:
            break
        if i not in used_found and j not in used_truth:
            used_found.add(i)
            used_truth.add(j)
            count += 1
    return count


def score(dense_maps, maps):
    matched = predicted = truth = 0
    for dense, pruned in zip(dense_maps, maps):
        reference, found = boxes(dense[0]), boxes(pruned[0])
        matched += matches(found, reference)
        predicted += len(found)
        truth += len(reference)
    precision = matched / predicted if predicted else (1.0 if truth == 0 else 0.0)
    recall = matched / truth if truth else 1.0
    hmean = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    l2 = float(np.sqrt(((maps - dense_maps) ** 2).sum() / (dense_maps ** 2).sum()))
    return {"boxes": predicted, "dense_boxes": truth, "precision": precision, "recall": recall, "hmean": hmean,
            "relative_l2": l2}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dense")
    parser.add_argument("data", nargs="+")
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    for data in args.data:
        batches = [b[None] for b in np.load(data)["x"]]
        dense = run(args.dense, batches)
        for folder in map(Path, args.models):
            for model in [folder / "model.onnx", *sorted(folder.glob("baseline-*.onnx"))]:
                label = f"{folder.parent.name}/{folder.name}/{'allocated' if model.name == 'model.onnx' else model.stem.removeprefix('baseline-')}"
                results.setdefault(label, {})[Path(data).name] = score(dense, run(model, batches))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'model':44} {'data':18} {'boxes':>6} {'dense':>6} {'P':>6} {'R':>6} {'hmean':>6} {'rel L2':>7}")
    for label, by_data in results.items():
        for data, s in by_data.items():
            print(f"{label:44} {data:18} {s['boxes']:6d} {s['dense_boxes']:6d} {s['precision']:6.3f} {s['recall']:6.3f} "
                  f"{s['hmean']:6.3f} {s['relative_l2']:7.3f}")


if __name__ == "__main__":
    main()
