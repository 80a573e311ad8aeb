"""The local outbox: a Maildir that `send` writes into when no SMTP server is configured, and
that `preview` lists and shows.

Writing (`MaildirOutbox`, a transport and its own channel) and reading (`read_outbox`,
`read_message`, `outbox_stamp`) live together so the folder's layout is known in one place.
"""

from __future__ import annotations

import mailbox
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

from nieuwsbrief.errors import DeliveryError
from nieuwsbrief.i18n import _
from nieuwsbrief.sending.transport import Reply

# --- writing -------------------------------------------------------------------------------


class MaildirOutbox:
    """The local outbox used when no SMTP server is configured: one Maildir file per message.

    Both transport and channel. mailbox.Maildir writes into tmp/ and renames into new/, so a
    message file is either complete or absent.
    """

    max_per_connection = 0

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # Maildir's unique-name counter is not thread-safe
        try:
            # Maildir(create=True) leaves an existing folder without its tmp/ new/ cur/.
            # 0700 folders and 0600 files: the messages hold every recipient's address.
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(mode=0o700, exist_ok=True)
            self._maildir = mailbox.Maildir(self.path, factory=None, create=False)
        except OSError as exc:
            raise DeliveryError(
                _("{path}: cannot create the outbox ({strerror})").format(
                    path=self.path, strerror=exc.strerror
                )
            ) from None

    @property
    def is_open(self) -> bool:
        """Always: a folder does not hang up."""
        return True

    def open(self) -> MaildirOutbox:
        """Return the outbox itself; it is safe to share between threads."""
        return self

    def send(self, sender: str, recipient: str, data: bytes) -> Reply:
        """Write the message, with Return-Path and Delivered-To like a local delivery agent."""
        header = f"Return-Path: <{sender}>\r\nDelivered-To: {recipient}\r\n".encode()
        # Files in a Maildir use the local line ending.
        content = (header + data).replace(b"\r\n", b"\n")
        try:
            with self._lock:
                key = self._maildir.add(content)
            os.chmod(self.path / "new" / key, 0o600)
        except OSError as exc:
            problem = exc.strerror or type(exc).__name__
            raise DeliveryError(
                _("{path}: cannot write to the outbox ({problem})").format(
                    path=self.path, problem=problem
                )
            ) from None
        return Reply(250, "2.0.0", _("saved as {key}").format(key=key))

    def close(self) -> None:
        """Nothing to release."""

    def describe(self) -> str:
        """Say e.g. 'local outbox ./outbox'."""
        return _("local outbox {path}").format(path=self.path)


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxEntry:
    """One message in the local outbox, by its Maildir key."""

    key: str
    to: str
    subject: str
    date: datetime | None


def has_outbox(outbox_dir: Path) -> bool:
    """Tell whether `outbox_dir` is a Maildir (something has been delivered into it)."""
    return (outbox_dir / "new").is_dir()


def read_outbox(
    outbox_dir: Path, known: dict[str, OutboxEntry] | None = None
) -> list[OutboxEntry] | None:
    """Return the messages of a Maildir outbox, newest first; None when there is no outbox.

    `known` caches entries by key across calls: a message in a Maildir never changes.
    """
    if not has_outbox(outbox_dir):
        return None
    known = {} if known is None else known
    box = mailbox.Maildir(str(outbox_dir), factory=None, create=False)
    keys = set(box.keys())
    for key in set(known) - keys:
        del known[key]
    for key in keys - set(known):
        try:
            with box.get_file(key) as handle:
                head = BytesHeaderParser(policy=policy.default).parsebytes(_head_bytes(handle))
        except (OSError, KeyError):
            continue  # moved or removed while we were reading
        date = head.get("Date")
        known[key] = OutboxEntry(
            key=key,
            to=str(head.get("To", "")),
            subject=str(head.get("Subject", "")),
            date=getattr(date, "datetime", None),
        )
    return sorted(
        known.values(),
        key=lambda e: e.date.timestamp() if e.date and e.date.tzinfo else 0,
        reverse=True,
    )


def _head_bytes(lines: Iterable[bytes]) -> bytes:
    head = []
    for line in lines:
        if not line.strip():
            break
        head.append(line)
    return b"".join(head)


def read_message(outbox_dir: Path, key: str) -> bytes | None:
    """Return the message stored under `key`; None when the outbox or the message is not there.

    Only keys of this Maildir are read: no other file can be reached through `key`.
    """
    if not has_outbox(outbox_dir):
        return None
    box = mailbox.Maildir(str(outbox_dir), factory=None, create=False)
    try:
        return box.get_bytes(key)
    except (KeyError, OSError):
        return None


def outbox_stamp(outbox_dir: Path | None) -> tuple[tuple[int, int], ...]:
    """Return something that changes when a message is added to or removed from a Maildir."""
    if outbox_dir is None:
        return ()
    stamp = []
    for sub in ("new", "cur"):
        try:
            stamp.append(((outbox_dir / sub).stat().st_mtime_ns, len(os.listdir(outbox_dir / sub))))
        except OSError:
            stamp.append((0, 0))
    return tuple(stamp)
