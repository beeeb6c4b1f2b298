"""`recovery explain`: why a customer did or did not get a task or gesture from each playbook, from a file of events
(replayed first) or from a store, as text or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

USAGE = "give --events FILE --rules DIR, or --store URL [--rules DIR]"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="why a customer did or did not get a task or gesture, per playbook",
        description="Per playbook, for one customer: the last trigger, the let values and each part of the condition "
        "there, every blocker (cooldown, snooze, inhibition, holdout, shadow, missing profile data), pending "
        "deadlines and the effects raised. From a file of events replayed with the playbooks of --rules, or from a "
        "store with the playbooks of --rules (default: the settings' rules_dir).",
    )
    p.add_argument("--customer", required=True, metavar="ID", help="the customer's id")
    p.add_argument("--at", metavar="TIME", help="RFC 3339: explain as of this instant (default: the end of the "
                   "events, or now for a store)")  # fmt: skip
    p.add_argument("--events", metavar="FILE", help="a JSONL file of events to replay (with --rules)")
    p.add_argument("--rules", metavar="DIR", help="directory (or file) of playbooks")
    p.add_argument("--store", metavar="URL", help="store URL, instead of --events")
    p.add_argument("--config", help="settings file (YAML or TOML), for --store's default rules_dir")
    p.add_argument("--format", default="text", help="text (default) or json")
    p.set_defaults(func=explain)


def _fail(message: str) -> int:
    print(f"recovery explain: {message}", file=sys.stderr)
    return 2


def explain(args: argparse.Namespace) -> int:
    import time

    from recovery.exceptions import PlaybookError, RecoveryError
    from recovery.times import parse_time

    if args.format not in ("text", "json"):
        return _fail(f"--format {args.format!r}: use text or json")
    if (args.events is None) == (args.store is None):
        return _fail(USAGE + ("" if args.events is None else ", not both"))
    if args.events is not None and args.rules is None:
        return _fail("--events needs --rules")
    if not args.customer.strip():
        return _fail("--customer: an empty id")
    try:
        at = parse_time(args.at) if args.at else None
    except ValueError as exc:
        return _fail(f"--at {args.at!r}: {exc}")
    try:
        if args.events is not None:
            explanation = _from_events(args, at)
        else:
            explanation = _from_store(args, at if at is not None else time.time())
    except PlaybookError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except RecoveryError as exc:
        return _fail(str(exc))
    if args.format == "json":
        sys.stdout.write(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        from recovery.explain import render_text

        sys.stdout.write(render_text(explanation))
    return 0


def _from_events(args: argparse.Namespace, at: float | None) -> Any:
    from recovery.explain import explain_events
    from recovery.playbooks.loader import load_playbooks_or_raise

    playbooks = load_playbooks_or_raise([args.rules])
    return explain_events(args.events, playbooks, args.customer, at, sys.stderr)


def _from_store(args: argparse.Namespace, at: float) -> Any:
    from recovery.config import Settings
    from recovery.explain import explain_store
    from recovery.playbooks.loader import load_playbooks_or_raise
    from recovery.store import open_store

    rules = args.rules
    if rules is None:
        rules = Settings.load(args.config).rules_dir
    playbooks = load_playbooks_or_raise([rules])
    store = open_store(args.store)
    try:
        return explain_store(store, playbooks, args.customer, at)
    finally:
        store.close()
