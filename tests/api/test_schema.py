"""schemathesis against the published OpenAPI spec: no input makes the API answer with a server error."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry
from schemathesis.checks import not_a_server_error

from recovery.api import ApiContext
from recovery.health import Health
from recovery.http import create_app
from recovery.lifecycle import Catalog
from recovery.metrics import Metrics
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.store import MemoryStore
from tests.api.conftest import T0, api_settings, seed_events, token_of
from tests.conftest import RULES, process_all
from tests.store.test_desk import make_task


def build_app():  # type: ignore[no-untyped-def]
    from recovery.engine import Engine

    playbooks = load_playbooks_or_raise([RULES])
    store = MemoryStore()
    for effect in process_all(Engine(playbooks, store), seed_events()):
        store.put_effect(effect)
    store.put_effect(make_task("t1"))
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    # Reloads read a directory of its own: the fuzzer may call reload as often as it likes.
    settings_ = api_settings(rules_dir=Path(RULES))
    ctx = ApiContext(settings_, lambda: store, Catalog(Path(RULES), playbooks, metrics=metrics), metrics,
                     clock=lambda: T0 + 3600)  # fmt: skip
    return create_app(settings_, registry, HEALTH, ctx)


HEALTH = Health(broker=None, playbooks=None)
"""Ready: the test refreshes it (a check not refreshed for a minute is a stuck loop, and /readyz says so)."""


schema = schemathesis.openapi.from_asgi("/openapi.json", build_app())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error(case: schemathesis.Case) -> None:
    # As admin (every endpoint reachable); 4xx answers are fine, a 5xx is not.
    HEALTH.set()
    case.call_and_validate(headers={"Authorization": f"Bearer {token_of('ada')}"}, checks=[not_a_server_error])
