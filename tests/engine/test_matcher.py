"""The Matcher drives durable-rules' engine core directly: its answers must be the Host's, and it must keep
nothing in durable-rules between posts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import durable_rules_engine
import pytest
from durable import engine as durable_engine

from recovery.engine import Engine
from recovery.engine.matcher import Matcher, MatcherError, ruleset_definition
from recovery.events import Event
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import MemoryStore
from tests.conftest import random_stream

_hosts = iter(range(1_000_000))


class _Host(durable_engine.Host):  # type: ignore[misc]
    """durable-rules used the documented way: one ruleset per pattern, an action noting the hit."""

    def __init__(self, patterns: dict[str, dict[str, Any]]) -> None:
        self.hit = False
        super().__init__()
        n = next(_hosts)
        self.names = {name: f"host{n}_{i}" for i, name in enumerate(patterns)}
        rulesets = {}
        for name, pattern in patterns.items():
            definition = ruleset_definition(pattern)
            definition["match"]["run"] = "hit"
            rulesets[self.names[name]] = definition
        self.set_rulesets(rulesets)

    def _run(self) -> None:
        """No background timer threads."""

    def get_action(self, action_name: str) -> Callable[[Any], None]:
        def hit(c: Any) -> None:
            self.hit = True

        return hit

    def matches(self, name: str, message: dict[str, Any]) -> bool:
        self.hit = False
        try:
            self.post(self.names[name], message)
        except durable_engine.MessageNotHandledException:
            return False
        return self.hit


def recorded_posts(playbooks: list[CompiledPlaybook], seed: int) -> list[tuple[str, str]]:
    """The messages (JSON text) an engine posts for a random stream of the shipped playbooks."""
    engine = Engine(playbooks, MemoryStore())
    posts: list[tuple[str, str]] = []
    original = engine.matcher.matches_json

    def record(name: str, message: str) -> bool:
        posts.append((name, message))
        return original(name, message)

    engine.matcher.matches_json = record  # type: ignore[method-assign]
    for raw in random_stream(seed, customers=50, events=1500):
        engine.process(Event.from_dict(raw))
    engine.advance(1e10)
    return posts


@pytest.mark.parametrize("seed", [1, 2])
def test_answers_equal_durable_rules_host(shipped_playbooks: list[CompiledPlaybook], seed: int) -> None:
    posts = recorded_posts(shipped_playbooks, seed)
    assert len({name for name, _ in posts}) >= 3, "the stream should exercise most playbooks"
    patterns = {pb.id: pb.condition.pattern for pb in shipped_playbooks}
    host = _Host(patterns)
    matcher = Matcher(patterns.items())
    answers = [matcher.matches_json(name, message) for name, message in posts]
    assert answers == [host.matches(name, json.loads(message)) for name, message in posts]
    assert 0 < sum(answers) < len(answers)  # the stream both matches and misses


def test_nothing_stays_in_durable_rules_between_posts() -> None:
    matcher = Matcher([("p", {"$and": [{"k": "x"}, {"$gte": {"n": 3}}]})])
    for n in range(200):
        matcher.matches("p", {"sid": "0", "k": "x" if n % 2 else "y", "n": n % 5})
    handle = matcher._handles["p"]
    assert json.loads(durable_rules_engine.get_events(handle, "0")) == []
    assert json.loads(durable_rules_engine.get_facts(handle, "0")) == []
    assert matcher.matches("p", {"sid": "0", "k": "x", "n": 4})
    assert not matcher.matches("p", {"sid": "0", "k": "x", "n": 2})


def test_a_pattern_durable_rules_refuses_is_a_matcher_error() -> None:
    with pytest.raises(MatcherError, match="refused the pattern of 'bad'"):
        Matcher([("bad", {"n": {"$gte": 3}})])
