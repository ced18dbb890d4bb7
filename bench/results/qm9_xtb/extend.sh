#!/usr/bin/env bash
# Make a finished pretraining run longer: copy its encoder folder and resume its last.ckpt on
# the same corpus, in a new MLflow run, until Lightning's timer reads MAX_TIME_S, one thread.
# The settings are the corpus-to-encoder hour's (fast60/pretrain.yaml: constant lr, no
# schedule), so the result is the same run made longer.
#   bash bench/results/qm9_xtb/extend.sh FROM_ENCODER CORPUS WORKDIR MAX_TIME_S RUN_NAME [ARGS...]
# ARGS go to `molpre pretrain` as they are, e.g. `--anneal 1` for a cooldown of the whole extension.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
from="${1:?FROM_ENCODER}"; corpus="${2:?CORPUS}"; work="${3:?WORKDIR}"
max_time="${4:?MAX_TIME_S}"; run_name="${5:?RUN_NAME}"
shift 5
mkdir -p "$work"
cp -r "$from" "$work/encoder"
rm -f "$work/encoder/run.json"
molpre pretrain --config "$here/fast60/pretrain.yaml" --shards "$corpus" \
    --set output="$work/encoder" --set corpus.val_shards=1 --set train.max_time_s="$max_time" \
    --set train.threads=1 --set tracking.run_name="$run_name" "$@"
