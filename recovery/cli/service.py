"""`recovery serve`: the service, its API and its metrics on one port."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recovery.config import Settings


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="the service: consume ops.events from Kafka, store and publish effects")
    p.add_argument("--config", help="YAML or TOML settings file (RECOVERY_* environment variables override it)")
    p.add_argument("--live", action="store_true", help="print each effect as it is raised, and a summary")
    p.add_argument("--summary-every", type=float, default=10.0, help="seconds between live summaries (10)")
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from prometheus_client import CollectorRegistry

    from recovery.api import ApiContext
    from recovery.config import Settings
    from recovery.consumer import Service
    from recovery.health import Health
    from recovery.http import HttpServer, create_app
    from recovery.lifecycle import Catalog, Escalator
    from recovery.live import LiveSummary
    from recovery.logs import redact_text
    from recovery.metrics import Metrics
    from recovery.playbooks.loader import load_playbooks_or_raise
    from recovery.runtime import tune_gc
    from recovery.store import open_service_store, open_store

    settings = Settings.load(args.config)
    registry = CollectorRegistry()
    health = Health()
    playbooks = load_playbooks_or_raise([settings.rules_dir])
    metrics = Metrics(registry, playbooks=[pb.id for pb in playbooks])
    metrics.observe_reload(True)
    health.playbooks = None
    store = open_service_store(settings)
    outbox = open_store(settings.store_url)  # the publisher's own connection: its transactions are never the loop's
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("recovery").info("stopping on signal", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    live = LiveSummary(sys.stdout, every_s=args.summary_every) if args.live else None
    catalog = Catalog(settings.rules_dir, playbooks, metrics=metrics)
    service = Service(
        settings,
        store,
        playbooks,
        on_effects=live.add if live else None,
        metrics=metrics,
        health=health,
        on_step=Escalator(catalog, metrics, settings.escalation_every_s),
        outbox=outbox,
    )
    catalog.on_reload = service.request_reload
    # The API opens connections of its own, one per request (the loop's store belongs to the loop's thread).
    api = ApiContext(settings, lambda: open_store(settings.store_url), catalog, metrics)
    http = HttpServer(create_app(settings, registry, health, api), settings.http_port)
    http.start()
    print(
        f"recovery serve: {len(playbooks)} playbook(s) from {settings.rules_dir}, "
        f"store {redact_text(settings.store_url)}, broker {settings.kafka_bootstrap_servers}, "
        f"topic {settings.topic_events}, group {settings.group_id}, {clients(settings)}, "
        f"http://127.0.0.1:{settings.http_port}/",
        file=sys.stderr,
    )
    tune_gc(settings.gc_gen0_threshold)
    try:
        service.run(stop)
    finally:
        http.stop()
        outbox.close()
        store.close()
        if live is not None:
            live.final()
    return 0


def clients(settings: Settings) -> str:
    """The Kafka clients the loop runs on, as the start line says them."""
    if settings.kafka_consumer == settings.kafka_producer:
        return f"{settings.kafka_consumer}'s clients"
    return f"{settings.kafka_consumer}'s consumer and {settings.kafka_producer}'s producer"
