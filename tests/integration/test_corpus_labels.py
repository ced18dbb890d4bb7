"""A labeled pretraining corpus end to end: fragments -> conformers + displaced copies +
GFN2-xTB energies and forces in shards -> the cheap_energy/cheap_forces objectives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from click.testing import CliRunner

from molpre.cli import main
from molpre.data.shards import iter_shard, read_manifest
from molpre.executor import ProcessBackend
from molpre.qc import compute, parse_level
from molpre.workflow import load_job, run_job

pytest.importorskip("tblite.interface", reason="tblite is a dependency on Linux x86-64")

PARENTS = "SMILES\nCCOC(=O)c1ccncc1\nCSc1ccccc1N\nnot((smiles\nCC(C)NCc1ccco1\n"


def _job(tmp_path, name, text):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_job(path)


def _run(spec, inp, out):
    backend = ProcessBackend(2)
    try:
        return run_job(spec, inp, out, backend, track=False, progress=False)
    finally:
        backend.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    parents = tmp / "parents.csv"
    parents.write_text(PARENTS)
    fragments = tmp / "fragments.csv"
    spec = _job(tmp, "fragments", "kind: fragments\nchunk_size: 2\n"
                "intake: {elements: [H, C, N, O, S]}\nfragments: {min_heavy: 4, max_heavy: 6}\n")
    summary = _run(spec, parents, fragments)
    table = pd.read_csv(fragments)
    few = tmp / "few.csv"
    table.head(6).to_csv(few, index=False)
    spec = _job(tmp, "corpus", "kind: corpus\nchunk_size: 2\nconformers: {n: 1}\n"
                "perturb: {copies: 1, sigma: 0.05}\nlabel: true\nlevel: {method: gfn2-xtb}\n"
                "forces: true\nshard_size: 2\n")
    _run(spec, few, tmp / "shards")
    return tmp, summary, table


def test_fragments_job_writes_each_fragment_once_and_reasons_for_the_rest(corpus):
    _, summary, table = corpus
    assert summary.ok == 3 and summary.errors == 1  # the unparsable SMILES
    assert table["smiles"].is_unique and len(table) >= 6
    assert table["heavy_atoms"].between(4, 6).all()
    assert not table["smiles"].str.contains("S").any()  # the thioether's S stays out


def test_shards_hold_every_geometry_with_its_own_xtb_energy_and_forces(corpus):
    tmp, _, _ = corpus
    manifest = read_manifest(tmp / "shards")
    assert manifest["format"] == "molpre.shards/2"
    assert manifest["labels"]["level"] == "gfn2-xtb" and manifest["labels"]["forces"]
    molecules = [m for shard in manifest["shards"]
                 for m in iter_shard(tmp / "shards" / shard["file"])]
    assert len(molecules) == 6
    level = parse_level("gfn2-xtb")
    rows, energies = [], []
    for mol in molecules:
        assert len(mol.conformers) % 2 == 0  # each conformer and its displaced copy
        assert mol.energies.shape == (len(mol.conformers),)
        assert mol.forces.shape == mol.conformers.shape
        for k in (0, len(mol.conformers) - 1):
            direct = compute(Atoms(numbers=mol.numbers, positions=mol.conformers[k]), level,
                             forces=True)
            assert mol.energies[k] == pytest.approx(direct.energy, abs=2e-4)
            np.testing.assert_allclose(mol.forces[k], direct.forces, atol=2e-3)
        rows += [np.bincount(mol.numbers, minlength=10)] * len(mol.energies)
        energies += list(mol.energies)
    offsets = manifest["labels"]["offsets"]
    counts = np.array(rows, dtype=float)
    fit = counts[:, [int(z) for z in offsets]] @ np.array(list(offsets.values()))
    direct_fit = np.linalg.lstsq(counts[:, [int(z) for z in offsets]], energies, rcond=None)[0]
    np.testing.assert_allclose(list(offsets.values()), direct_fit, atol=1e-6)
    assert np.std(np.array(energies) - fit) < np.std(energies)


def test_cheap_objectives_pretrain_and_validate_on_held_out_shards(corpus, mlflow_uri):
    import mlflow

    tmp, _, _ = corpus
    out = tmp / "pre"
    result = CliRunner().invoke(main, [
        "pretrain", "--shards", str(tmp / "shards"), "-o", str(out),
        "--objectives", "cheap_energy,cheap_forces,denoise", "--epochs", "1", "--max-steps", "4",
        "--batch-size", "2", "--set", "corpus.val_shards=1", "--set", "train.val_every_n_steps=2",
        "--set", "train.val_batches=1", "--set", "train.progress=false",
        "--set", "train.log_every_n_steps=1"])
    assert result.exit_code == 0, result.output
    assert "held out for validation" in result.output
    run = mlflow.search_runs(experiment_names=["molpre-pretrain"], output_format="list")[0]
    metrics = run.data.metrics
    for name in ("cheap_energy", "cheap_forces", "denoise"):
        assert np.isfinite(metrics[f"val/{name}_loss"]), name
    assert metrics["train/steps_per_s"] > 0
    import torch

    hparams = torch.load(out / "last.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["objectives"]["cheap_energy"]["scale"] > 0
    assert hparams["objectives"]["cheap_forces"]["scale"] > 0


def test_a_cheap_objective_on_an_unlabeled_corpus_stops_before_any_work(tmp_path, mlflow_uri):
    smi = tmp_path / "mols.smi"
    smi.write_text("CCO a\nCCN b\n")
    result = CliRunner().invoke(main, ["pretrain", "--corpus", str(smi), "-o",
                                       str(tmp_path / "pre"), "--objectives", "cheap_energy",
                                       "--label-level", "none", "--conformers", "1",
                                       "--set", "train.progress=false"])
    assert result.exit_code != 0
    assert "needs cheap-level energies" in result.output and "corpus_xtb.yaml" in result.output
    assert not (tmp_path / "pre" / "last.ckpt").exists()


def test_the_cheap_energy_head_travels_with_the_encoder_and_its_control_rebuilds_step_0(
        corpus, mlflow_uri):
    """An encoder pretrained on cheap energies carries its energy head; a finetune with
    ``head: pretrained`` starts from it; the study's control rebuilds the step-0 head of the
    same run (one step at lr 0 leaves every weight at step 0)."""
    import torch

    from molpre.models.checkpoint import load_encoder
    from molpre.models.energy import make_head
    from molpre.study.encoders import initial_encoder, initial_heads, relative_change
    from molpre.targets import get_target
    from molpre.train.finetune import transfer_energy_head

    tmp, _, _ = corpus
    out = tmp / "pre_lr0"
    result = CliRunner().invoke(main, [
        "pretrain", "--shards", str(tmp / "shards"), "-o", str(out), "--seed", "1234",
        "--objectives", "cheap_energy", "--epochs", "1", "--max-steps", "1", "--batch-size", "2",
        "--set", "train.lr=0", "--set", "train.progress=false"])
    assert result.exit_code == 0, result.output
    pretrained = load_encoder(out / "encoder.pt")
    meta = pretrained.checkpoint_meta["energy_head"]
    assert meta["level"] == "gfn2-xtb" and meta["scale"] > 0
    state = pretrained.checkpoint_heads["energy"]
    heads, head_meta = initial_heads(pretrained.config, 1234, pretrained)
    assert head_meta["energy_head"] == meta
    for key, value in state.items():
        assert torch.equal(heads["energy"][key], value), key
    assert relative_change(pretrained, initial_encoder(pretrained.config, 1234)) == 0.0
    head = make_head(get_target("energy"), pretrained, atomref={1: -1.0, 6: -2.0})
    transfer_energy_head(head, pretrained)
    assert head.scale == meta["scale"] and head.hidden == state["0.weight"].shape[0]
    for key, value in state.items():
        assert torch.equal(head.readout.state_dict()[key], value)
    assert head.atomref.as_dict() == {1: -1.0, 6: -2.0}  # the target's own per-element fit


def test_pretrain_builds_a_labeled_corpus_itself_and_compares_its_probe_with_random_init(
        tmp_path, mlflow_uri):
    """`molpre pretrain` on a molecule file with the default recipe (GFN2-xTB labels on every
    conformer and one displaced copy, cheap_energy + cheap_forces): the corpus job labels
    every conformer and copy; the cheap objectives train on them."""
    import torch

    smi = tmp_path / "mols.smi"
    smi.write_text("CCO a\nCCN b\nCC(=O)O c\nc1ccncc1 d\nCOC e\nCC#N f\n")
    result = CliRunner().invoke(main, [
        "pretrain", "--corpus", str(smi), "-o", str(tmp_path / "pre"), "--conformers", "1",
        "--max-steps", "2", "--batch-size", "2", "--set", "train.progress=false"])
    assert result.exit_code == 0, result.output
    objectives = torch.load(tmp_path / "pre" / "last.ckpt",
                            weights_only=True)["hyper_parameters"]["objectives"]
    assert sorted(n for n, o in objectives.items() if o["weight"] > 0) == \
        ["cheap_energy", "cheap_forces"]
    manifest = read_manifest(tmp_path / "pre" / "shards")
    assert manifest["labels"]["level"] == "gfn2-xtb" and manifest["molecules"] == 6
    assert manifest["conformers"] == 12  # one conformer and one displaced copy each


def test_the_probe_verdict_says_whether_pretraining_beat_random_init():
    from molpre.cli.pretrain import probe_verdict

    assert "better than its random init" in probe_verdict(1.0, 2.0)
    assert probe_verdict(2.5, 2.0).startswith("WARNING") and "no better" in probe_verdict(2.5, 2.0)
    assert probe_verdict(None, 2.0) == ""
