#!/usr/bin/env bash
# The issue-10 evidence: clean and PGD-20 robust test accuracy (L-infinity
# eps 0.1, 1000 fixed test images) of standard vs adversarial (PGD-10, eps
# 0.1) training, centralized and federated, on scenarios/fat_fmnist.textproto:
#   central_std / central_adv    fedsim train, ROUNDS/10 epochs (the same
#                                examples as ROUNDS FedAvg rounds of 10 x 600)
#   fedavg{,_adv}.{iid,dir0.1}   FedAvg, 100 clients, IID or Dirichlet 0.1
#   fedbuff_adv.lognormal        FedBuff (K 10, C 20) on the lognormal fleet of
#                                scenarios/async_fmnist_lognormal.textproto,
#                                IID split, ROUNDS commits of 10 x 640 examples
# SEEDS seeds each, then bench/fat_table.py prints mean +- std.
#   bench/fat_table.sh [OUT_DIR] [ROUNDS] [SEEDS] [PARALLEL_RUNS]
# Defaults: runs/fat_table, 100 rounds, 3 seeds, 2 runs at once (about 25
# minutes on 2 cores). Finished runs are kept and skipped on a rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/fat_table}"
rounds="${2:-100}"
seeds="${3:-3}"
jobs="${4:-2}"
epochs=$(( rounds / 10 > 0 ? rounds / 10 : 1 ))
s=scenarios/fat_fmnist.textproto
adv='eps: 0.1 step_size: 0.025 steps: 10'
robust='eps: 0.1 step_size: 0.01 steps: 20 examples: 1000 fgsm: true'
clean_local='--set=local={epochs:1 batch_size:32 lr:0.05}'
dir01='--set=partition={dirichlet{alpha:0.1 min_size:10}}'
fedbuff="scenarios/async_fmnist_lognormal.textproto '--set=partition={iid{}}' \
'--set=local.adversarial={$adv}' '--set=eval={every_commits:5 robust{$robust}}' \
'--set=stop={max_commits:$rounds max_virtual_s:1e9}'"
mkdir -p "$out"
list="$out/jobs.txt"
: > "$list"
run="build/tools/fedsim run"
for seed in $(seq 1 "$seeds"); do
  declare -A cmd=(
    [central_std]="build/tools/fedsim train --lr=0.05 --momentum=0 --batch_size=32 --epochs=$epochs --seed=$seed --robust='$robust'"
    [central_adv]="build/tools/fedsim train --lr=0.05 --momentum=0 --batch_size=32 --epochs=$epochs --seed=$seed --robust='$robust' --adversarial='$adv'"
    [fedavg.iid]="$run $s '$clean_local'"
    [fedavg.dir0.1]="$run $s '$clean_local' '$dir01'"
    [fedavg_adv.iid]="$run $s"
    [fedavg_adv.dir0.1]="$run $s '$dir01'"
    [fedbuff_adv.lognormal]="$run $fedbuff"
  )
  for name in "${!cmd[@]}"; do
    dir="$out/$name.s$seed"
    [ -f "$dir/done" ] && continue
    rm -rf "$dir"
    c="${cmd[$name]}"
    if [[ "$name" == central* ]]; then
      echo "mkdir -p $dir && $c > $dir/train.log 2>&1 && touch $dir/done" >> "$list"
    else
      echo "$c --inprocess --slots=1 --set=seed=$seed --set=stop.max_commits=$rounds --run_dir=$dir > $dir.log 2>&1 && touch $dir/done" >> "$list"
    fi
  done
done
echo "$(wc -l < "$list") runs to do, $jobs at a time (log: $out/*.log)"
xargs -P "$jobs" -I{} -d '\n' bash -c {} < "$list"
python3 bench/fat_table.py "$out"
