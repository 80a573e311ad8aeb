"""A scripted SMTP server on 127.0.0.1 that misbehaves on purpose, and records what it stored.

Not aiosmtpd: a real server library keeps to the protocol, and these tests need one that does
not. Plain sockets, one thread per connection. Well-behaved unless a `Script` says otherwise:

    with HostileSmtpServer(Script(data_reply_250={"b@example.nl"})) as server:
        ... send to server.host:server.port ...
        assert server.stored_recipients() == ["a@example.nl", "c@example.nl"]

`stored` holds exactly the messages the server acknowledged with 250 after their end of data,
which is what a real relay would go on to deliver.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

LONG_LINE = "5.1.1 this mailbox is unavailable, and here is why, at some length " + "x" * 200


@dataclass
class Script:
    """How the server misbehaves. Counters (`drop_mid_body`, ...) count DATA commands answered
    354 over all sessions, from 1."""

    pipelining: bool = True
    smtputf8: bool = False
    # Advertise AUTH PLAIN LOGIN and refuse every login, echoing the AUTH line in the 535.
    echo_auth: bool = False
    # Recipients whose DATA is answered 250 instead of 354 (the body then reads as commands).
    data_reply_250: set[str] = field(default_factory=set)
    # One unsolicited "250" right behind the reply to every body.
    extra_reply_after_body: bool = False
    # From the message after this many, never answer after a body (a black hole).
    black_hole_after: int | None = None
    # Never answer after the body of a message to one of these (a filter that hangs on it).
    black_hole_for: set[str] = field(default_factory=set)
    # Recipient -> number of lines of the 550 that refuses its RCPT.
    long_refusal: dict[str, int] = field(default_factory=dict)
    # Hang up half-way through these bodies.
    drop_mid_body: set[int] = field(default_factory=set)
    # Answer these bodies "421" and close the connection (the message is not stored).
    close_421_after_body: set[int] = field(default_factory=set)
    # Recipient -> the raw bytes to answer its RCPT with (garbage, over-long lines, ...).
    raw_rcpt_reply: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Stored:
    """One message the server acknowledged after its end of data."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # dot-unstuffed, CRLF line ends
    session: int
    mail_options: str = ""


class HostileSmtpServer:
    """The scripted server; `script` may be changed between sends (e.g. to heal it)."""

    host = "127.0.0.1"

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.port = 0
        self.stored: list[Stored] = []
        self.sessions = 0
        self.datas = 0  # DATA commands answered 354, over all sessions
        self.auth_lines: list[str] = []
        self.received: dict[int, list[bytes]] = {}  # session -> every line it read, as sent
        self.ended: set[int] = set()  # sessions whose connection is closed
        self.extra_replies = 0  # unsolicited replies written (Script.extra_reply_after_body)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified when any of the above changes
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> HostileSmtpServer:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        thread = threading.Thread(target=self._accept, name="hostile-smtp", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
            listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def __enter__(self) -> HostileSmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_until(self, condition: Callable[[], bool], timeout: float = 30.0) -> bool:
        """Wait until `condition()` (called with the server's lock held) holds; False if never.

        The server notifies on every line read, message stored, reply and hang-up, so this is
        event-driven: `timeout` only guards against a hang.
        """
        with self._changed:
            return self._changed.wait_for(condition, timeout)

    def stored_recipients(self) -> list[str]:
        """Every recipient of every stored message, in order."""
        with self._lock:
            return [rcpt for message in self.stored for rcpt in message.rcpt_tos]

    # -- the server ------------------------------------------------------------------------

    def _accept(self) -> None:
        while self._listener is not None:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.sessions += 1
                session = self.sessions
                self._connections.append(conn)
            thread = threading.Thread(
                target=self._serve, args=(conn, session), name=f"hostile-smtp-{session}"
            )
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket, session: int) -> None:
        try:
            with conn, conn.makefile("rb") as lines:
                _Session(self, conn, lines, session).run()
        except OSError:
            pass  # the client hung up, as it may
        finally:
            with self._changed:
                self.ended.add(session)
                self._changed.notify_all()


class _Hangup(Exception):
    pass


class _Session:
    def __init__(
        self, server: HostileSmtpServer, conn: socket.socket, lines: BinaryIO, session: int
    ) -> None:
        self.server = server
        self.script = server.script
        self.conn = conn
        self.lines = lines
        self.session = session
        self.mail_from = ""
        self.mail_options = ""
        self.rcpts: list[str] = []

    def say(self, *replies: str) -> None:
        self.conn.sendall(b"".join(r.encode() + b"\r\n" for r in replies))

    def readline(self) -> bytes:
        line: bytes = self.lines.readline(1 << 16)
        if not line:
            raise _Hangup
        with self.server._changed:
            self.server.received.setdefault(self.session, []).append(line)
            self.server._changed.notify_all()
        return line

    def run(self) -> None:
        self.say("220 hostile.test ESMTP scripted")
        try:
            while True:
                if not self.command(self.readline()):
                    return
        except _Hangup:
            return

    def command(self, line: bytes) -> bool:
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        verb = text[:4].upper()
        script = self.script
        if verb == "EHLO":
            extensions = ["8BITMIME", "ENHANCEDSTATUSCODES"]
            extensions += ["PIPELINING"] if script.pipelining else []
            extensions += ["SMTPUTF8"] if script.smtputf8 else []
            extensions += ["AUTH PLAIN LOGIN"] if script.echo_auth else []
            self.say(
                "250-hostile.test", *(f"250-{e}" for e in extensions[:-1]), f"250 {extensions[-1]}"
            )
        elif verb == "HELO":
            self.say("250 hostile.test")
        elif verb == "AUTH":
            self.server.auth_lines.append(text)
            if text.upper().startswith("AUTH LOGIN"):
                self.say("334 UGFzc3dvcmQ6")
                text += " " + self.readline().decode().strip()
            self.say(f"535 5.7.8 Authentication failed for: {text}")
        elif verb == "MAIL":
            address, _, options = text[10:].partition(">")
            self.mail_from, self.mail_options, self.rcpts = address.strip("<"), options.strip(), []
            self.say("250 2.1.0 Ok")
        elif verb == "RCPT":
            rcpt = text[8:].strip().strip("<>")
            lines = script.long_refusal.get(rcpt)
            if rcpt in script.raw_rcpt_reply:
                self.conn.sendall(script.raw_rcpt_reply[rcpt])
            elif lines:
                body = "".join(f"550-{LONG_LINE} ({n})\r\n" for n in range(lines - 1))
                self.conn.sendall(body.encode() + b"550 5.1.1 that was all\r\n")
            else:
                self.rcpts.append(rcpt)
                self.say("250 2.1.5 Ok")
        elif verb == "DATA":
            return self.data()
        elif verb == "RSET":
            self.rcpts = []
            self.say("250 2.0.0 Ok")
        elif verb == "NOOP":
            self.say("250 2.0.0 Ok")
        elif verb == "QUIT":
            self.say("221 2.0.0 Bye")
            return False
        else:
            self.say("500 5.5.2 Unknown command")
        return True

    def data(self) -> bool:
        script = self.script
        if not self.rcpts:
            self.say("554 5.5.1 No valid recipients")
            return True
        if any(rcpt in script.data_reply_250 for rcpt in self.rcpts):
            self.say("250 2.0.0 Ok")  # wrong: the body that follows is taken for commands
            return True
        with self.server._lock:
            self.server.datas += 1
            number = self.server.datas
        self.say("354 End data with <CR><LF>.<CR><LF>")
        body = []
        while True:
            line = self.readline()
            if line in (b".\r\n", b".\n"):
                break
            body.append(line[1:] if line.startswith(b"..") else line)
            if number in script.drop_mid_body and len(body) == 20:
                return False  # hang up half-way through the body
        after = script.black_hole_after
        if (after is not None and number > after) or set(self.rcpts) & script.black_hole_for:
            while True:  # swallow everything, answer nothing, until the client gives up
                self.readline()
        if number in script.close_421_after_body:
            self.say("421 4.3.2 Service shutting down")
            return False
        message = Stored(self.mail_from, tuple(self.rcpts), b"".join(body), self.session,
                         self.mail_options)  # fmt: skip
        with self.server._changed:
            self.server.stored.append(message)
            count = len(self.server.stored)
            self.server._changed.notify_all()
        self.say(f"250 2.0.0 Ok: queued as {count}")
        if script.extra_reply_after_body:
            self.say("250 2.0.0 Ok")  # nobody asked for this one
            with self.server._changed:
                self.server.extra_replies += 1
                self.server._changed.notify_all()
        self.rcpts = []
        return True
