"""durable-rules as the matching core.

One ruleset per playbook, each with one single-pattern rule, and one session (`sid` "0") for all customers:
durable-rules holds at most 1,024 sessions per ruleset and merges sessions whose ids collide on a 32-bit hash,
so per-customer state is recovery's own (see ../shared/notes/durable-rules.md). An event that matches is
consumed at once; one that does not raises MessageNotHandledException and is not stored, so durable-rules
keeps nothing between posts. Timers, persistence callbacks and `delete_state` are never used, so the host's
background dispatch threads are not started either.
"""

from __future__ import annotations

import copy
import itertools
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from durable import engine as durable_engine

from recovery.exceptions import RecoveryError

_hosts = itertools.count()

# On Python 3.12 durable-rules warns on every action it runs (datetime.utcfromtimestamp): its defect, not news.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="durable.engine")


class MatcherError(RecoveryError):
    """durable-rules refused a ruleset or failed while matching."""


class Matcher:
    """Posts messages to compiled patterns; `matches(name, message)` is True when the pattern holds."""

    def __init__(self, patterns: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self._hit = False
        self._names: dict[str, str] = {}
        rulesets: dict[str, Any] = {}
        generation = next(_hosts)
        for i, (name, pattern) in enumerate(patterns):
            ruleset = f"g{generation}_p{i}"
            self._names[name] = ruleset
            rulesets[ruleset] = {"match": {"all": [{"m": copy.deepcopy(pattern)}], "run": f"{ruleset}.hit"}}
        matcher = self

        class _Host(durable_engine.Host):  # type: ignore[misc]
            def _run(self) -> None:
                """No background dispatch: durable-rules would start two `threading.Timer` chains that spawn a
                new thread every few milliseconds forever, for queued messages and timers, which are never used
                here (an event is matched synchronously inside `post`)."""

            def get_action(self, action_name: str) -> Callable[[Any], None]:
                def hit(c: Any) -> None:
                    matcher._hit = True

                return hit

        self._host = _Host()
        try:
            self._host.set_rulesets(rulesets)
        except Exception as exc:
            raise MatcherError(f"durable-rules refused the compiled rulesets: {exc}") from exc
        self._not_handled = durable_engine.MessageNotHandledException

    def matches(self, name: str, message: dict[str, Any]) -> bool:
        self._hit = False
        try:
            self._host.post(self._names[name], message)
        except self._not_handled:
            return False
        except Exception as exc:
            raise MatcherError(f"durable-rules failed on playbook {name!r}: {exc}") from exc
        return self._hit
