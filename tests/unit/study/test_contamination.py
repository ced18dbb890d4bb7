"""Contamination audit on a corpus with planted test molecules (real RDKit, real QM9 frames)."""

import csv

import ase.io
import pytest
from rdkit import Chem

from molpre.chem import default_corpus
from molpre.study import contamination as cont

QM9 = "../shared/data/qm9_sample3000.extxyz.gz"
PLANTED = (3, 7, 11, 20)


@pytest.fixture(scope="module")
def frames():
    return ase.io.read(QM9, index=":30", format="extxyz")


def _random_smiles(smiles: str, seed: int) -> str:
    """The same molecule written differently (so only a real key comparison finds it)."""
    mol = Chem.MolFromSmiles(smiles)
    return Chem.MolToSmiles(mol, doRandom=True, canonical=False) if seed else smiles


def _corpus(tmp_path, frames):
    path = tmp_path / "corpus.csv"
    with open(path, "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["mol_id", "smiles"])
        for mol_id, smi in default_corpus(40):
            w.writerow([f"nci-{mol_id}", smi])
        for i in PLANTED:
            w.writerow([f"planted-{i}", _random_smiles(frames[i].info["smiles"], i)])
    return path


def test_audit_finds_exactly_the_planted_duplicates(tmp_path, frames):
    corpus = cont.corpus_keys(_corpus(tmp_path, frames), smiles_col="smiles")
    evaluation = cont.eval_keys(frames)
    result = cont.audit(corpus, evaluation)
    planted_ids = {frames[i].info["mol_id"] for i in PLANTED}
    assert result.counts["inchikey"] == len(PLANTED)
    assert set(result.examples["inchikey"]) == planted_ids
    assert result.counts["block"] >= len(PLANTED)
    assert result.fractions["inchikey"] == pytest.approx(len(PLANTED) / 30)
    kept, dropped = cont.clean_corpus(corpus, evaluation, level="inchikey")
    assert {k.mol_id for k in dropped} == {f"planted-{i}" for i in PLANTED}
    out = cont.write_corpus_csv(kept, tmp_path / "clean.csv")
    again = cont.audit(cont.corpus_keys(out, smiles_col="smiles"), evaluation)
    assert again.counts["inchikey"] == 0


def _shard_dir(tmp_path, keys):
    """A shard directory's molecules.csv listing ``keys`` as mol_index 0, 1, ..."""
    shard = tmp_path / "shards"
    shard.mkdir()
    with open(shard / "molecules.csv", "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["mol_index", "mol_id", "smiles", "inchikey", "scaffold", "n_conformers", "shard"])
        for i, k in enumerate(keys):
            w.writerow([i, k.mol_id, k.smiles, k.inchikey, k.scaffold, 1, 0])
    return shard


def test_audit_reads_a_shard_directory(tmp_path, frames):
    shard = _shard_dir(tmp_path, cont.eval_keys(frames[:2]))
    result = cont.audit(cont.corpus_keys(shard), cont.eval_keys(frames))
    assert result.counts["inchikey"] == 2


def test_audit_of_a_shard_directory_read_in_part(tmp_path, frames):
    """A run with corpus.max_molecules read mol_index < that limit: the audit counts those only
    (the 20k-molecule ablation row was once audited as the whole 57k-molecule folder)."""
    keys = cont.eval_keys(frames[:5])
    shard = _shard_dir(tmp_path, keys)
    first = cont.corpus_keys(shard, max_index=3)
    assert [k.mol_id for k in first] == [k.mol_id for k in keys[:3]]
    result = cont.audit(first, cont.eval_keys(frames))
    assert result.n_corpus == 3 and result.counts["inchikey"] == 3
    assert len(cont.corpus_keys(shard, max_index=None)) == 5


def test_probe_set_from_test_split_is_rejected(frames):
    evaluation = cont.eval_keys(frames)
    test, pool = evaluation[:10], evaluation[10:]
    cont.check_probe_set(pool, test)  # from the training pool: fine
    with pytest.raises(cont.ContaminationError, match="probe"):
        cont.check_probe_set(evaluation[5:15], test)


def test_gain_on_clean_and_overlapping():
    import numpy as np

    out = cont.gain_by_overlap(np.array([1.0, 1.0, 3.0]), np.array([2.0, 2.0, 2.0]),
                               np.array([False, False, True]))
    assert out == {"n_clean": 2, "n_overlap": 1, "clean_gain": -1.0, "overlap_gain": 1.0}
