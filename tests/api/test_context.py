"""A request's store session: commit on success, roll back on failure, and the connection closed either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from recovery.api import ApiContext
from recovery.config import Settings
from recovery.exceptions import StoreError
from recovery.lifecycle import Catalog


class Recorder:
    """A store that records the calls a session makes, and fails the ones named in `failing`."""

    def __init__(self, *failing: str) -> None:
        self.failing = failing
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.failing:
            raise StoreError(f"{name} failed")

    def commit(self) -> None:
        self._call("commit")

    def rollback(self) -> None:
        self._call("rollback")

    def close(self) -> None:
        self._call("close")


def session_calls(store: Recorder, body_fails: bool = False) -> list[str]:
    ctx = ApiContext(Settings(), lambda: store, Catalog(Path("rules"), []))  # type: ignore[arg-type,return-value]
    try:
        with ctx.session():
            if body_fails:
                raise ValueError("the action failed")
    except (StoreError, ValueError):
        pass
    return store.calls


@pytest.mark.parametrize(
    ("failing", "body_fails", "calls"),
    [((), False, ["commit", "close"]), ((), True, ["rollback", "close"]),
     (("commit",), False, ["commit", "close"]), (("rollback",), True, ["rollback", "close"])],
)  # fmt: skip
def test_the_connection_is_closed_whatever_fails(failing: tuple[str, ...], body_fails: bool, calls: list[str]) -> None:
    assert session_calls(Recorder(*failing), body_fails) == calls
