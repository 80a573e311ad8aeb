"""The messages a real `nieuwsbrief send` delivers, as aiosmtpd received them.

Privacy (nothing of one recipient in another's message), render-once (one MJML and one premailer
run for the whole send) and "alike but for the personal values" are checked on those bytes, not
on helpers of the message factory: only what the send path really builds counts.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from conftest import TEST_SECRET
from nieuwsbrief.unsubscribe.tokens import find_token, make_token, recipient_id, verify_token
from smtp_server import SmtpServer
from test_authoring import add_merge_field
from test_send import UNSUBSCRIBE_URL, parsed, send_cli, smtp_env


@dataclass(frozen=True)
class Member:
    name: str
    address: str
    plaats: str  # a merge field in an article: {{ subscriber.plaats }}

    @property
    def token(self) -> str:
        return make_token(TEST_SECRET, self.address)

    def personal(self) -> list[str]:
        """Every personal value of this member, as text and as HTML would write it."""
        values = [self.address, self.token, self.plaats, *([self.name] if self.name else [])]
        escaped = [html.escape(v, quote=q) for v in values for q in (False, True)]
        return sorted({*values, *escaped}, key=len, reverse=True)


MEMBERS = [
    Member("Anna de Vries", "anna.devries@gemeente-a.nl", "Zwartewaterland"),
    Member("Bert Jansen", "b.jansen@gemeente-b.nl", "Kampereiland"),
    Member("Zoë d’Ançay", "zoe@voorbeeld.nl", "Ede & Wageningen"),
    Member("Mr. J. (Joost) van 't Hof", "joost@hof.example", "Midden-Delfland"),
    Member("", "info@anoniem.example", "Noord-Beveland"),
]


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the real MJML and premailer runs (counting pass-throughs, the real code runs)."""
    import mjml
    import premailer

    calls: Counter[str] = Counter()
    real_mjml = mjml.mjml2html
    real_transform = premailer.Premailer.transform

    def counting_mjml(*args: Any, **kwargs: Any) -> Any:
        calls["mjml"] += 1
        return real_mjml(*args, **kwargs)

    def counting_transform(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["premailer"] += 1
        return real_transform(self, *args, **kwargs)

    monkeypatch.setattr(mjml, "mjml2html", counting_mjml)
    monkeypatch.setattr(premailer.Premailer, "transform", counting_transform)
    return calls


@pytest.fixture
def delivered(
    example_copy: Path,
    tmp_path: Path,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    renders: Counter[str],
) -> dict[Member, EmailMessage]:
    """Run a real send of the example (with a merge field) to MEMBERS; yield what arrived."""
    smtp_env(monkeypatch, smtp_server)
    add_merge_field(example_copy)
    subscribers = tmp_path / "leden.csv"
    rows = ["naam;e-mail;plaats", *(f"{m.name};{m.address};{m.plaats}" for m in MEMBERS)]
    subscribers.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    code, out, err = send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")
    assert code == 0, err
    assert f"Delivered: {len(MEMBERS)}" in out
    by_address = {m.address: m for m in MEMBERS}
    received: dict[Member, EmailMessage] = {}
    for item in smtp_server.messages:
        (rcpt,) = item.rcpt_tos
        assert by_address[rcpt] not in received, f"{rcpt} got two messages"
        received[by_address[rcpt]] = parsed(item.data)
    assert set(received) == set(MEMBERS)
    return {m: received[m] for m in MEMBERS}


def readable(message: EmailMessage) -> str:
    """Every header (decoded) and every part (decoded) of `message`, as one text."""
    lines = [f"{name}: {value}" for name, value in message.items()]
    for part in message.walk():
        if not part.is_multipart():
            lines.append(part.get_content())
    return "\n".join(lines)


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None, f"no text/{kind} part"
    content: str = part.get_content()
    return content


def test_no_recipient_sees_anything_of_another(
    delivered: dict[Member, EmailMessage], smtp_server: SmtpServer
) -> None:
    # The bytes as sent as well as decoded: a value may hide in an encoded word or in
    # quoted-printable, and the decoded text would not show a header the parser dropped.
    raw = {item.rcpt_tos[0]: item.data for item in smtp_server.messages}
    for member, message in delivered.items():
        text = readable(message)
        data = raw[member.address]
        # Their own values are there (so the search below can find such values at all) ...
        assert message["To"].addresses[0].addr_spec == member.address
        assert member.token in text and member.plaats in body(message, "plain")
        if member.name:
            assert message["To"].addresses[0].display_name == member.name
            assert f"Beste {member.name}," in body(message, "plain")
        # Not even their own address in the text they might forward (the links carry a token).
        assert member.address not in body(message, "html") + body(message, "plain")
        # ... and nothing of anybody else: not in any header or part, decoded or as sent.
        for other in MEMBERS:
            if other == member:
                continue
            for value in other.personal():
                assert value.lower() not in text.lower(), (member.address, value)
            for value in (other.address, other.token):
                assert value.lower().encode() not in data.lower(), (member.address, value)


def test_the_unsubscribe_token_of_a_message_verifies_to_its_recipient_only(
    delivered: dict[Member, EmailMessage],
) -> None:
    ids = {m: recipient_id(TEST_SECRET, m.address) for m in MEMBERS}
    for member, message in delivered.items():
        https, mailto = (
            link.strip().strip("<>") for link in message["List-Unsubscribe"].split(",")
        )
        token = find_token(https)
        assert token is not None and https == UNSUBSCRIBE_URL.replace("{token}", token)
        assert mailto.endswith(f"subject=afmelden%20{token}")
        assert verify_token(TEST_SECRET, token) == ids[member]
        assert [m for m in MEMBERS if ids[m] == verify_token(TEST_SECRET, token)] == [member]
        assert f'href="{https}"' in body(message, "html") and https in body(message, "plain")


def test_the_whole_send_renders_once(
    delivered: dict[Member, EmailMessage], renders: Counter[str]
) -> None:
    assert len(delivered) == len(MEMBERS) > 1
    assert renders == {"mjml": 1, "premailer": 1}


def masked(member: Member, message: EmailMessage) -> list[str]:
    """The message as lines, its personal values (and Date, Message-ID) replaced by a mark.

    The To header is personal as a whole (a name with a dot or quote is quoted there).
    """
    per_message = {"To": "<personal>", "Date": "<per message>", "Message-ID": "<per message>"}
    lines = [f"{name}: {per_message.get(name, value)}" for name, value in message.items()]
    lines += [body(message, "plain"), body(message, "html")]
    text = "\n".join(lines)
    for value in member.personal():
        text = text.replace(value, "<personal>")
    return text.splitlines()


def test_the_messages_differ_only_in_the_personal_values(
    delivered: dict[Member, EmailMessage],
) -> None:
    named = [m for m in MEMBERS if m.name]
    first = masked(named[0], delivered[named[0]])
    assert sum("<personal>" in line for line in first) >= 5  # To, greeting, links, merge field
    for member in named[1:]:
        assert masked(member, delivered[member]) == first, member.address
    # No tracking: no per-recipient part (above), and no pixel either.
    for message in delivered.values():
        assert not re.search(r'<img[^>]+width="1"', body(message, "html"))
