"""What each event type sets off in the engine (its `Plan`), worked out once from the playbooks: the engine looks
an event's type up and does only what its plan says."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from recovery.engine.cases import CASE_TYPES
from recovery.events import PROFILE_TYPE
from recovery.playbooks.compiler import CompiledPlaybook


@dataclass(frozen=True)
class Plan:
    """What one event type sets off for a customer: kept in history (with its data or not), and the playbooks it
    answers (absence), starts waiting for (absence), fires (event) and completes (sequence). A type without a
    plan is not looked at."""

    type: str = ""  # the type, interned: every occurrence in history shares it
    profile: bool = False  # a profile update (customer.updated)
    case: bool = False  # changes the customer's case or snoozes (cases.CASE_TYPES)
    keep: bool = False
    keep_data: bool = False
    missing: tuple[CompiledPlaybook, ...] = ()
    first: tuple[CompiledPlaybook, ...] = ()
    event: tuple[CompiledPlaybook, ...] = ()
    then: tuple[CompiledPlaybook, ...] = ()


def plans(playbooks: Sequence[CompiledPlaybook], history_types: frozenset[str]) -> dict[str, Plan]:
    """Each event type's plan (a type no playbook reads, keeps or evaluates has none), `history_types` being the
    types playbooks look back to."""
    by_role: dict[str, dict[str, list[CompiledPlaybook]]] = {r: {} for r in ("missing", "first", "event", "then")}
    for pb in playbooks:
        if pb.kind == "event":
            for event_type in pb.event_types:
                by_role["event"].setdefault(event_type, []).append(pb)
        elif pb.kind == "sequence":
            by_role["then"].setdefault(pb.event_type, []).append(pb)
        else:
            by_role["first"].setdefault(pb.event_type, []).append(pb)
            by_role["missing"].setdefault(pb.end_type or "", []).append(pb)
    paired = frozenset().union(*(pb.kept_with_data for pb in playbooks))
    return {
        event_type: Plan(
            type=sys.intern(event_type),
            profile=event_type == PROFILE_TYPE,
            case=event_type in CASE_TYPES,
            keep=event_type in history_types or event_type == PROFILE_TYPE,
            keep_data=event_type in paired or event_type == PROFILE_TYPE,
            **{role: tuple(found.get(event_type, ())) for role, found in by_role.items()},
        )
        for event_type in {PROFILE_TYPE, *CASE_TYPES, *history_types}.union(*by_role.values())
    }
