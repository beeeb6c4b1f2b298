"""The `recovery` command line. Thin: parse, configure logging, call one function (one module per group of
commands: `playbooks`, `service`, `store`, `report`, `explain`, `simulate`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recovery import __version__
from recovery.cli import explain, playbooks, report, service, simulate, store
from recovery.exceptions import PlaybookError, RecoveryError
from recovery.native import stale_builds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recovery", description="Proactive customer-recovery rules engine.")
    parser.add_argument("--version", action="version", version=f"recovery {__version__}")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    parser.add_argument(
        "--log-format", choices=("text", "json"), help="log lines as text or JSON (default: JSON for serve, else text)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for commands in (playbooks, service, store, report, explain, simulate):
        commands.register(sub)
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
