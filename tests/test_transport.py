"""Transport tests against a real aiosmtpd server on 127.0.0.1 and a real Maildir."""

from __future__ import annotations

import base64
import email
import email.policy
import mailbox
import select
import socket
import ssl
from pathlib import Path

import pytest

from hostile_smtp import HostileSmtpServer, Script
from nieuwsbrief.addresses import is_loopback_host
from nieuwsbrief.errors import DeliveryError
from nieuwsbrief.sending.outbox import MaildirOutbox
from nieuwsbrief.sending.smtp import (
    SmtpConnection,
    SmtpParams,
    SmtpTransport,
    check_auth_allowed,
)
from nieuwsbrief.sending.transport import (
    ConnectionLost,
    Outcome,
    OutOfStep,
    Reply,
    TimedOut,
)
from smtp_server import Fault, SmtpServer

SENDER = "nieuwsbrief@bureau-kennis.nl"
USER, PASSWORD = "nieuwsbrief", "zeer-geheim-wachtwoord"


def message(n: int = 1, body: str = "Hallo.") -> bytes:
    return (
        f"From: {SENDER}\r\nTo: lid{n}@example.nl\r\nSubject: Nieuwsbrief {n}\r\n"
        f"Message-ID: <{n}@bureau-kennis.nl>\r\n\r\n{body}\r\n"
    ).encode()


def params(server: SmtpServer, **changes: object) -> SmtpParams:
    security = {None: "none", "starttls": "starttls", "ssl": "ssl"}[server.tls]
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "security": security,
        "user": USER if server.auth else None,
        "password": PASSWORD,
        "helo_name": "client.test",
        "timeout": 5.0,
        "ssl_context": server.client_context,
    }
    values.update(changes)
    return SmtpParams(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("pipelining", [False, True], ids=["lock-step", "pipelined"])
def test_messages_arrive_intact_over_one_connection(pipelining: bool) -> None:
    tricky = "Eerste regel.\r\n.begint met een punt\r\n..twee punten\r\n.\r\nslot"
    with SmtpServer(pipelining=pipelining) as server:
        connection = SmtpConnection.open(params(server))
        assert connection.pipelining is pipelining
        replies = [
            connection.send(SENDER, f"lid{n}@example.nl", message(n, tricky)) for n in (1, 2)
        ]
        connection.close()

    assert [reply.outcome for reply in replies] == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert replies[0].code == 250 and replies[0].enhanced == "2.0.0"
    received = server.messages
    assert [m.rcpt_tos for m in received] == [("lid1@example.nl",), ("lid2@example.nl",)]
    assert all(m.mail_from == SENDER for m in received)
    assert received[1].data == message(2, tricky)  # dot-stuffing undone exactly
    assert {m.session for m in received} == {1}
    assert all(m.pipelined is pipelining for m in received)


@pytest.mark.parametrize("pipelining", [False, True], ids=["lock-step", "pipelined"])
def test_refusals_are_classified_and_the_connection_stays_usable(pipelining: bool) -> None:
    faults = {
        "weg@example.nl": Fault("550 5.1.1 No such user"),
        "vol@example.nl": Fault("452 4.2.2 Mailbox full"),
        "later@example.nl": Fault("451 4.7.1 Try again later", stage="data"),
    }
    with SmtpServer(pipelining=pipelining, faults=faults) as server:
        connection = SmtpConnection.open(params(server))
        gone = connection.send(SENDER, "weg@example.nl", message())
        full = connection.send(SENDER, "vol@example.nl", message())
        later = connection.send(SENDER, "later@example.nl", message())
        fine = connection.send(SENDER, "lid@example.nl", message())
        assert connection.is_open
        connection.close()

    assert (gone.outcome, str(gone)) == (Outcome.PERMANENT, "550 5.1.1 No such user")
    assert (full.outcome, full.code, full.enhanced) == (Outcome.TEMPORARY, 452, "4.2.2")
    assert (later.outcome, later.text) == (Outcome.TEMPORARY, "Try again later")
    assert fine.outcome is Outcome.ACCEPTED
    assert server.recipients() == ["lid@example.nl"]
    assert server.sessions == 1


def test_421_closes_the_connection_and_is_temporary() -> None:
    faults = {"druk@example.nl": Fault("421 4.7.0 Too many messages, slow down")}
    with SmtpServer(pipelining=True, faults=faults) as server:
        connection = SmtpConnection.open(params(server))
        reply = connection.send(SENDER, "druk@example.nl", message())
        assert reply.outcome is Outcome.TEMPORARY and reply.code == 421
        assert not connection.is_open
        with pytest.raises(ConnectionLost):
            connection.send(SENDER, "lid@example.nl", message())


def test_a_hang_up_before_the_reply_raises_connection_lost() -> None:
    with SmtpServer(drop_after=1) as server:
        connection = SmtpConnection.open(params(server))
        assert connection.send(SENDER, "a@example.nl", message()).outcome is Outcome.ACCEPTED
        with pytest.raises(ConnectionLost):
            connection.send(SENDER, "b@example.nl", message())
        assert not connection.is_open
    assert server.recipients() == ["a@example.nl"]


def test_starttls_with_login() -> None:
    with SmtpServer(tls="starttls", auth=(USER, PASSWORD), pipelining=True) as server:
        connection = SmtpTransport(params(server)).open()
        assert connection.send(SENDER, "lid@example.nl", message()).outcome is Outcome.ACCEPTED
        connection.close()
    assert server.recipients() == ["lid@example.nl"]


def test_implicit_tls_with_login() -> None:
    with SmtpServer(tls="ssl", auth=(USER, PASSWORD)) as server:
        connection = SmtpTransport(params(server)).open()
        assert connection.send(SENDER, "lid@example.nl", message()).outcome is Outcome.ACCEPTED
        connection.close()
    assert server.recipients() == ["lid@example.nl"]


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_an_untrusted_certificate_is_refused(tls: str) -> None:
    with SmtpServer(tls=tls) as server:  # type: ignore[arg-type]
        # The system's CAs do not know the test CA.
        untrusted = params(server, ssl_context=ssl.create_default_context())
        with pytest.raises(DeliveryError) as caught:
            SmtpConnection.open(untrusted)
    text = str(caught.value)
    assert text.startswith(f"127.0.0.1:{server.port} presented a TLS certificate that cannot be")
    assert "(unable to get local issuer certificate)" in text
    assert server.messages == []


def test_a_refused_login_names_server_and_user_but_not_the_password() -> None:
    server = SmtpServer(tls="starttls", auth=(USER, "het-echte-wachtwoord"))
    with server, pytest.raises(DeliveryError) as caught:
        SmtpConnection.open(params(server))
    text = str(caught.value)
    assert text.startswith(
        f"127.0.0.1:{server.port} refused the login for 'nieuwsbrief' (535 5.7.8"
    )
    assert PASSWORD not in text
    assert PASSWORD not in repr(params(server))
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_starttls_missing_is_an_error_not_a_silent_downgrade() -> None:
    with SmtpServer() as server, pytest.raises(DeliveryError, match="does not offer STARTTLS"):
        SmtpConnection.open(params(server, security="starttls"))


def test_a_closed_port_is_a_delivery_error() -> None:
    with SmtpServer() as server:
        pass  # stopped: nothing listens on its port any more
    with pytest.raises(DeliveryError, match=rf"127.0.0.1:{server.port} cannot be reached"):
        SmtpConnection.open(params(server))


def test_no_password_without_tls_except_to_this_machine() -> None:
    remote = SmtpParams("smtp.example.nl", 25, "none", user=USER, password=PASSWORD)
    with pytest.raises(DeliveryError) as caught:
        check_auth_allowed(remote)
    assert "without TLS" in str(caught.value) and PASSWORD not in str(caught.value)
    with pytest.raises(DeliveryError, match="without TLS"):
        SmtpConnection.open(remote)  # refused before any connection is attempted

    check_auth_allowed(SmtpParams("127.0.0.1", 25, "none", user=USER, password=PASSWORD))
    check_auth_allowed(SmtpParams("smtp.example.nl", 587, "starttls", user=USER))
    check_auth_allowed(SmtpParams("smtp.example.nl", 25, "none"))  # no login at all
    assert is_loopback_host("localhost") and is_loopback_host("::1")
    assert is_loopback_host("127.0.0.2") and is_loopback_host("mail.localhost")
    assert is_loopback_host("[::1]")
    assert not is_loopback_host("smtp.example.nl") and not is_loopback_host("10.0.0.1")
    assert not is_loopback_host("localhost.example.nl")


def test_plain_login_to_loopback_is_allowed() -> None:
    with SmtpServer(auth=(USER, PASSWORD)) as server:
        connection = SmtpConnection.open(params(server))
        assert connection.send(SENDER, "lid@example.nl", message()).outcome is Outcome.ACCEPTED
        connection.close()


def test_describe_says_where_messages_go(tmp_path: Path) -> None:
    smtp = SmtpTransport(SmtpParams("smtp.example.nl", 587, "starttls", user=USER, password="x"))
    assert smtp.describe() == "smtp.example.nl:587 (starttls, user nieuwsbrief)"
    assert MaildirOutbox(tmp_path / "outbox").describe() == f"local outbox {tmp_path / 'outbox'}"


def test_reply_parsing() -> None:
    reply = Reply.parse(550, b"5.1.1 <x@example.nl>: Recipient address rejected\n5.1.1 Unknown")
    assert (reply.code, reply.enhanced) == (550, "5.1.1")
    assert reply.text == "<x@example.nl>: Recipient address rejected Unknown"
    assert str(Reply.parse(250, b"Ok")) == "250 Ok"
    assert Reply.parse(354, b"go ahead").outcome is Outcome.PERMANENT  # never a final answer


def test_maildir_outbox_writes_readable_messages(tmp_path: Path) -> None:
    outbox = MaildirOutbox(tmp_path / "outbox")
    channel = outbox.open()
    for n in (1, 2):
        reply = channel.send(SENDER, f"lid{n}@example.nl", message(n, "Tot ziens."))
        assert reply.outcome is Outcome.ACCEPTED
    channel.close()

    files = sorted((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 2 and not any((tmp_path / "outbox" / "tmp").iterdir())
    parsed = [
        email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
        for m in mailbox.Maildir(tmp_path / "outbox", create=False)
    ]
    by_rcpt = {str(m["Delivered-To"]): m for m in parsed}
    assert sorted(by_rcpt) == ["lid1@example.nl", "lid2@example.nl"]
    first = by_rcpt["lid1@example.nl"]
    assert first["Subject"] == "Nieuwsbrief 1" and first["Return-Path"] == f"<{SENDER}>"
    assert first.get_content().strip() == "Tot ziens."


def test_maildir_outbox_in_an_existing_empty_folder(tmp_path: Path) -> None:
    outbox = MaildirOutbox(tmp_path)
    assert outbox.send(SENDER, "lid@example.nl", message()).outcome is Outcome.ACCEPTED
    assert len(list((tmp_path / "new").iterdir())) == 1


def test_maildir_outbox_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "bestand").write_text("geen map")
    with pytest.raises(DeliveryError, match="cannot create the outbox"):
        MaildirOutbox(tmp_path / "bestand" / "outbox")


# -- the next transaction right behind a body (RFC 2920 3.1) ---------------------------------


def test_the_next_envelope_rides_in_the_same_write_as_the_body() -> None:
    tricky = "Eerste regel.\r\n.begint met een punt\r\n.\r\nslot"
    with SmtpServer(pipelining=True) as server:
        connection = SmtpConnection.open(params(server))
        assert connection.begin(SENDER, "lid1@example.nl") is None
        first = connection.finish(message(1, tricky), (SENDER, "lid2@example.nl"))
        assert connection.pipelined() is None  # 250 250 354: the body is due
        second = connection.finish(message(2, tricky), (SENDER, "lid3@example.nl"))
        assert connection.pipelined() is None
        third = connection.finish(message(3, tricky))
        assert connection.is_open
        connection.close()

    assert [r.outcome for r in (first, second, third)] == [Outcome.ACCEPTED] * 3
    received = server.messages
    assert [m.rcpt_tos for m in received] == [(f"lid{n}@example.nl",) for n in (1, 2, 3)]
    assert [m.data for m in received] == [message(n, tricky) for n in (1, 2, 3)]
    assert [m.chained for m in received] == [True, True, False]  # MAIL came with the body
    assert all(m.pipelined for m in received) and {m.session for m in received} == {1}


@pytest.mark.parametrize(
    ("faults", "mail_faults", "expected"),
    [
        ({"weg@example.nl": Fault("550 5.1.1 No such user")}, {}, "550 5.1.1 No such user"),
        ({}, {2: "451 4.3.0 Try again later"}, "451 4.3.0 Try again later"),
    ],
    ids=["550-on-rcpt", "451-on-mail"],
)
def test_a_refused_next_envelope_leaves_a_clean_connection(
    faults: dict[str, Fault], mail_faults: dict[int, str], expected: str
) -> None:
    with SmtpServer(pipelining=True, faults=faults, mail_faults=mail_faults) as server:
        connection = SmtpConnection.open(params(server))
        assert connection.begin(SENDER, "lid1@example.nl") is None
        first = connection.finish(message(1), (SENDER, "weg@example.nl"))
        refused = connection.pipelined()
        assert connection.is_open
        after = connection.send(SENDER, "lid3@example.nl", message(3))
        connection.close()

    assert first.outcome is Outcome.ACCEPTED
    assert refused is not None and str(refused) == expected
    assert after.outcome is Outcome.ACCEPTED
    assert server.recipients() == ["lid1@example.nl", "lid3@example.nl"]
    assert server.sessions == 1


def test_a_refused_body_does_not_disturb_the_pipelined_next_envelope() -> None:
    faults = {"later@example.nl": Fault("451 4.7.1 Try again later", stage="data")}
    with SmtpServer(pipelining=True, faults=faults) as server:
        connection = SmtpConnection.open(params(server))
        assert connection.begin(SENDER, "later@example.nl") is None
        later = connection.finish(message(1), (SENDER, "lid2@example.nl"))
        assert connection.pipelined() is None
        fine = connection.finish(message(2))
        connection.close()
    assert (later.code, fine.outcome) == (451, Outcome.ACCEPTED)
    assert server.recipients() == ["lid2@example.nl"]


def test_an_unusable_next_address_is_refused_without_being_sent() -> None:
    with SmtpServer(pipelining=True) as server:
        connection = SmtpConnection.open(params(server))
        assert connection.begin(SENDER, "lid1@example.nl") is None
        first = connection.finish(message(1), (SENDER, "x@example.nl>\r\nRSET"))
        refused = connection.pipelined()
        assert connection.send(SENDER, "lid2@example.nl", message(2)).outcome is Outcome.ACCEPTED
        connection.close()
    assert first.outcome is Outcome.ACCEPTED
    assert refused is not None and refused.code == 0
    assert str(refused).startswith("not delivered: address not usable in an SMTP command")
    assert server.recipients() == ["lid1@example.nl", "lid2@example.nl"]


def test_421_to_a_body_cancels_the_next_envelope() -> None:
    faults = {"druk@example.nl": Fault("421 4.7.0 Too many messages", stage="data")}
    with SmtpServer(pipelining=True, faults=faults) as server:
        connection = SmtpConnection.open(params(server))
        assert connection.begin(SENDER, "druk@example.nl") is None
        reply = connection.finish(message(1), (SENDER, "lid2@example.nl"))
        assert reply.code == 421 and not connection.is_open
        with pytest.raises(ConnectionLost):
            connection.begin(SENDER, "lid2@example.nl")
    assert server.recipients() == []


@pytest.mark.parametrize("state", ["after-354", "envelope-unanswered"])
def test_closing_mid_transaction_hangs_up_without_delivering(state: str) -> None:
    with HostileSmtpServer(Script(pipelining=True)) as server:  # well-behaved, and it listens
        connection = SmtpConnection.open(hostile(server))
        assert connection.begin(SENDER, "lid1@example.nl") is None
        if state == "envelope-unanswered":
            connection.finish(message(1), (SENDER, "lid2@example.nl"))
        connection.close()
        assert not connection.is_open
        assert server.wait_until(lambda: 1 in server.ended), "the client never hung up"
    # No QUIT (mid-message it would become message text, and close would wait for a reply
    # that never comes) and no "." (which would deliver the unfinished message).
    lines = server.received[1]
    assert not any(line.upper().startswith(b"QUIT") for line in lines), lines[-3:]
    finished = 1 if state == "envelope-unanswered" else 0
    assert lines.count(b".\r\n") == finished
    if not finished:  # nothing at all after DATA was answered 354
        # (With replies left unread, as in the other state, the hang-up is a reset, which may
        # cost the server the last lines it had not read yet: nothing to assert on them.)
        assert lines[-1] == b"DATA\r\n", lines[-3:]
    assert server.stored_recipients() == (["lid1@example.nl"] if finished else [])


def test_without_pipelining_the_next_envelope_is_not_offered() -> None:
    with SmtpServer() as server:
        connection = SmtpConnection.open(params(server))
        assert connection.begin(SENDER, "lid1@example.nl") is None
        with pytest.raises(RuntimeError, match="PIPELINING"):
            connection.finish(message(1), (SENDER, "lid2@example.nl"))
        connection.close()


# -- servers that misbehave (tests/hostile_smtp.py) -------------------------------------------


def hostile(server: HostileSmtpServer, **changes: object) -> SmtpParams:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "helo_name": "client.test",
        "timeout": 5.0,
        "data_timeout": 5.0,
    }
    values.update(changes)
    return SmtpParams(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("pipelining", [False, True], ids=["lock-step", "pipelined"])
def test_250_to_data_puts_the_connection_out_of_step(pipelining: bool) -> None:
    script = Script(pipelining=pipelining, data_reply_250={"lid@example.nl"})
    with HostileSmtpServer(script) as server:
        connection = SmtpConnection.open(hostile(server))
        with pytest.raises(OutOfStep) as caught:
            connection.send(SENDER, "lid@example.nl", message())
        assert not connection.is_open
    assert str(caught.value) == (
        f"127.0.0.1:{server.port} is out of step: 250 2.0.0 Ok in answer to DATA (expected 354)"
    )
    assert server.stored == []


@pytest.mark.parametrize("pipelining", [False, True], ids=["lock-step", "pipelined"])
def test_an_unsolicited_reply_after_a_body_is_never_taken_for_the_next(pipelining: bool) -> None:
    with HostileSmtpServer(Script(pipelining=pipelining, extra_reply_after_body=True)) as server:
        connection = SmtpConnection.open(hostile(server))
        assert connection.send(SENDER, "a@example.nl", message(1)).outcome is Outcome.ACCEPTED
        # Wait until the extra reply has reached the client's socket (were it later, DATA
        # would still catch it, as out of step): the socket is the client's own, looked at.
        assert server.wait_until(lambda: server.extra_replies == 1)
        assert select.select([connection._live().socket()], [], [], 30)[0]
        with pytest.raises(OutOfStep, match="sent something nobody asked for"):
            connection.send(SENDER, "b@example.nl", message(2))
    assert server.stored_recipients() == ["a@example.nl"]


def test_a_shifted_reply_that_reaches_data_is_out_of_step() -> None:
    with HostileSmtpServer(Script(extra_reply_after_body=True)) as server:
        connection = SmtpConnection.open(hostile(server))
        assert connection.begin(SENDER, "a@example.nl") is None
        # The extra 250 lands on b's MAIL, MAIL's on RCPT, RCPT's on DATA: never a 354.
        assert connection.finish(message(1), (SENDER, "b@example.nl")).code == 250
        with pytest.raises(OutOfStep, match=r"250 2\.1\.5 Ok in answer to DATA"):
            connection.pipelined()
        connection.close()
    assert server.stored_recipients() == ["a@example.nl"]


def test_a_black_hole_after_the_body_times_out() -> None:
    with HostileSmtpServer(Script(black_hole_after=0)) as server:
        connection = SmtpConnection.open(hostile(server, data_timeout=0.3))
        with pytest.raises(TimedOut) as caught:
            connection.send(SENDER, "a@example.nl", message())
        assert not connection.is_open
    assert str(caught.value) == (
        f"127.0.0.1:{server.port}: no reply to the end of the message within 0.3 s"
    )
    assert server.stored == []


def test_a_server_that_never_greets_is_given_up_after_the_reply_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # connections complete, nobody ever answers
        port = silent.getsockname()[1]
        with pytest.raises(DeliveryError, match=rf"127.0.0.1:{port} did not answer within"):
            SmtpConnection.open(SmtpParams("127.0.0.1", port, "none", timeout=0.3))


def test_a_100000_line_refusal_is_cut_and_the_connection_closed() -> None:
    with HostileSmtpServer(Script(long_refusal={"weg@example.nl": 100_000})) as server:
        connection = SmtpConnection.open(hostile(server))
        reply = connection.send(SENDER, "weg@example.nl", message())
        assert not connection.is_open  # the rest of that reply is never read
    assert (reply.code, reply.enhanced, reply.outcome) == (550, "5.1.1", Outcome.PERMANENT)
    assert reply.text.startswith("this mailbox is unavailable")
    assert len(str(reply).encode()) <= 512 and str(reply).endswith("…")


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 400 Bad Request\r\n",
        b"250-2.1.5 first line\r\n550 5.1.1 then another code\r\n",
        b"250 " + b"x" * 2000 + b"\r\n",
        b"\x00\x01\x02 binary\r\n",
    ],
    ids=["not-smtp", "mixed-codes", "over-long-line", "binary"],
)
def test_garbage_replies_put_the_connection_out_of_step(raw: bytes) -> None:
    with HostileSmtpServer(Script(raw_rcpt_reply={"lid@example.nl": raw})) as server:
        connection = SmtpConnection.open(hostile(server))
        with pytest.raises(OutOfStep) as caught:
            connection.send(SENDER, "lid@example.nl", message())
        assert not connection.is_open
    assert "in answer to RCPT TO" in str(caught.value) and len(str(caught.value)) < 300
    assert server.stored == []


def test_an_echoed_auth_line_never_shows_the_credentials() -> None:
    server = HostileSmtpServer(Script(echo_auth=True))
    with server, pytest.raises(DeliveryError) as caught:
        SmtpConnection.open(hostile(server, user=USER, password=PASSWORD))
    text = str(caught.value)
    assert base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode() in server.auth_lines[0]
    assert text.startswith(f"127.0.0.1:{server.port} refused the login for 'nieuwsbrief' (535")
    assert "AUTH LOGIN [redacted]" in text
    for secret in (PASSWORD, *SmtpParams("h", 1, user=USER, password=PASSWORD).secrets()):
        assert secret not in text


def test_non_ascii_addresses_need_smtputf8() -> None:
    for offered in (False, True):
        with HostileSmtpServer(Script(smtputf8=offered)) as server:
            connection = SmtpConnection.open(hostile(server))
            reply = connection.send(SENDER, "jösé@example.nl", message())
            assert connection.send(SENDER, "lid@example.nl", message()).code == 250
            connection.close()
        if offered:
            assert reply.outcome is Outcome.ACCEPTED
            first = server.stored[0]
            assert (first.rcpt_tos, first.mail_options) == (("jösé@example.nl",), "SMTPUTF8")
        else:
            assert reply.outcome is Outcome.PERMANENT
            assert str(reply) == (
                f"not delivered: jösé@example.nl needs SMTPUTF8, which 127.0.0.1:{server.port} "
                "does not offer"
            )
            assert server.stored_recipients() == ["lid@example.nl"]


def test_replies_are_made_safe_where_they_are_created() -> None:
    long = Reply.parse(550, "5.1.1 " + "é" * 1000)
    assert len(str(long).encode()) <= 512 and str(long).endswith("…")
    assert "\x1b" not in Reply.parse(550, "5.1.1 \x1b[31mred\x1b[0m\x00").text
    plain = base64.b64encode(b"\0nieuwsbrief\0geheim").decode()
    assert plain not in str(Reply.parse(535, f"5.7.8 no {plain} here"))
    assert str(Reply.parse(535, "5.7.8 you said AUTH PLAIN AGEAYg==")).endswith(
        "AUTH PLAIN [redacted]"
    )
    assert "geheim" not in Reply.parse(535, "5.7.8 geheim", secrets=("geheim",)).text
    assert str(Reply.parse(250, "2.0.0 Ok: queued as 5B1C2D3E4F")) == (
        "250 2.0.0 Ok: queued as 5B1C2D3E4F"
    )
