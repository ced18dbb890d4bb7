"""Finetuning modes freeze what they claim; the L2-SP penalty and config checks."""

import pytest
import torch
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from molpre.data.datasets import labeled_from_atoms
from molpre.models.encoder import load_encoder, save_encoder
from molpre.models.presets import build_encoder
from molpre.train.finetune import finetune
from molpre.train.finetune_config import ConfigError, FinetuneConfig
from molpre.train.losses import l2sp_penalty, snapshot

NAMES = ["H2O", "CH4", "NH3", "C2H6", "CH3OH", "C2H4", "HCN", "H2CO", "CO2", "C2H2", "CH3CN",
         "CH3CH2OH", "HCOOH", "CH3CHO", "C3H8", "N2H4"]


@pytest.fixture(scope="module")
def tiny_data():
    frames = []
    for k, name in enumerate(NAMES):
        atoms = molecule(name)
        energy = -10.0 * len(atoms) + 0.3 * k  # any smooth-ish labels will do
        atoms.calc = SinglePointCalculator(atoms, energy=energy)
        atoms.info["mol_id"] = name
        frames.append(atoms)
    return labeled_from_atoms(frames)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("enc") / "encoder.pt"
    save_encoder(build_encoder("small"), path)
    return path


def _run(tiny_data, pretrained, tmp_path, mode, **extra):
    settings = dict(data="tiny", mode=mode, encoder=str(pretrained), epochs=2, batch_size=4,
                    test_fraction=0.2, lr=1e-2, out=str(tmp_path / mode), progress=False,
                    log_model=False)
    config = FinetuneConfig(**{**settings, **extra})
    return finetune(config, data=tiny_data)


def _changed(model, reference, prefix):
    state = model.state_dict()
    return {k: not torch.equal(state[f"encoder.{k}"], v) for k, v in reference.items()
            if k.startswith(prefix) and v.is_floating_point()}


@pytest.mark.parametrize("mode", ["probe", "freeze:1", "full"])
def test_modes_freeze_what_they_claim(mode, tiny_data, pretrained, tmp_path, store):
    w0 = load_encoder(pretrained).state_dict()
    result = _run(tiny_data, pretrained, tmp_path, mode)
    model = result.model
    encoder_grads = {n: p.requires_grad for n, p in model.encoder.named_parameters()}
    head_grads = [p.requires_grad for p in model.heads.parameters()]
    assert all(head_grads)
    block0, block1 = _changed(model, w0, "blocks.0."), _changed(model, w0, "blocks.1.")
    if mode == "probe":
        assert not any(encoder_grads.values()) and not any(block0.values())
        assert not any(block1.values())
    elif mode == "freeze:1":
        assert not any(v for n, v in encoder_grads.items() if n.startswith(("embedding", "blocks.0.")))
        assert all(v for n, v in encoder_grads.items() if n.startswith("blocks.1."))
        assert not any(block0.values()) and any(block1.values())
        assert not any(_changed(model, w0, "embedding.").values())
    else:
        assert all(encoder_grads.values()) and any(block0.values()) and any(block1.values())
    assert set(result.frozen) == {f"encoder.{n}" for n, g in encoder_grads.items() if not g}


def test_prior_mode_picks_alpha_on_validation(tiny_data, pretrained, tmp_path, store):
    result = _run(tiny_data, pretrained, tmp_path, "prior", prior_alphas=[1e-2, 10.0], epochs=1)
    assert result.alpha in (1e-2, 10.0)
    assert result.metrics["prior_alpha"] == result.alpha
    assert all(p.requires_grad for p in result.model.parameters())


def test_l2sp_penalty_is_half_alpha_squared_distance():
    layer = torch.nn.Linear(3, 2)
    ref = snapshot(layer)
    assert l2sp_penalty(layer.named_parameters(), ref, 1.0).item() == 0.0
    with torch.no_grad():
        layer.weight += 0.5
    value = l2sp_penalty(layer.named_parameters(), ref, 0.2)
    assert value.item() == pytest.approx(0.5 * 0.2 * 6 * 0.25)
    value.backward()
    assert layer.weight.grad is not None


def test_config_rejects_bad_settings():
    with pytest.raises(ConfigError, match="needs an encoder"):
        FinetuneConfig(mode="probe")
    with pytest.raises(ConfigError, match="mode"):
        FinetuneConfig(mode="freeze")
    with pytest.raises(ConfigError, match="unknown"):
        FinetuneConfig.from_dict({"epochz": 3})
    assert FinetuneConfig(mode="freeze:2", encoder="x.pt").freeze_blocks == 2
    assert FinetuneConfig(forces_weight=1.0).forces is True
    assert FinetuneConfig(data="a.db").resolved()["data"].endswith("a.db")


def test_energy_and_force_training_with_emt_labels(tmp_path, store):
    from ase.calculators.emt import EMT

    from molpre.data import keys
    from molpre.data.graph import atoms_to_sample, collate
    from molpre.train.losses import weighted_loss

    frames = []
    for name in NAMES[:12]:
        atoms = molecule(name)
        atoms.rattle(0.05, seed=len(frames))
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        atoms.info["mol_id"] = name
        frames.append(atoms)
    data = labeled_from_atoms(frames, forces=True)
    config = FinetuneConfig(data="emt", forces_weight=10.0, epochs=2, batch_size=4,
                            test_fraction=0.25, out=str(tmp_path), progress=False, log_model=False)
    assert config.forces
    result = finetune(config, data=data)
    assert result.metrics["test_n"] == 3 and result.history
    batch = collate([atoms_to_sample(a, 4.5, a.get_potential_energy(), a.get_forces())
                     for a in frames[:3]])
    out = result.model(batch, compute_forces=True)
    terms = weighted_loss(out, batch, forces_weight=10.0)
    assert set(terms) == {"loss", "energy", "forces"} and out[keys.PREDICTED_FORCES].shape == (
        sum(len(a) for a in frames[:3]), 3)
    assert float(terms["loss"]) == pytest.approx(float(terms["energy"] + 10.0 * terms["forces"]))


def test_a_pretrained_head_needs_a_pretrained_encoder_and_an_energy_target(tmp_path):
    from molpre.train.finetune_config import ConfigError, FinetuneConfig

    enc = tmp_path / "e.pt"
    enc.write_bytes(b"")
    with pytest.raises(ConfigError, match="head: pretrained"):
        FinetuneConfig(head="pretrained", mode="scratch")
    with pytest.raises(ConfigError, match="head: pretrained"):
        FinetuneConfig(head="pretrained", mode="full", encoder=str(enc), target="gap")
    assert FinetuneConfig(head="pretrained", mode="full", encoder=str(enc),
                          target="u0_atom").head == "pretrained"
