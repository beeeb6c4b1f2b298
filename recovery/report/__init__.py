"""`recovery report`: the customer-loss review and the guerrilla metrics (docs/operations.md, "The customer-loss
review"). `build.py` computes the report from a store (customers.py, losses.py, results.py, trends.py: each figure
defined in its docstring); `html.py` renders it as one printable page with charts made by `charts.py`; `sources.py`
gives a store replayed from a file of events."""

from __future__ import annotations

from recovery.report.build import build_report
from recovery.report.periods import BY, By

__all__ = ["BY", "By", "build_report"]
