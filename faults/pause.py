"""The pause scenario: one of two instances on PostgreSQL frozen (SIGSTOP) past its group session, mid-step, while
the other takes its partitions over; then thawed (SIGCONT), a member the group no longer counts on (a long garbage
collection, a VM paused, a laptop lid closed)."""

from __future__ import annotations

import signal
import time

from faults.harness import Row, Watch
from faults.scenarios import Context, _finish, _progress, at_scope_events

PAUSE_S = 15.0
"""Past the group session (6 s in the suite) and the other instance's rebalance."""


def pause(ctx: Context) -> Row:
    """Two instances on PostgreSQL; one SIGSTOPped for `PAUSE_S` once a quarter of the first half of the stream is
    committed, while the second half arrives (in parts cut at its outages, as in the `agent` row), then SIGCONTed.
    Its step in flight goes on after the other instance has read the same records (fencing), and its last word on
    its partitions (read to their end) must not let the other run past the outages that came to them after it
    (docs/operations.md, "A paused instance")."""
    url = ctx.postgres.database("faults_pause")
    run = ctx.run("pause", url)
    run.create_topics()
    half = len(ctx.stream.messages) // 2
    run.produce(ctx.stream.messages[:half])
    row = Row(f"pause {PAUSE_S:.0f}s of 2 (PG)")
    frozen, _other = run.instance().start(), run.instance().start()
    with Watch(run.live) as watch:
        _progress(run, below=half * 3 // 4)
        frozen.signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            for part in at_scope_events(ctx.stream.messages[half:]):
                run.produce(part)
            time.sleep(max(0.0, PAUSE_S - (time.monotonic() - frozen_at)))
        finally:
            frozen.signal(signal.SIGCONT)
        return _finish(run, row, ctx.stream, url, watch)
