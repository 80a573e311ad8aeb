"""The campaign: one message per subscriber, recorded in the ledger the moment it is accepted.

compose (once) -> pre-send check -> subscribers minus suppressed minus already sent ->
confirmation -> parallel delivery -> ledger + report. Re-running the same command resumes.
"""

from __future__ import annotations

import csv
import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from . import ledger as ledger_mod
from .check import CheckReport, check_composed
from .compose import Composed, FactoryMaker, compose_issue
from .config import Settings
from .delivery import Job, Result, deliver
from .errors import DeliveryError, NieuwsbriefError
from .message import MessageFactory
from .model import Subscriber
from .subscribers import SubscriberList, load_subscribers
from .suppression import SuppressionList
from .tokens import normalise_address, recipient_id
from .transport import MaildirOutbox, Outcome, SmtpParams, SmtpTransport, Transport

FAILURES_FILE = "send-failures.csv"
PROOF_PREFIX = "[TEST] "


@dataclass(frozen=True)
class SendRequest:
    """What the user asked `send` to do."""

    issue_dir: Path
    subscribers_path: Path | None
    agenda_path: Path | None = None
    dry_run: bool = False
    test_addresses: tuple[str, ...] = ()
    rate: float | None = None
    connections: int = 4
    retry_failed: bool = False
    force: bool = False
    retry_delays: tuple[float, ...] = (2, 10, 30, 60, 120)  # seconds between 4xx retries
    reconnect_delays: tuple[float, ...] = (1, 5, 15)  # seconds before reconnecting

    @property
    def issue(self) -> str:
        """Return the name the ledger knows the issue by: its folder name."""
        return self.issue_dir.resolve().name


@dataclass
class Plan:
    """Who will get the issue and who is skipped, shown before anything is sent."""

    subject: str
    server: str
    list_rows: int
    recipients: list[Subscriber]
    already_sent: int = 0
    failed_before: int = 0
    suppressed: int = 0
    invalid: int = 0
    duplicates: int = 0
    check: CheckReport | None = None

    def describe(self) -> str:
        """Return the lines shown before the confirmation question."""
        skipped = [
            f"{self.already_sent} already sent",
            f"{self.suppressed} unsubscribed",
            f"{self.invalid} invalid",
            f"{self.duplicates} duplicate",
        ]
        if self.failed_before:
            skipped.append(f"{self.failed_before} failed before (retry with --retry-failed)")
        return "\n".join(
            [
                f"Subject:    {self.subject}",
                f"Server:     {self.server}",
                f"Recipients: {len(self.recipients)} (of {self.list_rows} rows; "
                f"skipped: {', '.join(skipped)})",
            ]
        )


@dataclass
class SendReport:
    """What a send did."""

    plan: Plan
    delivered: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # address, server reply
    deferred: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False
    failures_path: Path | None = None
    elapsed: float = 0.0
    dry_run: bool = False
    proofs: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """Return 0 when nothing failed, 1 when some recipients failed."""
        return 1 if self.failed or self.deferred or self.interrupted else 0

    def describe(self) -> str:
        """Return the closing report."""
        plan = self.plan
        if self.proofs:
            return "\n".join(f"Sent a proof to {a} via {plan.server}" for a in self.proofs)
        if self.dry_run:
            return (
                f"Dry run: built and checked {len(plan.recipients)} messages; nothing was sent.\n"
                + plan.describe()
            )
        rate = self.delivered / self.elapsed if self.elapsed > 0 else 0.0
        lines = [
            f"Delivered: {self.delivered} in {self.elapsed:.1f} s ({rate:.0f} messages/s) "
            f"via {plan.server}",
            f"Skipped:   {plan.already_sent} already sent, {plan.suppressed} unsubscribed, "
            f"{plan.invalid} invalid, {plan.duplicates} duplicate",
            f"Failed:    {len(self.failed)} refused, {len(self.deferred)} deferred",
        ]
        shown = (self.failed + self.deferred)[:10]
        lines += [f"  {address}: {reply}" for address, reply in shown]
        if len(self.failed) + len(self.deferred) > len(shown):
            lines.append(f"  ... and {len(self.failed) + len(self.deferred) - len(shown)} more")
        if self.failures_path:
            lines.append(f"Failures written to {self.failures_path}")
        return "\n".join(lines)


def transport_for(settings: Settings) -> Transport:
    """Return where messages go: the SMTP server, or the local Maildir outbox."""
    if settings.smtp_host is None:
        return MaildirOutbox(settings.outbox_dir)
    return SmtpTransport(
        SmtpParams(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            user=settings.smtp_user,
            password=settings.smtp_password or "",
            max_per_connection=settings.max_per_connection,
        )
    )


def smtp_address(address: str) -> str:
    """Return an address as SMTP needs it: an internationalised domain in its ASCII form."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def _plan(
    request: SendRequest,
    settings: Settings,
    composed: Composed,
    subscribers: SubscriberList,
    suppression: SuppressionList,
    states: dict[str, str],
) -> Plan:
    suppressed = suppression.suppressed_set()
    plan = Plan(
        subject=composed.rendered.subject,
        server=settings.server_label,
        list_rows=len(subscribers.subscribers)
        + len(subscribers.invalid)
        + len(subscribers.duplicates),
        recipients=[],
        invalid=len(subscribers.invalid),
        duplicates=len(subscribers.duplicates),
    )
    for subscriber in subscribers.subscribers:
        key = normalise_address(subscriber.email)
        state = states.get(key)
        if key in suppressed:
            plan.suppressed += 1
        elif state == ledger_mod.ACCEPTED:
            plan.already_sent += 1
        elif request.retry_failed:
            if state in (ledger_mod.FAILED, ledger_mod.DEFERRED):
                plan.recipients.append(subscriber)
        elif state in (ledger_mod.FAILED, ledger_mod.DEFERRED):
            plan.failed_before += 1
        else:
            plan.recipients.append(subscriber)
    return plan


def _check_merge_fields(factory: MessageFactory, subscribers: SubscriberList) -> None:
    needed = {n.removeprefix("field_") for n in factory.needs if n.startswith("field_")}
    missing = sorted(needed - set(subscribers.columns))
    if missing:
        raise NieuwsbriefError(
            f"{subscribers.path}: the template uses the merge field(s) {', '.join(missing)}, "
            f"but the list has only the columns {', '.join(subscribers.columns)}; "
            "add the column or change the template"
        )


def _jobs(factory: MessageFactory, recipients: list[Subscriber]) -> Iterator[Job]:
    for subscriber in recipients:
        yield Job(
            key=normalise_address(subscriber.email),
            recipient=smtp_address(subscriber.email),
            sender=factory.sender_address,
            build=functools.partial(factory.build, subscriber),
        )


def _proof_recipients(request: SendRequest, subscribers: SubscriberList | None) -> list[Subscriber]:
    by_address = {}
    if subscribers is not None:
        by_address = {normalise_address(s.email): s for s in subscribers.subscribers}
    proofs = []
    for raw in request.test_addresses:
        try:
            address = validate_email(raw.strip(), check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise NieuwsbriefError(f"--test {raw!r} is not a valid e-mail address: {exc}") from None
        proofs.append(by_address.get(normalise_address(address), Subscriber(email=address)))
    return proofs


def send_issue(
    request: SendRequest,
    settings: Settings,
    factory_for: Callable[[str], FactoryMaker],
    *,
    confirm: Callable[[Plan], bool],
    progress: Callable[[int, int], None] | None = None,
    warn: Callable[[str], None] = lambda _: None,
    stop: threading.Event | None = None,
) -> SendReport:
    """Send an issue to a subscriber list (or proofs, or a dry run); resumable and never twice.

    `factory_for(subject_prefix)` returns the message factory maker for the settings.
    """
    subscribers = load_subscribers(request.subscribers_path) if request.subscribers_path else None
    if request.test_addresses:
        return _send_proofs(request, settings, factory_for, subscribers)
    if subscribers is None:
        raise NieuwsbriefError("send needs --subscribers FILE (or --test ADDRESS for a proof)")

    composed = compose_issue(request.issue_dir, factory_for(""), agenda_path=request.agenda_path)
    factory = composed.factory
    _check_merge_fields(factory, subscribers)
    check = check_composed(composed, sending=True)
    for finding in check.warnings:
        warn(str(finding))
    if not check.ok:
        if not request.force:
            raise NieuwsbriefError(
                f"the issue has problems; fix them or add --force:\n{check.format()}"
            )
        for finding in check.problems:
            warn(f"sending despite: {finding}")

    ledger = ledger_mod.Ledger(settings.ledger_path)
    suppression = SuppressionList(settings.suppression_path)
    try:
        plan = _plan(
            request, settings, composed, subscribers, suppression, ledger.states(request.issue)
        )
        plan.check = check
        report = SendReport(plan=plan, dry_run=request.dry_run)
        if request.dry_run:
            for subscriber in plan.recipients:
                factory.build(subscriber)  # every message must build; nothing is connected
            return report
        if not plan.recipients:
            return report
        if not confirm(plan):
            raise NieuwsbriefError("nothing was sent")
        ledger.begin_issue(
            request.issue, composed.rendered.content_hash, plan.subject, force=request.force
        )
        suppression.register(
            (recipient_id(settings.secret, s.email), normalise_address(s.email))
            for s in plan.recipients
        )
        _deliver(request, settings, factory, plan, ledger, report, progress, stop)
    finally:
        ledger.close()
    return report


def _deliver(
    request: SendRequest,
    settings: Settings,
    factory: MessageFactory,
    plan: Plan,
    ledger: ledger_mod.Ledger,
    report: SendReport,
    progress: Callable[[int, int], None] | None,
    stop: threading.Event | None,
) -> None:
    total = len(plan.recipients)
    done = 0
    issue = request.issue  # resolves a path: once, not per message

    def on_result(result: Result) -> None:
        nonlocal done
        reply = str(result.reply)
        if result.outcome is Outcome.ACCEPTED:
            ledger.record(issue, result.key, ledger_mod.ACCEPTED, reply, result.attempts)
            report.delivered += 1
        elif result.outcome is Outcome.PERMANENT:
            ledger.record(issue, result.key, ledger_mod.FAILED, reply, result.attempts)
            report.failed.append((result.recipient, reply))
        else:
            ledger.record(issue, result.key, ledger_mod.DEFERRED, reply, result.attempts)
            report.deferred.append((result.recipient, reply))
        done += 1
        if progress:
            progress(done, total)

    started = time.monotonic()
    try:
        deliver(
            _jobs(factory, plan.recipients),
            transport_for(settings),
            on_result=on_result,
            connections=request.connections,
            rate=request.rate,
            retry_delays=request.retry_delays,
            reconnect_delays=request.reconnect_delays,
            stop=stop,
        )
    except KeyboardInterrupt:
        report.interrupted = True
    except DeliveryError as exc:
        if not done:
            raise  # nothing was sent: a plain error
        report.interrupted = True
        partial = DeliveryError(
            f"{exc}; {report.delivered} of {total} were delivered before that and are recorded "
            "in the ledger: run the same command again to send to the rest"
        )
        partial.exit_code = 1  # some were sent: not "nothing happened" (2)
        raise partial from None
    finally:
        report.elapsed = time.monotonic() - started
        if report.failed or report.deferred:
            report.failures_path = _write_failures(request, report)
    if stop is not None and stop.is_set() and done < total:
        report.interrupted = True


def _write_failures(request: SendRequest, report: SendReport) -> Path:
    out_dir = request.issue_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FAILURES_FILE
    # UTF-8 with BOM and ';': what Dutch Excel opens correctly with a double click.
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["e-mail", "status", "server reply"])
        for address, reply in report.failed:
            writer.writerow([address, "refused", reply])
        for address, reply in report.deferred:
            writer.writerow([address, "deferred", reply])
    return path


def _send_proofs(
    request: SendRequest,
    settings: Settings,
    factory_for: Callable[[str], FactoryMaker],
    subscribers: SubscriberList | None,
) -> SendReport:
    recipients = _proof_recipients(request, subscribers)
    composed = compose_issue(
        request.issue_dir, factory_for(PROOF_PREFIX), agenda_path=request.agenda_path
    )
    factory = composed.factory
    if subscribers is not None:
        _check_merge_fields(factory, subscribers)
    SuppressionList(settings.suppression_path).register(
        (recipient_id(settings.secret, s.email), normalise_address(s.email)) for s in recipients
    )
    plan = Plan(
        subject=PROOF_PREFIX + composed.rendered.subject,
        server=settings.server_label,
        list_rows=len(recipients),
        recipients=recipients,
    )
    report = SendReport(plan=plan)
    results: list[Result] = []
    deliver(
        _jobs(factory, recipients),
        transport_for(settings),
        on_result=results.append,
        connections=1,
        retry_delays=(2, 5),
    )
    for result in results:
        if result.outcome is Outcome.ACCEPTED:
            report.proofs.append(result.recipient)
        else:
            report.failed.append((result.recipient, str(result.reply)))
    if report.failed:
        address, reply = report.failed[0]
        raise NieuwsbriefError(f"the proof to {address} was refused: {reply}")
    return report
