"""Reading playbook files: YAML to model to compiled playbook, every problem as `FILE:LINE:COL: message`."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from recovery.catalog import STANDARD, STANDARD_FIELDS, EventCatalog, EventType
from recovery.exceptions import PlaybookError, Problem
from recovery.expressions.scope import suggest
from recovery.playbooks.compiler import CompiledPlaybook, compile_playbook
from recovery.playbooks.model import CatalogFile, Playbook
from recovery.playbooks.source import Document, Loc, YamlProblem, load_yaml

TEST_SUFFIXES = (".test.yaml", ".test.yml")
YAML_SUFFIXES = (".yaml", ".yml")
CATALOG_NAMES = ("events.yaml", "events.yml")
"""The event catalog of a rules folder: not a playbook."""
SKIPPED_FOLDERS = ("examples",)
"""Folders a search of their parent skips (name them to use them): examples are validated and tested, not run."""


def is_test_file(path: Path) -> bool:
    return path.name.endswith(TEST_SUFFIXES)


def _searched(root: Path, path: Path) -> bool:
    """Whether the search of `root` looks at `path`: not in a hidden or skipped folder below `root`."""
    folders = path.relative_to(root).parts[:-1]
    return not any(f.startswith(".") or f in SKIPPED_FOLDERS for f in folders)


def find_files(paths: Iterable[str | Path], tests: bool) -> tuple[list[Path], list[Problem]]:
    """YAML files under `paths`, playbooks or test files. Directories are searched recursively, but for hidden
    folders and `examples/` (given by name, they are searched too); the event catalog (`events.yaml`) is neither."""
    found: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.name.endswith(YAML_SUFFIXES) and _searched(path, p) and p.name not in CATALOG_NAMES
            )
            found.extend(p for p in candidates if is_test_file(p) == tests)
        elif path.is_file():
            if is_test_file(path) == tests:
                found.append(path)
        else:
            problems.append(Problem(str(path), 1, 1, "no such file or directory"))
    return found, problems


def load_catalog(paths: Iterable[str | Path]) -> tuple[EventCatalog, list[Problem]]:
    """The event catalog for playbooks under `paths`: the standard types, plus those declared in `events.yaml` in
    each folder given (or in the folder of each file given)."""
    declared: dict[str, EventType] = {}
    problems: list[Problem] = []
    files: list[str] = []
    for raw in paths:
        path = Path(raw)
        folder = path if path.is_dir() else path.parent
        for name in CATALOG_NAMES:
            catalog_path = folder / name
            if catalog_path.is_file() and str(catalog_path) not in files:
                files.append(str(catalog_path))
                problems.extend(_read_catalog(catalog_path, declared))
    return EventCatalog(declared, " and ".join(files) or None), problems


def _read_catalog(path: Path, declared: dict[str, EventType]) -> list[Problem]:
    """Add the types `path` declares to `declared`; the problems found."""
    try:
        doc = load_document(path)
        spec = CatalogFile.model_validate(doc.data if doc.data is not None else {})
    except PlaybookError as exc:
        return list(exc.problems)
    except ValidationError as exc:
        return validation_problems(doc, exc, CatalogFile)
    problems = []
    for name, declared_type in spec.types.items():
        if name in STANDARD_FIELDS:
            problems.append(
                doc.problem(("types", name), f"'{name}' is a standard type: its fields are built in", key=True)
            )
        elif name in declared and dict(declared[name].fields) != declared_type.fields:
            problems.append(doc.problem(("types", name), f"'{name}' is declared differently elsewhere", key=True))
        else:
            declared[name] = EventType(name, dict(declared_type.fields), declared_type.description)
    return problems


def _unwrap(annotation: Any) -> Any:
    """The model class reached through Optional, list, dict and Annotated, or None."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _unwrap(arg)
            if found is not None:
                return found
        return None
    if origin in (list, dict):
        return _unwrap(typing.get_args(annotation)[-1])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        model = _unwrap(info.annotation)
    return model


def unknown_key(name: str, known: Sequence[str]) -> str:
    """The message for a key that is none of `known`: the nearest of them as a suggestion, else all of them."""
    hint = suggest(name, known) or (f"; expected one of: {', '.join(known)}" if known else "")
    return f"unknown key '{name}'{hint}"


def validation_problems(doc: Document, exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    """pydantic's errors validating `doc` against the model `root` (a playbook, a test file) as located problems, in
    the author's words: unknown keys with a suggestion, missing keys, bad values with what was received."""
    problems = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(p for p in err["loc"] if p != "[key]")
        kind = err["type"]
        if kind == "extra_forbidden":
            model = _model_at(root, loc[:-1])
            problems.append(
                doc.problem(loc, unknown_key(str(loc[-1]), list(model.model_fields) if model else []), key=True)
            )
        elif kind == "missing":
            problems.append(doc.problem(loc[:-1], f"missing required key '{loc[-1]}'"))
        elif "[key]" in err["loc"]:
            problems.append(doc.problem(loc, f"invalid name '{loc[-1]}': {err['msg']}", key=True))
        else:
            while loc and loc not in doc.values:  # a path the author did not write (a normalized shorthand)
                loc = loc[:-1]
            msg = str(err["msg"]).removeprefix("Value error, ")
            received = err.get("input")
            shown = "" if isinstance(received, dict | list) else f" (got {received!r})"
            where = ".".join(str(p) for p in loc)
            prefix = f"{where}: " if where else ""
            problems.append(doc.problem(loc, f"{prefix}{msg}{shown}"))
    return problems


def load_document(path: Path) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError([Problem(str(path), 1, 1, f"cannot read the file: {exc}")]) from None
    try:
        return load_yaml(text, str(path))
    except YamlProblem as exc:
        raise PlaybookError([exc.problem]) from None


def load_playbook(path: Path, catalog: EventCatalog = STANDARD) -> CompiledPlaybook:
    """Read, validate and compile one playbook file; raises PlaybookError listing every problem found."""
    return _compile_document(load_document(path), catalog)


def load_playbook_text(text: str, file: str, catalog: EventCatalog = STANDARD) -> CompiledPlaybook:
    """Validate and compile a playbook given as YAML text (problems name `file`); raises PlaybookError."""
    try:
        doc = load_yaml(text, file)
    except YamlProblem as exc:
        raise PlaybookError([exc.problem]) from None
    return _compile_document(doc, catalog)


def _compile_document(doc: Document, catalog: EventCatalog) -> CompiledPlaybook:
    if not isinstance(doc.data, dict):
        raise PlaybookError([doc.problem((), "a playbook is a mapping of keys (id, trigger, actions...)")])
    try:
        model = Playbook.model_validate(doc.data)
    except ValidationError as exc:
        problems = validation_problems(doc, exc, Playbook)
        raise PlaybookError(sorted(problems, key=lambda p: (p.line, p.column))) from None
    compiled, located = compile_playbook(model, doc.file, catalog)
    if compiled is None:
        problems = [doc.problem(loc, msg, offset=offset) for loc, offset, msg in located]
        raise PlaybookError(sorted(problems, key=lambda p: (p.line, p.column)))
    return compiled


def load_playbooks(paths: Iterable[str | Path]) -> tuple[list[CompiledPlaybook], list[Problem]]:
    """Every playbook under `paths`, plus all problems found (including duplicate ids), with the event catalog of
    those folders (`load_catalog`)."""
    paths = list(paths)
    files, problems = find_files(paths, tests=False)
    catalog, catalog_problems = load_catalog(paths)
    problems.extend(catalog_problems)
    playbooks: list[CompiledPlaybook] = []
    seen: dict[str, CompiledPlaybook] = {}
    for path in files:
        try:
            pb = load_playbook(path, catalog)
        except PlaybookError as exc:
            problems.extend(exc.problems)
            continue
        if pb.id in seen:
            doc = load_document(path)
            problems.append(doc.problem(("id",), f"duplicate playbook id '{pb.id}' (also in {seen[pb.id].file})"))
            continue
        seen[pb.id] = pb
        playbooks.append(pb)
    for pb in playbooks:
        for i, (other, _) in enumerate(pb.inhibited_by):
            if other not in seen:
                doc = load_document(Path(pb.file))
                known = ", ".join(sorted(seen)) or "none"
                problems.append(doc.problem(("inhibited_by", i), f"no playbook '{other}' here (known: {known})"))
    if not files and not problems:
        problems.extend(Problem(str(p), 1, 1, "no playbook files (*.yaml) found here") for p in paths)
    return playbooks, problems


def load_playbooks_or_raise(paths: Iterable[str | Path]) -> list[CompiledPlaybook]:
    playbooks, problems = load_playbooks(paths)
    if problems:
        raise PlaybookError(problems)
    return playbooks
