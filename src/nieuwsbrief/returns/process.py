"""One run over the returns mailbox: classify, match, act, record, mark; then say what happened.

Matching, in this order (a report changes nothing unless it matches something this home sent):
1. a VERP token in the report's envelope recipient, Delivered-To, X-Original-To or To (or an
   ARF report's Original-Mail-From); a token whose signature fails marks the report **forged**;
2. the Message-ID of the quoted original, looked up in the ledger;
3. for reports without a token (MTAs that strip VERP, old formats), the failed address as the
   report names it, only if this home has mailed it.
Each message is acted on, committed, and only then marked processed: a crash in between makes
the next run see it again, and the returns file's digest keeps that second look a no-op.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from nieuwsbrief import clock
from nieuwsbrief.addresses import normalise_address, split_address
from nieuwsbrief.i18n import _
from nieuwsbrief.returns.classify import Failure, Kind, Returned, classify
from nieuwsbrief.returns.sources import Item, Source
from nieuwsbrief.returns.store import ReturnsStore, SentMail
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from nieuwsbrief.unsubscribe.tokens import (
    VERP_TOKEN_RE,
    find_token,
    issue_tag,
    verify_token,
    verify_verp_token,
)

SOFT_BOUNCES = 3  # soft bounces (at most one per issue and day) ...
SOFT_ISSUES = 2  # ... across at least this many issues ...
SOFT_WINDOW_DAYS = 30  # ... within this many days: the address is suppressed

# The outcome column of the CSV.
SUPPRESSED = "suppressed"
WOULD_SUPPRESS = "would suppress"
ALREADY = "already suppressed"
SCORED = "soft bounce counted"
COUNTED = "counted"
UNMATCHED = "unmatched"
FORGED = "forged"
SKIPPED = "skipped"


@dataclass(frozen=True)
class Action:
    """What one returned message led to, for one address (one row of the CSV)."""

    ref: str
    kind: Kind
    outcome: str
    address: str = ""
    issue: str = ""
    matched_by: str = ""  # verp, message-id, address, token
    date: str = ""
    evidence: str = ""


@dataclass
class RunReport:
    """Everything one run did (or, with --dry-run, would do)."""

    source: str
    dry_run: bool
    actions: list[Action] = field(default_factory=list)
    already_processed: int = 0
    csv_path: Path | None = None

    def tally(self) -> Counter[str]:
        """Return the counts the summary shows."""
        counts: Counter[str] = Counter()
        for action in self.actions:
            if action.outcome in (UNMATCHED, FORGED, SKIPPED):
                counts[action.outcome] += 1
            else:
                counts[action.kind.value] += 1
        return counts

    def describe(self) -> str:
        """Return the summary printed at the end of a run."""
        counts = self.tally()
        suppress = sum(1 for a in self.actions if a.outcome in (SUPPRESSED, WOULD_SUPPRESS))
        messages = len({a.ref for a in self.actions})
        lines = [
            (_("Dry run, nothing changed: ") if self.dry_run else "")
            + _("{count} messages read from {source} ({before} processed before)").format(
                count=messages, source=self.source, before=self.already_processed
            ),
            "  "
            + _(
                "hard bounces {hard}, soft bounces {soft}, complaints {complaints}, "
                "unsubscribes {unsubscribes}, auto-replies {auto}, human replies {human}"
            ).format(
                hard=counts[Kind.HARD.value],
                soft=counts[Kind.SOFT.value],
                complaints=counts[Kind.COMPLAINT.value],
                unsubscribes=counts[Kind.UNSUBSCRIBE.value],
                auto=counts[Kind.AUTO_REPLY.value],
                human=counts[Kind.HUMAN.value],
            ),
            "  "
            + _(
                "unmatched {unmatched}, forged {forged}, skipped {skipped}, other {other}, "
                "feedback {feedback}"
            ).format(
                unmatched=counts[UNMATCHED],
                forged=counts[FORGED],
                skipped=counts[SKIPPED],
                other=counts[Kind.DELAYED.value] + counts[Kind.NOT_ADDRESS.value],
                feedback=counts[Kind.FEEDBACK.value],
            ),
            (
                _("Would suppress: {count} addresses")
                if self.dry_run
                else _("Suppressed: {count} addresses")
            ).format(count=suppress),
        ]
        lines += [
            "  " + _("skipped {ref}: {evidence}").format(ref=a.ref, evidence=a.evidence)
            for a in self.actions
            if a.outcome == SKIPPED
        ][:20]
        if self.csv_path is not None:
            lines.append(_("Every action with its evidence: {path}").format(path=self.csv_path))
        return "\n".join(lines)


@dataclass(frozen=True)
class Context:
    """What a run needs besides the mailbox."""

    secret: str
    bounce_address: str | None
    sent: SentMail
    suppression: SuppressionList
    store: ReturnsStore
    today: date = field(default_factory=lambda: clock.now().date())


BATCH_SIZE = 500  # messages acted on per commit; then they are marked processed


@dataclass
class _Batch:
    """Actions not yet committed, and the messages to mark once they are."""

    suppressed: set[str]  # on the list, committed or pending
    suppressions: list[tuple[str, str, str, str]] = field(default_factory=list)
    marks: list[Item] = field(default_factory=list)

    def flush(self, ctx: Context, source: Source) -> None:
        """Commit the suppressions, then the returns file, then mark: act, commit, mark."""
        suppressions, marks = self.suppressions, self.marks
        self.suppressions, self.marks = [], []
        if suppressions:
            ctx.suppression.add_many(suppressions)
        ctx.store.flush()
        for item in marks:
            source.mark(item)


def process_mailbox(source: Source, ctx: Context, *, dry_run: bool) -> RunReport:
    """Process every unmarked message of `source`; with `dry_run`, change nothing anywhere."""
    report = RunReport(source=source.label, dry_run=dry_run)
    done = set(ctx.store.processed_digests())
    issue_tags = {issue_tag(ctx.secret, i): i for i in ctx.sent.issue_ids()}
    batch = _Batch(set(ctx.suppression.suppressed_set()))
    try:
        for item in source.items():
            _one(item, ctx, batch, report, done, issue_tags, dry_run)
            if len(batch.marks) >= BATCH_SIZE:
                batch.flush(ctx, source)
    finally:
        if not dry_run:
            batch.flush(ctx, source)  # what was acted on so far is consistent: keep it
    return report


def _one(
    item: Item,
    ctx: Context,
    batch: _Batch,
    report: RunReport,
    done: set[str],
    issue_tags: dict[str, str],
    dry_run: bool,
) -> None:
    if item.data is None:
        report.actions.append(Action(item.ref, Kind.SKIPPED, SKIPPED, evidence=item.note))
        return
    digest = hashlib.sha256(item.data).hexdigest()
    if digest in done:
        report.already_processed += 1
        if not dry_run:
            batch.marks.append(item)  # acted on before, but the mark was lost (crash, copy)
        return
    returned = classify(item.data)
    if returned.kind is Kind.SKIPPED:
        report.actions.append(Action(item.ref, Kind.SKIPPED, SKIPPED, evidence=returned.note))
        return  # left unmarked: a later nieuwsbrief may read it
    actions, soft = _act(item, returned, ctx, batch, issue_tags, dry_run=dry_run)
    report.actions += actions
    done.add(digest)
    if dry_run:
        return
    ctx.store.record_message(
        digest,
        returned.kind.value,
        clock.stamp(),
        [(a.kind.value, a.outcome, a.address, a.issue, a.matched_by, a.evidence) for a in actions],
        soft,
    )
    batch.marks.append(item)


@dataclass(frozen=True)
class _Match:
    issue: str
    address: str
    by: str
    failure: Failure | None


def _act(
    item: Item,
    returned: Returned,
    ctx: Context,
    batch: _Batch,
    issue_tags: dict[str, str],
    *,
    dry_run: bool,
) -> tuple[list[Action], tuple[str, str, str, str] | None]:
    when = returned.date or ctx.today.isoformat()
    kind = returned.kind
    if kind in (Kind.AUTO_REPLY, Kind.HUMAN):
        who = returned.sender
        return [Action(item.ref, kind, COUNTED, who, "", "", when, returned.subject[:200])], None
    if kind is Kind.UNSUBSCRIBE:
        matches, problem = _match_request(returned, ctx)
    else:
        matches, problem = _match_report(returned, ctx, issue_tags)
    if problem:
        evidence = f"{problem}; {returned.subject[:200]}"
        return [Action(item.ref, kind, problem.split(":")[0], date=when, evidence=evidence)], None
    actions = []
    soft: tuple[str, str, str, str] | None = None
    for match in matches:
        failure = match.failure
        this_kind = failure.kind if failure is not None else kind
        evidence = f"issue {match.issue or '?'}; {when}; " + (
            failure.evidence if failure is not None else f"Subject: {returned.subject[:200]}"
        )
        action = Action(item.ref, this_kind, COUNTED, match.address, match.issue, match.by, when)
        if this_kind in (Kind.HARD, Kind.COMPLAINT, Kind.UNSUBSCRIBE):
            reason = {
                Kind.HARD: f"hard bounce {failure.status if failure else ''}".strip(),
                Kind.COMPLAINT: f"complaint ({returned.note.partition(': ')[2] or 'abuse'})",
                Kind.UNSUBSCRIBE: "unsubscribe request by mail",
            }[this_kind]
            source = {Kind.HARD: "bounce", Kind.COMPLAINT: "complaint"}.get(this_kind, "mailto")
            outcome = _suppress(batch, match.address, source, reason, evidence, dry_run)
            action = _with(action, outcome, evidence)
        elif this_kind is Kind.SOFT and failure is not None and soft is None:
            day = when[:10]
            score = ctx.store.soft_score(
                match.address, ctx.today, SOFT_WINDOW_DAYS, (match.issue, day, failure.status)
            )
            soft = (match.address, match.issue, day, failure.status)
            evidence += f"; {score.bounces} soft bounces across {score.issues} issues"
            outcome = SCORED
            if score.bounces >= SOFT_BOUNCES and score.issues >= SOFT_ISSUES:
                reason = (
                    f"{score.bounces} soft bounces across {score.issues} issues within "
                    f"{SOFT_WINDOW_DAYS} days ({', '.join(s or '?' for s in score.statuses)})"
                )
                outcome = _suppress(batch, match.address, "bounce", reason, evidence, dry_run)
            action = _with(action, outcome, evidence)
        else:
            action = _with(action, COUNTED, evidence)
        actions.append(action)
    return actions, soft


def _with(action: Action, outcome: str, evidence: str) -> Action:
    return Action(
        action.ref,
        action.kind,
        outcome,
        action.address,
        action.issue,
        action.matched_by,
        action.date,
        evidence[:1000],
    )


def _suppress(
    batch: _Batch, address: str, source: str, reason: str, evidence: str, dry_run: bool
) -> str:
    key = normalise_address(address)
    if key in batch.suppressed:
        return ALREADY
    batch.suppressed.add(key)
    if dry_run:
        return WOULD_SUPPRESS
    batch.suppressions.append((key, source, evidence[:1000], reason))
    return SUPPRESSED


def _verp_tokens(returned: Returned, bounce_address: str | None) -> list[str]:
    """Return the `+detail` of every address the report was sent to that is our return path."""
    local, domain = split_address((bounce_address or "").lower())
    details = []
    for address in returned.addressed_to:
        their_local, their_domain = split_address(address)
        base, plus, detail = their_local.partition("+")
        if not plus:
            continue
        if bounce_address is not None and (base, their_domain) == (local, domain):
            details.append(detail)  # our return path: whatever follows '+' must verify
        elif VERP_TOKEN_RE.fullmatch(detail):
            details.append(detail)  # token-shaped, to an address we no longer configure
    return list(dict.fromkeys(details))


def _match_report(
    returned: Returned, ctx: Context, issue_tags: dict[str, str]
) -> tuple[list[_Match], str]:
    failures = returned.failures
    worst: Failure | None = failures[0] if failures else None
    for failure in failures:
        if worst is not None and _rank(failure.kind) < _rank(worst.kind):
            worst = failure
    details = _verp_tokens(returned, ctx.bounce_address)
    if details:
        for detail in details:
            verified = verify_verp_token(ctx.secret, detail)
            if verified is None:
                return [], f"{FORGED}: the return-path token +{detail[:60]} does not verify"
            rid, tag = verified
            address = ctx.sent.address_for(rid)
            issue = issue_tags.get(tag)
            if address is not None and issue is not None:
                # With VERP the failed address is the one we sent to, whatever the report
                # names (forwarding rewrites Final-Recipient); one recipient per message.
                return [_Match(issue, address, "verp", worst)], ""
        return (
            [],
            f"{UNMATCHED}: a valid return-path token of a recipient or issue not in the ledger",
        )
    for message_id in returned.message_ids:
        found = ctx.sent.lookup_message_id(message_id)
        if found is not None:
            issue, address = found
            quoted = next((f for f in failures if normalise_address(f.address) == address), worst)
            return [_Match(issue, address, "message-id", quoted)], ""
    matches = []
    for failure in failures:
        if not failure.address:
            continue
        address = normalise_address(failure.address)
        issue = ctx.sent.issue_mailed_to(address)
        if issue is not None:
            matches.append(_Match(issue, address, "address", failure))
    if matches:
        return matches, ""
    named = ", ".join(f.address for f in failures if f.address)[:200] or "no address"
    return [], f"{UNMATCHED}: nothing this home sent ({named})"


_RANK = (Kind.HARD, Kind.COMPLAINT, Kind.SOFT, Kind.NOT_ADDRESS, Kind.FEEDBACK, Kind.DELAYED)


def _rank(kind: Kind) -> int:
    return _RANK.index(kind) if kind in _RANK else len(_RANK)


def _match_request(returned: Returned, ctx: Context) -> tuple[list[_Match], str]:
    """Match a mailed unsubscribe request: by its token, else by a sender this home mailed."""
    token = find_token(returned.subject) or find_token(returned.text[:5000])
    if token is not None:
        rid = verify_token(ctx.secret, token)
        if rid is None:
            return [], f"{FORGED}: the unsubscribe token {token} does not verify"
        address = ctx.sent.address_for(rid)
        if address is None:
            return [], f"{UNMATCHED}: a valid unsubscribe token of no recipient in this home"
        return [_Match(ctx.sent.issue_mailed_to(address) or "", address, "token", None)], ""
    sender = normalise_address(returned.sender)
    issue = ctx.sent.issue_mailed_to(sender) if sender else None
    if issue is None:
        return [], f"{UNMATCHED}: {sender or 'no sender'} was never mailed by this home"
    return [_Match(issue, sender, "sender", None)], ""


CSV_COLUMNS = ("message", "kind", "outcome", "address", "issue", "matched by", "date", "evidence")


def write_csv(report: RunReport, path: Path) -> Path:
    """Write every action with its evidence (UTF-8 with BOM and ';', as Dutch Excel opens it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(CSV_COLUMNS)
        for a in report.actions:
            writer.writerow(
                [
                    a.ref,
                    a.kind.value,
                    a.outcome,
                    a.address,
                    a.issue,
                    a.matched_by,
                    a.date,
                    a.evidence,
                ]
            )
    report.csv_path = path
    return path
