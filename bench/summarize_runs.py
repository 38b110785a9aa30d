#!/usr/bin/env python3
"""Summarizes fedsim run folders into one table row each.

For every run folder given (runs/<name>/ with metrics.csv and manifest.json):
  - virtual seconds and client updates until test accuracy first reaches the
    target (default 0.80), or "-" if never;
  - final test accuracy, and mean and standard deviation of the test
    accuracy over the last N evaluations (default 10).

  bench/summarize_runs.py [--target 0.8] [--last 10] [--markdown] RUN_DIR...
Standard library only.
"""
import argparse
import csv
import json
import os
import statistics
import sys


def summarize(run_dir, target, last):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{run_dir}/metrics.csv has no rows")
    algorithm = "?"
    manifest = os.path.join(run_dir, "manifest.json")
    if os.path.exists(manifest):
        with open(manifest) as f:
            algorithm = json.load(f).get("algorithm", "?")
    t_hit = u_hit = None
    for r in rows:
        if float(r["test_accuracy"]) >= target:
            t_hit, u_hit = float(r["virtual_time"]), int(r["updates_applied"])
            break
    accs = [float(r["test_accuracy"]) for r in rows[-last:]]
    return {
        "run": os.path.basename(os.path.normpath(run_dir)),
        "algorithm": algorithm,
        "t_target": t_hit,
        "updates_target": u_hit,
        "final_acc": float(rows[-1]["test_accuracy"]),
        "last_mean": statistics.fmean(accs),
        "last_std": statistics.pstdev(accs) if len(accs) > 1 else 0.0,
        "evals": len(rows),
        "virtual_s": float(rows[-1]["virtual_time"]),
        "updates": int(rows[-1]["updates_applied"]),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--target", type=float, default=0.80)
    p.add_argument("--last", type=int, default=10)
    args = p.parse_args()
    fmt = lambda v, spec: "-" if v is None else format(v, spec)
    print(f"| run | rule | virtual s to {args.target:.2f} | updates to {args.target:.2f} | "
          f"final acc | mean acc, last {args.last} | std, last {args.last} | updates total |")
    print("|---|---|---|---|---|---|---|---|")
    for d in args.runs:
        try:
            s = summarize(d, args.target, args.last)
        except (OSError, KeyError, ValueError) as e:
            print(f"summarize_runs: {d}: {e}", file=sys.stderr)
            return 1
        print(f"| {s['run']} | {s['algorithm']} | {fmt(s['t_target'], '.0f')} | "
              f"{fmt(s['updates_target'], 'd')} | {s['final_acc']:.4f} | {s['last_mean']:.4f} | "
              f"{s['last_std']:.4f} | {s['updates']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
