"""`nieuwsbrief status`: what the ledger knows of each issue, and the command to go on."""

from __future__ import annotations

from pathlib import Path

from . import ledger as ledger_mod
from .config import Settings
from .errors import NieuwsbriefError
from .home import Home

_SHOWN_FAILURES = 20


def status_report(settings: Settings, issue: str | None = None) -> str:
    """Return the table of every issue, or the details of one (a folder or a ledger name)."""
    home = settings.home
    assert home is not None
    ledger = ledger_mod.Ledger(settings.ledger_path, readonly=True)
    try:
        records = ledger.issues()
        if issue is None:
            return _table(home, records)
        record = _find(home, records, issue)
        rows = ledger.rows(record.issue, ledger_mod.OUTSTANDING)
    finally:
        ledger.close()
    return _details(record, rows) + "\n" + _returns_line(settings, record)


def _returns_line(settings: Settings, record: ledger_mod.IssueRecord) -> str:
    """Say what came back for the issue (the returns mailbox): counts only."""
    from .returns.run import returns_counts

    delivered = record.counts.get(ledger_mod.ACCEPTED, 0)
    counts = returns_counts(settings, record.issue, sent=delivered)
    rate = f" ({counts['complaint_rate']:.2%} of delivered)" if "complaint_rate" in counts else ""
    return (
        f"Returns:    {counts['hard_bounces']:.0f} hard and {counts['soft_bounces']:.0f} soft "
        f"bounces, {counts['complaints']:.0f} complaints{rate}, "
        f"{counts['unsubscribes']:.0f} unsubscribed by mail (nieuwsbrief mailbox)"
    )


def _find(home: Home, records: list[ledger_mod.IssueRecord], wanted: str) -> ledger_mod.IssueRecord:
    candidates = {wanted}
    folder = Path(wanted)
    if folder.is_dir():
        candidates.add(home.relative(folder))
        issue_yaml = folder / "issue.yaml"
        if issue_yaml.is_file():
            from .content import load_issue_id

            issue_id = load_issue_id(issue_yaml)
            if issue_id:
                candidates.add(issue_id)
    for record in records:
        if record.issue in candidates or record.path in candidates:
            return record
    known = ", ".join(r.path or r.issue for r in records) or "none yet"
    raise NieuwsbriefError(
        f"{wanted}: the ledger has no send of this issue (issues in the ledger: {known})"
    )


def _counts(record: ledger_mod.IssueRecord) -> tuple[int, int, int, int]:
    delivered = record.counts.get(ledger_mod.ACCEPTED, 0)
    failed = record.counts.get(ledger_mod.FAILED, 0)
    deferred = record.counts.get(ledger_mod.DEFERRED, 0)
    to_send = max(record.planned - delivered - failed - deferred, 0)
    return delivered, failed, deferred, to_send


def _table(home: Home, records: list[ledger_mod.IssueRecord]) -> str:
    title = home.name or str(home.root)
    if not records:
        return f"{title}: no issue has been sent yet"
    header = ("issue", "started (UTC)", "delivered", "failed", "deferred", "to send")
    rows = [header]
    for record in sorted(records, key=lambda r: r.started_at, reverse=True):
        delivered, failed, deferred, to_send = _counts(record)
        rows.append(
            (
                record.path or record.issue,
                record.started_at[:16].replace("T", " "),
                str(delivered),
                str(failed),
                str(deferred),
                str(to_send),
            )
        )
    widths = [max(len(row[n]) for row in rows) for n in range(len(header))]
    lines = [f"{title}: {len(records)} issue(s) in the ledger"]
    for row in rows:
        cells = [
            cell.ljust(widths[n]) if n < 2 else cell.rjust(widths[n]) for n, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.append("Details of one issue: nieuwsbrief status ISSUE_DIR")
    return "\n".join(lines)


def _details(record: ledger_mod.IssueRecord, rows: list[ledger_mod.LedgerRow]) -> str:
    delivered, failed, deferred, to_send = _counts(record)
    lines = [
        f"Issue:      {record.path or record.issue}"
        + (f" (id {record.issue})" if record.path and record.issue != record.path else ""),
        f"Subject:    {record.subject}",
        f"Started:    {record.started_at} (UTC); last result {record.last_update or '-'}",
        f"Delivered:  {delivered}",
        f"Failed:     {failed} refused by the server (5xx)",
        f"Deferred:   {deferred} still refused temporarily (4xx) when the retries ran out",
        f"To send:    {to_send} of the {record.planned} planned",
    ]
    for row in rows[:_SHOWN_FAILURES]:
        lines.append(f"  {row.address}: {row.status}, {row.reply}")
    if len(rows) > _SHOWN_FAILURES:
        lines.append(f"  ... and {len(rows) - _SHOWN_FAILURES} more (see out/send-failures.csv)")
    if record.command:
        if to_send:
            lines.append(f"Continue:   {record.command}")
        if failed or deferred:
            retry = record.command
            if "--retry-failed" not in retry:
                retry += " --retry-failed"
            lines.append(f"Retry the failed ones: {retry}")
    return "\n".join(lines)
