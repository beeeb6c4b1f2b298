"""bench.report: percentiles by nearest rank, rates, and the table layout."""

from __future__ import annotations

import pytest

from bench.report import per_second, percentile, table


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 100, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 51, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([float(n) for n in range(1, 101)], 99, 99.0),
        ([float(n) for n in range(1, 1001)], 99, 990.0),
        ([1.0, 2.0, 3.0], 0.1, 1.0),
    ],
)
def test_percentile_by_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


@pytest.mark.parametrize("q", [0, -1, 100.5])
def test_percentile_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], q)


def test_percentile_of_nothing() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_per_second() -> None:
    assert per_second(10, 2.0) == 5.0
    assert per_second(10, 0.0) == float("inf")


def test_table_aligns_columns_and_keeps_notes_narrow() -> None:
    rows = [["peer", "9", "1,000"], ["recovery, SQLite", "10", "250"], ["PostgreSQL", "skipped: no server here"]]
    assert table(["what", "s", "events/s"], rows).splitlines() == [
        "what               s  events/s",
        "------------------------------",
        "peer               9     1,000",
        "recovery, SQLite  10       250",
        "PostgreSQL        skipped: no server here",
        "------------------------------",
    ]
