#!/usr/bin/env python3
"""How much of a run's wall time the per-step times of LOPPER_TRACE cover.

  python3 Docs/bench/trace_coverage.py LOPPER_BINARY MODEL [--threads 1] [--runs 10]

Runs `lopper bench` twice on the model: once plainly (the median latency), once with
LOPPER_TRACE=1, whose stderr has one line per step and run ending in the step's milliseconds.
Prints the plain median, the traced median, and the median over traced runs of the summed step
times, so the part of a run outside the steps and the cost of tracing itself can be told apart.
"""
import argparse
import json
import os
import re
import subprocess

import numpy as np


def bench(binary, model, threads, runs, trace):
    environment = dict(os.environ, **({"LOPPER_TRACE": "1"} if trace else {}))
    out = subprocess.run([binary, "bench", model, "--threads", str(threads), "--runs", str(runs), "--warmup", "2", "--json"],
                         check=True, capture_output=True, text=True, env=environment)
    return json.loads(out.stdout), out.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lopper")
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    plain, _ = bench(args.lopper, args.model, args.threads, args.runs, False)
    traced, log = bench(args.lopper, args.model, args.threads, args.runs, True)
    step_lines = [line for line in log.splitlines() if not line.startswith("plan ") and line.endswith(" ms")]
    times = [float(re.search(r"([0-9.]+) ms$", line).group(1)) for line in step_lines]
    runs = 2 + args.runs
    per_run = len(times) // runs
    sums = [sum(times[r * per_run:(r + 1) * per_run]) for r in range(2, runs)]
    print(f"steps per run: {per_run}")
    print(f"plain median: {plain['median_ms']:.2f} ms")
    print(f"traced median: {traced['median_ms']:.2f} ms")
    print(f"summed step times (median over traced runs): {np.median(sums):.2f} ms")
    print(f"steps / plain median: {np.median(sums) / plain['median_ms']:.2f}")


if __name__ == "__main__":
    main()
