"""`make faults`: the fault suite. Real broker, real PostgreSQL, real `recovery serve` processes, real faults.

    python -m faults [--events N] [--only NAME,...] [--kills N] [--hostile N] [--outage-s S] [--seed N]
                     [--clients kafka-python|confluent-kafka] [--keep]

Each scenario drains a stream of simulated traffic (`--events`, default 24,000: outages, absences, cancellations)
through `recovery serve` while something goes wrong, then reads the output topics back and holds the distinct
effects against `recovery replay`'s for the same stream. One row per scenario; exit 1 when any row fails.
docs/operations.md ("Faults") shows the table and how to read it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from faults import scenarios
from faults.disk import disk_full
from faults.harness import PARTITIONS, Row
from faults.pause import pause
from faults.scenarios import Context
from faults.servers import Broker
from faults.stream import simulated

SCENARIOS: dict[str, Callable[[Context], Row]] = {
    "sigkill": scenarios.sigkill,
    "broker": scenarios.broker_restart,
    "postgres": scenarios.postgres_restart,
    "disk": disk_full,
    "scale": scenarios.scale,
    "pause": pause,
    "agent": scenarios.agent,
    "hostile": scenarios.hostile_messages,
    "refused": scenarios.refused,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=24_000, help="events in the stream (default 24,000)")
    parser.add_argument("--only", help=f"comma-separated scenarios, of: {', '.join(SCENARIOS)}")
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs in the sigkill scenario (10)")
    parser.add_argument("--hostile", type=int, default=10_000, help="hostile messages (10,000)")
    parser.add_argument("--outage-s", type=float, default=20.0, help="how long a server is down (20)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--clients",
        choices=("kafka-python", "confluent-kafka"),
        default="kafka-python",
        help="recovery serve's Kafka clients, its consumer and its producer (default kafka-python)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the logs and stores (their folder is printed), and NAME-differences.txt: effects unlike replay's",
    )
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")

    workdir = Path(tempfile.mkdtemp(prefix="recovery-faults-"))
    started = time.monotonic()
    print(
        f"stream: {args.events} events, seed {args.seed}, {args.clients}'s clients; replaying it for the expected "
        "effects ...",
        flush=True,
    )
    stream = simulated(args.events, args.seed, PARTITIONS)
    print(f"  {stream.events} events (with a tick per partition), {len(stream.effects)} effects", flush=True)
    broker = Broker()
    broker.start()
    ctx = Context(broker, stream, workdir, args.seed, args.kills, args.hostile, args.outage_s, args.clients)
    rows: list[Row] = []
    try:
        print(Row.HEADER, flush=True)
        for name in names:
            try:
                row = SCENARIOS[name](ctx)
            except Exception as exc:  # one scenario's crash is its row's failure, not the suite's end
                row = Row(name, problems=[f"the scenario crashed: {type(exc).__name__}: {exc}"])
            rows.append(row)
            print(row.line(), flush=True)
    finally:
        ctx.close()
        broker.delete()
        if args.keep:
            print(f"logs and stores kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = [r for r in rows if not r.passed]
    print(f"{len(rows) - len(failed)} of {len(rows)} scenarios passed in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
