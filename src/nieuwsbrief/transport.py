"""Where messages go: an SMTP connection (one recipient per transaction) or a local Maildir outbox.

This is the only module that imports smtplib. Both transports hand out channels with the same
`send(sender, recipient, data) -> Reply`, so the delivery engine does not care which one it has.
"""

from __future__ import annotations

import enum
import ipaddress
import mailbox
import re
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from nieuwsbrief.errors import ConfigError, DeliveryError

Security = Literal["starttls", "ssl", "none"]
SECURITIES: tuple[Security, ...] = ("starttls", "ssl", "none")

# RFC 3463 enhanced status code at the start of a reply line, e.g. "5.1.1".
_ENHANCED_RE = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})(?:\s+|$)")


class Outcome(enum.Enum):
    """What became of one message."""

    ACCEPTED = "accepted"  # 2xx after DATA: the server took responsibility for it
    TEMPORARY = "temporary"  # 4xx at any step: may be retried later
    PERMANENT = "permanent"  # 5xx (or nonsense): never retry


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: `550 5.1.1 No such user` is code 550, enhanced '5.1.1', the rest text."""

    code: int
    enhanced: str
    text: str

    @classmethod
    def parse(cls, code: int, message: bytes | str) -> Reply:
        """Split a reply as smtplib returns it (lines joined by newlines) into its parts."""
        raw = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        enhanced = ""
        lines = []
        for line in raw.splitlines():
            match = _ENHANCED_RE.match(line)
            if match:
                enhanced = enhanced or match.group(1)
                line = line[match.end() :]
            lines.append(line.strip())
        return cls(code, enhanced, " ".join(part for part in lines if part))

    @property
    def outcome(self) -> Outcome:
        """Classify this reply as the final answer for a message."""
        if 200 <= self.code < 300:
            return Outcome.ACCEPTED
        if 400 <= self.code < 500:
            return Outcome.TEMPORARY
        return Outcome.PERMANENT

    def __str__(self) -> str:
        return " ".join(part for part in (str(self.code), self.enhanced, self.text) if part)


class ConnectionLost(Exception):
    """The connection died before the server acknowledged the message: it was NOT delivered.

    Internal to the delivery engine, which reconnects and sends the message again.
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

    def finish(self, data: bytes, then: tuple[str, str] | None = None) -> Reply:
        """Send the body (and `then`'s envelope behind it); return the final reply."""
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


# --------------------------------------------------------------------------------------------
# SMTP


@dataclass(frozen=True)
class SmtpParams:
    """How to reach and log in to the SMTP server."""

    host: str
    port: int
    security: Security = "starttls"
    user: str | None = None
    password: str = field(default="", repr=False)
    helo_name: str | None = None
    timeout: float = 30.0
    # None: the system's trusted CAs with hostname checks (ssl.create_default_context()).
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    max_per_connection: int = 0

    def __post_init__(self) -> None:
        if self.security not in SECURITIES:
            raise ConfigError(
                f"SMTP security must be one of {', '.join(SECURITIES)}, not {self.security!r}"
            )
        if self.max_per_connection < 0:
            raise ConfigError("SMTP max messages per connection cannot be negative")

    @property
    def where(self) -> str:
        """Return 'host:port' for messages."""
        return f"{self.host}:{self.port}"


def is_loopback(host: str) -> bool:
    """Tell whether `host` names this machine (plain-text AUTH is tolerated only there)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_auth_allowed(params: SmtpParams) -> None:
    """Refuse to send a password over a connection without TLS, except to this machine."""
    if params.user and params.security == "none" and not is_loopback(params.host):
        raise DeliveryError(
            f"refusing to send the password for {params.user!r} to {params.where} without TLS; "
            "use security 'starttls' (port 587) or 'ssl' (port 465)"
        )


def _tls_problem(where: str, exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"{where} presented a TLS certificate that cannot be trusted ({exc.verify_message}); "
            "check the host name: it must match the certificate"
        )
    return f"TLS with {where} failed ({exc.reason or exc}); check the port and security setting"


# A line that starts with a dot. re finds it several times faster than bytes.find/replace in a
# message with a CRLF every few dozen bytes (about 20 us instead of 70 us for 76 KB).
_DOT_LINE_RE = re.compile(rb"\r\n\.")


def _dot_stuff(data: bytes) -> bytes:
    """Return `data` as a DATA payload: leading dots doubled, ending in CRLF.CRLF (RFC 5321)."""
    if data.startswith(b"."):
        data = b"." + data
    if _DOT_LINE_RE.search(data) is not None:
        data = _DOT_LINE_RE.sub(b"\r\n..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _address_ok(address: str) -> bool:
    return address.isascii() and not any(c in address for c in "\r\n<> ")


class SmtpConnection:
    """One authenticated SMTP session that sends many messages, one recipient each."""

    def __init__(self, params: SmtpParams, smtp: smtplib.SMTP) -> None:
        self.params = params
        self._smtp: smtplib.SMTP | None = smtp
        self.pipelining = smtp.has_extn("pipelining")
        self._in_data = False  # DATA was answered 354: the body is due
        # After finish(then=...): True while the next envelope's replies are unread, or the
        # reply that refused it without sending it.
        self._next: Reply | bool | None = None

    @classmethod
    def open(cls, params: SmtpParams) -> SmtpConnection:
        """Connect, secure and log in; raise DeliveryError naming the server if that fails."""
        check_auth_allowed(params)
        where = params.where
        context = params.ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP | None = None
        try:
            if params.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    params.host,
                    params.port,
                    local_hostname=params.helo_name,
                    timeout=params.timeout,
                    context=context,
                )
            else:
                smtp = smtplib.SMTP(
                    params.host,
                    params.port,
                    local_hostname=params.helo_name,
                    timeout=params.timeout,
                )
            smtp.ehlo_or_helo_if_needed()
            if params.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(
                        f"{where} does not offer STARTTLS; use security 'ssl' if it expects "
                        "TLS from the start (port 465), or ask the provider"
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if params.user:
                if not smtp.has_extn("auth"):
                    raise DeliveryError(
                        f"{where} does not offer a login (no AUTH after EHLO); check the port "
                        "and security settings"
                    )
                smtp.login(params.user, params.password)
            return cls(params, smtp)
        except DeliveryError:
            _quietly_close(smtp)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            _quietly_close(smtp)
            raise DeliveryError(
                f"{where} refused the login for {params.user!r} "
                f"({Reply.parse(exc.smtp_code, exc.smtp_error)}); check the user name and password"
            ) from None
        except smtplib.SMTPConnectError as exc:
            _quietly_close(smtp)
            raise DeliveryError(
                f"{where} refused the connection ({Reply.parse(exc.smtp_code, exc.smtp_error)})"
            ) from None
        except smtplib.SMTPResponseException as exc:
            _quietly_close(smtp)
            raise DeliveryError(
                f"{where} answered {Reply.parse(exc.smtp_code, exc.smtp_error)} while we were "
                "setting up the connection"
            ) from None
        except ssl.SSLError as exc:
            _quietly_close(smtp)
            raise DeliveryError(_tls_problem(where, exc)) from None
        except (smtplib.SMTPException, OSError) as exc:
            _quietly_close(smtp)
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise DeliveryError(
                f"{where} cannot be reached ({detail or type(exc).__name__}); check the host, "
                "port and network"
            ) from None

    @property
    def is_open(self) -> bool:
        """Whether another message can go over this connection."""
        return self._smtp is not None

    def send(self, sender: str, recipient: str, data: bytes) -> Reply:
        """Send one message to one recipient, pipelined when the server offers it (RFC 2920)."""
        refused = self.begin(sender, recipient)
        if refused is not None:
            return refused
        return self.finish(data)

    # A message in two steps, so that the next one can ride along (RFC 2920 3.1): begin() opens
    # the transaction; finish(data, then=next envelope) sends the body and, in the same write,
    # the next transaction's MAIL, RCPT and DATA; pipelined() reads the replies to those.

    def begin(self, sender: str, recipient: str) -> Reply | None:
        """Send MAIL, RCPT and DATA; None: the server said 354 and the body must follow now.

        Otherwise return the reply that ended the transaction; the connection has then been
        reset (RSET) or, after 421, closed.
        """
        if not (_address_ok(sender) and _address_ok(recipient)):
            # Addresses arrive validated and IDNA-encoded; this guards the command line itself.
            return _unusable(recipient)
        smtp = self._live()
        try:
            if self.pipelining:
                smtp.send(_envelope_commands(sender, recipient))
                return self._envelope_replies(smtp)
            return self._lock_step_envelope(smtp, sender, recipient)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise self._lost(exc) from exc

    def finish(self, data: bytes, then: tuple[str, str] | None = None) -> Reply:
        """Send the body of the open transaction; return the server's final reply.

        With `then` = (sender, recipient), which needs PIPELINING, that next transaction's MAIL,
        RCPT and DATA go out right behind the body; call pipelined() for their replies unless
        the connection closed (421). Raise ConnectionLost if the body was not acknowledged.
        """
        if not self._in_data:
            raise RuntimeError("finish() without a transaction opened by begin()")
        smtp = self._live()
        payload = _dot_stuff(data)
        if then is not None:
            if not self.pipelining:
                raise RuntimeError("the server does not offer PIPELINING")
            sender, recipient = then
            if _address_ok(sender) and _address_ok(recipient):
                payload += _envelope_commands(sender, recipient)
                self._next = True  # replies pending: the 421 / lost paths below clear it
            else:
                self._next = _unusable(recipient)
        try:
            smtp.send(payload)
            self._in_data = False
            final = self._reply(smtp)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise self._lost(exc) from exc
        if final.outcome is not Outcome.ACCEPTED and self._next is not True and self.is_open:
            self._reset(smtp)
        return final

    def pipelined(self) -> Reply | None:
        """Read the replies to the envelope that finish(then=...) sent; like begin()."""
        pending, self._next = self._next, None
        if isinstance(pending, Reply):
            return pending
        if pending is not True:
            raise RuntimeError("pipelined() without an envelope sent by finish(then=...)")
        smtp = self._live()
        try:
            return self._envelope_replies(smtp)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise self._lost(exc) from exc

    def _live(self) -> smtplib.SMTP:
        smtp = self._smtp
        if smtp is None:
            raise ConnectionLost(f"connection to {self.params.where} is closed")
        return smtp

    def _lost(self, exc: BaseException) -> ConnectionLost:
        self._drop()
        return ConnectionLost(f"{self.params.where}: {exc or type(exc).__name__}")

    def _envelope_replies(self, smtp: smtplib.SMTP) -> Reply | None:
        """Read the replies to a pipelined MAIL, RCPT, DATA; None on 250, 250, 354."""
        # RFC 2920 3.1: the client MUST check every reply of the batch.
        failed: Reply | None = None
        for want in (250, 250, 354):
            code, message = smtp.getreply()
            if code == want or (want == 250 and code == 251):
                if want == 354 and failed is not None:
                    # DATA was accepted although MAIL or RCPT was not: end the empty message.
                    smtp.send(b".\r\n")
                    self._reply(smtp)
                continue  # the usual case: no need to parse the reply text
            reply = self._parsed(code, message)
            if not self.is_open:  # 421: the server has gone
                return reply
            failed = failed or reply
        if failed is None:
            self._in_data = True
        elif self.is_open:
            self._reset(smtp)
        return failed

    def _lock_step_envelope(self, smtp: smtplib.SMTP, sender: str, recipient: str) -> Reply | None:
        """Run MAIL, RCPT and DATA one at a time; None on 354."""
        commands = [f"MAIL FROM:<{sender}>\r\n", f"RCPT TO:<{recipient}>\r\n", "DATA\r\n"]
        for command, want in zip(commands, (250, 250, 354), strict=True):
            smtp.send(command.encode("ascii"))
            reply = self._reply(smtp)
            if reply.code != want and not (want == 250 and reply.code == 251):
                if self.is_open:
                    self._reset(smtp)
                return reply
        self._in_data = True
        return None

    def _reply(self, smtp: smtplib.SMTP) -> Reply:
        code, message = smtp.getreply()
        return self._parsed(code, message)

    def _parsed(self, code: int, message: bytes) -> Reply:
        reply = Reply.parse(code, message)
        if code == 421:  # service closing the transmission channel
            self._drop()
        return reply

    def _reset(self, smtp: smtplib.SMTP) -> None:
        try:
            code, _ = smtp.rset()
        except (smtplib.SMTPException, OSError):
            code = 0
        if code != 250:
            self._drop()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        self._in_data, self._next = False, None
        _quietly_close(smtp, quit=False)

    def close(self) -> None:
        """Send QUIT and close the socket; never raises.

        In the middle of a transaction (after 354, or with pipelined commands unanswered) it
        closes without QUIT or ".": the server then discards the unfinished message.
        """
        if self._in_data or self._next is not None:
            self._drop()
            return
        smtp, self._smtp = self._smtp, None
        _quietly_close(smtp)


def _envelope_commands(sender: str, recipient: str) -> bytes:
    return f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii")


def _unusable(recipient: str) -> Reply:
    return Reply(553, "5.1.3", f"address not usable in an SMTP command: {recipient!r}")


def _quietly_close(smtp: smtplib.SMTP | None, *, quit: bool = True) -> None:
    if smtp is None:
        return
    try:
        if quit and smtp.sock is not None:
            smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


class SmtpTransport:
    """SMTP as a transport: each channel is its own authenticated connection."""

    def __init__(self, params: SmtpParams) -> None:
        if params.helo_name is None:
            # Resolve once here rather than in every smtplib.SMTP() (getfqdn may hit DNS).
            params = replace(params, helo_name=socket.getfqdn())
        self.params = params

    @property
    def max_per_connection(self) -> int:
        """Messages per connection before reconnecting (0 = unlimited)."""
        return self.params.max_per_connection

    def open(self) -> SmtpConnection:
        """Open one authenticated connection."""
        return SmtpConnection.open(self.params)

    def describe(self) -> str:
        """Say e.g. 'smtp.example.nl:587 (starttls, user nieuwsbrief)'."""
        login = f"user {self.params.user}" if self.params.user else "no login"
        return f"{self.params.where} ({self.params.security}, {login})"


# --------------------------------------------------------------------------------------------
# Maildir


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
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            self._maildir = mailbox.Maildir(self.path, factory=None, create=False)
        except OSError as exc:
            raise DeliveryError(f"{self.path}: cannot create the outbox ({exc.strerror})") from None

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
        except OSError as exc:
            problem = exc.strerror or type(exc).__name__
            raise DeliveryError(f"{self.path}: cannot write to the outbox ({problem})") from None
        return Reply(250, "2.0.0", f"saved as {key}")

    def close(self) -> None:
        """Nothing to release."""

    def describe(self) -> str:
        """Say e.g. 'local outbox ./outbox'."""
        return f"local outbox {self.path}"
