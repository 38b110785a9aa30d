#!/usr/bin/env python3
"""The issue-10 table from bench/fat_table.sh's run folders.

For each setting (folder name up to ".s<seed>"): final clean test accuracy,
PGD-20 robust accuracy and FGSM accuracy (the last evaluation: a run's last
metrics.csv row, or `fedsim train`'s last epoch line), mean +- std over the
seeds, and the number of seeds.

  bench/fat_table.py OUT_DIR
Standard library only.
"""
import csv
import os
import re
import statistics
import sys

ORDER = ["central_std", "central_adv", "fedavg.iid", "fedavg_adv.iid", "fedavg.dir0.1",
         "fedavg_adv.dir0.1", "fedbuff_adv.lognormal"]


def final_figures(run_dir):
    """(clean, robust, fgsm) of the last evaluation, or None if unfinished."""
    if not os.path.exists(os.path.join(run_dir, "done")):
        return None
    log = os.path.join(run_dir, "train.log")
    if os.path.exists(log):
        last = [l for l in open(log) if l.startswith("epoch ")][-1]
        get = lambda k: float(re.search(k + r" ([0-9.]+)", last).group(1))
        return get("test_acc"), get("robust_acc"), get("fgsm_acc")
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        row = list(csv.DictReader(f))[-1]
    return (float(row["test_accuracy"]), float(row["robust_accuracy"]),
            float(row["fgsm_accuracy"]))


def fmt(xs):
    if not xs:
        return "-"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{100 * statistics.mean(xs):.1f} +- {100 * sd:.1f}"


def main():
    out = sys.argv[1]
    groups = {}
    for d in sorted(os.listdir(out)):
        m = re.fullmatch(r"(.+)\.s(\d+)", d)
        if not m or not os.path.isdir(os.path.join(out, d)):
            continue
        figs = final_figures(os.path.join(out, d))
        if figs:
            groups.setdefault(m.group(1), []).append(figs)
    print("| setting | clean acc % | PGD-20 robust acc % (eps 0.1) | FGSM acc % | seeds |")
    print("|---|---|---|---|---|")
    for name in ORDER + sorted(set(groups) - set(ORDER)):
        rows = groups.get(name, [])
        print(f"| {name} | {fmt([r[0] for r in rows])} | {fmt([r[1] for r in rows])} | "
              f"{fmt([r[2] for r in rows])} | {len(rows)} |")


if __name__ == "__main__":
    main()
