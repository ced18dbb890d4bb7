#!/usr/bin/env bash
# The longer-pretrained encoder (../fast120) trained 60 minutes more, on the same corpus, on one
# thread (the other core ran studies meanwhile):
#   bash bench/results/qm9_xtb/fast180/run.sh FAST60_WORKDIR FAST120_WORKDIR WORKDIR
# A copy of FAST120_WORKDIR/encoder (its last.ckpt: step 63,719, 6,354 s on the Lightning timer)
# resumes until the timer reads 9,954 s, i.e. 3,600 s more (../extend.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fast60="${1:?FAST60_WORKDIR}"; fast120="${2:?FAST120_WORKDIR}"; work="${3:?WORKDIR}"
bash "$here/../extend.sh" "$fast120/encoder" "$fast60/corpus" "$work" 9954 \
    xtb-ef-hour-plus-120min-1thread
