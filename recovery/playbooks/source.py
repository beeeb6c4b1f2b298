"""Safe YAML reading that remembers where every key and value stands in the file.

Only plain YAML is accepted: mappings, sequences and scalars with the standard tags. Any other tag
(`!!python/object`, `!custom`) is refused before anything is built, duplicate keys are errors, and merge keys
are ordinary (unknown) keys. Nothing from the document is ever executed. A document is bounded: at most
MAX_DEPTH levels of mappings and lists (aliases count where they are used) and MAX_NODES values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import CollectionStartEvent, Event
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from recovery.exceptions import Problem
from recovery.expressions.parser import TOO_LARGE, number_problem

Loc = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_ESCAPE_WIDTH = {"x": 4, "u": 6, "U": 10}
_ALLOWED_SCALARS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"
_SEQ = "tag:yaml.org,2002:seq"
MAX_NODES = 100_000
MAX_DEPTH = 64
"""Levels of mappings and lists, the document's own mapping included. PyYAML composes (and `_Builder` builds)
recursively: a bound well under Python's recursion limit keeps a deep document a located problem."""
TOO_DEEP = f"nested too deeply: at most {MAX_DEPTH} levels of mappings and lists"


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based
    style: str | None  # None for plain scalars, "'" or '"' for quoted, "|" or ">" for blocks
    single_line: bool
    raw: str = ""  # the scalar as written in the file, quotes included (single-line scalars only)

    def column_of(self, offset: int) -> int:
        """The file column of character `offset` of the scalar's value."""
        if self.style not in ("'", '"'):
            return self.column + offset
        i, seen = 1, 0  # walk the raw text after the opening quote, one value character at a time
        while seen < offset and i < len(self.raw) - 1:
            if self.style == "'" and self.raw.startswith("''", i):
                i += 2
            elif self.style == '"' and self.raw[i] == "\\":
                i += _ESCAPE_WIDTH.get(self.raw[i + 1 : i + 2], 2)
            else:
                i += 1
            seen += 1
        return self.column + i + (offset - seen)


@dataclass
class Document:
    """A YAML document as plain Python data, with the position of every value and key by path."""

    file: str
    data: Any
    values: dict[Loc, Mark] = field(default_factory=dict)
    keys: dict[Loc, Mark] = field(default_factory=dict)

    def problem(self, loc: Loc, message: str, *, key: bool = False, offset: int | None = None) -> Problem:
        """A problem at `loc` (or its nearest ancestor that exists); `offset` points inside a scalar's text."""
        line, col = self.position(loc, key=key, offset=offset)
        return Problem(self.file, line, col, message)

    def position(self, loc: Loc, *, key: bool = False, offset: int | None = None) -> tuple[int, int]:
        marks = self.keys if key else self.values
        path = tuple(loc)
        mark = marks.get(path)
        exact = mark is not None
        while mark is None and path:
            path = path[:-1]
            mark = self.values.get(path)
        if mark is None:
            return 1, 1
        if exact and offset is not None and mark.single_line and mark.style in (None, "'", '"'):
            return mark.line, mark.column_of(offset)
        return mark.line, mark.column


class YamlProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class _TooDeep(Exception):
    def __init__(self, line: int, column: int) -> None:
        super().__init__(TOO_DEEP)
        self.line = line
        self.column = column


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, composing at most MAX_DEPTH levels of mappings and lists (it composes recursively)."""

    depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if not self.check_event(CollectionStartEvent):
            return super().compose_node(parent, index)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                event: Event = self.peek_event()  # type: ignore[no-untyped-call]
                mark = event.start_mark
                raise _TooDeep(mark.line + 1, mark.column + 1) if mark else _TooDeep(1, 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _mark(node: Node) -> Mark:
    start, end = node.start_mark, node.end_mark
    style = node.style if isinstance(node, ScalarNode) else None
    single = start.line == end.line
    raw = start.buffer[start.pointer : end.pointer] if single and start.buffer is not None else ""
    return Mark(start.line + 1, start.column + 1, style, single, raw)


_UNQUOTED_TEMPLATE = re.compile(r"^(\s*(?:-\s+)?(?:[\w.-]+:\s+)?)\{\{", re.MULTILINE)


UNQUOTED_TEMPLATE = "a value that starts with '{{' must be quoted (YAML reads '{' as the start of a mapping)"


def _unquoted_template(text: str, file: str, last_line: int) -> Problem | None:
    """A value starting with `{{` reads as a YAML mapping: say so, rather than YAML's puzzling message.

    Looks for such a value on or before `last_line` (1-based), the line where YAML gave up.
    """
    found = None
    for match in _UNQUOTED_TEMPLATE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        if line > last_line:
            break
        found = Problem(file, line, len(match.group(1)) + 1, UNQUOTED_TEMPLATE)
    return found


class _Builder:
    def __init__(self, file: str) -> None:
        self.doc = Document(file, None)
        self.count = 0
        self.scalars = SafeConstructor()
        self.open: set[int] = set()
        """The collections being built, by id: an alias to one of them would make the data hold itself."""

    def fail(self, node: Node, message: str) -> YamlProblem:
        m = _mark(node)
        return YamlProblem(Problem(self.doc.file, m.line, m.column, message))

    def build(self, node: Node, loc: Loc, depth: int = 1) -> Any:
        """`node` as plain data at `loc`; `depth` counts the collections down to it (aliases where used)."""
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, f"document is too large (more than {MAX_NODES} values, or aliases nest too deeply)")
        self.doc.values[loc] = _mark(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if id(node) in self.open:
            raise self.fail(node, "an alias refers to the mapping or list that holds it")
        if depth > MAX_DEPTH:
            raise self.fail(node, TOO_DEEP)
        self.open.add(id(node))
        try:
            return self.collection(node, loc, depth)
        finally:
            self.open.discard(id(node))

    def scalar(self, node: ScalarNode) -> Any:
        """A scalar's value; numbers are finite and exact when whole (see `number_problem`)."""
        if node.tag not in _ALLOWED_SCALARS:
            raise self.fail(node, f"YAML tag '{_tag(node.tag)}' is not allowed: playbooks are plain data")
        if node.tag in (_STR, "tag:yaml.org,2002:timestamp"):
            return node.value
        try:
            value = self.scalars.construct_object(node, deep=True)
        except ValueError:  # a whole number of more digits than Python converts (4300)
            raise self.fail(node, TOO_LARGE) from None
        if isinstance(value, int | float) and not isinstance(value, bool):
            problem = number_problem(value)
            if problem is not None:
                raise self.fail(node, problem)
        return value

    def collection(self, node: Node, loc: Loc, depth: int) -> Any:
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                raise self.fail(node, f"YAML tag '{_tag(node.tag)}' is not allowed: playbooks are plain data")
            return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            if node.tag != _MAP:
                raise self.fail(node, f"YAML tag '{_tag(node.tag)}' is not allowed: playbooks are plain data")
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, MappingNode) and key_node.flow_style and not key_node.value[1:]:
                    raise self.fail(node, UNQUOTED_TEMPLATE)  # `title: {{ x }}` reads as {{x: null}: null}
                if not isinstance(key_node, ScalarNode) or key_node.tag not in (*_ALLOWED_SCALARS, _MERGE):
                    raise self.fail(key_node, "a key must be a plain word")
                key = str(key_node.value)
                if key in out:
                    first = self.doc.keys[(*loc, key)]
                    raise self.fail(key_node, f"duplicate key '{key}' (first at line {first.line})")
                self.doc.keys[(*loc, key)] = _mark(key_node)
                out[key] = self.build(value_node, (*loc, key), depth + 1)
            return out
        raise self.fail(node, "unsupported YAML node")  # pragma: no cover


def load_yaml(text: str, file: str) -> Document:
    """Parse one YAML document; raises YamlProblem with a located message on any error."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # its reader refuses special characters at once
        node = loader.get_single_node()
    except _TooDeep as exc:
        raise YamlProblem(Problem(file, exc.line, exc.column, TOO_DEEP)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        hint = _unquoted_template(text, file, line)
        if hint is not None and line - hint.line <= 1:
            raise YamlProblem(hint) from None
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise YamlProblem(Problem(file, line, col, f"invalid YAML: {what}")) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(Problem(file, 1, 1, f"invalid YAML: {exc}")) from None
    finally:
        if loader is not None:
            loader.dispose()
    builder = _Builder(file)
    if node is None:
        raise YamlProblem(Problem(file, 1, 1, "the file is empty"))
    builder.doc.data = builder.build(node, ())
    return builder.doc
