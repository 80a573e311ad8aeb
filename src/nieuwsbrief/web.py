"""The web edition: `publish` builds a static site of the newsletter home.

site/
  index.html            every issue, newest first (subject, date, preheader)
  feed.xml              Atom feed of the issues (RFC 4287)
  2012-05/index.html    one page per issue: the same content and house style as the e-mail
  agenda/index.html     the upcoming events
  agenda/<id>.ics       one calendar file per event (RFC 5545)
  agenda/agenda.ics     every upcoming event, to subscribe to
  img/<name>-<hash>.jpg the issue folders' photos, scaled (see images.py)

Deterministic: the same content gives byte-identical files (every date comes from the content;
"upcoming" means on or after the newest issue's date). The one exception is an event that
changed since the last publish: its calendar entry counts up (SEQUENCE) and is dated when that
publish saw the change, so clients take it over the old one (EventRevision).

Self-contained: relative links, the style sheet inline under a Content-Security-Policy that
allows no script, font or other request; nothing personal (no greeting by name, no
unsubscribe token).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from markupsafe import Markup

from nieuwsbrief import clock
from nieuwsbrief.addresses import smtp_address, split_address
from nieuwsbrief.check import Finding
from nieuwsbrief.content.brand import load_brand
from nieuwsbrief.content.issue import ISSUE_FILE, load_agenda, load_issue, upcoming
from nieuwsbrief.errors import ContentError, HomeError, InputFileError, PublishError
from nieuwsbrief.home import Home, find_home
from nieuwsbrief.i18n import _
from nieuwsbrief.inputfile import CONTENT_LIMIT, LIST_LIMIT, read_input
from nieuwsbrief.model import MERGE_MARKER_RE, Brand, Event, Issue
from nieuwsbrief.render import (
    ImageLinker,
    _context,
    _environment,
    _event_view,
    _render_template,
    dutch_date,
    time_label,
)
from nieuwsbrief.templating import style_source
from nieuwsbrief.weblinks import (
    AGENDA_PAGE,
    ATOM_FEED,
    CALENDAR_FEED,
    IMAGE_DIR,
    INDEX_PAGE,
    PUBLISHED_FILE,
    SITE_DIR,
    event_ics,
    issue_page,
    issue_slug,
    issue_url,
    site_file_for,
)

TIME_ZONE = "Europe/Amsterdam"
ISSUE_TEMPLATE = "web_issue.html.j2"
INDEX_TEMPLATE = "web_index.html.j2"
AGENDA_TEMPLATE = "web_agenda.html.j2"
STYLE_TEMPLATE = "web.css"
MAX_ISSUES = 10_000  # bounded input
PRODID = "-//Bureau Kennis//nieuwsbrief//NL"


@dataclass(frozen=True)
class PublishReport:
    """What `publish` built."""

    out_dir: Path
    files: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    issues: int
    events: int
    images: int
    web_url: str

    def describe(self) -> str:
        """Return the summary `publish` prints."""
        return "\n".join(
            [
                _("Published {folder}").format(folder=self.out_dir),
                _("  Issues:   {count}").format(count=self.issues),
                _("  Events:   {count} calendar files (.ics)").format(count=self.events),
                _("  Images:   {count}").format(count=self.images),
                _("  Files:    {count} ({changed} new or changed, {removed} removed)").format(
                    count=len(self.files), changed=len(self.changed), removed=len(self.removed)
                ),
                _("  Address:  {url}").format(url=self.web_url),
                _("Upload the folder to that address (e.g. rsync -a --delete), then send."),
            ]
        )


# --- finding the issues -------------------------------------------------------------------


def issue_folders(home: Home) -> list[Path]:
    """Return every issue folder of a newsletter home (issues/*/issue.yaml), sorted by name."""
    issues_dir = home.issues_dir
    if not issues_dir.is_dir():
        raise ContentError(issues_dir, _("the home's issues folder does not exist"))
    folders = sorted(p.parent for p in issues_dir.glob(f"*/{ISSUE_FILE}"))
    if not folders:
        raise ContentError(issues_dir, _("has no issue folders (folders with an issue.yaml)"))
    if len(folders) > MAX_ISSUES:
        raise ContentError(
            issues_dir,
            (_("has more than {MAX_ISSUES} issue folders").format(MAX_ISSUES=MAX_ISSUES)),
        )
    return folders


# --- the site -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """Every file of the web edition, in memory, and what it holds."""

    files: dict[str, bytes]  # path in the site -> bytes
    issues: int
    events: int
    images: int
    revisions: dict[str, EventRevision]  # by UID: for the next publish's published.json


def build_site(home: Home, web_url: str, out_dir: Path | None = None) -> Site:
    """Build every file of the site in memory (reads, never writes, the last publish's record).

    The calendar entries count up from the revisions of the last publish; an event that
    changed since then gets its next SEQUENCE here, which only `publish` records. Without that
    record they count on from the calendar files in `out_dir` (default: the home's site/), so
    a lost state folder never makes an event go back to an older version.
    """
    templates_dir = home.templates_dir  # None: the house style that ships with nieuwsbrief
    brand = load_brand(templates_dir)
    env = _environment(templates_dir)
    folders = issue_folders(home)
    issues = [load_issue(folder, home.agenda_path) for folder in folders]
    slugs: dict[str, Path] = {}
    for folder in folders:
        slug = issue_slug(folder)
        if slug in slugs:
            raise ContentError(
                folder,
                (_("has the same web address as {other}; rename one").format(other=slugs[slug])),
            )
        slugs[slug] = folder
    all_events = load_agenda(home.agenda_path)
    newest = max(issues, key=lambda i: (i.date, issue_slug(i.path)))
    upcoming_events = upcoming(all_events, newest.date)

    style = _render_template(env, templates_dir, STYLE_TEMPLATE, {"c": brand.colors}).strip()
    common = _common(brand, web_url, style)
    files: dict[str, bytes] = {}
    images = ImageLinker("../" + IMAGE_DIR)
    for issue in issues:
        context = _context(issue, brand, "../", images)
        context.update(common)
        context.update(
            root="../",
            page_url=issue_url(web_url, issue.path),
            greeting=brand.anonymous_greeting,
        )
        files[issue_page(issue.path)] = _page(env, templates_dir, ISSUE_TEMPLATE, context)
    listed = sorted(issues, key=lambda i: (i.date, issue_slug(i.path)), reverse=True)
    files[INDEX_PAGE] = _page(
        env,
        templates_dir,
        INDEX_TEMPLATE,
        {
            **common,
            "root": "",
            "page_url": web_url,
            "issues": [
                {
                    "href": issue_page(i.path),
                    "subject": i.subject,
                    "date_long": dutch_date(i.date),
                    "date_iso": i.date.isoformat(),
                    "preheader": i.preheader,
                }
                for i in listed
            ],
        },
    )
    files[AGENDA_PAGE] = _page(
        env,
        templates_dir,
        AGENDA_TEMPLATE,
        {
            **common,
            "root": "../",
            "page_url": web_url + AGENDA_PAGE.removesuffix(INDEX_PAGE),
            "since": dutch_date(newest.date),
            "events": [_event_view(e, "../") for e in upcoming_events],
            "feed_href": CALENDAR_FEED.removeprefix("agenda/"),
            "feed_url": web_url + CALENDAR_FEED,
        },
    )
    domain = urlsplit(web_url).hostname or "localhost"
    record = _read_published(home)
    if record is not None and "events" in record:
        previous = _published_revisions(record["events"])
    else:
        previous = _revisions_in_files(out_dir or default_out_dir(home), all_events, domain)
    revisions = event_revisions(all_events, domain, brand, previous, clock.now())
    ics_names: dict[str, str] = {}
    for event in all_events:
        name = event_ics(event)
        if name in ics_names:
            raise ContentError(
                event.source or "agenda",
                _(
                    "event id '{id}' gives the same calendar file as '{other}'; "
                    "make the ids differ in letters or digits"
                ).format(id=event.id, other=ics_names[name]),
            )
        ics_names[name] = event.id
        files[name] = calendar_bytes([event], domain, brand, revisions)
    files[CALENDAR_FEED] = calendar_bytes(
        upcoming_events, domain, brand, revisions, name=f"Agenda {brand.name}"
    )
    files[ATOM_FEED] = atom_feed(listed, brand, web_url)
    for image in images.used.values():
        files[IMAGE_DIR + image.name] = image.data
    return Site(files, len(issues), len(all_events), len(images.used), revisions)


def _common(brand: Brand, web_url: str, style: str) -> dict[str, Any]:
    website_label = re.sub(r"^https?://", "", brand.website).rstrip("/")
    return {
        "brand": {
            **{k: getattr(brand, k) for k in brand.__dataclass_fields__},
            "website_label": website_label,
        },
        "style": Markup(style),  # our own template, not content
        # No script, font, frame or connection; images from this site or https (the logo and
        # remote images the articles name); the one style sheet is the inline one.
        "csp": Markup(
            "default-src 'none'; img-src 'self' https:; "
            f"style-src {style_source(style)}; base-uri 'none'; form-action 'none'"
        ),
        "web_url": web_url,
        "feed_title": f"Nieuwsbrief {brand.name}",
    }


def _page(env: Any, templates_dir: Path | None, name: str, context: dict[str, Any]) -> bytes:
    html = _render_template(env, templates_dir, name, context)
    # A page is for nobody in particular: an article's {{ subscriber.<column> }} shows nothing.
    html = MERGE_MARKER_RE.sub("", html)
    return (re.sub(r"\n\s*\n+", "\n", html).strip() + "\n").encode("utf-8")


# --- calendar -----------------------------------------------------------------------------


def event_summary(event: Event) -> str:
    """Return an event's calendar title: Masterclass ‘Social Media en ambtenaar 2.0’."""
    return f"{event.type} ‘{event.title}’"


def event_location(event: Event) -> str:
    """Return where an event is: venue, address and city (the city once)."""
    parts = [p for p in (event.venue, event.address) if p]
    if not any(event.city.casefold() in p.casefold() for p in parts):
        parts.append(event.city)
    return ", ".join(parts)


def organizer_uri(address: str) -> str:
    """Return a mailto: URI for an address (RFC 6068): the domain in ASCII, the rest escaped."""
    local, domain = split_address(smtp_address(address))
    return f"mailto:{quote(local, safe=MAILTO_LOCAL_SAFE)}@{domain}"


# RFC 6068 2: in a mailto: URI, the local part may keep RFC 3986's unreserved characters and
# these sub-delimiters; everything else is percent-encoded UTF-8.
MAILTO_LOCAL_SAFE = "!$'*+-._~"


@dataclass(frozen=True)
class EventRevision:
    """Which version of an event a calendar entry is: SEQUENCE and DTSTAMP (RFC 5545 3.8.7).

    A client that has an entry already takes a file's version of it only if it is newer, so
    an event that changes must count up. The first version of an event is dated from the
    content (1 January of its year), so the same agenda still gives the same files; a later
    version is dated when `publish` first saw it, and kept in the home's published.json.
    """

    digest: str  # of the entry without SEQUENCE and DTSTAMP
    sequence: int
    dtstamp: datetime  # UTC, whole seconds

    def to_record(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "sequence": self.sequence,
            "dtstamp": self.dtstamp.isoformat(),
        }

    @classmethod
    def from_record(cls, value: object) -> EventRevision | None:
        """Read one back from published.json; None for anything that is not one."""
        if not isinstance(value, dict):
            return None
        digest, sequence, stamp = value.get("digest"), value.get("sequence"), value.get("dtstamp")
        if not (isinstance(digest, str) and isinstance(sequence, int) and isinstance(stamp, str)):
            return None
        try:
            when = datetime.fromisoformat(stamp)
        except ValueError:
            return None
        if when.tzinfo is None or not 0 <= sequence < 2**31:
            return None
        return cls(digest, sequence, when.astimezone(UTC))


def event_revisions(
    events: Sequence[Event],
    domain: str,
    brand: Brand,
    previous: Mapping[str, EventRevision],
    now: datetime,
) -> dict[str, EventRevision]:
    """Return each event's revision by UID: the previous one if the entry is the same."""
    organizer = _organizer(brand)
    revisions: dict[str, EventRevision] = {}
    for event in events:
        uid = event_uid(event, domain)
        digest = _entry_digest(_calendar_entry(event, uid, organizer, brand))
        before = previous.get(uid)
        if before is None:
            revision = EventRevision(digest, 0, datetime(event.date.year, 1, 1, tzinfo=UTC))
        elif before.digest == digest:
            revision = before
        else:
            later = max(now.astimezone(UTC), before.dtstamp + timedelta(seconds=1))
            revision = EventRevision(digest, before.sequence + 1, later.replace(microsecond=0))
        revisions[uid] = revision
    return revisions


def event_uid(event: Event, domain: str) -> str:
    """Return an event's UID: its id at the web address's domain, the same on every publish."""
    return f"{event.id}@{domain}"


def calendar_bytes(
    events: Sequence[Event],
    domain: str,
    brand: Brand,
    revisions: Mapping[str, EventRevision],
    name: str = "",
) -> bytes:
    """Return an iCalendar file (RFC 5545) of `events`; `revisions` from event_revisions."""
    from icalendar import Calendar

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    # METHOD:PUBLISH makes the file an iTIP message, whose every event needs an ORGANIZER
    # (RFC 5546 3.2.1): the brand, at its contact address.
    calendar.add("method", "PUBLISH")
    if name:
        calendar.add("x-wr-calname", name)
        calendar.add("x-wr-timezone", TIME_ZONE)
    organizer = _organizer(brand)
    for event in events:
        uid = event_uid(event, domain)
        entry = _calendar_entry(event, uid, organizer, brand)
        revision = revisions[uid]
        entry.add("dtstamp", revision.dtstamp)
        entry.add("sequence", revision.sequence)
        calendar.add_component(entry)
    if any(e.start_time is not None for e in events):
        years = [e.date.year for e in events]
        calendar.add_missing_timezones(date(min(years), 1, 1), date(max(years) + 1, 1, 1))
    ical: bytes = calendar.to_ical()
    return ical


def _entry_digest(entry: Any) -> str:
    """Return what identifies a version of a VEVENT without its SEQUENCE and DTSTAMP."""
    return hashlib.sha256(entry.to_ical()).hexdigest()[:32]


def _organizer(brand: Brand) -> Any:
    from icalendar import vCalAddress

    organizer = vCalAddress(organizer_uri(brand.email))
    organizer.params["cn"] = brand.name
    return organizer


def _calendar_entry(event: Event, uid: str, organizer: Any, brand: Brand) -> Any:
    """Return the VEVENT of an event, all but its DTSTAMP and SEQUENCE."""
    from icalendar import Event as CalendarEvent

    zone = ZoneInfo(TIME_ZONE)
    entry = CalendarEvent()
    entry.add("uid", uid)
    entry.add("organizer", organizer)
    if event.start_time is None:
        entry.add("dtstart", event.date)
        entry.add("dtend", event.date + timedelta(days=1))
    else:
        entry.add("dtstart", datetime.combine(event.date, event.start_time, tzinfo=zone))
        if event.end_time is not None:
            entry.add("dtend", datetime.combine(event.date, event.end_time, tzinfo=zone))
    entry.add("summary", event_summary(event))
    entry.add("location", event_location(event))
    entry.add("url", event.url)
    when = dutch_date(event.date) + (f", {time_label(event)}" if event.start_time else "")
    entry.add(
        "description",
        f"{event_summary(event)}\n{when}\n{event_location(event)}\n\n"
        f"Meer informatie en aanmelden: {event.url}\n{brand.name}",
    )
    entry.add("transp", "OPAQUE")
    return entry


# --- Atom ---------------------------------------------------------------------------------

_ATOM = "http://www.w3.org/2005/Atom"


def _atom_time(day: date) -> str:
    # Midnight in the Netherlands on the issue's date; the content's only clock.
    return datetime.combine(day, datetime.min.time(), ZoneInfo(TIME_ZONE)).isoformat()


def atom_feed(issues: Sequence[Issue], brand: Brand, web_url: str) -> bytes:
    """Return the Atom feed (RFC 4287) of the issues, newest first."""
    feed = ET.Element("feed", {"xmlns": _ATOM, "xml:lang": "nl"})

    def add(parent: ET.Element, tag: str, text: str = "", **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, tag, attrs)
        if text:
            element.text = text
        return element

    add(feed, "id", web_url)
    add(feed, "title", f"Nieuwsbrief {brand.name}")
    add(feed, "subtitle", brand.tagline)
    add(feed, "updated", _atom_time(issues[0].date))
    author = add(feed, "author")
    add(author, "name", brand.name)
    add(author, "uri", brand.website)
    add(feed, "link", rel="self", type="application/atom+xml", href=web_url + ATOM_FEED)
    add(feed, "link", rel="alternate", type="text/html", href=web_url)
    for issue in issues:
        entry = add(feed, "entry")
        url = issue_url(web_url, issue.path)
        add(entry, "id", url)
        add(entry, "title", issue.subject)
        add(entry, "updated", _atom_time(issue.date))
        add(entry, "published", _atom_time(issue.date))
        add(entry, "link", rel="alternate", type="text/html", href=url)
        summary = issue.preheader or ", ".join(a.title for a in issue.articles)
        add(entry, "summary", summary)
    ET.indent(feed)
    body = ET.tostring(feed, encoding="unicode", xml_declaration=False)
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode("utf-8")


# --- writing ------------------------------------------------------------------------------


def default_out_dir(home: Home) -> Path:
    """Return where `publish` writes by default: site/ in the newsletter home."""
    return home.root / SITE_DIR


def published_path(home: Home) -> Path:
    """Return the record of what the last publish wrote (in the home's state folder)."""
    return home.state_dir / PUBLISHED_FILE


def publish(home: Home, web_url: str | None, out_dir: Path | None = None) -> PublishReport:
    """Build the site and write it to `out_dir`; only changed files are rewritten.

    Files the previous publish wrote that are no longer part of the site are removed; nothing
    else in the folder is touched. The list of files goes to the state folder's published.json,
    which `check` reads to refuse an e-mail with links the site does not have.
    """
    if not web_url:
        raise PublishError(
            _(
                "publish needs the address the site will be served from: set "
                "NIEUWSBRIEF_WEB_URL, e.g. {example}"
            ).format(example="NIEUWSBRIEF_WEB_URL=https://www.bureau-kennis.net/nieuwsbrief/")
        )
    out_dir = (out_dir or default_out_dir(home)).resolve()
    site = build_site(home, web_url, out_dir)
    files = site.files
    previous = _read_published(home)
    changed: list[str] = []
    try:
        for name in sorted(files):
            target = out_dir / name
            if target.is_file() and target.read_bytes() == files[name]:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            with os.fdopen(fd, "wb") as handle:
                handle.write(files[name])
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            changed.append(name)
        removed = []
        if previous is not None and Path(str(previous.get("out", ""))) == out_dir:
            for name in sorted(set(previous.get("files", [])) - set(files)):
                stale = out_dir / name
                if stale.is_file():
                    stale.unlink()
                    removed.append(name)
        record = {
            "web_url": web_url,
            "out": str(out_dir),
            "files": sorted(files),
            "events": {uid: r.to_record() for uid, r in sorted(site.revisions.items())},
        }
        home.ensure_state_dir()
        # Replaced, not written over: a crash leaves the old record, and a record that is not
        # a regular file (a pipe) is swapped out instead of blocking the write.
        fd, tmp = tempfile.mkstemp(dir=home.state_dir, prefix=f".{PUBLISHED_FILE}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, published_path(home))
    except OSError as exc:
        raise PublishError(
            _("cannot write the site to {folder}: {reason}").format(
                folder=out_dir, reason=exc.strerror
            )
        ) from None
    return PublishReport(
        out_dir=out_dir,
        files=tuple(sorted(files)),
        changed=tuple(changed),
        removed=tuple(removed),
        issues=site.issues,
        events=site.events,
        images=site.images,
        web_url=web_url,
    )


def _revisions_in_files(
    folder: Path, events: Sequence[Event], domain: str
) -> dict[str, EventRevision]:
    """Read the revisions back from the calendar files an earlier publish wrote to `folder`.

    Files without a SEQUENCE (written before revisions were kept) give nothing: their events
    start at 0 again, as those files had it.
    """
    from icalendar import Calendar

    found: dict[str, EventRevision] = {}
    for event in events:
        path = folder / event_ics(event)
        if not path.is_file():
            continue
        try:
            entries = Calendar.from_ical(read_input(path, CONTENT_LIMIT)).walk("VEVENT")
        except (InputFileError, ValueError, KeyError, TypeError):
            continue  # not one of ours, or damaged: as if it were not there
        for entry in entries:
            if "SEQUENCE" not in entry or "DTSTAMP" not in entry or "UID" not in entry:
                continue
            try:
                sequence, stamp = int(entry.decoded("sequence")), entry.decoded("dtstamp")
            except (ValueError, TypeError, KeyError):
                continue
            if not (isinstance(stamp, datetime) and stamp.tzinfo and 0 <= sequence < 2**31):
                continue
            del entry["SEQUENCE"], entry["DTSTAMP"]
            found[str(entry["UID"])] = EventRevision(
                _entry_digest(entry), sequence, stamp.astimezone(UTC)
            )
    return found


def _published_revisions(events: object) -> dict[str, EventRevision]:
    """Read published.json's "events" back; what is not a revision is left out."""
    if not isinstance(events, dict):
        return {}
    revisions = {}
    for uid, value in events.items():
        revision = EventRevision.from_record(value)
        if revision is not None:
            revisions[str(uid)] = revision
    return revisions


def _read_published(home: Home) -> dict[str, Any] | None:
    """Return the last publish's record; None if there is none, or none that can be read."""
    try:
        record = json.loads(read_input(published_path(home), PUBLISHED_LIMIT))
    except (InputFileError, ValueError):  # none, damaged, too big, not a file: never published
        return None
    return record if isinstance(record, dict) else None


# published.json: a file name and an event revision per entry; 10,000 issues stay far below.
PUBLISHED_LIMIT = LIST_LIMIT


# --- check: no dead links from the e-mail -------------------------------------------------

_URL_ATTR_RE = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def published_link_findings(html: str, text: str, web_url: str, issue_dir: Path) -> list[Finding]:
    """Return a problem for every link of the e-mail into the web edition that is not there.

    "There" means: in the files the last `publish` of the issue's home produced, for this web
    address. Nobody should mail a link to a page or photo that is not online.
    """
    urls: list[str] = []
    for url in _URL_ATTR_RE.findall(html) + re.findall(re.escape(web_url) + r"\S*", text):
        url = url.replace("&amp;", "&")
        if url.startswith(web_url) and url not in urls:
            urls.append(url)
    if not urls:
        return []
    run = _("run `nieuwsbrief publish` first (and upload the site), then check again")
    try:
        home = find_home(issue_dir)
    except HomeError:
        record = None
        where = str(issue_dir)
    else:
        record = _read_published(home)
        where = str(home.root)
    if record is None:
        return [
            Finding(
                "web-unpublished",
                _(
                    "the e-mail links to the web edition ({count} links under {url}), "
                    "but {where} has not been published: {advice}"
                ).format(count=len(urls), url=web_url, where=where, advice=run),
            )
        ]
    if record.get("web_url") != web_url:
        return [
            Finding(
                "web-unpublished",
                _("the last publish was for {old}, the e-mail links to {url}: {advice}").format(
                    old=repr(record.get("web_url")), url=web_url, advice=run
                ),
            )
        ]
    produced = set(record.get("files", []))
    return [
        Finding(
            "web-unpublished",
            _("the e-mail links to {url}, which the last publish did not produce: {advice}").format(
                url=url, advice=run
            ),
        )
        for url in urls
        if site_file_for(url, web_url) not in produced
    ]
