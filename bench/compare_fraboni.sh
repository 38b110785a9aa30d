#!/usr/bin/env bash
# Fraboni et al.'s setting (scenarios/fraboni_f80.textproto, uniform client
# weights p_i = 1/N as in the paper): FedFix at the paper's windows Delta = 0.2,
# 0.5 and 0.8 (x the slowest task) against asynchronous FedAvg (identical and
# weight) and synchronous FedAvg with all clients, on the same fleet and
# virtual-time budget, for each profile F-X; then the summary table.
#   bench/compare_fraboni.sh [OUT_DIR] [extra fedsim run flags...]
# PROFILES (default "80") lists the X of the F-X profiles, e.g. PROFILES="20 50 80".
# JOBS (default 1) runs that many at once. Finished runs are kept and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/compare_fraboni}"; shift || true
fedsim="${FEDSIM:-build/tools/fedsim}"
s=scenarios/fraboni_f80.textproto
mkdir -p "$out"
declare -A rule=(
  [fedfix_d0.2]="--set=algorithm.fedfix.delta_fraction=0.2"
  [fedfix_d0.5]="--set=algorithm.fedfix.delta_fraction=0.5"
  [fedfix_d0.8]="--set=algorithm.fedfix.delta_fraction=0.8"
  [async_fedavg_identical]="--set=algorithm.async_fedavg.weights=IDENTICAL --set=algorithm.async_fedavg.weighting=UNIFORM"
  [async_fedavg_weight]="--set=algorithm.async_fedavg.weights=WEIGHT --set=algorithm.async_fedavg.weighting=UNIFORM"
  [fedavg_sync]="--set=algorithm.fedavg.clients_per_round=20 --set=algorithm.fedavg.weighting=UNIFORM"
)
order="fedfix_d0.2 fedfix_d0.5 fedfix_d0.8 async_fedavg_identical async_fedavg_weight fedavg_sync"
list="$out/jobs.txt"
: > "$list"
dirs=()
for x in ${PROFILES:-80}; do
  for r in $order; do
    dir="$out/F$x.$r"
    dirs+=("$dir")
    [ -f "$dir/manifest.json" ] && continue
    rm -rf "$dir"
    echo "$fedsim run $s --inprocess --slots=1 --run_dir=$dir ${rule[$r]} --set=devices.seconds_per_example.linear.x_percent=$x $* >/dev/null 2>$dir.log" >> "$list"
  done
done
echo "compare_fraboni: $(wc -l < "$list") runs to do, ${JOBS:-1} at a time" >&2
xargs -P "${JOBS:-1}" -I{} sh -c '{}' < "$list"
python3 bench/summarize_runs.py --target 0.75 "${dirs[@]}"
