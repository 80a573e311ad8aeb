"""Where the web edition keeps what: one definition for the e-mail's links and the site builder.

Every path is relative to the web address (NIEUWSBRIEF_WEB_URL) and to the site folder.
"""

from __future__ import annotations

from pathlib import Path

from nieuwsbrief.content.issue import slugify
from nieuwsbrief.model import Event

INDEX_PAGE = "index.html"
AGENDA_PAGE = "agenda/index.html"
CALENDAR_FEED = "agenda/agenda.ics"  # every upcoming event, to subscribe to
ATOM_FEED = "feed.xml"
IMAGE_DIR = "img/"
SITE_DIR = "site"  # default output folder, in the newsletter home
PUBLISHED_FILE = "published.json"  # in the home's state folder: what the last publish wrote


def issue_slug(issue_dir: Path) -> str:
    """Return the issue's folder on the site, from its folder name: '2012-05'."""
    return slugify(issue_dir.resolve().name)


def issue_page(issue_dir: Path) -> str:
    """Return the issue's web page, e.g. '2012-05/index.html'."""
    return f"{issue_slug(issue_dir)}/{INDEX_PAGE}"


def issue_url(web_url: str, issue_dir: Path) -> str:
    """Return the address to share: the issue's folder, e.g. https://.../nieuwsbrief/2012-05/."""
    return f"{web_url}{issue_slug(issue_dir)}/"


def event_ics(event: Event) -> str:
    """Return the calendar file of one event, e.g. 'agenda/masterclass-social-media.ics'."""
    return f"agenda/{slugify(event.id)}.ics"


def site_file_for(url: str, web_url: str) -> str | None:
    """Return the site file an address under `web_url` is served from, or None if elsewhere."""
    if not url.startswith(web_url):
        return None
    path = url[len(web_url) :].split("#", 1)[0].split("?", 1)[0]
    return path + INDEX_PAGE if path == "" or path.endswith("/") else path
