"""What the engine's tests share: `ev`, which makes events of customer C1 (by default) at T0 plus some seconds."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from recovery.events import Event
from recovery.times import format_time
from tests.conftest import T0

Make = Callable[..., Event]


@pytest.fixture
def ev() -> Make:
    """`ev(type, at, customer_id="C1", **data)`: an event `at` seconds after T0, ids e1, e2, ... unless `data` has
    an `id`."""
    ids = itertools.count(1)

    def make(type: str, at: float, customer_id: str = "C1", **data: Any) -> Event:
        raw = {
            "id": data.pop("id", None) or f"e{next(ids)}",
            "type": type,
            "customer_id": customer_id,
            "occurred_at": format_time(T0 + at),
            "data": data,
        }
        return Event.from_dict(raw)

    return make
