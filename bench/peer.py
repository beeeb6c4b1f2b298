"""recovery against a peer: a Quix Streams app of three of the shipped playbooks, draining the same topic.

    python -m bench.peer [--events N] [--customers N] [--bootstrap HOST:PORT] [--stores sqlite,postgres]
                         [--runs N] [--peer-script PATH] [--clients NAMES] [--playbooks NAMES]

`--runs`: the peer's warm runs (after one cold run) and recovery's runs per store. `--playbooks` runs recovery
with some of the shipped playbooks only (`--playbooks repeat-caller,cancellation-save,detractor-followup`: the
peer's three, to see what the other two cost); all five by default, as `make bench` runs it.

1. The peer (`../shared/peer/quix_peer.py`, beside the checkout, or `--peer-script`): Quix Streams 3.28 on
   confluent-kafka with RocksDB state and a changelog topic, at-least-once, running repeat-caller,
   cancellation-save and detractor-followup (no outages, absences, effect store or duplicate ledger). Its Python
   is a venv of its own, `.cache/peer/venv`, made with quixstreams installed the first time and reused after.
2. Starts a broker of its own (bench.servers) unless `--bootstrap` names one, and produces the bench stream
   (bench.generate, about 100,000 events, as bench.end_to_end does) to a fresh 6-partition topic.
3. The peer drains it `--runs` + 1 times, each in a fresh consumer group and state folder: the first run is cold
   (a fresh Python, the broker's first reads of the topic) and printed as such; the best of the others counts.
   Its figure is its own: from `app.run()` to its stop after the last message (topic set-up and the group join
   included).
4. Then recovery's loop with all five shipped playbooks (`Service.run`, as in `recovery serve`, with a fresh store,
   group and output topics each time; bench.drain) drains the same topic `--runs` times per store: SQLite, and
   PostgreSQL on a server of its own (deploy/postgres; "skipped: why" when it cannot be started). The best run
   counts. Timed from the loop's start until it has consumed the topic, committed its offsets and published
   every task and credit it stored (the peer's run ends with its output produced too).

Prints events/s for each and recovery's as a ratio of the peer's (warm). No target is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Sequence
from pathlib import Path

from kafka import KafkaAdminClient

from bench.drain import (
    STORE_NAMES,
    Result,
    Run,
    Servers,
    best,
    drain_store,
    reason,
    run_seconds,
    skipped,
    store_labels,
)
from bench.end_to_end import RULES_DIR, build_messages, drain_options, stream_topic
from bench.report import load, table
from bench.servers import CLIENTS, ROOT, with_broker
from recovery.native import describe_build
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.runtime import tune_gc

QUIXSTREAMS = "quixstreams==3.28.1"
PEER_VENV = ROOT / ".cache" / "peer" / "venv"
PEER_SCRIPT = ROOT.parent / "shared" / "peer" / "quix_peer.py"
INSTALL_TIMEOUT_S = 900
PEER_LINE = re.compile(r"quix-streams peer: (\d+) events in ([\d.]+) s")
HEADER = ["", "events", "seconds", "events/s", "x peer"]


def peer_python(folder: Path = PEER_VENV) -> Path:
    """The Python of the peer's venv, made and given quixstreams the first time (pip), reused after."""
    python = folder / "bin" / "python"
    wanted = QUIXSTREAMS.split("==")[1]
    if python.exists() and installed_version(python) == wanted:
        return python
    print(f"peer: installing {QUIXSTREAMS} in {folder.relative_to(ROOT)} (once)", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    subprocess.run(  # noqa: S603 - pip of our own venv, a fixed requirement
        [str(python), "-m", "pip", "install", "--quiet", QUIXSTREAMS],
        check=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    return python


def installed_version(python: Path) -> str | None:
    """The quixstreams version importable by `python`, None when there is none."""
    done = subprocess.run(  # noqa: S603 - our venv's python, a fixed snippet
        [str(python), "-W", "ignore", "-c", "import quixstreams; print(quixstreams.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        return None
    return done.stdout.strip()


def parse_peer(output: str) -> tuple[int, float]:
    """(events, seconds) from the peer's closing line, `quix-streams peer: N events in S s = R events/s`."""
    found = PEER_LINE.search(output)
    if found is None:
        raise ValueError(f"the peer printed no 'quix-streams peer: N events in S s' line: {output[-500:]!r}")
    return int(found.group(1)), float(found.group(2))


def ratio(row: Result, peer: Result) -> str:
    """`row`'s events/s over the peer's, '-' when either has no timing."""
    if row.note is not None or peer.note is not None or not row.seconds or not peer.seconds:
        return "-"
    return f"{row.rate / peer.rate:.3f}"


def cells(row: Result, peer: Result | None) -> list[str]:
    """A table row: name, events, seconds, events/s and the ratio to `peer` ('-' for the peer's own rows)."""
    if row.note is not None:
        return [row.name, row.note]
    return [
        row.name,
        f"{row.events:,}",
        f"{row.seconds:.3f}",
        f"{row.rate:,.0f}",
        "-" if peer is None else ratio(row, peer),
    ]


def run_peer(python: Path, script: Path, run: Run, name: str) -> Result:
    """One drain of the topic by the peer, in a fresh group and state folder (its temporary files are deleted);
    the topics it made (its tasks and changelog topics, named after the input topic) join the run's, to delete."""
    folder = Path(tempfile.mkdtemp(prefix="recovery-bench-peer-"))
    before = set(run.admin.list_topics())
    try:
        done = subprocess.run(  # noqa: S603 - the peer's own venv and script
            [str(python), "-W", "ignore", str(script), run.bootstrap, run.topic, str(run.events)],
            capture_output=True,
            text=True,
            timeout=run.timeout_s,
            check=False,
            cwd=folder,
            env={"PATH": "/usr/bin:/bin", "TMPDIR": str(folder), "HOME": str(folder)},
        )
        if done.returncode != 0:
            raise RuntimeError(f"the peer exited with {done.returncode}: {(done.stderr or done.stdout)[-800:]}")
        events, seconds = parse_peer(done.stdout)
        return Result(name, events=events, seconds=seconds)
    except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
        return Result(name, note=f"failed: {reason(exc)}")
    finally:
        made = set(run.admin.list_topics()) - before
        run.made_topics.extend(sorted(t for t in made if run.topic in t))
        shutil.rmtree(folder, ignore_errors=True)


def peer_rows(args: argparse.Namespace, run: Run) -> tuple[list[Result], list[Result]]:
    """The peer's cold run and its warm runs; one 'skipped: why' row when there is no peer to run."""
    script = Path(args.peer_script)
    if not script.exists():
        return [], [Result("quix-streams peer", note=f"skipped: no peer script at {script}")]
    try:
        python = peer_python()
    except (OSError, subprocess.SubprocessError) as exc:
        return [], [Result("quix-streams peer", note=f"skipped: quixstreams could not be installed: {reason(exc)}")]
    cold = run_peer(python, script, run, "quix-streams peer, cold (first run)")
    warm = [run_peer(python, script, run, "quix-streams peer, warm") for _ in range(max(1, args.runs))]
    return [cold], warm


def measure(args: argparse.Namespace, bootstrap: str, stores: Sequence[str], stack: contextlib.ExitStack) -> int:
    playbooks = args.playbooks  # the shipped ones, or those --playbooks names (main)
    messages = build_messages(args.customers, args.days, args.seed, args.events)
    print(f"stream: {len(messages):,} events, {args.customers:,} customers, {args.days:g} days, seed {args.seed}")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    stack.callback(admin.close)
    run = stream_topic(bootstrap, admin, messages, args.timeout_s, stack)

    started = time.perf_counter()
    cold, warm = peer_rows(args, run)
    peer = best(warm)
    print(f"peer: {len(cold) + len(warm)} runs in {time.perf_counter() - started:.1f} s (with start-up)", flush=True)
    tune_gc()  # as `recovery serve` does before its loop
    servers = Servers(stack)
    ours: list[Result] = []
    times = [f"peer cold {run_seconds(cold)}, warm {run_seconds(warm)}"]
    for label in stores:
        for name in args.clients:
            results = drain_store(run, label, playbooks, max(1, args.runs), servers, CLIENTS[name])
            for result in results:
                result.name = f"recovery serve, {STORE_NAMES[label]}, {name}"
            ours.append(best(results))
            if not skipped(results):
                times.append(f"{STORE_NAMES[label]} {name} {run_seconds(results)}")

    peer.name = f"quix-streams peer, warm (best of {len(warm)})"
    print()
    ran = "all five shipped playbooks" if not args.only else ", ".join(sorted(args.only))
    print(f"recovery: {ran}; the peer: three of the shipped playbooks (best of {max(1, args.runs)} runs each)")
    rows = [cells(r, None) for r in [*cold, peer]] + [cells(r, peer) for r in ours]
    print(table(HEADER, rows))
    print(f"runs, seconds: {'; '.join(times)}")
    for row in ours:
        print(*row.details, sep="\n")
    print(load() + ", shared with the broker" + (" and PostgreSQL" if "postgres" in stores else ""))
    print(f"recovery: {describe_build()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__.split("\n\n")[0])
    drain_options(parser, "sqlite,postgres")
    parser.add_argument("--peer-script", default=str(PEER_SCRIPT), help=f"the peer app (default {PEER_SCRIPT})")
    parser.add_argument(
        "--clients",
        default=",".join(CLIENTS),
        help="the Kafka clients to measure recovery with, comma-separated (default: all of "
        + ", ".join(CLIENTS)
        + ": kafka-python's, confluent-kafka's producer only, confluent-kafka's consumer and producer)",
    )
    parser.add_argument(
        "--playbooks",
        default="",
        help="recovery runs these shipped playbooks only, comma-separated (default: all five)",
    )
    args = parser.parse_args(argv)
    shipped = load_playbooks_or_raise([RULES_DIR])
    args.only = {name.strip() for name in args.playbooks.split(",") if name.strip()}
    unknown_playbooks = sorted(args.only - {p.id for p in shipped})
    if unknown_playbooks:
        names = ", ".join(sorted(p.id for p in shipped))
        parser.error(f"--playbooks: no shipped playbook {', '.join(unknown_playbooks)} (there are {names})")
    args.playbooks = [p for p in shipped if not args.only or p.id in args.only]
    args.clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = sorted(set(args.clients) - set(CLIENTS))
    if unknown or not args.clients:
        parser.error(f"--clients: unknown {', '.join(unknown) or '(none given)'} (use {', '.join(CLIENTS)})")
    stores = store_labels(parser, args.stores)
    return with_broker(args.bootstrap, lambda bootstrap, stack: measure(args, bootstrap, stores, stack))


if __name__ == "__main__":
    sys.exit(main())
