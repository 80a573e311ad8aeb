"""Plain frozen data that flows through nieuwsbrief: issue content, subscribers, rendered issue.

No I/O and no imports from the rest of the package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path

# Personal values are rendered once as markers and spliced in per recipient (see message.py).
# The marker is plain ASCII without characters that HTML escaping, MJML or premailer change.
MERGE_MARKER_RE = re.compile(r"%%nb:([a-z0-9_]+)%%")


def merge_marker(name: str) -> str:
    """Return the marker that stands for the personal value `name` in a rendered issue."""
    return f"%%nb:{name}%%"


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
    warnings: tuple[str, ...] = ()
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
    greeting: str  # "Beste {name},"
    greeting_anonymous: str  # "Beste lezer,", when the list has no name
    sample_name: str
    sample_email: str

    def greet(self, name: str) -> str:
        """Return the greeting for a recipient, by name when known."""
        name = " ".join(name.split())
        return self.greeting.replace("{name}", name) if name else self.greeting_anonymous


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
