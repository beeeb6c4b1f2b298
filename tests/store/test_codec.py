"""The stores' JSON text: what json.loads reads back is what was written."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from recovery.store.codec import dumps

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_what_is_written_reads_back_the_same(value: Any) -> None:
    assert json.loads(dumps(value)) == value


def test_a_lone_surrogate_utf8_cannot_hold_is_escaped() -> None:
    assert json.loads(dumps({"note": "\ud800"})) == {"note": "\ud800"}


def test_control_characters_are_escaped_so_postgresql_text_can_hold_them() -> None:
    assert "\x00" not in dumps("a\x00b")
