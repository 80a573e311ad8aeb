"""`nieuwsbrief unsubscribe-server` as a real process under load: a crowd of clicks, slowloris.

The server runs with a short time-out (`--timeout 2`) so the slow-connection test takes seconds.
"""

from __future__ import annotations

import http.client
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import TEST_SECRET
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from nieuwsbrief.unsubscribe.tokens import make_token, recipient_id

URL = "https://www.bureau-kennis.net/afmelden/{token}"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TIMEOUT = 2  # seconds, the server's --timeout
THREADS = 8


@dataclass
class Endpoint:
    host: str
    port: int
    db: SuppressionList
    process: subprocess.Popen[str]

    def one_click(self, address: str) -> int:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            path = URL.replace("https://www.bureau-kennis.net", "").format(
                token=make_token(TEST_SECRET, address)
            )
            conn.request("POST", path, body=ONE_CLICK, headers=FORM)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def threads(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"^Threads:\s+(\d+)", status, re.MULTILINE)
        assert match
        return int(match.group(1))


def addresses(count: int) -> list[str]:
    return [f"lid{n:04d}@gemeente.nl" for n in range(count)]


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    db_path = tmp_path / "suppression.sqlite"
    db = SuppressionList(db_path)
    db.register((recipient_id(TEST_SECRET, a), a) for a in addresses(400))
    env = {
        **os.environ,
        "NIEUWSBRIEF_SUPPRESSION_DB": str(db_path),
        "NIEUWSBRIEF_UNSUBSCRIBE_URL": URL,
    }
    command = [sys.executable, "-m", "nieuwsbrief", "unsubscribe-server", "--port", "0",
               "--timeout", str(TIMEOUT), "--threads", str(THREADS)]  # fmt: skip
    stderr_path = tmp_path / "server-stderr"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=tmp_path
        )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        match = re.search(r" on http://([\d.]+):(\d+)/ ", first_line)
        assert match, first_line + stderr_path.read_text()
        yield Endpoint(match.group(1), int(match.group(2)), db, process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        finally:
            process.kill()
    log = stderr_path.read_text()
    assert "Traceback" not in log, log
    assert "afmeldserver gestopt" in log


def test_a_crowd_of_300_one_click_posts_150_at_a_time_are_all_recorded(
    endpoint: Endpoint,
) -> None:
    crowd = addresses(300)
    statuses: dict[str, int | str] = {}
    committed: dict[str, bool] = {}
    barrier = threading.Barrier(150)

    def click(address: str) -> None:
        barrier.wait()  # 150 connections at the same moment
        try:
            statuses[address] = endpoint.one_click(address)
        except OSError as exc:  # a reset or refused connection is a lost unsubscribe
            statuses[address] = type(exc).__name__
        # The 200 came after the commit: another connection sees the row at once.
        committed[address] = endpoint.db.is_suppressed(address)

    for start in (0, 150):
        clients = [threading.Thread(target=click, args=(a,)) for a in crowd[start : start + 150]]
        for client in clients:
            client.start()
        for client in clients:
            client.join()

    assert [a for a in crowd if statuses[a] != 200] == []
    assert all(committed[a] for a in crowd)
    entries = endpoint.db.entries()
    assert sorted(e.address for e in entries) == crowd
    assert {e.source for e in entries} == {"one-click"}


def test_slow_and_idle_connections_are_closed_and_others_still_get_through(
    endpoint: Endpoint,
) -> None:
    slow: dict[socket.socket, float] = {}  # socket -> when it was opened
    idle: dict[socket.socket, float] = {}
    token = make_token(TEST_SECRET, "lid0000@gemeente.nl")
    for n in range(250):
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=10)
        if n < 200:  # slowloris: a request that never ends, one byte at a time
            sock.sendall(f"POST /afmelden/{token} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode())
            slow[sock] = time.monotonic()
        else:  # connected, says nothing
            idle[sock] = time.monotonic()

    # While all 250 are held, a real click still gets its answer and is recorded.
    assert endpoint.one_click("lid0001@gemeente.nl") == 200
    assert endpoint.db.is_suppressed("lid0001@gemeente.nl")
    assert endpoint.threads() <= THREADS + 4  # not a thread per connection

    opened = {**slow, **idle}
    closed: dict[socket.socket, float] = {}
    selector = selectors.DefaultSelector()
    for sock in opened:
        selector.register(sock, selectors.EVENT_READ)
    give_up = time.monotonic() + 30 * TIMEOUT  # far beyond the time-out: the server never closed
    while len(closed) < len(opened) and time.monotonic() < give_up:
        for key, _ in selector.select(timeout=0.5):
            assert isinstance(key.fileobj, socket.socket)
            sock = key.fileobj
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                closed[sock] = time.monotonic()
                selector.unregister(sock)
        for sock in slow:
            if sock not in closed:
                try:
                    sock.send(b"x")  # keep trickling: active, but never a whole request
                except OSError:
                    closed[sock] = time.monotonic()
                    selector.unregister(sock)
    for sock in opened:
        sock.close()

    assert len(closed) == len(opened), f"{len(opened) - len(closed)} connections never closed"
    # Closed by the time-out, not before it.
    assert min(closed[s] - opened[s] for s in opened) >= TIMEOUT - 0.5
    # And the server is still fine afterwards.
    assert endpoint.one_click("lid0002@gemeente.nl") == 200
