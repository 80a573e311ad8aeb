"""Where messages go, in words every transport shares: Reply, Outcome, Channel, Transport.

The SMTP client is `nieuwsbrief.sending.smtp` (the only module that imports smtplib); the local
Maildir outbox is `nieuwsbrief.sending.outbox`. Both hand out channels with the same
`send(sender, recipient, data) -> Reply`, so the delivery engine does not care which one it has.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from nieuwsbrief.i18n import _
from nieuwsbrief.text import shown

# RFC 3463 enhanced status code at the start of a reply line, e.g. "5.1.1".
_ENHANCED_RE = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})(?:\s+|$)")

# A reply as we show, record and write it: at most this many bytes (UTF-8), then "…".
REPLY_SHOWN_BYTES = 512
REDACTED = "[redacted]"
# An AUTH command echoed by a server: keep the mechanism, hide the credentials after it.
_AUTH_ECHO_RE = re.compile(r"(?i)\b(AUTH\s+[A-Z0-9_-]+)\s+\S+")
# A base64 word long enough to hold credentials; redacted when it decodes to AUTH PLAIN's
# "authzid NUL user NUL password" (or anything else with a NUL byte in it).
_BASE64_WORD_RE = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}")


class Outcome(enum.Enum):
    """What became of one message."""

    ACCEPTED = "accepted"  # 2xx after DATA: the server took responsibility for it
    TEMPORARY = "temporary"  # 4xx at any step: may be retried later
    PERMANENT = "permanent"  # 5xx (or nonsense): never retry


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: `550 5.1.1 No such user` is code 550, enhanced '5.1.1', the rest text.

    Every Reply is made safe to show where it is created: control characters replaced,
    credentials an AUTH echo could carry redacted, and cut to REPLY_SHOWN_BYTES with a visible
    "…", so a hostile server cannot fill the screen, the ledger or the failures CSV. Codes 0
    and 1 are failures found on this side (see `local`): `text` says why.
    """

    code: int
    enhanced: str
    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", _shown(self.text, len(self.enhanced) + 5))

    @classmethod
    def parse(cls, code: int, message: bytes | str, secrets: Iterable[str] = ()) -> Reply:
        """Split a reply (lines joined by newlines) into its parts; hide any of `secrets`."""
        raw = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        enhanced = ""
        lines = []
        for line in raw.splitlines():
            match = _ENHANCED_RE.match(line)
            if match:
                enhanced = enhanced or match.group(1)
                line = line[match.end() :]
            lines.append(line.strip())
        text = " ".join(part for part in lines if part)
        for secret in secrets:
            if secret:
                text = text.replace(secret, REDACTED)
        return cls(code, enhanced, text)

    @classmethod
    def local(cls, text: str, *, temporary: bool = False) -> Reply:
        """A failure found on this side, not said by the server (code 0; 1 if temporary)."""
        return cls(1 if temporary else 0, "", text)

    @property
    def outcome(self) -> Outcome:
        """Classify this reply as the final answer for a message."""
        if 200 <= self.code < 300:
            return Outcome.ACCEPTED
        if 400 <= self.code < 500 or self.code == 1:
            return Outcome.TEMPORARY
        return Outcome.PERMANENT

    def __str__(self) -> str:
        if self.code in (0, 1):
            return _("not delivered: {text}").format(text=self.text)
        return " ".join(part for part in (str(self.code), self.enhanced, self.text) if part)


def _shown(text: str, reserved: int) -> str:
    """Return `text` safe to show: no control characters, no credentials, bounded in bytes."""
    text = shown(text)  # terminal control characters never reach the screen, ledger or CSV
    if "AUTH" in text.upper():
        text = _AUTH_ECHO_RE.sub(rf"\1 {REDACTED}", text)
    text = _BASE64_WORD_RE.sub(_redact_credentials, text)
    budget = REPLY_SHOWN_BYTES - reserved
    if len(text) > budget // 4:  # only then can the UTF-8 form be over the budget
        encoded = text.encode("utf-8")
        if len(encoded) > budget:
            return encoded[: budget - 3].decode("utf-8", "ignore") + "…"
    return text


def _redact_credentials(match: re.Match[str]) -> str:
    word = match.group(0)
    if len(word) % 4:
        return word
    try:
        decoded = base64.b64decode(word, validate=True)
    except (binascii.Error, ValueError):
        return word
    return REDACTED if b"\x00" in decoded else word


class ConnectionLost(Exception):
    """The connection died before the server acknowledged the message: it was NOT delivered.

    Internal to the delivery engine, which reconnects and sends the message again.
    """


class TimedOut(ConnectionLost):
    """The server did not answer (or take our data) within the time-out; the link is closed."""


class OutOfStep(ConnectionLost):
    """The server's replies no longer match our commands; the connection has been closed.

    A wrong code for the command, an extra or a garbled reply, an over-long line: from then
    on no reply on that connection can be trusted, so nothing unanswered counts as delivered.
    """


class Channel(Protocol):
    """One connection to a transport, used by one thread for many messages."""

    @property
    def is_open(self) -> bool:
        """Whether the channel can take another message (False after 421 or a lost link)."""
        ...

    def send(self, sender: str, recipient: str, data: bytes) -> Reply:
        """Deliver one message to one recipient; raise ConnectionLost if not acknowledged."""
        ...

    def close(self) -> None:
        """Say goodbye and release the connection; never raises."""
        ...


@runtime_checkable
class PipeliningChannel(Channel, Protocol):
    """A channel that can send the next envelope right behind a body (SMTP with PIPELINING).

    `send` is `begin` + `finish`. Between `begin` returning None and `finish`, the server
    waits for the body: send it at once, or close the channel (which then discards it).
    """

    pipelining: bool  # whether finish(then=...) may be used on this channel

    def begin(self, sender: str, recipient: str) -> Reply | None:
        """Open a transaction; None when the body is due, else the refusal."""
        ...

    def finish(
        self,
        data: bytes,
        then: tuple[str, str] | None = None,
        meanwhile: Callable[[], None] | None = None,
    ) -> Reply:
        """Send the body (and `then`'s envelope behind it); return the final reply.

        `meanwhile` is called once the body is written, before its reply is read: work done
        there (building the next message) overlaps the round trip instead of following it.
        """
        ...

    def pipelined(self) -> Reply | None:
        """Read the replies to `then`'s envelope; like begin()."""
        ...


class Transport(Protocol):
    """A place messages can go; opens channels for the delivery engine's workers."""

    @property
    def max_per_connection(self) -> int:
        """Messages per channel before the engine opens a fresh one (0 = unlimited)."""
        ...

    def open(self) -> Channel:
        """Open a ready-to-use channel; raise DeliveryError if that is impossible."""
        ...

    def describe(self) -> str:
        """Say where messages will go, for the confirmation prompt."""
        ...


class Preopened:
    """A transport whose first `count` channels start opening at once, in parallel, in threads.

    For a send that does not ask before sending: the connect, TLS and EHLO round trips then
    overlap composing the issue and reading the list, instead of following them one channel
    after the other. A channel that could not be opened raises its error when it is taken, as
    `open()` would have; `close()` closes those never taken, also ones still opening.
    """

    def __init__(self, transport: Transport, count: int) -> None:
        self._transport = transport
        self._lock = threading.Lock()
        self._ready: list[Channel | Exception] = []
        self._arrived = threading.Condition(self._lock)
        self._owed = count  # channels opening or opened and not taken yet
        self._closed = False
        for n in range(count):
            threading.Thread(
                target=self._open_one, name=f"nieuwsbrief-open-{n}", daemon=True
            ).start()

    def _open_one(self) -> None:
        item: Channel | Exception
        try:
            item = self._transport.open()
        except Exception as exc:  # handed to whoever takes this channel
            item = exc
        with self._lock:
            if not self._closed:
                self._ready.append(item)
                self._arrived.notify()
                return
        if not isinstance(item, Exception):
            item.close()

    @property
    def max_per_connection(self) -> int:
        """Messages per channel before the engine opens a fresh one (0 = unlimited)."""
        return self._transport.max_per_connection

    def open(self) -> Channel:
        """Take a channel opened in advance (waiting for one still opening), else open one."""
        with self._lock:
            if self._closed or self._owed == 0:
                item: Channel | Exception | None = None
            else:
                self._owed -= 1
                while not self._ready:
                    self._arrived.wait()
                item = self._ready.pop(0)
        if item is None:
            return self._transport.open()
        if isinstance(item, Exception):
            raise item
        return item

    def describe(self) -> str:
        """Say where messages will go, for the confirmation prompt."""
        return self._transport.describe()

    def close(self) -> None:
        """Close the channels opened in advance that were never taken."""
        with self._lock:
            self._closed = True
            left, self._ready = self._ready, []
        for item in left:
            if not isinstance(item, Exception):
                item.close()
