"""The report as one self-contained, printable HTML page: tables of every figure beside SVG charts drawn on the server
(charts.py). The same page is written by `recovery report --format html` and served at `/reports` (with a form to
choose the period: `controls`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from recovery.report import charts
from recovery.report.trends import METRICS
from recovery.times import format_duration

TEMPLATES = Path(__file__).parent / "templates"
TREND_TITLES = {
    "complaints": ("Complaints per category per week", "complaints"),
    "service_calls": ("Service calls per reason per week", "calls"),
    "outage_minutes": ("Outage minutes per region (week the outage started)", "minutes"),
}
OUTCOMES = ("saved", "lost", "unreachable", "not_needed", "cancelled", "open")


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _duration(value: float | None) -> str:
    return "—" if value is None else format_duration(value)


ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(("html",)))
ENV.filters.update(number=_number, percent=_percent, duration=_duration)


def _charts(report: dict[str, Any]) -> dict[str, Markup]:
    periods = report["periods"]
    labels = [p["label"] for p in periods]
    found = {
        "customers": charts.bars(
            "New and lost customers per period",
            labels,
            {"new": [p["new"]["count"] for p in periods], "lost": [p["lost"]["count"] for p in periods]},
            "customers",
        ),
        "revenue": charts.lines(
            "Revenue (annual value of active customers) at the end of each period",
            labels,
            {"revenue": [p["revenue_end"]["value"] for p in periods]},
            "annual value",
        ),
    }
    reasons = report["loss_review"]["by_reason"]
    if reasons:
        found["loss_reasons"] = charts.hbars(
            "Lost value by reason", list(reasons), [r["value"] for r in reasons.values()], "annual value lost"
        )
    playbooks = report["playbooks"]
    if playbooks:
        found["outcomes"] = charts.bars(
            "Tasks raised per playbook, by what became of them",
            list(playbooks),
            {name.replace("_", "-"): [r[name] for r in playbooks.values()] for name in OUTCOMES},
            "tasks",
            stacked=True,
        )
    weeks = [w["label"] + ("" if w["complete"] else " (partial)") for w in report["trends"]["weeks"]]
    for metric in METRICS:
        title, unit = TREND_TITLES[metric]
        if report["trends"][metric]["series"]:
            found[metric] = charts.lines(title, weeks, report["trends"][metric]["series"], unit)
    return found


def render_html(report: dict[str, Any], controls: dict[str, str] | None = None) -> str:
    """The report page. `controls`: the period form's values (`from`, `to`, `by`), for the page served at
    `/reports`; None for a file."""
    return ENV.get_template("report.html").render(
        report=report,
        charts=_charts(report),
        controls=controls,
        trend_titles=TREND_TITLES,
        metrics=METRICS,
        max_series=charts.MAX_SERIES,
    )
