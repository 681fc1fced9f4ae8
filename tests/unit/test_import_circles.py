"""No import circles (issue 15): within the provider and within the emulator, imports point one way.

Imports are read from the source (every ``import``/``from ... import`` in the AST, including those
inside functions and ``TYPE_CHECKING`` blocks, since a circle of type hints is still a circle of
design), so nothing is imported to check them. ``from a.b import c`` ties to module ``a.b.c`` when
that is a module, else to ``a.b``; the parents a name passes through (``a/__init__.py``) are not
counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PROVIDER = REPO / "airflow_jobstatus"
EMULATOR = REPO / "emulator" / "src" / "jobstatus_emulator"


def module_name(package: Path, path: Path) -> str:
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports."""
    modules = {module_name(package, path): path for path in sorted(package.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, one level up per extra dot
                    package_parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    anchor = package_parts[: len(package_parts) - (node.level - 1)]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_circles_finds_type_hint_and_function_level_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import C\n"
    )
    (package / "c.py").write_text("def f():\n    from .a import x\n")
    (package / "d.py").write_text("import pkg.a\n")
    (package / "sub" / "e.py").write_text("from .. import d\nfrom . import b\n")
    graph = import_graph(package)
    assert graph["pkg.d"] == {"pkg.a"}
    assert graph["pkg.sub.e"] == {"pkg.d", "pkg.sub.b"}
    assert circles(graph) == [{"pkg.a", "pkg.sub.b", "pkg.c"}]


def test_the_emulator_has_no_import_circle() -> None:
    assert circles(import_graph(EMULATOR)) == []


def test_the_provider_has_no_import_circle() -> None:
    assert [sorted(circle) for circle in circles(import_graph(PROVIDER))] == []
