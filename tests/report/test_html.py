"""The printable page: every section's tables, SVG charts made on the server (labelled, in black and white with
hatches and markers), names escaped, nothing cut without saying so."""

from __future__ import annotations

import re

from recovery.report import build_report
from recovery.report.charts import MAX_SERIES, bars, lines
from recovery.report.html import render_html
from recovery.store import MemoryStore
from tests.report.conftest import DAY, W, ev, report, run
from tests.report.test_customers import STREAM


def test_the_page_has_every_section_with_tables_beside_charts() -> None:
    page = render_html(report(run(STREAM), 0, 14))
    for heading in ("Guerrilla metrics", "Loss review", "Recovery results per playbook", "Trends"):
        assert f">{heading}</h2>" in page
    for table in ("summary", "per-period", "renewals", "revenue-by_tier", "loss-reasons", "lost", "playbooks"):
        assert f'<table id="{table}">' in page
    svgs = re.findall(r"<svg role=\"img\" aria-label=\"([^\"]+)\"", page)
    assert "New and lost customers per period" in svgs and "Lost value by reason" in svgs
    assert len(svgs) == 3 and "<?xml" not in page and "<!DOCTYPE svg" not in page  # no playbook, no trend: no chart
    assert "@media print" in page and "break-inside: avoid" in page
    assert 'data-customer-id="A"' in page and "No recovery attempted." in page
    assert "2026-W45" in page and "1,650" in page  # the lost value, in the table


def test_names_from_events_are_escaped_and_charts_take_them_literally() -> None:
    hostile = "<script>alert(1)</script> $x$"
    store = run([ev("complaint.opened", "C1", 1, {"complaint_id": "K", "category": hostile})])
    page = render_html(report(store, 0, 7))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; $x$" in page  # the table
    assert "&lt;script&gt;alert(1)&lt;/script&gt; $x$" in page.split('id="chart-complaints"')[1]  # the chart's legend


def test_a_chart_with_too_many_series_says_so() -> None:
    events = [ev("service.call", "C1", 1, {"reason": f"reason-{n:02d}"}) for n in range(MAX_SERIES + 2)]
    page = render_html(build_report(run(events), W, W + 7 * DAY))
    assert f"The {MAX_SERIES} largest of {MAX_SERIES + 2} shown; the table lists them all." in page
    table = page.split('id="table-service_calls"')[1].split("</table>")[0]
    assert table.count("reason-") == MAX_SERIES + 2


def test_charts_are_svg_with_hatches_markers_and_a_legend() -> None:
    chart = str(bars("t", ["a", "b"], {"new": [1, 2], "lost": [2, 1]}, "customers"))
    assert chart.startswith("<svg ") and "<title>t</title>" in chart
    assert "<pattern " in chart and ">new<" in chart and ">lost<" in chart and ">customers<" in chart
    chart = str(lines("t", ["w1", "w2"], {"x": [1, 2], "y": [2, 1]}, "calls"))
    assert chart.count("<use ") >= 4  # markers
    assert str(lines("t", ["w1"], {"x": [1]}, "calls")) == str(lines("t", ["w1"], {"x": [1]}, "calls"))


def test_an_empty_report_renders() -> None:
    page = render_html(build_report(MemoryStore(), W, W + DAY))
    assert "No customer lost in the period." in page and "No task raised in the period." in page
