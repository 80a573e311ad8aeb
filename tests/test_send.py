"""send: real delivery to aiosmtpd on 127.0.0.1, checked by parsing what arrived."""

from __future__ import annotations

import dataclasses
import email
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from collections import Counter
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import TEST_SECRET, house_style_copy
from nieuwsbrief.cli import _factory_maker, app
from nieuwsbrief.config import load_settings
from nieuwsbrief.home import find_home
from nieuwsbrief.sending.campaign import (
    SHOWN_FAILURES,
    Progress,
    SendReport,
    SendRequest,
    send_issue,
)
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from nieuwsbrief.unsubscribe.tokens import make_token
from smtp_server import Fault, SmtpServer

runner = CliRunner()
UNSUBSCRIBE_URL = "https://www.bureau-kennis.net/afmelden/{token}"


def write_list(path: Path, rows: list[tuple[str, str]], extra: str = "") -> Path:
    lines = ["naam;e-mail" + (";organisatie" if extra else "")]
    lines += [f"{name};{address}" + (f";{extra}" if extra else "") for name, address in rows]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def members(count: int) -> list[tuple[str, str]]:
    return [(f"Lid {n}", f"lid{n:05d}@example.nl") for n in range(count)]


def smtp_env(monkeypatch: pytest.MonkeyPatch, server: SmtpServer, **extra: str) -> None:
    monkeypatch.setenv("NIEUWSBRIEF_SMTP_HOST", server.host)
    monkeypatch.setenv("NIEUWSBRIEF_SMTP_PORT", str(server.port))
    monkeypatch.setenv("NIEUWSBRIEF_SMTP_SECURITY", "none")
    monkeypatch.setenv("NIEUWSBRIEF_FROM", "Bureau | Kennis <nieuwsbrief@bureau-kennis.net>")
    monkeypatch.setenv("NIEUWSBRIEF_UNSUBSCRIBE_URL", UNSUBSCRIBE_URL)
    monkeypatch.setenv("NIEUWSBRIEF_UNSUBSCRIBE_MAILTO", "afmelden@bureau-kennis.net")
    for key, value in extra.items():
        monkeypatch.setenv(key, value)


def send_cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["send", *args])
    return result.exit_code, result.stdout, result.stderr


def send_process(
    issue: Path,
    subscribers: Path,
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    *options: str,
) -> subprocess.CompletedProcess[str]:
    """Run `nieuwsbrief send ISSUE --subscribers LIST --yes [OPTIONS]` as a real process."""
    command = [sys.executable, "-m", "nieuwsbrief", "send", str(issue), "--subscribers",
               str(subscribers), "--yes", *options]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def core_send(issue: Path, subscribers: Path, **options: Any) -> SendReport:
    settings = load_settings(home=find_home(issue), create_secret=True)
    request = SendRequest(issue_dir=issue, subscribers_path=subscribers, retry_delays=(0.05, 0.1))
    return send_issue(
        dataclasses.replace(request, **options),
        settings,
        lambda prefix: _factory_maker(settings, prefix),
        confirm=lambda plan: True,
    )


def test_each_subscriber_gets_exactly_one_correct_message(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_env(monkeypatch, smtp_server, NIEUWSBRIEF_REPLY_TO="info@bureau-kennis.net")
    rows = [*members(40), ("Zoë d’Ançay", "zoe@example.nl"), ("", "anoniem@example.nl")]
    subscribers = write_list(tmp_path / "lijst.csv", rows)
    code, out, err = send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")
    assert code == 0, err
    assert "Delivered: 42" in out

    received = smtp_server.messages
    assert sorted(r for m in received for r in m.rcpt_tos) == sorted(a for _, a in rows)
    assert all(len(m.rcpt_tos) == 1 for m in received)
    message_ids = set()
    for item in received:
        message = parsed(item.data)
        (rcpt,) = item.rcpt_tos
        assert message["To"].addresses[0].addr_spec == rcpt
        assert message["Cc"] is None and message["Bcc"] is None
        assert item.mail_from == "nieuwsbrief@bureau-kennis.net"
        assert message["From"].addresses[0].display_name == "Bureau | Kennis"
        assert message["Reply-To"] == "info@bureau-kennis.net"
        assert message["Date"].datetime is not None
        assert message["Message-ID"].endswith("@bureau-kennis.net>")
        message_ids.add(message["Message-ID"])
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        token = make_token(TEST_SECRET, rcpt)
        https = UNSUBSCRIBE_URL.replace("{token}", token)
        assert token not in rcpt and rcpt not in https
        assert re.fullmatch(r"<[^<>\s]+>(\s*,\s*<[^<>\s]+>)*", message["List-Unsubscribe"])
        assert message["List-Unsubscribe"] == (
            f"<{https}>, <mailto:afmelden@bureau-kennis.net?subject=afmelden%20{token}>"
        )
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert f'href="{https}"' in html and https in text
        assert "%%nb:" not in html + text
    assert len(message_ids) == len(received)

    by_rcpt = {m.rcpt_tos[0]: parsed(m.data) for m in received}
    zoe = by_rcpt["zoe@example.nl"]
    assert zoe["To"].addresses[0].display_name == "Zoë d’Ançay"
    raw_to = re.search(
        rb"^To: (.*)$", next(m.data for m in received if m.rcpt_tos == ("zoe@example.nl",)), re.M
    )
    assert raw_to and raw_to.group(1).isascii() and b"=?utf-8?" in raw_to.group(1)
    assert "Beste Zoë d’Ançay," in zoe.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    anon = by_rcpt["anoniem@example.nl"]
    assert "Beste lezer," in anon.get_body(("html",)).get_content()  # type: ignore[union-attr]

    # The same command again sends nothing: the ledger knows everyone got it.
    code, out, _ = send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")
    assert code == 0 and "Skipped:   42 already sent" in out
    assert len(smtp_server.messages) == 42


def test_personal_values_are_html_escaped_and_headers_cannot_be_injected(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_env(monkeypatch, smtp_server)
    path = tmp_path / "lijst.csv"
    path.write_bytes(
        b'naam,email\r\n"Jan <b>&amp; co",jan@example.nl\r\n'
        b'"Evil\r\nBcc: x@evil.nl",evil@example.nl\r\n'
        b"Piet,piet@example.nl\r\n"
    )
    code, out, err = send_cli(str(example_copy), "--subscribers", str(path), "--yes")
    assert code == 0, err
    assert sorted(smtp_server.recipients()) == ["jan@example.nl", "piet@example.nl"]
    assert "1 invalid" in out
    jan = parsed(next(m.data for m in smtp_server.messages if m.rcpt_tos == ("jan@example.nl",)))
    html = jan.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Beste Jan &lt;b&gt;&amp;amp; co," in html
    for message in smtp_server.messages:
        assert b"evil" not in message.data.lower()


def test_the_report_counts_every_failure_and_keeps_only_the_first_it_shows(
    example_copy: Path, make_smtp_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 25 refusals: all counted, the first SHOWN_FAILURES kept with their reply, the others
    # only in the ledger and send-failures.csv (a report must not grow with the list).
    refused = [a for _, a in members(40)][5:30]
    server = make_smtp_server(  # type: ignore[operator]
        faults={address: Fault("550 5.7.1 Rejected by policy") for address in refused}
    )
    smtp_env(monkeypatch, server)
    report = core_send(example_copy, write_list(example_copy.parent / "lijst.csv", members(40)))
    assert (report.delivered, report.refused, report.deferred) == (15, 25, 0)
    assert len(report.first_failures) == SHOWN_FAILURES
    assert {a for a, _ in report.first_failures} <= set(refused)
    assert {r for _, r in report.first_failures} == {"550 5.7.1 Rejected by policy"}
    text = report.describe()
    assert "25 refused, 0 deferred" in text
    assert f"... and {25 - SHOWN_FAILURES} more" in text
    failures = (example_copy / "out" / "send-failures.csv").read_text(encoding="utf-8-sig")
    assert sorted(line.split(";")[0] for line in failures.splitlines()[1:]) == sorted(refused)


def test_faults_4xx_retried_5xx_reported_and_the_rest_delivered(
    example_copy: Path, tmp_path: Path, make_smtp_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_smtp_server(  # type: ignore[operator]
        faults={
            "lid00003@example.nl": Fault("451 4.7.1 Try again later", times=1),
            "lid00007@example.nl": Fault("550 5.1.1 No such user"),
            "lid00011@example.nl": Fault("452 4.2.2 Mailbox full", times=99),
        }
    )
    smtp_env(monkeypatch, server)
    subscribers = write_list(tmp_path / "lijst.csv", members(20))
    report = core_send(example_copy, subscribers)
    assert sorted(server.recipients()) == sorted(
        a for _, a in members(20) if a not in ("lid00007@example.nl", "lid00011@example.nl")
    )
    assert server.attempts("lid00003@example.nl") == 2
    assert (report.refused, report.deferred) == (1, 1)
    assert sorted(report.first_failures) == [
        ("lid00007@example.nl", "550 5.1.1 No such user"),
        ("lid00011@example.nl", "452 4.2.2 Mailbox full"),
    ]
    assert report.exit_code == 1
    failures = (example_copy / "out" / "send-failures.csv").read_text(encoding="utf-8-sig")
    assert "lid00007@example.nl;refused;550 5.1.1 No such user" in failures
    assert "lid00011@example.nl;deferred;452 4.2.2 Mailbox full" in failures

    # "No such user" (5.1.1) is suppressed with the server's reply, so no issue tries it again.
    assert report.suppressed_now == 1
    entries = SuppressionList(tmp_path / "state" / "suppression.sqlite").entries()
    assert [(e.address, e.source) for e in entries] == [("lid00007@example.nl", "bounce")]
    assert "550 5.1.1 No such user" in entries[0].note

    # --retry-failed sends only to the outstanding deferral (the server has recovered now);
    # the suppressed address is skipped.
    server.faults.clear()
    report = core_send(example_copy, subscribers, retry_failed=True)
    assert report.delivered == 1
    assert report.plan.suppressed == 1
    assert "lid00007@example.nl" not in server.recipients()
    assert Counter(server.recipients())["lid00011@example.nl"] == 1
    assert len(server.recipients()) == 19


def test_dropped_connection_loses_nobody(
    example_copy: Path, tmp_path: Path, make_smtp_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_smtp_server(drop_after=7)  # type: ignore[operator]
    smtp_env(monkeypatch, server)
    subscribers = write_list(tmp_path / "lijst.csv", members(60))
    report = core_send(example_copy, subscribers, connections=2)
    assert report.delivered == 60
    assert server.drops > 0
    assert sorted(server.recipients()) == sorted(a for _, a in members(60))


def test_starttls_and_auth_in_a_real_process(
    example_copy: Path, tmp_path: Path, make_smtp_server: object
) -> None:

    server = make_smtp_server(tls="starttls", auth=("nieuwsbrief", "s3cret-PW!"))  # type: ignore[operator]
    ca_file = tmp_path / "ca.pem"
    # The test CA (the server's certificate issuer) is trusted through SSL_CERT_FILE.
    from smtp_server import _certificate_authority

    _certificate_authority().cert_pem.write_to_path(str(ca_file))
    subscribers = write_list(tmp_path / "lijst.csv", members(5))
    env = {
        **os.environ,
        "SSL_CERT_FILE": str(ca_file),
        "NIEUWSBRIEF_SMTP_HOST": "localhost",
        "NIEUWSBRIEF_SMTP_PORT": str(server.port),
        "NIEUWSBRIEF_SMTP_SECURITY": "starttls",
        "NIEUWSBRIEF_SMTP_USER": "nieuwsbrief",
        "NIEUWSBRIEF_SMTP_PASSWORD": "s3cret-PW!",
    }
    run = send_process(example_copy, subscribers, env, tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    assert len(server.recipients()) == 5
    assert "s3cret-PW!" not in run.stdout + run.stderr

    env["NIEUWSBRIEF_SMTP_PASSWORD"] = "wrong-password-42"
    env["NIEUWSBRIEF_LEDGER_DB"] = str(tmp_path / "other-ledger.sqlite")
    run = send_process(example_copy, subscribers, env, tmp_path, timeout=120)
    assert run.returncode == 2
    assert "refused the login for 'nieuwsbrief'" in run.stderr
    assert "wrong-password-42" not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert len(server.recipients()) == 5


def test_kill_9_mid_send_then_the_same_command_loses_nobody(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    count = 300
    subscribers = write_list(tmp_path / "lijst.csv", members(count))
    env = {
        **os.environ,
        "NIEUWSBRIEF_SMTP_HOST": smtp_server.host,
        "NIEUWSBRIEF_SMTP_PORT": str(smtp_server.port),
        "NIEUWSBRIEF_SMTP_SECURITY": "none",
    }
    command = [sys.executable, "-m", "nieuwsbrief", "send", str(example_copy), "--subscribers",
               str(subscribers), "--yes", "--rate", "150", "--connections", "4"]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    assert smtp_server.wait_for_messages(60), "the send never got going"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    first_run = len(smtp_server.messages)
    assert 0 < first_run < count, "the kill must land mid-send"

    rerun = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert rerun.returncode == 0, rerun.stderr
    received = Counter(smtp_server.recipients())
    assert set(received) == {a for _, a in members(count)}  # nobody skipped
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= 4  # at most the messages in flight, one per connection


def test_no_terminal_and_no_yes_refuses(example_copy: Path, tmp_path: Path) -> None:
    subscribers = write_list(tmp_path / "lijst.csv", members(3))
    code, _out, err = send_cli(str(example_copy), "--subscribers", str(subscribers))
    assert code == 2
    assert "add --yes" in err
    assert not (tmp_path / "state").exists()  # refused before any state was touched


def test_dry_run_connects_to_nothing(
    example_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NIEUWSBRIEF_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NIEUWSBRIEF_SMTP_PORT", "9")  # nothing listens; a connect would fail
    monkeypatch.setenv("NIEUWSBRIEF_SMTP_SECURITY", "none")
    subscribers = write_list(tmp_path / "lijst.csv", members(25))
    code, out, err = send_cli(str(example_copy), "--subscribers", str(subscribers), "--dry-run")
    assert code == 0, err
    assert "Dry run: built and checked 25 messages; nothing was sent and nothing was" in out
    assert not (tmp_path / "state").exists()


def test_proof_to_any_address_is_marked_and_not_recorded(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_env(monkeypatch, smtp_server)
    subscribers = write_list(tmp_path / "lijst.csv", members(3))
    code, out, err = send_cli(
        str(example_copy), "--subscribers", str(subscribers),
        "--test", "redactie@bureau-kennis.net", "--test", "lid00001@example.nl",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(smtp_server.recipients()) == ["lid00001@example.nl", "redactie@bureau-kennis.net"]
    for item in smtp_server.messages:
        assert parsed(item.data)["Subject"].startswith("[TEST] Nieuwsbrief mei 2012")
    proof = parsed(
        next(m.data for m in smtp_server.messages if m.rcpt_tos == ("lid00001@example.nl",))
    )
    assert "Beste Lid 1," in proof.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    code, out, err = send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")
    assert code == 0 and "Delivered: 3" in out
    assert Counter(smtp_server.recipients())["lid00001@example.nl"] == 2


def test_changed_issue_is_refused_mid_send_unless_forced(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_env(monkeypatch, smtp_server)
    first = write_list(tmp_path / "a.csv", members(3))
    assert send_cli(str(example_copy), "--subscribers", str(first), "--yes")[0] == 0
    article = example_copy / "02-bim.md"
    article.write_text(article.read_text(encoding="utf-8") + "\nEen correctie.\n", encoding="utf-8")
    more = write_list(tmp_path / "b.csv", members(6))
    code, _, err = send_cli(str(example_copy), "--subscribers", str(more), "--yes")
    assert code == 2
    assert "issue 'issues/2012-05' changed since its send started" in err and "--force" in err
    assert "changed: the article 02-bim.md." in err
    assert len(smtp_server.messages) == 3
    code, _out, err = send_cli(str(example_copy), "--subscribers", str(more), "--yes", "--force")
    assert code == 0, err
    assert sorted(smtp_server.recipients()) == sorted(a for _, a in members(6))


def test_zero_configuration_delivers_into_the_local_outbox(
    example_copy: Path, tmp_path: Path
) -> None:
    import mailbox

    subscribers = write_list(tmp_path / "lijst.csv", members(4))
    code, out, err = send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")
    assert code == 0, err
    assert "local outbox" in out + err
    box = mailbox.Maildir(tmp_path / "state" / "outbox", create=False)
    assert sorted(str(m["To"]) for m in box) == sorted(f"{n} <{a}>" for n, a in members(4))
    # Private: the state folder, the outbox and its messages, the ledger and the list.
    state = tmp_path / "state"
    modes = {
        path.relative_to(state).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in [state, *state.rglob("*")]
    }
    assert {p: m for p, m in modes.items() if m not in (0o600, 0o700)} == {}
    assert modes["outbox/new"] == 0o700 and modes["ledger.sqlite"] == 0o600
    assert sorted(m for p, m in modes.items() if p.startswith("outbox/new/")) == [0o600] * 4


def test_merge_fields_reach_the_template(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:

    templates = house_style_copy(tmp_path, "email.mjml.j2")
    mjml = templates / "email.mjml.j2"
    mjml.write_text(
        mjml.read_text(encoding="utf-8").replace(
            "<p>{{ greeting }}</p>", "<p>{{ greeting }} ({{ subscriber.organisatie }})</p>"
        ),
        encoding="utf-8",
    )
    smtp_env(monkeypatch, smtp_server)
    subscribers = write_list(tmp_path / "lijst.csv", members(2), extra="Gemeente <Ede> & Co")
    settings = load_settings(home=find_home(example_copy), create_secret=True)
    from nieuwsbrief import compose as compose_mod

    original = compose_mod.compose_issue

    def with_templates(*args: object, **kwargs: object) -> object:
        kwargs["templates_dir"] = templates
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("nieuwsbrief.sending.campaign.compose_issue", with_templates)
    report = send_issue(
        SendRequest(issue_dir=example_copy, subscribers_path=subscribers),
        settings,
        lambda prefix: _factory_maker(settings, prefix),
        confirm=lambda plan: True,
    )
    assert report.delivered == 2
    html = parsed(smtp_server.messages[0].data).get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "(Gemeente &lt;Ede&gt; &amp; Co)" in html


def test_stop_event_finishes_in_flight_and_resumes(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_env(monkeypatch, smtp_server)
    subscribers = write_list(tmp_path / "lijst.csv", members(40))
    settings = load_settings(home=find_home(example_copy), create_secret=True)
    stop = threading.Event()

    def progress(state: Progress) -> None:
        if state.done == 10:
            stop.set()

    report = send_issue(
        SendRequest(issue_dir=example_copy, subscribers_path=subscribers, rate=200),
        settings,
        lambda prefix: _factory_maker(settings, prefix),
        confirm=lambda plan: True,
        progress=progress,
        stop=stop,
    )
    assert report.interrupted and 10 <= report.delivered < 40
    code, _out, _ = send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")
    assert code == 0
    assert Counter(smtp_server.recipients()) == Counter(a for _, a in members(40))


def test_send_refuses_an_issue_that_fails_the_check_unless_forced(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_env(monkeypatch, smtp_server)
    article = example_copy / "02-bim.md"
    article.write_text(
        article.read_text(encoding="utf-8") + "\n![](http://www.bureau-kennis.net/bim.png)\n",
        encoding="utf-8",
    )
    subscribers = write_list(tmp_path / "lijst.csv", members(3))
    code, _, err = send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")
    assert code == 2
    assert "the issue has problems; fix them or add --force" in err
    assert "img-alt" in err and "img-url" in err
    assert smtp_server.messages == []
    code, _, err = send_cli(
        str(example_copy), "--subscribers", str(subscribers), "--yes", "--force"
    )
    assert code == 0, err
    assert "sending despite" in err
    assert len(smtp_server.messages) == 3


def test_ten_thousand_subscribers_each_get_exactly_one_message(
    example_copy: Path, tmp_path: Path, make_smtp_server: object
) -> None:
    """The issue's 'done when': the example to 10,000 over a real server, one each."""
    count = 10_000
    server = make_smtp_server(pipelining=True, headers_only=True)  # type: ignore[operator]
    subscribers = write_list(tmp_path / "lijst.csv", members(count))
    env = {
        **os.environ,
        "NIEUWSBRIEF_SMTP_HOST": server.host,
        "NIEUWSBRIEF_SMTP_PORT": str(server.port),
        "NIEUWSBRIEF_SMTP_SECURITY": "none",
    }
    run = send_process(example_copy, subscribers, env, tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr
    assert f"Delivered: {count}" in run.stdout
    received = server.messages
    assert Counter(r for m in received for r in m.rcpt_tos) == Counter(a for _, a in members(count))
    headers = [parsed(m.data + b"\r\n\r\n") for m in received]
    assert all(
        h["To"].addresses[0].addr_spec == m.rcpt_tos[0]
        for h, m in zip(headers, received, strict=True)
    )
    assert len({h["Message-ID"] for h in headers}) == count
    assert all(h["List-Unsubscribe-Post"] is None for h in headers)  # no https URL configured


def test_server_gone_mid_send_says_how_to_resume_and_resumes(
    example_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nieuwsbrief.errors import PartialSendError

    server = SmtpServer().start()
    smtp_env(monkeypatch, server)
    subscribers = write_list(tmp_path / "lijst.csv", members(30))
    settings = load_settings(home=find_home(example_copy), create_secret=True)
    request = SendRequest(
        issue_dir=example_copy,
        subscribers_path=subscribers,
        connections=1,
        reconnect_delays=(0.01, 0.01),
    )

    def progress(state: Progress) -> None:
        if state.done == 10:
            server.stop()  # the relay goes away for good

    with pytest.raises(
        PartialSendError, match="run the same command again to send to the rest"
    ) as err:
        send_issue(
            request,
            settings,
            lambda prefix: _factory_maker(settings, prefix),
            confirm=lambda plan: True,
            progress=progress,
        )
    assert err.value.exit_code == 1  # partly sent
    first = server.recipients()
    assert 10 <= len(first) < 30

    replacement = SmtpServer()
    replacement.port = server.port  # the relay is back, at the same address
    replacement.start()
    try:
        report = send_issue(
            request,
            settings,
            lambda prefix: _factory_maker(settings, prefix),
            confirm=lambda plan: True,
        )
        assert report.plan.already_sent == len(first)
        assert sorted(first + replacement.recipients()) == sorted(a for _, a in members(30))
    finally:
        replacement.stop()
