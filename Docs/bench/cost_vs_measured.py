#!/usr/bin/env python3
"""Predicted latency on `host` against latency measured by Lopper's runtime and ONNX Runtime.

  python3 Docs/bench/cost_vs_measured.py LOPPER_BINARY [--variants 24] [--runs 31]

For each real development model, two latency tables: `lopper measure` times the steps of the
model and of uniformly pruned copies in Lopper's runtime, and `lopper measure --step-models` plus
`ort_latency_table.py --in-place` charge the same steps from ONNX Runtime's per-node profiles of
the same whole models (an ONNX Runtime copy of `Config/profiles/host.yaml` carries its per-call
cost as the run overhead and the channel multiple of its blocked convolutions as the alignment).
Then `lopper bench-cost` writes the dense model and pruned variants (uniform fractions, then
random fractions per group), predicts each one's latency from the Lopper table and `host.yaml`
and times it in Lopper's runtime; `lopper cost` predicts each variant file from the ONNX Runtime
table and profile, and this script times it in ONNX Runtime. Prints the median absolute error
and Spearman rank correlation of each prediction against its runtime, and how MACs alone would
rank the variants. Every timing is the fastest of --runs runs, in CPU time of the one thread
that runs the model, spread over --rounds turns through the variants. "Measured against itself" ranks the first half of those turns against the second:
the ceiling the noise of this machine puts on any prediction's Spearman.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from ort_latency_table import fastest_seconds, nchwc_block, write_profile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
REAL = os.path.join(ROOT, "Tests", "Fixtures", "real")
BENCH = os.path.dirname(os.path.abspath(__file__))
MODELS = {  # label: (file, input shape, output the runtime can reach)
    "PP-OCRv4 det 320x320": ("ch_PP-OCRv4_det_infer.onnx", "x=1x3x320x320", None),
    "PP-OCR cls batch 8": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", "x=8x3x48x192", None),
    "digits MLP batch 64": ("digits_mlp.onnx", "input=64x64", "probabilities"),
    "digits MLP batch 1": ("digits_mlp.onnx", "input=1x64", "probabilities"),
}


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def ort_tables(lopper, model, shape_args, work, runs):
    """The ONNX Runtime latency table and profile of `model` (measured once per work folder): the
    steps of the model and its uniformly pruned copies charged from per-node profiles of whole
    runs, sized with the channel alignment of ONNX Runtime's blocked convolutions on this CPU."""
    table, profile, steps = work + ".ort.csv", work + "-ort.yaml", work + ".steps"
    if not os.path.exists(table):
        os.makedirs(steps, exist_ok=True)
        write_profile(profile, 0, nchwc_block(steps))  # the alignment the step sizes are counted with
        subprocess.run([lopper, "measure", model, "--step-models", steps, "--profile", profile, *shape_args], check=True,
                       stderr=subprocess.DEVNULL)
        subprocess.run([sys.executable, os.path.join(BENCH, "ort_latency_table.py"), steps, "--in-place", "--table", table,
                        "--profile-out", profile, "--runs", str(runs)], check=True, stdout=subprocess.DEVNULL)
    return table, profile


def ort_rounds_ms(files, runs, feeds, rounds):
    """The fastest run of each file in ONNX Runtime per round: the files are measured in turn
    `rounds` times so that a busy spell of the machine slows all of them alike."""
    per_round = max(1, runs // rounds)
    return np.array([[fastest_seconds(f, per_round, feeds) * 1e3 for f in files] for _ in range(rounds)])


def repeatability(rounds):
    """Spearman between the fastest runs of the first and the second half of the rounds: how
    well the measurement ranks the variants against itself, the ceiling of any prediction."""
    half = len(rounds) // 2
    return spearman(rounds[:half].min(axis=0), rounds[half:].min(axis=0))


def predicted_ms(lopper, file, profile, table, shape_args):
    shape_only = shape_args[:2] if shape_args[:1] == ["--input-shape"] else []
    out = subprocess.run([lopper, "cost", file, "--profile", profile, "--table", table, "--json", *shape_only],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["totals"]["latencySeconds"] * 1e3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lopper")
    parser.add_argument("--variants", type=int, default=24)
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--rounds", type=int, default=4, help="the variants are timed in turn this many times, in each runtime")
    parser.add_argument("--work", default=tempfile.mkdtemp(prefix="lopper-cost-"))
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated labels of the models to run")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    print("| model | variants | vs Lopper: median abs. error | Spearman | vs ORT (ORT table): median abs. error | Spearman "
          "| MACs alone: Spearman (Lopper / ORT) | measured against itself: Spearman (Lopper / ORT) | ORT / Lopper measured |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label in args.models.split(","):
        file, shape, output = MODELS[label]
        model = os.path.join(REAL, file)
        shape_args = (["--input-shape", shape] if shape else []) + (["--output", output] if output else [])
        feeds = {shape.split("=")[0]: [int(d) for d in shape.split("=")[1].split("x")]} if shape else None
        work = os.path.join(args.work, label.replace(" ", "_"))
        table = work + ".latency.csv"
        subprocess.run([args.lopper, "measure", model, "--table", table, "--runs", str(args.runs), *shape_args], check=True,
                       stderr=subprocess.DEVNULL)
        ort_table, ort_profile = ort_tables(args.lopper, model, shape_args, work, args.runs)
        out = subprocess.run([args.lopper, "bench-cost", model, "--profile", "host", "--table", table,
                              "--variants", str(args.variants), "--runs", str(args.runs), "--rounds", str(args.rounds),
                              "--out", work + ".variants", *shape_args], check=True, capture_output=True, text=True)
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        lopper_rounds = np.array([r["lopper_rounds_ms"] for r in rows]).T
        predicted = np.array([r["predicted_ms"] for r in rows])
        lopper = lopper_rounds.min(axis=0)
        macs = np.array([r["macs"] for r in rows], dtype=float)
        predicted_ort = np.array([predicted_ms(args.lopper, r["file"], ort_profile, ort_table, shape_args) for r in rows])
        onnx_rounds = ort_rounds_ms([r["file"] for r in rows], args.runs, feeds, args.rounds)
        onnx = onnx_rounds.min(axis=0)
        err_l = np.median(np.abs(predicted - lopper) / lopper) * 100
        err_o = np.median(np.abs(predicted_ort - onnx) / onnx) * 100
        print(f"| {label} | {len(rows)} | {err_l:.1f}% | {spearman(predicted, lopper):.3f} | {err_o:.1f}% | "
              f"{spearman(predicted_ort, onnx):.3f} | {spearman(macs, lopper):.3f} / {spearman(macs, onnx):.3f} | "
              f"{repeatability(lopper_rounds):.3f} / {repeatability(onnx_rounds):.3f} | {np.median(onnx / lopper):.2f} |",
              flush=True)
        with open(work + ".rows.json", "w") as out:
            json.dump([dict(r, predicted_ort_ms=float(p), ort_ms=float(o)) for r, p, o in zip(rows, predicted_ort, onnx)], out, indent=1)


if __name__ == "__main__":
    main()
