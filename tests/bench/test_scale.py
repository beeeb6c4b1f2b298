"""bench.scale's pure parts: its stream and the rates it reads off its samples."""

from __future__ import annotations

import itertools
import math

from bench.scale import Sample, messages, phase_rate, rates
from bench.service import Progress
from recovery.events import Event


def test_messages_are_keyed_valid_events_then_revisits_of_known_customers() -> None:
    sent = list(messages(50, 20, seed=3))
    assert len(sent) == 2 * 50 + 20
    events = [Event.from_json(value.decode()) for _, value in sent]
    assert all(key.decode() == e.customer_id for (key, _), e in zip(sent, events, strict=True))
    known = {e.customer_id for e in events[:100]}
    assert len(known) == 50
    revisits = events[100:]
    assert {e.type for e in revisits} == {"service.call"}
    assert {e.customer_id for e in revisits} <= known
    assert all(a.occurred_at <= b.occurred_at for a, b in itertools.pairwise(events[99:]))


def test_rates_per_interval_and_per_phase() -> None:
    samples = [Sample(10.0, 1_000, 100.0, 10), Sample(20.0, 3_000, 100.0, 10), Sample(30.0, 4_000, 100.0, 10)]
    assert rates(samples) == [100.0, 200.0, 100.0]
    assert phase_rate(samples, 1, 3_000) == 200.0
    assert phase_rate(samples, 3_000, 4_000) == 100.0
    assert math.isnan(phase_rate(samples, 4_000, 4_000))


def test_progress_calls_a_count_stalled_once_it_stands_still_long_enough() -> None:
    now = [0.0]
    progress = Progress(10.0, clock=lambda: now[0])
    assert not progress.stalled(5)
    now[0] = 9.0
    assert not progress.stalled(5)
    now[0] = 12.0
    assert not progress.stalled(6)  # it rose: the wait starts again
    now[0] = 21.0
    assert not progress.stalled(4)  # a fall is no progress, but only 9 s since the rise
    now[0] = 22.0
    assert progress.stalled(6)
