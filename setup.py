"""The optional native build: with RECOVERY_COMPILE=1, mypyc compiles the modules every event runs through.

Everything else (metadata, dependencies, packages) is in pyproject.toml. Without RECOVERY_COMPILE=1 the package is
pure Python, and behaves the same: `make test` runs the suite compiled on Python 3.11 and pure on 3.12.

    RECOVERY_COMPILE=1 python setup.py build_ext --inplace   # in the tree (what `make compile` does)
    RECOVERY_COMPILE=1 pip wheel --no-build-isolation .      # a wheel (mypy and setuptools installed first)
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILED = [
    "recovery/engine/actions.py",
    "recovery/engine/cases.py",
    "recovery/engine/deadlines.py",
    "recovery/engine/engine.py",
    "recovery/engine/plans.py",
    "recovery/engine/state.py",
    "recovery/engine/stats.py",
    "recovery/expressions/context.py",
    "recovery/expressions/patterns.py",
    "recovery/expressions/templates.py",
    "recovery/replay.py",
    "recovery/store/memory.py",
    "recovery/store/memory_task_desk.py",
    "recovery/times.py",
]
"""The hot path of `recovery replay` and `serve`, compiled to C by mypyc. Other modules are imported by them as
Python, as they are."""


def ext_modules() -> list[object]:
    if os.environ.get("RECOVERY_COMPILE", "") != "1":
        return []
    from mypyc.build import mypycify

    return list(mypycify(COMPILED, opt_level="3", group_name="recovery.compiled"))


setup(ext_modules=ext_modules())
