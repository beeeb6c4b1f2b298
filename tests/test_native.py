"""The optional compiled build (setup.py, `make compile`) and its guard against stale builds."""

from __future__ import annotations

import ast
import importlib
import os
import sys
import types
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from recovery import cli, native
from recovery.native import SHARED_LIBRARY, compiled_modules, stale_builds
from tests.conftest import ROOT

SUFFIX = EXTENSION_SUFFIXES[0]


def listed_in_setup() -> list[str]:
    """setup.py's COMPILED, as module names (read, not run: running setup.py builds)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "COMPILED" for t in node.targets):
            paths = ast.literal_eval(node.value)
            return [p.removesuffix(".py").replace("/", ".") for p in paths]
    raise AssertionError("setup.py has no COMPILED list")


def test_setup_lists_existing_modules() -> None:
    names = listed_in_setup()
    assert "recovery.engine.engine" in names
    for name in names:
        assert (ROOT / (name.replace(".", "/") + ".py")).is_file(), name


@pytest.mark.skipif(os.environ.get("RECOVERY_EXPECT_COMPILED") != "1", reason="runs where `make unit` compiled")
def test_the_listed_modules_run_compiled() -> None:
    """`make unit` sets RECOVERY_EXPECT_COMPILED: the suite then runs on the compiled modules, not beside them."""
    for name in listed_in_setup():
        importlib.import_module(name)
    assert set(listed_in_setup()) <= set(compiled_modules())


def make_package(root: Path) -> Path:
    """A checkout: the package's sources, and setup.py beside it."""
    package = root / "recovery"
    (package / "engine").mkdir(parents=True)
    for source in ("__init__.py", "engine/__init__.py", "engine/engine.py", "times.py"):
        (package / source).write_text("")
    (root / "setup.py").write_text("")
    return package


def set_mtime(path: Path, when: float) -> None:
    os.utime(path, (when, when))


def test_no_build_is_never_stale(tmp_path: Path) -> None:
    assert stale_builds(make_package(tmp_path)) == []


def test_a_build_older_than_any_source_is_stale(tmp_path: Path) -> None:
    package = make_package(tmp_path)
    for source in package.rglob("*.py"):
        set_mtime(source, 1_000)
    engine = package / "engine" / f"engine{SUFFIX}"
    shared = package / f"{SHARED_LIBRARY}{SUFFIX}"
    other_python = package / "engine" / "engine.cpython-99-x86_64-linux-gnu.so"
    for built in (engine, shared, other_python):
        built.write_bytes(b"")
        set_mtime(built, 2_000)
    assert stale_builds(package) == []
    set_mtime(package / "times.py", 3_000)  # a module that is not compiled, but that compiled ones import
    assert stale_builds(package) == sorted([engine, shared])  # another Python's build is not this one's concern
    set_mtime(engine, 4_000)
    assert stale_builds(package) == [shared]
    (tmp_path / "setup.py").unlink()  # an installed package: its files' times say nothing
    assert stale_builds(package) == []


def test_the_command_line_warns_of_a_stale_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / f"engine{SUFFIX}"
    monkeypatch.setattr(cli, "stale_builds", lambda: [stale])
    assert cli.main(["schema"]) == 0
    err = capsys.readouterr().err
    assert f"warning: compiled modules older than the sources: {stale}" in err and "make compile" in err
    monkeypatch.setattr(cli, "stale_builds", lambda: [])
    assert cli.main(["schema"]) == 0
    assert capsys.readouterr().err == ""


def test_compiled_modules_are_those_loaded_from_compiled_code(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = types.ModuleType("recovery.fake_compiled")
    compiled.__file__ = f"/x/recovery/fake_compiled{SUFFIX}"
    source = types.ModuleType("recovery.fake_source")
    source.__file__ = "/x/recovery/fake_source.py"
    outsider = types.ModuleType("recoveryx.fake")
    outsider.__file__ = f"/x/recoveryx/fake{SUFFIX}"
    for module in (compiled, source, outsider):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    found = compiled_modules()
    assert "recovery.fake_compiled" in found
    assert "recovery.fake_source" not in found and "recoveryx.fake" not in found


def test_describe_build_names_the_compiled_modules_or_says_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "compiled_modules", lambda: ["recovery.compiled__mypyc", "recovery.times"])
    assert native.describe_build() == "1 modules compiled by mypyc: recovery.times"
    monkeypatch.setattr(native, "compiled_modules", lambda: [])
    assert native.describe_build().startswith("pure Python")
