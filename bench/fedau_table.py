#!/usr/bin/env python3
"""Tabulates bench/compare_fedau.sh runs: for each participation pattern and
method, the final test accuracy (mean over the last N evaluations of a run),
as mean +- std over seeds. Run folders are named PATTERN.METHOD.sSEED.

  bench/fedau_table.py OUT_DIR [--last 10]
"""
import argparse
import collections
import csv
import os
import statistics
import sys

METHODS = ["fedau", "fedau_k50", "average_participating", "average_all", "known_prob", "mifa",
           "fedvarp"]
PATTERNS = ["bernoulli", "markov", "cyclic"]


def final_accuracy(run_dir, last):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        accs = [float(r["test_accuracy"]) for r in csv.DictReader(f)]
    if not accs:
        raise ValueError(f"{run_dir}: no evaluations")
    return statistics.fmean(accs[-last:])


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out")
    p.add_argument("--last", type=int, default=10)
    args = p.parse_args()
    acc = collections.defaultdict(list)
    for name in sorted(os.listdir(args.out)):
        d = os.path.join(args.out, name)
        parts = name.split(".")
        if not os.path.isdir(d) or len(parts) != 3 or not os.path.exists(os.path.join(d, "manifest.json")):
            continue
        acc[(parts[0], parts[1])].append(final_accuracy(d, args.last))
    print("| method | " + " | ".join(PATTERNS) + " |")
    print("|---|" + "---|" * len(PATTERNS))
    for m in METHODS:
        cells = []
        for pat in PATTERNS:
            v = acc.get((pat, m), [])
            if not v:
                cells.append("-")
            else:
                sd = statistics.stdev(v) if len(v) > 1 else 0.0
                cells.append(f"{statistics.fmean(v):.4f} ± {sd:.4f} (n={len(v)})")
        print(f"| {m} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
