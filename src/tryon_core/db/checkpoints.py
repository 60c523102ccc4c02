"""SQLite's WAL checkpoints, in a thread of their own, so that a COMMIT never runs one.

In WAL mode a COMMIT appends its pages to the ``-wal`` file; with ``synchronous=NORMAL`` it
does not wait for the disk. By default, though, the COMMIT that takes the WAL past 1000 pages
also copies the WAL back into the database file and syncs it (an *automatic checkpoint*):
milliseconds, on a slow disk far more, at an unforeseeable commit. That is why COMMIT used to
run on aiosqlite's thread, a hop there and back for every transaction (two per generation:
~0.3 ms of CPU and ~10% of sequential throughput on small requests here).

The gateway's connections turn automatic checkpoints off (``wal_autocheckpoint=0``) and commit
on the event loop's thread; a :class:`Checkpointer` runs ``PRAGMA wal_checkpoint(PASSIVE)`` on a
connection of its own every :data:`INTERVAL` seconds instead. A passive checkpoint never waits
for a lock and never makes anyone wait, so writers and readers go on meanwhile; what readers
still need is copied at a later pass. After a complete checkpoint the next writer starts the
WAL over, truncated to ``journal_size_limit`` (:data:`WAL_LIMIT_BYTES`). Another process on the
same file (``tryon worker``) runs its own; checkpoints are safe to run concurrently.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

__all__ = ["INTERVAL", "WAL_LIMIT_BYTES", "Checkpointer"]

log = logging.getLogger("tryon.db")

INTERVAL = 1.0
"""Seconds between two checkpoints."""
WAL_LIMIT_BYTES = 64 * 1024 * 1024
"""What a WAL file is truncated to when it starts over (``PRAGMA journal_size_limit``)."""


class Checkpointer:
    """Checkpoints one SQLite database's WAL every ``interval`` seconds, until :meth:`stop`."""

    def __init__(self, path: str | Path, *, interval: float = INTERVAL) -> None:
        self._path = str(path)
        self._interval = interval
        self._stopping = threading.Event()
        self._starting = threading.Lock()
        self._started = False
        self._thread = threading.Thread(
            target=self._run, name="tryon-sqlite-checkpoints", daemon=True
        )
        self.passes = 0
        """Checkpoints run so far (for tests and curiosity)."""

    def start(self) -> None:
        """Start checkpointing (once; later calls, and calls after :meth:`stop`, do nothing)."""
        with self._starting:
            if self._started or self._stopping.is_set():
                return
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        """Run a last checkpoint and end the thread (waits for it)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                stopping = self._stopping.wait(self._interval)
                try:
                    if connection is None:
                        connection = sqlite3.connect(self._path, timeout=0, isolation_level=None)
                        connection.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.passes += 1
                except sqlite3.Error as error:  # busy with another checkpoint, or gone: next time
                    log.debug("SQLite checkpoint of %s skipped: %s", self._path, error)
                if stopping:
                    return
        finally:
            if connection is not None:
                connection.close()
