#!/usr/bin/env bash
# The corpus-to-encoder hour's encoder (../fast60) trained 60 minutes more, on the same corpus,
# on one thread (the other core ran a study meanwhile):
#   bash bench/results/qm9_xtb/fast120/run.sh FAST60_WORKDIR WORKDIR
# A copy of FAST60_WORKDIR/encoder (its last.ckpt: step 28,290, 2,754 s of training on the
# Lightning timer) resumes in a new MLflow run (run.json removed) until the timer reads 6,354 s,
# i.e. 3,600 s more. Constant lr 1e-3 (no schedule), so this is the same run made longer.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fast60="${1:?FAST60_WORKDIR}"; work="${2:?WORKDIR}"
mkdir -p "$work"
cp -r "$fast60/encoder" "$work/encoder"
rm -f "$work/encoder/run.json"
molpre pretrain --config "$here/../fast60/pretrain.yaml" --shards "$fast60/corpus" \
    --set output="$work/encoder" --set corpus.val_shards=1 --set train.max_time_s=6354 \
    --set train.threads=1 --set tracking.run_name=xtb-ef-hour-plus-60min-1thread
