"""compile_playbook: each expression is checked for the type its place wants (a condition gives true/false, an
amount a number)."""

from __future__ import annotations

import pytest

from recovery.exceptions import PlaybookError
from recovery.playbooks.loader import load_playbook_text

PLAYBOOK = """\
id: p
trigger:
  event: x.y
actions:
  - task:
      queue: q
      priority: P2
      due_in: 24h
      title: t
      reason: r
      when: "{when}"
  - gesture:
      type: apology
      amount: "{amount}"
      reason: r
"""


def problems(when: str = "true", amount: str = "5") -> list[str]:
    try:
        load_playbook_text(PLAYBOOK.format(when=when, amount=amount), "p.yaml")
    except PlaybookError as exc:
        return [p.message for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("place", "text", "message"),
    [
        ("when", "1 + 1", "expected bool here, but the expression gives number"),
        ("amount", "'a'", "expected number here, but the expression gives string"),
    ],
)
def test_wanted_type(place: str, text: str, message: str) -> None:
    assert problems(**{place: text}) == [message]


@pytest.mark.parametrize("text", ["event.data.x", "null", "1 < 2"])
def test_wanted_type_accepts_any_null_and_the_type(text: str) -> None:
    assert problems(when=text) == []
