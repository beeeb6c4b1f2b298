"""The disk-full scenario: the SQLite store on a file system of its own (a tmpfs, mounted for the row; root only),
filled to the last byte by another file while the stream arrives, then freed."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from faults.harness import Row, Watch
from faults.scenarios import Context, _progress, at_scope_events, outbox_of

DISK_MB = 768
"""The tmpfs's size: the store of the suite's stream (24,000 events: about 250 MB with its write-ahead log) and
room to spare, which the ballast then takes. Its pages are memory only while written."""

BALLAST_CHUNK = 1024 * 1024


@contextlib.contextmanager
def tmpfs(folder: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of `size_mb` mounted on `folder` for the block; unmounted after it."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(  # noqa: S603 - a fixed command line, no shell
        ["/bin/mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cannot mount a tmpfs on {folder} (this row needs root): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["/bin/umount", "--lazy", str(folder)], capture_output=True, check=False)  # noqa: S603


def fill(path: Path) -> int:
    """Write `path` until its file system has no byte left; how many bytes it took."""
    written = 0
    chunk = b"\0" * BALLAST_CHUNK
    with path.open("wb", buffering=0) as out:
        size = len(chunk)
        while size:
            try:
                written += out.write(chunk[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2  # the last few blocks, in smaller writes
    return written


def disk_full(ctx: Context) -> Row:
    """`serve` on SQLite while its disk is full for `outage_s`: the store's commits fail and are rolled back, nothing
    is committed ahead of the store, /readyz says 503; the ballast deleted, the loop goes on by itself and every
    effect is there once."""
    row = Row(f"disk full {ctx.outage_s:.0f}s (SQLite)")
    with tmpfs(ctx.workdir / "disk", DISK_MB) as disk:
        url = f"sqlite:///{disk / 'disk.db'}"
        run = ctx.run("disk", url)
        run.create_topics()
        half = len(ctx.stream.messages) // 2
        run.produce(ctx.stream.messages[:half])
        instance = run.instance().start()
        with Watch(run.live) as watch:
            _progress(run, below=half * 3 // 4)
            ballast = disk / "ballast"
            taken = fill(ballast)
            failures_before = instance.metric("recovery_store_errors_total")
            # The loop has to write while the disk is full. The rest goes in parts cut at the scope events (an
            # outage): the commits the loop still gets done in its log's room meanwhile read it live (see
            # scenarios.at_scope_events).
            for part in at_scope_events(ctx.stream.messages[half:]):
                run.produce(part)
            time.sleep(ctx.outage_s)
            failures = instance.metric("recovery_store_errors_total") - failures_before
            not_ready_full_s = watch.not_ready_s
            os.remove(ballast)
            freed = time.monotonic()
            row.notes.append(f"ballast {taken / 1e6:.0f} MB, {failures:.0f} store rollbacks while full")
            if not failures:
                row.problems.append("the loop met no full disk: no store rollback while it was full")
            if not run.live():
                row.problems.append("serve exited while the disk was full")
            if not run.drain(outbox_of(url)):
                row.problems.append("did not drain within the time allowed")
            row.notes.append(
                f"503 {not_ready_full_s:.1f} s while full; drained {time.monotonic() - freed:.0f} s after the free"
            )
            row.problems += run.stop_all()
            run.compare(row, ctx.stream)
            row.not_ready_s = watch.not_ready_s
            return row
