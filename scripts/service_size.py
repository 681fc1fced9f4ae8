"""How long each service is: its description plus its hook, operator and sensor classes.

Prints two counts per service: code lines (cloc's convention: no blank, comment or docstring
lines) and all lines (``wc -l``). docs/design.md quotes them. Run: ``python scripts/service_size.py``.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "airflow_jobstatus"
#: A service's files: its description, then its thin hook, operator and sensor modules.
SERVICES = {
    "daily": ("services/daily.py", "hooks/daily.py", "operators/daily.py", "sensors/daily.py"),
    "wasabi_air": ("services/wasabi_air.py", "hooks/wasabi.py", "operators/wasabi.py", "sensors/wasabi.py"),
    "symbl": ("services/symbl.py", "hooks/symbl.py", "operators/symbl.py", "sensors/symbl.py"),
    "deepaffects": (
        "services/deepaffects.py",
        "hooks/deepaffects.py",
        "operators/deepaffects.py",
        "sensors/deepaffects.py",
    ),
}
SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def code_lines(source: str) -> int:
    """Lines holding a token that is not a comment or part of a docstring."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in SKIPPED and token.type != tokenize.ENDMARKER:
            lines.update(n for n in range(token.start[0], token.end[0] + 1) if n not in docstrings)
    return len(lines)


def main() -> None:
    print(f"{'service':<12} {'code lines':>10} {'all lines':>10}")
    for service, files in SERVICES.items():
        sources = [(PACKAGE / name).read_text() for name in files]
        code = sum(code_lines(source) for source in sources)
        total = sum(len(source.splitlines()) for source in sources)
        print(f"{service:<12} {code:>10} {total:>10}")


if __name__ == "__main__":
    main()
