"""The live view of `recovery serve --live`: one line per effect as it is raised, and a summary per queue and
playbook every few seconds (what `make demo` shows)."""

from __future__ import annotations

import time
from collections import Counter
from typing import TextIO

from recovery.effects import Effect, Task


class LiveSummary:
    def __init__(self, out: TextIO, *, every_s: float = 10.0) -> None:
        self.out = out
        self.every_s = every_s
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._last = time.monotonic()

    def add(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Task):
                where = f"queue {effect.queue} {effect.priority}"
                line = f"task    {effect.priority} {effect.queue:16s} {effect.customer_id:10s} {effect.title}"
            else:
                where = f"{effect.type} {effect.status}"
                line = (
                    f"gesture {effect.type:19s} {effect.customer_id:10s} {effect.amount:g} {effect.currency} "
                    f"({effect.status})"
                )
            self.counts[(effect.playbook, effect.kind, where)] += 1
            print(line, file=self.out)
        if time.monotonic() - self._last >= self.every_s:
            self.summary()

    def summary(self) -> None:
        self._last = time.monotonic()
        total = sum(self.counts.values())
        print(f"--- {total} effects so far, by playbook and queue:", file=self.out)
        for (playbook, kind, where), n in sorted(self.counts.items()):
            print(f"  {n:6d}  {playbook:22s} {kind:8s} {where}", file=self.out)
        self.out.flush()

    def final(self) -> None:
        self.summary()
