"""A deterministic generator of a realistic event stream (DESIGN.md event envelopes), one JSON line per event.

    python -m bench.generate --customers 2000 --days 30 --seed 7 [--events 50000] [--out FILE]

Every customer first gets a `customer.updated` profile (tier standard/silver/gold/platinum about 60/25/10/5%,
one of eight regions, a segment, an annual value). Then, spread over the period with a daytime bias:
service calls (with a reason; some customers call 3 to 5 times within a few days), complaints (with a category;
most resolved, some only after 48 hours, some never), survey responses (score 0 to 10), failed payments (most
made good within days), profile changes, closed frontline tasks and, rarely, cancellation requests (the save
desk's closed task often follows). Each region has outages now and then (`outage.started` with `data.region` and
no customer, `outage.resolved` 30 minutes to 10 hours later). Customers join (2% a month through a channel, more
when customers refer them), renew at their yearly anniversary and are lost (a few percent a month, likelier after
distress: a cancellation request, complaints left open, repeat calls, unpaid bills, bad surveys, outages), with
nothing about them after their loss.

The output is sorted by `occurred_at` (ties keep generation order) and event ids are numbered in that order.
The same arguments give byte-identical output: all randomness comes from one `random.Random(seed)`.
The model lives in `recovery.simulate` (`recovery simulate --fast` runs it too); this is its bench command line.
`--events` aims the total at a number (approximately) by scaling how active customers are.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from recovery.simulate import (
    CALL_REASONS,
    DEFAULT_START,
    HOUR_CUM,
    OUTAGE_EVERY_DAYS,
    REASON_CUM,
    REGIONS,
    SCORE_CUM,
    SEGMENT_CUM,
    SEGMENTS,
    TIER_CUM,
    TIER_VALUE,
    TIERS,
    Clock,
    dumps,
    expected_events_per_customer,
    generate,
    generate_lines,
    parse_start,
    write,
)

__all__ = [
    "CALL_REASONS",
    "DEFAULT_START",
    "HOUR_CUM",
    "OUTAGE_EVERY_DAYS",
    "REASON_CUM",
    "REGIONS",
    "SCORE_CUM",
    "SEGMENTS",
    "SEGMENT_CUM",
    "TIERS",
    "TIER_CUM",
    "TIER_VALUE",
    "Clock",
    "dumps",
    "expected_events_per_customer",
    "generate",
    "generate_lines",
    "main",
    "parse_start",
    "write",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000, help="number of customers (default 1000)")
    parser.add_argument("--days", type=float, default=30.0, help="length of the period in days (default 30)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--events", type=int, default=None, help="aim the total at about this many events")
    parser.add_argument("--start", default=DEFAULT_START, help=f"start of the period (default {DEFAULT_START})")
    parser.add_argument(
        "--outage-every-days",
        type=float,
        default=OUTAGE_EVERY_DAYS,
        help=f"mean days between outages in one region; 0 for none (default {OUTAGE_EVERY_DAYS:g})",
    )
    parser.add_argument("--out", default="-", help="output file (default stdout)")
    args = parser.parse_args(argv)
    try:
        lines = generate_lines(
            args.customers,
            args.days,
            args.seed,
            args.events,
            start=args.start,
            outage_every_days=args.outage_every_days,
        )
        if args.out == "-":
            n = write(sys.stdout, lines)
        else:
            path = Path(args.out)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8", newline="\n") as out:
                n = write(out, lines)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{n} events", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
