"""`molpre label --perturb K`: displaced copies labeled by the same PySCF path."""

import ase.io
import numpy as np
from ase.build import molecule
from click.testing import CliRunner

from molpre.cli import main
from molpre.data.datasets import load_labeled


def test_label_perturb_writes_displaced_labeled_copies(tmp_path):
    src, db = tmp_path / "in.extxyz", tmp_path / "l.db"
    frames = []
    for conf_id, name in enumerate(("H2", "H2O")):
        atoms = molecule(name)
        atoms.info = {"mol_id": name, "conf_id": conf_id, "charge": 0, "spin": 1}
        frames.append(atoms)
    ase.io.write(src, frames, format="extxyz")
    args = ["label", str(src), "-o", str(db), "--method", "hf", "--basis", "sto-3g", "--forces",
            "--workers", "1", "--threads", "1", "--perturb", "2", "--perturb-sigma", "0.05"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "6 conformers: 6 ok" in result.output
    data = load_labeled(db, forces=True)
    by_mol = {}
    for atoms, energy, forces in zip(data.atoms, data.labels["energy"], data.forces, strict=True):
        by_mol.setdefault(atoms.info["mol_id"], []).append((atoms, energy, forces))
    assert sorted(len(v) for v in by_mol.values()) == [3, 3]
    for rows in by_mol.values():
        rows.sort(key=lambda row: row[0].info["perturbation"])
        (eq, e0, _), displaced = rows[0], rows[1:]
        for atoms, energy, forces in displaced:
            assert not np.allclose(atoms.positions, eq.positions)
            assert abs(energy - e0) > 1e-3  # a different geometry, labeled on its own
            assert np.abs(forces).max() > 0.05
    again = CliRunner().invoke(main, args, catch_exceptions=False)
    assert "0 ok, 0 failed, 6 skipped" in again.output  # same seed, same geometries: resumes
