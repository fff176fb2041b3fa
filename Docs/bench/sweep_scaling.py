#!/usr/bin/env python3
"""Speedup of a real sweep with 2 local workers over 1, in the same run (`lopper sweep
--workers N --jobs 1`: a coordinator and N worker processes over ipc://). Also runs the sweep
in-process and checks that all three stored bit-identical tables.

usage: sweep_scaling.py LOPPER_BINARY [--rounds 1]
"""
import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sweep(lopper, args, db, extra):
    if os.path.exists(db):
        os.remove(db)
    start = time.perf_counter()
    result = subprocess.run([lopper, "sweep", *args, "--db", db, "--quiet", *extra], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(result.stderr)
    with sqlite3.connect(db) as connection:
        scores = dict(connection.execute("SELECT job_key, score FROM jobs WHERE state = 'done'"))
    return seconds, scores


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lopper")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    det = os.path.join(ROOT, "Tests/Fixtures/real/ch_PP-OCRv4_det_infer.onnx")
    calib = os.path.join(ROOT, "Tests/Fixtures/real/det_calib.npz")
    sweep_args = [det, "--calib", calib, "--samples", "4", "--batch-size", "2", "--levels", "0.25,0.5,0.75"]
    tmp = tempfile.mkdtemp()
    print("PP-OCRv4 det, 4 rendered-text samples 320x320, channel l1 at 0.25/0.5/0.75")
    print(f"{'round':>5} {'in-process 1 job s':>19} {'1 worker s':>11} {'2 workers s':>12} {'speedup 2/1':>12}")
    for round in range(args.rounds):
        local, reference = sweep(args.lopper, sweep_args, os.path.join(tmp, "local.db"), ["--jobs", "1"])
        one, scores_one = sweep(args.lopper, sweep_args, os.path.join(tmp, "one.db"), ["--workers", "1", "--jobs", "1"])
        two, scores_two = sweep(args.lopper, sweep_args, os.path.join(tmp, "two.db"), ["--workers", "2", "--jobs", "1"])
        same = reference == scores_one == scores_two
        print(f"{round + 1:>5} {local:>19.2f} {one:>11.2f} {two:>12.2f} {one / two:>11.2f}x  "
              f"({len(reference)} jobs, tables {'identical' if same else 'DIFFER'})")
        if not same:
            sys.exit("the tables differ")


if __name__ == "__main__":
    main()
