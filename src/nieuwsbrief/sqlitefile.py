"""One rule for nieuwsbrief's SQLite files: switching a new file to write-ahead logging."""

from __future__ import annotations

import sqlite3
import time

_WAL_TRIES = 100


def enable_wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode, also when another process does the same at that moment.

    The switch needs an exclusive lock; two connections switching at once can deadlock, and
    SQLite then answers one of them "database is locked" at once instead of waiting: try again.
    """
    for attempt in range(_WAL_TRIES):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == _WAL_TRIES - 1:
                raise
            time.sleep(0.02 + 0.01 * (attempt % 5))
