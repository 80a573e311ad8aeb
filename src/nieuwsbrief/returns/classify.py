"""Say what one returned message is: a bounce (and how bad), a complaint, an unsubscribe, a reply.

Standard reports are read by their structure: RFC 3464 delivery status notifications
(`multipart/report; report-type=delivery-status`) and RFC 5965 feedback reports. For a DSN the
status code decides, never the `Action` field (Postfix says `Action: failed` with a 4.x.x status
when a message expires in its queue: still transient). The non-standard bounces that real MTAs
still send (Exim, qmail, old Exchange, ...) are left to flufl.bounce, the detector GNU Mailman uses.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from enum import StrEnum

import flufl.bounce

from nieuwsbrief.addresses import split_address

MAX_MESSAGE_BYTES = 5_000_000  # a report is small; anything bigger is skipped with a note
MAX_PARTS = 200
MAX_RECIPIENTS = 100  # per report; a DSN listing more is a list bounce, not ours
MAX_TEXT_CHARS = 200_000  # of each text part searched for status codes, Message-IDs, words
_FIELD_CHARS = 998  # RFC 5322 line length: longer evidence is cut


class Kind(StrEnum):
    """What a returned message is."""

    HARD = "hard bounce"
    SOFT = "soft bounce"
    DELAYED = "delayed"  # still being retried by the relay: not a failure yet
    NOT_ADDRESS = "not about the address"  # 5.7.x policy blocks, message too big: fix the sending
    COMPLAINT = "complaint"
    FEEDBACK = "other feedback"  # ARF not-spam, auth-failure, ...
    UNSUBSCRIBE = "unsubscribe"
    AUTO_REPLY = "auto-reply"
    HUMAN = "human reply"
    SKIPPED = "skipped"  # malformed, huge or hostile: not read


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports, with the status that decides its severity."""

    address: str  # as the report names it (lower-cased), may be '' when the report gives none
    kind: Kind
    status: str  # d.ddd.ddd, or '' when the report gives none
    evidence: str  # the status line and diagnostic, one line


@dataclass
class Returned:
    """What one returned message says, before it is matched to anything we sent."""

    kind: Kind
    failures: list[Failure] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)  # of the quoted original, <...> form
    addressed_to: list[str] = field(default_factory=list)  # envelope/Delivered-To/To/Original-*
    sender: str = ""  # From of the message (mailed unsubscribes, replies)
    subject: str = ""
    text: str = ""  # first text part, bounded (mailed unsubscribes)
    date: str = ""  # ISO date of the report (Date header), '' if missing or garbled
    note: str = ""  # why it was skipped, or the feedback type
    message_id: str = ""  # of the returned message itself


_STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MESSAGE_ID_RE = re.compile(r"^\s*Message-ID:\s*(<[^<>\s]{1,250}>)", re.IGNORECASE | re.MULTILINE)
_AUTO_SUBJECT_RE = re.compile(
    r"^(automatisch antwoord|automatic reply|auto(matic)?[- ]?reply|afwezig|out of (the )?office|"
    r"abwesenheitsnotiz|réponse automatique)",
    re.IGNORECASE,
)
UNSUBSCRIBE_WORDS_RE = re.compile(r"\b(afmelden|uitschrijven|unsubscribe)\b", re.IGNORECASE)


def severity(status: str) -> Kind:
    """Return what a DSN status code means for the address (RFC 3463; the project's table)."""
    match = _STATUS_RE.fullmatch(status.strip())
    if match is None:
        return Kind.SOFT  # no usable code: never suppress at once on a guess
    klass, subject, detail = match.group(1), int(match.group(2)), int(match.group(3))
    if klass == "2":
        return Kind.DELAYED  # delivered/relayed: nothing failed
    if klass == "4":
        return Kind.SOFT
    if subject == 7 or (subject, detail) in ((2, 3), (3, 4)):
        return Kind.NOT_ADDRESS  # policy / spam block about us, or the message is too big
    if (subject, detail) in ((2, 1), (2, 2)):
        return Kind.SOFT  # mailbox disabled or full: meant as persistent transient
    return Kind.HARD


def classify(data: bytes) -> Returned:
    """Read one raw message and say what it is; never raises on bad input (SKIPPED instead)."""
    if len(data) > MAX_MESSAGE_BYTES:
        return Returned(Kind.SKIPPED, note=f"larger than {MAX_MESSAGE_BYTES:,} bytes: not read")
    try:
        msg = email.message_from_bytes(data, policy=compat32)
        parts = _walk(msg)
        returned = _classify(msg, parts)
    except _TooComplex as exc:
        return Returned(Kind.SKIPPED, note=str(exc))
    except Exception as exc:  # hostile input must never stop the run; the note says why
        return Returned(Kind.SKIPPED, note=f"cannot be parsed ({exc.__class__.__name__})")
    returned.message_id = _header(msg, "Message-ID")[:250]
    return returned


class _TooComplex(Exception):
    pass


def _walk(msg: Message) -> list[Message]:
    parts: list[Message] = []
    for part in msg.walk():
        parts.append(part)
        if len(parts) > MAX_PARTS:
            raise _TooComplex(f"more than {MAX_PARTS} MIME parts: not read")
    return parts


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    text = str(value) if not isinstance(value, str) else value
    return " ".join(text.split())[:_FIELD_CHARS]


def _addressed_to(msg: Message) -> list[str]:
    values = []
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To"):
        values += [str(v) for v in msg.get_all(name, [])][:10]
    return [addr.lower() for _, addr in getaddresses(values) if addr][:20]


def _date(msg: Message) -> str:
    try:
        return parsedate_to_datetime(_header(msg, "Date")).date().isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        return ""


def _classify(msg: Message, parts: list[Message]) -> Returned:
    base = Returned(
        Kind.HUMAN,
        addressed_to=_addressed_to(msg),
        sender=next((a.lower() for _, a in getaddresses([_header(msg, "From")]) if a), ""),
        subject=_header(msg, "Subject"),
        date=_date(msg),
    )
    report_type = (msg.get_param("report-type", header="content-type") or "") if parts else ""
    report_type = str(report_type).lower()
    status_part = next(
        (p for p in parts if p.get_content_type() == "message/delivery-status"), None
    )
    if status_part is not None:
        return _dsn(base, parts, status_part)
    feedback_part = next(
        (p for p in parts if p.get_content_type() == "message/feedback-report"), None
    )
    if report_type == "feedback-report" or feedback_part is not None:
        return _arf(base, parts, feedback_part)
    texts = [_text(p) for p in parts if p.get_content_maintype() == "text"]
    bounce = _other_bounce(base, msg, parts, texts)
    if bounce is not None:
        return bounce
    base.text = texts[0] if texts else ""
    if _is_auto_reply(msg, base.subject):
        base.kind = Kind.AUTO_REPLY
        return base
    if UNSUBSCRIBE_WORDS_RE.search(base.subject) or UNSUBSCRIBE_WORDS_RE.search(
        _own_words(base.text)
    ):
        base.kind = Kind.UNSUBSCRIBE
    return base


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload[: MAX_TEXT_CHARS * 4].decode(charset, "replace")
    except LookupError:
        text = payload[: MAX_TEXT_CHARS * 4].decode("utf-8", "replace")
    return text[:MAX_TEXT_CHARS]


def _own_words(text: str) -> str:
    """Return what the writer typed: the first lines, without the quoted newsletter below."""
    lines = []
    for line in text.splitlines()[:40]:
        if line.startswith(">") or re.match(r"^(-{2,}|_{5,}|Op .* schreef|On .* wrote)", line):
            break
        lines.append(line)
    return "\n".join(lines)


def _original_ids(parts: list[Message]) -> list[str]:
    """Return the Message-IDs of the quoted original (message/rfc822 or text/rfc822-headers)."""
    ids: list[str] = []
    for part in parts:
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                ids.append(_header(inner[0], "Message-ID"))
        elif ctype == "text/rfc822-headers":
            ids += _MESSAGE_ID_RE.findall(_text(part))
    return [i.strip() for i in ids if i.strip()][:10]


def _dsn(base: Returned, parts: list[Message], status_part: Message) -> Returned:
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        return Returned(Kind.SKIPPED, note="delivery-status part without recipient fields")
    failures = []
    for block in blocks[1 : MAX_RECIPIENTS + 1]:
        if not isinstance(block, Message):
            continue
        action = _header(block, "Action").lower()
        if action not in ("failed", "delayed"):
            continue  # delivered, relayed, expanded: nothing to act on
        # Original-Recipient is the address as we gave it (ORCPT); Final-Recipient may be an
        # alias or a local mailbox name the relay rewrote it to.
        recipient = _header(block, "Original-Recipient") or _header(block, "Final-Recipient")
        address = recipient.partition(";")[2].strip().strip("<>").lower()
        status = _header(block, "Status")
        diagnostic = _header(block, "Diagnostic-Code")
        code = _STATUS_RE.search(status)
        kind = severity(code.group(0)) if code else severity(_code_in(diagnostic))
        if action == "delayed" and kind is not Kind.HARD:
            kind = Kind.DELAYED
        evidence = f"Status: {status or '?'}; Action: {action}"
        if diagnostic:
            evidence += f"; Diagnostic-Code: {diagnostic}"
        failures.append(Failure(address, kind, code.group(0) if code else "", evidence[:500]))
    base.failures = failures
    base.message_ids = _original_ids(parts)
    base.kind = _worst(failures) if failures else Kind.DELAYED
    return base


def _code_in(text: str) -> str:
    match = _STATUS_RE.search(text)
    return match.group(0) if match else ""


_ORDER = (Kind.HARD, Kind.SOFT, Kind.NOT_ADDRESS, Kind.DELAYED)


def _worst(failures: list[Failure]) -> Kind:
    return min((f.kind for f in failures), key=_ORDER.index)


def _arf(base: Returned, parts: list[Message], feedback_part: Message | None) -> Returned:
    fields: Message | None = None
    if feedback_part is not None:
        payload = feedback_part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            fields = payload[0]
    if fields is None:
        return Returned(Kind.SKIPPED, note="feedback report without a message/feedback-report part")
    feedback_type = _header(fields, "Feedback-Type").lower()
    base.kind = Kind.COMPLAINT if feedback_type in ("abuse", "fraud") else Kind.FEEDBACK
    base.note = f"Feedback-Type: {feedback_type or '?'}"
    mail_from = _header(fields, "Original-Mail-From")
    rcpt_to = [str(v) for v in fields.get_all("Original-Rcpt-To", [])][:MAX_RECIPIENTS]
    # The VERP return path comes back in Original-Mail-From; match it like an envelope recipient.
    base.addressed_to += [a.lower() for _, a in getaddresses([mail_from]) if a]
    recipients = [a.lower() for _, a in getaddresses(rcpt_to) if a]
    for part in parts:
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                recipients += [a.lower() for _, a in getaddresses([_header(inner[0], "To")]) if a]
                return_path = _header(inner[0], "Return-Path")
                base.addressed_to += [a.lower() for _, a in getaddresses([return_path]) if a]
    evidence = f"{base.note}; Arrival-Date: {_header(fields, 'Arrival-Date') or '?'}"
    base.failures = [Failure(a, base.kind, "", evidence) for a in dict.fromkeys(recipients)]
    if not base.failures:
        base.failures = [Failure("", base.kind, "", evidence)]
    base.message_ids = _original_ids(parts)
    return base


def _other_bounce(
    base: Returned, msg: Message, parts: list[Message], texts: list[str]
) -> Returned | None:
    if not _looks_like_bounce(msg, base):
        return None
    temporary, permanent = flufl.bounce.all_failures(msg)
    if not temporary and not permanent:
        return None
    body = "\n".join(texts)
    failures = []
    for raw, flufl_kind in [(a, Kind.SOFT) for a in temporary] + [
        (a, Kind.HARD) for a in permanent
    ]:
        address = raw.decode("ascii", "replace").lower()
        line = _status_line(body, address)
        code = _code_in(line) or _code_in(body)
        # The status code decides when the report has one; flufl.bounce's guess otherwise.
        kind = severity(code) if code else flufl_kind
        failures.append(Failure(address, kind, code, (line or "no status line")[:500]))
        if len(failures) >= MAX_RECIPIENTS:
            break
    base.failures = failures
    base.kind = _worst(failures)
    base.message_ids = _original_ids(parts) or _MESSAGE_ID_RE.findall(body)[:10]
    return base


def _looks_like_bounce(msg: Message, base: Returned) -> bool:
    """Tell a message from a mail system apart from one a person wrote (before flufl.bounce)."""
    sender = split_address(base.sender)[0]
    return (
        sender in ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")
        or msg.get("X-Failed-Recipients") is not None
        or (
            _header(msg, "Return-Path") in ("<>", "")
            and bool(re.search(r"deliver|undeliver|failure|returned|bounce", base.subject, re.I))
        )
    )


def _status_line(body: str, address: str) -> str:
    """Return the line with a status code nearest after the address in the report text."""
    at = body.lower().find(address)
    window = body[at : at + 2000] if at >= 0 else body[:4000]
    for line in window.splitlines():
        if _STATUS_RE.search(line) or re.search(r"\b[45]\d\d\b", line):
            return " ".join(line.split())
    return ""


def _is_auto_reply(msg: Message, subject: str) -> bool:
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and auto != "no":
        return True
    if msg.get("X-Autoreply") is not None or msg.get("X-Autorespond") is not None:
        return True
    if _header(msg, "Precedence").lower() in ("auto_reply", "bulk", "junk", "list"):
        return True
    return bool(_AUTO_SUBJECT_RE.match(subject))
