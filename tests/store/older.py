"""Stores of an older schema version, made by the migrations up to it, for the tests of what the next ones do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from recovery.store.postgres import MIGRATIONS as POSTGRES_MIGRATIONS
from recovery.store.sqlite import MIGRATIONS as SQLITE_MIGRATIONS


def sqlite_at(path: Path, version: int, *rows: tuple[str, tuple[object, ...]]) -> None:
    """A SQLite file at schema `version`, with `rows` (statement, parameters) written in it."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for migration in SQLITE_MIGRATIONS[:version]:
        db.executescript(migration)
    db.execute("INSERT INTO schema_version VALUES (?)", (version,))
    for statement, params in rows:
        db.execute(statement, params)
    db.commit()
    db.close()


def postgres_at(url: str, version: int, *rows: tuple[str, tuple[object, ...]]) -> None:
    """A PostgreSQL database at schema `version`, with `rows` (statement, parameters) written in it."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        for migration in POSTGRES_MIGRATIONS[:version]:
            db.execute(migration)  # type: ignore[arg-type]
        db.execute("INSERT INTO schema_version VALUES (%s)", (version,))
        for statement, params in rows:
            db.execute(statement, params)  # type: ignore[arg-type]
