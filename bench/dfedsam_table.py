#!/usr/bin/env python3
"""The issue-9 table from `fedsim compare scenarios/compare/dfedsam.textproto`.

For each arm of runs/dfedsam (or the folder given): at the last evaluation of
each seed's run, the test accuracy of the average model, the mean test
accuracy of the fixed sample of client models, and the consensus distance;
mean +- std over the seeds, and the number of seeds. `fedsim compare`'s own
summary.md covers the average model only; decentralized learning is also
judged by the clients' own models.

  bench/dfedsam_table.py [runs/dfedsam]
Standard library only.
"""
import csv
import os
import statistics
import sys

ORDER = ["dfedsam_mgs", "dfedsam", "dfedavgm", "dfedavg", "dpsgd",
         "dfedsam_mgs_ring", "dfedsam_ring", "dfedavgm_ring", "dfedavg_ring", "dpsgd_ring",
         "fedavg", "fedsam"]


def last_row(run_dir):
    """The last metrics.csv row of a finished run (manifest.json written), else None."""
    if not os.path.exists(os.path.join(run_dir, "manifest.json")):
        return None
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[-1] if rows else None


def fmt(xs, scale=100.0, digits=1):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{scale * statistics.mean(xs):.{digits}f} +- {scale * sd:.{digits}f}"


def number(row, key):
    value = row.get(key, "")
    return float(value) if value not in ("", None) else None


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "runs/dfedsam"
    arms = {}
    for arm in sorted(os.listdir(out)):
        arm_dir = os.path.join(out, arm)
        if not os.path.isdir(arm_dir):
            continue
        for seed in sorted(os.listdir(arm_dir)):
            row = last_row(os.path.join(arm_dir, seed))
            if row is not None:
                arms.setdefault(arm, []).append(row)
    print("| arm | average model acc % | mean client model acc % | consensus distance | seeds |")
    print("|---|---|---|---|---|")
    for arm in ORDER + sorted(set(arms) - set(ORDER)):
        rows = arms.get(arm, [])
        if not rows:
            continue
        print(f"| {arm} | {fmt([number(r, 'test_accuracy') for r in rows])} | "
              f"{fmt([number(r, 'client_accuracy_mean') for r in rows])} | "
              f"{fmt([number(r, 'consensus_distance') for r in rows], 1.0, 3)} | {len(rows)} |")


if __name__ == "__main__":
    main()
