"""The compose pipeline: issue folder -> model -> rendered issue -> sample message -> files."""

from __future__ import annotations

import email
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from pathlib import Path

from nieuwsbrief.content.brand import load_brand
from nieuwsbrief.content.issue import load_issue
from nieuwsbrief.i18n import _
from nieuwsbrief.message import MessageFactory
from nieuwsbrief.model import Brand, Issue, RenderedIssue, Subscriber
from nieuwsbrief.render import render_issue

HTML_FILE = "email.html"
TEXT_FILE = "email.txt"
EML_FILE = "preview.eml"
# Gmail clips a message whose HTML is over about 102 KB; warn well before that.
SIZE_WARNING_BYTES = 90_000  # compose, check and preview warn from here on (near_clipping)

FactoryMaker = Callable[[RenderedIssue, Brand], MessageFactory]


@dataclass(frozen=True)
class Composed:
    """One issue rendered and personalised for the sample subscriber, in memory."""

    issue: Issue
    brand: Brand
    rendered: RenderedIssue
    factory: MessageFactory
    sample: Subscriber
    html: str
    text: str
    eml: bytes

    @property
    def html_part_bytes(self) -> int:
        """Return the size of the HTML part as encoded in the message (what Gmail measures)."""
        return encoded_html_size(self.eml)


def encoded_html_size(eml: bytes) -> int:
    """Return the byte size of the text/html part as it is encoded in a message."""
    message = email.message_from_bytes(eml, policy=policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/html" and not part.is_multipart():
            return encoded_size(part)
    return 0


def encoded_size(part: Message) -> int:
    """Return the size of a part's body as it stands in the message, transfer encoding included."""
    payload = part.get_payload(decode=False)
    assert isinstance(payload, str)
    # The bytes parser keeps non-ASCII bytes as surrogate escapes; undo that to count bytes.
    return len(payload.encode("ascii", "surrogateescape"))


def near_clipping(size: int) -> bool:
    """Return whether an encoded HTML part of `size` bytes is close to Gmail's clipping."""
    return size >= SIZE_WARNING_BYTES


def sample_subscriber(brand: Brand, columns: Iterable[str] = ()) -> Subscriber:
    """Return the example recipient that compose and preview personalise for.

    The list columns the issue uses (MessageFactory.columns) show as "[name]", so a tester
    sees where they go.
    """
    fields = {column: f"[{column}]" for column in sorted(columns)}
    return Subscriber(email=brand.sample_email, name=brand.sample_name, fields=fields)


def compose_issue(
    issue_dir: Path,
    factory_for: FactoryMaker,
    *,
    agenda_path: Path | None = None,
    templates_dir: Path | None = None,
    subscriber: Subscriber | None = None,
    web_url: str | None = None,
) -> Composed:
    """Load, render and personalise an issue for one subscriber (the sample by default).

    `web_url` (NIEUWSBRIEF_WEB_URL) adds the links to the web edition and its calendar files.
    """
    issue = load_issue(issue_dir, agenda_path)
    brand = load_brand(templates_dir)
    rendered = render_issue(issue, brand, templates_dir, web_url)
    factory = factory_for(rendered, brand)
    sample = subscriber or sample_subscriber(brand, factory.columns)
    eml = factory.build(sample)
    html, text = message_parts(eml)
    return Composed(issue, brand, rendered, factory, sample, html, text, eml)


def message_parts(eml: bytes) -> tuple[str, str]:
    """Return the decoded (html, text) parts of a multipart/alternative message."""
    message = email.message_from_bytes(eml, policy=policy.default)
    assert isinstance(message, EmailMessage)
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    html = html_part.get_content() if html_part is not None else ""
    text = text_part.get_content() if text_part is not None else ""
    # Parts travel with CRLF line ends (RFC 2046); a reader sees plain lines.
    return str(html).replace("\r\n", "\n"), str(text).replace("\r\n", "\n")


def write_outputs(composed: Composed, out_dir: Path) -> list[Path]:
    """Write email.html, email.txt and preview.eml; each file appears whole or not at all."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        HTML_FILE: composed.html.encode("utf-8"),
        TEXT_FILE: composed.text.encode("utf-8"),
        EML_FILE: composed.eml,
    }
    written = []
    for name, data in files.items():
        target = out_dir / name
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
        written.append(target)
    return written


def summary(composed: Composed, written: list[Path]) -> str:
    """Return the short report that compose prints."""
    issue = composed.issue
    lines = [
        _("Composed {path}").format(path=issue.path),
        _("  Subject:  {subject}").format(subject=issue.subject),
        _("  Articles: {count}").format(count=len(issue.articles)),
        *(f"    {n}. {a.title}" for n, a in enumerate(issue.articles, start=1)),
        _("  Events:   {count} on or after {date}").format(
            count=len(issue.agenda), date=issue.date.isoformat()
        ),
        _("  HTML:     {size} KB as sent (Gmail clips messages over about 102 KB)").format(
            size=f"{composed.html_part_bytes / 1024:.1f}"
        ),
        _("  Wrote:    {files}").format(files=", ".join(str(p) for p in written)),
    ]
    return "\n".join(lines)
