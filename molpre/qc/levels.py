"""Level of theory: everything that decides the numbers a label comes out with.

A level names how a label is made, by one of three engines:

* ``pyscf``: HF or any PySCF/libxc functional with a basis (``hf/sto-3g``,
  ``b3lyp/6-31g(2df,p)``): the expensive labels and the cheap ab initio ones;
* ``tblite``: the semi-empirical tight-binding methods ``gfn2-xtb`` and ``gfn1-xtb`` (about
  3.5 ms of one core for a QM9-sized molecule with its gradient);
* ``rdkit``: the force fields ``mmff94`` and ``mmff94s`` (relative energies; bonds perceived
  from the geometry).

All three give energies in eV and forces in eV/Angstrom (:func:`molpre.qc.compute`), are
content-keyed in the same label store and can be a label, a pretraining target or a delta
baseline. A level is written as one string: :func:`parse_level` reads ``gfn2-xtb``,
``mmff94`` or ``METHOD/BASIS``; :attr:`LevelOfTheory.tag` writes it back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from molpre.config import setting

#: Semi-empirical methods (tblite) by molpre name -> tblite's name.
XTB_METHODS = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB"}
#: Force fields (RDKit) by molpre name -> RDKit's MMFF variant.
FORCE_FIELDS = {"mmff94": "MMFF94", "mmff94s": "MMFF94s"}
#: The one default level of theory of labels (``LevelOfTheory()``, ``molpre label``, label
#: jobs): QM9's, B3LYP/6-31G(2df,p), with density fitting and grid 3 (DEFAULT_LABEL_LEVEL).
DEFAULT_METHOD, DEFAULT_BASIS = "b3lyp", "6-31g(2df,p)"

#: Fields that change the computed numbers; they enter the content key and the level string.
#: ``max_cycle``, ``time_limit_s`` and ``max_atoms`` only decide *whether* a label is made.
RESULT_FIELDS = ("method", "basis", "density_fit", "auxbasis", "grid_level", "cart", "conv_tol")


@dataclass(frozen=True)
class LevelOfTheory:
    """A level of theory plus the limits a labeling run enforces. ``LevelOfTheory()`` is
    the one default level of labels, B3LYP/6-31G(2df,p) (:data:`DEFAULT_LABEL_LEVEL`).

    Attributes:
        method: ``"HF"`` or any PySCF/libxc functional (``"b3lyp"``, ``"pbe0"``, ``"wb97x"``).
        basis: a PySCF basis name (``"sto-3g"``, ``"6-31g(2df,p)"``, ``"def2-svp"``).
        density_fit: density fitting (RI-J/K) on by default; it mostly speeds up gradients.
        auxbasis: auxiliary basis for density fitting; ``None`` lets PySCF choose.
        grid_level: DFT integration grid level (0-9), fixed for a whole dataset.
        cart: Cartesian shells (6D/10F) instead of spherical ones.
        conv_tol: SCF energy convergence threshold, Hartree.
        max_cycle: SCF iterations per step of the convergence ladder.
        time_limit_s: wall-clock limit per conformer, seconds (``None``: no limit).
        max_atoms: molecules with more atoms become error rows.
    """

    method: str = setting(
        DEFAULT_METHOD, help="HF or any PySCF/libxc functional (b3lyp, pbe0, wb97x, ...), or a "
        "cheap level: gfn2-xtb, gfn1-xtb (tblite), mmff94, mmff94s (RDKit), which ignore "
        "the basis. The default level is QM9's, B3LYP/6-31G(2df,p).")
    basis: str = setting(DEFAULT_BASIS, help="PySCF basis name.")
    density_fit: bool = setting(True, help="Density fitting (RI-J/K); on by default.")
    auxbasis: str | None = setting(None, help="Auxiliary basis for density fitting "
                                              "[PySCF's choice].")
    grid_level: int = setting(3, help="DFT grid level 0-9 (keep it fixed for a whole dataset).")
    cart: bool = setting(False, help="Cartesian shells (6D/10F) instead of spherical.")
    conv_tol: float = setting(1e-9, help="SCF convergence threshold (Hartree).")
    max_cycle: int = setting(100, help="SCF iterations per step of the convergence ladder "
                                       "(DIIS, damping+shift, newton).")
    time_limit_s: float | None = setting(
        None, flags=("--time-limit",), help="Wall-clock seconds per conformer, checked in the "
        "SCF; a conformer still running 10 s later is killed. Overruns become error rows.")
    max_atoms: int = setting(60, help="Larger molecules become error rows.")

    def __post_init__(self) -> None:
        if not self.method.strip() or not self.basis.strip():
            raise ValueError("method and basis must be non-empty")
        if self.max_cycle < 1:
            raise ValueError(f"max_cycle must be >= 1, got {self.max_cycle}")
        if self.max_atoms < 1:
            raise ValueError(f"max_atoms must be >= 1, got {self.max_atoms}")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise ValueError(f"time_limit_s must be > 0, got {self.time_limit_s}")
        if not 0 <= self.grid_level <= 9:
            raise ValueError(f"grid_level must be in 0..9, got {self.grid_level}")

    @property
    def engine(self) -> str:
        """``"tblite"`` (GFN-xTB), ``"rdkit"`` (MMFF) or ``"pyscf"`` (everything else)."""
        name = self.method.strip().lower()
        if name in XTB_METHODS:
            return "tblite"
        if name in FORCE_FIELDS:
            return "rdkit"
        return "pyscf"

    @property
    def is_hf(self) -> bool:
        """True for Hartree-Fock (no exchange-correlation functional, no grid)."""
        return self.method.strip().lower() in ("hf", "rhf", "uhf")

    @property
    def tag(self) -> str:
        """Short level string stored with every row, e.g. ``b3lyp/6-31g(2df,p)/df/grid3``
        (``gfn2-xtb``, ``mmff94``: a non-PySCF level is its method alone)."""
        if self.engine != "pyscf":
            return self.method.strip().lower()
        parts = [self.method.lower(), self.basis.lower()]
        if self.density_fit:
            parts.append(f"df:{self.auxbasis.lower()}" if self.auxbasis else "df")
        if not self.is_hf:
            parts.append(f"grid{self.grid_level}")
        if self.cart:
            parts.append("cart")
        if self.conv_tol != 1e-9:
            parts.append(f"tol{self.conv_tol:g}")
        return "/".join(parts)

    def result_fields(self) -> dict:
        """The fields that change the numbers (content-key input); grid only for DFT; the
        method alone for a non-PySCF level."""
        if self.engine != "pyscf":
            return {"method": self.method.strip().lower()}
        out = {name: getattr(self, name) for name in RESULT_FIELDS}
        out["method"] = self.method.lower()
        out["basis"] = self.basis.lower()
        if self.is_hf:
            out.pop("grid_level")
        return out

    def to_dict(self) -> dict:
        """All fields as a plain dict (for logs and configs)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> LevelOfTheory:
        """Build from a dict: unknown keys and wrong types are ConfigErrors (ValueErrors)
        naming the key (:func:`molpre.config.from_dict`)."""
        from molpre.config import from_dict

        return from_dict(cls, values)

    def with_limits(self, **changes) -> LevelOfTheory:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return replace(self, **changes)


#: The tag of the default level: ``b3lyp/6-31g(2df,p)/df/grid3``.
DEFAULT_LABEL_LEVEL = LevelOfTheory().tag


class LevelError(ValueError):
    """An unknown functional or basis name, or an engine that is not installed."""


def parse_level(text: str | LevelOfTheory, **limits) -> LevelOfTheory:
    """The level named by ``text``: ``gfn2-xtb``, ``gfn1-xtb``, ``mmff94``, ``mmff94s`` or
    ``METHOD/BASIS[/df|/df:AUX][/gridN][/cart][/tolX]`` (the inverse of
    :attr:`LevelOfTheory.tag`, so a bare ``METHOD/BASIS`` means no density fitting and
    ``hf/sto-3g/df`` asks for it). ``limits`` (max_atoms, time_limit_s, ...) are set on the result.
    LevelError for text that names no level."""
    if isinstance(text, LevelOfTheory):
        return replace(text, **limits) if limits else text
    name = str(text).strip().lower()
    if name in XTB_METHODS or name in FORCE_FIELDS:
        return LevelOfTheory(method=name, **limits)
    parts = name.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        known = sorted(XTB_METHODS) + sorted(FORCE_FIELDS) + ["METHOD/BASIS (hf/sto-3g)"]
        raise LevelError(f"cannot read a level of theory from {text!r}: use one of {known}")
    fields: dict = {"method": parts[0], "basis": parts[1], "density_fit": False}
    for part in parts[2:]:
        if part == "df" or part.startswith("df:"):
            fields["density_fit"] = True
            fields["auxbasis"] = part[3:] or None
        elif part.startswith("grid") and part[4:].isdigit():
            fields["grid_level"] = int(part[4:])
        elif part == "cart":
            fields["cart"] = True
        elif part.startswith("tol"):
            try:
                fields["conv_tol"] = float(part[3:])
            except ValueError:
                raise LevelError(f"{text!r}: bad tolerance {part!r}") from None
        else:
            raise LevelError(f"cannot read a level of theory from {text!r}: unknown part {part!r}")
    try:
        return LevelOfTheory(**fields, **limits)
    except ValueError as err:
        raise LevelError(f"{text!r}: {err}") from None


def validate_level(level: LevelOfTheory) -> None:
    """Raise LevelError naming an unknown functional or basis, or a missing engine (imports
    PySCF or tblite)."""
    import warnings

    if level.engine == "tblite":
        try:
            import tblite.interface  # noqa: F401
        except ImportError:
            raise LevelError(f"{level.method} needs tblite (Linux x86-64 wheels: pip install "
                             "tblite); use mmff94 or a PySCF level elsewhere") from None
        return
    if level.engine == "rdkit":
        return
    from pyscf import gto

    if not level.is_hf:
        from pyscf.dft import libxc

        try:
            libxc.parse_xc(level.method)
        except Exception as err:
            raise LevelError(f"unknown method {level.method!r}: use HF or a PySCF/libxc "
                             f"functional name ({err})") from None
    for symbol in ("H", "C", "O", "Si", "Fe"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if gto.basis.load(level.basis, symbol):
                    return
            except Exception:
                continue
    raise LevelError(f"unknown basis {level.basis!r} (not in PySCF's basis library)")
