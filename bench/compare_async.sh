#!/usr/bin/env bash
# The issue-4 comparison: one fleet (scenarios/async_fmnist_lognormal.textproto),
# four rules, the same virtual-time budget; then a table of time and updates to
# 0.80 test accuracy, final accuracy and its spread over the last 10 evaluations.
#   bench/compare_async.sh [OUT_DIR] [extra fedsim run flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/compare_async}"; shift || true
fedsim="${FEDSIM:-build/tools/fedsim}"
s=scenarios/async_fmnist_lognormal.textproto
mkdir -p "$out"
run() { local name=$1; shift; [ -d "$out/$name" ] || "$fedsim" run "$s" --inprocess --run_dir="$out/$name" "$@" >/dev/null; }
run fedbuff "$@"
run fedavg_deadline --set=algorithm.fedavg.clients_per_round=10 --set=algorithm.fedavg.deadline_s=10 "$@"
run fedasync --set=algorithm.fedasync.alpha=0.6 --set=algorithm.fedasync.concurrency=20 "$@"
run fedfix --set=algorithm.fedfix.delta_fraction=0.5 --set=algorithm.fedfix.concurrency=20 "$@"
python3 bench/summarize_runs.py "$out"/fedbuff "$out"/fedavg_deadline "$out"/fedasync "$out"/fedfix
