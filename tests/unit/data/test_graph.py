import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate, edges_paired, radius_graph


def _brute_force(pos, cutoff):
    pairs = set()
    for i in range(len(pos)):
        for j in range(len(pos)):
            if i != j and np.linalg.norm(pos[i] - pos[j]) <= cutoff:
                pairs.add((j, i))
    return pairs


@pytest.mark.parametrize("cutoff", [0.5, 1.2, 2.5, 10.0])
def test_radius_graph_matches_brute_force(cutoff):
    pos = np.random.default_rng(0).uniform(0, 4, size=(25, 3))
    edges = radius_graph(torch.tensor(pos), cutoff)
    found = {(int(s), int(r)) for s, r in edges.T}
    assert found == _brute_force(pos, cutoff)
    assert edges.shape[1] == len(found) and edges.dtype == torch.long


def test_radius_graph_respects_batch_and_empty_input():
    pos = torch.zeros(4, 3)
    edges = radius_graph(pos, 1.0, batch=torch.tensor([0, 0, 1, 1]))
    assert {(int(s), int(r)) for s, r in edges.T} == {(0, 1), (1, 0), (2, 3), (3, 2)}
    assert radius_graph(torch.zeros(0, 3), 1.0).shape == (2, 0)


def test_atoms_to_sample_keys_dtypes_and_labels():
    atoms = molecule("H2O")
    atoms.info["charge"] = -1
    forces = np.arange(9.0).reshape(3, 3)
    s = atoms_to_sample(atoms, 5.0, energy=-2000.123456789, forces=forces)
    assert s[keys.POSITIONS].dtype == torch.float32 and s[keys.POSITIONS].shape == (3, 3)
    assert s[keys.ATOMIC_NUMBERS].tolist() == [8, 1, 1]
    assert s[keys.EDGE_INDEX].shape == (2, 6)
    assert s[keys.NUM_ATOMS].tolist() == [3] and s[keys.CHARGE].tolist() == [-1]
    assert s[keys.ENERGY].dtype == torch.float64 and s[keys.ENERGY].item() == -2000.123456789
    assert torch.equal(s[keys.FORCES], torch.tensor(forces, dtype=torch.float32))
    with pytest.raises(ValueError, match="forces must have shape"):
        atoms_to_sample(atoms, 5.0, forces=np.zeros((2, 3)))


def test_collate_offsets_edges_and_concatenates():
    samples = [atoms_to_sample(molecule(n), 3.0, energy=float(k)) for k, n in enumerate(["H2O", "CH4", "NH3"])]
    batch = collate(samples)
    assert batch[keys.NUM_GRAPHS] == 3
    assert batch[keys.BATCH].tolist() == [0] * 3 + [1] * 5 + [2] * 4
    assert batch[keys.NUM_ATOMS].tolist() == [3, 5, 4]
    assert batch[keys.ENERGY].tolist() == [0.0, 1.0, 2.0]
    assert batch[keys.POSITIONS].shape == (12, 3)
    expected = torch.cat([samples[0][keys.EDGE_INDEX], samples[1][keys.EDGE_INDEX] + 3,
                          samples[2][keys.EDGE_INDEX] + 8], dim=1)
    assert torch.equal(batch[keys.EDGE_INDEX], expected)
    # every edge stays inside its molecule
    src, dst = batch[keys.EDGE_INDEX]
    assert torch.equal(batch[keys.BATCH][src], batch[keys.BATCH][dst])


def test_collate_single_atom_and_empty_list():
    batch = collate([atoms_to_sample(Atoms("H", positions=[[0, 0, 0]]), 5.0)])
    assert batch[keys.EDGE_INDEX].shape == (2, 0) and batch[keys.BATCH].tolist() == [0]
    with pytest.raises(ValueError):
        collate([])


def test_radius_graph_puts_both_directions_of_a_pair_side_by_side_and_collate_keeps_them():
    pos = np.random.default_rng(1).uniform(0, 3, size=(12, 3))
    edges = radius_graph(torch.tensor(pos), 2.0)
    assert edges.shape[1] > 0 and edges_paired(edges)
    assert torch.equal(edges[:, 0::2], edges[[1, 0]][:, 1::2])
    assert bool((edges[0, 0::2] < edges[1, 0::2]).all())  # each pair once, i < j first
    batch = collate([atoms_to_sample(molecule(n), 3.0) for n in ("H2O", "CH3CH2OH", "NH3")])
    assert edges_paired(batch[keys.EDGE_INDEX])


def test_edges_paired_is_false_for_any_other_order():
    edges = radius_graph(torch.tensor(np.random.default_rng(2).uniform(0, 3, size=(10, 3))), 2.5)
    assert not edges_paired(edges[:, 1:])  # odd count
    assert not edges_paired(edges[:, torch.argsort(edges[1] * 100 + edges[0])])  # receiver order
    assert not edges_paired(torch.tensor([[0, 1], [1, 2]]))
    assert edges_paired(torch.zeros(2, 0, dtype=torch.long))
