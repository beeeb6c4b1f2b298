"""`recovery validate`, `test`, `replay`, `backtest` and `schema`: playbooks checked, tested, run over a file of events
and compared with the ones in force."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from recovery.exceptions import PlaybookError


def register(sub: Any) -> None:
    p = sub.add_parser("validate", help="check playbooks; one FILE:LINE:COL: message line per problem")
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=validate)

    p = sub.add_parser("test", help="run playbook test files (*.test.yaml)")
    p.add_argument("paths", nargs="+")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    p.set_defaults(func=test)

    p = sub.add_parser("replay", help="evaluate a JSONL file of events in event time; effects to stdout")
    p.add_argument("--rules", required=True, help="directory (or file) of playbooks")
    p.add_argument("--until", help="RFC 3339 time: move the clock on to it after the last event")
    p.add_argument("--strict", action="store_true", help="a bad input line is fatal")
    p.add_argument("--summary", action="store_true", help="print counts per playbook on stderr at the end")
    p.add_argument("events", help="JSONL file, or - for stdin")
    p.set_defaults(func=replay)

    p = sub.add_parser("backtest", help="replay a JSONL file of events through new playbooks and a baseline; compare")
    p.add_argument("--rules", required=True, help="directory (or file) of the new playbooks")
    p.add_argument("--baseline", required=True, help="directory (or file) of the playbooks to compare against")
    p.add_argument("--until", help="RFC 3339 time: move the clocks on to it after the last event")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or JSON for tools")
    p.add_argument("--examples", type=int, default=3, help="example customers per playbook and change (default 3)")
    p.add_argument("events", help="JSONL file, or - for stdin")
    p.set_defaults(func=backtest)

    p = sub.add_parser("schema", help="print the JSON Schema of the playbook format")
    p.set_defaults(func=schema)


def validate(args: argparse.Namespace) -> int:
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


def test(args: argparse.Namespace) -> int:
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
            print(textwrap.indent(failure, "    "))
    failed += len(problems)
    print(f"{len(results) - (failed - len(problems))} passed, {failed} failed")
    return 1 if failed else 0


def replay(args: argparse.Namespace) -> int:
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


def backtest(args: argparse.Namespace) -> int:
    """Exit 0 with the report; 2 for bad input (an argument, a missing or unreadable file, an invalid playbook of
    either set), each problem on one line of stderr."""
    from recovery.backtest import backtest, render_json, render_text, report
    from recovery.playbooks.loader import load_playbooks
    from recovery.runtime import tune_gc
    from recovery.times import parse_time

    until = None
    try:
        until = parse_time(args.until) if args.until else None
    except ValueError as exc:
        print(f"--until: {exc}", file=sys.stderr)
        return 2
    if args.examples < 0:
        print(f"--examples: a number of customers, 0 or more (got {args.examples})", file=sys.stderr)
        return 2
    for option, path in (("--rules", args.rules), ("--baseline", args.baseline)):
        if not Path(path).exists():
            print(f"{option}: no such file or directory: {path}", file=sys.stderr)
            return 2
    # Read once, as bytes (decoded line by line by the JSON parser): both sets replay the same lines.
    try:
        if args.events == "-":
            lines = sys.stdin.buffer.readlines()
        else:
            with open(args.events, "rb") as source:
                lines = source.readlines()
    except OSError as exc:
        print(f"events: cannot read {args.events}: {exc.strerror}", file=sys.stderr)
        return 2
    new, problems = load_playbooks([args.rules])
    baseline, more = load_playbooks([args.baseline])
    problems += [p for p in more if str(p) not in {str(q) for q in problems}]  # the same file given twice
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2
    tune_gc()
    result = backtest(lines, new, baseline, sys.stderr, until=until)
    data = report(result, args.examples)
    print(render_json(data) if args.format == "json" else render_text(data, args.examples))
    return 0


def schema(args: argparse.Namespace) -> int:
    from recovery.playbooks.model import Playbook

    schema = Playbook.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "recovery playbook"
    print(json.dumps(schema, indent=2))
    return 0
