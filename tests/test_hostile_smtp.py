"""Issue 13, the SMTP rows: a real `nieuwsbrief send` process against a misbehaving server.

Each test checks what the user sees (exit code, one clear message, no traceback) and the
truth: the ledger's accepted set is exactly what the server stored, and everybody else got
the issue once (after a re-run, where the server was broken for good).
"""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import pytest

import test_send
from hostile_smtp import HostileSmtpServer, Script

USER, PASSWORD = "nieuwsbrief", "zeer-geheim-wachtwoord-42"
MEMBERS = [address for _, address in test_send.members(3)]  # lid00000 .. lid00002


def run_send(
    issue: Path, tmp_path: Path, server: HostileSmtpServer, *options: str, **env: str
) -> subprocess.CompletedProcess[str]:
    subscribers = test_send.write_list(tmp_path / "lijst.csv", test_send.members(3))
    environment = {
        **os.environ,
        "NIEUWSBRIEF_SMTP_HOST": server.host,
        "NIEUWSBRIEF_SMTP_PORT": str(server.port),
        "NIEUWSBRIEF_SMTP_SECURITY": "none",
        "NIEUWSBRIEF_LEDGER_DB": str(tmp_path / "ledger.sqlite"),
        "NIEUWSBRIEF_SUPPRESSION_DB": str(tmp_path / "suppression.sqlite"),
        # Black holes must cost seconds here, not minutes.
        "NIEUWSBRIEF_SMTP_TIMEOUT": "2",
        "NIEUWSBRIEF_SMTP_DATA_TIMEOUT": "1",
        **env,
    }
    run = test_send.send_process(issue, subscribers, environment, tmp_path, 60, *options)
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    return run


def ledger(tmp_path: Path, issue: Path) -> dict[str, tuple[str, str]]:
    """Address -> (status, reply), read straight from the SQLite file."""
    path = tmp_path / "ledger.sqlite"
    if not path.exists():
        return {}
    with sqlite3.connect(path) as db:  # this test's own ledger: it holds only this issue
        rows = db.execute("SELECT address, status, reply FROM recipients").fetchall()
    return {address: (status, reply) for address, status, reply in rows}


def assert_truth(tmp_path: Path, issue: Path, server: HostileSmtpServer) -> dict[str, str]:
    """The ledger's accepted set is what the server stored, each once; return the states."""
    states = {a: status for a, (status, _) in ledger(tmp_path, issue).items()}
    stored = Counter(server.stored_recipients())
    assert {a for a, status in states.items() if status == "accepted"} == set(stored)
    assert max(stored.values(), default=1) == 1
    return states


@pytest.mark.parametrize("pipelining", [False, True], ids=["lock-step", "pipelined"])
def test_250_to_data_is_never_a_delivery(
    example_copy: Path, tmp_path: Path, pipelining: bool
) -> None:
    script = Script(pipelining=pipelining, data_reply_250={MEMBERS[1]})
    with HostileSmtpServer(script) as server:
        run = run_send(example_copy, tmp_path, server, "--connections", "1")
        assert run.returncode == 1
        assert "Delivered: 2 " in run.stdout and "1 deferred" in run.stdout
        assert (
            f"{MEMBERS[1]}: not delivered: no final reply: 127.0.0.1:{server.port} is out of "
            "step: 250 2.0.0 Ok in answer to DATA (expected 354)"
        ) in run.stdout
        assert server.stored_recipients() == [MEMBERS[0], MEMBERS[2]]
        assert assert_truth(tmp_path, example_copy, server)[MEMBERS[1]] == "deferred"


@pytest.mark.parametrize("pipelining", [False, True], ids=["lock-step", "pipelined"])
def test_an_extra_reply_after_each_body_shifts_nothing(
    example_copy: Path, tmp_path: Path, pipelining: bool
) -> None:
    script = Script(pipelining=pipelining, extra_reply_after_body=True)
    with HostileSmtpServer(script) as server:
        run = run_send(example_copy, tmp_path, server)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Delivered: 3 " in run.stdout
    assert sorted(server.stored_recipients()) == MEMBERS
    assert set(assert_truth(tmp_path, example_copy, server).values()) == {"accepted"}
    assert server.sessions >= 3  # each connection out of step after its first message


def test_a_black_hole_after_the_body_stops_the_send_and_the_rerun_completes(
    example_copy: Path, tmp_path: Path
) -> None:
    with HostileSmtpServer(Script(black_hole_after=1)) as server:
        run = run_send(example_copy, tmp_path, server, "--connections", "1")
        assert run.returncode == 1
        error = run.stderr.strip().splitlines()[-1]
        assert error.startswith("Error: stopped after 2 failed connection(s) in a row to ")
        assert "no reply to the end of the message within 1 s" in error
        assert "1 of 3 were delivered before that" in error
        assert "run the same command again to send to the rest: " in error
        assert error.endswith("lijst.csv --yes --connections 1")
        assert server.stored_recipients() == [MEMBERS[0]]
        assert assert_truth(tmp_path, example_copy, server) == {MEMBERS[0]: "accepted"}

        server.script = Script()  # the relay is healthy again
        rerun = run_send(example_copy, tmp_path, server, "--connections", "1")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Delivered: 2 " in rerun.stdout
    assert sorted(server.stored_recipients()) == MEMBERS  # nobody twice, nobody missed
    assert set(assert_truth(tmp_path, example_copy, server).values()) == {"accepted"}


def test_a_100000_line_refusal_is_cut_everywhere(example_copy: Path, tmp_path: Path) -> None:
    with HostileSmtpServer(Script(long_refusal={MEMBERS[1]: 100_000})) as server:
        run = run_send(example_copy, tmp_path, server)
    assert run.returncode == 1
    assert len(run.stdout) + len(run.stderr) < 10_000
    (line,) = [line for line in run.stdout.splitlines() if MEMBERS[1] in line]
    assert line.startswith(f"  {MEMBERS[1]}: 550 5.1.1 this mailbox is unavailable")
    assert line.endswith("…") and len(line.encode()) <= len(MEMBERS[1]) + 4 + 512
    status, reply = ledger(tmp_path, example_copy)[MEMBERS[1]]
    assert status == "failed" and len(reply.encode()) <= 512 and reply.endswith("…")
    failures = (example_copy / "out" / "send-failures.csv").read_bytes()
    assert len(failures) < 1_000
    assert sorted(server.stored_recipients()) == [MEMBERS[0], MEMBERS[2]]
    assert_truth(tmp_path, example_copy, server)


def test_a_535_that_echoes_auth_plain_shows_no_credentials(
    example_copy: Path, tmp_path: Path
) -> None:
    with HostileSmtpServer(Script(echo_auth=True)) as server:
        run = run_send(
            example_copy,
            tmp_path,
            server,
            NIEUWSBRIEF_SMTP_USER=USER,
            NIEUWSBRIEF_SMTP_PASSWORD=PASSWORD,
        )
    assert run.returncode == 2
    echoed = " ".join(server.auth_lines)
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    assert plain in echoed  # the server did echo the credentials
    shown = run.stdout + run.stderr
    for secret in (plain, PASSWORD, base64.b64encode(PASSWORD.encode()).decode()):
        assert secret not in shown
    assert f"Error: 127.0.0.1:{server.port} refused the login for 'nieuwsbrief' (535 5.7.8" in (
        run.stderr
    )
    assert "AUTH LOGIN [redacted]" in run.stderr
    assert server.stored == [] and ledger(tmp_path, example_copy) == {}


def test_a_connection_dropped_mid_body_is_sent_again(example_copy: Path, tmp_path: Path) -> None:
    with HostileSmtpServer(Script(drop_mid_body={2})) as server:
        run = run_send(example_copy, tmp_path, server, "--connections", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Delivered: 3 " in run.stdout
    assert sorted(server.stored_recipients()) == MEMBERS
    assert set(assert_truth(tmp_path, example_copy, server).values()) == {"accepted"}
    assert server.sessions == 2


def test_421_after_a_body_then_close_is_not_a_delivery(example_copy: Path, tmp_path: Path) -> None:
    with HostileSmtpServer(Script(close_421_after_body={2})) as server:
        run = run_send(example_copy, tmp_path, server, "--connections", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Delivered: 3 " in run.stdout
    assert sorted(server.stored_recipients()) == MEMBERS
    assert set(assert_truth(tmp_path, example_copy, server).values()) == {"accepted"}
    assert server.datas == 4 and server.sessions == 2  # the refused body went again
