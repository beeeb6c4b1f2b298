"""Text with `{{ expression }}` placeholders, for titles, reasons and talking points."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recovery.exceptions import ExpressionError
from recovery.expressions.compiler import Compiler
from recovery.expressions.context import Context
from recovery.expressions.parser import parse
from recovery.expressions.scope import Compiled, Scope
from recovery.times import FIRST_TS, LAST_TS, format_duration, format_time

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def render_value(value: Any, kind: str) -> str:
    """A value as a frontline agent reads it: durations as `2h 15m`, times in RFC 3339, 12.5 not 12.500001.

    Null is `unknown`, and so is what arithmetic can make of data but no one can read: a number that is infinite,
    NaN or beyond any float, a time outside the years RFC 3339 writes."""
    if type(value) is str:  # the most common: names, tiers, reasons
        return value
    if value is None:
        return "unknown"
    if (kind == "duration" or kind == "time") and isinstance(value, int | float):
        seconds = _finite(value)
        if seconds is None or (kind == "time" and not FIRST_TS <= seconds <= LAST_TS):
            return "unknown"
        return format_duration(seconds) if kind == "duration" else format_time(seconds)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "unknown"
        return str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return ", ".join(render_value(v, "any") for v in value)
    if isinstance(value, int) and _finite(value) is None:
        return "unknown"
    return str(value)


def _finite(value: int | float) -> float | None:
    """`value` as a finite float, or None."""
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Template:
    parts: tuple[str | Compiled, ...]
    constant: str | None = field(init=False, repr=False, compare=False)
    """The text of a template without placeholders (rendered once)."""
    _steps: tuple[tuple[str, Callable[[Context], Any] | None, str], ...] = field(init=False, repr=False, compare=False)
    """Each part as (text, None, "") or ("", its function, its type): what `render` runs through."""

    def __post_init__(self) -> None:
        constant = all(isinstance(p, str) for p in self.parts)
        object.__setattr__(self, "constant", "".join(map(str, self.parts)) if constant else None)
        steps = tuple((p, None, "") if isinstance(p, str) else ("", p.fn, p.type) for p in self.parts)
        object.__setattr__(self, "_steps", steps)

    def render(self, ctx: Context) -> str:
        if self.constant is not None:
            return self.constant
        return "".join([text if fn is None else render_value(fn(ctx), kind) for text, fn, kind in self._steps])

    @property
    def windows(self) -> frozenset[tuple[str, float]]:
        found: frozenset[tuple[str, float]] = frozenset()
        for part in self.parts:
            if not isinstance(part, str):
                found |= part.windows
        return found


def compile_template(text: str, scope: Scope) -> Template:
    """Check every placeholder of `text`; errors carry the offset inside `text`."""
    parts: list[str | Compiled] = []
    pos = 0
    compiler = Compiler(scope)
    for match in _PLACEHOLDER.finditer(text):
        if match.start() > pos:
            parts.append(text[pos : match.start()])
        source = match.group(1)
        start = match.start(1)
        try:
            parts.append(compiler.compile(parse(source)))
        except ExpressionError as exc:
            raise ExpressionError(exc.message, start + exc.offset) from None
        pos = match.end()
    rest = text[pos:]
    if "{{" in rest:
        raise ExpressionError("'{{' without a closing '}}'", pos + rest.index("{{"))
    if rest:
        parts.append(rest)
    return Template(tuple(parts))
