#!/usr/bin/env bash
# The corpus-to-encoder hour with the user's own molecules in the corpus from the start, on this
# machine's 2 cores, every stage timed (stages.log):
#   bash bench/results/qm9_xtb/pool60/run.sh WORKDIR [MOSES_ROWS] [NEIGHBOURS] [ANNEAL]
# fast60/run.sh's stages (MOSES fragments, test molecules out, GFN2-xTB corpus), plus
#  - the protocol's 2,000 training-pool molecules (never a test molecule; no label but GFN2-xTB)
#    at their given geometry + one ETKDG/MMFF conformer, a displaced copy of each (../pool);
#  - NEIGHBOURS (default 4,000) single-edit neighbours of the pool molecules, none a pool or test
#    molecule by InChIKey block (../mutants/make_mutants.py), same corpus recipe;
# one shard folder of the three (fragments' last shard held out), then pretraining (fast60's
# settings: cheap_energy + cheap_forces, 2 threads, compiled) for what is left of the hour,
# minus 2 minutes for writing the encoder, the step size cooled down over the last ANNEAL
# (default 0.25) of that time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
results="$(cd "$here/.." && pwd)"
repo="$(cd "$here/../../../.." && pwd)"
work="${1:?WORKDIR}"; rows="${2:-50000}"; neighbours="${3:-4000}"; anneal="${4:-0.25}"
shared="${MOLPRE_SHARED:-$repo/../shared}"
qm9="$shared/data/qm9_sample3000.extxyz.gz"
mkdir -p "$work"; cd "$work"
start=$(date +%s)
stamp() { echo "$(date -u +%H:%M:%S) +$(( $(date +%s) - start ))s $*" | tee -a stages.log; }
stamp "start ($rows MOSES rows, $neighbours neighbours, anneal $anneal; load $(cut -d' ' -f1-3 /proc/loadavg))"
# the protocol's test ids (make_pool.py and make_mutants.py check them against the protocol)
python - "$qm9" <<'PY'
import gzip, sys
import ase.io, numpy as np
with gzip.open(sys.argv[1], "rt") as handle:
    ids = [a.info["mol_id"] for a in ase.io.read(handle, index=":", format="extxyz")]
order = np.random.default_rng(0).permutation(len(ids))
open("test_ids.txt", "w").write("\n".join(str(ids[i]) for i in order[:1000]) + "\n")
PY
. "$results/fragment_corpus.sh"
fragment_corpus corpus_frag
stamp "fragment corpus built"
python "$results/pool/make_pool.py" "$qm9" test_ids.txt pool.extxyz
molpre submit "$repo/workflows/corpus_xtb.yaml" --input pool.extxyz -o corpus_pool --workers 2
stamp "pool corpus built"
python "$results/mutants/make_mutants.py" "$qm9" test_ids.txt "$neighbours" 0 mutants.csv
molpre submit "$repo/workflows/corpus_xtb.yaml" --input mutants.csv -o corpus_mut --workers 2
stamp "neighbour corpus built"
# --keep-offsets: the fragments' per-element offsets, as in the measured run (it joined the
# folders with the bench script this command replaced; same shards, order and offsets)
molpre join-shards corpus_frag corpus_pool corpus_mut -o corpus --keep-offsets --no-progress
stamp "one shard folder: $(ls corpus/*.npz | wc -l) shards"
left=$(( 3600 - ($(date +%s) - start) - 120 ))
molpre pretrain --config "$results/fast60/pretrain.yaml" --shards corpus \
    --set output="$work/encoder" --set corpus.val_shards=1 --set train.max_time_s=$left \
    --set train.anneal="$anneal" --set tracking.run_name=xtb-ef-pool-corpus-to-encoder-60min
stamp "encoder written: $(ls -la encoder/encoder.pt | awk '{print $5}') bytes"
