"""The SQLite store's background checkpoints: the write-ahead log copied into the database file from a thread of
its own, so that the loop's commits do not (docs/operations.md, "Capacity")."""

from __future__ import annotations

import logging
import sqlite3
import threading

logger = logging.getLogger("recovery.store.sqlite")


class Checkpointer:
    """Checkpoints a SQLite database in WAL mode every `every_s` seconds, from a daemon thread with a connection of
    its own, when `note_commit()` was called since the last one. PASSIVE: it never waits for, nor blocks, the
    writer or readers; what it cannot copy yet is copied next time. A failure is logged and tried again."""

    def __init__(self, path: str, every_s: float) -> None:
        self.path = path
        self.every_s = every_s
        self.checkpoints = 0
        self.failures = 0
        self._commits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recovery-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def note_commit(self) -> None:
        self._commits += 1

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        seen = 0
        try:
            while not self._stop.wait(self.every_s):
                commits = self._commits
                if commits == seen:
                    continue
                try:
                    if db is None:
                        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    self.failures += 1
                    logger.warning(
                        "background checkpoint failed; trying again",
                        extra={"store": self.path, "error": f"{type(exc).__name__}: {exc}"},
                    )
                    continue
                seen = commits
                self.checkpoints += 1
        finally:
            if db is not None:
                db.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
