"""Text with `{{ expression }}` placeholders, for titles, reasons and talking points."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recovery.exceptions import ExpressionError
from recovery.expressions.compiler import Compiler
from recovery.expressions.context import Context
from recovery.expressions.parser import parse
from recovery.expressions.scope import Compiled, Scope
from recovery.times import format_duration, format_time

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def render_value(value: Any, kind: str) -> str:
    """A value as a frontline agent reads it: durations as `2h 15m`, times in RFC 3339, 12.5 not 12.500001."""
    if type(value) is str:  # the most common: names, tiers, reasons
        return value
    if value is None:
        return "unknown"
    if kind == "duration" and isinstance(value, int | float):
        return format_duration(float(value))
    if kind == "time" and isinstance(value, int | float):
        return format_time(float(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return ", ".join(render_value(v, "any") for v in value)
    return str(value)


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
