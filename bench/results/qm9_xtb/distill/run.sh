#!/usr/bin/env bash
# Every student of one budget, two at a time (one thread each): the pretrained arm, its
# random-init control and scratch, each taught by the delta child of the same arm, budget
# and seed.   bash run.sh BUDGET SEEDS OUT [ARMS]   (e.g. bash run.sh 1000 "0 1 2" /work/runs/distill;
# ARMS: any of "pretrained control scratch", default all three)
set -euo pipefail
budget=$1; seeds=$2; out=$3; arms=${4:-"pretrained control scratch"}
here=$(cd "$(dirname "$0")" && pwd)
plain=c6e02d35585d4e83b017161314d7d4dd            # the plain study (study_repro)
delta=/work/runs/qm9/study_pool_delta/children    # the delta study's children
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
jobs=()
for seed in $seeds; do
  for arm in $arms; do
    case $arm in
      pretrained) jobs+=("xtb185mutA_lr1e-3:full $delta/xtb185mutA_lr1e-3-full-N$budget-s$seed $seed") ;;
      control) jobs+=("xtb120r_lr1e-3:control-full $delta/xtb120r_lr1e-3-control-full-N$budget-s$seed $seed") ;;
      scratch) jobs+=("scratch $delta/scratch-N$budget-s$seed $seed") ;;
      *) echo "unknown arm $arm" >&2; exit 2 ;;
    esac
  done
done
mkdir -p "$out"
printf '%s\n' "${jobs[@]}" | xargs -P 2 -L 1 bash -c \
  'python "$0/distill.py" --plain-parent '"$plain"' --arm "$1" --teacher "$2" --budget '"$budget"' --seed "$3" --out '"$out"' >> '"$out"'/log.txt 2>&1' "$here"
