"""The suppression list: who asked not to receive the newsletter, kept in one SQLite file.

The same file is used by `send` (to skip suppressed addresses and to register the recipient ids
behind its tokens), by the staff command `unsubscribe` and by the one-click server, possibly at
the same time: WAL mode and a busy timeout let a reader and a writer share it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from nieuwsbrief import clock
from nieuwsbrief.addresses import normalise_address
from nieuwsbrief.errors import SuppressionError, UsageError
from nieuwsbrief.i18n import _
from nieuwsbrief.sqlitefile import enable_wal

SCHEMA_VERSION = 3
# bounce: the server said the address does not exist (at send time or in a returned report).
SOURCES = frozenset({"one-click", "web", "mailto", "staff", "import", "bounce", "complaint"})
BUSY_TIMEOUT_SECONDS = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressed (
    address   TEXT PRIMARY KEY,
    added_at  TEXT NOT NULL,
    source    TEXT NOT NULL,  -- one of SOURCES, checked in Python
    note      TEXT NOT NULL DEFAULT '',  -- the evidence (a bounce: issue, date, status line)
    reason    TEXT NOT NULL DEFAULT ''   -- why, in a few words ("hard bounce 5.1.1")
);
CREATE TABLE IF NOT EXISTS recipients (
    recipient_id TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    first_seen   TEXT NOT NULL
);
"""
# Version 1 limited `source` with a CHECK constraint, which SQLite cannot alter: copy the table.
_MIGRATE_1_TO_2 = """
CREATE TABLE suppressed_v2 (
    address   TEXT PRIMARY KEY,
    added_at  TEXT NOT NULL,
    source    TEXT NOT NULL,
    note      TEXT NOT NULL DEFAULT ''
);
INSERT INTO suppressed_v2 SELECT address, added_at, source, note FROM suppressed;
DROP TABLE suppressed;
ALTER TABLE suppressed_v2 RENAME TO suppressed;
"""
# Version 2 -> 3: the reason of each entry (the returns mailbox says why it suppressed).
_MIGRATE_2_TO_3 = """
ALTER TABLE suppressed ADD COLUMN reason TEXT NOT NULL DEFAULT ''
"""


@dataclass(frozen=True)
class Entry:
    """One suppressed address."""

    address: str
    added_at: str  # ISO 8601, UTC
    source: str
    note: str  # the evidence (for a bounce: issue, date, status line)
    reason: str = ""  # why, in a few words: "hard bounce 5.1.1", "complaint (abuse)"


class SuppressionList:
    """The suppression list and the recipient-id lookup in the SQLite file at `path`."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        # readonly: a dry run or check reads the list without creating or changing any file; a
        # missing file reads as an empty list.
        self.readonly = readonly
        if not readonly:
            self._ensure_schema()

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """Yield a connection inside one transaction; SQLite errors become SuppressionError."""
        # One short-lived connection per operation: safe across the server's threads, and a
        # connection never holds the file longer than one call. Writers take the write lock up
        # front (BEGIN IMMEDIATE): in WAL mode a read transaction that later writes would fail
        # at once instead of waiting out the busy timeout.
        if self.readonly and write:
            raise SuppressionError(
                _("{path}: opened read-only; nothing may be written").format(path=self.path)
            )
        if self.readonly and not self.path.exists():
            target, uri = ":memory:", False
        elif self.readonly:
            target, uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", True
        else:
            target, uri = str(self.path), False
        try:
            with closing(
                sqlite3.connect(target, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, uri=uri)
            ) as conn:
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
                if target == ":memory:":
                    conn.executescript(_SCHEMA)
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _ensure_schema(self) -> None:
        """Create the tables on first use, and refuse a file written by a newer version."""
        if not self.path.exists():
            # 0600 from the first byte: the list holds addresses; its folder is private too.
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except OSError as exc:
                raise SuppressionError(
                    _(
                        "{path}: cannot create the suppression list ({reason}); "
                        "check that its folder can be made and written"
                    ).format(path=self.path, reason=exc.strerror)
                ) from None
        try:
            with closing(
                sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            ) as conn:
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
                # One read snapshot: another process may be creating the schema right now,
                # and version and tables must be seen at the same moment.
                conn.execute("BEGIN")
                version, tables = self._schema_state(conn)
                conn.execute("COMMIT")
                if version == SCHEMA_VERSION:
                    return
                self._refuse_unknown(version, tables)
                # WAL is a property of the file: set once, outside a transaction.
                enable_wal(conn)
                conn.execute("BEGIN IMMEDIATE")
                version, tables = self._schema_state(conn)  # again, now holding the write lock
                if version == SCHEMA_VERSION:
                    conn.execute("COMMIT")  # another process made it meanwhile
                    return
                self._refuse_unknown(version, tables)
                script = {1: _MIGRATE_1_TO_2 + _MIGRATE_2_TO_3, 2: _MIGRATE_2_TO_3}.get(
                    version, _SCHEMA
                )
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    @staticmethod
    def _schema_state(conn: sqlite3.Connection) -> tuple[int, int]:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = int(conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0])
        return version, tables

    def _refuse_unknown(self, version: int, tables: int) -> None:
        if version > SCHEMA_VERSION:
            raise SuppressionError(
                _(
                    "{path}: suppression list has schema version {version}; this "
                    "nieuwsbrief knows up to {known}; upgrade nieuwsbrief"
                ).format(path=self.path, version=version, known=SCHEMA_VERSION)
            )
        if version == 0 and tables:
            raise SuppressionError(
                _(
                    "{path}: is a SQLite file of something else, not a suppression "
                    "list; it was left untouched. Check NIEUWSBRIEF_SUPPRESSION_DB"
                ).format(path=self.path)
            )

    def _error(self, exc: sqlite3.Error) -> SuppressionError:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return SuppressionError(
                _(
                    "{path}: is not a SQLite suppression list ({reason}); "
                    "check NIEUWSBRIEF_SUPPRESSION_DB"
                ).format(path=self.path, reason=text)
            )
        if "unable to open" in text:
            return SuppressionError(
                _(
                    "{path}: cannot open the suppression list ({reason}); "
                    "check that the folder exists and is writable"
                ).format(path=self.path, reason=text)
            )
        if "locked" in text or "busy" in text:
            return SuppressionError(
                _(
                    "{path}: the suppression list stayed locked for {seconds} s by another "
                    "process; try again"
                ).format(path=self.path, seconds=f"{BUSY_TIMEOUT_SECONDS:.0f}")
            )
        return SuppressionError(
            _("{path}: suppression list error: {reason}").format(path=self.path, reason=text)
        )

    # -- recipients ---------------------------------------------------------------------------

    def register(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Remember which address each recipient id stands for; return how many were new."""
        now = clock.stamp()
        rows = ((rid, normalise_address(address), now) for rid, address in pairs)
        with self._connect(write=True) as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO recipients (recipient_id, address, first_seen) "
                "VALUES (?, ?, ?)",
                rows,
            )
            return conn.total_changes - before

    def address_for(self, recipient_id: str) -> str | None:
        """Return the address behind `recipient_id`, or None if no send registered it."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT address FROM recipients WHERE recipient_id = ?", (recipient_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def recipient_map(self) -> dict[str, str]:
        """Return recipient id -> address for every registered recipient (one query)."""
        with self._connect() as conn:
            return dict(conn.execute("SELECT recipient_id, address FROM recipients").fetchall())

    # -- suppression --------------------------------------------------------------------------

    def is_suppressed(self, address: str) -> bool:
        """Return whether `address` is on the suppression list."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM suppressed WHERE address = ?", (normalise_address(address),)
            ).fetchone()
        return row is not None

    def suppressed_among(self, addresses: Sequence[str]) -> set[str]:
        """Return those of `addresses` (normal form; a batch, at most a few hundred) suppressed."""
        if not addresses:
            return set()
        marks = ",".join("?" * len(addresses))
        with self._connect() as conn:
            return {
                row[0]
                for row in conn.execute(
                    f"SELECT address FROM suppressed WHERE address IN ({marks})", tuple(addresses)
                )
            }

    def suppressed_set(self) -> frozenset[str]:
        """Return all suppressed addresses (normalised), for filtering a whole list at once."""
        with self._connect() as conn:
            return frozenset(row[0] for row in conn.execute("SELECT address FROM suppressed"))

    def add(self, address: str, source: str, note: str = "", reason: str = "") -> bool:
        """Suppress `address`; return False if it already was (the first date is kept)."""
        return self.add_many([(address, source, note, reason)]) == 1

    def add_many(self, entries: Iterable[tuple[str, str, str, str]]) -> int:
        """Suppress each (address, source, note, reason) in one transaction; return how many."""
        rows = []
        for address, source, note, reason in entries:
            _check_source(source)
            rows.append((normalise_address(address), clock.stamp(), source, note, reason))
        with self._connect(write=True) as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO suppressed (address, added_at, source, note, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            return conn.total_changes - before

    def add_by_id(self, recipient_id: str, source: str) -> str | None:
        """Suppress the address behind `recipient_id`; return it, or None for an unknown id."""
        _check_source(source)
        with self._connect(write=True) as conn:
            row = conn.execute(
                "SELECT address FROM recipients WHERE recipient_id = ?", (recipient_id,)
            ).fetchone()
            if row is None:
                return None
            address = str(row[0])
            conn.execute(
                "INSERT OR IGNORE INTO suppressed (address, added_at, source, note) "
                "VALUES (?, ?, ?, '')",
                (address, clock.stamp(), source),
            )
        return address

    def remove(self, address: str) -> bool:
        """Take `address` off the list again; return False if it was not on it."""
        with self._connect(write=True) as conn:
            cursor = conn.execute(
                "DELETE FROM suppressed WHERE address = ?", (normalise_address(address),)
            )
            return cursor.rowcount == 1

    def entries(self) -> list[Entry]:
        """Return every suppressed address, oldest first."""
        with self._connect() as conn:
            # A read-only open does not migrate: a list of an earlier version has no reasons.
            columns = {row[1] for row in conn.execute("PRAGMA table_info(suppressed)")}
            reason = "reason" if "reason" in columns else "''"
            rows = conn.execute(
                f"SELECT address, added_at, source, note, {reason} FROM suppressed "
                "ORDER BY added_at, address"
            ).fetchall()
        return [Entry(*row) for row in rows]

    def count(self) -> int:
        """Return how many addresses are suppressed."""
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM suppressed").fetchone()[0])


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise UsageError(
            _("unknown suppression source {source}; use one of {sources}").format(
                source=repr(source), sources=", ".join(sorted(SOURCES))
            )
        )
