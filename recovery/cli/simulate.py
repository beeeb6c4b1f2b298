"""`recovery simulate`: realistic traffic to Kafka or a file."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="realistic traffic to Kafka or a file: live at a rate, or a whole period at once (--fast)",
        description="Customers with tiers, regions and values; outages hitting regions, bursts of repeat calls,"
        " complaints, cancellations, surveys, payments; customers joining, referring others, renewing and being lost"
        " (likelier after distress). The same --seed and arguments give the same events (--start pins the times of a"
        " live run). Ctrl-C or SIGTERM stops cleanly; a summary goes to stderr.",
    )
    p.add_argument("--customers", type=int, default=1_000, help="number of customers (default 1000)")
    p.add_argument("--rate", type=float, help="events per second (live default 10; --fast: aim at rate x duration)")
    p.add_argument("--duration", type=seconds, default=0.0, help="seconds (or 90s, 2h, 30d); 0: until stopped")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--start", type=instant, help="RFC 3339 time of the first event (default now; --fast: 2026-01-05)")
    p.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per real second (default 1)")
    p.add_argument(
        "--fast", action="store_true", help="no pacing: the whole period at once (also --out with --duration)"
    )
    p.add_argument("--out", help="write JSON lines to FILE (- for stdout) instead of producing to Kafka")
    p.add_argument("--bootstrap-servers", help="HOST:PORT[,...] (default: the settings' kafka_bootstrap_servers)")
    p.add_argument("--topic", help="topic to produce to (default: the settings' topic_events, ops.events)")
    p.add_argument("--config", help="settings file (YAML or TOML); RECOVERY_* variables override it")
    p.set_defaults(func=simulate)


def simulate(args: argparse.Namespace) -> int:
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


def seconds(text: str) -> float:
    """A duration: seconds (`90`) or with units (`90s`, `2h`, `30d`)."""
    from recovery.times import parse_duration

    try:
        return float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def instant(text: str) -> float:
    from recovery.times import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
