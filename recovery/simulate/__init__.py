"""Simulated traffic (DESIGN.md event envelopes): a deterministic batch of a period, or a live paced stream.

Customers come with a tier (standard/silver/gold/platinum about 60/25/10/5%), one of eight regions, a segment
and an annual value; they call (some several times in a row), complain (with a category; most complaints resolved,
some only after 48 hours, some never), answer surveys (score 0 to 10), fail payments (most made good within days:
`payment.succeeded`), change profile, close frontline tasks and, rarely, ask to cancel (the save desk's task often
follows). Regions have outages (`outage.started` with `data.region` and no customer, `outage.resolved` 30 minutes
to 10 hours later). Customers join (`customer.joined`, right after their first profile) through a channel or
because another customer referred them (`customer.referred`, then `customer.joined` with channel `referral`),
renew at their contract's anniversary (`customer.renewed`, right after the renewed profile) and are lost
(`customer.lost`, nothing about them after it), likelier after distress (`life`). All randomness comes from one
`random.Random(seed)`.

- `generate` plans a whole period in memory and yields it sorted by `occurred_at` (ties keep generation order),
  event ids numbered in that order: byte-identical output for the same arguments (`bench/generate.py`).
- `live_events` is an endless stream at a fixed rate: every profile first, then one event per tick, each stamped
  with the (simulated) time of its tick; `run` sends either to a `Sink`, pacing the live one in real time.

Modules: `model` (the customers, what they do, shared by both models), `life` (their life cycle), `batch`
(`generate`), `live` (`live_events`, `traffic`), `sinks` (a file or a Kafka topic, `run`).
"""

from recovery.simulate.batch import expected_events_per_customer, generate, generate_lines
from recovery.simulate.life import COMPLAINT_CATEGORIES, JOIN_CHANNELS, LOSS_REASONS, REFERRAL_CHANNEL, RENEWAL_REASONS
from recovery.simulate.live import Traffic, live_events, traffic
from recovery.simulate.model import (
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
    BrokerError,
    Clock,
    SimulateError,
    dumps,
    parse_start,
    write,
)
from recovery.simulate.sinks import FileSink, KafkaSink, Sink, run, stop_on_signals, summary

__all__ = [
    "CALL_REASONS",
    "COMPLAINT_CATEGORIES",
    "DEFAULT_START",
    "HOUR_CUM",
    "JOIN_CHANNELS",
    "LOSS_REASONS",
    "OUTAGE_EVERY_DAYS",
    "REASON_CUM",
    "REFERRAL_CHANNEL",
    "REGIONS",
    "RENEWAL_REASONS",
    "SCORE_CUM",
    "SEGMENTS",
    "SEGMENT_CUM",
    "TIERS",
    "TIER_CUM",
    "TIER_VALUE",
    "BrokerError",
    "Clock",
    "FileSink",
    "KafkaSink",
    "SimulateError",
    "Sink",
    "Traffic",
    "dumps",
    "expected_events_per_customer",
    "generate",
    "generate_lines",
    "live_events",
    "parse_start",
    "run",
    "stop_on_signals",
    "summary",
    "traffic",
    "write",
]
