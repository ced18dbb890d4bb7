"""Streaming: input order, identical results for 1 and 2 workers, bounded read-ahead."""

from __future__ import annotations

import os
from dataclasses import fields

import numpy as np

from molpre.chem import MoleculeRecord, conformer_stream, default_corpus, records_from_smiles

SMILES = ["CCO", "C1CC", "c1ccccc1O", "Cl[Pt]Cl", "CC(=O)OC", "CCN(CC)CC", "OC(=O)CCC(=O)O"]


def _summary(outcomes):
    return [(o.record.row, o.error, [f.positions for f in o.conformers]) for o in outcomes]


def test_one_and_two_workers_give_the_same_ordered_results():
    one = _summary(conformer_stream(records_from_smiles(SMILES), n=2, seed=5, workers=1))
    two = _summary(conformer_stream(records_from_smiles(SMILES), n=2, seed=5, workers=2))
    assert [row for row, _, _ in one] == list(range(1, len(SMILES) + 1))
    assert [row for row, _, _ in two] == [row for row, _, _ in one]
    assert [err is None for _, err, _ in one] == [True, False, True, False, True, True, True]
    for (_, err1, pos1), (_, err2, pos2) in zip(one, two, strict=True):
        assert err1 == err2 and len(pos1) == len(pos2)
        for a, b in zip(pos1, pos2, strict=True):
            np.testing.assert_array_equal(a, b)


def test_parallel_stream_reads_ahead_at_most_its_window():
    pulled = []

    def source():
        for record in records_from_smiles(["C", "CC", "CCC", "CCO"] * 6):
            pulled.append(record.row)
            yield record

    seen = 0
    for outcome in conformer_stream(source(), n=1, seed=0, workers=2, window=3):
        seen += 1
        assert outcome.ok
        assert len(pulled) - seen <= 3
    assert seen == 24


def test_default_corpus_is_rdkits_nci_sample():
    corpus = list(default_corpus())
    assert len(corpus) == 4999  # the file's lines (NCI numbers run to 5065 with gaps)
    assert corpus[0] == ("nci-1", "CC1=CC(=O)C=CC1=O")
    assert corpus[-1] == ("nci-5065", "CN1CCC[CH]1C2=CC=CN=C2")
    assert len({mol_id for mol_id, _ in corpus}) == len(corpus)
    assert list(default_corpus(limit=3)) == corpus[:3]


class _CrashingRecord(MoleculeRecord):
    """Kills the worker process that embeds it (as a segfault in RDKit would)."""

    @property
    def has_geometry(self) -> bool:
        os._exit(1)


def test_a_dying_worker_costs_rows_in_flight_not_the_run():
    good = list(records_from_smiles(["CCO", "CCN", "CCC", "CCCl", "OCCO", "CC=O"]))
    bad = _CrashingRecord(**{f.name: getattr(good[1], f.name) for f in fields(MoleculeRecord)})
    records = [good[0], bad, *good[2:]]
    outcomes = list(conformer_stream(records, n=1, seed=0, workers=2, window=2))
    assert [o.record.row for o in outcomes] == [r.row for r in records]
    assert "worker process died" in outcomes[1].error
    assert outcomes[-1].ok and outcomes[-2].ok  # the pool was restarted


def test_the_after_hook_runs_where_the_conformers_are_made():
    """A delta model's cheap level attached in the workers equals one computed here, per
    conformer, in order; a hook that raises makes that molecule an error row, nothing lost."""
    import functools

    from molpre.qc import compute, parse_level
    from molpre.qc.attached import attach_results, take_attached

    level = parse_level("mmff94")
    hook = functools.partial(attach_results, level=level)
    smiles = ["CCO", "C1CC", "CC(=O)OC", "c1ccccc1O"]
    for workers in (1, 2):
        outcomes = list(conformer_stream(records_from_smiles(smiles), n=2, seed=3,
                                         workers=workers, after=hook))
        assert [o.ok for o in outcomes] == [True, False, True, True]
        for outcome in outcomes[::2] + outcomes[3:]:
            for atoms in outcome.conformers:
                attached = take_attached(atoms, level)
                assert attached is not None and attached.ok
                assert attached.energy == compute(atoms, level).energy
                assert take_attached(atoms, level) is None  # read once, then gone
        hf = parse_level("hf/sto-3g")
        other = list(conformer_stream(records_from_smiles(["CC"]), n=1, workers=workers,
                                      after=hook))[0].conformers[0]
        assert take_attached(other, hf) is None  # attached for another level: compute it
    failing = list(conformer_stream(records_from_smiles(["CC", "CO"]), n=1, workers=1,
                                    after=_raises))
    assert [o.error for o in failing] == ["after conformer generation: RuntimeError: no"] * 2


def _raises(conformers):
    raise RuntimeError("no")
