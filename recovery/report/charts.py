"""The report's charts, drawn on the server by matplotlib (Agg, no GUI) as inline SVG: lines and bars readable on a
printed page in black and white (labelled axes, a legend, and hatches and markers beside the colours, which never
carry a meaning alone). Each chart sits beside a table of its numbers (html.py).

Series beyond `MAX_SERIES` are left out of a chart, and the chart's caption says so (the table lists them all).
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: no GUI, ever

from markupsafe import Markup
from matplotlib.figure import Figure

matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: selectable, searchable, small
        "svg.hashsalt": "recovery-report",  # the same ids for the same chart: output is reproducible
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)

MAX_SERIES = 8
GREYS = ("#1b1f24", "#57606a", "#8c959f", "#0a58ca", "#b42318", "#f79009", "#2da44e", "#6f42c1")
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":", "-", "--", "-.", ":")
_LOCK = threading.Lock()  # matplotlib's font cache and text layout are not made for threads (the API's requests)
_PREAMBLE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def _label(text: str, width: int = 28) -> str:
    """A label as matplotlib writes it literally (a `$` would start mathtext), shortened to `width` for the chart
    (tables show the names in full)."""
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("$", r"\$")


def _svg(fig: Figure, title: str) -> Markup:
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Title": title})
    svg = _PREAMBLE.sub("", buffer.getvalue(), count=1)
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{Markup.escape(title)}" ', 1))  # noqa: S704


def _figure(height: float = 2.8) -> Figure:
    return Figure(figsize=(6.4, height), dpi=72)


def _ticks(fig: Figure, labels: Sequence[str]) -> None:
    ax = fig.axes[0]
    ax.set_xticks(range(len(labels)), [_label(label, 14) for label in labels], rotation=30 if len(labels) > 6 else 0)


def bars(
    title: str, labels: Sequence[str], series: dict[str, Sequence[float]], ylabel: str, stacked: bool = False
) -> Markup:
    """Grouped (or stacked) vertical bars: one group per label, one bar per series, each series its own hatch."""
    with _LOCK:
        fig = _figure()
        ax = fig.add_subplot()
        names = list(series)[:MAX_SERIES]
        width = 0.8 if stacked else 0.8 / max(1, len(names))
        bottoms = [0.0] * len(labels)
        for n, name in enumerate(names):
            values = list(series[name])
            xs = [i if stacked else i - 0.4 + width * (n + 0.5) for i in range(len(labels))]
            ax.bar(
                xs,
                values,
                width,
                bottom=bottoms if stacked else None,
                label=_label(name),
                color=GREYS[n % len(GREYS)],
                hatch=HATCHES[n % len(HATCHES)],
                edgecolor="white" if n % 2 == 0 else "black",
                linewidth=0.5,
            )
            if stacked:
                bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        _ticks(fig, labels)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if names:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _svg(fig, title)


def hbars(title: str, labels: Sequence[str], values: Sequence[float], xlabel: str) -> Markup:
    """Horizontal bars, largest first (one series: the length is the meaning)."""
    with _LOCK:
        fig = _figure(max(1.6, 0.35 * len(labels) + 0.9))
        ax = fig.add_subplot()
        ys = list(range(len(labels)))[::-1]
        ax.barh(ys, list(values), color=GREYS[1], edgecolor="black", linewidth=0.5)
        ax.set_yticks(ys, [_label(label) for label in labels])
        for y, value in zip(ys, values, strict=True):
            ax.annotate(f"{value:,.0f}", (value, y), xytext=(3, 0), textcoords="offset points", va="center")
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        return _svg(fig, title)


def lines(title: str, labels: Sequence[str], series: dict[str, Sequence[float]], ylabel: str) -> Markup:
    """One line per series (at most `MAX_SERIES`), each with its own marker and dash pattern."""
    with _LOCK:
        fig = _figure()
        ax = fig.add_subplot()
        for n, name in enumerate(list(series)[:MAX_SERIES]):
            ax.plot(
                range(len(labels)),
                list(series[name]),
                label=_label(name),
                color=GREYS[n % len(GREYS)],
                marker=MARKERS[n % len(MARKERS)],
                linestyle=LINESTYLES[n % len(LINESTYLES)],
                linewidth=1.4,
            )
        _ticks(fig, labels)
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.set_title(title)
        if series:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _svg(fig, title)
