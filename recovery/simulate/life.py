"""The customer's life cycle, shared by the batch model (`model`) and the live one (`live`): joining, renewing,
referring others, and being lost, likelier after distress. Each function draws from the model's `Random` and
answers in seconds after its cause, so that both models place the results on their own clocks.

Distress is a cancellation request, a complaint resolved late or never, a burst of repeat calls, a failed payment
not made good, a survey score of 4 or less, an outage: each may be followed by the customer's loss some days later
(chances below), and each in the 90 days before a contract's anniversary (outages of 4 hours or more) makes not
renewing likelier. The chances hold at the batch model's default pace (about 0.2 activities a customer a day); a
model whose customers are busier passes a `calm` factor below 1 that scales them down, so churn stays a few percent
a month.
"""

from __future__ import annotations

import math
from bisect import bisect
from collections.abc import Sequence
from itertools import accumulate
from random import Random
from typing import Any

from recovery.effects import task_id
from recovery.events import TIERS

DAY = 86_400
HOUR = 3_600

JOIN_CHANNELS = ("web", "store", "partner", "phone")
JOIN_CHANNEL_WEIGHTS = (50, 25, 15, 10)
REFERRAL_CHANNEL = "referral"
"""The `channel` of a customer who joins after a `customer.referred` names them."""
RENEWAL_REASONS = ("auto-renewal", "satisfied", "upgrade", "discount", "retention-offer")
RENEWAL_WEIGHTS = (50, 30, 12, 6, 2)
RENEWAL_WEIGHTS_DISTRESSED = (25, 5, 0, 35, 35)
"""Why a customer with distress in the 90 days before renews: a deal, more often than not."""
LOSS_REASONS = ("price", "service", "outage", "moved", "competitor")
COMPLAINT_CATEGORIES = ("billing", "network", "service", "other")
COMPLAINT_CATEGORY_WEIGHTS = (35, 30, 25, 10)
CARE_TASKS = (
    ("repeat-caller", "care-callback"),
    ("detractor-followup", "care-callback"),
    ("complaint-unresolved", "complaints-escalation"),
    ("outage-recovery", "outage-followup"),
)
"""The (playbook, queue) of the frontline tasks other than the save desk's, as the shipped playbooks name them."""
TASK_OUTCOMES = ("saved", "not-needed", "unreachable", "lost")
TASK_OUTCOME_WEIGHTS = (45, 30, 25, 0)
"""A care task's outcome; only the save desk records customers as lost."""
REASON_CODES = {
    "saved": ("issue-fixed", "explained", "credit-applied"),
    "not-needed": ("already-resolved", "duplicate"),
    "unreachable": ("no-answer", "voicemail"),
}
AGENTS = 12

LOSS_REASON_WEIGHTS: dict[str, tuple[int, ...]] = {
    # over LOSS_REASONS: price, service, outage, moved, competitor
    "background": (35, 10, 0, 25, 30),
    "cancellation": (35, 20, 5, 10, 30),
    "complaint": (20, 60, 0, 0, 20),
    "calls": (15, 60, 0, 0, 25),
    "payment": (80, 0, 0, 10, 10),
    "detractor": (30, 40, 0, 0, 30),
    "outage": (0, 10, 70, 0, 20),
    "renewal": (50, 10, 0, 0, 40),
}
"""Why a customer is lost, by what drove them away."""

# Rates per customer and day of simulated time (independent of how busy customers are).
BACKGROUND_LOSS_PER_DAY = 0.005 / 30
"""Customers lost without any distress (they move, find a better price): 0.5% a month."""
JOIN_PER_DAY = 0.02 / 30
"""New customers through the channels (web, store, partner, phone): 2% of the customer base a month."""
REFERRAL_PER_DAY = 0.005 / 30
"""Customers who refer someone, besides promoters: 0.5% a month."""
RENEWAL_EVERY_DAYS = 365
"""Contracts are yearly: a customer's anniversary falls anywhere in the year."""

# Chances per event, at the default pace (times `calm`).
PROMOTER_REFERRAL = 0.03
"""A survey score of 9 or 10 is followed by a referral within 2 weeks."""
NOT_RENEWING = 0.04
NOT_RENEWING_PER_DISTRESS = 0.05
NOT_RENEWING_MAX = 0.5
RENEWAL_LOOKBACK_S = 90 * DAY
SAVE_DESK_REACH = 0.6
"""A cancellation request is followed by the save desk's closed task (1 to 20 hours later)."""
SAVE_OUTCOMES = ("saved", "lost", "unreachable")
SAVE_OUTCOME_WEIGHTS = (50, 30, 20)
SAVE_OUTCOME_LOSS = {"saved": 0.05, "lost": 0.9, "unreachable": 0.5}
"""After the save desk's call: lost within 1 hour to 3 days, unless saved."""
UNREACHED_LOSS = 0.5
"""A cancellation request the save desk never answered: lost within 6 hours to 5 days."""
COMPLAINT_LOSS = (0.002, 0.01, 0.025)
"""A complaint resolved within 48 hours, later, never: lost within 2 to 15 days of opening it."""
CALLS_LOSS = 0.05
"""A burst of repeat calls: lost within 1 to 10 days of the last."""
PAYMENT_RECOVERED = 0.6
"""A failed payment is followed by `payment.succeeded` within 1 hour to 4 days."""
PAYMENT_LOSS = 0.015
"""A failed payment never made good: lost within 3 to 20 days."""
DETRACTOR_SCORE = 4
DETRACTOR_LOSS = 0.03
"""A survey score of 4 or less: lost within 1 to 15 days."""
OUTAGE_LOSS_PER_HOUR = 0.001
OUTAGE_LOSS_MAX = 0.01
"""An outage: lost within 1 to 10 days of its end, a chance growing with its length."""
LONG_OUTAGE_S = 4 * HOUR
"""An outage this long or longer counts as distress at renewal."""

Loss = tuple[int, str]
"""A loss to come: seconds after its cause, and its reason (one of LOSS_REASONS)."""


def cumulative(weights: Sequence[float]) -> list[float]:
    """Cumulative shares of `weights`, for `bisect(cum, random())`; the last is exactly 1."""
    total = float(sum(weights))
    cum = [w / total for w in accumulate(weights)]
    cum[-1] = 1.0
    return cum


JOIN_CHANNEL_CUM = cumulative(JOIN_CHANNEL_WEIGHTS)
RENEWAL_CUM = cumulative(RENEWAL_WEIGHTS)
RENEWAL_DISTRESSED_CUM = cumulative(RENEWAL_WEIGHTS_DISTRESSED)
COMPLAINT_CATEGORY_CUM = cumulative(COMPLAINT_CATEGORY_WEIGHTS)
TASK_OUTCOME_CUM = cumulative(TASK_OUTCOME_WEIGHTS)
SAVE_OUTCOME_CUM = cumulative(SAVE_OUTCOME_WEIGHTS)
LOSS_REASON_CUM = {cause: cumulative(weights) for cause, weights in LOSS_REASON_WEIGHTS.items()}


def later(rng: Random, low_s: float, high_s: float) -> int:
    """Whole seconds between `low_s` and `high_s`, log-uniform (short delays as likely as long ones per decade)."""
    return int(math.exp(rng.uniform(math.log(low_s), math.log(high_s))))


def loss(rng: Random, chance: float, cause: str, low_s: float, high_s: float) -> Loss | None:
    """With `chance`, a loss `low_s` to `high_s` seconds after its cause, with a reason drawn for `cause`."""
    if rng.random() >= chance:
        return None
    return later(rng, low_s, high_s), LOSS_REASONS[bisect(LOSS_REASON_CUM[cause], rng.random())]


def background_reason(rng: Random) -> str:
    """The reason of a loss without distress."""
    return LOSS_REASONS[bisect(LOSS_REASON_CUM["background"], rng.random())]


def join_channel(rng: Random) -> str:
    return JOIN_CHANNELS[bisect(JOIN_CHANNEL_CUM, rng.random())]


def joined(profile: dict[str, Any], channel: str) -> dict[str, Any]:
    """The `customer.joined` data of a customer whose first profile is `profile`."""
    return {"annual_value": profile["annual_value"], "segment": profile["segment"], "channel": channel}


def lost(reason: str, profile: dict[str, Any]) -> dict[str, Any]:
    """The `customer.lost` data: its reason and the annual value lost (the latest profile's)."""
    return {"reason": reason, "annual_value": profile["annual_value"]}


def complaint_category(rng: Random) -> str:
    return COMPLAINT_CATEGORIES[bisect(COMPLAINT_CATEGORY_CUM, rng.random())]


def care_task(rng: Random) -> dict[str, Any]:
    """The `task.completed` data of a frontline task closed (not the save desk's), as the API sends it."""
    random = rng.random
    playbook, queue = CARE_TASKS[int(random() * len(CARE_TASKS))]
    outcome = TASK_OUTCOMES[bisect(TASK_OUTCOME_CUM, random())]
    codes = REASON_CODES[outcome]
    return _task(rng, playbook, queue, outcome, codes[int(random() * len(codes))])


def _task(rng: Random, playbook: str, queue: str, outcome: str, reason_code: str) -> dict[str, Any]:
    return {
        "task_id": f"tsk-{rng.getrandbits(96):024x}",
        "playbook": playbook,
        "queue": queue,
        "outcome": outcome,
        "reason_code": reason_code,
        "agent": f"agent-{1 + int(rng.random() * AGENTS):02d}",
    }


SAVE_DESK_PLAYBOOK = "cancellation-save"
"""The shipped playbook whose task the save desk works: its closed task names the task that playbook raises."""


def save_desk_task_id(customer_id: str, request_id: str) -> str:
    """The id of the task `cancellation-save` raises for the cancellation request `request_id` (the engine's id of
    an event trigger's first task), so the save desk's `task.completed` closes that task, as the API's would. A
    request within the playbook's cooldown raises no task, and its completion then names none."""
    return task_id(SAVE_DESK_PLAYBOOK, customer_id, request_id, 0)


class SaveDesk:
    """The save desk's closed tasks waiting for their request's event id: a request's `data` is planned with the
    `task.completed` data that will follow it (`planned`); once the request is sent under its id (`sent`), that
    data names the task `cancellation-save` raised for it."""

    def __init__(self) -> None:
        self._waiting: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        """id of a request's data: (that data, kept alive so the id stays its own; the completion's data)."""

    def planned(self, request: dict[str, Any], completion: dict[str, Any]) -> None:
        self._waiting[id(request)] = (request, completion)

    def sent(self, customer_id: str | None, event_id: str, data: dict[str, Any]) -> None:
        """`data` was sent as event `event_id` (any event: only a planned request's data is waited for)."""
        waiting = self._waiting.pop(id(data), None)
        if waiting is not None and waiting[0] is data:
            waiting[1]["task_id"] = save_desk_task_id(str(customer_id), event_id)


def after_cancellation(rng: Random, calm: float) -> tuple[tuple[int, dict[str, Any]] | None, Loss | None]:
    """What follows a cancellation request: the save desk's closed task (seconds after the request, its
    `task.completed` data, whose `task_id` a `SaveDesk` sets once the request has its id) when
    it reached the customer, and the loss (seconds after the request) unless they
    stay. A customer the save desk records as lost is lost for the reason it noted."""
    random = rng.random
    if random() >= SAVE_DESK_REACH:
        return None, loss(rng, UNREACHED_LOSS * calm, "cancellation", 6 * HOUR, 5 * DAY)
    after = later(rng, HOUR, 20 * HOUR)
    outcome = SAVE_OUTCOMES[bisect(SAVE_OUTCOME_CUM, random())]
    gone = loss(rng, SAVE_OUTCOME_LOSS[outcome] * calm, "cancellation", HOUR, 3 * DAY)
    if outcome == "lost":
        code = gone[1] if gone else "price"
    else:
        code = "retention-offer" if outcome == "saved" else "no-answer"
    task = _task(rng, SAVE_DESK_PLAYBOOK, "save-desk", outcome, code)
    return (after, task), None if gone is None else (after + gone[0], gone[1])


def after_complaint(rng: Random, resolved_in_s: int, calm: float) -> tuple[bool, Loss | None]:
    """(distress, loss) after a complaint resolved `resolved_in_s` after its opening (-1: never)."""
    fate = 2 if resolved_in_s < 0 else 1 if resolved_in_s > 48 * HOUR else 0
    return fate > 0, loss(rng, COMPLAINT_LOSS[fate] * calm, "complaint", 2 * DAY, 15 * DAY)


def after_calls(rng: Random, calm: float) -> Loss | None:
    """After a burst of repeat calls (seconds after the last)."""
    return loss(rng, CALLS_LOSS * calm, "calls", DAY, 10 * DAY)


def after_payment_failure(
    rng: Random, failed: dict[str, Any], calm: float
) -> tuple[tuple[int, dict[str, Any]] | None, Loss | None]:
    """The `payment.succeeded` that makes a failed payment good (seconds after, data), or else perhaps a loss."""
    if rng.random() < PAYMENT_RECOVERED:
        data = {"amount": failed["amount"], "method": failed["method"], "attempt": failed["attempt"] + 1}
        return (later(rng, HOUR, 4 * DAY), data), None
    return None, loss(rng, PAYMENT_LOSS * calm, "payment", 3 * DAY, 20 * DAY)


def after_survey(rng: Random, score: int, calm: float) -> tuple[bool, Loss | None, int | None]:
    """(distress, loss, seconds until the customer refers someone) after a survey answered with `score`."""
    if score <= DETRACTOR_SCORE:
        return True, loss(rng, DETRACTOR_LOSS * calm, "detractor", DAY, 15 * DAY), None
    if score >= 9 and rng.random() < PROMOTER_REFERRAL * calm:
        return False, None, later(rng, DAY, 14 * DAY)
    return False, None, None


def after_outage(rng: Random, duration_s: float, calm: float) -> tuple[bool, Loss | None]:
    """(distress, loss: seconds after the outage's start) for a customer of a region out for `duration_s`."""
    chance = min(OUTAGE_LOSS_MAX, OUTAGE_LOSS_PER_HOUR * duration_s / HOUR) * calm
    gone = loss(rng, chance, "outage", DAY, 10 * DAY)
    return duration_s >= LONG_OUTAGE_S, None if gone is None else (int(duration_s) + gone[0], gone[1])


def renewal(
    rng: Random, profile: dict[str, Any], distress: int, calm: float
) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """At a contract's anniversary, with `distress` distressing events in the 90 days before: the loss reason of
    a customer who does not renew, or the renewed profile and the `customer.renewed` data."""
    random = rng.random
    leaving = min(NOT_RENEWING_MAX, NOT_RENEWING + NOT_RENEWING_PER_DISTRESS * distress * calm)
    if random() < leaving:
        return LOSS_REASONS[bisect(LOSS_REASON_CUM["renewal"], random())]
    reason = RENEWAL_REASONS[bisect(RENEWAL_DISTRESSED_CUM if distress else RENEWAL_CUM, random())]
    value: float = profile["annual_value"]
    if reason == "upgrade":
        tier = TIERS[min(len(TIERS) - 1, TIERS.index(profile["tier"]) + 1)]
        profile = {**profile, "tier": tier}
        value *= rng.uniform(1.15, 1.4)
    elif reason in ("discount", "retention-offer"):
        value *= rng.uniform(0.8, 0.95)
    else:
        value *= rng.uniform(0.98, 1.08)
    profile = {**profile, "annual_value": round(value, 2)}
    return profile, {"annual_value": profile["annual_value"], "reason": reason}
