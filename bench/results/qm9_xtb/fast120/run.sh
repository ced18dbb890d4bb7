#!/usr/bin/env bash
# The corpus-to-encoder hour's encoder (../fast60) trained 60 minutes more, on the same corpus,
# on one thread (the other core ran a study meanwhile):
#   bash bench/results/qm9_xtb/fast120/run.sh FAST60_WORKDIR WORKDIR
# A copy of FAST60_WORKDIR/encoder (its last.ckpt: step 28,290, 2,754 s of training on the
# Lightning timer) resumes until the timer reads 6,354 s, i.e. 3,600 s more (../extend.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fast60="${1:?FAST60_WORKDIR}"; work="${2:?WORKDIR}"
bash "$here/../extend.sh" "$fast60/encoder" "$fast60/corpus" "$work" 6354 \
    xtb-ef-hour-plus-60min-1thread
