import pytest
from hf_level import hf

from molpre.qc.content_keys import content_key
from molpre.qc.levels import LevelOfTheory, validate_level


def test_tag_names_method_basis_and_options():
    assert LevelOfTheory("HF", "STO-3G").tag == "hf/sto-3g/df"
    tag = LevelOfTheory("B3LYP", "6-31G(2df,p)", density_fit=False, cart=True).tag
    assert tag == "b3lyp/6-31g(2df,p)/grid3/cart"


@pytest.mark.parametrize("bad", [dict(max_cycle=0), dict(max_atoms=0), dict(time_limit_s=0),
                                 dict(grid_level=12), dict(method=" ")])
def test_invalid_levels_are_rejected(bad):
    with pytest.raises(ValueError):
        LevelOfTheory(**bad)


def test_validate_level_names_unknown_method_and_basis():
    validate_level(LevelOfTheory("pbe0", "6-31g"))
    with pytest.raises(ValueError, match="unknown method"):
        validate_level(LevelOfTheory("notafunctional", "6-31g"))
    with pytest.raises(ValueError, match="unknown basis"):
        validate_level(LevelOfTheory("hf", "no-such-basis"))


def test_key_ignores_sub_micro_angstrom_noise_but_not_real_moves(water):
    level = hf()
    key = content_key(water, level)
    moved = water.copy()
    moved.positions[0, 0] += 2e-7
    assert content_key(moved, level) == key
    moved.positions[0, 0] += 5e-6
    assert content_key(moved, level) != key


def test_key_depends_on_charge_spin_level_but_not_limits(water, mol):
    level = hf()
    key = content_key(water, level)
    assert content_key(mol("H2O", charge=1, spin=2), level) != key
    assert content_key(water, hf(basis="6-31g")) != key
    assert content_key(water, hf(density_fit=False)) != key
    limits = hf(max_cycle=5, time_limit_s=1.0, max_atoms=4)
    assert content_key(water, limits) == key
    # the grid does not change an HF energy, so it is not part of an HF key
    assert content_key(water, hf(grid_level=5)) == key
    assert content_key(water, LevelOfTheory("b3lyp", grid_level=5)) != content_key(
        water, LevelOfTheory("b3lyp"))
