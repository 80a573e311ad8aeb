"""The campaign: one message per subscriber, recorded in the ledger the moment it is accepted.

compose (once) -> pre-send check -> lock the issue -> subscribers minus suppressed minus already
sent -> confirmation -> parallel delivery -> ledger + report. Re-running the same command
resumes. A dry run or a proof with --dry-run reads the state and writes nothing.

The list is never held: a first pass over the file validates and counts every row and decides,
a batch at a time against the suppression list and the ledger, who gets the issue; delivery then
reads the file again and builds each job as a connection needs one (subscribers.scan_subscribers).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import itertools
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from nieuwsbrief.addresses import invalid_reason, normalise_address, smtp_address
from nieuwsbrief.check import CheckReport, check_composed
from nieuwsbrief.compose import Composed, FactoryMaker, compose_issue
from nieuwsbrief.config import Settings
from nieuwsbrief.errors import (
    CheckError,
    DeliveryError,
    HomeError,
    LedgerError,
    NieuwsbriefError,
    PartialSendError,
    SubscriberListError,
    UsageError,
)
from nieuwsbrief.home import Home
from nieuwsbrief.i18n import _, ngettext
from nieuwsbrief.message import MessageFactory
from nieuwsbrief.model import Issue, Subscriber
from nieuwsbrief.sending import ledger as ledger_mod
from nieuwsbrief.sending.delivery import Job, Result, deliver
from nieuwsbrief.sending.lock import IssueLock
from nieuwsbrief.sending.outbox import MaildirOutbox
from nieuwsbrief.sending.smtp import SmtpParams, SmtpTransport
from nieuwsbrief.sending.transport import Outcome, Preopened, Transport
from nieuwsbrief.subscribers import ListScan, scan_subscribers
from nieuwsbrief.templating import template_files
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from nieuwsbrief.unsubscribe.tokens import make_verp_token, recipient_id, verp_address

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
    retry_window: float = 240.0  # seconds during which 4xx refusals are retried
    retry_delays: tuple[float, ...] | None = None  # explicit waits instead of the window
    reconnect_delays: tuple[float, ...] = (1, 5, 15)  # seconds before reconnecting
    command: str = ""  # the command line that resumes this send, as the user can paste it
    # Open the connections while composing (nothing asks before sending, e.g. --yes).
    preconnect: bool = False

    def retry_schedule(self) -> tuple[float, ...]:
        """Return the waits between 4xx retries: back-off until the retry window is used up."""
        if self.retry_delays is not None:
            return self.retry_delays
        return retry_delays(self.retry_window)


_BACKOFF = (2.0, 10.0, 30.0, 60.0, 120.0)


def retry_delays(window: float) -> tuple[float, ...]:
    """Return back-off waits (2, 10, 30, 60, 120, 120, ... s) adding up to at most `window`."""
    delays: list[float] = []
    total = 0.0
    while True:
        step = _BACKOFF[min(len(delays), len(_BACKOFF) - 1)]
        if total + step > window:
            break
        delays.append(step)
        total += step
    return tuple(delays)


def issue_key(home: Home, issue: Issue) -> ledger_mod.IssueKey:
    """Return how the ledger knows an issue: its `id`, else its path in the home.

    The path is unique within a home, so two issues whose folders share a name never collide;
    an `id` (written by `nieuwsbrief new`) keeps the identity when the folder is moved.
    """
    path = home.relative(issue.path)
    return ledger_mod.IssueKey(
        identity=issue.id or path, path=path, folder=issue.path.resolve().name
    )


def issue_parts(issue: Issue, templates_dir: Path | None) -> dict[str, str]:
    """Return a hash per part of an issue, so a changed issue can say what changed.

    'layout' covers the house style in force: the home's templates and the package defaults
    they leave in place, so an upgrade of nieuwsbrief that changes a template counts too.
    """

    def digest(*values: object) -> str:
        return hashlib.sha256(repr(values).encode("utf-8")).hexdigest()[:16]

    parts = {
        "subject": digest(issue.subject),
        "preheader": digest(issue.preheader),
        "intro": digest(issue.intro),
        "date": digest(issue.date),
        "agenda": digest(issue.agenda),
    }
    for article in issue.articles:
        parts[f"article:{article.path.name}"] = digest(article.title, article.body, article.event)
    layout = hashlib.sha256()
    for name, path in template_files(templates_dir).items():
        layout.update(name.encode() + b"\0" + path.read_bytes())
    parts["layout"] = layout.hexdigest()[:16]
    return parts


@dataclass
class Plan:
    """Who will get the issue and who is skipped, shown before anything is sent."""

    subject: str
    server: str
    list_rows: int
    recipients: int  # how many get the issue now
    already_sent: int = 0
    failed_before: int = 0
    suppressed: int = 0
    invalid: int = 0
    duplicates: int = 0
    check: CheckReport | None = None

    def describe(self) -> str:
        """Return the lines shown before the confirmation question."""
        skipped = _skipped(self)
        if self.failed_before:
            skipped += ", " + _("{count} failed before (retry with --retry-failed)").format(
                count=self.failed_before
            )
        recipients = ngettext(
            "Recipients: {count} (of {rows} row; skipped: {skipped})",
            "Recipients: {count} (of {rows} rows; skipped: {skipped})",
            self.list_rows,
        ).format(count=self.recipients, rows=self.list_rows, skipped=skipped)
        return "\n".join(
            [
                _("Subject:    {subject}").format(subject=self.subject),
                _("Server:     {server}").format(server=self.server),
                recipients,
            ]
        )


def _skipped(plan: Plan) -> str:
    """Return who a send skips and why, e.g. '3 already sent, 1 unsubscribed, ...'."""
    return _(
        "{sent} already sent, {unsubscribed} unsubscribed, {invalid} invalid, "
        "{duplicates} duplicate"
    ).format(
        sent=plan.already_sent,
        unsubscribed=plan.suppressed,
        invalid=plan.invalid,
        duplicates=plan.duplicates,
    )


@dataclass
class Progress:
    """How far a send is: what the server accepted, refused, and what waits for a retry."""

    total: int
    delivered: int = 0
    failed: int = 0  # refused (5xx) or deferred after the retry window
    waiting: int = 0  # 4xx replies waiting for their retry
    next_retry_in: float = 0.0  # seconds until the next retry is due

    @property
    def done(self) -> int:
        """Return how many recipients have a final result."""
        return self.delivered + self.failed


# The closing report names this many failures; the rest are in the ledger and send-failures.csv.
SHOWN_FAILURES = 10


@dataclass
class SendReport:
    """What a send did.

    Failures are counted, and only the first SHOWN_FAILURES are kept with their reply, so a
    send to a million addresses of which half bounce holds no more than one that fails twice.
    """

    plan: Plan
    delivered: int = 0
    refused: int = 0  # refused (5xx), or a local reason the message could not be sent
    deferred: int = 0  # still temporarily refused (4xx) when the retry window closed
    first_failures: list[tuple[str, str]] = field(default_factory=list)  # address, reply
    interrupted: bool = False
    failures_path: Path | None = None
    elapsed: float = 0.0
    dry_run: bool = False
    proofs: list[str] = field(default_factory=list)
    declined: bool = False  # the user answered no: nothing was sent, and that is fine
    unrecorded: list[str] = field(default_factory=list)  # accepted, but the ledger failed
    suppressed_now: int = 0  # refused as "no such user" and put on the suppression list

    @property
    def exit_code(self) -> int:
        """Return 0 when nothing failed, 1 when some recipients failed."""
        return 1 if self.refused or self.deferred or self.interrupted else 0

    def add_failure(self, address: str, reply: str, *, deferred: bool = False) -> None:
        """Count one refused (or deferred) recipient; keep it if it is among the first shown."""
        if deferred:
            self.deferred += 1
        else:
            self.refused += 1
        if len(self.first_failures) < SHOWN_FAILURES:
            self.first_failures.append((address, reply))

    def describe(self) -> str:
        """Return the closing report."""
        plan = self.plan
        if self.proofs:
            return "\n".join(
                _("Sent a proof to {address} via {server}").format(address=a, server=plan.server)
                for a in self.proofs
            )
        if self.declined:
            return _("Nothing was sent.")
        if self.dry_run:
            count = plan.recipients
            built = ngettext(
                "Dry run: built and checked {count} message; "
                "nothing was sent and nothing was written.",
                "Dry run: built and checked {count} messages; "
                "nothing was sent and nothing was written.",
                count,
            ).format(count=count)
            return built + "\n" + plan.describe()
        rate = self.delivered / self.elapsed if self.elapsed > 0 else 0.0
        lines = [
            _("Delivered: {count} in {seconds} s ({rate} messages/s) via {server}").format(
                count=self.delivered,
                seconds=f"{self.elapsed:.1f}",
                rate=f"{rate:.0f}",
                server=plan.server,
            ),
            _("Skipped:   {skipped}").format(skipped=_skipped(plan)),
            _("Failed:    {refused} refused, {deferred} deferred").format(
                refused=self.refused, deferred=self.deferred
            ),
        ]
        lines += [f"  {address}: {reply}" for address, reply in self.first_failures]
        hidden = self.refused + self.deferred - len(self.first_failures)
        if hidden > 0:
            lines.append("  " + _("... and {count} more").format(count=hidden))
        if self.suppressed_now:
            lines.append(
                ngettext(
                    "Suppressed: {count} address the server says does not exist; "
                    "it is skipped from now on (`nieuwsbrief unsubscribe --list`)",
                    "Suppressed: {count} addresses the server says do not exist; "
                    "they are skipped from now on (`nieuwsbrief unsubscribe --list`)",
                    self.suppressed_now,
                ).format(count=self.suppressed_now)
            )
        if self.failures_path:
            lines.append(
                _("Outstanding failures of this issue written to {path}").format(
                    path=self.failures_path
                )
            )
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
            connect_timeout=settings.smtp_connect_timeout,
            timeout=settings.smtp_timeout,
            data_timeout=settings.smtp_data_timeout,
            pipelining=settings.smtp_pipelining,
        )
    )


def _planner(
    request: SendRequest,
    plan: Plan,
    ledger: ledger_mod.Ledger,
    issue: str,
    suppression: SuppressionList,
) -> Callable[[Sequence[str]], list[bool]]:
    """Return the `select` of scan_subscribers: who of a batch gets the issue, counted in `plan`."""

    def select(keys: Sequence[str]) -> list[bool]:
        suppressed = suppression.suppressed_among(keys)
        states = ledger.states_of(issue, keys)
        chosen = []
        for key in keys:
            state = states.get(key)
            if key in suppressed:
                plan.suppressed += 1
                chosen.append(False)
            elif state == ledger_mod.ACCEPTED:
                plan.already_sent += 1
                chosen.append(False)
            elif request.retry_failed:
                chosen.append(state in ledger_mod.OUTSTANDING)
            elif state in ledger_mod.OUTSTANDING:
                plan.failed_before += 1
                chosen.append(False)
            else:
                chosen.append(True)
        return chosen

    return select


def _scan_planned(
    request: SendRequest,
    settings: Settings,
    composed: Composed,
    path: Path,
    ledger: ledger_mod.Ledger,
    issue: str,
    suppression: SuppressionList,
) -> tuple[Plan, ListScan]:
    """Read the list once and plan the send: who gets it, who is skipped and why."""
    plan = Plan(
        subject=composed.rendered.subject, server=settings.server_label, list_rows=0, recipients=0
    )
    scan = scan_subscribers(path, _planner(request, plan, ledger, issue, suppression))
    plan.list_rows, plan.recipients = scan.rows, scan.chosen
    plan.invalid, plan.duplicates = scan.invalid, scan.duplicates
    return plan, scan


def return_path(settings: Settings, issue: str, default: str, address: str) -> str:
    """Return the envelope sender: the bounce address, per recipient with VERP, else `default`."""
    if settings.bounce_address is None:
        return default
    if not settings.verp or not issue:
        return settings.bounce_address
    token = make_verp_token(settings.secret, address, issue)
    return verp_address(settings.bounce_address, token)


def _jobs(
    recipients: Iterable[Subscriber],
    sender: Callable[[str], str],
    build: Callable[[Subscriber, str], bytes],
) -> Iterator[Job]:
    """Yield one Job per recipient, built lazily: `build(subscriber, key)` makes its bytes."""
    for subscriber in recipients:
        key = normalise_address(subscriber.email)
        yield Job(
            key=key,
            recipient=smtp_address(subscriber.email),
            sender=sender(subscriber.email),
            build=functools.partial(build, subscriber, key),
        )


def _proof_recipients(
    request: SendRequest, path: Path | None
) -> tuple[list[Subscriber], ListScan | None]:
    """Return the proofs' recipients, each with its row of the list if it has one."""
    addresses = []
    for raw in request.test_addresses:
        try:
            address = validate_email(raw.strip(), check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise UsageError(
                _("--test {address} is not a valid e-mail address: {reason}").format(
                    address=repr(raw), reason=invalid_reason(exc)
                )
            ) from None
        addresses.append(address)
    if path is None:
        return [Subscriber(email=address) for address in addresses], None
    wanted = {normalise_address(address) for address in addresses}
    scan = scan_subscribers(path, lambda keys: [key in wanted for key in keys])
    by_address = {normalise_address(s.email): s for s in scan.selected()}
    proofs = [by_address.get(normalise_address(a), Subscriber(email=a)) for a in addresses]
    return proofs, scan


def send_issue(
    request: SendRequest,
    settings: Settings,
    factory_for: Callable[[str], FactoryMaker],
    *,
    confirm: Callable[[Plan], bool],
    progress: Callable[[Progress], None] | None = None,
    warn: Callable[[str], None] = lambda _: None,
    stop: threading.Event | None = None,
) -> SendReport:
    """Send an issue to a subscriber list (or proofs, or a dry run); resumable and never twice.

    `factory_for(subject_prefix)` returns the message factory maker for the settings.
    A dry run (also with proofs) opens the ledger and suppression list read-only and sends
    nothing; a real send holds the issue's lock from planning to the last ledger record.
    """
    home = _home_of(settings)
    subscribers_path = request.subscribers_path or home.subscribers_path
    if request.test_addresses:
        return _send_proofs(request, settings, factory_for, subscribers_path, warn)
    if subscribers_path is None:
        raise UsageError(
            _(
                "send needs --subscribers FILE (or {setting} in nieuwsbrief.toml, "
                "or --test ADDRESS for a proof)"
            ).format(setting='`subscribers = "..."`')
        )

    transport = None  # made when delivery starts, unless opened while composing
    if request.preconnect and not request.dry_run and settings.uses_smtp:
        transport = Preopened(transport_for(settings), request.connections)
    try:
        return _send_campaign(
            request,
            settings,
            factory_for,
            confirm,
            progress,
            warn,
            stop,
            subscribers_path,
            transport,
        )
    finally:
        if isinstance(transport, Preopened):
            transport.close()


def _send_campaign(
    request: SendRequest,
    settings: Settings,
    factory_for: Callable[[str], FactoryMaker],
    confirm: Callable[[Plan], bool],
    progress: Callable[[Progress], None] | None,
    warn: Callable[[str], None],
    stop: threading.Event | None,
    subscribers_path: Path,
    transport: Transport | None,
) -> SendReport:
    home = _home_of(settings)
    composed, check = _compose_checked(request, settings, factory_for(""), warn)
    factory = composed.factory
    key = issue_key(home, composed.issue)

    if request.dry_run:
        ledger = ledger_mod.Ledger(settings.ledger_path, readonly=True)
        try:
            name = _resolve(ledger, key, home)
            suppression = SuppressionList(settings.suppression_path, readonly=True)
            plan, scan = _scan_planned(
                request, settings, composed, subscribers_path, ledger, name, suppression
            )
        finally:
            ledger.close()
        factory.require_columns(scan.path, scan.columns)
        plan.check = check
        for subscriber in scan.selected():
            factory.build(subscriber)  # every message must build; nothing is connected
        return SendReport(plan=plan, dry_run=True)

    _check_room(settings, 0)
    # The lock lives beside the ledger it protects (NIEUWSBRIEF_LEDGER_DB may move both).
    with IssueLock(settings.ledger_path.parent / "locks", key.identity):
        ledger = ledger_mod.Ledger(settings.ledger_path)
        try:
            name = _resolve(ledger, key, home)
            suppression = SuppressionList(settings.suppression_path)
            plan, scan = _scan_planned(
                request, settings, composed, subscribers_path, ledger, name, suppression
            )
            factory.require_columns(scan.path, scan.columns)
            plan.check = check
            report = SendReport(plan=plan)
            if not plan.recipients:
                return report
            _check_room(settings, plan.recipients)
            if not confirm(plan):
                report.declined = True
                return report
            ledger.begin_issue(
                name,
                composed.rendered.content_hash,
                plan.subject,
                force=request.force,
                path=key.path,
                parts=issue_parts(composed.issue, home.templates_dir),
                planned=plan.recipients + plan.already_sent,
                command=request.command,
            )
            _deliver(
                request,
                settings,
                transport,
                factory,
                _registered(scan.selected(), settings, suppression),
                ledger,
                name,
                suppression,
                report,
                progress,
                stop,
            )
            report.failures_path = _write_failures(request, ledger, name)
        finally:
            ledger.close()
    return report


def _resolve(ledger: ledger_mod.Ledger, key: ledger_mod.IssueKey, home: Home) -> str:
    """Return the ledger's name for the issue; refuse an id another existing folder has."""
    name = ledger.resolve(key)
    recorded = ledger.issue_path(name)
    ledger.check_identity(
        name, key.path, folder_exists=bool(recorded) and (home.root / (recorded or "")).is_dir()
    )
    return name


def _home_of(settings: Settings) -> Home:
    if settings.home is None:
        raise HomeError(_("no newsletter home: run inside one, or `nieuwsbrief init` one"))
    return settings.home


def _compose_checked(
    request: SendRequest,
    settings: Settings,
    maker: FactoryMaker,
    warn: Callable[[str], None],
) -> tuple[Composed, CheckReport]:
    """Compose the issue and run the pre-send check; refuse problems unless --force."""
    home = _home_of(settings)
    composed = compose_issue(
        request.issue_dir,
        maker,
        agenda_path=request.agenda_path or home.agenda_path,
        templates_dir=home.templates_dir,
        web_url=settings.web_url,
    )
    check = check_composed(composed, sending=True)
    for finding in check.warnings:
        warn(str(finding))
    if not check.ok:
        if not request.force:
            raise CheckError(
                _("the issue has problems; fix them or add --force:") + "\n" + check.format()
            )
        for finding in check.problems:
            warn(_("sending despite: {finding}").format(finding=finding))
    return composed, check


# A ledger row with its index entry takes a few hundred bytes; ask for generous room.
_BYTES_PER_RECIPIENT = 1024
_MIN_FREE_BYTES = 5 * 1024 * 1024


def _check_room(settings: Settings, recipients: int) -> None:
    """Refuse to start a send whose ledger cannot be written or would fill the disk."""
    folder = settings.ledger_path.parent
    home = _home_of(settings)
    if folder == home.state_dir:
        home.ensure_state_dir()
    else:
        folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".nieuwsbrief-write-test-{threading.get_ident()}"
    try:
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as exc:
        raise LedgerError(
            _(
                "{folder}: the state folder is not writable ({reason}); nothing was sent. "
                "Fix its permissions or point NIEUWSBRIEF_LEDGER_DB elsewhere"
            ).format(folder=folder, reason=exc.strerror)
        ) from None
    needed = _MIN_FREE_BYTES + recipients * _BYTES_PER_RECIPIENT
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise LedgerError(
            _(
                "{folder}: only {free} KB free, and the ledger of {recipients} recipients "
                "needs about {needed} KB; nothing was sent. Free some space first"
            ).format(folder=folder, free=free // 1024, recipients=recipients, needed=needed // 1024)
        )


# Replies that say the address does not exist: the next issue should not try it again.
# RFC 3463: X.1.1 bad destination mailbox, X.1.10 null MX, X.2.1 mailbox disabled.
_NO_SUCH_USER = re.compile(r"^5\.(1\.1|1\.10|2\.1)$")
_NO_SUCH_USER_TEXT = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient)|mailbox (not found|unavailable"
    r"|does not exist)|recipient (address )?rejected: user unknown|does not exist",
    re.IGNORECASE,
)


def is_unknown_recipient(code: int, enhanced: str, text: str) -> bool:
    """Tell whether a 5xx reply says that the address does not exist (not a policy refusal)."""
    if not 500 <= code < 600:
        return False
    if enhanced:
        return bool(_NO_SUCH_USER.match(enhanced))
    return code in (550, 551, 553) and bool(_NO_SUCH_USER_TEXT.search(text))


def _message_id(data: bytes) -> str:
    head = data[: data.find(b"\r\n\r\n")]
    match = re.search(rb"^Message-ID:\s*(<[^>\r\n]{1,250}>)", head, re.MULTILINE | re.IGNORECASE)
    return match.group(1).decode("ascii", "replace") if match else ""


_REGISTER_BATCH = 500


def _registered(
    subscribers: Iterable[Subscriber], settings: Settings, suppression: SuppressionList
) -> Iterator[Subscriber]:
    """Yield the subscribers, each after its recipient id is in the suppression database.

    A batch at a time, so a link in a message that has just arrived always works.
    """
    iterator = iter(subscribers)
    while batch := list(itertools.islice(iterator, _REGISTER_BATCH)):
        suppression.register(
            (recipient_id(settings.secret, s.email), normalise_address(s.email)) for s in batch
        )
        yield from batch


def _deliver(
    request: SendRequest,
    settings: Settings,
    transport: Transport | None,
    factory: MessageFactory,
    recipients: Iterable[Subscriber],
    ledger: ledger_mod.Ledger,
    issue: str,
    suppression: SuppressionList,
    report: SendReport,
    progress: Callable[[Progress], None] | None,
    stop: threading.Event | None,
) -> None:
    total = report.plan.recipients
    done = 0
    state = Progress(total=total)
    stop = stop or threading.Event()
    message_ids: dict[str, str] = {}
    ledger_error: list[LedgerError] = []

    def build(subscriber: Subscriber, key: str) -> bytes:
        data = factory.build(subscriber)
        message_ids[key] = _message_id(data)  # the accepted attempt is the last one built
        return data

    def on_results(results: list[Result]) -> None:
        outcomes = [
            (
                result,
                str(result.reply),
                {
                    Outcome.ACCEPTED: ledger_mod.ACCEPTED,
                    Outcome.PERMANENT: ledger_mod.FAILED,
                }.get(result.outcome, ledger_mod.DEFERRED),
            )
            for result in results
        ]
        if not ledger_error:
            try:
                # One commit for the results that were waiting together, counted only after it.
                ledger.record_many(
                    issue,
                    [
                        (r.key, status, reply, r.attempts, message_ids.pop(r.key, ""))
                        for r, reply, status in outcomes
                    ],
                )
            except (LedgerError, NieuwsbriefError) as exc:
                # Disk full, or the file went away: stop sending; what is in flight is listed.
                ledger_error.append(exc if isinstance(exc, LedgerError) else LedgerError(str(exc)))
                stop.set()
            else:
                for result, reply, status in outcomes:
                    counted(result, reply, status)
                return
        for result, _reply, status in outcomes:
            if status == ledger_mod.ACCEPTED:
                report.unrecorded.append(result.recipient)

    def counted(result: Result, reply: str, status: str) -> None:
        """Count one recorded result; a refused unknown address is suppressed at once."""
        nonlocal done
        if status == ledger_mod.FAILED and is_unknown_recipient(
            result.reply.code, result.reply.enhanced, result.reply.text
        ):
            try:
                suppression.add(
                    result.key,
                    "bounce",
                    f"issue {issue}; refused while sending: {reply}",
                    reason=f"hard bounce {result.reply.code} (the server says it does not exist)",
                )
                report.suppressed_now += 1
            except NieuwsbriefError as exc:
                if not ledger_error:
                    ledger_error.append(
                        exc if isinstance(exc, LedgerError) else LedgerError(str(exc))
                    )
                stop.set()
        if status == ledger_mod.ACCEPTED:
            report.delivered += 1
        elif status == ledger_mod.FAILED:
            report.add_failure(result.recipient, reply)
        else:
            report.add_failure(result.recipient, reply, deferred=True)
        done += 1
        state.delivered, state.failed = report.delivered, done - report.delivered
        if progress:
            progress(state)

    def on_waiting(count: int, next_in: float) -> None:
        if progress and (count or state.waiting):
            state.waiting, state.next_retry_in = count, next_in
            progress(state)

    jobs = _jobs(
        recipients,
        functools.partial(return_path, settings, issue, factory.sender_address),
        build,
    )
    started = time.monotonic()
    if progress:
        progress(state)  # delivery starts now: the rate counts from here
    try:
        deliver(
            jobs,
            transport or transport_for(settings),
            on_results=on_results,
            connections=request.connections,
            rate=request.rate,
            retry_delays=request.retry_schedule(),
            reconnect_delays=request.reconnect_delays,
            stop=stop,
            on_waiting=on_waiting,
        )
    except KeyboardInterrupt:
        report.interrupted = True
    except (DeliveryError, SubscriberListError) as exc:
        if not done:
            raise  # nothing was sent: a plain error
        report.interrupted = True
        raise PartialSendError(
            _(
                "{error}; {delivered} of {total} were delivered before that and are recorded "
                "in the ledger: run the same command again to send to the rest: {command}"
            ).format(error=exc, delivered=report.delivered, total=total, command=request.command)
        ) from None
    finally:
        report.elapsed = time.monotonic() - started
    if ledger_error:
        report.interrupted = True
        shown = ", ".join(report.unrecorded[:20])
        more = (
            " " + _("and {count} more").format(count=len(report.unrecorded) - 20)
            if len(report.unrecorded) > 20
            else ""
        )
        unrecorded = (
            _(
                "{count} accepted by the server could not be recorded and would get the issue "
                "again on a re-run: {addresses}."
            ).format(count=len(report.unrecorded), addresses=shown + more)
            if report.unrecorded
            else _("every accepted message is recorded.")
        )
        raise PartialSendError(
            _(
                "{error}. The send stopped: {delivered} deliveries are recorded; {unrecorded} "
                "Free some space, then run the same command again: {command}"
            ).format(
                error=ledger_error[0],
                delivered=report.delivered,
                unrecorded=unrecorded,
                command=request.command,
            )
        )
    if stop.is_set() and done < total:
        report.interrupted = True


def _write_failures(request: SendRequest, ledger: ledger_mod.Ledger, issue: str) -> Path | None:
    """Write every outstanding failure of the issue (not only this run's) to a CSV for Excel."""
    rows = ledger.rows(issue, ledger_mod.OUTSTANDING)
    path = request.issue_dir / "out" / FAILURES_FILE
    if not rows:
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    # UTF-8 with BOM and ';': what Dutch Excel opens correctly with a double click.
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["e-mail", "status", "server reply", "attempts", "last try (UTC)"])
        for row in rows:
            status = "refused" if row.status == ledger_mod.FAILED else "deferred"
            writer.writerow([row.address, status, row.reply, row.attempts, row.updated_at])
    return path


def _send_proofs(
    request: SendRequest,
    settings: Settings,
    factory_for: Callable[[str], FactoryMaker],
    subscribers_path: Path | None,
    warn: Callable[[str], None],
) -> SendReport:
    recipients, scan = _proof_recipients(request, subscribers_path)
    composed = _compose_checked(request, settings, factory_for(PROOF_PREFIX), warn)[0]
    factory = composed.factory
    if scan is not None:
        factory.require_columns(scan.path, scan.columns)
    plan = Plan(
        subject=PROOF_PREFIX + composed.rendered.subject,
        server=settings.server_label,
        list_rows=len(recipients),
        recipients=len(recipients),
    )
    if request.dry_run:
        for subscriber in recipients:
            factory.build(subscriber)
        return SendReport(plan=plan, dry_run=True)
    SuppressionList(settings.suppression_path).register(
        (recipient_id(settings.secret, s.email), normalise_address(s.email)) for s in recipients
    )
    report = SendReport(plan=plan)
    results: list[Result] = []
    deliver(
        _jobs(
            recipients,
            functools.partial(return_path, settings, "", factory.sender_address),
            lambda subscriber, _key: factory.build(subscriber),
        ),
        transport_for(settings),
        on_result=results.append,
        connections=1,
        retry_delays=(2, 5),
    )
    for result in results:
        if result.outcome is Outcome.ACCEPTED:
            report.proofs.append(result.recipient)
        else:
            report.add_failure(result.recipient, str(result.reply))
    if report.first_failures:
        address, reply = report.first_failures[0]
        raise DeliveryError(
            _("the proof to {address} was refused: {reply}").format(address=address, reply=reply)
        )
    return report
