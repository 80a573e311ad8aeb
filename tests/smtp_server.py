"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 with TLS, AUTH, PIPELINING and faults.

    with SmtpServer(tls="starttls", auth=("nieuwsbrief", "geheim")) as server:
        ... send to server.host:server.port, trusting server.client_context ...
        assert server.recipients() == ["a@example.nl"]

Or use the pytest fixtures at the bottom (`smtp_server`, `make_smtp_server`).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

TlsMode = Literal["starttls", "ssl"] | None


@dataclass(frozen=True)
class Fault:
    """Answer `reply` for a recipient, the first `times` attempts (None: always)."""

    reply: str
    times: int | None = None
    stage: Literal["rcpt", "data"] = "rcpt"


@dataclass(frozen=True)
class Received:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # after dot-unstuffing, CRLF line ends as sent
    session: int  # which connection brought it (1, 2, ...)
    pipelined: bool  # RCPT and DATA had already arrived when MAIL was handled
    chained: bool = False  # the next MAIL had already arrived when this body ended (RFC 2920)


@functools.cache
def _certificate_authority() -> trustme.CA:
    """Return the test CA that issues the server certificate; made once per run."""
    return trustme.CA()


@functools.cache
def _certificates() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Return (server context, client context trusting the test CA); made once per run."""
    ca = _certificate_authority()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Handler:
    """aiosmtpd handler hooks; all state lives on the SmtpServer."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_EHLO(
        self,
        server: _Smtp,
        session: Session,
        envelope: _Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if not getattr(server, "nb_session", 0):
            server.nb_session = self.owner._new_session()
            server.nb_messages = 0
        if self.owner.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: _Smtp, session: Session, envelope: _Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.owner._mail_fault()
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        # Pipelined clients send RCPT and DATA in the same write as MAIL (RFC 2920).
        envelope.nb_pipelined = b"RCPT" in server.buffered().upper()
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: _Smtp, session: Session, envelope: _Envelope, address: str, options: list[str]
    ) -> str:
        if self.owner.before_rcpt is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.owner.before_rcpt, address)
        reply = self.owner._fault(address, "rcpt")
        if reply:
            if reply.startswith("421"):
                server.loop.call_soon(server.live_transport().close)  # after the reply is written
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: _Smtp, session: Session, envelope: _Envelope) -> str:
        server.nb_messages += 1
        owner = self.owner
        # A client that pipelines across transactions sends the next MAIL right behind the body.
        chained = server.buffered()[:10].upper() == b"MAIL FROM:"
        content = envelope.content
        assert isinstance(content, bytes)  # decode_data is off
        message = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            # headers_only: keep the header block, so 10,000 messages do not fill the memory.
            data=content.split(b"\r\n\r\n", 1)[0] if owner.headers_only else content,
            session=server.nb_session,
            pipelined=envelope.nb_pipelined,
            chained=chained,
        )
        if owner.drop_after is not None and server.nb_messages > owner.drop_after:
            # Hang up without acknowledging: the client must assume it was not delivered.
            with owner._lock:
                owner.drops += 1
                owner.drops_chained += chained
                if owner.drop_keeps_message:
                    owner._messages.append(message)
                    owner._changed.notify_all()  # (the condition uses this same lock)
            server.live_transport().abort()
            await asyncio.sleep(5)  # cancelled by connection_lost long before this ends
            return "421 4.4.2 not reached"
        for rcpt in envelope.rcpt_tos:
            reply = owner._fault(rcpt, "data")
            if reply:
                if reply.startswith("421"):
                    server.loop.call_soon(server.live_transport().close)
                return reply
        with owner._changed:
            owner._messages.append(message)
            owner._changed.notify_all()
        return f"250 2.0.0 Ok: queued as {len(owner._messages)}"


class _Envelope(Envelope):
    nb_pipelined = False


class _Smtp(SMTP):
    nb_session = 0
    nb_messages = 0

    def _create_envelope(self) -> _Envelope:
        return _Envelope()

    def buffered(self) -> bytes:
        """What the client sent that the server has not read yet (pipelined commands)."""
        return bytes(self._reader._buffer)  # type: ignore[attr-defined]  # StreamReader's own

    def live_transport(self) -> asyncio.Transport:
        transport = self.transport
        assert isinstance(transport, asyncio.Transport)
        return transport


class _Controller(Controller):
    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # "Requiring AUTH while not requiring TLS": intended for implicit TLS and loopback.
            warnings.simplefilter("ignore", UserWarning)
            return _Smtp(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """A running aiosmtpd on 127.0.0.1 and a free port, recording what it receives."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        tls: TlsMode = None,
        auth: tuple[str, str] | None = None,
        pipelining: bool = False,
        faults: dict[str, Fault] | None = None,
        drop_after: int | None = None,
        drop_keeps_message: bool = False,
        mail_faults: dict[int, str] | None = None,
        headers_only: bool = False,
        before_rcpt: Callable[[str], object] | None = None,
    ) -> None:
        """Configure the server; `drop_after=N` hangs up on the N+1th message of each session.

        `before_rcpt(address)` runs (in a worker thread) before each RCPT TO is answered: a test
        can hold the reply there until something it waits for has happened.

        With `drop_keeps_message` that unacknowledged message is still recorded as received,
        as a real server that crashed after queueing it would. `mail_faults={3: "451 ..."}`
        answers the third MAIL FROM the server sees (counted over all sessions) with that reply.
        """
        self.tls = tls
        self.auth = auth
        self.pipelining = pipelining
        self.faults = dict(faults or {})
        self.drop_after = drop_after
        self.drop_keeps_message = drop_keeps_message
        self.drops = 0
        self.drops_chained = 0  # hang-ups while the next envelope was already waiting
        self.mail_faults = dict(mail_faults or {})
        self.headers_only = headers_only
        self.before_rcpt = before_rcpt
        self._mails = 0
        self.port = 0
        self.client_context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified on every message received
        self._messages: list[Received] = []
        self._sessions = 0
        self._attempts: Counter[tuple[str, str]] = Counter()
        self._controller: _Controller | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> SmtpServer:
        """Start listening; return self."""
        kwargs: dict[str, Any] = {"server_hostname": "mx.test", "ready_timeout": 5.0}
        if self.tls:
            server_ctx, self.client_context = _certificates()
            if self.tls == "ssl":
                kwargs["ssl_context"] = server_ctx
            else:
                kwargs.update(tls_context=server_ctx, require_starttls=True)
        if self.auth:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                # aiosmtpd only recognises TLS it negotiated itself (STARTTLS); with implicit
                # TLS the whole session is encrypted anyway.
                auth_require_tls=self.tls == "starttls",
            )
        self.port = self.port or _free_port()  # a preset port: restart "the same" server
        self._controller = _Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop the server thread."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what happened ---------------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        """Every message received so far, in arrival order."""
        with self._lock:
            return list(self._messages)

    def wait_for_messages(self, count: int, timeout: float = 60.0) -> bool:
        """Wait until `count` messages were received (event-driven; `timeout` guards a hang)."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._messages) >= count, timeout)

    @property
    def sessions(self) -> int:
        """How many connections got as far as EHLO/HELO."""
        with self._lock:
            return self._sessions

    def recipients(self) -> list[str]:
        """Every recipient of every received message, in arrival order."""
        return [rcpt for message in self.messages for rcpt in message.rcpt_tos]

    def attempts(self, address: str) -> int:
        """How often RCPT TO named `address`."""
        with self._lock:
            return self._attempts[(address, "rcpt")]

    # -- internals -------------------------------------------------------------------------

    def _new_session(self) -> int:
        with self._lock:
            self._sessions += 1
            return self._sessions

    def _mail_fault(self) -> str | None:
        with self._lock:
            self._mails += 1
            return self.mail_faults.get(self._mails)

    def _fault(self, address: str, stage: str) -> str | None:
        with self._lock:
            self._attempts[(address, stage)] += 1
            fault = self.faults.get(address)
            if fault is None or fault.stage != stage:
                return None
            if fault.times is not None and self._attempts[(address, stage)] > fault.times:
                return None
            return fault.reply

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.auth is not None
        ok = (
            isinstance(data, LoginPassword)
            and (
                data.login.decode(),
                data.password.decode(),
            )
            == self.auth
        )
        return AuthResult(success=ok, handled=False)


# -- pytest fixtures (register them in tests/conftest.py) ------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server on 127.0.0.1 without TLS or AUTH."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def make_smtp_server() -> Iterator[Any]:
    """A factory `make_smtp_server(**options) -> SmtpServer`; every server stops at teardown."""
    servers: list[SmtpServer] = []

    def make(**options: Any) -> SmtpServer:
        server = SmtpServer(**options).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
