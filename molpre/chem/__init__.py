"""Molecule intake: read, standardize, key and embed molecules (RDKit), streamed at scale.

Public API::

    read_molecules(path, smiles_col=None) -> Iterator[MoleculeRecord]
    records_from_smiles(items) / record_from_smiles(smiles, mol_id) / record_from_mol(mol, mol_id)
    embed_conformers(record, n, seed) -> list[ase.Atoms]    (raises ConformerError)
    conformer_stream(records, n, seed, workers) -> Iterator[ConformerOutcome]
    default_corpus() -> Iterator[(mol_id, smiles)]
    ConformerWriter(out) / write_frame(handle, atoms)        (extxyz + OUT.errors.csv)
"""

from molpre.chem.conformers import ConformerConfig, ConformerError, embed_conformers
from molpre.chem.corpus import corpus_path, default_corpus
from molpre.chem.molecules import (
    DEFAULT_ELEMENTS,
    IntakeConfig,
    MoleculeError,
    MoleculeRecord,
    record_from_mol,
    record_from_smiles,
    records_from_smiles,
    standardize,
)
from molpre.chem.readers import InputError, read_molecules
from molpre.chem.stream import ConformerOutcome, conformer_stream
from molpre.chem.writer import ConformerWriter, errors_path, write_frame
from molpre.chem.xyz import geometry_problem, mol_from_atoms

__all__ = [
    "DEFAULT_ELEMENTS", "ConformerConfig", "ConformerError", "ConformerOutcome",
    "ConformerWriter", "InputError", "IntakeConfig", "MoleculeError", "MoleculeRecord",
    "conformer_stream", "corpus_path", "default_corpus", "embed_conformers", "errors_path",
    "geometry_problem", "mol_from_atoms", "read_molecules", "record_from_mol",
    "record_from_smiles", "records_from_smiles", "standardize", "write_frame",
]
