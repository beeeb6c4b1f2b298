"""StallWatch: when polls that stay empty mean a stuck consumer."""

from __future__ import annotations

from recovery.consumer.stall import StallWatch


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_empty_polls_for_long_enough_with_a_backlog_are_a_stall_said_once_per_period() -> None:
    clock = Clock()
    watch = StallWatch(after_s=30.0, polls=10, clock=clock)
    asked: list[float] = []

    def backlog() -> bool:
        asked.append(clock.now)
        return True

    for _ in range(20):  # 20 empty polls within 29 s: not yet
        clock.now += 29.0 / 20
        watch.polled(0)
        assert watch.stuck(backlog) is False
    clock.now = 30.0
    watch.polled(0)
    assert watch.stuck(backlog) is True and asked == [30.0]
    watch.polled(0)
    assert watch.stuck(backlog) is False  # said once: again only after another period
    clock.now = 61.0
    for _ in range(10):
        watch.polled(0)
    assert watch.stuck(backlog) is True and asked == [30.0, 61.0]


def test_records_or_few_polls_or_no_backlog_are_no_stall() -> None:
    clock = Clock()
    watch = StallWatch(after_s=30.0, polls=10, clock=clock)
    clock.now = 100.0
    for _ in range(9):  # a loop busy in a long step polls rarely: 9 empty polls in 100 s is not a stall
        watch.polled(0)
    assert watch.stuck(lambda: True) is False
    watch.polled(0)
    assert watch.stuck(lambda: False) is False  # nothing waits (all caught up, or every partition paused)
    watch.polled(5)  # records: the count starts again
    clock.now = 200.0
    assert watch.stuck(lambda: True) is False
