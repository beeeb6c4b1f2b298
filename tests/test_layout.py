"""The tree shows the flow: what playbooks are made of (`expressions/`, `playbooks/`) never imports what runs them
(the engine, replay, the playbook test runner)."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT

RUNNERS = ("recovery.engine", "recovery.replay", "recovery.testing")


def imported(path: str) -> set[str]:
    """Every module a source file imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(
    "path",
    sorted(
        str(p.relative_to(ROOT))
        for folder in ("expressions", "playbooks")
        for p in (ROOT / "recovery" / folder).glob("*.py")
    ),
)
def test_playbooks_and_expressions_do_not_import_their_runners(path: str) -> None:
    found = {name for name in imported(path) if name in RUNNERS or name.startswith(tuple(f"{r}." for r in RUNNERS))}
    assert found == set()
