"""`nieuwsbrief mailbox` and the counts `nieuwsbrief status` shows: the returns' entry points."""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from nieuwsbrief.addresses import normalise_address
from nieuwsbrief.config import Settings
from nieuwsbrief.errors import NieuwsbriefError
from nieuwsbrief.returns.classify import Kind
from nieuwsbrief.returns.process import Context, RunReport, process_mailbox, write_csv
from nieuwsbrief.returns.sources import ImapSource, MaildirSource, MboxSource, Source
from nieuwsbrief.returns.store import ReturnsStore
from nieuwsbrief.suppression import SuppressionList

RETURNS_FILE = "returns.sqlite"


def returns_path(settings: Settings) -> Path:
    """Return the returns file: beside the send ledger, in the home's state."""
    return settings.ledger_path.with_name(RETURNS_FILE)


class LedgerSentMail:
    """`SentMail` over the send ledger file (read only) and the suppression list's recipients."""

    def __init__(self, ledger_path: Path, suppression: SuppressionList) -> None:
        self.path = ledger_path
        self._suppression = suppression
        self._columns: set[str] = set()
        if ledger_path.is_file():
            self._columns = {row[1] for row in self._query("PRAGMA table_info(recipients)")}

    def _query(self, sql: str, *args: str) -> list[tuple[str, ...]]:
        if not self.path.is_file():
            return []
        try:
            uri = f"file:{self.path}?mode=ro"
            with closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
                return conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise NieuwsbriefError(f"{self.path}: cannot read the send ledger ({exc})") from None

    def lookup_message_id(self, message_id: str) -> tuple[str, str] | None:
        """Return (issue, address) of the message with this Message-ID, if the ledger has it."""
        if "message_id" not in self._columns:
            return None
        rows = self._query(
            "SELECT issue, address FROM recipients WHERE message_id = ?", message_id.strip()
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def issue_mailed_to(self, address: str) -> str | None:
        """Return the latest issue accepted for `address`."""
        rows = self._query(
            "SELECT issue FROM recipients WHERE address = ? AND status = 'accepted' "
            "ORDER BY updated_at DESC LIMIT 1",
            normalise_address(address),
        )
        return rows[0][0] if rows else None

    def issue_ids(self) -> list[str]:
        """Return every issue in the ledger."""
        return [row[0] for row in self._query("SELECT issue FROM issues")]

    def address_for(self, recipient_id: str) -> str | None:
        """Return the address behind a recipient id, as registered by `send`."""
        return self._suppression.address_for(recipient_id)


def open_source(settings: Settings, maildir: Path | None, mbox: Path | None) -> Source:
    """Return the mailbox to read: --maildir, --mbox, or the IMAP settings."""
    if maildir is not None and mbox is not None:
        raise NieuwsbriefError("give --maildir or --mbox, not both")
    if maildir is not None:
        return MaildirSource(maildir)
    if mbox is not None:
        return MboxSource(mbox)
    return ImapSource(settings)


def run_mailbox(
    settings: Settings,
    *,
    maildir: Path | None = None,
    mbox: Path | None = None,
    dry_run: bool = False,
    csv_path: Path | None = None,
) -> RunReport:
    """Read the returns mailbox once, act on what it reports, and write the CSV of actions."""
    suppression = SuppressionList(settings.suppression_path)
    source = open_source(settings, maildir, mbox)
    with tempfile.TemporaryDirectory() as scratch:
        path = returns_path(settings)
        if dry_run and not path.exists():
            path = Path(scratch) / RETURNS_FILE  # a dry run creates no state
        store = ReturnsStore(path)
        report = _run(settings, source, suppression, store, dry_run)
    return _write_report(settings, report, csv_path, dry_run)


def _run(
    settings: Settings,
    source: Source,
    suppression: SuppressionList,
    store: ReturnsStore,
    dry_run: bool,
) -> RunReport:
    try:
        ctx = Context(
            secret=settings.secret,
            bounce_address=settings.bounce_address,
            sent=LedgerSentMail(settings.ledger_path, suppression),
            suppression=suppression,
            store=store,
        )
        return process_mailbox(source, ctx, dry_run=dry_run)
    finally:
        source.close()


def _write_report(
    settings: Settings, report: RunReport, csv_path: Path | None, dry_run: bool
) -> RunReport:
    if csv_path is None and not dry_run and report.actions:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        csv_path = returns_path(settings).with_name("returns") / f"mailbox-{stamp}.csv"
    if csv_path is not None:
        write_csv(report, csv_path)
    return report


def returns_counts(settings: Settings, issue_id: str, sent: int | None = None) -> dict[str, float]:
    """Return per issue: bounced hard/soft, complaints (and their rate of `sent`), unsubscribes."""
    path = returns_path(settings)
    counts = ReturnsStore(path).counts(issue_id) if path.is_file() else {}
    result: dict[str, float] = {
        "hard_bounces": counts.get(Kind.HARD.value, 0),
        "soft_bounces": counts.get(Kind.SOFT.value, 0),
        "complaints": counts.get(Kind.COMPLAINT.value, 0),
        "unsubscribes": counts.get(Kind.UNSUBSCRIBE.value, 0),
    }
    if sent:
        result["complaint_rate"] = result["complaints"] / sent
    return result
