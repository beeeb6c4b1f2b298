"""`recovery replay`: evaluate a file of events in event time with an in-memory store."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from recovery.effects import Effect, Task
from recovery.engine import Engine
from recovery.engine.engine import DEFAULT_MAX_CUSTOMERS
from recovery.events import Event
from recovery.exceptions import EventError, RecoveryError
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import MemoryStore

logger = logging.getLogger(__name__)


class ReplayError(RecoveryError):
    """A bad input line under `--strict`."""


@dataclass
class ReplaySummary:
    lines: int = 0
    events: int = 0
    invalid: int = 0
    duplicates: int = 0
    effects: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """Effects per (kind, playbook, queue of a task or type of a gesture)."""
    muted: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Effects muted per (playbook, reason: inhibited, snoozed, held-out or shadow)."""
    shadow: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    """Effects kept in shadow mode per (playbook, version, kind)."""
    errors: Counter[str] = field(default_factory=Counter)
    """Evaluations that failed per playbook (counted; the event went on)."""
    cancelled: Counter[str] = field(default_factory=Counter)
    """Tasks cancelled (their customer lost) per playbook."""

    def render(self) -> str:
        rows = [
            f"{self.lines} lines, {self.events} events, {self.duplicates} duplicates, {self.invalid} invalid",
        ]
        for (kind, playbook, where), n in sorted(self.effects.items()):
            rows.append(f"  {n:6d}  {kind:8s} {playbook:24s} {where}")
        for (playbook, reason), n in sorted(self.muted.items()):
            if reason != "shadow":  # by version below
                rows.append(f"  {n:6d}  {'muted':8s} {playbook:24s} {reason}")
        for (playbook, version, kind), n in sorted(self.shadow.items()):
            rows.append(f"  {n:6d}  {'shadow':8s} {playbook:24s} v{version} {kind}")
        for playbook, n in sorted(self.errors.items()):
            rows.append(f"  {n:6d}  {'errors':8s} {playbook:24s} evaluation failed")
        for playbook, n in sorted(self.cancelled.items()):
            rows.append(f"  {n:6d}  {'cancel':8s} {playbook:24s} customer-lost")
        return "\n".join(rows)


def replay_engine(playbooks: Sequence[CompiledPlaybook], max_customers: int = DEFAULT_MAX_CUSTOMERS) -> Engine:
    """The engine `recovery replay` runs: an in-memory store that remembers effect ids only (enough to never
    raise one twice), as the effects themselves go to the output, and no facts for the customer-loss review, which
    nothing reads after a replay (`recovery report --events` replays into a store of its own)."""
    return Engine(playbooks, MemoryStore(keep_effects=False), max_customers=max_customers, facts=False)


def replay(
    lines: Iterable[str | bytes],
    engine: Engine,
    out: TextIO,
    err: TextIO,
    *,
    until: float | None = None,
    strict: bool = False,
) -> ReplaySummary:
    """Feed every line to the engine and write each new effect as one JSON line to `out`.

    A line that is not a valid event (bytes that are not UTF-8 text too) is reported on `err` with its line number
    and skipped, or raises ReplayError when `strict`. `until` moves the clock on after the last event.
    """
    summary = ReplaySummary()
    stats = engine.stats
    events, duplicates, muted = stats.events, stats.duplicates, dict(stats.muted)
    shadow, errors = dict(stats.shadow), dict(stats.playbook_errors)
    from_json = Event.from_json
    number = 0
    for number, line in enumerate(lines, start=1):
        try:
            event = from_json(line)
        except EventError as exc:
            if not line.strip():  # a blank line (checked only here: most lines are events)
                continue
            summary.invalid += 1
            message = f"line {number}: invalid event: {_not_utf8(line) or exc}"
            if strict:
                raise ReplayError(message) from None
            print(message, file=err)
            continue
        effects = engine.process(event)
        if effects:
            _emit(effects, out, summary)
    # Counted from the engine's own counts, once: each event is new or a duplicate.
    summary.lines = number
    summary.events = stats.events - events
    summary.duplicates = stats.duplicates - duplicates
    if until is not None:
        _emit(engine.advance(until), out, summary)
    for key, n in stats.muted.items():
        if n > muted.get(key, 0):
            summary.muted[key] = n - muted.get(key, 0)
    for version_key, n in stats.shadow.items():
        if n > shadow.get(version_key, 0):
            summary.shadow[version_key] = n - shadow.get(version_key, 0)
    for playbook, n in stats.playbook_errors.items():
        if n > errors.get(playbook, 0):
            summary.errors[playbook] = n - errors.get(playbook, 0)
    return summary


def _not_utf8(line: str | bytes) -> str | None:
    """What is wrong with `line` if it is bytes that are not UTF-8 text (the JSON parser's words are vaguer)."""
    if isinstance(line, str):
        return None
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte 0x{line[exc.start]:02x} at column {exc.start + 1})"
    return None


def _emit(effects: list[Effect], out: TextIO, summary: ReplaySummary) -> None:
    for effect in effects:
        out.write(effect.to_json())
        out.write("\n")
        if effect.status == "cancelled":
            summary.cancelled[effect.playbook] += 1
            continue
        where = effect.queue if isinstance(effect, Task) else effect.type
        summary.effects[effect.kind, effect.playbook, where] += 1
