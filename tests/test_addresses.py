"""International addresses: one normal form for comparing, the ASCII form for sending."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli_process import run_cli
from conftest import EXAMPLE_AGENDA, factory_maker, read_list
from nieuwsbrief.addresses import (
    needs_smtputf8,
    normalise_address,
    smtp_address,
)
from nieuwsbrief.compose import compose_issue
from nieuwsbrief.errors import AddressError
from nieuwsbrief.model import Subscriber
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from nieuwsbrief.unsubscribe.tokens import make_token, recipient_id
from smtp_server import SmtpServer
from test_send import parsed, send_process

SECRET = "test-secret-0123456789-abcdefghijklmnop"


@pytest.mark.parametrize(
    "written",
    [
        "a@bücher.example",
        "a@xn--bcher-kva.example",
        "A@XN--BCHER-KVA.EXAMPLE",
        "a@BÜCHER.example",
        " a@bu\u0308cher.example ",  # decomposed ü (NFD), as macOS writes it
    ],
)
def test_one_normal_form_for_unicode_and_punycode(written: str) -> None:
    assert normalise_address(written) == "a@bücher.example"
    assert smtp_address(normalise_address(written)) == "a@xn--bcher-kva.example"
    assert recipient_id(SECRET, written) == recipient_id(SECRET, "a@bücher.example")
    assert make_token(SECRET, written) == make_token(SECRET, "a@bücher.example")


def test_ascii_addresses_stay_as_they_were() -> None:
    # Tokens already sent must keep working: the normal form of plain addresses did not change.
    assert normalise_address(" Jan.Jansen@Gemeente.NL ") == "jan.jansen@gemeente.nl"
    assert smtp_address("Jan@Gemeente.nl") == "Jan@Gemeente.nl"


def test_idna2008_and_smtputf8() -> None:
    assert smtp_address("post@faß.de") == "post@xn--fa-hia.de"  # IDNA2008: ß stays ß
    assert smtp_address("jós@bücher.example") == "jós@xn--bcher-kva.example"
    assert needs_smtputf8("jós@bücher.example")
    assert not needs_smtputf8("jan@bücher.example")
    with pytest.raises(AddressError, match="is not a valid international domain name"):
        smtp_address("a@bü--cher..example")


def test_duplicates_and_suppression_compare_in_the_normal_form(tmp_path: Path) -> None:
    lst = tmp_path / "leden.csv"
    lst.write_text(
        "naam;e-mail\nA;a@bücher.example\nB;A@XN--BCHER-KVA.example\nC;c@bücher.example\n",
        encoding="utf-8",
    )
    loaded = read_list(lst)
    assert [s.email for s in loaded.subscribers] == ["a@bücher.example", "c@bücher.example"]
    assert [(d.line, d.first_line) for d in loaded.duplicates] == [(3, 2)]

    suppression = SuppressionList(tmp_path / "s.sqlite")
    suppression.add("c@xn--bcher-kva.example", "staff")
    assert suppression.is_suppressed("c@bücher.example")
    assert normalise_address("c@bücher.example") in suppression.suppressed_set()


def idn_list(path: Path) -> Path:
    """2,001 subscribers; row 1,001 (file line 1,002) has an international domain."""
    rows = [f"Lid {n};lid{n:05d}@example.nl" for n in range(1, 2002)]
    rows[1000] = "Jan Bücher;jan@bücher.example"
    path.write_text("naam;e-mail\r\n" + "\r\n".join(rows) + "\r\n", encoding="utf-8")
    return path


def test_subscribers_check_names_international_and_smtputf8_rows(tmp_path: Path) -> None:
    lst = idn_list(tmp_path / "leden.csv")
    with lst.open("a", encoding="utf-8") as handle:
        handle.write("José;josé@bücher.example\r\n")
    run = run_cli("subscribers", "check", str(lst), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "2002 valid recipients" in run.stdout
    assert (
        "  1 with non-ASCII characters before the @, sent only if the mail server offers "
        "SMTPUTF8 (otherwise that recipient fails):\n"
        f"    {lst}:2003: josé@bücher.example needs SMTPUTF8\n"
    ) in run.stdout
    assert (
        "  1 with an international domain, sent in its ASCII form "
        "(line 1002: jan@xn--bcher-kva.example)"
    ) in run.stdout


def test_send_to_an_international_domain_at_row_1001_of_2001(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    lst = idn_list(tmp_path / "leden.csv")
    env = {
        **os.environ,
        "NIEUWSBRIEF_SMTP_HOST": smtp_server.host,
        "NIEUWSBRIEF_SMTP_PORT": str(smtp_server.port),
        "NIEUWSBRIEF_SMTP_SECURITY": "none",
    }
    run = send_process(example_copy, lst, env, tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "Delivered: 2001" in run.stdout

    received = smtp_server.messages
    recipients = sorted(r for m in received for r in m.rcpt_tos)
    assert len(recipients) == 2001 and len(set(recipients)) == 2001
    (jan,) = [m for m in received if m.rcpt_tos == ("jan@xn--bcher-kva.example",)]
    message = parsed(jan.data)
    assert message["To"].addresses[0].addr_spec == "jan@xn--bcher-kva.example"
    assert message["To"].addresses[0].display_name == "Jan Bücher"
    text = message.get_body(("plain",))
    assert text is not None and "Beste Jan Bücher," in text.get_content()


def test_unsubscribe_in_punycode_matches_the_unicode_row(
    example_copy: Path, tmp_path: Path
) -> None:
    lst = tmp_path / "leden.csv"
    lst.write_text("naam;e-mail\nA;a@bücher.example\nB;b@example.nl\n", encoding="utf-8")
    outbox = tmp_path / "uit"
    env = {
        **os.environ,
        "NIEUWSBRIEF_SUPPRESSION_DB": str(tmp_path / "s.sqlite"),
        "NIEUWSBRIEF_OUTBOX": str(outbox),
    }
    run = run_cli("unsubscribe", "a@xn--bcher-kva.example", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "a@xn--bcher-kva.example: added (a@bücher.example)" in run.stdout

    run = run_cli("subscribers", "check", str(lst), cwd=tmp_path, env=env)
    assert "  1 suppressed (will be skipped)" in run.stdout
    run = run_cli(
        "send", str(example_copy), "--subscribers", str(lst), "--agenda", str(EXAMPLE_AGENDA),
        "--yes", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Delivered: 1 " in run.stdout and "1 unsubscribed" in run.stdout
    delivered = [p.read_bytes() for p in (outbox / "new").iterdir()]
    assert len(delivered) == 1 and b"To: B <b@example.nl>" in delivered[0]


def test_to_header_in_ascii_form_and_utf8_only_for_a_non_ascii_local_part(
    example_copy: Path,
) -> None:
    factory = compose_issue(example_copy, factory_maker).factory
    idn = factory.build(Subscriber(email="jan@bücher.example", name="Jan Bücher"))
    assert idn.isascii()
    assert b"To: =?utf-8?q?Jan_B=C3=BCcher?= <jan@xn--bcher-kva.example>\r\n" in idn
    # RFC 6532: with SMTPUTF8 a header carries UTF-8 as it is; the domain is still ASCII.
    utf8 = factory.build(Subscriber(email="josé@bücher.example", name="José"))
    assert 'To: "José" <josé@xn--bcher-kva.example>\r\n'.encode() in utf8
