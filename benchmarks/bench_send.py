#!/usr/bin/env python3
"""Benchmark of `nieuwsbrief send` (issue 3, item 9). Not part of the test suite.

Measures, side by side in one run and repeated (median and best of --reps):

  a) `nieuwsbrief send` into Postfix's smtp-sink on loopback, 1,000 and 10,000 recipients,
     with 4 (default) and 8 connections;
  b) mailmerge 2.3.0 (PyPI; its own venv) sending the same composed message to the same list;
  c) Postfix's smtp-source (the ceiling) with as many sessions as nieuwsbrief's connections,
     the same message (-F, identical bytes) and the same count, reusing connections (-d);
  d) nieuwsbrief with 8 connections against this script's own SMTP server that waits
     50 ms before answering each end-of-DATA (advertises PIPELINING): ceiling 8 / 0.05 = 160/s,
     and floor_client.py, an ideal pipelining client, against the same server (the floor);
  e) peak memory (max RSS of the child, from wait4) of `nieuwsbrief send` to 100,000;
  f) with --only distance (issue 14): a), c) and the ideal client through a delaying proxy.

Run:  python3 benchmarks/run.py setup, then python3 benchmarks/run.py send [--quick] [--json FILE]
(the peers in benchmarks/.peers/: this checkout's venv, smtp-sink and smtp-source, mailmerge 2.3.0
in its own venv; --mailmerge PATH or $BENCH_MAILMERGE for another one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ISSUE = REPO / "issues" / "2012-05"
AGENDA = REPO / "issues" / "agenda.yaml"
SENDER = "info@bureau-kennis.net"
FLOOR_CLIENT = Path(__file__).resolve().parent / "floor_client.py"
DEFAULT_MAILMERGE = str(REPO / "benchmarks" / ".peers" / "mailmerge" / "bin" / "mailmerge")
SLOW_DELAY = 0.05  # seconds before the reply to each end-of-DATA
SRC = REPO / "src"  # the nieuwsbrief that is measured (--src to compare another tree)

DELIVERED_RE = re.compile(r"Delivered: (\d+) in ([\d.]+) s")


# --------------------------------------------------------------------------------------------
# The slow SMTP server (d): a thread per session, run as a child process of this script.
#
# Threads with blocking sockets rather than asyncio: an event loop waits in epoll, whose time-out
# is whole milliseconds rounded up, so its "50 ms" was 50.5-51.3 ms; time.sleep is late by tens
# of microseconds. The body is scanned once for its end (the asyncio version searched it again
# at every line that ended in a full stop).

_SLOW_EHLO = (
    b"250-slow.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n250 SIZE 52428800\r\n"
)
_SLOW_REPLIES = {
    b"HELO": b"250 slow.example\r\n",
    b"MAIL": b"250 2.0.0 Ok\r\n",
    b"RCPT": b"250 2.0.0 Ok\r\n",
    b"RSET": b"250 2.0.0 Ok\r\n",
    b"NOOP": b"250 2.0.0 Ok\r\n",
    b"DATA": b"354 End data with <CR><LF>.<CR><LF>\r\n",
    b"QUIT": b"221 2.0.0 Bye\r\n",
}


def _slow_session(conn: socket.socket, delay: float) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray()

    def more() -> bool:
        data = conn.recv(262_144)
        buffer.extend(data)
        return bool(data)

    with conn, contextlib.suppress(OSError):
        conn.sendall(b"220 slow.example ESMTP bench\r\n")
        while True:
            out = bytearray()
            # Answer every command already received in one write, as a pipelining server does.
            while (end := buffer.find(b"\r\n")) < 0:
                if not more():
                    return
            while end >= 0:
                verb = bytes(buffer[:4]).upper()
                del buffer[: end + 2]
                if verb == b"EHLO":
                    out += _SLOW_EHLO
                else:
                    out += _SLOW_REPLIES.get(verb, b"502 5.5.2 Command not recognized\r\n")
                if verb == b"QUIT":
                    conn.sendall(out)
                    return
                if verb == b"DATA":
                    conn.sendall(out)
                    out = bytearray()
                    _slow_body(buffer, more)
                    time.sleep(delay)
                    out += b"250 2.0.0 Ok: queued\r\n"
                end = buffer.find(b"\r\n")
            conn.sendall(out)


def _slow_body(buffer: bytearray, more: Callable[[], bool]) -> None:
    """Take one message body, up to and including its end-of-data line, off `buffer`."""
    if buffer.startswith(b".\r\n"):
        del buffer[:3]
        return
    searched = 0
    while (end := buffer.find(b"\r\n.\r\n", searched)) < 0:
        searched = max(0, len(buffer) - 4)
        if not more():
            raise ConnectionError("the client left in the middle of a body")
    del buffer[: end + 5]


def run_slow_server(port: int, delay: float) -> None:
    """Serve on 127.0.0.1:port until SIGTERM (the default action ends the process)."""
    listener = socket.create_server(("127.0.0.1", port), backlog=1000)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_slow_session, args=(conn, delay), daemon=True).start()


# The delaying TCP proxy (issue 14, item 7): a relay "far away", in front of smtp-sink. Every
# chunk read on one side is written to the other `delay` seconds later, in order, in both
# directions: 2 x delay round trip, no bandwidth limit. Run as a child process of this script.


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(deliver())
    try:
        while data := await reader.read(262_144):
            queue.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    queue.put_nowait((loop.time() + delay, b""))
    with contextlib.suppress(ConnectionError):
        await sender


class RttProbe:
    """Measures the real round trip through the proxy while a run goes on (NOOP, 10 per s).

    The proxy is a Python process on a shared machine: under load its delays run late, so the
    ceiling is also given for the round trip that was actually measured.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RttProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            reader = sock.makefile("rb")
            reader.readline()  # the greeting
            sock.sendall(b"HELO probe.example\r\n")
            reader.readline()
            while not self._stop.wait(0.1):
                started = time.perf_counter()
                sock.sendall(b"NOOP\r\n")
                reader.readline()
                self.samples.append(time.perf_counter() - started)

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


def run_delay_proxy(port: int, upstream: int, delay: float) -> None:
    """Forward 127.0.0.1:port to 127.0.0.1:upstream, delaying each direction; until SIGTERM.

    Each session runs in a process of its own (forked on accept): in one event loop for all
    sessions, the chunks of one waited behind those of the others, and under the load of 4 or 8
    busy sessions a 75 KB message took 22.0-22.4 ms instead of 20.6 ms to go round.
    """
    listener = socket.create_server(("127.0.0.1", port), backlog=1000)
    children: set[int] = set()

    def stop(signum: int, frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        conn, _ = listener.accept()
        while children:  # reap the sessions that ended
            with contextlib.suppress(ChildProcessError):
                pid, _status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                children.discard(pid)
                continue
            break
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            listener.close()
            asyncio.run(_proxy_session(conn, upstream, delay))
            os._exit(0)
        children.add(pid)
        conn.close()


async def _proxy_session(conn: socket.socket, upstream: int, delay: float) -> None:
    reader, writer = await asyncio.open_connection(sock=conn)
    await asyncio.sleep(2 * delay)  # the TCP handshake's round trip, before the greeting
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pump(reader, up_writer, delay), _pump(up_reader, writer, delay))


# --------------------------------------------------------------------------------------------
# Helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.recv(100)  # the greeting
                s.sendall(b"QUIT\r\n")
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class Run:
    """One measured child process."""

    wall: float  # seconds, process start to exit
    max_rss_kb: int
    cpu: float  # user + system seconds of the child
    returncode: int
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)


def run_child(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdout_path: Path | None = None,
) -> Run:
    """Run a child, timing it and reading its own peak RSS with wait4 (no /usr/bin/time)."""
    out = open(stdout_path, "wb") if stdout_path else subprocess.PIPE  # noqa: SIM115
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    if proc.stdout is not None:
        stdout_b, stderr_b = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    else:
        stdout_b, stderr_b = b"", proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if stdout_path:
        out.close()  # type: ignore[union-attr]
    return Run(
        wall=wall,
        max_rss_kb=int(usage.ru_maxrss),
        cpu=usage.ru_utime + usage.ru_stime,
        returncode=proc.returncode,
        stdout=stdout_b.decode("utf-8", "replace"),
        stderr=stderr_b.decode("utf-8", "replace"),
    )


class Sink:
    """Postfix smtp-sink on a free loopback port; counts messages it received (-c)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log = workdir / "smtp-sink.out"
        self._log_handle = open(self.log, "wb")  # noqa: SIM115
        # -c: running counters on stdout; backlog 1000 so bursts of connects are not refused.
        self.proc = subprocess.Popen(
            ["smtp-sink", "-c", "-u", "nobody", f"127.0.0.1:{self.port}", "1000"],
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        wait_listening(self.port)

    def messages(self) -> int:
        """Messages received so far (smtp-sink updates its counters at each '.')."""
        time.sleep(0.2)
        text = self.log.read_bytes().decode("ascii", "replace")
        counts = re.findall(r"mesg=(\d+)", text)
        return int(counts[-1]) if counts else 0

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        self._log_handle.close()


# --------------------------------------------------------------------------------------------
# Inputs


def write_lists(workdir: Path, sizes: Sequence[int]) -> dict[int, tuple[Path, Path]]:
    """Write each list twice: as staff export it (nieuwsbrief) and as mailmerge needs it."""
    lists = {}
    for n in sizes:
        nb = workdir / f"abonnees-{n}.csv"
        mm = workdir / f"mailmerge-{n}.csv"
        with (
            nb.open("w", encoding="utf-8-sig", newline="") as a,
            mm.open("w", encoding="utf-8", newline="") as b,
        ):
            wa = csv.writer(a, delimiter=";")
            wb = csv.writer(b)
            wa.writerow(["Naam", "E-mailadres", "Organisatie"])
            wb.writerow(["email", "Naam", "Organisatie"])
            for i in range(n):
                # ASCII names: mailmerge passes str messages to smtplib, which needs ASCII.
                row = [f"Abonnee {i} de Vries", f"abonnee{i:06d}@gemeente{i % 97}.example", "Gem"]
                wa.writerow(row)
                wb.writerow([row[1], row[0], row[2]])
        lists[n] = (nb, mm)
    return lists


def nb_env(smtp_port: int, state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIEUWSBRIEF_")}
    env.update(
        PYTHONPATH=str(SRC),
        NIEUWSBRIEF_SMTP_HOST="127.0.0.1",
        NIEUWSBRIEF_SMTP_PORT=str(smtp_port),
        NIEUWSBRIEF_SMTP_SECURITY="none",
        NIEUWSBRIEF_SECRET="benchmark-secret-0123456789",
        NIEUWSBRIEF_LEDGER_DB=str(state_dir / "ledger.sqlite"),
        NIEUWSBRIEF_SUPPRESSION_DB=str(state_dir / "suppression.sqlite"),
    )
    return env


def prepare(workdir: Path, sizes: Sequence[int]) -> dict[str, object]:
    """Copy the example issue, compose it once, derive mailmerge's template and the -F file."""
    issues = workdir / "issues"
    shutil.copytree(ISSUE, issues / ISSUE.name)
    shutil.copy(AGENDA, issues / AGENDA.name)
    # A newsletter home (nieuwsbrief.toml) around the issues; trees before the home ignore it.
    (workdir / "nieuwsbrief.toml").write_text('name = "benchmark"\n', encoding="utf-8")
    env = nb_env(1, workdir)
    env.pop("NIEUWSBRIEF_SMTP_HOST")
    out = workdir / "composed"
    run = run_child(
        [
            sys.executable,
            "-m",
            "nieuwsbrief",
            "compose",
            str(issues / ISSUE.name),
            "--out",
            str(out),
        ],
        cwd=workdir,
        env=env,
    )
    if run.returncode:
        raise RuntimeError(f"compose failed:\n{run.stderr}")
    preview = (out / "preview.eml").read_bytes()
    text = preview.decode("ascii").replace("\r\n", "\n")
    head, body = text.split("\n\n", 1)
    # smtp-source -F: the same bytes (it sends each LF line with CRLF and dot-stuffs).
    source_msg = workdir / "message.txt"
    source_msg.write_text(text, encoding="ascii")
    # mailmerge: the same message as a Jinja2 template; it adds Date itself, no Message-ID.
    lines = [x for x in head.split("\n") if not x.startswith(("Date:", "Message-ID:"))]
    template = "\n".join(lines) + "\n\n" + body
    for marker in ("{{", "{%", "{#"):
        if marker in template:
            raise RuntimeError(f"the composed message contains {marker!r}; mailmerge would choke")
    template = template.replace("Voorbeeld Abonnee", "{{ Naam }}").replace(
        "abonnee@example.nl", "{{ email }}"
    )
    mm_dir = workdir / "mailmerge"
    mm_dir.mkdir()
    (mm_dir / "template.txt").write_text(template, encoding="ascii")
    return {
        "issues": issues,
        "source_msg": source_msg,
        "message_bytes": len(preview),
        "mm_dir": mm_dir,
        "lists": write_lists(workdir, sizes),
    }


# --------------------------------------------------------------------------------------------
# The measurements


@dataclass
class Sample:
    tool: str  # nieuwsbrief(-slow, -memory, -rtt-...) / mailmerge / smtp-source(-rtt) / floor-...
    count: int
    conns: int
    wall: float
    delivery: float | None = None  # nieuwsbrief's own "Delivered: N in X s"
    max_rss_mb: float | None = None
    rep: int = 0
    cpu: float | None = None  # user + system seconds of the sending process
    rtt: float | None = None  # through the delaying proxy: the median round trip measured

    @property
    def rate(self) -> float:
        return self.count / self.wall

    @property
    def delivery_rate(self) -> float | None:
        return self.count / self.delivery if self.delivery else None


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.samples: list[Sample] = []
        self.inputs = prepare(workdir, list_sizes(args))
        self.sink = Sink(workdir)
        self.runs = 0

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def _checked_sink(self, expected: int, before: int, what: str) -> None:
        got = self.sink.messages() - before
        if got != expected:
            raise RuntimeError(f"{what}: smtp-sink received {got} messages, expected {expected}")

    def nieuwsbrief(
        self,
        count: int,
        conns: int,
        port: int | None = None,
        tool: str = "nieuwsbrief",
        rep: int = 0,
        env: dict[str, str] | None = None,
        via_sink: bool | None = None,  # default: when sent straight to the sink (port None)
    ) -> Sample:
        self.runs += 1
        state = self.workdir / f"state-{self.runs}"
        state.mkdir()
        via_sink = port is None if via_sink is None else via_sink
        before = self.sink.messages() if via_sink else 0
        issue = Path(self.inputs["issues"]) / ISSUE.name  # type: ignore[arg-type]
        subscribers = self.inputs["lists"][count][0]  # type: ignore[index]
        run = run_child(
            [
                sys.executable,
                "-m",
                "nieuwsbrief",
                "send",
                str(issue),
                "--subscribers",
                str(subscribers),
                "--yes",
                "--connections",
                str(conns),
            ],
            cwd=state,
            env=nb_env(port or self.sink.port, state) | (env or {}),
        )
        match = DELIVERED_RE.search(run.stdout)
        if run.returncode or not match or int(match.group(1)) != count:
            raise RuntimeError(
                f"nieuwsbrief send to {count} failed (exit {run.returncode}):\n"
                f"{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
            )
        if via_sink:
            self._checked_sink(count, before, "nieuwsbrief")
        shutil.rmtree(state)
        sample = Sample(
            tool, count, conns, run.wall, float(match.group(2)), run.max_rss_kb / 1024, rep, run.cpu
        )
        self.samples.append(sample)
        self.log(
            f"  {tool:18} n={count:<6} c={conns}  {run.wall:7.2f} s  {sample.rate:7.0f} msg/s "
            f"(delivery phase {sample.delivery_rate:.0f}/s, max RSS {sample.max_rss_mb:.0f} MB, "
            f"CPU {run.cpu:.1f} s)"
        )
        return sample

    def mailmerge(self, count: int, rep: int) -> Sample:
        mm_dir = Path(self.inputs["mm_dir"])  # type: ignore[arg-type]
        shutil.copy(self.inputs["lists"][count][1], mm_dir / "database.csv")  # type: ignore[index]
        (mm_dir / "server.conf").write_text(
            f"[smtp_server]\nhost = 127.0.0.1\nport = {self.sink.port}\nratelimit = 0\n"
        )
        before = self.sink.messages()
        run = run_child(
            [
                self.args.mailmerge,
                "--template",
                "template.txt",
                "--database",
                "database.csv",
                "--config",
                "server.conf",
                "--no-dry-run",
                "--no-limit",
                "--output-format",
                "raw",
            ],
            cwd=mm_dir,
            stdout_path=self.workdir / "mailmerge.out",  # it prints every message it sends
        )
        if run.returncode:
            raise RuntimeError(f"mailmerge failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
        self._checked_sink(count, before, "mailmerge")
        sample = Sample("mailmerge", count, 1, run.wall, None, run.max_rss_kb / 1024, rep, run.cpu)
        self.samples.append(sample)
        self.log(
            f"  mailmerge          n={count:<6} c=1  {run.wall:7.2f} s  {sample.rate:7.0f} msg/s"
        )
        return sample

    def smtp_source(
        self, count: int, sessions: int, rep: int, port: int | None = None, tool: str = ""
    ) -> Sample:
        before = self.sink.messages()
        run = run_child(
            [
                "smtp-source",
                "-d",  # reuse the connection for the next message, as nieuwsbrief does
                "-s",
                str(sessions),
                "-m",
                str(count),
                "-F",
                str(self.inputs["source_msg"]),
                "-f",
                SENDER,
                "-t",
                "abonnee@gemeente.example",
                "-M",
                "bench.example",
                f"127.0.0.1:{port or self.sink.port}",
            ],
            cwd=self.workdir,
        )
        if run.returncode:
            raise RuntimeError(f"smtp-source failed (exit {run.returncode}):\n{run.stderr}")
        self._checked_sink(count, before, "smtp-source")
        sample = Sample(
            tool or "smtp-source",
            count,
            sessions,
            run.wall,
            None,
            run.max_rss_kb / 1024,
            rep,
            run.cpu,
        )
        self.samples.append(sample)
        self.log(
            f"  smtp-source        n={count:<6} s={sessions}  {run.wall:7.2f} s  "
            f"{sample.rate:7.0f} msg/s"
        )
        return sample

    def floor(
        self, count: int, conns: int, port: int, tool: str, rep: int, *, via_sink: bool = True
    ) -> Sample:
        """The ideal pipelining client (floor_client.py) on `conns` connections at once."""
        before = self.sink.messages() if via_sink else 0
        shares = [count // conns + (i < count % conns) for i in range(conns)]
        started = time.perf_counter()
        message = str(self.inputs["source_msg"])
        procs = [
            subprocess.Popen([sys.executable, str(FLOOR_CLIENT), str(port), str(n), message])
            for n in shares
        ]
        codes = [proc.wait() for proc in procs]
        wall = time.perf_counter() - started
        if any(codes):
            raise RuntimeError(f"{tool}: a floor client failed (exit codes {codes})")
        if via_sink:
            self._checked_sink(count, before, tool)
        sample = Sample(tool, count, conns, wall, rep=rep)
        self.samples.append(sample)
        self.log(f"  {tool:18} n={count:<6} c={conns}  {wall:7.2f} s  {sample.rate:7.0f} msg/s")
        return sample

    def slow(self, rep: int) -> Sample:
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--slow-server", str(port), "--slow-delay", str(SLOW_DELAY)]
        )
        try:
            wait_listening(port)
            sample = self.nieuwsbrief(self.args.slow_count, 8, port, "nieuwsbrief-slow", rep)
            # The slow server keeps no count; each client checks every reply itself.
            self.floor(self.args.slow_count, 8, port, "floor-slow", rep, via_sink=False)
            return sample
        finally:
            server.terminate()
            server.wait()

    def run(self) -> None:
        args = self.args
        if args.only == "distance":
            return self.distance_runs()
        if args.only == "memory":
            self.log("memory")
            self.nieuwsbrief(args.memory_size, 4, tool="nieuwsbrief-memory")
            return None
        for rep in range(args.reps):
            self.log(f"repetition {rep + 1}/{args.reps}")
            for n in args.sizes:
                for conns in (4, 8):
                    self.nieuwsbrief(n, conns, rep=rep)
                    self.smtp_source(n, conns, rep)
                if n <= args.mailmerge_max and (rep == 0 or n <= args.mailmerge_repeat_max):
                    self.mailmerge(n, rep)
            if args.slow_count:  # 0 skips the slow server
                self.slow(rep)
        if args.memory_size:  # 0 skips the memory run
            self.log("memory")
            self.nieuwsbrief(args.memory_size, 4, tool="nieuwsbrief-memory")
        if args.only == "all":
            self.distance_runs()
        return None

    # -- issue 14, item 7: a relay 20 ms away (the delaying proxy in front of smtp-sink) ----

    def distance_runs(self) -> None:
        """nieuwsbrief with and without PIPELINING and smtp-source, 4 and 8 connections."""
        args = self.args
        port = free_port()
        proxy = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--delay-proxy",
                str(port),
                "--upstream",
                str(self.sink.port),
                "--proxy-delay",
                str(args.rtt / 2),
            ]
        )
        try:
            wait_listening(port)
            for rep in range(args.reps):
                self.log(f"distance, {args.rtt * 1000:.0f} ms round trip, repetition {rep + 1}")
                for conns in (4, 8):
                    for pipelining in ("on", "off"):
                        with RttProbe(port) as probe:
                            sample = self.nieuwsbrief(
                                args.distance_count,
                                conns,
                                port,
                                f"nieuwsbrief-rtt-pipelining-{pipelining}",
                                rep,
                                env={"NIEUWSBRIEF_SMTP_PIPELINING": pipelining},
                                via_sink=True,
                            )
                        sample.rtt = probe.median
                        self.log(f"    measured round trip {1000 * (probe.median or 0):.1f} ms")
                    with RttProbe(port) as probe:
                        sample = self.smtp_source(
                            args.distance_count, conns, rep, port, "smtp-source-rtt"
                        )
                    sample.rtt = probe.median
                    self.floor(args.distance_count, conns, port, "floor-rtt", rep)
        finally:
            proxy.terminate()
            proxy.wait()

    def close(self) -> None:
        self.sink.close()


# --------------------------------------------------------------------------------------------
# Report


def summarise(samples: list[Sample], tool: str, count: int, conns: int) -> dict[str, float] | None:
    mine = [s for s in samples if (s.tool, s.count, s.conns) == (tool, count, conns)]
    if not mine:
        return None
    rates = [s.rate for s in mine]
    out = {
        "runs": len(mine),
        "median_rate": statistics.median(rates),
        "best_rate": max(rates),
        "median_wall": statistics.median(s.wall for s in mine),
    }
    delivery = [s.delivery_rate for s in mine if s.delivery_rate]
    if delivery:
        out["median_delivery_rate"] = statistics.median(delivery)
    rss = [s.max_rss_mb for s in mine if s.max_rss_mb is not None]
    if rss:
        out["max_rss_mb"] = max(rss)
    rtts = [s.rtt for s in mine if s.rtt is not None]
    if rtts:
        out["median_rtt"] = statistics.median(rtts)
    return out


def list_sizes(args: argparse.Namespace) -> list[int]:
    """The list sizes the runs chosen with --only need."""
    sizes = {
        "classic": {*args.sizes, args.memory_size, args.slow_count} - {0},
        "distance": {args.distance_count},
        "memory": {args.memory_size},
    }
    if args.only == "all":
        return sorted(set().union(*sizes.values()))
    return sorted(sizes[args.only])


def distance_rows(
    samples: list[Sample],
    args: argparse.Namespace,
    row: Callable[[str, str, int, int], dict[str, float] | None],
) -> dict[str, dict[str, float] | None]:
    """The table rows of the runs through the delaying proxy (issue 14, item 7)."""
    ms = f"{args.rtt * 1000:.0f} ms"
    out: dict[str, dict[str, float] | None] = {}
    n = args.distance_count
    for conns in (4, 8):
        for pipelining in ("on", "off"):
            label = f"nieuwsbrief, {conns} conns, {ms} RTT, pipelining {pipelining}"
            tool = f"nieuwsbrief-rtt-pipelining-{pipelining}"
            out[f"rtt/{conns}/{pipelining}"] = row(label, tool, n, conns)
        out[f"rtt/{conns}/smtp-source"] = row(
            f"smtp-source -d -s {conns}, {ms} RTT (lock-step)", "smtp-source-rtt", n, conns
        )
        out[f"rtt/{conns}/floor"] = row(
            f"ideal pipelining client, {conns} processes, {ms} RTT (harness floor)",
            "floor-rtt",
            n,
            conns,
        )
    return out


def distance_targets(
    distance: dict[str, dict[str, float] | None],
    args: argparse.Namespace,
    target: Callable[[str, float | None, str, bool | None], None],
) -> None:
    """Against the ceiling of one message per round trip per connection: conns / RTT."""
    for conns in (4, 8):
        ceiling = conns / args.rtt
        for pipelining in ("on", "off"):
            s = distance.get(f"rtt/{conns}/{pipelining}")
            if not s:
                continue
            share = s["median_rate"] / ceiling
            target(
                f"{args.rtt * 1000:.0f} ms RTT, {conns} conns, pipelining {pipelining}: "
                f"share of {ceiling:.0f} msg/s, end to end",
                share,
                "≥ 0.90" if pipelining == "on" else "(info)",
                share >= 0.9 if pipelining == "on" else None,
            )
            if "median_delivery_rate" in s:
                target(
                    "  same, delivery phase", s["median_delivery_rate"] / ceiling, "(info)", None
                )
            floor = distance.get(f"rtt/{conns}/floor")
            if floor and pipelining == "on":
                target(
                    f"  same, of the harness floor ({floor['median_rate']:.0f} msg/s: the ideal "
                    "client through the same proxy), end to end",
                    s["median_rate"] / floor["median_rate"],
                    "(info)",
                    None,
                )
            if "median_rtt" in s:
                measured = conns / s["median_rtt"]
                target(
                    f"  same, of {measured:.0f} msg/s (the {s['median_rtt'] * 1000:.1f} ms "
                    "round trip measured during the run), end to end",
                    s["median_rate"] / measured,
                    "(info)",
                    None,
                )
                if "median_delivery_rate" in s:
                    target(
                        "  same, delivery phase",
                        s["median_delivery_rate"] / measured,
                        "(info)",
                        None,
                    )


def versions(mailmerge: str) -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            return (done.stdout or done.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    postfix = first_line(["dpkg-query", "-W", "-f=${Version}", "postfix"])
    commit = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    return {
        "python": platform.python_version(),
        "nieuwsbrief": f"{commit} (PYTHONPATH={SRC})",
        "mailmerge": first_line([mailmerge, "--version"]),
        "postfix (smtp-sink, smtp-source)": postfix,
        "kernel": platform.release(),
        "cpus": str(os.cpu_count()),
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "?",
        ),
    }


def report(bench: Bench, started: datetime, elapsed: float) -> dict[str, object]:
    args = bench.args
    samples = bench.samples
    rows = []

    def row(label: str, tool: str, count: int, conns: int) -> dict[str, float] | None:
        s = summarise(samples, tool, count, conns)
        if s:
            rows.append((label, count, s))
        return s

    table: dict[str, object] = {}
    for n in args.sizes:
        for conns in (4, 8):
            table[f"nieuwsbrief/{n}/{conns}"] = row(
                f"nieuwsbrief send, {conns} connections", "nieuwsbrief", n, conns
            )
            table[f"smtp-source/{n}/{conns}"] = row(
                f"smtp-source -d -s {conns} (ceiling)", "smtp-source", n, conns
            )
        table[f"mailmerge/{n}"] = row(
            "mailmerge 2.3.0 (1 connection per message)", "mailmerge", n, 1
        )
    slow = row(
        f"nieuwsbrief send, 8 conns, server waits {SLOW_DELAY * 1000:.0f} ms after DATA",
        "nieuwsbrief-slow",
        args.slow_count,
        8,
    )
    slow_floor = row(
        f"ideal pipelining client, 8 processes, server waits {SLOW_DELAY * 1000:.0f} ms (floor)",
        "floor-slow",
        args.slow_count,
        8,
    )
    memory = row(
        "nieuwsbrief send, 4 connections (memory run)", "nieuwsbrief-memory", args.memory_size, 4
    )
    distance = distance_rows(samples, args, row)

    print()
    print(
        f"Date: {started:%Y-%m-%d %H:%M} (run took {elapsed / 60:.1f} min); "
        f"message {bench.inputs['message_bytes']} bytes; reps {args.reps}"
    )
    for key, value in versions(args.mailmerge).items():
        print(f"- {key}: {value}")
    print()
    print(
        "| What | Recipients | Runs | msg/s end to end, median (best) | msg/s delivery phase | "
        "max RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, count, s in rows:
        delivery = f"{s['median_delivery_rate']:.0f}" if "median_delivery_rate" in s else "–"
        rss = f"{s['max_rss_mb']:.0f}" if "max_rss_mb" in s else "–"
        print(
            f"| {label} | {count:,} | {s['runs']} | {s['median_rate']:.0f} ({s['best_rate']:.0f}) "
            f"| {delivery} | {rss} |"
        )

    # Targets, at the largest list size measured (10,000 in a full run).
    n = max(args.sizes)
    targets = []

    def target(name: str, value: float | None, goal: str, ok: bool | None) -> None:
        shown = "not measured" if value is None else f"{value:.2f}"
        verdict = "n/a" if ok is None else ("met" if ok else "MISSED")
        targets.append({"target": name, "value": value, "goal": goal, "verdict": verdict})
        print(f"| {name} | {shown} | {goal} | {verdict} |")

    print()
    print(f"| Target (classic rows at {n:,} recipients) | Measured | Goal | Verdict |")
    print("|---|---:|---:|---|")
    nb4 = table.get(f"nieuwsbrief/{n}/4")
    mm = table.get(f"mailmerge/{n}")
    if nb4 and mm:
        ratio = nb4["median_rate"] / mm["median_rate"]  # type: ignore[index]
        target("nieuwsbrief (4 conns) / mailmerge, msg/s", ratio, "≥ 8×", ratio >= 8)
    else:
        target("nieuwsbrief / mailmerge, msg/s", None, "≥ 8×", None)
    for conns in (4, 8):
        nb = table.get(f"nieuwsbrief/{n}/{conns}")
        src = table.get(f"smtp-source/{n}/{conns}")
        if nb and src:
            ratio = nb["median_rate"] / src["median_rate"]  # type: ignore[index]
            target(f"nieuwsbrief / smtp-source, {conns} connections", ratio, "≥ 0.70", ratio >= 0.7)
            if "median_delivery_rate" in nb:  # type: ignore[operator]
                ratio = nb["median_delivery_rate"] / src["median_rate"]  # type: ignore[index]
                target(
                    f"  same, nieuwsbrief's delivery phase only, {conns} conns",
                    ratio,
                    "(info)",
                    None,
                )
    if slow:
        ceiling = 8 / SLOW_DELAY
        target(
            f"50 ms server, 8 conns: share of {ceiling:.0f} msg/s, end to end",
            slow["median_rate"] / ceiling,
            "≥ 0.95 (issue 14)",
            slow["median_rate"] / ceiling >= 0.95,
        )
        target(
            "  same, delivery phase",
            slow["median_delivery_rate"] / ceiling,
            "(info)",
            None,
        )
        if slow_floor:
            target(
                f"  same, of the harness floor ({slow_floor['median_rate']:.0f} msg/s), end to end",
                slow["median_rate"] / slow_floor["median_rate"],
                "(info)",
                None,
            )
    if memory:
        target(
            f"peak RSS, {args.memory_size:,} recipients, MB",
            memory["max_rss_mb"],
            "< 150",
            memory["max_rss_mb"] < 150,
        )
    distance_targets(distance, args, target)
    return {
        "date": started.isoformat(timespec="seconds"),
        "elapsed_s": elapsed,
        "message_bytes": bench.inputs["message_bytes"],
        "args": {k: v for k, v in vars(args).items() if k != "json"},
        "versions": versions(args.mailmerge),
        "summary": table | {"slow": slow, "slow_floor": slow_floor, "memory": memory} | distance,
        "targets": targets,
        "samples": [asdict(s) | {"rate": s.rate} for s in samples],
    }


def main(argv: Sequence[str] | None = None) -> int:
    global SRC
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 only, one repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--mailmerge", default=os.environ.get("BENCH_MAILMERGE", DEFAULT_MAILMERGE))
    parser.add_argument(
        "--mailmerge-max", type=int, default=10000, help="largest list mailmerge is run on"
    )
    parser.add_argument(
        "--mailmerge-repeat-max",
        type=int,
        default=1000,
        help="larger lists are sent by mailmerge in the first repetition only",
    )
    parser.add_argument("--slow-count", type=int, default=3000)
    parser.add_argument("--memory-size", type=int, default=100_000)
    parser.add_argument("--src", type=Path, default=SRC, help="nieuwsbrief source tree to measure")
    parser.add_argument("--json", type=Path, help="also write all samples here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--slow-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--slow-delay", type=float, default=SLOW_DELAY, help=argparse.SUPPRESS)
    parser.add_argument(
        "--only",
        choices=("all", "classic", "distance", "memory"),
        default="all",
        help="classic: the issue-3 set; distance: the runs through a delaying proxy; memory",
    )
    parser.add_argument("--rtt", type=float, default=0.02, help="proxy round trip, seconds")
    parser.add_argument("--distance-count", type=int, default=2000)
    parser.add_argument("--delay-proxy", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--proxy-delay", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.slow_server:
        run_slow_server(args.slow_server, args.slow_delay)
        return 0
    if args.delay_proxy:
        run_delay_proxy(args.delay_proxy, args.upstream, args.proxy_delay)
        return 0
    SRC = args.src.resolve()
    if args.quick:
        args.reps, args.sizes = 1, [1000]
        args.slow_count, args.memory_size = 500, 10_000
    needed = ["smtp-sink", "smtp-source"]
    if args.only in ("all", "classic") and args.mailmerge_max > 0:
        needed.append(args.mailmerge)
    for tool in needed:
        if shutil.which(tool) is None:
            parser.error(f"{tool} not found (apt-get install postfix; mailmerge in its own venv)")

    started = datetime.now().astimezone()
    t0 = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="nieuwsbrief-bench-"))
    bench = None
    try:
        bench = Bench(args, workdir)
        bench.run()
        result = report(bench, started, time.monotonic() - t0)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2, default=str))
    finally:
        if bench is not None:
            bench.close()
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
