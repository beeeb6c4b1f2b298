"""`recovery cases`, `recovery tasks` and `recovery outbox`: what the store holds, for people at a terminal."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("tasks", help="list the tasks in the store, most urgent first")
    p.add_argument("--store", help="store URL (default: the settings' store_url)")
    p.add_argument("--config", help="settings file (YAML or TOML)")
    p.add_argument("--queue", help="only this queue")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20; 0 for all)")
    p.set_defaults(func=tasks)

    p = sub.add_parser(
        "cases",
        help="list the cases in the store as the queue orders them: priority, then customer value, then due time",
    )
    p.add_argument("--store", help="store URL (default: the settings' store_url)")
    p.add_argument("--config", help="settings file (YAML or TOML)")
    p.add_argument("--queue", help="only cases whose most urgent task is in this queue")
    p.add_argument("--status", default="active", help="active (default), open, claimed, escalated, closed or all")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20; 0 for all)")
    p.set_defaults(func=cases)

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
    p.set_defaults(func=outbox)


def tasks(args: argparse.Namespace) -> int:
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


def cases(args: argparse.Namespace) -> int:
    from recovery.config import Settings
    from recovery.store import open_store
    from recovery.store.records import CASE_STATUSES, CaseQuery
    from recovery.times import format_time

    if args.status not in CASE_STATUSES or args.limit < 0:
        print(f"recovery cases: --status is one of {', '.join(CASE_STATUSES)}; --limit is 0 or more", file=sys.stderr)
        return 2
    url = args.store or Settings.load(args.config).store_url
    store = open_store(url)
    try:
        query = CaseQuery(queue=args.queue, status=args.status, limit=args.limit or 2**31 - 1)
        found, total = store.list_cases(query)
    finally:
        store.close()
    print(f"{'PRIORITY':8s} {'DUE':24s} {'QUEUE':22s} {'CUSTOMER':10s} {'VALUE':>9s} {'STATUS':9s} TASKS")
    for case in found:
        active = case.active or case.tasks
        titles = "; ".join(t.task.title for t in active[:2]) + (
            f"; and {len(active) - 2} more" if len(active) > 2 else ""
        )
        print(
            f"{case.priority:8s} {format_time(case.due_ts):24s} {case.queue:22s} {case.customer_id:10s}"
            f" {case.annual_value:9,.0f} {case.status:9s} {len(active)}: {titles}"
        )
    print(f"{len(found)} of {total} case(s) in {url}", file=sys.stderr)
    return 0


def outbox(args: argparse.Namespace) -> int:
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
