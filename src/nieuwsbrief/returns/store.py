"""What the returns mailbox needs from the rest of the home, and what it remembers itself.

`SentMail` is the view of the send ledger that matching needs (a Protocol, so the ledger can
change behind it). `ReturnsStore` is the returns' own SQLite file next to the ledger: which
messages were processed (so a second run changes nothing, even for an mbox that cannot be
marked), the soft bounces behind the score, and every action, for `status` and the CSV.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol

from nieuwsbrief.errors import ReturnsStoreError
from nieuwsbrief.i18n import _
from nieuwsbrief.sqlitefile import enable_wal

BUSY_TIMEOUT_SECONDS = 10.0
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS processed (
    digest       TEXT PRIMARY KEY,       -- sha256 of the raw message
    processed_at TEXT NOT NULL,
    kind         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS soft_bounces (
    address TEXT NOT NULL,
    issue   TEXT NOT NULL,
    day     TEXT NOT NULL,               -- YYYY-MM-DD of the report
    status  TEXT NOT NULL,
    PRIMARY KEY (address, issue, day)    -- at most one per issue and day, as Mailman counts
);
CREATE TABLE IF NOT EXISTS actions (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    address    TEXT NOT NULL,
    issue      TEXT NOT NULL,
    matched_by TEXT NOT NULL,
    evidence   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_issue ON actions (issue, kind);
"""


class SentMail(Protocol):
    """What this home sent: the ledger as the returns mailbox sees it."""

    def lookup_message_id(self, message_id: str) -> tuple[str, str] | None:
        """Return (issue id, address) of the message sent with this Message-ID, or None."""
        ...

    def issue_mailed_to(self, address: str) -> str | None:
        """Return the latest issue this home mailed to `address`, or None if it never did."""
        ...

    def issue_ids(self) -> list[str]:
        """Return every issue id in the ledger (VERP tokens carry a tag of one of them)."""
        ...

    def address_for(self, recipient_id: str) -> str | None:
        """Return the address behind a recipient id (of a token), or None."""
        ...


@dataclass(frozen=True)
class SoftScore:
    """The soft bounces of one address inside the window."""

    bounces: int
    issues: int
    statuses: tuple[str, ...]


class ReturnsStore:
    """The returns' SQLite file: processed messages, soft bounces, actions."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        if readonly:  # `status`: read an existing file, write nothing
            try:
                uri = f"{path.resolve().as_uri()}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS)
            except sqlite3.Error as exc:
                raise ReturnsStoreError(
                    _("{path}: cannot read the returns file ({exc})").format(path=path, exc=exc)
                ) from None
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect(write=True) as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > _SCHEMA_VERSION:
                    raise ReturnsStoreError(
                        _("{path}: written by a newer nieuwsbrief; upgrade nieuwsbrief").format(
                            path=path
                        )
                    )
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            self.flush()
        except OSError as exc:
            raise ReturnsStoreError(
                _("{path}: cannot create the returns file ({exc})").format(path=path, exc=exc)
            ) from None

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """Yield the store's one connection; a write joins the open batch or starts one."""
        # One connection per store, and writes batched until flush(): a commit per message
        # (an fsync each) would dominate a run. WAL + synchronous=NORMAL, like the ledger: a
        # commit survives a crash or kill -9 of this process (not a power cut).
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
                )
                enable_wal(self._conn)
                self._conn.execute("PRAGMA synchronous = NORMAL")
            if write and not self._conn.in_transaction:
                self._conn.execute("BEGIN IMMEDIATE")
            yield self._conn
        except sqlite3.Error as exc:
            raise ReturnsStoreError(
                _("{path}: cannot use the returns file ({exc}); is it a nieuwsbrief file?").format(
                    path=self.path, exc=exc
                )
            ) from None

    def flush(self) -> None:
        """Commit everything recorded since the last flush."""
        with self._connect() as conn:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def close(self) -> None:
        """Commit and close the connection."""
        if self._conn is not None:
            self.flush()
            self._conn.close()
            self._conn = None

    def processed_digests(self) -> frozenset[str]:
        """Return the digests of every message processed before."""
        with self._connect() as conn:
            return frozenset(row[0] for row in conn.execute("SELECT digest FROM processed"))

    def record_message(
        self,
        digest: str,
        kind: str,
        at: str,
        actions: list[tuple[str, str, str, str, str, str]],
        soft: tuple[str, str, str, str] | None = None,
    ) -> None:
        """Record one processed message with its actions (committed by the next flush)."""
        with self._connect(write=True) as conn:
            conn.execute("INSERT OR IGNORE INTO processed VALUES (?, ?, ?)", (digest, at, kind))
            if soft is not None:
                conn.execute("INSERT OR IGNORE INTO soft_bounces VALUES (?, ?, ?, ?)", soft)
            conn.executemany(
                "INSERT INTO actions (at, kind, outcome, address, issue, matched_by, evidence) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(at, *action) for action in actions],
            )

    def soft_score(
        self, address: str, today: date, window_days: int, extra: tuple[str, str, str] | None
    ) -> SoftScore:
        """Return the soft bounces of `address` in the window, plus `extra` (issue, day, status)."""
        since = (today - timedelta(days=window_days)).isoformat()
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT issue, day, status FROM soft_bounces WHERE address = ? AND day >= ?",
                (address, since),
            ).fetchall()
        seen = {(issue, day): status for issue, day, status in rows}
        if extra is not None:
            seen.setdefault((extra[0], extra[1]), extra[2])
        return SoftScore(
            bounces=len(seen),
            issues=len({issue for issue, _ in seen}),
            statuses=tuple(seen[key] for key in sorted(seen, key=lambda k: k[1])),
        )

    def counts(self, issue_id: str) -> dict[str, int]:
        """Return how many distinct addresses each kind of return touched for one issue."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT kind, COUNT(DISTINCT address) FROM actions "
                "WHERE issue = ? AND outcome NOT IN ('forged', 'unmatched') GROUP BY kind",
                (issue_id,),
            ).fetchall()
        return {str(kind): int(count) for kind, count in rows}
