"""Plain frozen data that flows through nieuwsbrief: issue content, subscribers, rendered issue.

No I/O and no imports from the rest of the package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Literal

# How a connection to a mail server (SMTP or IMAP) is secured: STARTTLS on a plain port,
# implicit TLS, or nothing (only allowed to a loopback relay; see sending/smtp.py).
Security = Literal["starttls", "ssl", "none"]
SECURITIES: tuple[Security, ...] = ("starttls", "ssl", "none")

# Personal values are rendered once as markers and spliced in per recipient (see message.py).
# The marker is plain ASCII without characters that HTML escaping, MJML or premailer change.
MERGE_MARKER_RE = re.compile(r"%%nb:([a-z0-9_]+)%%")


def merge_marker(name: str) -> str:
    """Return the marker that stands for the personal value `name` in a rendered issue."""
    return f"%%nb:{name}%%"


# A placeholder in the greeting: {voornaam} or {voornaam|lezer} (a list column, a fallback).
GREETING_FIELD_RE = re.compile(r"\{([A-Za-z0-9_ -]+?)(?:\|([^{}]*))?\}")


@dataclass(frozen=True)
class Finding:
    """One thing an author should know: a code, what and what next, and where it comes from.

    `where` is the author's file and line ("issues/2012-06/02-leegstand.md:8"); `detail` is
    a secondary location such as "HTML line 65".
    """

    code: str
    message: str
    where: str = ""
    detail: str = ""

    def __str__(self) -> str:
        tail = f" [{self.code}{'; ' + self.detail if self.detail else ''}]"
        return f"{self.where}: {self.message}{tail}" if self.where else f"{self.message}{tail}"


@dataclass(frozen=True)
class SourceMap:
    """Where the elements of a rendered HTML document come from, in the author's files.

    `tags` maps the index of a start tag in document order (as html.parser counts them) to
    "file:line"; `values` maps an attribute value (a URL from brand.yaml or the agenda) to
    the line that defines it; `template` is the file everything else comes from.
    """

    tags: Mapping[int, str] = field(default_factory=dict)
    values: Mapping[str, str] = field(default_factory=dict)
    template: str = ""

    def locate(self, tag_index: int, *values: str) -> str:
        """Return where a start tag comes from: Markdown line, value line or template."""
        where = self.tags.get(tag_index)
        if where:
            return where
        for value in values:
            if value in self.values:
                return self.values[value]
        return self.template


@dataclass(frozen=True)
class Event:
    """One entry of the event agenda."""

    id: str
    type: str
    title: str
    date: date
    city: str
    url: str
    source: str = ""  # "file:line", for error messages
    start_time: time | None = None  # local time (Europe/Amsterdam); None: an all-day entry
    end_time: time | None = None
    venue: str = ""  # e.g. "Hotel De Witte Raaf"
    address: str = ""  # e.g. "Stationsplein 1, Amersfoort"


@dataclass(frozen=True)
class Article:
    """One article of an issue: front matter plus Markdown body."""

    slug: str
    title: str
    body: str  # Markdown
    event: Event | None
    path: Path
    body_line: int = 1  # the file line the body starts on, for errors inside the Markdown
    event_line: int = 0  # the line of the 'event:' key, 0 without an event
    title_line: int = 0  # the line of the 'title:' key
    warnings: tuple[Finding, ...] = ()  # about its front matter


@dataclass(frozen=True)
class Issue:
    """Everything one newsletter issue says, loaded and checked."""

    path: Path
    subject: str
    preheader: str
    date: date
    intro: str  # Markdown, may be empty
    articles: tuple[Article, ...]
    agenda: tuple[Event, ...]  # upcoming events only, sorted by date
    warnings: tuple[Finding, ...] = ()
    all_events: tuple[Event, ...] = ()  # the whole agenda, in file order
    issue_file: str = ""  # the issue.yaml path, for findings
    lines: Mapping[str, int] = field(default_factory=dict)  # issue.yaml key -> line
    id: str = ""  # the `id` in issue.yaml: the ledger's name for the issue when given


@dataclass(frozen=True)
class Brand:
    """The sender's identity and house style, from brand.yaml."""

    name: str
    tagline: str
    website: str
    email: str
    address: str
    footer: str
    logo_url: str
    logo_alt: str
    logo_width: int
    colors: Mapping[str, str]
    greeting: str  # "Beste {name},", "Beste {voornaam|lezer},"
    greeting_anonymous: str  # "Beste lezer,", when a placeholder without fallback is empty
    sample_name: str
    sample_email: str
    sources: Mapping[str, str] = field(default_factory=dict)  # URL -> "brand.yaml:line"
    greeting_source: str = ""  # "brand.yaml:line" of the greeting

    @property
    def greeting_columns(self) -> frozenset[str]:
        """Return the list columns the greeting uses ('name' is the list's name column)."""
        return frozenset(
            m.group(1).strip().lower() for m in GREETING_FIELD_RE.finditer(self.greeting)
        )

    @property
    def anonymous_greeting(self) -> str:
        """Return the greeting for nobody in particular (a web page): the fallbacks."""
        return self.greet(Subscriber(email=""))

    def greet(self, subscriber: Subscriber) -> str:
        """Return the greeting for a recipient: its columns, else their fallbacks."""
        missing = False

        def fill(match: re.Match[str]) -> str:
            nonlocal missing
            column = match.group(1).strip().lower()
            raw = subscriber.name if column == "name" else subscriber.fields.get(column, "")
            value = " ".join(raw.split())
            if value:
                return value
            if match.group(2) is None:
                missing = True
                return ""
            return match.group(2).strip()

        greeting = GREETING_FIELD_RE.sub(fill, self.greeting)
        return self.greeting_anonymous if missing else greeting


@dataclass(frozen=True)
class Subscriber:
    """One recipient from a subscriber list."""

    email: str
    name: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)  # every column, by lowercase header
    line: int = 0  # line number in the list file, 0 when not from a file


@dataclass(frozen=True)
class RenderedIssue:
    """An issue rendered once for everybody; personal values are merge markers."""

    subject: str
    preheader: str
    html: str
    text: str
    content_hash: str  # identifies the content for the send ledger
    article_titles: tuple[str, ...] = ()
    event_count: int = 0
    web_url: str | None = None  # the web edition's address the e-mail links to, if any
    problems: tuple[Finding, ...] = ()  # found in the author's files while rendering
    warnings: tuple[Finding, ...] = ()
    field_sources: Mapping[str, str] = field(default_factory=dict)  # column -> first file:line
    source_map: SourceMap = field(default_factory=SourceMap)
