"""The memory store's report facts (see facts.py): the same facts and counts as the SQL stores', in lists and a
dict. Memory has no transaction to sum counts over: each is added at once."""

from __future__ import annotations

import sys

from recovery.store.fact_records import Fact, FactSet, LifecycleFact, Outage, OutageFact, ProfileFact, WeeklyCount
from recovery.store.facts import created_within
from recovery.store.memory_desk import MemoryDesk
from recovery.store.records import GestureRecord, TaskQuery, TaskRecord


class MemoryFacts:
    """Facts by event id (a repeated id changes nothing), outage facts by (outage id, kind), counts by key."""

    def __init__(self, desk: MemoryDesk) -> None:
        self._desk = desk
        self._lifecycle: dict[str, LifecycleFact] = {}
        self._profiles: dict[str, ProfileFact] = {}
        self._outages: dict[tuple[str, str], OutageFact] = {}
        self._counts: dict[tuple[str, str, float], int] = {}

    def put(self, fact: Fact) -> None:
        if isinstance(fact, LifecycleFact):
            self._lifecycle.setdefault(fact.event_id, fact)
        elif isinstance(fact, ProfileFact):
            self._profiles.setdefault(fact.event_id, fact)
        else:
            self._outages.setdefault((fact.outage_id, fact.kind), fact)

    def add_count(self, metric: str, key: str, week: float, n: int) -> None:
        k = (metric, key, week)
        self._counts[k] = self._counts.get(k, 0) + n

    def facts(self, until: float, weeks_since: float) -> FactSet:
        lifecycle = sorted((f for f in self._lifecycle.values() if f.ts < until), key=lambda f: (f.ts, f.event_id))
        profiles = sorted(
            (p for p in self._profiles.values() if p.ts < until), key=lambda p: (p.customer_id, p.ts, p.event_id)
        )
        counts = [
            WeeklyCount(metric, key, week, n)
            for (metric, key, week), n in sorted(self._counts.items())
            if weeks_since <= week < until
        ]
        outages: list[Outage] = []
        for (outage_id, kind), started in sorted(self._outages.items(), key=lambda item: (item[1].ts, item[0][0])):
            if kind != "started" or not weeks_since <= started.ts < until:
                continue
            resolved = self._outages.get((outage_id, "resolved"))
            region = started.region if started.region is not None or resolved is None else resolved.region
            outages.append(Outage(outage_id, region, started.ts, None if resolved is None else resolved.ts))
        return FactSet(lifecycle, profiles, counts, outages)

    def tasks_created(self, since: float, until: float) -> list[TaskRecord]:
        records, _ = self._desk.list_tasks(TaskQuery(limit=sys.maxsize))
        return sorted((t for t in records if since <= t.created_ts < until), key=lambda t: (t.created_ts, t.id))

    def gestures_created(self, since: float, until: float) -> list[GestureRecord]:
        return created_within(self._desk.list_gestures(None, None, sys.maxsize), since, until)
