"""A new kind of target is one module: defined in a temporary file here (a positive quantity
learned in log space), it is read, fitted, trained, saved, reloaded, predicted, evaluated
and given a study baseline without any other file changing. And no module outside
molpre/targets switches on a kind's name or names a kind's classes."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule

import molpre
from molpre.targets import KINDS, TARGETS

ROOT = Path(molpre.__file__).resolve().parent
KIND_NAMES = {"extensive", "intensive", "vector"}  # "forces" is a target's name too
KIND_CLASSES = {"Extensive", "Intensive", "Vector", "Forces", "ExtensiveHead", "IntensiveHead",
                "DipoleHead", "PerElementPrior", "ZeroForces"}

TOY_KIND = '''
"""A positive quantity learned in log space: y = exp(offset + scale * mean_i MLP(h_i))."""
import numpy as np
import torch
from torch import nn

from molpre.targets import Source, TargetSpec, register
from molpre.targets.kinds import PENALTIES, Fitted, HeadOutput, Kind, Prior, register_kind
from molpre.targets.kinds.base import mlp, per_molecule


class LogHead(nn.Module):
    kind = "positive"

    def __init__(self, features, hidden, offset=0.0, scale=1.0):
        super().__init__()
        self.readout = mlp(features, hidden)
        self.hidden, self.offset, self.scale = hidden, float(offset), float(scale)

    def config(self):
        return {"kind": self.kind, "hidden": self.hidden, "offset": self.offset,
                "scale": self.scale}

    def forward(self, inputs):
        atomic = self.readout(inputs.features).squeeze(-1)
        total = per_molecule(atomic, inputs.index, inputs.num_graphs)
        count = per_molecule(torch.ones_like(atomic), inputs.index, inputs.num_graphs)
        return HeadOutput(torch.exp(self.offset + self.scale * total / count).double())


class GeometricMean(Prior):
    def __init__(self, value):
        self.value = value

    def predict(self, numbers):
        return np.full(len(numbers), self.value)


@register_kind
class Positive(Kind):
    name = "positive"
    prior_name = "geomean"
    prior_description = "geometric mean"

    def loss(self, pred, label, scale=1.0, penalty="mse"):
        return PENALTIES[penalty]((torch.log(pred) - torch.log(label.to(pred))) / scale).mean()

    def fit(self, numbers, labels):
        logs = np.log(labels)
        return Fitted(max(float(np.std(logs)), 1e-3),
                      {"offset": float(np.mean(logs)), "scale": max(float(np.std(logs)), 1e-3)})

    def make_head(self, dims, hidden, *, offset=0.0, scale=1.0):
        return LogHead(dims.features, hidden, offset, scale)

    def head_from_config(self, dims, config):
        return LogHead(dims.features, config["hidden"], config["offset"], config["scale"])

    def prior(self, numbers, labels):
        return GeometricMean(float(np.exp(np.mean(np.log(labels)))))


register(TargetSpec("size", "positive", "Angstrom^3", (Source("size", "angstrom^3"),),
                    "Angstrom^3", 1.0, description="a toy positive target"))
'''

NAMES = ["H2O", "NH3", "CH4", "C2H6", "CH3OH", "C2H4", "HCN", "CO2", "H2CO", "CH3CN",
         "C2H2", "CH3CHO", "HCOOH", "CH3CH2OH", "CH3OCH3", "N2", "H2O2", "N2H4", "CH3CONH2",
         "CH3COOH"]


def frames():
    out = []
    for i, name in enumerate(NAMES):
        atoms = molecule(name)
        atoms.info.update(mol_id=f"m{i}", size=float(0.5 * len(atoms) + 0.1 * i))
        out.append(atoms)
    return out


@pytest.fixture()
def toy(tmp_path):
    """Import the kind's file (registering the kind and a target); unregister afterwards."""
    path = tmp_path / "toy_kind.py"
    path.write_text(TOY_KIND)
    spec = importlib.util.spec_from_file_location("toy_kind", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    KINDS.pop("positive", None)
    TARGETS.pop("size", None)


def test_a_kind_defined_in_one_file_runs_through_finetune_predict_evaluate_and_study(
        toy, tmp_path, mlflow_uri):
    from molpre.data.datasets import labeled_from_atoms
    from molpre.inference.evaluation import evaluate_model
    from molpre.inference.predictor import Predictor
    from molpre.models.checkpoint import load_checkpoint
    from molpre.study.baselines import prior_baseline
    from molpre.study.children import fit_prior
    from molpre.train.finetune import finetune
    from molpre.train.finetune_config import FinetuneConfig

    data = labeled_from_atoms(frames(), "size")
    assert data.specs[0].kind == "positive" and data.labels["size"].shape == (20,)
    config = FinetuneConfig(data="toy", target="size", test_fraction=0.25, epochs=3,
                            batch_size=8, preset="small", out=str(tmp_path / "ft"),
                            progress=False, log_model=False, threads=1, val_fraction=0.2)
    result = finetune(config, data=data)
    m = result.metrics
    assert {"test_mae_size_a3", "baseline_test_mae_size_a3", "best_val_mae_size_a3"} <= set(m)
    assert "mean_test_mae_size_a3" in m  # the geometric mean is the prior, the mean beside it
    model, _ = load_checkpoint(result.checkpoint)
    assert model.heads["size"].config()["kind"] == "positive"
    predictor = Predictor(model, float(model.encoder.config.cutoff), progress=False)
    assert "size_a3" in predictor.columns
    report = evaluate_model(predictor, data.subset(range(5)), tmp_path / "eval")
    assert report.metrics["mae_size_a3"] >= 0 and "size_error_a3" in report.rows
    job = {"target": "size", "unit": None}
    numbers = [a.numbers for a in data.atoms]
    errors = prior_baseline(numbers, data.labels["size"], np.arange(15), np.arange(15, 20),
                            fit_prior(job, "geomean"))
    geo = np.exp(np.log(data.labels["size"][:15]).mean())
    np.testing.assert_allclose(errors, np.abs(geo - data.labels["size"][15:]))


def _kind_switches(path: Path, root: Path = ROOT.parent) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and node.value in KIND_NAMES:
            found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value!r}")
        elif isinstance(node, ast.Name | ast.alias) and \
                getattr(node, "id", getattr(node, "name", "")) in KIND_CLASSES:
            found.append(f"{path.relative_to(root)}:{node.lineno}: a kind's class")
    return found


def test_only_the_targets_package_names_kinds():
    outside = [p for p in ROOT.rglob("*.py") if "targets" not in p.relative_to(ROOT).parts]
    assert len(outside) > 100
    found = [hit for path in outside for hit in _kind_switches(path)]
    assert not found, "kind names outside molpre/targets:\n" + "\n".join(found)


def test_the_scan_finds_a_switch(tmp_path):
    (tmp_path / "m.py").write_text('if spec.kind == "vector":\n    ExtensiveHead()\n')
    assert _kind_switches(tmp_path / "m.py", tmp_path) == [
        "m.py:1: 'vector'", "m.py:2: a kind's class"]
