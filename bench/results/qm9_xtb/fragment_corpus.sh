# Sourced by fast60/run.sh and pool60/run.sh (which set repo, shared, rows and stamp, and cd
# into the work folder): the first ROWS MOSES molecules -> fragments of 3-12 heavy atoms of
# H, C, N, O, F; the QM9 protocol's 1,000 test molecules out (InChIKey block); conformers +
# displaced copies with GFN2-xTB energies and forces (2 workers) into the folder $1.
fragment_corpus() {
    local out="${1:?CORPUS_FOLDER}"
    (zcat "$shared/data/moses_train.csv.gz" || true) | head -n $((rows + 1)) > moses.csv  # zcat ends on SIGPIPE
    molpre submit "$repo/workflows/fragments.yaml" --input moses.csv -o fragments.csv --workers 2
    stamp "fragments: $(($(wc -l < fragments.csv) - 1)) rows"
    molpre audit --corpus fragments.csv --eval "$shared/data/qm9_sample3000.extxyz.gz" \
        --eval-first 1000 --drop fragments_clean.csv --drop-level block > audit.txt
    stamp "audit: $(($(wc -l < fragments_clean.csv) - 1)) rows kept"
    molpre submit "$repo/workflows/corpus_xtb.yaml" --input fragments_clean.csv -o "$out" --workers 2
}
