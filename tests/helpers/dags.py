"""Write a DAG file into the test DAGs folder and import it, as dag.test() needs."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from typing import Any


def load_dag(folder: Path, dag_id: str, source: str) -> Any:
    """Write ``source`` as ``<folder>/<dag_id>.py``, import it, return its module-level ``dag``."""
    path = folder / f"{dag_id}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(f"jobstatus_it_{dag_id}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag
