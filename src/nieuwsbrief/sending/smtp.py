"""The SMTP client: one authenticated session, many one-recipient transactions, every reply checked.

This is the only module that imports smtplib. smtplib does connecting, TLS (implicit or
STARTTLS), EHLO and the AUTH mechanisms well, and we use it for exactly that. It is not enough
for the transactions: `sendmail` runs one message in lock-step and cannot pipeline (RFC 2920),
so it cannot carry the next envelope behind a body, which is what makes a send fast; and its
`getreply` reads a reply of any number of lines of up to 8 KB each (a 100,000-line 550 becomes
35 MB in memory), accepts a first line that is not a reply at all (code -1), and leaves it to
the caller to know which command a reply answers. So the `_Smtp` subclass below reads every
reply through one bounded reader (also for smtplib's own EHLO, STARTTLS and AUTH), and
`SmtpConnection` drives each transaction itself, as a state machine (RFC 5321 4.1, 4.3.2):

    state       we send                           then expect, per command
    IDLE        MAIL, RCPT, DATA (pipelined:      MAIL 250 | RCPT 250 251 | DATA 354,
                one write)                        or 4xx/5xx for any of them -> RSET -> IDLE
    BODY_DUE    the body, "." (+ the next MAIL,   end of data 2xx | 4xx | 5xx -> IDLE, or
                RCPT, DATA behind it)             ENVELOPE when the next envelope went along
    ENVELOPE    -                                 the next envelope's replies, as from IDLE
    CLOSED      -                                 after 421, a lost link, or out of step

`_pending` holds the commands whose replies are still due, in order; each reply read is
matched to the first of them and checked against what that command may get (`_ALLOWED`).
Anything else - a 250 to DATA, a reply nobody asked for, a garbled or over-long line - means
the connection is out of step: it is closed at once, and every message whose final reply had
not arrived on it counts as not delivered (the engine sends it again on a fresh connection).
421 closes the session at any step. Each read has a time-out (`SmtpParams.timeout`, and the
longer `data_timeout` for the reply to a body), so a server that goes silent costs minutes,
not hours.
"""

from __future__ import annotations

import base64
import enum
import re
import select
import smtplib
import socket
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from nieuwsbrief.addresses import is_loopback_host
from nieuwsbrief.errors import ConfigError, DeliveryError
from nieuwsbrief.i18n import _
from nieuwsbrief.model import SECURITIES, Security
from nieuwsbrief.sending.transport import ConnectionLost, Outcome, OutOfStep, Reply, TimedOut

# RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF. Some servers write
# longer ones; twice that is tolerated, anything longer is not a reply we can trust.
MAX_REPLY_LINE = 1024
# RFC 5321 sets no limit on the lines of a reply; real ones have a few (EHLO: a few dozen).
MAX_REPLY_LINES = 1000
QUIT_TIMEOUT = 5.0  # seconds to wait for the goodbye: nothing depends on it
_REPLY_LINE_RE = re.compile(rb"[2-5][0-5][0-9](?:[ -]|\r?\n)")


@dataclass(frozen=True)
class SmtpParams:
    """How to reach and log in to the SMTP server, and how long to wait for it (seconds)."""

    host: str
    port: int
    security: Security = "starttls"
    user: str | None = None
    password: str = field(default="", repr=False)
    helo_name: str | None = None
    timeout: float = 60.0  # for the greeting and each reply
    connect_timeout: float = 30.0
    data_timeout: float = 120.0  # for the reply to a message body
    # None: the system's trusted CAs with hostname checks (ssl.create_default_context()).
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    max_per_connection: int = 0
    pipelining: bool = True  # False: never pipeline, even if the server offers it

    def __post_init__(self) -> None:
        if self.security not in SECURITIES:
            raise ConfigError(
                _("SMTP security must be one of {choices}, not {security!r}").format(
                    choices=", ".join(SECURITIES), security=self.security
                )
            )
        if self.max_per_connection < 0:
            raise ConfigError(_("SMTP max messages per connection cannot be negative"))
        if min(self.timeout, self.connect_timeout, self.data_timeout) <= 0:
            raise ConfigError(_("SMTP time-outs must be positive"))

    @property
    def where(self) -> str:
        """Return 'host:port' for messages."""
        return f"{self.host}:{self.port}"

    def secrets(self) -> tuple[str, ...]:
        """Return the password and each form AUTH sends it in, to redact from server replies."""
        if not self.password:
            return ()
        user, password = (self.user or "").encode(), self.password.encode()
        forms = [b"\0" + user + b"\0" + password, user + b"\0" + password, password]
        encoded = [base64.b64encode(form).decode("ascii") for form in forms]
        return (*encoded, self.password)


def check_auth_allowed(params: SmtpParams) -> None:
    """Refuse to send a password over a connection without TLS, except to this machine."""
    if params.user and params.security == "none" and not is_loopback_host(params.host):
        raise DeliveryError(
            _(
                "refusing to send the password for {user!r} to {where} "
                "without TLS; use security 'starttls' (port 587) or 'ssl' "
                "(port 465)"
            ).format(user=params.user, where=params.where)
        )


def _tls_problem(where: str, exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _(
            "{where} presented a TLS certificate that cannot be trusted "
            "({verify_message}); check the host name: it must match the "
            "certificate"
        ).format(where=where, verify_message=exc.verify_message)
    return _("TLS with {where} failed ({reason}); check the port and security setting").format(
        where=where, reason=exc.reason or exc
    )


# --------------------------------------------------------------------------------------------
# Reading replies: bounded, checked, with a time-out per read


class _ReplyTooLong(Exception):
    """A reply went on past MAX_REPLY_LINES; carries the code and the lines read so far."""

    def __init__(self, code: int, lines: list[bytes]) -> None:
        super().__init__(
            _("a reply of more than {MAX_REPLY_LINES} lines").format(
                MAX_REPLY_LINES=MAX_REPLY_LINES
            )
        )
        self.code = code
        self.lines = lines


class _Reader:
    """Replies from the socket smtplib connected, read through our own buffer.

    Our own buffer, not smtplib's `file`, so that we can tell whether the server sent
    something nobody asked for (`unsolicited`) without blocking. The socket keeps one time-out,
    `tick` (changing it is a system call, twice per message otherwise); a longer wait, for the
    reply to a body, is made of several ticks.
    """

    def __init__(self, tick: float) -> None:
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.tick = tick
        self.ticking = False  # the socket's time-out is not `tick` (a long wait was cut short)

    def unsolicited(self, sock: socket.socket, *, poll: bool) -> bool:
        """Tell whether anything is waiting to be read; never blocks.

        Without `poll`, only what has already been read (no system call: on the hot path of a
        pipelined send, every call that releases the GIL costs a wait to get it back).
        """
        if self.buffer:
            return True
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        if not poll:
            return False
        readable, _, _ = select.select([sock], [], [], 0)  # also true at end of file
        return bool(readable)

    def reply(self, sock: socket.socket, timeout: float) -> tuple[int, list[bytes]]:
        """Read one reply: every line a valid code, the same on each; its text lines."""
        if sock is not self.sock or self.ticking:
            self._adopt(sock)
        buffer = self.buffer
        code = 0
        lines: list[bytes] = []
        start = 0  # where the line being read begins in the buffer
        waited = 0.0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                if len(buffer) - start >= MAX_REPLY_LINE:
                    raise OutOfStep(
                        _("a reply line longer than {MAX_REPLY_LINE} bytes").format(
                            MAX_REPLY_LINE=MAX_REPLY_LINE
                        )
                    )
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    waited += sock.gettimeout() or 0.0
                    if waited >= timeout:
                        raise
                    sock.settimeout(min(self.tick, timeout - waited))
                    self.ticking = True
                    continue
                if not chunk:
                    raise smtplib.SMTPServerDisconnected(_("the server closed the connection"))
                buffer += chunk
                continue
            if end - start >= MAX_REPLY_LINE:
                raise OutOfStep(
                    _("a reply line longer than {MAX_REPLY_LINE} bytes").format(
                        MAX_REPLY_LINE=MAX_REPLY_LINE
                    )
                )
            line = bytes(buffer[start : end + 1])
            if _REPLY_LINE_RE.match(line) is None or (code and int(line[:3]) != code):
                shown = Reply.parse(0, line[:80]).text or repr(line[:80])
                raise OutOfStep(_("not an SMTP reply: {shown!r}").format(shown=shown))
            code = int(line[:3])
            lines.append(line[4:].strip(b" \t\r\n"))
            start = end + 1
            if line[3:4] != b"-":
                del buffer[:start]
                return code, lines
            if len(lines) >= MAX_REPLY_LINES:
                raise _ReplyTooLong(code, lines)

    def _adopt(self, sock: socket.socket) -> None:
        if sock is not self.sock and self.buffer:
            # Plain text that came with STARTTLS's 220 must not pass for TLS (CVE-2011-0411).
            raise OutOfStep(_("the server sent more than its reply to STARTTLS"))
        sock.settimeout(self.tick)
        self.sock, self.ticking = sock, False


class _Smtp(smtplib.SMTP):
    """smtplib.SMTP reading every reply, its own included, through one bounded `_Reader`."""

    def __init__(self, params: SmtpParams) -> None:
        self._bound(params)
        super().__init__(params.host, params.port, params.helo_name, timeout=params.connect_timeout)

    def _bound(self, params: SmtpParams) -> None:
        self.reader = _Reader(min(params.timeout, params.data_timeout))
        self.reply_timeout = params.timeout  # the connect time-out is smtplib's `timeout`

    def socket(self) -> socket.socket:
        """Return the connected socket; raise SMTPServerDisconnected if there is none."""
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        return self.sock

    def getreply(self) -> tuple[int, bytes]:
        """Read a reply for smtplib (EHLO, STARTTLS, AUTH, QUIT); a too-long one is refused."""
        try:
            code, lines = self.reader.reply(self.socket(), self.reply_timeout)
        except _ReplyTooLong as exc:
            raise OutOfStep(str(exc)) from None
        return code, b"\n".join(lines)


class _SmtpSsl(_Smtp, smtplib.SMTP_SSL):
    """The same over implicit TLS (port 465)."""

    def __init__(self, params: SmtpParams, context: ssl.SSLContext) -> None:
        self._bound(params)
        smtplib.SMTP_SSL.__init__(
            self,
            params.host,
            params.port,
            params.helo_name,
            timeout=params.connect_timeout,
            context=context,
        )


# --------------------------------------------------------------------------------------------
# The state machine


class Step(enum.Enum):
    """A command whose reply is due, named as messages show it."""

    MAIL = "MAIL FROM"
    RCPT = "RCPT TO"
    DATA = "DATA"
    BODY = "the end of the message"
    RSET = "RSET"


def _step_name(step: Step) -> str:
    """Name `step` in the user's language (the commands are SMTP's words, never translated)."""
    return _("the end of the message") if step is Step.BODY else step.value


# The successful replies each command may get; 4xx and 5xx are allowed for every one of them.
_ALLOWED: dict[Step, tuple[int, ...]] = {
    Step.MAIL: (250,),
    Step.RCPT: (250, 251),
    Step.DATA: (354,),
    Step.BODY: tuple(range(200, 300)),
    Step.RSET: (250,),
}


# What a successful MAIL, RCPT, DATA or RSET reply is taken as: only its code matters.
_GOING_ON = {code: Reply(code, "", "") for code in (250, 251, 354)}


class State(enum.Enum):
    """Where the client is in the session (see the module docstring)."""

    IDLE = "idle"
    ENVELOPE = "envelope sent"
    BODY_DUE = "body due"
    CLOSED = "closed"


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


class SmtpConnection:
    """One authenticated SMTP session that sends many messages, one recipient each."""

    def __init__(self, params: SmtpParams, smtp: _Smtp) -> None:
        self.params = params
        self._smtp: _Smtp | None = smtp
        self.pipelining = params.pipelining and bool(smtp.has_extn("pipelining"))
        self.smtputf8 = smtp.has_extn("smtputf8")
        self.state = State.IDLE
        self._pending: deque[Step] = deque()  # commands sent whose replies are still due
        self._secrets = params.secrets()
        # After finish(then=...): the refusal of the next envelope that was never sent.
        self._refused_next: Reply | None = None

    @classmethod
    def open(cls, params: SmtpParams) -> SmtpConnection:
        """Connect, secure and log in; raise DeliveryError naming the server if that fails."""
        check_auth_allowed(params)
        where = params.where
        secrets = params.secrets()
        # Made only when TLS is used: loading the system's CAs costs ~0.1 s of CPU.
        context = params.ssl_context
        if context is None and params.security != "none":
            context = ssl.create_default_context()
        smtp: _Smtp | None = None
        try:
            # Connects and reads the greeting (raising SMTPConnectError unless it is 220).
            if params.security == "ssl":
                assert context is not None
                smtp = _SmtpSsl(params, context)
            else:
                smtp = _Smtp(params)
            smtp.ehlo_or_helo_if_needed()
            if params.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(
                        _(
                            "{where} does not offer STARTTLS; use security 'ssl' if it "
                            "expects TLS from the start (port 465), or ask the provider"
                        ).format(where=where)
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if params.user:
                if not smtp.has_extn("auth"):
                    raise DeliveryError(
                        _(
                            "{where} does not offer a login (no AUTH after EHLO); check "
                            "the port and security settings"
                        ).format(where=where)
                    )
                smtp.login(params.user, params.password)
            return cls(params, smtp)
        except DeliveryError:
            _quietly_close(smtp)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            _quietly_close(smtp)
            reply = Reply.parse(exc.smtp_code, exc.smtp_error, secrets)
            raise DeliveryError(
                _(
                    "{where} refused the login for {user!r} ({reply}); check the "
                    "user name and password"
                ).format(where=where, user=params.user, reply=reply)
            ) from None
        except smtplib.SMTPConnectError as exc:
            _quietly_close(smtp)
            reply = Reply.parse(exc.smtp_code, exc.smtp_error, secrets)
            raise DeliveryError(
                _("{where} refused the connection ({reply})").format(where=where, reply=reply)
            ) from None
        except smtplib.SMTPResponseException as exc:
            _quietly_close(smtp)
            reply = Reply.parse(exc.smtp_code, exc.smtp_error, secrets)
            raise DeliveryError(
                _("{where} answered {reply} while we were setting up the connection").format(
                    where=where, reply=reply
                )
            ) from None
        except OutOfStep as exc:
            _quietly_close(smtp, quit=False)
            problem = Reply.parse(0, str(exc), secrets).text
            raise DeliveryError(
                _(
                    "{where} does not speak SMTP as it should ({problem}); check the host and port"
                ).format(where=where, problem=problem)
            ) from None
        except ssl.SSLError as exc:
            _quietly_close(smtp)
            raise DeliveryError(_tls_problem(where, exc)) from None
        except TimeoutError:
            _quietly_close(smtp, quit=False)
            raise DeliveryError(
                _(
                    "{where} did not answer within {connect_timeout:g} s "
                    "(connect) or {timeout:g} s (each reply); check the host, "
                    "port and network"
                ).format(
                    where=where, connect_timeout=params.connect_timeout, timeout=params.timeout
                )
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            _quietly_close(smtp, quit=False)
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise DeliveryError(
                _("{where} cannot be reached ({detail}); check the host, port and network").format(
                    where=where, detail=detail or type(exc).__name__
                )
            ) from None

    @property
    def is_open(self) -> bool:
        """Whether another message can go over this connection."""
        return self.state is not State.CLOSED

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
        reset (RSET) or, after 421, closed. Raise ConnectionLost (or OutOfStep) if the server
        went away or stopped making sense.
        """
        self._expect(State.IDLE)
        commands = self._envelope(sender, recipient)
        if isinstance(commands, Reply):
            return commands
        smtp = self._live()
        if smtp.reader.unsolicited(smtp.socket(), poll=True):
            raise self._out_of_step(_("the server sent something nobody asked for"))
        if not self.pipelining:
            return self._lock_step(commands)
        self._write(commands)
        self._pending.extend((Step.MAIL, Step.RCPT, Step.DATA))
        self.state = State.ENVELOPE
        return self._envelope_replies()

    def finish(
        self,
        data: bytes,
        then: tuple[str, str] | None = None,
        meanwhile: Callable[[], None] | None = None,
    ) -> Reply:
        """Send the body of the open transaction; return the server's final reply.

        With `then` = (sender, recipient), which needs PIPELINING, that next transaction's MAIL,
        RCPT and DATA go out right behind the body; call pipelined() for their replies unless
        the connection closed (421). `meanwhile()` runs after the write, while the reply is on
        its way. Raise ConnectionLost if the body was not acknowledged.
        """
        self._expect(State.BODY_DUE)
        smtp = self._live()
        if smtp.reader.unsolicited(smtp.socket(), poll=False):
            raise self._out_of_step(_("the server sent something after 354, before the body"))
        payload = _dot_stuff(data)
        steps = [Step.BODY]
        self._refused_next = None
        if then is not None:
            if not self.pipelining:
                raise RuntimeError("the server does not offer PIPELINING")
            commands = self._envelope(*then)
            if isinstance(commands, Reply):
                self._refused_next = commands
            else:
                payload += commands
                steps += [Step.MAIL, Step.RCPT, Step.DATA]
        self._write(payload)
        self._pending.extend(steps)
        if meanwhile is not None:
            meanwhile()
        final = self._read(Step.BODY)
        if not self.is_open:
            return final
        if len(steps) > 1:
            self.state = State.ENVELOPE
        else:
            self.state = State.IDLE
        return final

    def pipelined(self) -> Reply | None:
        """Read the replies to the envelope that finish(then=...) sent; like begin()."""
        refused, self._refused_next = self._refused_next, None
        if refused is not None and self.state is State.IDLE:
            return refused
        self._expect(State.ENVELOPE)
        return self._envelope_replies()

    # -- the steps ----------------------------------------------------------------------------

    def _envelope(self, sender: str, recipient: str) -> bytes | Reply:
        """Return MAIL, RCPT and DATA as one write, or the reason they cannot be sent."""
        if any(c in address for address in (sender, recipient) for c in "\r\n<> \0"):
            # Addresses arrive validated; this guards the command line itself.
            return Reply.local(
                _("address not usable in an SMTP command: {recipient!r}").format(
                    recipient=recipient
                )
            )
        options = ""
        if not (sender.isascii() and recipient.isascii()):
            if not self.smtputf8:
                address = recipient if not recipient.isascii() else sender
                return Reply.local(
                    _("{address} needs SMTPUTF8, which {where} does not offer").format(
                        address=address, where=self.params.where
                    )
                )
            options = " SMTPUTF8"
        return f"MAIL FROM:<{sender}>{options}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()

    def _lock_step(self, commands: bytes) -> Reply | None:
        """Send MAIL, RCPT and DATA one at a time; None on 354."""
        for command, step in zip(
            commands.splitlines(keepends=True), (Step.MAIL, Step.RCPT, Step.DATA), strict=True
        ):
            self._write(command)
            self._pending.append(step)
            self.state = State.ENVELOPE
            reply = self._read(step)
            if not self.is_open:
                return reply
            if reply.code not in _ALLOWED[step]:
                self._reset()
                return reply
        self.state = State.BODY_DUE
        return None

    def _envelope_replies(self) -> Reply | None:
        """Read the replies to a pipelined MAIL, RCPT, DATA; None on 250, 250, 354.

        RFC 2920 3.1: the client MUST check every reply of the batch.
        """
        refused: Reply | None = None
        for step in (Step.MAIL, Step.RCPT, Step.DATA):
            reply = self._read(step)
            if not self.is_open:
                return reply
            if reply.code in _ALLOWED[step]:
                if step is Step.DATA and refused is not None:
                    # 354 although MAIL or RCPT was refused: the server would take a body it
                    # should not. Hang up (without ".") rather than send anything more.
                    self._drop()
                    return refused
                continue
            refused = refused or reply
        if refused is None:
            self.state = State.BODY_DUE
        else:
            self.state = State.IDLE
            self._reset()
        return refused

    def _reset(self) -> None:
        """RSET after a refusal; a connection that cannot be reset is dropped."""
        try:
            self._write(b"RSET\r\n")
            self._pending.append(Step.RSET)
            reply = self._read(Step.RSET)
        except ConnectionLost:
            return  # already dropped
        if reply.code != 250:
            self._drop()
        else:
            self.state = State.IDLE

    def _read(self, step: Step) -> Reply:
        """Read the reply to `step`, the first command still due; check it is allowed."""
        smtp = self._live()
        if not self._pending or self._pending[0] is not step:
            raise RuntimeError(f"reading a reply to {step.value} that is not due")
        timeout = self.params.data_timeout if step is Step.BODY else self.params.timeout
        try:
            code, lines = smtp.reader.reply(smtp.socket(), timeout)
        except _ReplyTooLong as exc:
            reply = self._reply(exc.code, exc.lines)
            if reply.code >= 400:
                # A refusal, plainly, but we cannot read on to the next reply: hang up.
                self._drop()
                return reply
            raise self._out_of_step(
                _("{reply} in answer to {step}, longer than we read").format(
                    reply=reply, step=_step_name(step)
                )
            ) from None
        except TimeoutError:
            raise self._timed_out(
                _("no reply to {step} within {timeout:g} s").format(
                    step=_step_name(step), timeout=timeout
                )
            ) from None
        except OutOfStep as exc:
            raise self._out_of_step(
                _("{exc} in answer to {step}").format(exc=exc, step=_step_name(step))
            ) from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            problem = _("connection lost waiting for the reply to {step} ({exc})").format(
                step=_step_name(step), exc=exc
            )
            raise self._lost(problem) from None
        self._pending.popleft()
        if step is not Step.BODY and code in _ALLOWED[step]:
            return _GOING_ON[code]  # the usual case, three times per message: text unused
        reply = self._reply(code, lines)
        if code == 421:  # service closing the transmission channel
            self._drop()
        elif code not in _ALLOWED[step] and code < 400:
            expected = " or ".join(str(c) for c in _ALLOWED[step][:2])
            raise self._out_of_step(
                _("{reply} in answer to {step} (expected {expected})").format(
                    reply=reply, step=_step_name(step), expected=expected
                )
            )
        return reply

    def _reply(self, code: int, lines: list[bytes]) -> Reply:
        if code == 250 and len(lines) == 1 and len(lines[0]) < 100 and not self._secrets:
            # The usual case, once per message: skip the generic parse.
            text = lines[0].decode("utf-8", "replace")
            enhanced, _, rest = text.partition(" ")
            if enhanced[:2] == "2." and enhanced.count(".") == 2:
                return Reply(code, enhanced, rest.strip())
        return Reply.parse(code, b"\n".join(lines), self._secrets)

    def _write(self, data: bytes) -> None:
        sock = self._live().socket()
        try:
            sock.sendall(data)  # within the reader's tick: the shorter time-out
        except TimeoutError:
            raise self._timed_out(
                _("the server took no data for {seconds:g} s").format(seconds=sock.gettimeout())
            ) from None
        except OSError as exc:
            raise self._lost(
                _("connection lost while sending ({strerror})").format(strerror=exc.strerror or exc)
            ) from None

    def _expect(self, state: State) -> None:
        if self.state is State.CLOSED:
            raise ConnectionLost(
                _("connection to {where} is closed").format(where=self.params.where)
            )
        if self.state is not state:
            raise RuntimeError(f"SMTP client is {self.state.value}, not {state.value}")

    def _live(self) -> _Smtp:
        smtp = self._smtp
        if smtp is None or smtp.sock is None:
            self._drop()
            raise ConnectionLost(
                _("connection to {where} is closed").format(where=self.params.where)
            )
        return smtp

    def _lost(self, problem: str) -> ConnectionLost:
        self._drop()
        return ConnectionLost(
            _("{where}: {problem}").format(where=self.params.where, problem=problem)
        )

    def _timed_out(self, problem: str) -> TimedOut:
        self._drop()
        return TimedOut(_("{where}: {problem}").format(where=self.params.where, problem=problem))

    def _out_of_step(self, problem: str) -> OutOfStep:
        self._drop()
        return OutOfStep(
            _("{where} is out of step: {problem}").format(where=self.params.where, problem=problem)
        )

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        self.state = State.CLOSED
        self._pending.clear()
        _quietly_close(smtp, quit=False)

    def close(self) -> None:
        """Send QUIT and close the socket; never raises.

        In the middle of a transaction (after 354, or with pipelined commands unanswered) it
        closes without QUIT or ".": the server then discards the unfinished message.
        """
        if self.state is not State.IDLE:
            self._drop()
            return
        smtp, self._smtp = self._smtp, None
        self.state = State.CLOSED
        _quietly_close(smtp)


def _quietly_close(smtp: _Smtp | None, *, quit: bool = True) -> None:
    if smtp is None:
        return
    try:
        if quit and smtp.sock is not None:
            smtp.reply_timeout = min(smtp.reply_timeout, QUIT_TIMEOUT)
            smtp.quit()
    except (smtplib.SMTPException, ConnectionLost, OSError):
        pass
    finally:
        smtp.close()


class SmtpTransport:
    """SMTP as a transport: each channel is its own authenticated connection."""

    def __init__(self, params: SmtpParams) -> None:
        if params.helo_name is None:
            # Resolve once here rather than in every smtplib.SMTP() (getfqdn may hit DNS).
            params = replace(params, helo_name=socket.getfqdn())
        if params.ssl_context is None and params.security != "none":
            # One context for all connections (an SSLContext may be shared between threads).
            params = replace(params, ssl_context=ssl.create_default_context())
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
        login = (
            _("user {user}").format(user=self.params.user) if self.params.user else _("no login")
        )
        return f"{self.params.where} ({self.params.security}, {login})"


__all__ = [
    "MAX_REPLY_LINE",
    "MAX_REPLY_LINES",
    "SECURITIES",
    "ConnectionLost",
    "OutOfStep",
    "Outcome",
    "Security",
    "SmtpConnection",
    "SmtpParams",
    "SmtpTransport",
    "TimedOut",
    "check_auth_allowed",
]
