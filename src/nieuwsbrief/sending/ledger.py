"""Who has received which issue: a SQLite ledger written the moment a server accepts a message.

Keyed by the issue's identity (its `id` in issue.yaml, else its path in the home) and the
address, so a re-run with the same or a changed list sends only to those not yet accepted, and
two issues whose folders share a name never share a ledger entry. For each issue the ledger
keeps the hash of the rendered issue and of each of its parts, so resuming after the content
changed is refused unless forced, with what changed; the command that started the send; and the
Message-ID of every message, so a returned report can be matched to what we sent.

A file that is not a nieuwsbrief ledger, or is damaged, is refused and never modified.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nieuwsbrief.clock import stamp as _now  # the one wall clock (tests freeze it)
from nieuwsbrief.errors import LedgerError
from nieuwsbrief.i18n import _
from nieuwsbrief.sqlitefile import enable_wal

ACCEPTED = "accepted"
FAILED = "failed"  # a permanent (5xx) refusal
DEFERRED = "deferred"  # temporary (4xx) refusals until the retry window ran out
OUTSTANDING = (FAILED, DEFERRED)
_SCHEMA_VERSION = 2
APPLICATION_ID = 0x4E424C47  # "NBLG": marks the file as a nieuwsbrief ledger
_TABLES = {"issues", "recipients"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS issues (
    issue TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    subject TEXT NOT NULL,
    started_at TEXT NOT NULL,
    path TEXT NOT NULL DEFAULT '',
    parts TEXT NOT NULL DEFAULT '{}',
    planned INTEGER NOT NULL DEFAULT 0,
    command TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS recipients (
    issue TEXT NOT NULL,
    address TEXT NOT NULL,
    status TEXT NOT NULL,
    reply TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    message_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (issue, address)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recipients_message_id ON recipients (message_id)
    WHERE message_id != '';
CREATE INDEX IF NOT EXISTS recipients_address ON recipients (address);
"""
# An index only (last_issue_to looks an address up over all issues): added to a
# ledger of version 2 when a send opens it, without a new version, so an older nieuwsbrief can
# still use the file.
_ADDRESS_INDEX = "CREATE INDEX IF NOT EXISTS recipients_address ON recipients (address)"
# Version 1 (the first build) keyed issues by folder name and had no path, parts, planned,
# command or message_id; its rows are kept and adopted by the issue folder of that name.
_MIGRATE_1_TO_2 = """
ALTER TABLE issues ADD COLUMN path TEXT NOT NULL DEFAULT '';
ALTER TABLE issues ADD COLUMN parts TEXT NOT NULL DEFAULT '{}';
ALTER TABLE issues ADD COLUMN planned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE issues ADD COLUMN command TEXT NOT NULL DEFAULT '';
ALTER TABLE recipients ADD COLUMN message_id TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS recipients_message_id ON recipients (message_id)
    WHERE message_id != '';
CREATE INDEX IF NOT EXISTS recipients_address ON recipients (address);
"""


@dataclass(frozen=True)
class LedgerRow:
    """One recipient's state for one issue."""

    address: str
    status: str
    reply: str
    attempts: int
    updated_at: str


@dataclass(frozen=True)
class IssueRecord:
    """What the ledger knows of one issue."""

    issue: str
    path: str
    subject: str
    started_at: str
    planned: int
    command: str
    counts: Mapping[str, int]
    last_update: str


@dataclass(frozen=True)
class IssueKey:
    """How the ledger finds an issue: its identity, its path in the home, its folder name."""

    identity: str
    path: str
    folder: str


def _describe(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "full" in text or "too large" in text:
        return _("{reason}: the disk holding the ledger is full").format(reason=text)
    return text


class Ledger:
    """The send ledger of every issue, in one SQLite file; safe to use from several threads.

    `readonly=True` opens an existing file without writing anything (a missing file reads as an
    empty ledger): for dry runs, checks and `status`.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if readonly and not path.exists():
            return
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            if self._db is not None:
                self._db.close()
            if "malformed" in str(exc) or "not a database" in str(exc):
                raise LedgerError(
                    _(
                        "{path}: the ledger is damaged ({problem}); it was left untouched. Restore "
                        "it from a backup, or recover it with `sqlite3 FILE .recover`"
                    ).format(path=path, problem=exc)
                ) from None
            raise LedgerError(
                _(
                    "{path}: cannot use the send ledger ({reason}); "
                    "if it is not a nieuwsbrief ledger, point NIEUWSBRIEF_LEDGER_DB elsewhere"
                ).format(path=path, reason=_describe(exc))
            ) from None

    def _open(self) -> None:
        path = self.path
        if self.readonly:
            # immutable: read without creating -wal/-shm files next to it (a dry run writes
            # nothing); a send running at the same time may have a few records not seen yet.
            source = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro&immutable=1",
                uri=True,
                check_same_thread=False,
            )
            self._db = source
            version = self._check_ours(source)
            if version < _SCHEMA_VERSION:
                # An older layout is read through a migrated copy in memory: the file stays
                # as it is until a real send migrates it.
                self._db = sqlite3.connect(":memory:", check_same_thread=False)
                source.backup(self._db)
                source.close()
                self._db.executescript(_SCHEMA if version == 0 else _MIGRATE_1_TO_2)
            return
        fresh = not path.exists() or path.stat().st_size == 0
        if fresh:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # 0600 from the first byte: the ledger holds every subscriber's address.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA busy_timeout=10000")
        # One read snapshot: another send may be creating the schema at this moment.
        db.execute("BEGIN")
        version = self._check_ours(db)
        indexed = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'recipients_address'"
        ).fetchone()
        db.execute("COMMIT")
        enable_wal(db)
        # A commit survives a crash or kill -9 of this process (not a power cut).
        db.execute("PRAGMA synchronous=NORMAL")
        if version == _SCHEMA_VERSION and indexed is None:
            db.execute(_ADDRESS_INDEX)
        if version < _SCHEMA_VERSION:
            db.execute("BEGIN IMMEDIATE")
            version = self._check_ours(db)  # again, holding the write lock
            if version == _SCHEMA_VERSION:
                db.execute("COMMIT")  # another process made it meanwhile
                return
            script = _SCHEMA if version == 0 else _MIGRATE_1_TO_2
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute("COMMIT")

    def _check_ours(self, db: sqlite3.Connection) -> int:
        """Return the schema version; refuse a foreign, newer or damaged file, changing nothing."""
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        app_id = int(db.execute("PRAGMA application_id").fetchone()[0])
        tables = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if not tables and version == 0 and app_id in (0, APPLICATION_ID):
            # An empty database (also one another send is creating right now, whose header
            # is already written): nothing in it to protect.
            return 0
        ours = app_id == APPLICATION_ID or (app_id == 0 and version == 1 and tables == _TABLES)
        if not ours or not tables:
            raise LedgerError(
                _(
                    "{path}: is not a nieuwsbrief send ledger (it has {tables}); it was left "
                    "untouched. Point NIEUWSBRIEF_LEDGER_DB at the right file, or move this one "
                    "away"
                ).format(path=self.path, tables=", ".join(sorted(tables)) or _("no tables"))
            )
        if version > _SCHEMA_VERSION:
            raise LedgerError(
                _("{path}: written by a newer nieuwsbrief; upgrade nieuwsbrief").format(
                    path=self.path
                )
            )
        problem = db.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise LedgerError(
                _(
                    "{path}: the ledger is damaged ({problem}); it was left untouched. Restore "
                    "it from a backup, or recover it with `sqlite3 FILE .recover`"
                ).format(path=self.path, problem=problem)
            )
        return version

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _execute(self, sql: str, params: Iterable[object] = ()) -> sqlite3.Cursor:
        assert self._db is not None
        try:
            return self._db.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise LedgerError(
                _("{path}: cannot write the send ledger ({reason})").format(
                    path=self.path, reason=_describe(exc)
                )
            ) from None

    # -- issues ---------------------------------------------------------------------------

    def resolve(self, key: IssueKey) -> str:
        """Return the ledger's name for an issue, adopting rows of the first build's layout.

        The first build knew an issue by its folder name; those rows belong to the issue of
        that folder name, once. An identity already used by another folder that still exists is
        refused: two issues never share a ledger entry.
        """
        if self._db is None:
            return key.identity
        with self._lock:
            row = self._execute(
                "SELECT path FROM issues WHERE issue = ?", (key.identity,)
            ).fetchone()
            if row is not None:
                return key.identity
            legacy = self._execute(
                "SELECT 1 FROM issues WHERE issue = ? AND path = ''", (key.folder,)
            ).fetchone()
            if legacy is None:
                return key.identity
            if self.readonly:
                return key.folder
            self._execute("BEGIN IMMEDIATE")
            self._execute(
                "UPDATE issues SET issue = ?, path = ? WHERE issue = ?",
                (key.identity, key.path, key.folder),
            )
            self._execute(
                "UPDATE recipients SET issue = ? WHERE issue = ?", (key.identity, key.folder)
            )
            self._execute("COMMIT")
            return key.identity

    def check_identity(self, issue: str, path: str, *, folder_exists: bool) -> None:
        """Refuse an issue whose identity belongs to another folder that still exists."""
        recorded = self.issue_path(issue)
        if recorded and path and recorded != path and folder_exists:
            with self._lock:
                sent = self._count(issue, ACCEPTED)
            raise LedgerError(
                _(
                    "{path}: its id '{issue}' is also the id of {other}, which was sent to "
                    "{sent} recipients; give this issue an id of its own in its issue.yaml"
                ).format(path=path, issue=issue, other=recorded, sent=sent)
            )

    def begin_issue(
        self,
        issue: str,
        content_hash: str,
        subject: str,
        *,
        force: bool,
        path: str = "",
        parts: Mapping[str, str] | None = None,
        planned: int = 0,
        command: str = "",
    ) -> None:
        """Record the issue's content; refuse a changed issue that was partly sent, saying what."""
        parts_json = json.dumps(dict(parts or {}), sort_keys=True)
        with self._lock:
            row = self._execute(
                "SELECT content_hash, started_at, path, parts FROM issues WHERE issue = ?",
                (issue,),
            ).fetchone()
            if row is None:
                self._execute(
                    "INSERT INTO issues VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (issue, content_hash, subject, _now(), path, parts_json, planned, command),
                )
                return
            old_hash, started_at, old_path, old_parts = row
            sent = self._count(issue, ACCEPTED)
            if old_hash != content_hash and sent and not force:
                changed = describe_changes(json.loads(old_parts or "{}"), dict(parts or {}))
                raise LedgerError(
                    _(
                        "issue '{issue}' changed since its send started on {started} "
                        "({sent} recipients already got the earlier version); {changed}. If that "
                        "is intended, add --force to send the changed version to the rest"
                    ).format(issue=issue, started=started_at, sent=sent, changed=changed)
                )
            self._execute(
                "UPDATE issues SET content_hash = ?, subject = ?, path = ?, parts = ?, "
                "planned = MAX(planned, ?), command = ? WHERE issue = ?",
                (content_hash, subject, path or old_path, parts_json, planned, command, issue),
            )

    def issue_path(self, issue: str) -> str | None:
        """Return the home-relative path the ledger has for an issue, if any."""
        if self._db is None:
            return None
        with self._lock:
            row = self._execute("SELECT path FROM issues WHERE issue = ?", (issue,)).fetchone()
        return None if row is None else str(row[0])

    def _count(self, issue: str, status: str) -> int:
        return int(
            self._execute(
                "SELECT COUNT(*) FROM recipients WHERE issue = ? AND status = ?", (issue, status)
            ).fetchone()[0]
        )

    def issues(self) -> list[IssueRecord]:
        """Return every issue in the ledger, oldest send first."""
        if self._db is None:
            return []
        with self._lock:
            rows = self._execute(
                "SELECT issue, path, subject, started_at, planned, command FROM issues "
                "ORDER BY started_at, issue"
            ).fetchall()
            records = []
            for issue, path, subject, started_at, planned, command in rows:
                counts = dict(
                    self._execute(
                        "SELECT status, COUNT(*) FROM recipients WHERE issue = ? GROUP BY status",
                        (issue,),
                    ).fetchall()
                )
                last = self._execute(
                    "SELECT MAX(updated_at) FROM recipients WHERE issue = ?", (issue,)
                ).fetchone()[0]
                records.append(
                    IssueRecord(
                        issue, path, subject, started_at, planned, command, counts, last or ""
                    )
                )
        return records

    # -- recipients -------------------------------------------------------------------------

    def states(self, issue: str) -> dict[str, str]:
        """Return address (normal form) -> status for every recipient recorded for an issue."""
        if self._db is None:
            return {}
        with self._lock:
            rows = self._execute(
                "SELECT address, status FROM recipients WHERE issue = ?", (issue,)
            ).fetchall()
        return {address: status for address, status in rows}

    def states_of(self, issue: str, addresses: Sequence[str]) -> dict[str, str]:
        """Return address -> status for those of `addresses` (normal form) the issue has.

        For a batch of a list at a time (at most a few hundred addresses per call), so a long
        list is checked against the ledger without loading all of it.
        """
        if self._db is None or not addresses:
            return {}
        marks = ",".join("?" * len(addresses))
        with self._lock:
            rows = self._execute(
                f"SELECT address, status FROM recipients WHERE issue = ? AND address IN ({marks})",
                (issue, *addresses),
            ).fetchall()
        return {address: status for address, status in rows}

    def record(
        self,
        issue: str,
        address: str,
        status: str,
        reply: str,
        attempts: int,
        message_id: str = "",
    ) -> None:
        """Record one recipient's outcome at once (committed before returning).

        `address` is in the normal form of addresses.normalise_address (the key of `states`).
        """
        self.record_many(issue, [(address, status, reply, attempts, message_id)])

    def record_many(self, issue: str, outcomes: Sequence[tuple[str, str, str, int, str]]) -> None:
        """Record (address, status, reply, attempts, message_id) outcomes in one transaction.

        Committed before returning, all or none: on an error nothing of `outcomes` is recorded.
        One commit for the results that are waiting anyway keeps the sending thread free.
        """
        now = _now()
        rows = [(issue, a, s, r, n, now, m) for a, s, r, n, m in outcomes]
        with self._lock:
            db = self._db
            assert db is not None
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    "INSERT INTO recipients VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (issue, address) DO UPDATE SET status = excluded.status, "
                    "reply = excluded.reply, "
                    "attempts = recipients.attempts + excluded.attempts, "
                    "updated_at = excluded.updated_at, message_id = CASE "
                    "WHEN excluded.message_id != '' THEN excluded.message_id "
                    "ELSE recipients.message_id END",
                    rows,
                )
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise LedgerError(
                    _("{path}: cannot write the send ledger ({reason})").format(
                        path=self.path, reason=_describe(exc)
                    )
                ) from None

    def rows(self, issue: str, statuses: Iterable[str]) -> list[LedgerRow]:
        """Return the recipients of an issue that have one of the given statuses."""
        if self._db is None:
            return []
        wanted = tuple(statuses)
        marks = ",".join("?" for _ in wanted)
        with self._lock:
            rows = self._execute(
                f"SELECT address, status, reply, attempts, updated_at FROM recipients "
                f"WHERE issue = ? AND status IN ({marks}) ORDER BY address",
                (issue, *wanted),
            ).fetchall()
        return [LedgerRow(*row) for row in rows]

    def find_message(self, message_id: str) -> tuple[str, str] | None:
        """Return (issue, address) of the message with this Message-ID, if we sent it."""
        if self._db is None or not message_id:
            return None
        with self._lock:
            row = self._execute(
                "SELECT issue, address FROM recipients WHERE message_id = ? LIMIT 1",
                (message_id.strip(),),
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def last_issue_to(self, address: str) -> str | None:
        """Return the issue most recently accepted for this address (normal form), if any."""
        if self._db is None:
            return None
        with self._lock:
            row = self._execute(
                "SELECT issue FROM recipients WHERE address = ? AND status = ? "
                "ORDER BY updated_at DESC LIMIT 1",
                (address, ACCEPTED),
            ).fetchone()
        return None if row is None else str(row[0])


def describe_changes(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    """Say in words which parts of an issue differ between two sets of part hashes."""
    if not old:
        return _("the rendered e-mail differs (this ledger has no details of the earlier version)")
    changes = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        kind, _sep, name = key.partition(":")
        label = {
            "subject": _("the subject"),
            "preheader": _("the preheader"),
            "intro": _("the intro"),
            "date": _("the issue date"),
            "agenda": _("the agenda (the events this issue shows)"),
            "layout": _("the house style or templates"),
        }.get(kind, _("the article {name}").format(name=name) if kind == "article" else key)
        if key not in old:
            label += " " + _("(new)")
        elif key not in new:
            label += " " + _("(left out)")
        changes.append(label)
    if not changes:
        return _("the rendered e-mail differs")
    return _("changed: {parts}").format(parts=", ".join(changes))
