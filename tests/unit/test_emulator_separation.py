"""The emulator is its own distribution and stands apart from the provider (issue 15 item 5).

* no module of ``jobstatus_emulator`` imports ``airflow_jobstatus`` (nor Airflow): it is written
  from the services' docs, not from the code it tests;
* no module of ``airflow_jobstatus`` imports ``jobstatus_emulator``, so there is no import circle;
* the provider's package list (pyproject's ``packages.find``) does not pick up the emulator.

Imports are read from the source (the AST of every module, including imports inside functions
and ``TYPE_CHECKING`` blocks), so nothing is imported to check them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import setuptools

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli below 3.11
    import tomli as tomllib

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PROVIDER = REPO / "airflow_jobstatus"
EMULATOR = REPO / "emulator" / "src" / "jobstatus_emulator"


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (``import a.b`` and ``from a.b import c``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offending_imports(package: Path, forbidden: tuple[str, ...]) -> list[str]:
    modules = sorted(package.rglob("*.py"))
    assert modules, f"no modules under {package}"
    return [
        f"{path.relative_to(REPO)} imports {name}"
        for path in modules
        for name in sorted(imported_modules(path))
        if name.split(".")[0] in forbidden
    ]


def test_imported_modules_sees_every_form_of_import(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import os\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from airflow_jobstatus.hooks import base\n"
        "def f():\n"
        "    import airflow.models\n"
        "from . import sibling\n"
    )
    assert imported_modules(source) == {"os", "typing", "airflow_jobstatus.hooks", "airflow.models"}


def test_emulator_imports_nothing_from_the_provider_or_airflow() -> None:
    assert offending_imports(EMULATOR, ("airflow_jobstatus", "airflow")) == []


def test_provider_does_not_import_the_emulator() -> None:
    assert offending_imports(PROVIDER, ("jobstatus_emulator",)) == []


def test_provider_package_list_leaves_the_emulator_out() -> None:
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = setuptools.find_namespace_packages(str(REPO), include=find["include"])
    assert "airflow_jobstatus" in packages
    assert [p for p in packages if "emulator" in p] == []
