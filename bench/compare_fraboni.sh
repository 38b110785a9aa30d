#!/usr/bin/env bash
# Fraboni et al.'s F-80 setting (scenarios/fraboni_f80.textproto): FedFix
# against asynchronous FedAvg (identical and weight) and synchronous FedAvg on
# the same fleet and virtual-time budget; then the summary table.
#   bench/compare_fraboni.sh [OUT_DIR] [extra fedsim run flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/compare_fraboni}"; shift || true
fedsim="${FEDSIM:-build/tools/fedsim}"
s=scenarios/fraboni_f80.textproto
mkdir -p "$out"
run() { local name=$1; shift; [ -f "$out/$name/manifest.json" ] || { rm -rf "${out:?}/$name"; "$fedsim" run "$s" --inprocess --run_dir="$out/$name" "$@" >/dev/null 2>"$out/$name.log"; }; }
run fedfix_d0.5 "$@"
run fedfix_d0.2 --set=algorithm.fedfix.delta_fraction=0.2 "$@"
run async_fedavg_identical --set=algorithm.async_fedavg.weights=IDENTICAL "$@"
run async_fedavg_weight --set=algorithm.async_fedavg.weights=WEIGHT "$@"
run fedavg_sync --set=algorithm.fedavg.clients_per_round=20 "$@"
python3 bench/summarize_runs.py --target 0.75 "$out"/fedfix_d0.5 "$out"/fedfix_d0.2 \
  "$out"/async_fedavg_identical "$out"/async_fedavg_weight "$out"/fedavg_sync
