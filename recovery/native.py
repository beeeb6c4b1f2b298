"""Which of recovery's modules run compiled (mypyc: setup.py lists them, `make compile` builds them in the tree),
and whether a build in the tree still matches the sources."""

from __future__ import annotations

import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SHARED_LIBRARY = "compiled__mypyc"
"""The library the compiled modules share (setup.py's `group_name`, "recovery.compiled"), in the package."""


def compiled_modules() -> list[str]:
    """The recovery modules this process has loaded from compiled code."""
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if (name == "recovery" or name.startswith("recovery."))
        and str(getattr(module, "__file__", None) or "").endswith(tuple(EXTENSION_SUFFIXES))
    )


def describe_build() -> str:
    """One line for reports: which modules run compiled, or that recovery runs as pure Python."""
    compiled = [name for name in compiled_modules() if not name.endswith("__mypyc")]
    if not compiled:
        return "pure Python (no compiled modules loaded; `make compile` builds them)"
    return f"{len(compiled)} modules compiled by mypyc: {', '.join(compiled)}"


def stale_builds(package: Path = PACKAGE) -> list[Path]:
    """This Python's compiled modules in `package` (their shared library with them) that are older than one of its
    sources: edited since the build, which Python would still import in place of the source.

    Only in a source checkout (setup.py beside the package, as `make compile` builds): an installed package's
    files all date from its installation, written in no particular order, so their times say nothing."""
    if not (package.parent / "setup.py").is_file():
        return []
    suffix = EXTENSION_SUFFIXES[0]  # this interpreter's own tag: another Python's builds are not imported
    built = list(package.rglob(f"*{suffix}"))
    if not built:
        return []
    newest = max(source.stat().st_mtime for source in package.rglob("*.py"))
    return sorted(path for path in built if path.stat().st_mtime < newest)
