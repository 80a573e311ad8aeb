"""Who has received which issue: a SQLite ledger written the moment a server accepts a message.

Keyed by issue and address (not by subscriber list), so a re-run with the same or a changed
list sends only to those not yet accepted. The ledger also keeps the hash of the rendered
issue, so resuming after the content changed is refused unless forced.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .errors import LedgerError

ACCEPTED = "accepted"
FAILED = "failed"  # a permanent (5xx) refusal
DEFERRED = "deferred"  # temporary (4xx) refusals until the retries ran out
_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LedgerRow:
    """One recipient's state for one issue."""

    address: str
    status: str
    reply: str
    attempts: int
    updated_at: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ledger:
    """The send ledger of every issue, in one SQLite file; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # A commit survives a crash or kill -9 of this process (not a power cut).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise LedgerError(f"{path}: written by a newer nieuwsbrief; upgrade nieuwsbrief")
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS issues (
                    issue TEXT PRIMARY KEY,
                    content_hash TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    started_at TEXT NOT NULL
                );
                CREATE TABLE IF NOT EXISTS recipients (
                    issue TEXT NOT NULL,
                    address TEXT NOT NULL,
                    status TEXT NOT NULL,
                    reply TEXT NOT NULL DEFAULT '',
                    attempts INTEGER NOT NULL DEFAULT 0,
                    updated_at TEXT NOT NULL,
                    PRIMARY KEY (issue, address)
                ) WITHOUT ROWID;
                PRAGMA user_version = 1;
                """
            )
        except sqlite3.DatabaseError as exc:
            raise LedgerError(
                f"{path}: cannot use the send ledger ({exc}); is it a nieuwsbrief ledger?"
            ) from None

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def begin_issue(self, issue: str, content_hash: str, subject: str, *, force: bool) -> None:
        """Record the issue's content hash; refuse a changed issue that was partly sent."""
        with self._lock:
            row = self._db.execute(
                "SELECT content_hash, started_at FROM issues WHERE issue = ?", (issue,)
            ).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO issues VALUES (?, ?, ?, ?)", (issue, content_hash, subject, _now())
                )
                return
            if row[0] == content_hash:
                return
            sent = self._db.execute(
                "SELECT COUNT(*) FROM recipients WHERE issue = ? AND status = ?", (issue, ACCEPTED)
            ).fetchone()[0]
            if sent and not force:
                raise LedgerError(
                    f"issue '{issue}' changed since its send started on {row[1]} "
                    f"({sent} recipients already got the earlier version); "
                    "add --force to send the changed version to the rest"
                )
            self._db.execute(
                "UPDATE issues SET content_hash = ?, subject = ? WHERE issue = ?",
                (content_hash, subject, issue),
            )

    def states(self, issue: str) -> dict[str, str]:
        """Return address (lowercase) -> status for every recipient recorded for an issue."""
        with self._lock:
            rows = self._db.execute(
                "SELECT address, status FROM recipients WHERE issue = ?", (issue,)
            ).fetchall()
        return {address: status for address, status in rows}

    def record(self, issue: str, address: str, status: str, reply: str, attempts: int) -> None:
        """Record one recipient's outcome at once (committed before returning)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO recipients VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (issue, address) DO UPDATE SET status = excluded.status, "
                "reply = excluded.reply, attempts = recipients.attempts + excluded.attempts, "
                "updated_at = excluded.updated_at",
                (issue, address.lower(), status, reply, attempts, _now()),
            )

    def rows(self, issue: str, statuses: Iterable[str]) -> list[LedgerRow]:
        """Return the recipients of an issue that have one of the given statuses."""
        wanted = tuple(statuses)
        marks = ",".join("?" for _ in wanted)
        with self._lock:
            rows = self._db.execute(
                f"SELECT address, status, reply, attempts, updated_at FROM recipients "
                f"WHERE issue = ? AND status IN ({marks}) ORDER BY address",
                (issue, *wanted),
            ).fetchall()
        return [LedgerRow(*row) for row in rows]
