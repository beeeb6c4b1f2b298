"""What an engine has done since it was built: cumulative counts, read by the metrics (`Metrics.observe_engine`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EngineStats:
    """Counts since the engine was built; `matches` and `suppressed` (by a cooldown) per playbook id, `muted`
    effects per (playbook id, reason: inhibited, snoozed, shadow or held-out), tasks `cancelled` (their customer
    lost). `errors` counts evaluations that failed, `playbook_errors` the same per playbook id; `shadow` the
    effects kept in shadow mode per (playbook id, version, kind); `triggers` the matches of playbooks with a holdout
    that passed their cooldown and would raise something, per (playbook id, group: treated or held-out)."""

    events: int = 0
    duplicates: int = 0
    fanned_out: int = 0
    matches: dict[str, int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)
    effects: int = 0
    deadlines_fired: int = 0
    evictions: int = 0
    rebuilds: int = 0
    errors: int = 0
    muted: dict[tuple[str, str], int] = field(default_factory=dict)
    playbook_errors: dict[str, int] = field(default_factory=dict)
    shadow: dict[tuple[str, int, str], int] = field(default_factory=dict)
    triggers: dict[tuple[str, str], int] = field(default_factory=dict)
    cancelled: int = 0
    cases_opened: int = 0
    cases_closed: int = 0
