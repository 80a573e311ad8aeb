"""Returned mail for tests, built the way real MTAs and feedback loops build it.

`dsn()` writes a Postfix-style RFC 3464 delivery status notification, `arf()` an RFC 5965
feedback report as Yahoo's complaint feedback loop sends it, `reply()` a person's or an
auto-responder's answer. They quote a message our own `send` really delivered (the bytes the
test SMTP server received), so VERP and Message-ID matching are exercised end to end.
"""

from __future__ import annotations

import email
import mailbox
import sqlite3
from datetime import UTC, datetime
from email import policy
from email.utils import format_datetime
from pathlib import Path

from nieuwsbrief.addresses import normalise_address

BOUNDARY = "=_returned_0123456789"


def _headers_of(original: bytes) -> str:
    head = original.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return head.decode("utf-8", "replace")


def _body(original: bytes) -> str:
    return original.replace(b"\r\n", b"\n").decode("utf-8", "replace")


def _date(when: datetime | None) -> str:
    return format_datetime(when or datetime.now(UTC))


def dsn(
    original: bytes | None,
    *,
    to: str,
    recipient: str,
    status: str,
    action: str = "failed",
    diagnostic: str | None = None,
    when: datetime | None = None,
    number: int = 1,
) -> bytes:
    """Return a delivery status notification for `recipient`, sent to `to` (the return path)."""
    diagnostic = diagnostic or f"smtp; 550 {status} <{recipient}>: Recipient address rejected"
    quoted = (
        f"--{BOUNDARY}\nContent-Description: Undelivered Message Headers\n"
        f"Content-Type: text/rfc822-headers\n\n{_headers_of(original)}\n"
        if original is not None
        else ""
    )
    text = f"""\
Return-Path: <>
Delivered-To: {to}
Received: by mx.gemeente.example (Postfix) id 4Q{number:06d}; {_date(when)}
Date: {_date(when)}
From: MAILER-DAEMON@mx.gemeente.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{BOUNDARY}"
Message-Id: <20261202{number:06d}.4Q@mx.gemeente.example>

This is a MIME-encapsulated message.

--{BOUNDARY}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.gemeente.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.gemeente.example said: {diagnostic.partition("; ")[2]}

--{BOUNDARY}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.gemeente.example
X-Postfix-Queue-ID: 4Q{number:06d}
Arrival-Date: {_date(when)}

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mail.gemeente.example
Diagnostic-Code: {diagnostic}

{quoted}--{BOUNDARY}--
"""
    return text.encode("utf-8")


def arf(original: bytes, *, mail_from: str, to: str = "fbl@bureau-kennis.net", number: int = 1,
        feedback_type: str = "abuse", redact: bool = True) -> bytes:  # fmt: skip
    """Return a complaint (RFC 5965) about `original`, with the recipient redacted as Yahoo does."""
    inner = _body(original)
    if redact:
        inner = "\n".join(
            "To: redacted@yahoo.example" if line.lower().startswith("to:") else line
            for line in inner.split("\n")
        )
    text = f"""\
Return-Path: <feedback@arf.mail.yahoo.example>
Delivered-To: {to}
From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.example>
To: {to}
Subject: FW: complaint {number}
Date: {_date(None)}
Message-ID: <arf-{number}@arf.mail.yahoo.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="{BOUNDARY}"

--{BOUNDARY}
Content-Type: text/plain; charset="US-ASCII"

This is an email abuse report for an email message received from IP 192.0.2.1.

--{BOUNDARY}
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Mail-From: <{mail_from}>
Arrival-Date: {_date(None)}
Reported-Domain: bureau-kennis.net

--{BOUNDARY}
Content-Type: message/rfc822
Content-Disposition: inline

{inner}
--{BOUNDARY}--
"""
    return text.encode("utf-8")


def reply(
    *, sender: str, to: str, subject: str, body: str, auto: bool = False, number: int = 1
) -> bytes:
    """Return a plain reply (or, with `auto`, an RFC 3834 out-of-office answer)."""
    auto_headers = "Auto-Submitted: auto-replied\nX-Autoreply: yes\n" if auto else ""
    text = (
        f"From: {sender}\nTo: {to}\nSubject: {subject}\nDate: {_date(None)}\n"
        f"Message-ID: <reply-{number}@example.nl>\n{auto_headers}"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        f"Content-Transfer-Encoding: 8bit\n\n{body}\n"
    )
    return text.encode("utf-8")


def message_id(data: bytes) -> str:
    """Return the Message-ID header of a message."""
    return str(email.message_from_bytes(data, policy=policy.default)["Message-ID"])


def write_maildir(path: Path, *messages: bytes) -> Path:
    """Create a Maildir holding `messages` in new/, as a delivery agent leaves them."""
    box = mailbox.Maildir(path, create=True)
    for data in messages:
        box.add(data)
    return path


class SqliteSentMail:
    """A small `SentMail` of our own over a real SQLite file: what was sent, by Message-ID."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with sqlite3.connect(path) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS sent (issue TEXT, address TEXT, message_id TEXT, "
                "recipient_id TEXT, at TEXT)"
            )

    def record(self, issue: str, address: str, message_id: str, recipient_id: str = "") -> None:
        with sqlite3.connect(self.path) as conn:
            conn.execute(
                "INSERT INTO sent VALUES (?, ?, ?, ?, ?)",
                (issue, normalise_address(address), message_id, recipient_id,
                 datetime.now(UTC).isoformat()),
            )  # fmt: skip

    def _one(self, sql: str, *args: str) -> tuple[str, ...] | None:
        with sqlite3.connect(self.path) as conn:
            row = conn.execute(sql, args).fetchone()
        return None if row is None else tuple(row)

    def lookup_message_id(self, message_id: str) -> tuple[str, str] | None:
        row = self._one("SELECT issue, address FROM sent WHERE message_id = ?", message_id)
        return None if row is None else (row[0], row[1])

    def issue_mailed_to(self, address: str) -> str | None:
        row = self._one(
            "SELECT issue FROM sent WHERE address = ? ORDER BY at DESC", normalise_address(address)
        )
        return None if row is None else row[0]

    def issue_ids(self) -> list[str]:
        with sqlite3.connect(self.path) as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT issue FROM sent")]

    def address_for(self, recipient_id: str) -> str | None:
        row = self._one("SELECT address FROM sent WHERE recipient_id = ?", recipient_id)
        return None if row is None else row[0]
