"""The loss review on small hand-computed cases: every loss, most valuable first, with its recovery history (tasks
and their outcomes, gestures, muted effects) or none; totals by reason; the share of the lost value without a
recovery attempt."""

from __future__ import annotations

from recovery.store import MemoryStore
from recovery.store.fact_records import LifecycleFact, ProfileFact
from recovery.times import format_time
from tests.report.conftest import DAY, W, report
from tests.store.test_desk import make_gesture, make_task


def at(day: float) -> str:
    return format_time(W + day * DAY)


def lose(store: MemoryStore, customer: str, day: float, value: float, reason: str | None = "price") -> None:
    store.put_fact(ProfileFact(f"p-{customer}", customer, W - 200 * DAY, "gold", "smb", "north", value))
    store.put_fact(LifecycleFact(f"lost-{customer}-{day}", "lost", customer, W + day * DAY, reason=reason))


def review() -> MemoryStore:
    store = MemoryStore()
    lose(store, "A", 5, 3000)  # a task saved earlier, a gesture; a task still open, cancelled by the loss
    store.put_effect(make_task("a1", customer_id="A", playbook="cancellation-save", created_at=at(-10)))
    store.claim_task("a1", "ann", W)
    store.complete_task("a1", "ann", W - 9 * DAY, "saved", "offer-accepted", "")
    store.put_effect(make_gesture("ga").model_copy(update={"customer_id": "A", "created_at": at(-10)}))
    store.put_effect(make_task("a2", customer_id="A", playbook="repeat-caller", created_at=at(4)))
    store.cancel_tasks(["a2"], W + 5 * DAY, "customer-lost")
    lose(store, "B", 6, 1000, reason=None)  # only a task 91 days before, and a muted one: no attempt
    store.put_effect(make_task("b1", customer_id="B", created_at=at(6 - 91)))
    muted = make_task("b2", customer_id="B", playbook="repeat-caller", created_at=at(5))
    store.put_muted(muted, "inhibited by cancellation-save", "the customer's case is open", W + 5 * DAY)
    lose(store, "C", 1, 1000, reason="service")  # a task raised after the loss is no attempt at saving them
    store.put_effect(make_task("c1", customer_id="C", created_at=at(2)))
    lose(store, "D", 20, 9999)  # outside the period
    return store


def test_every_loss_most_valuable_first_with_its_history() -> None:
    lost = report(review(), 0, 14)["lost"]
    assert [(r["customer_id"], r["value"], r["reason"], r["recovery_attempted"]) for r in lost] == [
        ("A", 3000, "price", True),
        ("C", 1000, "service", False),  # same value as B, lost earlier
        ("B", 1000, "unspecified", False),
    ]
    a, c, b = lost
    assert a["playbooks"] == ["cancellation-save", "p", "repeat-caller"]
    assert [(t["id"], t["status"], t["outcome"], t["cancel_reason"]) for t in a["tasks"]] == [
        ("a1", "done", "saved", None),
        ("a2", "cancelled", None, "customer-lost"),
    ]
    assert [(g["id"], g["type"], g["amount"], g["status"]) for g in a["gestures"]] == [
        ("ga", "service-credit", 10.0, "proposed")
    ]
    assert (b["tasks"], b["gestures"], c["tasks"]) == ([], [], [])
    assert [(m["playbook"], m["muted_by"]) for m in b["muted"]] == [("repeat-caller", "inhibited by cancellation-save")]
    assert (a["tier"], a["segment"], a["region"], a["at"]) == ("gold", "smb", "north", at(5))


def test_totals_by_reason_and_the_share_without_an_attempt() -> None:
    totals = report(review(), 0, 14)["loss_review"]
    assert totals["count"] == 3 and totals["value"] == 5000
    assert totals["by_reason"] == {
        "price": {"count": 1, "value": 3000},
        "service": {"count": 1, "value": 1000},
        "unspecified": {"count": 1, "value": 1000},
    }
    assert totals["unattempted"] == {"count": 2, "value": 2000}
    assert totals["unattempted_value_share"] == 2000 / 5000
    assert totals["unattempted_count_share"] == 2 / 3
    assert totals["tasks_cancelled_by_loss"] == 1


def test_no_loss_no_share() -> None:
    totals = report(MemoryStore(), 0, 7)["loss_review"]
    assert (totals["count"], totals["unattempted_value_share"], totals["by_reason"]) == (0, None, {})
