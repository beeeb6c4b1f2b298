"""`recovery report`: the customer-loss review and the guerrilla metrics, from the store or from a file of events
(replayed first), as a printable HTML page or JSON for tools."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

WEEK_S = 7 * 86400.0
DEFAULT_SPAN_S = 4 * WEEK_S


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="the customer-loss review and metrics, as HTML (printable) or JSON",
        description="The customer-loss review and its metrics over [--from, --to): from the store (--store, default "
        "the settings' store_url), or from a file of events replayed first with the playbooks of --rules.",
    )
    p.add_argument("--store", help="store URL (default: the settings' store_url)")
    p.add_argument("--config", help="settings file (YAML or TOML)")
    p.add_argument("--events", help="a JSONL file of events to replay first (with --rules) instead of a store")
    p.add_argument("--rules", help="directory (or file) of playbooks, with --events")
    p.add_argument("--from", dest="since", metavar="TIME", help="RFC 3339 (default: 4 weeks before --to)")
    p.add_argument("--to", dest="until", metavar="TIME", help="RFC 3339, excluded (default: now)")
    p.add_argument("--by", default="week", help="week (default) or month: the metrics' periods")
    p.add_argument("--format", default="html", help="html (default, printable) or json")
    p.add_argument("--out", help="write to this file (default: stdout)")
    p.set_defaults(func=report)


def _fail(message: str) -> int:
    print(f"recovery report: {message}", file=sys.stderr)
    return 2


def report(args: argparse.Namespace) -> int:
    import time

    from recovery.report import BY, build_report
    from recovery.times import parse_time

    if args.by not in BY:
        return _fail(f"--by {args.by!r}: use week or month")
    if args.format not in ("html", "json"):
        return _fail(f"--format {args.format!r}: use html or json")
    if args.events is not None and (args.rules is None or args.store is not None):
        return _fail("--events needs --rules, and goes without --store")
    if args.rules is not None and args.events is None:
        return _fail("--rules goes with --events")
    try:
        until = parse_time(args.until) if args.until else time.time()
    except ValueError as exc:
        return _fail(f"--to: {exc}")
    try:
        since = parse_time(args.since) if args.since else until - DEFAULT_SPAN_S
    except ValueError as exc:
        return _fail(f"--from: {exc}")
    if not since < until:
        return _fail(f"--from {args.since} is not before --to {args.until or 'now'}")
    if args.events is not None:
        from recovery.report.sources import replayed_store

        store: Any = replayed_store(args.events, args.rules, until, sys.stderr)
    else:
        from recovery.config import Settings
        from recovery.store import open_store

        store = open_store(args.store or Settings.load(args.config).store_url)
    try:
        built = build_report(store, since, until, args.by)
    finally:
        store.close()
    if args.format == "json":
        text = json.dumps(built, indent=2, ensure_ascii=False) + "\n"
    else:
        from recovery.report.html import render_html

        text = render_html(built)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0
