#!/usr/bin/env python3
"""Prefix reuse in sensitivity sweeps: the same sweep with and without it, in the same run.
Prints jobs/s, the MACs actually executed (summed from the results store) and the ratios, and
checks that both sweeps stored bit-identical scores.

usage: sweep_prefix_reuse.py LOPPER_BINARY [--det] [--runs 1]
"""
import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sweep(lopper, args, db, reuse):
    command = [lopper, "sweep", *args, "--db", db, "--jobs", "1", "--quiet"] + ([] if reuse else ["--no-prefix-reuse"])
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(result.stderr)
    with sqlite3.connect(db) as connection:
        jobs, macs = connection.execute("SELECT COUNT(*), SUM(macs_executed) FROM jobs WHERE state = 'done'").fetchone()
        scores = dict(connection.execute("SELECT job_key, score FROM jobs"))
    return jobs, macs, seconds, scores


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lopper")
    parser.add_argument("--det", action="store_true", help="also PP-OCRv4 det (fetched real model)")
    args = parser.parse_args()
    cases = [("chain24 (24 conv layers), 16 samples 3x32x32, 9 levels, l1",
              ["--config", os.path.join(ROOT, "Config/sweeps/chain24.yaml"), "--criterion", "l1"])]
    tmp = tempfile.mkdtemp()
    if args.det:
        calib = os.path.join(tmp, "det_calib.npz")
        np.savez(calib, x=np.random.default_rng(0).uniform(0, 1, (4, 3, 160, 160)).astype(np.float32))
        cases.append(("PP-OCRv4 det, 4 samples 3x160x160, levels 0.3 0.6 0.9, l1",
                      [os.path.join(ROOT, "Tests/Fixtures/real/ch_PP-OCRv4_det_infer.onnx"), "--calib", calib,
                       "--levels", "0.3,0.6,0.9", "--batch-size", "2"]))
    print(f"{'sweep':62} {'jobs':>5} {'reuse s':>8} {'full s':>8} {'speedup':>8} {'MACs ratio':>10}")
    for name, sweep_args in cases:
        a = sweep(args.lopper, sweep_args, os.path.join(tmp, "reuse.db"), True)
        b = sweep(args.lopper, sweep_args, os.path.join(tmp, "full.db"), False)
        for db in ("reuse.db", "full.db"):
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(os.path.join(tmp, db + suffix)):
                    os.remove(os.path.join(tmp, db + suffix))
        identical = "identical scores" if a[3] == b[3] else "SCORES DIFFER"
        print(f"{name:62} {a[0]:5d} {a[2]:8.2f} {b[2]:8.2f} {b[2] / a[2]:7.2f}x {b[1] / a[1]:9.2f}x  "
              f"({a[0] / a[2]:.1f} vs {b[0] / b[2]:.1f} jobs/s; {identical})")


if __name__ == "__main__":
    main()
