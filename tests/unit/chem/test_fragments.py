"""Fragments: ring systems stay whole, open valences are capped, each connected set once."""

from __future__ import annotations

import itertools

import pytest
from rdkit import Chem

from molpre.chem.fragments import FragmentConfig, connected_sets, fragments, unique_fragments


def _brute_force(sizes, adjacency, low, high):
    """Every connected vertex set of total size low..high, by trying all subsets."""
    found = set()
    n = len(sizes)
    for k in range(1, n + 1):
        for subset in itertools.combinations(range(n), k):
            if not low <= sum(sizes[i] for i in subset) <= high:
                continue
            seen, stack = {subset[0]}, [subset[0]]
            while stack:
                for u in adjacency[stack.pop()]:
                    if u in subset and u not in seen:
                        seen.add(u)
                        stack.append(u)
            if len(seen) == k:
                found.add(frozenset(subset))
    return found


@pytest.mark.parametrize("edges,sizes", [
    ([(0, 1), (1, 2), (2, 3), (3, 4)], [1, 2, 1, 3, 1]),  # a path
    ([(0, 1), (0, 2), (0, 3), (3, 4), (3, 5)], [2, 1, 1, 1, 6, 1]),  # a branched tree
])
def test_connected_sets_are_each_found_once(edges, sizes):
    adjacency = [set() for _ in sizes]
    for a, b in edges:
        adjacency[a].add(b)
        adjacency[b].add(a)
    found = list(connected_sets(sizes, adjacency, 2, 6))
    assert len(found) == len(set(found))
    assert set(found) == _brute_force(sizes, adjacency, 2, 6)


def test_rings_stay_whole_and_substituents_come_and_go():
    out = fragments(Chem.MolFromSmiles("Cc1ccccc1CCOC(C)=O"), FragmentConfig(3, 12))
    assert {"c1ccccc1", "Cc1ccccc1", "CCc1ccccc1C", "CCOC(C)=O", "COC(C)=O"} <= out
    for smiles in out:  # no ring is cut open: every fragment with a benzene carbon has all six
        mol = Chem.MolFromSmiles(smiles)
        aromatic = sum(a.GetIsAromatic() for a in mol.GetAtoms())
        assert aromatic in (0, 6), smiles


def test_an_aromatic_nitrogen_that_lost_its_substituent_gets_a_hydrogen():
    out = fragments(Chem.MolFromSmiles("CCn1ccnc1"), FragmentConfig(3, 12))
    assert "c1c[nH]cn1" in out and "CCn1ccnc1" in out


def test_size_elements_and_charge_limits():
    config = FragmentConfig(3, 6)
    out = fragments(Chem.MolFromSmiles("ClCCCCc1ccc(S)cc1CCN"), config)
    assert out, "some fragment fits"
    for smiles in out:
        mol = Chem.MolFromSmiles(smiles)
        assert 3 <= mol.GetNumHeavyAtoms() <= 6
        assert {a.GetSymbol() for a in mol.GetAtoms()} <= {"C", "N", "O", "F"}
        assert Chem.GetFormalCharge(mol) == 0
    with pytest.raises(ValueError, match="min_heavy"):
        FragmentConfig(5, 4)


def test_unique_fragments_keeps_first_appearance_and_skips_bad_smiles():
    out = list(unique_fragments(["CCOC(C)=O", "not((smiles", "CCOC(C)=O", "CCCOC(C)=O"]))
    assert len(out) == len(set(out))
    assert out.index("CCOC(C)=O") < out.index("CCCOC(C)=O")
