"""Job specs and ``molpre conformers`` hold the intake's own config (IntakeConfig), not a
copy of its fields; conformers takes --config/--set like every compute command."""

import dataclasses

from click.testing import CliRunner

from molpre.chem import IntakeConfig
from molpre.chem.config import ConformersConfig, InputConfig
from molpre.cli import main
from molpre.workflow.plan import intake_config
from molpre.workflow.spec import IntakeSpec, job_from_dict


def test_a_job_intake_is_an_intake_config_plus_the_input_columns():
    assert IntakeSpec is InputConfig and issubclass(InputConfig, IntakeConfig)
    own = {f.name for f in dataclasses.fields(InputConfig)} - {
        f.name for f in dataclasses.fields(IntakeConfig)}
    assert own == {"smiles_col", "id_col"}
    job = job_from_dict({"kind": "label", "intake": {"max_heavy_atoms": 9, "allow_radicals": True,
                                                     "smiles_col": "SMILES"}})
    intake = intake_config(job)
    assert type(intake) is IntakeConfig and intake.allow_radicals  # reaches the intake now
    assert (intake.max_heavy_atoms, intake.max_atoms) == (9, 18)  # total: twice the heavy
    assert IntakeConfig(max_heavy_atoms=9, max_atoms=12).max_atoms == 12


def test_conformers_reads_a_config_file_and_set(tmp_path):
    smi = tmp_path / "in.smi"
    smi.write_text("CCO ethanol\nC[Si](C)(C)C tms\nCCCC butane\n")
    config = tmp_path / "c.yaml"
    config.write_text("conformers:\n  n: 1\n  elements: [H, C, O]\n  output: "
                      f"{tmp_path / 'out.extxyz'}\n")
    result = CliRunner().invoke(main, ["conformers", str(smi), "--config", str(config),
                                       "--set", "max_atoms=12", "--max-heavy-atoms", "3"])
    assert result.exit_code == 0, result.output
    assert "ok 1, failed 2" in result.output  # Si outside the elements, butane too large
    errors = (tmp_path / "out.errors.csv").read_text()
    assert "Si" in errors and "too large" in errors


def test_a_bad_element_or_key_is_one_usage_line(tmp_path):
    smi = tmp_path / "in.smi"
    smi.write_text("CCO\n")
    bad = CliRunner().invoke(main, ["conformers", str(smi), "-o", str(tmp_path / "o.extxyz"),
                                    "--elements", "H,Xx"])
    assert bad.exit_code == 2 and "unknown element symbol 'Xx'" in bad.output
    typo = CliRunner().invoke(main, ["conformers", str(smi), "-o", str(tmp_path / "o.extxyz"),
                                     "--set", "max_heavy_atom=3"])
    assert typo.exit_code == 2 and "did you mean 'max_heavy_atoms'" in typo.output
    assert ConformersConfig().max_atoms == 200
