"""Membership's rules on a fake coordinator (kafka-python's private state, as 3.0.12 has it) and a fake clock; the
Kafka adapter's behaviour against the real broker is in test_kafka.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from kafka.coordinator.base import MemberState

from recovery.consumer.membership import STUCK_S, Membership


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Join:
    is_done: bool


@dataclass
class Coordinator:
    state: MemberState = MemberState.STABLE
    _join_task: Join | None = None
    wanted: bool = False
    requests: list[float] = field(default_factory=list)
    _generation: Any = None

    def need_rejoin(self) -> bool:
        return self.wanted

    def request_rejoin(self) -> None:
        self.requests.append(0.0)
        self.wanted = True


@dataclass
class Consumer:
    _coordinator: Coordinator


def test_a_member_left_rebalancing_with_nothing_in_flight_is_asked_to_rejoin_once_stuck_long_enough() -> None:
    clock = Clock()
    coordinator = Coordinator(state=MemberState.REBALANCING, _join_task=Join(is_done=True))
    membership = Membership(Consumer(coordinator), clock=clock)
    assert membership.stable() is False and coordinator.requests == []  # seen stuck: the clock starts
    clock.now = STUCK_S - 0.1
    assert membership.stable() is False and coordinator.requests == []
    clock.now = STUCK_S
    assert membership.stable() is False and len(coordinator.requests) == 1 and membership.rejoins == 1
    # The rejoin is wanted now: not stuck, however long the round takes.
    clock.now = 10 * STUCK_S
    assert membership.stable() is False and len(coordinator.requests) == 1
    coordinator.state = MemberState.STABLE
    assert membership.stable() is True


@pytest.mark.parametrize(
    "state, join, wanted",
    [
        (MemberState.REBALANCING, Join(is_done=False), False),  # a round in flight: a poll will apply it
        (MemberState.REBALANCING, None, True),  # a rejoin wanted: the next poll starts a round
        (MemberState.UNJOINED, None, False),  # not joined yet
    ],
)
def test_a_member_joining_is_not_stable_and_not_stuck(state: MemberState, join: Join | None, wanted: bool) -> None:
    clock = Clock()
    coordinator = Coordinator(state=state, _join_task=join, wanted=wanted)
    membership = Membership(Consumer(coordinator), clock=clock)
    for _ in range(5):
        assert membership.stable() is False
        clock.now += STUCK_S
    assert coordinator.requests == []


def test_a_stuck_spell_that_ends_starts_the_count_again() -> None:
    clock = Clock()
    coordinator = Coordinator(state=MemberState.REBALANCING, _join_task=None)
    membership = Membership(Consumer(coordinator), clock=clock)
    membership.stable()
    clock.now = STUCK_S - 0.5
    coordinator._join_task = Join(is_done=False)  # a round came: not stuck
    membership.stable()
    coordinator._join_task = Join(is_done=True)
    clock.now = STUCK_S + 0.1
    assert membership.stable() is False and coordinator.requests == []  # stuck again since just now


def test_a_client_without_the_expected_state_polls_as_before_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    membership = Membership(object())
    with caplog.at_level(logging.WARNING, logger="recovery.consumer"):
        assert membership.stable() is True
        assert membership.stable() is True
    assert [r.getMessage() for r in caplog.records] == [
        "cannot read the Kafka group member's state, polls are not extended"
    ]
