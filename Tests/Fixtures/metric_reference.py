#!/usr/bin/env python3
"""numpy reference for Lopper's task metrics: the dense model's output is the ground truth.

Every subcommand reads two .npy outputs (dense, pruned) and prints one JSON object.

  detection DENSE PRUNED --layout yolov8|yolov5 --classes C [--conf 0.25] [--iou 0.45]
            [--max-det 300]                     {"map50", "map", "dense_boxes", "pruned_boxes"}

  embedding DENSE PRUNED [--mask MASK.npy]      {"cosine"}  [N, S, D] mean-pooled over the mask
  mean-iou DENSE PRUNED                         {"miou"}    argmax over axis 1 of [N, C, ...]
  ctc DENSE PRUNED [--blank 0]                  {"agreement"}  greedy decoding of [N, T, C]

Detection: boxes above the confidence threshold, per-class greedy NMS, then COCO-style AP
(101-point interpolated precision envelope) per class with a dense box, averaged over
classes, at IoU 0.5 and at 0.5:0.05:0.95.
"""
import argparse
import json
import sys

import numpy as np

COCO_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def iou_matrix(a, b):
    """IoU of every box in a [n, 4] with every box in b [m, 4] (x1, y1, x2, y2)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)
    union = area(a)[:, None] + area(b)[None, :] - overlap
    return np.where(union > 0, overlap / np.where(union > 0, union, 1), 0)


def decode(output, layout, classes, conf, iou, max_det):
    """Per image: (boxes [k, 4], scores [k], classes [k]) after threshold and NMS."""
    if layout == "yolov8":
        rows = np.transpose(output, (0, 2, 1))          # [N, A, 4 + C]
        scores_all, objectness = rows[:, :, 4:], 1.0
    else:
        rows = output                                    # [N, A, 5 + C]
        scores_all, objectness = rows[:, :, 5:], rows[:, :, 4:5]
    assert scores_all.shape[2] == classes
    images = []
    for n in range(rows.shape[0]):
        cls = np.argmax(scores_all[n], axis=1)
        score = (scores_all[n] * objectness[n] if layout == "yolov5" else scores_all[n])[np.arange(len(cls)), cls]
        keep = score >= conf
        xywh = rows[n, keep, :4]
        boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
        score, cls = score[keep], cls[keep]
        order = np.argsort(-score, kind="stable")
        chosen = []
        for i in order:
            same = [j for j in chosen if cls[j] == cls[i]]
            if same and iou_matrix(boxes[i:i + 1], boxes[same]).max() > iou:
                continue
            chosen.append(i)
            if len(chosen) == max_det:
                break
        chosen = np.array(chosen, dtype=int)
        images.append((boxes[chosen], score[chosen], cls[chosen]))
    return images


def average_precision(pred, truth, c, threshold):
    entries = [(s, n, b) for n, (boxes, scores, cl) in enumerate(pred)
               for b, s, k in zip(boxes, scores, cl) if k == c]
    order = sorted(range(len(entries)), key=lambda i: (-entries[i][0], i))
    gt = [boxes[cl == c] for boxes, _, cl in truth]
    total = sum(len(g) for g in gt)
    used = [np.zeros(len(g), bool) for g in gt]
    hits = []
    for i in order:
        _, n, box = entries[i]
        if len(gt[n]) == 0:
            hits.append(0)
            continue
        overlaps = iou_matrix(box[None], gt[n])[0]
        overlaps[used[n]] = -1
        j = int(np.argmax(overlaps))
        if overlaps[j] >= threshold:
            used[n][j] = True
            hits.append(1)
        else:
            hits.append(0)
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    recall = tp / total
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(hits) else precision
    levels = np.arange(101) / 100
    where = np.searchsorted(recall, levels, side="left")
    return sum(envelope[w] for w in where if w < len(hits)) / 101


def mean_ap(pred, truth, thresholds):
    present = set(int(k) for _, _, cl in pred + truth for k in cl)
    scored = sorted(c for c in present if any((cl == c).any() for _, _, cl in truth))
    if not scored:
        return 1.0 if not present else 0.0
    return float(np.mean([np.mean([average_precision(pred, truth, c, t) for c in scored])
                          for t in thresholds]))


def cmd_detection(args):
    dense, pruned = np.load(args.dense).astype(np.float64), np.load(args.pruned).astype(np.float64)
    settings = (args.layout, args.classes, args.conf, args.iou, args.max_det)
    truth, pred = decode(dense, *settings), decode(pruned, *settings)
    return {"map50": mean_ap(pred, truth, [0.5]), "map": mean_ap(pred, truth, COCO_THRESHOLDS),
            "dense_boxes": sum(len(s) for _, s, _ in truth), "pruned_boxes": sum(len(s) for _, s, _ in pred)}


def cmd_embedding(args):
    dense, pruned = np.load(args.dense).astype(np.float64), np.load(args.pruned).astype(np.float64)
    mask = np.load(args.mask).astype(np.float64) if args.mask else np.ones(dense.shape[:2])
    pool = lambda h: (h * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-12)
    a, b = pool(dense), pool(pruned)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"cosine": float(cos.mean())}


def cmd_mean_iou(args):
    want, got = np.argmax(np.load(args.dense), axis=1), np.argmax(np.load(args.pruned), axis=1)
    ious = []
    for c in np.union1d(np.unique(want), np.unique(got)):
        union = np.logical_or(want == c, got == c).sum()
        ious.append(np.logical_and(want == c, got == c).sum() / union)
    return {"miou": float(np.mean(ious))}


def cmd_ctc(args):
    def decode(output):
        best = np.argmax(output, axis=2)
        sequences = []
        for row in best:
            merged = [k for t, k in enumerate(row) if t == 0 or k != row[t - 1]]
            sequences.append([int(k) for k in merged if k != args.blank])
        return sequences
    want, got = decode(np.load(args.dense)), decode(np.load(args.pruned))
    return {"agreement": float(np.mean([a == b for a, b in zip(want, got)]))}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("detection")
    d.add_argument("dense")
    d.add_argument("pruned")
    d.add_argument("--layout", choices=["yolov8", "yolov5"], required=True)
    d.add_argument("--classes", type=int, required=True)
    d.add_argument("--conf", type=float, default=0.25)
    d.add_argument("--iou", type=float, default=0.45)
    d.add_argument("--max-det", type=int, default=300)
    d.set_defaults(func=cmd_detection)
    for name, func in [("embedding", cmd_embedding), ("mean-iou", cmd_mean_iou), ("ctc", cmd_ctc)]:
        c = sub.add_parser(name)
        c.add_argument("dense")
        c.add_argument("pruned")
        if name == "embedding":
            c.add_argument("--mask")
        if name == "ctc":
            c.add_argument("--blank", type=int, default=0)
        c.set_defaults(func=func)
    args = p.parse_args()
    print(json.dumps(args.func(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
