"""Molecule records: standardize an RDKit molecule and give it its keys.

Every input row becomes one :class:`MoleculeRecord`. A record is either ok (``mol`` is the
standardized molecule) or an error row (``mol`` is None and ``error`` says why); nothing is
dropped silently and nothing is "fixed" behind the user's back beyond the documented steps:

1. sanitize (RDKit's valence/aromaticity checks; the error message becomes the reason),
2. keep the largest fragment (strips salts and solvents: ``CC(=O)[O-].[Na+]`` -> acetate),
3. optionally neutralize (RDKit's Uncharger; off by default, so charged species keep their charge),
4. reject unsupported elements, radicals and molecules over the size limits.

Molecules with a 3D conformer (XYZ, 3D SDF) keep it, with hydrogens made explicit at
chemically placed coordinates; all others are stored as graphs without explicit hydrogens.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import click
from rdkit import Chem, rdBase
from rdkit.Chem import Descriptors, rdMolDescriptors
from rdkit.Chem.MolStandardize import rdMolStandardize

from molpre.config import setting
from molpre.errors import first_line

#: Default supported elements. These are the elements of the drug-like and QM9-like molecules
#: molpre pretrains and labels on. Br, I, P, Si and metals are deliberately not added: they are
#: rare in the corpora (MOSES has <2% Br), they cost far more per PySCF label (more electrons,
#: scalar-relativistic effects for I, no reliable minimal-basis behaviour for metals) and the
#: finetuning targets (QM9: H, C, N, O, F) never contain them. Pass ``elements=`` to widen.
DEFAULT_ELEMENTS: tuple[str, ...] = ("H", "C", "N", "O", "F", "S", "Cl")


class MoleculeError(ValueError):
    """A molecule that cannot be accepted; ``str(err)`` is the one-line reason."""


class ElementList(click.ParamType):
    """A command-line list of element symbols, ``H,C,N,O`` -> ``("H", "C", "N", "O")``."""

    name = "SYMBOLS"

    def convert(self, value, param, ctx):
        if isinstance(value, (tuple, list)):
            return tuple(value)
        symbols = tuple(s.strip() for s in str(value).split(",") if s.strip())
        if not symbols:
            self.fail("give at least one element symbol, e.g. H,C,N,O", param, ctx)
        try:
            IntakeConfig(elements=symbols).atomic_numbers()
        except MoleculeError as err:
            self.fail(str(err), param, ctx)
        return symbols


@dataclass(frozen=True)
class IntakeConfig:
    """What the intake accepts.

    elements: allowed element symbols. max_heavy_atoms / max_atoms: size limits (the second
    counts hydrogens too; None: twice max_heavy_atoms), so a 300-atom input is an error row,
    never a long embedding. neutralize: run RDKit's Uncharger. allow_radicals: accept
    open-shell molecules (their spin multiplicity is then 1 + unpaired electrons; off because
    MMFF94 is a closed-shell force field).
    """

    elements: tuple[str, ...] = setting(
        DEFAULT_ELEMENTS, click_type=ElementList(),
        help="Comma-separated elements to accept; others become error rows.")
    max_heavy_atoms: int = setting(100, click_type=click.IntRange(min=1),
                                   help="Larger molecules become error rows.")
    max_atoms: int | None = setting(None, click_type=click.IntRange(min=1),
                                    help="Most atoms, hydrogens included [default: twice "
                                         "--max-heavy-atoms].")
    neutralize: bool = setting(False, flags=("--neutralize/--keep-charges",),
                               help="Neutralize charged molecules with RDKit's Uncharger.")
    allow_radicals: bool = setting(False, help="Accept open-shell molecules.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(self.elements))
        if self.max_atoms is None:
            object.__setattr__(self, "max_atoms", 2 * self.max_heavy_atoms)
        if self.max_heavy_atoms < 1 or self.max_atoms < 1:
            raise ValueError("max_heavy_atoms and max_atoms must be >= 1")

    def atomic_numbers(self) -> frozenset[int]:
        """The allowed elements as atomic numbers (raises MoleculeError on unknown symbols)."""
        table = Chem.GetPeriodicTable()
        numbers = set()
        for symbol in self.elements:
            try:
                numbers.add(table.GetAtomicNumber(symbol.strip().capitalize()))
            except RuntimeError:
                raise MoleculeError(f"unknown element symbol {symbol!r}") from None
        return frozenset(numbers)


@dataclass
class MoleculeRecord:
    """One input row, standardized (``ok``) or rejected (``error`` holds the reason).

    row: 1-based position among the input's records; input: the raw text of the row (SMILES,
    SDF name or XYZ frame label); charge: formal charge (e); spin: multiplicity 2S+1.
    """

    row: int
    input: str
    mol_id: str
    mol: Chem.Mol | None = None
    smiles: str = ""
    inchikey: str = ""
    formula: str = ""
    charge: int = 0
    spin: int = 1
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the molecule was accepted."""
        return self.error is None and self.mol is not None

    @property
    def has_geometry(self) -> bool:
        """True when the standardized molecule carries a given 3D geometry (XYZ, 3D SDF)."""
        return self.ok and self.mol.GetNumConformers() > 0


def error_record(row: int, input: str, mol_id: str, reason: str) -> MoleculeRecord:
    """An error row (nothing else to fill in)."""
    return MoleculeRecord(row=row, input=input, mol_id=mol_id, error=reason)


def _sanitized(mol: Chem.Mol) -> Chem.Mol:
    mol = Chem.Mol(mol)
    if mol.GetNumAtoms() == 0:
        raise MoleculeError("empty molecule (no atoms)")
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises several exception types here
        raise MoleculeError(f"sanitization failed: {first_line(exc)}") from None
    if not (mol.GetNumConformers() and mol.GetConformer().Is3D()):
        Chem.AssignStereochemistry(mol, cleanIt=True, force=True)  # parsed unsanitized
    return mol


def _largest_fragment(mol: Chem.Mol, notes: list[str]) -> Chem.Mol:
    if len(Chem.GetMolFrags(mol)) == 1:
        return mol
    chosen = rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(mol)
    notes.append(f"kept largest fragment of {len(Chem.GetMolFrags(mol))}")
    return chosen


def _check(mol: Chem.Mol, config: IntakeConfig) -> None:
    allowed = config.atomic_numbers()
    bad = sorted({a.GetSymbol() for a in mol.GetAtoms() if a.GetAtomicNum() not in allowed})
    if bad:
        raise MoleculeError(f"unsupported element(s): {', '.join(bad)}")
    unpaired = Descriptors.NumRadicalElectrons(mol)
    if unpaired and not config.allow_radicals:
        raise MoleculeError(f"radical: {unpaired} unpaired electron(s); only closed shells")
    heavy = mol.GetNumHeavyAtoms()
    total = mol.GetNumAtoms() + sum(a.GetTotalNumHs() for a in mol.GetAtoms())
    if heavy > config.max_heavy_atoms:
        raise MoleculeError(f"too large: {heavy} heavy atoms > {config.max_heavy_atoms}")
    if total > config.max_atoms:
        raise MoleculeError(f"too large: {total} atoms > {config.max_atoms}")


def standardize(mol: Chem.Mol, config: IntakeConfig | None = None,
                notes: list[str] | None = None) -> Chem.Mol:
    """Sanitize, keep the largest fragment, optionally neutralize, and check ``mol``.

    Returns a new molecule (the input is not modified); raises MoleculeError with the reason.
    A molecule with a 3D conformer keeps it, with all hydrogens explicit and placed.
    """
    config = config or IntakeConfig()
    notes = notes if notes is not None else []
    with rdBase.BlockLogs():
        out = _largest_fragment(_sanitized(mol), notes)
        if config.neutralize:
            out = rdMolStandardize.Uncharger().uncharge(out)
            Chem.SanitizeMol(out)
        _check(out, config)
        if out.GetNumConformers() and out.GetConformer().Is3D():
            Chem.AssignStereochemistryFrom3D(out)
            return Chem.AddHs(out, addCoords=True)
        out = Chem.RemoveHs(out, sanitize=True)
        out.RemoveAllConformers()
        return out


def record_from_mol(mol: Chem.Mol | None, mol_id: str, *, row: int = 1, input: str | None = None,
                    config: IntakeConfig | None = None) -> MoleculeRecord:
    """Standardize an RDKit molecule into a record (an error record when it is rejected)."""
    text = input if input is not None else mol_id
    if mol is None:
        return error_record(row, text, mol_id, "no molecule (RDKit could not read it)")
    notes: list[str] = []
    try:
        std = standardize(mol, config, notes)
    except MoleculeError as exc:
        return error_record(row, text, mol_id, str(exc))
    with rdBase.BlockLogs():
        graph = Chem.RemoveHs(std)
        inchikey = Chem.MolToInchiKey(graph) or ""
    return MoleculeRecord(
        row=row, input=text, mol_id=mol_id, mol=std, smiles=Chem.MolToSmiles(graph),
        inchikey=inchikey, formula=rdMolDescriptors.CalcMolFormula(std),
        charge=Chem.GetFormalCharge(std), spin=Descriptors.NumRadicalElectrons(std) + 1,
        notes=notes,
    )


def record_from_smiles(smiles: str, mol_id: str, *, row: int = 1,
                       config: IntakeConfig | None = None) -> MoleculeRecord:
    """Parse and standardize one SMILES (an error record for empty or unparsable text)."""
    text = smiles.strip()
    if not text:
        return error_record(row, smiles, mol_id, "empty SMILES")
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(text, sanitize=False)
    if mol is None:
        return error_record(row, smiles, mol_id, "invalid SMILES (RDKit could not parse it)")
    return record_from_mol(mol, mol_id, row=row, input=smiles, config=config)


def records_from_smiles(items: Iterable[str | tuple[str, str]],
                        config: IntakeConfig | None = None) -> Iterator[MoleculeRecord]:
    """Records for SMILES strings or ``(mol_id, smiles)`` pairs, lazily and in order.

    Bare strings get ids ``mol-<row>`` (row is 1-based).
    """
    for row, item in enumerate(items, start=1):
        mol_id, smiles = (f"mol-{row}", item) if isinstance(item, str) else item
        yield record_from_smiles(smiles, str(mol_id), row=row, config=config)
