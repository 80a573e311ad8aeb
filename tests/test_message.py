"""message: one MIME message per recipient, from an issue rendered once."""

from __future__ import annotations

import difflib
import email
import re
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from conftest import TEST_SECRET, house_style_copy
from nieuwsbrief import render
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


def test_two_recipients_differ_only_in_personal_values(example_copy: Path) -> None:
    """No tracking: the only per-recipient parts are the greeting and the unsubscribe link."""
    composed = compose_issue(
        example_copy, maker(unsubscribe_url="https://www.bureau-kennis.net/afmelden/{token}")
    )
    html_a, text_a = composed.factory.parts(Subscriber(email="a@example.nl", name="Anna"))
    html_b, text_b = composed.factory.parts(Subscriber(email="b@example.nl", name="Bert"))
    for one, other in ((html_a, html_b), (text_a, text_b)):
        changed = [
            line
            for line in difflib.ndiff(one.splitlines(), other.splitlines())
            if line.startswith(("- ", "+ "))
        ]
        assert len(changed) == 4, changed  # greeting and unsubscribe link, each - and +
        assert all(("Anna" in c or "Bert" in c or "/afmelden/1" in c) for c in changed)
    assert "a@example.nl" not in html_a and "a@example.nl" not in text_a
    assert not re.search(r'<img[^>]+width="1"', html_a)


def test_personalising_does_not_render_again(
    example_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10,000 recipients, a {voornaam|lezer} greeting and a merge field: one render."""
    templates = house_style_copy(tmp_path)
    brand = templates / "brand.yaml"
    brand.write_text(
        brand.read_text(encoding="utf-8").replace(
            'greeting: "Beste {name},"', 'greeting: "Beste {voornaam|lezer},"'
        ),
        encoding="utf-8",
    )
    article = example_copy / "02-bim.md"
    article.write_text(
        article.read_text(encoding="utf-8")
        + "\nOok in {{ subscriber.plaats }} werkt men met BIM.\n",
        encoding="utf-8",
    )
    calls = {"mjml": 0, "premailer": 0}
    original_mjml, original_inline = render.mjml_to_html, render.inline_css

    def counting_mjml(*args: object) -> str:
        calls["mjml"] += 1
        return original_mjml(*args)  # type: ignore[arg-type]

    def counting_inline(*args: object) -> str:
        calls["premailer"] += 1
        return original_inline(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(render, "mjml_to_html", counting_mjml)
    monkeypatch.setattr(render, "inline_css", counting_inline)
    composed = compose_issue(example_copy, maker(), templates_dir=templates)
    for n in range(10_000):
        fields = {"voornaam": f"Voornaam{n}" if n % 2 else "", "plaats": f"Plaats{n}"}
        data = composed.factory.build(
            Subscriber(email=f"lid{n}@example.nl", name=f"Lid {n}", fields=fields)
        )
        if n in (0, 1, 9_999):
            html, text = (parse(data).get_body((kind,)).get_content() for kind in ("html", "plain"))
            greeting = f"Beste Voornaam{n}," if n % 2 else "Beste lezer,"
            assert greeting in html and greeting in text
            assert f"Ook in Plaats{n} werkt" in html and f"Ook in Plaats{n} werkt" in text
    assert calls == {"mjml": 1, "premailer": 1}


def test_every_line_is_crlf_and_short(example_copy: Path) -> None:
    composed = compose_issue(example_copy, maker())
    data = composed.factory.build(Subscriber(email="a@example.nl", name="A"))
    lines = data.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    # Only a List-Unsubscribe URL, which may not be broken (RFC 2369), may exceed 78.
    long_lines = [line for line in lines if len(line) > 78]
    assert all(re.fullmatch(rb"(List-Unsubscribe: | )<[^<> ]+>,?", ln) for ln in long_lines)
    assert max(len(line) for line in lines) <= 998
