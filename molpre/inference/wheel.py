"""A wheel of the running molpre, built from its own files, to ship inside a model artifact.

``molpre==<version>`` is on no package index, so a pyfunc whose requirements name it cannot
have its environment built by ``mlflow models serve``. :func:`build_wheel` zips the imported
``molpre`` package (the code that trained the model) with a ``.dist-info`` (METADATA with
its dependencies, WHEEL, entry points, RECORD with sha256 hashes), offline and in well under
a second; the pyfunc's requirements then point at the file inside the artifact.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

WHEEL_TAG = "py3-none-any"
SKIP_DIRS = {"__pycache__"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


def wheel_name(version: str) -> str:
    return f"molpre-{version}-{WHEEL_TAG}.whl"


def build_wheel(dest_dir: str | Path) -> Path:
    """Write ``molpre-<version>-py3-none-any.whl`` of the imported package into ``dest_dir``."""
    import molpre

    version = molpre.__version__
    package = Path(molpre.__file__).resolve().parent
    dest = Path(dest_dir) / wheel_name(version)
    dest.parent.mkdir(parents=True, exist_ok=True)
    info = f"molpre-{version}.dist-info"
    files = {f"molpre/{p.relative_to(package).as_posix()}": p.read_bytes()
             for p in sorted(package.rglob("*")) if _shipped(p, package)}
    files[f"{info}/METADATA"] = _metadata(version).encode()
    files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: molpre.inference.wheel\n"
                              f"Root-Is-Purelib: true\nTag: {WHEEL_TAG}\n").encode()
    files[f"{info}/entry_points.txt"] = b"[console_scripts]\nmolpre = molpre.cli:main\n"
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return dest


def _shipped(path: Path, package: Path) -> bool:
    rel = path.relative_to(package)
    return (path.is_file() and not SKIP_DIRS & set(rel.parts)
            and path.suffix not in SKIP_SUFFIXES)


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _metadata(version: str) -> str:
    """The installed distribution's METADATA headers (its dependencies), else a minimal one."""
    import importlib.metadata

    try:
        text = importlib.metadata.distribution("molpre").read_text("METADATA") or ""
    except importlib.metadata.PackageNotFoundError:
        text = ""
    headers = [line for line in text.split("\n\n", 1)[0].splitlines()
               if not line.startswith(("Version:", "Name:", "Metadata-Version:"))]
    return "\n".join(["Metadata-Version: 2.1", "Name: molpre", f"Version: {version}",
                      *headers]) + "\n"
