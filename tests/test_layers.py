"""Imports follow the flow of the data: a module imports only from its own layer or the layers before it.

The layers, first to last (README, "Layout"): what everything shares; settings; the event and effect contracts; the
expression language; playbooks; the store; the engine; the tools that run the engine over a file (replay, the
playbook tests, the backtest, explain); the loss report; metrics and health; the outbox; the service loop; the task
lifecycle; the API; the HTTP side; the simulator; the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "recovery"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("", "exceptions", "times", "native", "runtime", "logs"),
    ("config",),
    ("events", "effects", "catalog"),
    ("expressions",),
    ("playbooks",),
    ("store",),
    ("engine",),
    ("replay", "testing", "backtest", "explain"),
    ("report",),
    ("metrics", "health", "live"),
    ("outbox",),
    ("consumer",),
    ("lifecycle",),
    ("api",),
    ("http",),
    ("simulate",),
    ("cli",),
)
LAYER = {name: n for n, names in enumerate(LAYERS) for name in names}


def room(module: str) -> str:
    """`recovery.store.sqlite` -> `store`; `recovery` -> `` (the package's face)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """The `recovery` modules a file imports (at any depth: functions, TYPE_CHECKING blocks), with their lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "recovery"]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import"
            if node.module and node.module.split(".")[0] == "recovery":
                found.append((node.lineno, node.module))
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    rooms = {room(module_name(path)) for path in SOURCES}
    assert rooms - set(LAYER) == set(), "place the new module in LAYERS (and in the README's layout)"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_imports_a_later_layer(path: Path) -> None:
    mine = room(module_name(path))
    later = [
        f"{path.relative_to(ROOT)}:{line}: {mine or 'recovery'} (layer {LAYER[mine]}) imports {target} "
        f"(layer {LAYER[room(target)]})"
        for line, target in imports(path)
        if LAYER[room(target)] > LAYER[mine]
    ]
    assert later == []


@pytest.mark.parametrize("path", sorted((PACKAGE / "engine").glob("*.py")), ids=lambda p: p.name)
def test_the_engine_knows_the_store_by_its_protocols_only(path: Path) -> None:
    concrete = [
        f"{path.relative_to(ROOT)}:{line}: {target}"
        for line, target in imports(path)
        if room(target) == "store"
        and target not in ("recovery.store.base", "recovery.store.records", "recovery.store.fact_records")
    ]
    assert concrete == []


def test_the_check_sees_an_import_against_the_flow(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from recovery.http import create_app\n")
    assert imports(sample) == [(2, "recovery.http")]
    assert LAYER[room("recovery.http")] > LAYER[room("recovery.engine.engine")]
