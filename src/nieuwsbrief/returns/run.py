"""`nieuwsbrief mailbox` and the counts `nieuwsbrief status` shows: the returns' entry points."""

from __future__ import annotations

import tempfile
from pathlib import Path

from nieuwsbrief import clock
from nieuwsbrief.addresses import normalise_address
from nieuwsbrief.config import Settings
from nieuwsbrief.errors import UsageError
from nieuwsbrief.i18n import _
from nieuwsbrief.returns.classify import Kind
from nieuwsbrief.returns.process import Context, RunReport, process_mailbox, write_csv
from nieuwsbrief.returns.sources import ImapSource, MaildirSource, MboxSource, Source
from nieuwsbrief.returns.store import ReturnsStore
from nieuwsbrief.sending.ledger import Ledger
from nieuwsbrief.unsubscribe.suppression import SuppressionList

RETURNS_FILE = "returns.sqlite"


def returns_path(settings: Settings) -> Path:
    """Return the returns file: beside the send ledger, in the home's state."""
    return settings.ledger_path.with_name(RETURNS_FILE)


class LedgerSentMail:
    """`SentMail` over the send ledger (opened read-only) and the suppression list's recipients."""

    def __init__(self, ledger_path: Path, suppression: SuppressionList) -> None:
        self._ledger = Ledger(ledger_path, readonly=True)
        self._suppression = suppression
        self._recipients: dict[str, str] | None = None  # loaded once: a run looks up thousands

    def lookup_message_id(self, message_id: str) -> tuple[str, str] | None:
        """Return (issue, address) of the message sent with this Message-ID."""
        return self._ledger.find_message(message_id)

    def issue_mailed_to(self, address: str) -> str | None:
        """Return the latest issue accepted for `address`."""
        return self._ledger.last_issue_to(normalise_address(address))

    def issue_ids(self) -> list[str]:
        """Return every issue in the ledger."""
        return [record.issue for record in self._ledger.issues()]

    def address_for(self, recipient_id: str) -> str | None:
        """Return the address behind a recipient id, as registered by `send`."""
        if self._recipients is None:
            self._recipients = self._suppression.recipient_map()
        return self._recipients.get(recipient_id)

    def close(self) -> None:
        """Close the ledger."""
        self._ledger.close()


def open_source(settings: Settings, maildir: Path | None, mbox: Path | None) -> Source:
    """Return the mailbox to read: --maildir, --mbox, or the IMAP settings."""
    if maildir is not None and mbox is not None:
        raise UsageError(_("give --maildir or --mbox, not both"))
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
    suppression = SuppressionList(settings.suppression_path, readonly=dry_run)
    source = open_source(settings, maildir, mbox)
    with tempfile.TemporaryDirectory() as scratch:
        path = returns_path(settings)
        if dry_run and not path.exists():
            path = Path(scratch) / RETURNS_FILE  # a dry run creates no state
            store = ReturnsStore(path)
        else:
            store = ReturnsStore(path, readonly=dry_run)
        try:
            report = _run(settings, source, suppression, store, dry_run)
        finally:
            store.close()
    return _write_report(settings, report, csv_path, dry_run)


def _run(
    settings: Settings,
    source: Source,
    suppression: SuppressionList,
    store: ReturnsStore,
    dry_run: bool,
) -> RunReport:
    sent = LedgerSentMail(settings.ledger_path, suppression)
    try:
        ctx = Context(
            secret=settings.secret,
            bounce_address=settings.bounce_address,
            sent=sent,
            suppression=suppression,
            store=store,
        )
        return process_mailbox(source, ctx, dry_run=dry_run)
    finally:
        sent.close()
        source.close()


def _write_report(
    settings: Settings, report: RunReport, csv_path: Path | None, dry_run: bool
) -> RunReport:
    if csv_path is None and not dry_run and report.actions:
        stamp = clock.now().strftime("%Y%m%d-%H%M%S")
        csv_path = returns_path(settings).with_name("returns") / f"mailbox-{stamp}.csv"
    if csv_path is not None:
        write_csv(report, csv_path)
    return report


def returns_counts(settings: Settings, issue_id: str, sent: int | None = None) -> dict[str, float]:
    """Return per issue: bounced hard/soft, complaints (and their rate of `sent`), unsubscribes.

    Counts only (distinct addresses per kind); never opens or clicks. Writes nothing.
    """
    path = returns_path(settings)
    counts: dict[str, int] = {}
    if path.is_file():
        store = ReturnsStore(path, readonly=True)
        try:
            counts = store.counts(issue_id)
        finally:
            store.close()
    result: dict[str, float] = {
        "hard_bounces": counts.get(Kind.HARD.value, 0),
        "soft_bounces": counts.get(Kind.SOFT.value, 0),
        "complaints": counts.get(Kind.COMPLAINT.value, 0),
        "unsubscribes": counts.get(Kind.UNSUBSCRIBE.value, 0),
    }
    if sent:
        result["complaint_rate"] = result["complaints"] / sent
    return result
