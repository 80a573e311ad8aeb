"""Unsubscribing end to end: a recipient who unsubscribes is never mailed again by send."""

from __future__ import annotations

import email
import os
import select
import shutil
import socket
import subprocess
import sys
import urllib.request
from email import policy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nieuwsbrief.cli import app
from smtp_server import SmtpServer
from test_send import members, send_cli, smtp_env, write_list

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def next_issue(example: Path) -> Path:
    """A second issue (another folder name: another ledger key) with the same content."""
    target = example.parent / "2012-06"
    shutil.copytree(example, target)
    return target


def list_unsubscribe(server: SmtpServer, address: str) -> list[str]:
    data = next(m.data for m in server.messages if m.rcpt_tos == (address,))
    header = email.message_from_bytes(data, policy=policy.default)["List-Unsubscribe"]
    return [part.strip().strip("<>") for part in str(header).split(",")]


def test_mailto_request_pasted_into_the_command_is_honoured_on_the_next_send(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_env(monkeypatch, smtp_server)
    monkeypatch.chdir(tmp_path)  # staff commands find the home from the current folder
    subscribers = write_list(tmp_path / "lijst.csv", members(3))
    assert send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")[0] == 0
    mailto = list_unsubscribe(smtp_server, "lid00001@example.nl")[1]
    subject = "Re: " + mailto.split("subject=", 1)[1].replace("%20", " ")

    result = runner.invoke(app, ["unsubscribe", subject])
    assert result.exit_code == 0, result.stderr
    assert "added (lid00001@example.nl)" in result.stdout

    check = runner.invoke(app, ["subscribers", "check", str(subscribers)])
    assert "1 suppressed (will be skipped)" in check.stdout

    code, out, err = send_cli(
        str(next_issue(example_copy)), "--subscribers", str(subscribers), "--yes"
    )
    assert code == 0, err
    assert "1 unsubscribed" in out
    assert smtp_server.recipients().count("lid00001@example.nl") == 1
    assert smtp_server.recipients().count("lid00002@example.nl") == 2


def read_until(process: subprocess.Popen[str], text: str, timeout: float = 60) -> str:
    """Read what `process` prints until `text` appears (event-driven; `timeout` guards a hang)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()  # read below its text buffer, which select cannot see into
    seen = b""
    while text.encode() not in seen:
        assert select.select([fd], [], [], timeout)[0], f"no {text!r} in {seen!r}"
        chunk = os.read(fd, 4096)
        assert chunk, f"the process ended without {text!r}: {seen!r}"
        seen += chunk
    return seen.decode()


def test_one_click_post_to_the_real_server_then_never_mailed_again(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/afmelden/{{token}}"
    smtp_env(monkeypatch, smtp_server, NIEUWSBRIEF_UNSUBSCRIBE_URL=url)
    monkeypatch.chdir(tmp_path)  # the server finds the home from the current folder
    subscribers = write_list(tmp_path / "lijst.csv", members(3))
    assert send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")[0] == 0

    env = {**os.environ}
    server = subprocess.Popen(
        [sys.executable, "-m", "nieuwsbrief", "unsubscribe-server", "--port", str(port)],
        env=env,
        cwd=Path.cwd(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = ""
    try:
        https = list_unsubscribe(smtp_server, "lid00002@example.nl")[0]
        assert https.startswith(f"http://127.0.0.1:{port}/afmelden/1")
        seen = read_until(server, f"on http://127.0.0.1:{port}/")  # it listens
        request = urllib.request.Request(
            https,
            data=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        server.terminate()
        rest, _ = server.communicate(timeout=10)
    assert "lid00002" not in seen + rest

    listing = runner.invoke(app, ["unsubscribe", "--list"])
    assert "one-click" in listing.stdout and "lid00002@example.nl" in listing.stdout

    code, out, _ = send_cli(
        str(next_issue(example_copy)), "--subscribers", str(subscribers), "--yes"
    )
    assert code == 0 and "1 unsubscribed" in out
    assert smtp_server.recipients().count("lid00002@example.nl") == 1


def test_staff_file_list_and_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    requests = tmp_path / "afmeldingen.csv"
    requests.write_text("Naam;E-mail\nJan;jan@example.nl\nPiet;piet@example.nl\n", encoding="utf-8")
    result = runner.invoke(app, ["unsubscribe", "--from-file", str(requests), "kees@example.nl"])
    assert result.exit_code == 0, result.stderr
    assert "3 unsubscribed, 0 not understood" in result.stdout

    result = runner.invoke(app, ["unsubscribe", "geen-adres", "1" + "A" * 32])
    assert result.exit_code == 1
    assert "geen-adres: not an address or token" in result.stdout
    assert "invalid token" in result.stdout

    result = runner.invoke(app, ["unsubscribe", "--remove", "piet@example.nl"], input="n\n")
    assert result.exit_code == 0 and "stays unsubscribed" in result.stdout  # no is an answer
    result = runner.invoke(app, ["unsubscribe", "--remove", "piet@example.nl", "--yes"])
    assert result.exit_code == 0
    listing = runner.invoke(app, ["unsubscribe", "--list"]).stdout
    assert "jan@example.nl" in listing and "piet@example.nl" not in listing
    assert "2 unsubscribed in" in listing


def test_server_refuses_to_start_without_an_unsubscribe_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["unsubscribe-server", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "NIEUWSBRIEF_UNSUBSCRIBE_URL is not set" in result.stderr
