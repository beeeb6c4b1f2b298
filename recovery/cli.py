"""The `recovery` command line. Thin: parse, configure logging, call one function."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recovery import __version__
from recovery.exceptions import PlaybookError, RecoveryError
from recovery.native import stale_builds


def _validate(args: argparse.Namespace) -> int:
    from recovery.playbooks.loader import find_files, load_playbooks

    playbooks, problems = load_playbooks(args.paths)
    test_files, _ = find_files([p for p in args.paths if Path(p).is_dir() or p.endswith(".test.yaml")], tests=True)
    # Test files are checked for structure too (their playbook must exist); running them is `recovery test`.
    by_id = {pb.id: pb for pb in playbooks}
    for path in test_files:
        try:
            _check_test_file(path, by_id)
        except PlaybookError as exc:
            problems.extend(exc.problems)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"{len(playbooks)} playbook(s) valid", file=sys.stderr)
    return 0


def _check_test_file(path: Path, by_id: dict[str, Any]) -> None:
    from recovery.testing import load_test_file

    doc, spec = load_test_file(path)
    if spec.playbook not in by_id:
        raise PlaybookError([doc.problem(("playbook",), f"no playbook '{spec.playbook}' among those validated")])


def _test(args: argparse.Namespace) -> int:
    from recovery.testing import run_tests

    results, problems = run_tests(args.paths)
    for problem in problems:
        print(problem)
    failed = 0
    for result in results:
        if result.passed:
            if args.verbose:
                print(f"PASS {result.file}: {result.name}")
            continue
        failed += 1
        print(f"FAIL {result.file}: {result.name}")
        for failure in result.failures:
            print(f"    {failure}")
    failed += len(problems)
    print(f"{len(results) - (failed - len(problems))} passed, {failed} failed")
    return 1 if failed else 0


def _replay(args: argparse.Namespace) -> int:
    from recovery.playbooks.loader import load_playbooks_or_raise
    from recovery.replay import replay, replay_engine
    from recovery.runtime import tune_gc
    from recovery.times import parse_time

    until = None
    if args.until:
        try:
            until = parse_time(args.until)
        except ValueError as exc:
            print(f"--until: {exc}", file=sys.stderr)
            return 2
    playbooks = load_playbooks_or_raise([args.rules])
    engine = replay_engine(playbooks)
    tune_gc()
    # Bytes, decoded line by line (by the JSON parser): a line that is not UTF-8 is one invalid line, not the end.
    source = sys.stdin.buffer if args.events == "-" else open(args.events, "rb")
    try:
        summary = replay(source, engine, sys.stdout, sys.stderr, until=until, strict=args.strict)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    if args.summary:
        print(summary.render(), file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
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
        f"topic {settings.topic_events}, group {settings.group_id}, http://127.0.0.1:{settings.http_port}/",
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


def _tasks(args: argparse.Namespace) -> int:
    from recovery.config import Settings
    from recovery.effects import Task
    from recovery.store import open_store

    url = args.store or Settings.load(args.config).store_url
    store = open_store(url)
    try:
        tasks = [e for e in store.effects() if isinstance(e, Task) and (not args.queue or e.queue == args.queue)]
    finally:
        store.close()
    tasks.sort(key=lambda t: (t.priority, t.due_at, t.id))
    shown = tasks[: args.limit] if args.limit else tasks
    print(f"{'PRIORITY':8s} {'DUE':24s} {'QUEUE':22s} {'CUSTOMER':10s} TITLE")
    for t in shown:
        print(f"{t.priority:8s} {t.due_at:24s} {t.queue:22s} {t.customer_id:10s} {t.title}")
    print(f"{len(shown)} of {len(tasks)} task(s) in {url}", file=sys.stderr)
    return 0


def _outbox(args: argparse.Namespace) -> int:
    from recovery.config import Settings
    from recovery.store import open_store
    from recovery.times import format_time

    url = args.store or Settings.load(args.config).store_url
    store = open_store(url)
    try:
        if args.retry is not None or args.retry_all:
            again = store.outbox_unpark(None if args.retry_all else args.retry)
            store.commit()
            print(f"{again} parked message(s) will be published again", file=sys.stderr)
            return 0
        parked, count = store.outbox_parked(args.limit)
        waiting = store.outbox_size()
    finally:
        store.close()
    print(f"{'SEQ':>8s} {'PARKED AT':24s} {'TOPIC':24s} {'KEY':16s} {'BYTES':>9s} ERROR")
    for p in parked:
        print(f"{p.seq:8d} {format_time(p.parked_at):24s} {p.topic:24s} {p.key or '-':16s} {p.size:9d} {p.error}")
    print(f"{len(parked)} of {count} parked message(s), {waiting} waiting to be published, in {url}", file=sys.stderr)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from recovery.playbooks.model import Playbook

    schema = Playbook.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "recovery playbook"
    print(json.dumps(schema, indent=2))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from recovery import simulate
    from recovery.config import Settings

    if args.out is not None and (args.bootstrap_servers or args.topic):
        print("error: --out writes a file; --bootstrap-servers and --topic are for Kafka", file=sys.stderr)
        return 2
    fast = args.fast or (args.out is not None and args.duration > 0)
    try:
        events = simulate.traffic(
            args.customers,
            args.seed,
            rate=args.rate,
            duration_s=args.duration,
            time_scale=args.time_scale,
            start=args.start,
            fast=fast,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        # kafka-python logs every failed connection attempt; the BrokerError below says it in one line.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        sink: simulate.Sink
        if args.out is None:
            settings = Settings.load(args.config)
            sink = simulate.KafkaSink.from_settings(settings, args.bootstrap_servers, args.topic)
        elif args.out == "-":
            sink = simulate.FileSink(sys.stdout, flush_each=not fast)
        else:
            sink = simulate.FileSink.to_path(Path(args.out), flush_each=not fast)
        with simulate.stop_on_signals() as stopped:
            sent = simulate.run(events, sink, paced=not fast, stopped=stopped)
    except simulate.BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(simulate.summary(sent), file=sys.stderr)
    return 0


def _seconds(text: str) -> float:
    """A duration: seconds (`90`) or with units (`90s`, `2h`, `30d`)."""
    from recovery.times import parse_duration

    try:
        return float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _instant(text: str) -> float:
    from recovery.times import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recovery", description="Proactive customer-recovery rules engine.")
    parser.add_argument("--version", action="version", version=f"recovery {__version__}")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    parser.add_argument(
        "--log-format", choices=("text", "json"), help="log lines as text or JSON (default: JSON for serve, else text)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check playbooks; one FILE:LINE:COL: message line per problem")
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=_validate)

    p = sub.add_parser("test", help="run playbook test files (*.test.yaml)")
    p.add_argument("paths", nargs="+")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    p.set_defaults(func=_test)

    p = sub.add_parser("replay", help="evaluate a JSONL file of events in event time; effects to stdout")
    p.add_argument("--rules", required=True, help="directory (or file) of playbooks")
    p.add_argument("--until", help="RFC 3339 time: move the clock on to it after the last event")
    p.add_argument("--strict", action="store_true", help="a bad input line is fatal")
    p.add_argument("--summary", action="store_true", help="print counts per playbook on stderr at the end")
    p.add_argument("events", help="JSONL file, or - for stdin")
    p.set_defaults(func=_replay)

    p = sub.add_parser("serve", help="the service: consume ops.events from Kafka, store and publish effects")
    p.add_argument("--config", help="YAML or TOML settings file (RECOVERY_* environment variables override it)")
    p.add_argument("--live", action="store_true", help="print each effect as it is raised, and a summary")
    p.add_argument("--summary-every", type=float, default=10.0, help="seconds between live summaries (10)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("tasks", help="list the tasks in the store, most urgent first")
    p.add_argument("--store", help="store URL (default: the settings' store_url)")
    p.add_argument("--config", help="settings file (YAML or TOML)")
    p.add_argument("--queue", help="only this queue")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20; 0 for all)")
    p.set_defaults(func=_tasks)

    p = sub.add_parser(
        "outbox",
        help="list the messages the broker refused for good (parked), or publish them again",
        description="Messages the broker refuses for good (too large, a topic recovery may not write to) are parked"
        " in the outbox: kept, counted (recovery_outbox_parked), not published. Once the cause is fixed, --retry"
        " hands them back to the running service's publisher.",
    )
    p.add_argument("--store", help="store URL (default: the settings' store_url)")
    p.add_argument("--config", help="settings file (YAML or TOML)")
    p.add_argument("--limit", type=int, default=100, help="list at most this many (default 100)")
    p.add_argument("--retry", type=int, nargs="+", metavar="SEQ", help="publish these parked messages again")
    p.add_argument("--retry-all", action="store_true", help="publish every parked message again")
    p.set_defaults(func=_outbox)

    p = sub.add_parser("schema", help="print the JSON Schema of the playbook format")
    p.set_defaults(func=_schema)

    p = sub.add_parser(
        "simulate",
        help="realistic traffic to Kafka or a file: live at a rate, or a whole period at once (--fast)",
        description="Customers with tiers, regions and values; outages hitting regions, bursts of repeat calls,"
        " complaints, cancellations, surveys. The same --seed and arguments give the same events (--start pins"
        " the times of a live run). Ctrl-C or SIGTERM stops cleanly; a summary goes to stderr.",
    )
    p.add_argument("--customers", type=int, default=1_000, help="number of customers (default 1000)")
    p.add_argument("--rate", type=float, help="events per second (live default 10; --fast: aim at rate x duration)")
    p.add_argument("--duration", type=_seconds, default=0.0, help="seconds (or 90s, 2h, 30d); 0: until stopped")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--start", type=_instant, help="RFC 3339 time of the first event (default now; --fast: 2026-01-05)")
    p.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per real second (default 1)")
    p.add_argument(
        "--fast", action="store_true", help="no pacing: the whole period at once (also --out with --duration)"
    )
    p.add_argument("--out", help="write JSON lines to FILE (- for stdout) instead of producing to Kafka")
    p.add_argument("--bootstrap-servers", help="HOST:PORT[,...] (default: the settings' kafka_bootstrap_servers)")
    p.add_argument("--topic", help="topic to produce to (default: the settings' topic_events, ops.events)")
    p.add_argument("--config", help="settings file (YAML or TOML); RECOVERY_* variables override it")
    p.set_defaults(func=_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from recovery.logs import configure_logging

    log_format = args.log_format or ("json" if args.command == "serve" else "text")
    try:
        configure_logging(args.log_level, json=log_format == "json")
    except ValueError as exc:
        print(f"--log-level: {exc}", file=sys.stderr)
        return 2
    stale = stale_builds()
    if stale:
        print(
            f"warning: compiled modules older than the sources: {', '.join(map(str, stale))}; this runs them, not "
            "the sources: run `make compile` (or delete them)",
            file=sys.stderr,
        )
    try:
        result: int = args.func(args)
        return result
    except PlaybookError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except RecoveryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
