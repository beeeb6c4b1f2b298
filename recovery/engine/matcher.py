"""durable-rules as the matching core.

One ruleset per playbook, each with one single-pattern rule, and one session (`sid` "0") for all customers:
durable-rules holds at most 1,024 sessions per ruleset and merges sessions whose ids collide on a 32-bit hash,
so per-customer state is recovery's own (see ../shared/notes/durable-rules.md). An event that matches is
consumed at once; one that does not is refused (not handled) and not stored, so durable-rules keeps nothing
between posts. Timers, persistence callbacks and `delete_state` are never used.

The rulesets are driven through durable-rules' engine core (`durable_rules_engine`, the C extension that
`durable.engine.Host` wraps) with the same calls `Host.post` makes: `assert_event`, then
`start_action_for_state` and `complete_and_start_action` until no action is left. A match needs no Python
action here, so the Host's per-post closures, callbacks and state round trips, most of a post's cost, are
skipped; `tests/engine/test_matcher.py` checks the answers equal the Host's.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterable
from typing import Any

import durable_rules_engine

from recovery.exceptions import RecoveryError

_rulesets = itertools.count()

_NOT_HANDLED = 1
_OBSERVED = 2
_NO_STATE = 3


class MatcherError(RecoveryError):
    """durable-rules refused a ruleset or failed while matching."""


def ruleset_definition(pattern: dict[str, Any]) -> dict[str, Any]:
    """The durable-rules ruleset (JSON form) of one playbook's pattern: one rule, one pattern."""
    return {"match": {"all": [{"m": copy.deepcopy(pattern)}]}}


class Matcher:
    """Posts messages to compiled patterns; `matches(name, message)` is True when the pattern holds (the message
    as a dict, or as JSON text with `matches_json`)."""

    def __init__(self, patterns: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self._handles: dict[str, int] = {}
        generation = next(_rulesets)
        for i, (name, pattern) in enumerate(patterns):
            ruleset = f"recovery{generation}_p{i}"
            try:
                self._handles[name] = durable_rules_engine.create_ruleset(
                    ruleset, json.dumps(ruleset_definition(pattern), ensure_ascii=False)
                )
            except Exception as exc:
                raise MatcherError(f"durable-rules refused the pattern of {name!r}: {exc}") from exc
        # One encoder for every post (json.dumps with options builds a new one per call).
        self._encode = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":")).encode

    def matches(self, name: str, message: dict[str, Any]) -> bool:
        return self.matches_json(name, self._encode(message))

    def matches_json(self, name: str, message: str) -> bool:
        """`matches` for a message given as JSON text (`Pattern.message_json`)."""
        handle = self._handles[name]
        try:
            result = durable_rules_engine.assert_event(handle, message)
            code = result[0]
            if code == _NOT_HANDLED:
                return False
            if code == _OBSERVED:
                raise MatcherError(f"durable-rules saw this message already (playbook {name!r})")
            state = 0 if code == _NO_STATE else result[1]
            hit = False
            action = durable_rules_engine.start_action_for_state(handle, state)
            while action:
                hit = True
                action = durable_rules_engine.complete_and_start_action(handle, state)
            return hit
        except MatcherError:
            raise
        except Exception as exc:
            raise MatcherError(f"durable-rules failed on playbook {name!r}: {exc}") from exc
