"""What the layering tests share (`tests/har_core/test_architecture.py`, `tests/test_layout.py`): the modules a file
imports, read from its source, and the order a table of allowed imports stacks its parts in."""

from __future__ import annotations

import ast
from pathlib import Path


def imported_modules(path: Path) -> list[str]:
    """Every module an absolute import statement of `path` names, module level or inside a function."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and not node.level:
            names.append(node.module or "")
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def layer_order(allowed: dict[str, set[str]]) -> list[str]:
    """The parts of `allowed` (part -> the parts it may import), each after everything it stands on; a circle fails."""
    order: list[str] = []
    remaining = dict(allowed)
    while remaining:
        ready = [part for part, needs in remaining.items() if needs <= set(order)]
        assert ready, f"a circle among {sorted(remaining)}"
        order += ready
        for part in ready:
            del remaining[part]
    return order
