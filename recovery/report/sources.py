"""A report's store from a file of events: the file replayed into a memory store first (`recovery replay`'s
machinery), keeping the tasks and gestures the playbooks raise."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TextIO

from recovery.engine import Engine
from recovery.exceptions import ReportError
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.replay import replay
from recovery.store import MemoryStore


def replayed_store(events: str | Path, rules: str | Path, until: float, err: TextIO) -> MemoryStore:
    """A memory store holding what `rules` make of the events in the file `events` (JSON lines), evaluated in event
    time with the clock moved on to `until` (deadlines before it fire). Bad lines are reported on `err` with their
    line number and skipped, as `recovery replay` does."""
    playbooks = load_playbooks_or_raise([rules])
    store = MemoryStore()
    engine = Engine(playbooks, store)
    try:
        source = open(events, "rb")
    except OSError as exc:
        raise ReportError(f"--events {events}: {exc.strerror or exc}") from None
    with source:
        replay(source, engine, io.StringIO(), err, until=until)
    store.commit()
    return store
