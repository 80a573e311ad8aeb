"""`nieuwsbrief status`: what the ledger knows of each issue, and the command to go on."""

from __future__ import annotations

from pathlib import Path

from nieuwsbrief.config import Settings
from nieuwsbrief.errors import LedgerError
from nieuwsbrief.home import Home
from nieuwsbrief.i18n import _, ngettext
from nieuwsbrief.sending import ledger as ledger_mod

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
    from nieuwsbrief.returns.run import returns_counts

    delivered = record.counts.get(ledger_mod.ACCEPTED, 0)
    counts = returns_counts(settings, record.issue, sent=delivered)
    rate = (
        _(" ({rate:.2%} of delivered)").format(rate=counts["complaint_rate"])
        if "complaint_rate" in counts
        else ""
    )
    return _(
        "Returns:    {hard:.0f} hard and {soft:.0f} soft bounces, {complaints:.0f} "
        "complaints{rate}, {unsubscribes:.0f} unsubscribed by mail (nieuwsbrief mailbox)"
    ).format(
        hard=counts["hard_bounces"],
        soft=counts["soft_bounces"],
        complaints=counts["complaints"],
        rate=rate,
        unsubscribes=counts["unsubscribes"],
    )


def _find(home: Home, records: list[ledger_mod.IssueRecord], wanted: str) -> ledger_mod.IssueRecord:
    candidates = {wanted}
    folder = Path(wanted)
    if folder.is_dir():
        candidates.add(home.relative(folder))
        issue_yaml = folder / "issue.yaml"
        if issue_yaml.is_file():
            from nieuwsbrief.content.issue import load_issue_id

            issue_id = load_issue_id(issue_yaml)
            if issue_id:
                candidates.add(issue_id)
    for record in records:
        if record.issue in candidates or record.path in candidates:
            return record
    known = ", ".join(r.path or r.issue for r in records) or _("none yet")
    raise LedgerError(
        _("{issue}: the ledger has no send of this issue (issues in the ledger: {known})").format(
            issue=wanted, known=known
        )
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
        return _("{title}: no issue has been sent yet").format(title=title)
    header = (
        _("issue"),
        _("started (UTC)"),
        _("delivered"),
        _("failed"),
        _("deferred"),
        _("to send"),
    )
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
    lines = [
        ngettext(
            "{title}: {count} issue in the ledger",
            "{title}: {count} issues in the ledger",
            len(records),
        ).format(title=title, count=len(records))
    ]
    for row in rows:
        cells = [
            cell.ljust(widths[n]) if n < 2 else cell.rjust(widths[n]) for n, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.append(
        _("Details of one issue: {command}").format(command="nieuwsbrief status " + _("ISSUE_DIR"))
    )
    return "\n".join(lines)


def _details(record: ledger_mod.IssueRecord, rows: list[ledger_mod.LedgerRow]) -> str:
    delivered, failed, deferred, to_send = _counts(record)
    lines = [
        _("Issue:      {issue}").format(issue=record.path or record.issue)
        + (
            " " + _("(id {id})").format(id=record.issue)
            if record.path and record.issue != record.path
            else ""
        ),
        _("Subject:    {subject}").format(subject=record.subject),
        _("Started:    {started} (UTC); last result {last}").format(
            started=record.started_at, last=record.last_update or "-"
        ),
        _("Delivered:  {count}").format(count=delivered),
        _("Failed:     {count} refused by the server (5xx)").format(count=failed),
        _("Deferred:   {count} still refused temporarily (4xx) when the retries ran out").format(
            count=deferred
        ),
        _("To send:    {count} of the {planned} planned").format(
            count=to_send, planned=record.planned
        ),
    ]
    for row in rows[:_SHOWN_FAILURES]:
        lines.append(f"  {row.address}: {_(row.status)}, {row.reply}")
    if len(rows) > _SHOWN_FAILURES:
        lines.append(
            "  "
            + _("... and {count} more (see out/send-failures.csv)").format(
                count=len(rows) - _SHOWN_FAILURES
            )
        )
    if record.command:
        if to_send:
            lines.append(_("Continue:   {command}").format(command=record.command))
        if failed or deferred:
            retry = record.command
            if "--retry-failed" not in retry:
                retry += " --retry-failed"
            lines.append(_("Retry the failed ones: {command}").format(command=retry))
    return "\n".join(lines)
