"""Target specs: reading with units, pooling by kind, dipole equivariance, joint training,
Predictor columns, and a new target added from this file alone."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from e3nn import o3

from molpre import targets
from molpre.data.datasets import DatasetError, labeled_from_atoms
from molpre.data.graph import atoms_to_sample, collate
from molpre.inference.batch import aggregate_columns, predict_columns
from molpre.models.encoder import Encoder, EncoderConfig
from molpre.models.energy import PropertyModel, make_head
from molpre.targets import TargetSpec, get_target
from molpre.units import HARTREE_TO_EV, KCAL_PER_MOL_TO_EV

TINY = EncoderConfig(channels=8, lmax=2, num_layers=2, cutoff=4.0, num_radial_basis=4,
                     radial_mlp_width=8, avg_num_neighbors=4.0, attr_dim=3)
DEBYE = 0.20819434  # e*Angstrom per Debye, by hand (CODATA)
BOHR3 = 0.529177210903**3  # Angstrom^3 per Bohr^3


def _qm9_frame(**extra):
    atoms = molecule("H2O")
    info = dict(mol_id="gdb_3", u0=-76.4, u0_atom=-221.6, zpve=0.0214, homo=-0.2928,
                lumo=0.0687, gap=0.3615, mu=1.8511, alpha=6.31)
    atoms.info.update({**info, **extra})
    return atoms


def _store_frame():
    """A frame as molpre's label store gives it: eV key-values, calculator energy and dipole."""
    atoms = molecule("H2O")
    atoms.calc = SinglePointCalculator(atoms, energy=-2070.5, dipole=np.array([0.0, 0.0, 0.4]))
    atoms.info.update(mol_id="m1", homo=-12.5, lumo=3.5, dipole_debye=1.92, level="hf/sto-3g")
    return atoms


@pytest.mark.parametrize(("name", "expected"), [
    ("u0_atom", -221.6 * 0.0433641),  # kcal/mol -> eV
    ("u0", -76.4 * 27.211386),  # Hartree -> eV
    ("homo", -0.2928 * 27.211386),
    ("lumo", 0.0687 * 27.211386),
    ("gap", 0.3615 * 27.211386),
    ("mu", 1.8511),  # Debye
    ("dipole", 1.8511),
    ("alpha", 6.31 * BOHR3),  # Bohr^3 -> Angstrom^3
])
def test_qm9_keys_read_in_molpre_units(name, expected):
    value = get_target(name).read(_qm9_frame())
    assert value == pytest.approx(expected, rel=2e-6)


@pytest.mark.parametrize(("name", "expected"), [
    ("energy", -2070.5), ("homo", -12.5), ("lumo", 3.5), ("gap", 16.0),  # lumo - homo, eV
])
def test_label_store_keys_are_already_ev(name, expected):
    assert get_target(name).read(_store_frame()) == pytest.approx(expected)


def test_dipole_vector_from_the_store_is_converted_to_debye():
    vector = get_target("dipole").read(_store_frame())
    np.testing.assert_allclose(vector, [0.0, 0.0, 0.4 / DEBYE], rtol=1e-6)
    data = labeled_from_atoms([_store_frame(), _store_frame()], "dipole")
    assert data.labels["dipole"].shape == (2, 3)
    mixed = labeled_from_atoms([_store_frame(), _qm9_frame()], "dipole")  # a magnitude: all norms
    np.testing.assert_allclose(mixed.labels["dipole"], [0.4 / DEBYE, 1.8511], rtol=1e-6)


def test_gap_from_homo_and_lumo_only_in_hartree():
    frame = _qm9_frame()
    del frame.info["gap"]
    assert get_target("gap").read(frame) == pytest.approx(0.3615 * HARTREE_TO_EV)
    assert get_target("homo").with_unit("eV").read(frame) == pytest.approx(-0.2928)  # override


def test_specs_say_kind_column_and_metric_names():
    gap, energy, dipole = get_target("gap"), get_target("energy"), get_target("dipole")
    assert (gap.kind, gap.column, gap.metric_name("mae", "test_")) == ("intensive", "gap_ev", "test_mae_gap_mev")
    assert (energy.kind, energy.column, energy.metric_name("mae", "test_")) == ("extensive", "energy_ev", "test_mae_mev")
    assert (dipole.kind, dipole.column, dipole.metric_name("mae", "val_")) == ("vector", "dipole_debye", "val_mae_dipole_debye")
    assert get_target("u0_atom").name == "energy"
    assert get_target("u0_atom").read(_qm9_frame()) == pytest.approx(-221.6 * KCAL_PER_MOL_TO_EV)
    with pytest.raises(targets.TargetError, match="unknown target 'method'"):
        get_target("method")
    with pytest.raises(DatasetError, match="same property twice"):
        labeled_from_atoms([_qm9_frame()], "u0,u0_atom")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    encoder = Encoder(TINY).double()
    heads = {"energy": make_head(get_target("energy"), encoder, atomref={1: -13.6, 8: -2041.0}, scale=0.5),
             "gap": make_head(get_target("gap"), encoder, offset=7.0, scale=1.0),
             "dipole": make_head(get_target("dipole"), encoder, scale=0.5)}
    return PropertyModel(encoder, heads).double().eval()


def _batch(frames):
    batch = collate([atoms_to_sample(a, TINY.cutoff) for a in frames])
    batch["pos"] = batch["pos"].double()
    return batch


def test_intensive_is_a_mean_extensive_a_sum_far_apart(model):
    water = molecule("H2O")
    far = water.copy()
    far.positions += [60.0, 0.0, 0.0]
    single, double = model(_batch([water])), model(_batch([water + far]))
    assert double["predicted_gap"].item() == pytest.approx(single["predicted_gap"].item(), abs=1e-9)
    e_ref = 2 * single["predicted_energy"].item()
    assert double["predicted_energy"].item() == pytest.approx(e_ref, abs=1e-8)
    torch.testing.assert_close(double["predicted_dipole"], 2 * single["predicted_dipole"])


def test_dipole_rotates_with_the_molecule_and_ignores_translation(model):
    batch = _batch([molecule("CH3OH"), molecule("H2O")])
    rot = o3.rand_matrix(dtype=torch.float64)
    mu = model(batch)["predicted_dipole"]
    mu_rot = model({**batch, "pos": batch["pos"] @ rot.T})["predicted_dipole"]
    torch.testing.assert_close(mu_rot, mu @ rot.T)
    moved = model({**batch, "pos": batch["pos"] + torch.tensor([3.0, -7.0, 11.0], dtype=torch.float64)})
    torch.testing.assert_close(moved["predicted_dipole"], mu)
    assert mu.abs().max() > 1e-6  # not trivially zero


def test_predict_columns_and_aggregation_follow_the_heads(model):
    samples = [atoms_to_sample(molecule(n), TINY.cutoff) for n in ("H2O", "H2O2")]
    columns = predict_columns(model, samples)
    assert list(columns) == ["energy_ev", "gap_ev", "dipole_debye"]
    assert all(v.shape == (2,) for v in columns.values())
    one = aggregate_columns({"energy_ev": np.array([-1.0, -2.0]), "gap_ev": np.array([5.0, 6.0])})
    assert one == {"energy_ev": -2.0, "gap_ev": 6.0}  # the lowest-energy conformer's gap
    no_energy = aggregate_columns({"gap_ev": np.array([5.0, 6.0])}, "boltzmann",
                                  ff_energies=np.array([0.3, 0.1]))
    assert no_energy == {"gap_ev": 6.0}  # lowest force-field energy conformer


def test_predictor_gives_one_column_per_target(model):
    from molpre.inference.predictor import Predictor

    predictor = Predictor(model, TINY.cutoff)
    frame = predictor.predict([molecule("H2O"), Atoms("Cl2", positions=[[0, 0, 0], [0, 0, 2]])])
    assert list(frame.columns) == ["id", "smiles", "energy_ev", "energy_minus_atomref_ev", "gap_ev",
                                   "dipole_debye", "status",
                                   "error", "n_conformers"]
    assert frame.status.tolist() == ["ok", "error"] and np.isnan(frame.gap_ev[1])
    assert "not trained on it" in frame.error[1]


def test_a_checkpoint_round_trip_keeps_every_head(model, tmp_path):
    from molpre.models.checkpoint import load_checkpoint, save_checkpoint

    path = save_checkpoint(model, tmp_path / "m.ckpt", meta={"columns": ["energy_ev", "gap_ev", "dipole_debye"]})
    rebuilt, _ = load_checkpoint(path)
    batch = _batch([molecule("CH3OH")])
    for key in ("predicted_energy", "predicted_gap", "predicted_dipole"):
        torch.testing.assert_close(rebuilt(batch)[key], model(batch)[key])


def test_the_energy_only_checkpoint_of_the_first_version_still_loads(model):
    legacy_state = {k.replace("heads.energy.", ""): v for k, v in model.state_dict().items()
                    if not k.startswith(("heads.gap", "heads.dipole"))}
    head = model.heads["energy"]
    legacy_config = {"format": "molpre.energy/1", "encoder": TINY.to_dict(),
                     "atomref": head.atomref.as_dict(), "readout_hidden": head.hidden,
                     "energy_scale": head.scale}
    rebuilt = PropertyModel.from_config(legacy_config).double()
    rebuilt.load_state_dict(legacy_state)
    batch = _batch([molecule("H2O")])
    torch.testing.assert_close(rebuilt(batch)["predicted_energy"], model(batch)["predicted_energy"])


def test_a_new_target_is_one_registry_entry(monkeypatch):
    """Zero-point energy, defined here only: read, head, loss and metrics all follow."""
    from molpre.inference.metrics import target_metrics
    from molpre.train.losses import weighted_loss

    spec = TargetSpec("zpve", "extensive", "eV", (targets.Source("zpve", "hartree"),), "meV", 1000.0)
    monkeypatch.setitem(targets.TARGETS, "zpve", spec)
    data = labeled_from_atoms([_qm9_frame()], "zpve")
    assert data.labels["zpve"][0] == pytest.approx(0.0214 * HARTREE_TO_EV)
    encoder = Encoder(TINY)
    model = PropertyModel(encoder, {"zpve": make_head(spec, encoder, atomref={1: 0.1, 8: 0.2})})
    sample = atoms_to_sample(_qm9_frame(), TINY.cutoff)
    sample["zpve"] = torch.tensor([0.58], dtype=torch.float64)
    batch = collate([sample])
    out = model(batch)
    assert weighted_loss(out, batch, targets=["zpve"])["loss"] > 0
    metrics = target_metrics(spec, out["predicted_zpve"].detach().numpy(), np.array([0.58]), "test_")
    assert set(metrics) == {"test_mae_zpve_mev", "test_rmse_zpve_mev"}
    assert predict_columns(model, [sample]).keys() == {"zpve_ev"}


@pytest.mark.slow
def test_energy_and_gap_heads_train_jointly_and_beat_the_mean(shared_data, tmp_path, monkeypatch):
    from molpre.data.datasets import load_labeled
    from molpre.train.finetune import finetune
    from molpre.train.finetune_config import FinetuneConfig

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    data = load_labeled(shared_data / "qm9_sample3000.extxyz.gz", "u0_atom,gap").subset(range(240))
    config = FinetuneConfig(data="qm9", target="u0_atom,gap", test_fraction=0.25, epochs=30,
                            batch_size=16, lr=5e-3, seed=0, out=str(tmp_path / "ft"),
                            progress=False, log_model=False, threads=1)
    result = finetune(config, data=data)
    assert result.model.targets == ["energy", "gap"]
    m = result.metrics
    # mean predictors: the training mean on the test molecules (gap: the baseline itself)
    assert m["test_mae_gap_mev"] < 0.9 * m["baseline_test_mae_gap_mev"]
    assert m["test_mae_mev"] < 0.5 * m["mean_test_mae_mev"]
    assert m["test_mae_mev"] < m["baseline_test_mae_mev"]  # and the atomref sum


def test_pyfunc_signature_follows_the_heads(model, tmp_path):
    from mlflow.models import Model

    from molpre.inference.batch import target_columns
    from molpre.inference.pyfunc import save_pyfunc_model
    from molpre.models.checkpoint import save_checkpoint

    ckpt = save_checkpoint(model, tmp_path / "m.ckpt", meta={"columns": target_columns(model)})
    saved = save_pyfunc_model(ckpt, tmp_path / "model")
    outputs = Model.load(str(saved)).signature.outputs.input_names()
    assert outputs == ["id", "smiles", "energy_ev", "energy_minus_atomref_ev", "gap_ev",
                       "dipole_debye", "status", "error", "n_conformers"]
    from molpre.inference.predictor import Predictor

    assert outputs == Predictor(model, TINY.cutoff).columns


def test_homo_gets_an_intensive_head_not_reference_energies():
    """The first version fitted per-element reference energies to --target homo."""
    from molpre.targets.kinds.extensive import ExtensiveHead
    from molpre.targets.kinds.intensive import IntensiveHead
    from molpre.train.finetune import _heads

    frames = [_qm9_frame(homo=h) for h in (-0.25, -0.30, -0.35)]
    data = labeled_from_atoms(frames, "homo")
    heads, scales, fitted = _heads(data, Encoder(TINY))
    assert isinstance(heads["homo"], IntensiveHead) and "atomref" not in fitted["homo"]
    assert heads["homo"].offset == pytest.approx(-0.30 * HARTREE_TO_EV)
    assert scales["homo"] == pytest.approx(np.std([-0.25, -0.30, -0.35]) * HARTREE_TO_EV)
    energy_heads, _, fitted = _heads(labeled_from_atoms(frames, "u0_atom"), Encoder(TINY))
    assert isinstance(energy_heads["energy"], ExtensiveHead)
    assert set(fitted["energy"]["atomref"]) == {1, 8}


def test_evaluate_scores_every_target_in_its_unit(model, tmp_path):
    """`molpre evaluate` once scored the energy alone; labels offset from the model's own
    predictions by known amounts must come back as those errors, each in its unit."""
    from molpre.inference.evaluation import evaluate_model
    from molpre.inference.predictor import Predictor

    predictor = Predictor(model, TINY.cutoff, progress=False)
    frames = []
    for seed in range(4):
        atoms = molecule("H2O")
        atoms.rattle(0.05, seed=seed)
        frames.append(atoms)
    pred = predictor.predict(frames)
    for atoms, (_, row) in zip(frames, pred.iterrows(), strict=True):
        atoms.calc = SinglePointCalculator(atoms, energy=row.energy_ev - 0.05)
        atoms.info.update(gap=row.gap_ev + 0.1, dipole_debye=row.dipole_debye + 0.2)
    data = labeled_from_atoms(frames, "energy,gap,dipole")
    report = evaluate_model(predictor, data, tmp_path / "eval")
    m = report.metrics
    assert m["mae_mev"] == pytest.approx(50.0, abs=1e-3)
    assert m["mae_gap_mev"] == pytest.approx(100.0, abs=1e-3)
    assert m["mae_dipole_debye"] == pytest.approx(0.2, abs=1e-6)
    assert report.rows["gap_error_mev"].to_numpy() == pytest.approx([-100.0] * 4, abs=1e-3)
    assert (tmp_path / "eval" / "parity.png").is_file()
    gap_only = evaluate_model(predictor, labeled_from_atoms(frames, "gap"), tmp_path / "gap")
    assert set(gap_only.metrics) == {"mae_gap_mev", "rmse_gap_mev", "n", "n_unsupported"}
    energy_only = PropertyModel(Encoder(TINY).double(), {"energy": model.heads["energy"]}).eval()
    with pytest.raises(ValueError, match="no head for gap"):
        evaluate_model(Predictor(energy_only, TINY.cutoff, progress=False), data, tmp_path / "x")
