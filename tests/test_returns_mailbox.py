"""`nieuwsbrief mailbox` end to end: send an issue to a real SMTP server, return real reports
built from what it received into a real IMAP server (Dovecot), run `mailbox`, send again."""

from __future__ import annotations

import csv
import email
from email import policy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dovecot import PASSWORD, USER, Dovecot
from nieuwsbrief.cli import app
from nieuwsbrief.config import load_settings
from nieuwsbrief.errors import ReturnsSourceError
from nieuwsbrief.home import find_home
from nieuwsbrief.returns.run import returns_counts
from nieuwsbrief.returns.sources import ImapSource
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from returns_mail import arf, dsn, reply, write_maildir
from smtp_server import SmtpServer
from test_send import members, send_cli, smtp_env, write_list
from test_unsubscribe_flow import list_unsubscribe, next_issue

runner = CliRunner()
BOUNCES = "bounces@bureau-kennis.net"


@pytest.fixture(autouse=True)
def _inside_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mailbox` is a staff command: it finds the home (tmp_path) from the current folder."""
    monkeypatch.chdir(tmp_path)


def imap_env(monkeypatch: pytest.MonkeyPatch, server: Dovecot, security: str = "starttls") -> None:
    """Point the settings at the test Dovecot, trusting its certificate authority."""
    monkeypatch.setenv("NIEUWSBRIEF_IMAP_HOST", server.host)
    port = server.tls_port if security == "ssl" else server.port
    monkeypatch.setenv("NIEUWSBRIEF_IMAP_PORT", str(port))
    monkeypatch.setenv("NIEUWSBRIEF_IMAP_SECURITY", security)
    monkeypatch.setenv("NIEUWSBRIEF_IMAP_USER", USER)
    monkeypatch.setenv("NIEUWSBRIEF_IMAP_PASSWORD", PASSWORD)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_path))  # trust the test CA, verified


def delivered(server: SmtpServer, address: str) -> tuple[str, bytes]:
    """Return (envelope sender, bytes) of the message the SMTP server received for `address`."""
    received = next(m for m in server.messages if m.rcpt_tos == (address,))
    return received.mail_from, received.data


def returns_for(server: SmtpServer) -> list[bytes]:
    """What comes back after the first issue, one case per subscriber (lid00000 ... lid00011)."""
    path = {n: delivered(server, f"lid{n:05d}@example.nl") for n in range(12)}
    mailto = list_unsubscribe(server, "lid00004@example.nl")[1]
    token_subject = "Re: " + mailto.split("subject=", 1)[1].replace("%20", " ")
    verp7 = path[7][0]
    forged7 = (
        verp7.replace("+1", "+1a", 1)[: len(verp7.partition("@")[0])] + "@" + BOUNCES.split("@")[1]
    )
    lid = "lid{:05d}@example.nl".format
    return [
        dsn(path[0][1], to=path[0][0], recipient=lid(0), status="5.1.1", number=1),
        # Postfix after the queue lifetime: Action failed, status 4.4.7: transient.
        dsn(path[1][1], to=path[1][0], recipient=lid(1), status="4.4.7", number=2,
            diagnostic="X-Postfix; connect to mx.gemeente.example: Connection timed out"),
        arf(path[2][1], mail_from=path[2][0]),
        reply(sender=lid(3), to="afmelden@bureau-kennis.net", subject="afmelden", body="",
              number=3),
        reply(sender="iemand@elders.example", to="afmelden@bureau-kennis.net",
              subject=token_subject, body="", number=4),
        reply(sender=lid(5), to=path[5][0], subject="Automatisch antwoord: Nieuwsbrief",
              body="Ik ben afwezig tot 5 januari.", auto=True, number=5),
        reply(sender=lid(6), to="nieuwsbrief@bureau-kennis.net", subject="Re: Nieuwsbrief",
              body="Dank voor het mooie overzicht!", number=6),
        # A forged bounce: a token that does not verify, naming a real subscriber.
        dsn(None, to=forged7, recipient=lid(7), status="5.1.1", number=7),
        # Mailman-style VERP, unsigned: anyone could write it.
        dsn(None, to=f"bounces+lid00008=example.nl@{BOUNCES.split('@')[1]}", recipient=lid(8),
            status="5.1.1", number=8),
        # An MTA that strips VERP and reports the forwarding target: only the quoted
        # Message-ID (recorded in the ledger by send) says whom it is about.
        dsn(path[9][1], to=BOUNCES, recipient="l.negen@elders.example", status="5.1.1", number=9),
        # Never mailed by this home: unmatched.
        dsn(None, to=BOUNCES, recipient="stranger@example.org", status="5.1.1", number=10),
        # A policy block is about us, not the address: counted, nobody suppressed.
        dsn(path[10][1], to=path[10][0], recipient=lid(10), status="5.7.1", number=11,
            diagnostic="smtp; 550 5.7.1 Message rejected as spam"),
        # Mailbox full, Action failed: transient (5.2.2).
        dsn(path[11][1], to=path[11][0], recipient=lid(11), status="5.2.2", number=12),
    ]  # fmt: skip


SUPPRESSED = {
    "lid00000@example.nl": ("bounce", "hard bounce 5.1.1"),
    "lid00002@example.nl": ("complaint", "complaint (abuse)"),
    "lid00003@example.nl": ("mailto", "unsubscribe request by mail"),
    "lid00004@example.nl": ("mailto", "unsubscribe request by mail"),
    "lid00009@example.nl": ("bounce", "hard bounce 5.1.1"),
}


def test_send_return_mailbox_over_imap_then_the_next_send_skips_exactly_those(
    example_copy: Path,
    tmp_path: Path,
    smtp_server: SmtpServer,
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    smtp_env(monkeypatch, smtp_server, NIEUWSBRIEF_BOUNCE_ADDRESS=BOUNCES)
    imap_env(monkeypatch, dovecot)
    subscribers = write_list(tmp_path / "lijst.csv", members(12))
    assert send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")[0] == 0
    senders = {m.mail_from for m in smtp_server.messages}
    assert len(senders) == 12 and all(s.startswith("bounces+1") for s in senders)
    data = smtp_server.messages[0].data
    assert "example.nl" not in next(iter(senders))  # the return path shows no address
    assert email.message_from_bytes(data, policy=policy.default)["Return-Path"] is None

    dovecot.append(*returns_for(smtp_server))
    dry = runner.invoke(app, ["mailbox", "--dry-run"])
    assert dry.exit_code == 0, dry.stderr
    assert "Would suppress: 5 addresses" in dry.stdout
    assert runner.invoke(app, ["unsubscribe", "--list"]).stdout.startswith("0 unsubscribed")

    result = runner.invoke(app, ["mailbox"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "13 messages read" in out
    counted = "hard bounces 2, soft bounces 2, complaints 1, unsubscribes 2, auto-replies 1, "
    assert counted + "human replies 1" in out
    assert "unmatched 1, forged 2, skipped 0, other 1" in out
    assert "Suppressed: 5 addresses" in out
    assert PASSWORD not in out + result.stderr

    settings = load_settings(home=find_home(tmp_path))
    issue = "issues/2012-05"  # the ledger's identity of the example issue: its path in the home
    suppression = SuppressionList(settings.suppression_path)
    entries = {e.address: e for e in suppression.entries()}
    assert {a: (e.source, e.reason) for a, e in entries.items()} == SUPPRESSED
    assert f"issue {issue}; " in entries["lid00000@example.nl"].note
    assert "Status: 5.1.1" in entries["lid00000@example.nl"].note
    listing = runner.invoke(app, ["unsubscribe", "--list"]).stdout
    assert "bounce     lid00000@example.nl  hard bounce 5.1.1 (issue issues/2012-05;" in listing
    counts = returns_counts(settings, issue, sent=12)
    assert counts == {
        "hard_bounces": 2, "soft_bounces": 2, "complaints": 1, "unsubscribes": 2,
        "complaint_rate": 1 / 12,
    }  # fmt: skip
    status = runner.invoke(app, ["status", str(example_copy)])
    assert status.exit_code == 0, status.stderr
    assert (
        "Returns:    2 hard and 2 soft bounces, 1 complaints (8.33% of delivered), "
        "2 unsubscribed by mail" in status.stdout
    )
    assert all("$NbProcessed" in line for line in dovecot.flags())
    csv_files = list((settings.ledger_path.parent / "returns").glob("mailbox-*.csv"))
    assert len(csv_files) == 1
    rows = list(csv.DictReader(csv_files[0].open(encoding="utf-8-sig"), delimiter=";"))
    matched = {r["address"]: r["matched by"] for r in rows if r["outcome"] == "suppressed"}
    assert matched == {
        "lid00000@example.nl": "verp",
        "lid00002@example.nl": "verp",
        "lid00003@example.nl": "sender",
        "lid00004@example.nl": "token",
        "lid00009@example.nl": "message-id",
    }

    again = runner.invoke(app, ["mailbox"])
    assert again.exit_code == 0, again.stderr
    assert again.stdout.startswith("0 messages read") and "Suppressed: 0 addresses" in again.stdout
    assert suppression.entries() == list(entries.values())

    code, out, err = send_cli(
        str(next_issue(example_copy)), "--subscribers", str(subscribers), "--yes"
    )
    assert code == 0, err
    second = [m.rcpt_tos[0] for m in smtp_server.messages[12:]]
    assert sorted(second) == sorted(f"lid{n:05d}@example.nl" for n in range(12)
                                    if f"lid{n:05d}@example.nl" not in SUPPRESSED)  # fmt: skip


def test_imap_over_implicit_tls_with_the_certificate_verified(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    imap_env(monkeypatch, dovecot, security="ssl")
    dovecot.append(reply(sender="a@example.nl", to=BOUNCES, subject="Re: x", body="Dank"))
    result = runner.invoke(app, ["mailbox"])
    assert result.exit_code == 0, result.stderr
    assert "1 messages read" in result.stdout and "human replies 1" in result.stdout


def test_imap_refuses_an_unverified_certificate(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    imap_env(monkeypatch, dovecot, security="ssl")
    empty = tmp_path / "no-ca.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))  # trust nothing: the test CA is unknown
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    result = runner.invoke(app, ["mailbox"])
    assert result.exit_code == 2
    assert "TLS failed" in result.stderr and "Traceback" not in result.stderr


def test_imap_wrong_password_says_so_without_showing_it(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    imap_env(monkeypatch, dovecot)
    monkeypatch.setenv("NIEUWSBRIEF_IMAP_PASSWORD", "verkeerd-wachtwoord")
    result = runner.invoke(app, ["mailbox"])
    assert result.exit_code == 2
    assert f"refused the login for '{USER}'" in result.stderr
    assert "verkeerd-wachtwoord" not in result.stdout + result.stderr


def test_mailbox_reads_a_maildir_and_refuses_what_is_not_one(tmp_path: Path) -> None:
    box = write_maildir(
        tmp_path / "Maildir",
        reply(sender="a@example.nl", to=BOUNCES, subject="Re: x", body="Dank"),
    )
    csv_path = tmp_path / "a.csv"
    result = runner.invoke(app, ["mailbox", "--maildir", str(box), "--csv", str(csv_path)])
    assert result.exit_code == 0, result.stderr
    assert "human replies 1" in result.stdout
    assert csv_path.read_text(encoding="utf-8-sig").startswith("message;kind;outcome")
    wrong = runner.invoke(app, ["mailbox", "--maildir", str(tmp_path)])
    assert wrong.exit_code == 2
    assert f"Error: {tmp_path}: is not a Maildir (no cur/, new/, tmp/)" in wrong.stderr
    missing = runner.invoke(app, ["mailbox"])
    assert missing.exit_code == 2 and "use --maildir PATH or --mbox FILE" in missing.stderr


def test_verp_off_sends_every_message_from_the_bare_bounce_address(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_env(monkeypatch, smtp_server, NIEUWSBRIEF_BOUNCE_ADDRESS=BOUNCES, NIEUWSBRIEF_VERP="off")
    subscribers = write_list(tmp_path / "lijst.csv", members(3))
    assert send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")[0] == 0
    assert [m.mail_from for m in smtp_server.messages] == [BOUNCES] * 3


def test_a_dry_run_in_a_fresh_home_creates_no_state(tmp_path: Path) -> None:
    box = write_maildir(
        tmp_path / "Maildir",
        dsn(None, to=BOUNCES, recipient="a@example.nl", status="5.1.1"),
    )
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = runner.invoke(app, ["mailbox", "--maildir", str(box), "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert "Dry run, nothing changed: 1 messages read" in result.stdout
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_imap_server_gone_mid_run_is_an_error_not_a_traceback(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    imap_env(monkeypatch, dovecot)
    source = ImapSource(load_settings(home=find_home(tmp_path)))
    dovecot.stop()
    with pytest.raises(ReturnsSourceError, match="the connection failed mid-run"):
        list(source.items())
    source.close()
