"""The package's layering, read from the source: the executor is a leaf below the domain,
and molpre's subpackages import each other without cycles (imports inside functions count)."""

from __future__ import annotations

import ast
from pathlib import Path

import molpre

ROOT = Path(molpre.__file__).resolve().parent
#: What the executor may import of molpre: itself and two dependency-free helpers.
EXECUTOR_MAY_IMPORT = ("molpre.executor", "molpre.errors", "molpre.runtime")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def molpre_imports(path: Path) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every molpre import in ``path``, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "molpre" \
                else [node.module]
            out += [(n, node.lineno) for n in names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import")
    return [(name, line) for name, line in out if name == "molpre" or name.startswith("molpre.")]


def unit(name: str) -> str | None:
    """The graph node of a module: its subpackage or top-level module (None: the root)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def import_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], list[str]]]:
    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], list[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        src = unit(module_name(path))
        for name, line in molpre_imports(path):
            dst = unit(name)
            if src and dst and dst != src:
                edges.setdefault(src, set()).add(dst)
                where.setdefault((src, dst), []).append(f"{path.relative_to(ROOT.parent)}:{line}")
    return edges, where


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_executor_imports_nothing_of_the_domain():
    files = sorted((ROOT / "executor").rglob("*.py"))
    assert len(files) >= 4
    bad = [f"{f.relative_to(ROOT.parent)}:{line} imports {name}" for f in files
           for name, line in molpre_imports(f) if not name.startswith(EXECUTOR_MAY_IMPORT)]
    assert not bad, "\n".join(bad)
    helpers = [ROOT / "errors.py", ROOT / "runtime.py"]  # and its helpers import no molpre
    assert not [n for f in helpers for n, _ in molpre_imports(f)]


def test_no_import_cycle_among_subpackages():
    edges, where = import_graph()
    assert {"chem", "qc", "data", "models", "train", "study", "workflow", "executor",
            "targets", "inference"} <= set(edges) | {d for ds in edges.values() for d in ds}
    report = []
    for component in cycles(edges):
        report.append(" <-> ".join(component))
        report += [f"  {a} -> {b}: {', '.join(where[(a, b)][:3])}" for a in component
                   for b in component if b in edges.get(a, ())]
    assert not report, "import cycles:\n" + "\n".join(report)


def test_the_graph_sees_imports_inside_functions(tmp_path):
    """The cycles this test guards against were closed by function-level imports."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from molpre.workflow.plan import Chunk\n    return Chunk\n")
    assert molpre_imports(source) == [("molpre.workflow.plan", 2)]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
