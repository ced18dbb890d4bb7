#!/usr/bin/env bash
# Corpus to encoder in one hour on this machine's 2 cores, every stage timed:
#   bash bench/results/qm9_xtb/fast60/run.sh WORKDIR [MOSES_ROWS]
# 1. the first MOSES_ROWS (default 50,000) MOSES training molecules -> fragments of 3-12 heavy
#    atoms of H, C, N, O, F; 2. the QM9 protocol's 1,000 test molecules out (InChIKey block);
# 3. conformers + displaced copies, GFN2-xTB energies and forces (2 workers); 4. pretraining
# (cheap_energy + cheap_forces, 2 threads, compiled) for what is left of the hour, minus 2
# minutes for writing the encoder.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../../.." && pwd)"
work="${1:?WORKDIR}"; rows="${2:-50000}"
shared="${MOLPRE_SHARED:-$repo/../shared}"
mkdir -p "$work"; cd "$work"
start=$(date +%s)
stamp() { echo "$(date -u +%H:%M:%S) +$(( $(date +%s) - start ))s $*" | tee -a stages.log; }
stamp "start ($rows MOSES rows; load $(cut -d' ' -f1-3 /proc/loadavg))"
. "$here/../fragment_corpus.sh"
fragment_corpus corpus
stamp "corpus built"
left=$(( 3600 - ($(date +%s) - start) - 120 ))
molpre pretrain --config "$here/pretrain.yaml" --shards corpus --set output="$work/encoder" \
    --set corpus.val_shards=1 --set train.max_time_s=$left
stamp "encoder written: $(ls -la encoder/encoder.pt | awk '{print $5}') bytes"
