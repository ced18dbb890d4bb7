"""The hostile-input matrix: every command and Python entry point against every hostile case
that applies to it, in-process (CliRunner), each in well under a second.

Cases (generated from each command's one line in COMMANDS): ``-o`` equal to each input (also
through a symlink and a hard link), inside an input folder (a model folder), a folder output
that holds the inputs, a read-only folder, a file where a folder is due; a truncated label
store; non-UTF-8, code-running (``!!python/...``) and too deeply nested YAML; an unreachable
MLflow server (http://127.0.0.1:9); bad ports for ``molpre ui``. Each case asserts the exit
status, exactly one ``Error:`` line naming what is wrong, no traceback and no crash log, and
every input byte-identical afterwards (nothing created, changed or removed among them).

A new command joins the matrix with one line in COMMANDS (``test_every_command_is_in_the_
matrix`` fails until it does).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import CalculatorError
from ase.calculators.singlepoint import SinglePointCalculator
from click.testing import CliRunner

from molpre.cli import SUBCOMMANDS, main

UNREACHABLE = "http://127.0.0.1:9"
REMOTE_MODEL = "runs:/0123456789abcdef0123456789abcdef/model"
#: Input roles that are folders (the rest are files).
FOLDER_ROLES = {"model", "shards", "shards2"}
YAML_ROLES = {"config", "job"}


@dataclass(frozen=True)
class Cmd:
    """One command: its argument template (``{out}`` the output, ``{role}`` an input),
    what ``{out}`` is (``file``, ``dir`` or ``""``: writes nothing), the output's suffix,
    inputs read without appearing in the template, whether it talks to MLflow, whether its
    output may be an existing label store it resumes, and extra cases of its own."""

    name: str
    template: str
    out: str = "file"
    suffix: str = ""
    reads: tuple[str, ...] = ()
    mlflow: bool = False
    resumes_store: bool = False
    extra: tuple[str, ...] = ()


COMMANDS = [
    Cmd("predict", "predict {smi} --model {model} -o {out}", suffix=".csv", mlflow=True),
    Cmd("embed", "embed {model} {smi} -o {out}", suffix=".parquet", mlflow=True),
    Cmd("evaluate", "evaluate {model} {db} -o {out}", out="dir", mlflow=True),
    Cmd("finetune", "finetune --config {config} --data {db} --split-file {split} --epochs 1 "
        "-o {out}", out="dir", mlflow=True),
    Cmd("pretrain", "pretrain --config {config} --corpus {smi} -o {out}", out="dir",
        mlflow=True),
    Cmd("study", "study --config {config} --data {db} --set teach.study={model} -o {out}",
        out="dir", mlflow=True),
    Cmd("audit", "audit --corpus {smi} --eval {db} --drop {out}", suffix=".csv"),
    Cmd("submit", "submit {job} --input {csv} --workers 1 -o {out}", suffix=".csv",
        reads=("model",), mlflow=True),
    Cmd("conformers", "conformers {smi} -o {out}", suffix=".extxyz"),
    Cmd("label", "label {extxyz} --method hf --basis sto-3g --workers 1 -o {out}",
        suffix=".db", resumes_store=True),
    Cmd("export", "export {db} -o {out}", suffix=".extxyz"),
    Cmd("ui", "ui --port {port}", out="", mlflow=True, extra=("port_out_of_range", "port_in_use")),
    Cmd("demo", "demo --config {config} -o {out}", out="dir"),
    Cmd("pipelines", "pipelines copy demo -o {out}", out="dir"),
    Cmd("join-shards", "join-shards {shards} {shards2} -o {out}", out="dir"),
]

#: Commands that write nothing and read nothing worth a case (none today).
NOT_IN_MATRIX: set[str] = set()


def roles_of(cmd: Cmd) -> list[str]:
    found = re.findall(r"{(\w+)}", cmd.template)
    return [r for r in dict.fromkeys([*found, *cmd.reads]) if r not in ("out", "port")]


def cases_of(cmd: Cmd) -> list[str]:
    """Every hostile case that applies to ``cmd``."""
    roles, cases = roles_of(cmd), []
    if cmd.out:
        for role in roles:
            cases.append(f"is:{role}")
            if role in FOLDER_ROLES:
                cases.append(f"inside:{role}")
            elif role in re.findall(r"{(\w+)}", cmd.template):
                cases += [f"symlink:{role}", f"hardlink:{role}"]
        cases += ["contains"] if cmd.out == "dir" and roles else []
        cases += ["read_only", "under_file"]
    if "db" in roles or cmd.resumes_store:
        cases.append("truncated_store")
    if YAML_ROLES & set(roles):
        cases += ["non_utf8_yaml", "python_yaml", "deep_yaml"]
    if cmd.mlflow:
        cases.append("unreachable_mlflow")
    return cases + list(cmd.extra)


MATRIX = [(cmd, case) for cmd in COMMANDS for case in cases_of(cmd)]


# ------------------------------------------------------------------------------------------
# the inputs every case reads (built once; never changed by any case)

def _labeled_frames() -> list[Atoms]:
    frames = []
    for k, name in enumerate(["H2O", "CH4", "NH3", "C2H6", "CH3OH", "HCN", "C2H4", "H2CO"]):
        atoms = molecule(name)
        atoms.info.update(mol_id=f"m{k}", smiles="")
        energy = float(-13.6 * atoms.numbers.sum() - 0.1 * k)
        atoms.calc = SinglePointCalculator(atoms, energy=energy,
                                           forces=np.zeros((len(atoms), 3)))
        frames.append(atoms)
    return frames


def _label_store(path: Path, frames: list[Atoms]) -> None:
    from molpre.data.store import open_store, write_row
    from molpre.qc.pyscf import QCResult

    db = open_store(path)
    for k, atoms in enumerate(frames):
        result = QCResult(ok=True, energy=atoms.get_potential_energy(),
                          forces=np.zeros((len(atoms), 3)), homo=-10.0, lumo=1.0,
                          dipole=np.zeros(3), converged=True)
        write_row(db, atoms, f"key{k}", result, {"level": "hf/sto-3g", "method": "hf",
                                                 "basis": "sto-3g"})


def _shards(folder: Path, frames: list[Atoms], smiles: list[str]) -> None:
    """A labeled shard folder of ``frames`` (one conformer each, ``smiles`` their molecules),
    as the corpus writer makes it."""
    from molpre.chem import records_from_smiles
    from molpre.data.shards import ShardWriter

    writer = ShardWriter(folder, shard_size=2,
                         settings={"labels": {"level": "gfn2-xtb", "forces": True}})
    for record, atoms in zip(records_from_smiles(smiles), frames, strict=True):
        writer.add(record, [atoms], energies=[atoms.get_potential_energy()],
                   forces=[np.zeros((len(atoms), 3))])
    writer.close()


def _model(folder: Path) -> None:
    import torch

    from molpre.models.checkpoint import save_checkpoint
    from molpre.models.energy import EnergyModel
    from molpre.models.presets import build_encoder

    torch.manual_seed(0)
    model = EnergyModel(build_encoder("small"), {1: -13.6, 6: -1029.0, 7: -1484.0, 8: -2041.0},
                        energy_scale=0.1)
    meta = {"target": "energy", "unit": "eV"}
    save_checkpoint(model, folder / "model.ckpt", meta=meta)
    (folder / "model" / "artifacts").mkdir(parents=True)
    shutil.copy(folder / "model.ckpt", folder / "model" / "artifacts" / "model.ckpt")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    paths = {"smi": root / "x.smi", "csv": root / "in.csv", "extxyz": root / "labels.extxyz",
             "db": root / "labels.db", "model": root / "ft", "config": root / "config.yaml",
             "job": root / "job.yaml", "trunc": root / "trunc.db", "afile": root / "afile",
             "split": root / "split.csv", "shards": root / "frag", "shards2": root / "mine",
             "root": root}
    paths["smi"].write_text("CCO a\nCCN b\n")
    paths["csv"].write_text("smiles,id\nCCO,a\nCCN,b\n")
    frames = _labeled_frames()
    ase.io.write(paths["extxyz"], frames, format="extxyz")
    _label_store(paths["db"], frames)
    paths["trunc"].write_bytes(paths["db"].read_bytes()[:20000])
    _model(paths["model"])
    _shards(paths["shards"], frames[:4], ["O", "C", "N", "CC"])
    _shards(paths["shards2"], frames[4:], ["CO", "C#N", "C=C", "C=O"])
    paths["config"].write_text("finetune: {epochs: 1}\npretrain: {seed: 0}\n"
                               "study: {name: matrix}\ndemo: {seed: 0}\n")
    paths["job"].write_text(f"kind: predict\nmodel: {{source: {paths['model']}}}\n")
    paths["afile"].write_text("a plain file\n")
    paths["split"].write_text("mol_id,part\n")  # read after every check a case makes
    for suffix in (".lock", ".flock"):  # the store's sidecars exist, as after any label run
        Path(f"{paths['db']}{suffix}").touch()
    return paths


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: a file's SHA-256, a link's target, or "dir"."""
    state = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            state[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            state[rel] = "dir"
        else:
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


BAD_YAML = {
    "non_utf8_yaml": b"\xff\xfe\x00 not text",
    "python_yaml": b'finetune: !!python/object/apply:os.system ["touch pwned"]\n',
    "deep_yaml": b"finetune: " + b"[" * 2000 + b"]" * 2000 + b"\n",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Case:
    """One (command, case): the arguments, environment and what the error must say."""

    def __init__(self, cmd: Cmd, case: str, inputs: dict[str, Path], tmp: Path, ro: Path):
        self.cmd, self.case, self.tmp = cmd, case, tmp
        self.values = {r: str(inputs[r]) for r in roles_of(cmd)}
        self.values["port"] = str(_free_port())
        self.out = tmp / f"out{cmd.suffix}" if cmd.out else None
        self.expect_code, self.expect = 1, []
        kind, _, role = case.partition(":")
        getattr(self, f"_{kind}")(role, inputs, ro)

    def argv(self) -> list[str]:
        values = dict(self.values, out=str(self.out))
        return [part.format(**values) for part in self.cmd.template.split()]

    def _is(self, role, inputs, ro):
        self.out = inputs[role]
        self.expect = ["refusing", inputs[role].name]

    def _inside(self, role, inputs, ro):
        self.out = inputs[role] / "model" / "artifacts" / f"model{self.cmd.suffix or '.ckpt'}"
        self.expect = ["lies inside the input folder", inputs[role].name]

    def _symlink(self, role, inputs, ro):
        self.out = self.tmp / f"link{self.cmd.suffix}"
        self.out.symlink_to(inputs[role])
        self.expect = ["refusing", "through a link", inputs[role].name]

    def _hardlink(self, role, inputs, ro):
        self.out = self.tmp / f"hard{self.cmd.suffix}"
        os.link(inputs[role], self.out)
        self.expect = ["refusing", inputs[role].name]

    def _contains(self, role, inputs, ro):
        self.out = inputs["root"]
        self.expect = ["holds the input"]

    def _read_only(self, role, inputs, ro):
        self.out = ro / f"out{self.cmd.suffix}"
        self.expect = ["not writable", str(ro)]

    def _under_file(self, role, inputs, ro):
        self.out = inputs["afile"] / f"out{self.cmd.suffix}" if self.cmd.out == "file" \
            else inputs["afile"]
        self.expect = ["afile", "is a file, not a folder"]

    def _truncated_store(self, role, inputs, ro):
        if self.cmd.resumes_store:  # the output is a corrupt store to resume: a copy
            self.out = self.tmp / "resume.db"
            shutil.copy(inputs["trunc"], self.out)
        else:
            self.values["db"] = str(inputs["trunc"])
        self.expect = ["trunc.db" if not self.cmd.resumes_store else "resume.db",
                       "unreadable"]

    def _yaml(self, text: bytes, hint: str):
        bad = self.tmp / "bad.yaml"
        bad.write_bytes(text)
        self.values["job" if "job" in self.values else "config"] = str(bad)
        self.expect_code, self.expect = 2, ["bad.yaml", hint]

    def _non_utf8_yaml(self, role, inputs, ro):
        self._yaml(BAD_YAML["non_utf8_yaml"], "UTF-8")

    def _python_yaml(self, role, inputs, ro):
        self._yaml(BAD_YAML["python_yaml"], "python/object/apply")

    def _deep_yaml(self, role, inputs, ro):
        self._yaml(BAD_YAML["deep_yaml"], "nested too deeply")

    def _unreachable_mlflow(self, role, inputs, ro):
        if "model" in self.values and "model" in self.cmd.template:
            self.values["model"] = REMOTE_MODEL
        self.expect = ["127.0.0.1:9"]

    def _port_out_of_range(self, role, inputs, ro):
        self.values["port"] = "70000"
        self.expect_code, self.expect = 2, ["70000"]

    def _port_in_use(self, role, inputs, ro):
        self.expect = ["port", "not free"]


@pytest.mark.parametrize("cmd,case", MATRIX, ids=[f"{c.name}-{k}" for c, k in MATRIX])
def test_hostile_input(cmd, case, inputs, tmp_path, monkeypatch, read_only_folder):
    logs = tmp_path / "logs"
    monkeypatch.setenv("MOLPRE_LOG_DIR", str(logs))
    monkeypatch.setenv("MLFLOW_TRACKING_URI",
                       UNREACHABLE if case == "unreachable_mlflow"
                       else f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "case"
    work.mkdir()
    spec = Case(cmd, case, inputs, work, read_only_folder)
    before = snapshot(inputs["root"])
    listener = socket.socket() if case == "port_in_use" else None
    if listener is not None:
        listener.bind(("127.0.0.1", int(spec.values["port"])))
        listener.listen()
    try:
        result = CliRunner().invoke(main, spec.argv())
    finally:
        if listener is not None:
            listener.close()
    assert result.exit_code == spec.expect_code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    for text in spec.expect:
        assert text in errors[0], (text, errors[0])
    assert snapshot(inputs["root"]) == before
    assert not logs.exists(), "a crash log was written: an unexpected error"
    if case == "truncated_store" and cmd.resumes_store:
        assert spec.out.read_bytes() == inputs["trunc"].read_bytes()


def test_every_command_is_in_the_matrix():
    assert set(SUBCOMMANDS) - NOT_IN_MATRIX == {c.name for c in COMMANDS}


# ------------------------------------------------------------------------------------------
# Python entry points: Predictor.load and its ASE calculator

def _random_cloud(n: int = 500, seed: int = 0) -> Atoms:
    rng = np.random.default_rng(seed)
    return Atoms(numbers=[6] * n, positions=rng.uniform(0.0, 40.0, (n, 3)))


def _load(source: str):
    from molpre.inference.predictor import Predictor

    return Predictor.load(source, progress=False)


PY_CASES = ["truncated_checkpoint", "not_a_checkpoint", "unreachable_mlflow",
            "calculator_too_large", "calculator_unknown_element"]


@pytest.mark.parametrize("case", PY_CASES)
def test_python_entry_points(case, inputs, tmp_path, monkeypatch):
    from molpre.inference.source import ModelLoadError

    before = snapshot(inputs["root"])
    if case == "unreachable_mlflow":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", UNREACHABLE)
    bad = tmp_path / "model.ckpt"
    if case == "truncated_checkpoint":
        bad.write_bytes((inputs["model"] / "model.ckpt").read_bytes()[:5000])
    elif case == "not_a_checkpoint":
        bad.write_bytes(np.random.default_rng(0).bytes(3000))
    if case.startswith("calculator"):
        atoms = _random_cloud() if case.endswith("large") else molecule("SiH4")
        atoms.calc = _load(str(inputs["model"])).calculator()
        with pytest.raises(CalculatorError) as err:
            atoms.get_potential_energy()
        assert ("too large: 500 atoms" if case.endswith("large") else "unsupported element Si") \
            in str(err.value)
    else:
        source = REMOTE_MODEL if case == "unreachable_mlflow" else str(bad)
        with pytest.raises(ModelLoadError) as err:
            _load(source)
        assert (source if case != "unreachable_mlflow" else "127.0.0.1:9") in str(err.value)
    assert "\n" not in str(err.value)
    assert snapshot(inputs["root"]) == before


def test_calculator_computes_overlapping_atoms_but_flags_them(inputs):
    """An optimizer may pass through overlapping atoms (the repulsive prior pushes them out):
    computed, with an out-of-domain warning and ``ood`` in the results."""
    from molpre.inference.calculator import OutOfDomainWarning

    atoms = molecule("H2O")
    atoms.positions[1] = atoms.positions[0] + [0.0, 0.0, 0.3]
    atoms.calc = _load(str(inputs["model"])).calculator()
    with pytest.warns(OutOfDomainWarning, match="overlapping atoms"):
        energy = atoms.get_potential_energy()
    assert np.isfinite(energy) and atoms.calc.results["ood"]
    assert "0.300 A apart" in atoms.calc.results["ood_reason"]
