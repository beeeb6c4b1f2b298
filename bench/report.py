"""What the benches print: table rows, percentiles and the machine's load (the figures depend on it)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence


def line(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One row: the first cell left-aligned, the others right-aligned, each to its width, two spaces apart. A row of
    fewer cells than widths is a name and a note ('skipped: why'), the note written as it is after the name."""
    if len(cells) < len(widths):
        return f"{cells[0]:<{widths[0]}s}  {'  '.join(cells[1:])}".rstrip()
    rest = (f"{cell:>{width}s}" for cell, width in zip(cells[1:], widths[1:], strict=False))
    return "  ".join([f"{cells[0]:<{widths[0]}s}", *rest])


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The rows under the header, each column as wide as its widest cell (a note does not widen any), with a rule
    under the header and one under the last row."""
    widths = [len(title) for title in header]
    for row in rows:
        if len(row) == len(header):
            widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
        else:
            widths[0] = max(widths[0], len(row[0]))
    head = line(header, widths)
    rule = "-" * len(head)
    return "\n".join([head, rule, *(line(row, widths) for row in rows), rule])


def percentile(ordered: Sequence[float], q: float) -> float:
    """The `q`th percentile (0 < q <= 100) of values sorted in ascending order, by nearest rank: the smallest value
    that at least q% of the values are less than or equal to (p100 is the maximum)."""
    if not ordered:
        raise ValueError("no values: a percentile needs at least one")
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q!r}: give one above 0 and up to 100")
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def per_second(count: float, seconds: float) -> float:
    """`count` over `seconds`; infinity for no time at all."""
    return count / seconds if seconds > 0 else float("inf")


def load() -> str:
    """The machine's load average (1, 5 and 15 minutes) and its CPUs, for the closing lines of a bench."""
    return f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)"
