"""Turn a RenderedIssue and one Subscriber into the bytes of one MIME message.

Everything that is the same for every recipient (headers, the quoted-printable encoding of
both parts) is prepared once in MessageFactory; per recipient only the personal values are
encoded and spliced in between the shared segments, joined with QP soft line breaks.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy, quoprimime
from email.headerregistry import Address
from email.utils import format_datetime, formataddr, make_msgid, parseaddr, quote
from pathlib import Path

from nieuwsbrief import clock as clock_mod
from nieuwsbrief.addresses import smtp_address, split_address
from nieuwsbrief.errors import MessageError, SubscriberListError
from nieuwsbrief.i18n import _
from nieuwsbrief.model import MERGE_MARKER_RE, Brand, RenderedIssue, Subscriber
from nieuwsbrief.text import breaks_header
from nieuwsbrief.unsubscribe.tokens import mailto_link, make_token, unsubscribe_link

_CRLF = b"\r\n"
_SOFT_BREAK = "=\r\n"


@dataclass(frozen=True)
class UnsubscribeLinks:
    """Where one recipient can unsubscribe: an https URL (one-click) and/or a mailto URL."""

    https: str | None
    mailto: str | None

    @property
    def for_body(self) -> str:
        """Return the link shown in the footer: the web page if there is one, else the mailto."""
        return self.https or self.mailto or ""


@dataclass(frozen=True)
class Envelope:
    """The headers that are the same for every recipient of a send."""

    sender: str  # "Name <address>"
    reply_to: str | None = None
    list_id: str | None = None  # "Nieuwsbrief <nieuwsbrief.bureau-kennis.net>"
    subject_prefix: str = ""


def _qp(text: str) -> str:
    """Quoted-printable encode UTF-8 text with CRLF line ends and lines of at most 76 chars."""
    if not text:
        return ""
    return quoprimime.body_encode(text.encode("utf-8").decode("latin-1"), maxlinelen=76, eol="\r\n")


def _fold(name: str, value: str) -> bytes:
    """Return one header field, RFC 2047-encoded where needed and folded, ending in CRLF."""
    if breaks_header(value):
        raise MessageError(
            _("the {name} header value contains a line break: {value}").format(
                name=name, value=repr(value)
            )
        )
    header = policy.SMTP.header_factory(name, value)
    folded: str = header.fold(policy=policy.SMTP)
    return folded.encode("ascii")


def _to_header(name: str, address: str) -> bytes:
    """Return the To: field; `address` is in SMTP form (an international domain in ASCII)."""
    if address.isascii():
        to = formataddr((name, address), charset="utf-8")
        return _fold("To", to) if len(to) > 76 or not to.isascii() else f"To: {to}\r\n".encode()
    # A non-ASCII local part only travels with SMTPUTF8, whose headers are UTF-8 as they are
    # (RFC 6532); email.headerregistry refuses such an address, so the field is written here.
    shown = f'"{quote(name)}" <{address}>' if name and len(name) <= 200 else address
    return f"To: {shown}\r\n".encode()


@dataclass(frozen=True)
class _Template:
    """A part split at its merge markers: segments[0] name[0] segments[1] ... segments[-1]."""

    segments: tuple[str, ...]  # QP-encoded
    names: tuple[str, ...]


def _split(text: str) -> _Template:
    pieces = MERGE_MARKER_RE.split(text)
    return _Template(segments=tuple(_qp(p) for p in pieces[0::2]), names=tuple(pieces[1::2]))


def _splice(template: _Template, values: Mapping[str, str], escape: Callable[[str], str]) -> str:
    out = [template.segments[0]]
    for name, segment in zip(template.names, template.segments[1:], strict=True):
        out.append(_SOFT_BREAK)
        out.append(_qp(escape(values[name])))
        out.append(_SOFT_BREAK)
        out.append(segment)
    return "".join(out)


def _identity(value: str) -> str:
    return value


def _html_escape(value: str) -> str:
    return html.escape(value, quote=True)


class MessageFactory:
    """Build one message per recipient from an issue rendered once."""

    def __init__(
        self,
        rendered: RenderedIssue,
        envelope: Envelope,
        links: Callable[[str], UnsubscribeLinks],
        *,
        greeting: Callable[[Subscriber], str],
        greeting_columns: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: clock_mod.now().astimezone(),
    ) -> None:
        self.rendered = rendered
        self.envelope = envelope
        self._links = links
        self._greeting = greeting
        self._clock = clock
        display, address = parseaddr(envelope.sender)
        if "@" not in address:
            raise MessageError(
                _("the sender '{sender}' is not an e-mail address").format(sender=envelope.sender)
            )
        self.sender_address = address
        self._msgid_domain = split_address(address)[1]
        self._html = _split(rendered.html)
        self._text = _split(rendered.text)
        self.needs = frozenset(self._html.names + self._text.names)
        # List columns the messages use -> where the author wrote them ("file:line").
        self.columns: dict[str, str] = {
            name.removeprefix("field_"): rendered.field_sources.get(name.removeprefix("field_"), "")
            for name in sorted(self.needs)
            if name.startswith("field_")
        }
        for column, where in (greeting_columns or {}).items():
            self.columns.setdefault(column, where)
        digest = hashlib.sha256(rendered.content_hash.encode()).hexdigest()[:24]
        # "=_" never occurs in quoted-printable data, so the boundary cannot clash with a part.
        self._boundary = f"=_nb_{digest}"
        static = [
            _fold(
                "From",
                str(Address(display_name=display, addr_spec=address)) if display else address,
            ),
        ]
        if envelope.reply_to:
            static.append(_fold("Reply-To", envelope.reply_to))
        static.append(_fold("Subject", envelope.subject_prefix + rendered.subject))
        static.append(b"MIME-Version: 1.0\r\n")
        static.append(
            f'Content-Type: multipart/alternative; boundary="{self._boundary}"\r\n'.encode()
        )
        if envelope.list_id:
            static.append(_fold("List-Id", envelope.list_id))
        self._static_headers = b"".join(static)
        self._text_head = (
            f"--{self._boundary}\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        self._html_head = (
            f"\r\n--{self._boundary}\r\n"
            'Content-Type: text/html; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{self._boundary}--\r\n".encode()

    def require_columns(self, list_path: Path, columns: Sequence[str]) -> None:
        """Refuse a list without a column the issue uses, saying where the issue uses it."""
        missing = sorted(set(self.columns) - set(columns))
        if missing:
            used = "; ".join(
                f"{column!r} ({self.columns[column] or _('the template')})" for column in missing
            )
            raise SubscriberListError(
                _(
                    "{path}: the issue uses the column(s) {used}, but the list has only the "
                    "columns {columns}; add the column to the list or change the text that uses it"
                ).format(path=list_path, used=used, columns=", ".join(columns))
            )

    def values(
        self, subscriber: Subscriber, links: UnsubscribeLinks | None = None
    ) -> dict[str, str]:
        """Return every personal value of one recipient, by merge-marker name."""
        links = links or self._links(subscriber.email)
        values = {
            "greeting": self._greeting(subscriber),
            "unsubscribe_url": links.for_body,
        }
        for key, value in subscriber.fields.items():
            values[f"field_{key}"] = value
        missing = sorted(n for n in self.needs if n not in values)
        if missing:
            raise MessageError(
                _("the template uses {fields}, which the subscriber list does not have").format(
                    fields=", ".join(missing)
                )
            )
        return values

    def build(self, subscriber: Subscriber) -> bytes:
        """Return the complete message for one recipient as CRLF bytes."""
        if breaks_header(subscriber.name + subscriber.email):
            raise MessageError(
                _("line {line}: a line break in a name or address").format(line=subscriber.line)
            )
        links = self._links(subscriber.email)
        values = self.values(subscriber, links)
        headers = [
            _to_header(subscriber.name, smtp_address(subscriber.email)),
            f"Date: {format_datetime(self._clock())}\r\n".encode(),
            f"Message-ID: {make_msgid(domain=self._msgid_domain)}\r\n".encode(),
            self._static_headers,
        ]
        unsubscribe = [f"<{u}>" for u in (links.https, links.mailto) if u]
        if unsubscribe:
            headers.append(("List-Unsubscribe: " + ",\r\n ".join(unsubscribe) + "\r\n").encode())
        if links.https:
            headers.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        return b"".join(
            [
                *headers,
                _CRLF,
                self._text_head,
                _splice(self._text, values, _identity).encode("ascii"),
                self._html_head,
                _splice(self._html, values, _html_escape).encode("ascii"),
                self._tail,
            ]
        )


def make_factory(
    rendered: RenderedIssue,
    brand: Brand,
    *,
    secret: str,
    sender: str | None = None,
    reply_to: str | None = None,
    unsubscribe_url: str | None = None,
    unsubscribe_mailto: str | None = None,
    subject_prefix: str = "",
) -> MessageFactory:
    """Return the factory for a send: sender and unsubscribe settings, defaults from the brand."""
    mailto_address = unsubscribe_mailto or brand.email
    domain = (sender and split_address(parseaddr(sender)[1])[1]) or split_address(brand.email)[1]

    def links(address: str) -> UnsubscribeLinks:
        token = make_token(secret, address)
        return UnsubscribeLinks(
            https=unsubscribe_link(unsubscribe_url, token) if unsubscribe_url else None,
            mailto=mailto_link(mailto_address, token),
        )

    envelope = Envelope(
        sender=sender or formataddr((brand.name, brand.email)),
        reply_to=reply_to,
        list_id=f"{brand.name} <nieuwsbrief.{domain}>",
        subject_prefix=subject_prefix,
    )
    greeting_at = brand.greeting_source
    return MessageFactory(
        rendered,
        envelope,
        links,
        greeting=brand.greet,
        greeting_columns={c: greeting_at for c in sorted(brand.greeting_columns - {"name"})},
    )
