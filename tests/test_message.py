"""message: one MIME message per recipient, from an issue rendered once."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from conftest import TEST_SECRET
from nieuwsbrief.compose import compose_issue
from nieuwsbrief.errors import MessageError
from nieuwsbrief.message import make_factory
from nieuwsbrief.model import Brand, RenderedIssue, Subscriber


def maker(**options: str):  # type: ignore[no-untyped-def]
    def make(rendered: RenderedIssue, brand: Brand):  # type: ignore[no-untyped-def]
        return make_factory(rendered, brand, secret=TEST_SECRET, **options)

    return make


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_non_ascii_subject_and_names_are_rfc2047_and_round_trip(example_copy: Path) -> None:
    issue_yaml = example_copy / "issue.yaml"
    text = issue_yaml.read_text(encoding="utf-8")
    issue_yaml.write_text(
        re.sub(r"^subject:.*$", 'subject: "Coördinatie – € en geïnteresseerden"', text, flags=re.M),
        encoding="utf-8",
    )
    composed = compose_issue(
        example_copy, maker(sender="Bureau | Kennis – Opleidingen <nieuwsbrief@bureau-kennis.net>")
    )
    data = composed.factory.build(Subscriber(email="zoe@example.nl", name="Zoë “Z” van Dijk"))
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert all(
        len(line) <= 78 or line.startswith(b"List-Unsubscribe: <") for line in head.split(b"\r\n")
    )
    message = parse(data)
    assert message["Subject"] == "Coördinatie – € en geïnteresseerden"
    assert message["From"].addresses[0].display_name == "Bureau | Kennis – Opleidingen"
    assert message["To"].addresses[0].display_name == "Zoë “Z” van Dijk"


@pytest.mark.parametrize("name", ["Jan\r\nBcc: x@evil.nl", "Jan\nBcc: x@evil.nl", "Jan\x00"])
def test_a_line_break_in_a_name_can_never_create_a_header(example_copy: Path, name: str) -> None:
    composed = compose_issue(example_copy, maker())
    with pytest.raises(MessageError):
        composed.factory.build(Subscriber(email="jan@example.nl", name=name))


def test_every_line_is_crlf_and_short(example_copy: Path) -> None:
    composed = compose_issue(example_copy, maker())
    data = composed.factory.build(Subscriber(email="a@example.nl", name="A"))
    lines = data.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    # Only a List-Unsubscribe URL, which may not be broken (RFC 2369), may exceed 78.
    long_lines = [line for line in lines if len(line) > 78]
    assert all(re.fullmatch(rb"(List-Unsubscribe: | )<[^<> ]+>,?", ln) for ln in long_lines)
    assert max(len(line) for line in lines) <= 998
