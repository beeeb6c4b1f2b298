"""The pause scenario: one of two instances on PostgreSQL frozen (SIGSTOP) past its group session, mid-step, while
the other takes its partitions over; then thawed (SIGCONT), a member the group no longer counts on (a long garbage
collection, a VM paused, a laptop lid closed)."""

from __future__ import annotations

import signal
import time

from faults.harness import Row, Watch
from faults.scenarios import Context, _finish, _progress

PAUSE_S = 15.0
"""Past the group session (6 s in the suite) and the other instance's rebalance."""


def pause(ctx: Context) -> Row:
    """Two instances on PostgreSQL; one SIGSTOPped for `PAUSE_S` once an eighth of the stream is committed, then
    SIGCONTed. The whole stream is on the topic first, as in the `broker` row: read live, a partition read to its
    end counts as holding nothing older, and its frozen owner's last word on it stays so (docs/operations.md,
    "A paused instance")."""
    url = ctx.postgres.database("faults_pause")
    run = ctx.run("pause", url)
    run.create_topics()
    run.produce(ctx.stream.messages)
    total = len(ctx.stream.messages)
    row = Row(f"pause {PAUSE_S:.0f}s of 2 (PG)")
    frozen, _other = run.instance().start(), run.instance().start()
    with Watch(run.live) as watch:
        _progress(run, below=total * 7 // 8)
        frozen.signal(signal.SIGSTOP)
        try:
            time.sleep(PAUSE_S)
        finally:
            frozen.signal(signal.SIGCONT)
        return _finish(run, row, ctx.stream, url, watch)
