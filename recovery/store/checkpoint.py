"""The SQLite store's background checkpoints: the write-ahead log copied into the database file from a thread of
its own, so that the loop's commits do not (docs/operations.md, "Capacity")."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from recovery.logs import REPEATS_EVERY_S

logger = logging.getLogger("recovery.store.sqlite")


class Checkpointer:
    """Checkpoints a SQLite database in WAL mode every `every_s` seconds, from a daemon thread with a connection of
    its own, when `note_commit()` was called since the last one. PASSIVE: it never waits for, nor blocks, the
    writer or readers; what it cannot copy yet is copied next time. A failure is tried again at the next turn, and
    logged when a run of failures begins, when its error changes, and every `log_every_s` while it lasts (a full
    disk fails every turn for as long as it is full); the first checkpoint after them says how many there were."""

    def __init__(self, path: str, every_s: float, log_every_s: float = REPEATS_EVERY_S) -> None:
        self.path = path
        self.every_s = every_s
        self.log_every_s = log_every_s
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
        failing = 0  # failures in a row
        said = ("", 0.0)  # the error last logged, and when
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
                    failing += 1
                    error, now = f"{type(exc).__name__}: {exc}", time.monotonic()
                    if failing == 1 or error != said[0] or now - said[1] >= self.log_every_s:
                        said = (error, now)
                        logger.warning(
                            "background checkpoint failed; trying again",
                            extra={"store": self.path, "error": error, "failures": failing},
                        )
                    continue
                if failing:
                    logger.info("background checkpoints work again", extra={"store": self.path, "failures": failing})
                    failing = 0
                seen = commits
                self.checkpoints += 1
        finally:
            if db is not None:
                db.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
