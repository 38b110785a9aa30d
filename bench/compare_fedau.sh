#!/usr/bin/env bash
# The issue-5 comparison: FedAU (K = inf and 50) and its baselines under
# Bernoulli, Markov and cyclic participation, 3 seeds each, on
# scenarios/fedau_fmnist.textproto; then the table of final test accuracy
# (mean over the last 10 evaluations), mean +- std over the seeds.
#   bench/compare_fedau.sh [OUT_DIR] [PARALLEL_RUNS] [extra fedsim run flags...]
# Finished runs are kept and skipped on a rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/compare_fedau}"
jobs="${2:-2}"
shift $(( $# > 2 ? 2 : $# )) || true
extra=("$@")
s=scenarios/fedau_fmnist.textproto
mkdir -p "$out"

declare -A method=(
  [fedau]="--set=algorithm.fedau.method=FEDAU"
  [fedau_k50]="--set=algorithm.fedau.method=FEDAU --set=algorithm.fedau.cutoff=50"
  [average_participating]="--set=algorithm.fedau.method=AVERAGE_PARTICIPATING"
  [average_all]="--set=algorithm.fedau.method=AVERAGE_ALL"
  [known_prob]="--set=algorithm.fedau.method=KNOWN_PROB"
  [mifa]="--set=algorithm.fedau.method=MIFA"
  [fedvarp]="--set=algorithm.fedau.method=FEDVARP"
)
declare -A pattern=(
  [bernoulli]=""
  [markov]="--set=participation.markov.a=0.05"
  [cyclic]="--set=participation.cyclic.period=100"
)
list="$out/jobs.txt"
: > "$list"
for p in bernoulli markov cyclic; do
  for m in fedau fedau_k50 average_participating average_all known_prob mifa fedvarp; do
    for seed in 1 2 3; do
      dir="$out/$p.$m.s$seed"
      [ -f "$dir/manifest.json" ] && continue
      rm -rf "$dir"
      echo "build/tools/fedsim run $s --inprocess --slots=1 --run_dir=$dir --set=seed=$seed ${method[$m]} ${pattern[$p]} ${extra[*]:-} >/dev/null 2>$dir.log" >> "$list"
    done
  done
done
echo "compare_fedau: $(wc -l < "$list") runs to do, $jobs at a time" >&2
xargs -P "$jobs" -I{} sh -c '{}' < "$list"
python3 bench/fedau_table.py "$out"
