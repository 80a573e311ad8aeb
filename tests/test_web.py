"""The web edition: `publish`, its calendar files and feeds read back by real parsers, the
e-mail's links into the site, photos from the issue folder, and check's dead-link rule."""

from __future__ import annotations

import io
import json
import os
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from conftest import factory_maker
from nieuwsbrief import clock
from nieuwsbrief.check import check_issue
from nieuwsbrief.cli import app
from nieuwsbrief.compose import compose_issue
from nieuwsbrief.content.issue import load_agenda
from nieuwsbrief.errors import ContentError
from nieuwsbrief.home import load_home
from nieuwsbrief.web import build_site, organizer_uri, publish, published_link_findings
from nieuwsbrief.weblinks import site_file_for
from web_home import PHOTO, TIMED_EVENT, WEB_URL, add_photo, make_home, photo_bytes, photo_line

runner = CliRunner()
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
def home(example_copy: Path) -> Path:
    return make_home(example_copy)


@pytest.fixture
def site(home: Path) -> Path:
    publish(load_home(home), WEB_URL)
    return home / "site"


def site_files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_two_builds_are_byte_identical_and_rebuilding_changes_nothing(home: Path) -> None:
    first = publish(load_home(home), WEB_URL, home / "a")
    publish(load_home(home), WEB_URL, home / "b")
    a, b = site_files(home / "a"), site_files(home / "b")
    assert a == b
    assert set(a) >= {
        "index.html",
        "feed.xml",
        "2012-05/index.html",
        "2012-06/index.html",
        "agenda/index.html",
        "agenda/agenda.ics",
        f"agenda/{TIMED_EVENT}.ics",
    }
    assert len(first.changed) == len(a)
    again = publish(load_home(home), WEB_URL, home / "a")
    assert again.changed == () and again.removed == ()


def test_a_photo_no_longer_used_is_removed_on_the_next_publish(home: Path, site: Path) -> None:
    (old,) = (site / "img").iterdir()
    article = home / "issues" / "2012-05" / "01-social-media.md"
    article.write_text(article.read_text("utf-8").replace(f"]({PHOTO})", "](ander.png)"), "utf-8")
    from PIL import Image

    Image.new("RGB", (300, 200), (10, 120, 200)).save(home / "issues" / "2012-05" / "ander.png")
    report = publish(load_home(home), WEB_URL)
    assert report.removed == (f"img/{old.name}",)
    assert not old.exists()
    assert [p.suffix for p in (site / "img").iterdir()] == [".png"]


def test_every_ics_reads_back_with_icalendar(home: Path, site: Path) -> None:
    from icalendar import Calendar

    events = load_agenda(home / "issues" / "agenda.yaml")
    for event in events:
        (entry,) = Calendar.from_ical((site / f"agenda/{event.id}.ics").read_bytes()).walk("VEVENT")
        assert str(entry["uid"]) == f"{event.id}@www.bureau-kennis.net"
        # METHOD:PUBLISH needs an organiser on every event (RFC 5546 3.2.1): the brand.
        assert str(entry["organizer"]) == "mailto:info@bureau-kennis.net"
        assert entry["organizer"].params["CN"] == "Bureau | Kennis"
        assert str(entry["summary"]) == f"{event.type} ‘{event.title}’"
        assert str(entry["url"]) == event.url
        assert event.city in str(entry["location"])
        assert event.url in str(entry["description"])
        start = entry.decoded("dtstart")
        if event.id == TIMED_EVENT:
            assert start == datetime(2012, 5, 31, 13, 30, tzinfo=AMSTERDAM)
            assert entry.decoded("dtend") == datetime(2012, 5, 31, 17, 0, tzinfo=AMSTERDAM)
            assert entry["dtstart"].params["TZID"] == "Europe/Amsterdam"
            assert str(entry["location"]) == (
                "Hotel Amersfoort, Stationsplein 1, 3818 LE Amersfoort"
            )
        else:
            assert start == event.date and not isinstance(start, datetime)  # all-day
            assert entry["dtstart"].params.get("VALUE") == "DATE"
            assert (entry.decoded("dtend") - start).days == 1
    timed = Calendar.from_ical((site / f"agenda/{TIMED_EVENT}.ics").read_bytes())
    (zone,) = timed.walk("VTIMEZONE")
    assert str(zone["tzid"]) == "Europe/Amsterdam"
    assert {c.name for c in zone.subcomponents} == {"STANDARD", "DAYLIGHT"}
    all_day = Calendar.from_ical((site / "agenda/seminar-erfpacht-2012-05.ics").read_bytes())
    assert all_day.walk("VTIMEZONE") == []


def test_without_its_record_publish_counts_on_from_the_calendar_files(
    home: Path, site: Path
) -> None:
    # The state folder lost: the versions are read back from the site's own .ics files, so an
    # event never goes back to an older SEQUENCE, and unchanged events keep theirs.
    from icalendar import Calendar

    def version(name: str) -> tuple[int, datetime]:
        (entry,) = Calendar.from_ical((site / name).read_bytes()).walk("VEVENT")
        return int(entry.decoded("sequence")), entry.decoded("dtstamp")

    agenda = home / "issues" / "agenda.yaml"
    agenda.write_text(agenda.read_text("utf-8").replace("13:30-17:00", "14.00-17.30"), "utf-8")
    moved = datetime(2012, 5, 20, 10, 0, tzinfo=UTC)
    with clock.frozen(moved):
        publish(load_home(home), WEB_URL)
    timed, other = f"agenda/{TIMED_EVENT}.ics", "agenda/seminar-erfpacht-2012-05.ics"
    assert version(timed) == (1, moved)
    assert version(other) == (0, datetime(2012, 1, 1, tzinfo=UTC))

    (home / "state" / "published.json").unlink()
    with clock.frozen(moved + timedelta(days=1)):
        same = publish(load_home(home), WEB_URL)
    assert [name for name in same.changed if name.endswith(".ics")] == []  # nothing went back
    assert version(timed) == (1, moved)

    (home / "state" / "published.json").unlink()
    agenda.write_text(agenda.read_text("utf-8").replace("14.00-17.30", "15.00-17.30"), "utf-8")
    with clock.frozen(moved + timedelta(days=2)):
        publish(load_home(home), WEB_URL)
    assert version(timed) == (2, moved + timedelta(days=2))
    assert version(other) == (0, datetime(2012, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("damage", ["not json", "a pipe"])
def test_a_damaged_publish_record_counts_as_none_and_is_replaced(
    home: Path, site: Path, damage: str
) -> None:
    record = home / "state" / "published.json"
    record.unlink()
    if damage == "a pipe":
        os.mkfifo(record)  # reading it would wait for a writer forever
    else:
        record.write_text("{ kapot", "utf-8")
    # check treats the site as not published (and says so) instead of hanging or crashing
    findings = published_link_findings(
        "", f"{WEB_URL}2012-05/", WEB_URL, home / "issues" / "2012-05"
    )
    assert [f.code for f in findings] == ["web-unpublished"]
    assert "has not been published" in str(findings[0])
    publish(load_home(home), WEB_URL)
    assert record.is_file()
    assert json.loads(record.read_text("utf-8"))["web_url"] == WEB_URL


def test_the_organizer_is_a_mailto_uri_also_for_an_international_address() -> None:
    # RFC 6068: the domain as IDNA, a non-ASCII local part percent-encoded as UTF-8.
    assert organizer_uri("info@bureau-kennis.net") == "mailto:info@bureau-kennis.net"
    assert organizer_uri("josé@bücher.example") == "mailto:jos%C3%A9@xn--bcher-kva.example"
    assert organizer_uri("a+b.c@example.nl") == "mailto:a+b.c@example.nl"


def test_uids_stay_the_same_when_the_event_changes(home: Path, site: Path) -> None:
    from icalendar import Calendar

    def uids() -> list[str]:
        feed = Calendar.from_ical((site / "agenda/agenda.ics").read_bytes())
        return [str(e["uid"]) for e in feed.walk("VEVENT")]

    before = uids()
    agenda = home / "issues" / "agenda.yaml"
    agenda.write_text(agenda.read_text("utf-8").replace("13:30-17:00", "14.00-17.30"), "utf-8")
    publish(load_home(home), WEB_URL)
    assert uids() == before
    entry = Calendar.from_ical((site / f"agenda/{TIMED_EVENT}.ics").read_bytes()).walk("VEVENT")[0]
    assert entry.decoded("dtstart") == datetime(2012, 5, 31, 14, 0, tzinfo=AMSTERDAM)


def test_a_changed_event_counts_up_so_calendars_take_the_new_version(
    home: Path, site: Path
) -> None:
    # A client keeps the entry it has unless the file's is newer (RFC 5546 2.1.5): a higher
    # SEQUENCE, a later DTSTAMP. Unchanged events keep theirs, so their files stay the same.
    from icalendar import Calendar

    def versions(name: str) -> dict[str, tuple[int, datetime]]:
        calendar = Calendar.from_ical((site / name).read_bytes())
        entries = calendar.walk("VEVENT")
        return {str(e["uid"]): (int(e.decoded("sequence")), e.decoded("dtstamp")) for e in entries}

    timed = f"{TIMED_EVENT}@www.bureau-kennis.net"
    first = versions(f"agenda/{TIMED_EVENT}.ics")
    assert first == {timed: (0, datetime(2012, 1, 1, tzinfo=UTC))}  # from the content
    feed_before = versions("agenda/agenda.ics")
    assert {seq for seq, _stamp in feed_before.values()} == {0}

    agenda = home / "issues" / "agenda.yaml"
    agenda.write_text(agenda.read_text("utf-8").replace("13:30-17:00", "14.00-17.30"), "utf-8")
    moved = datetime(2012, 5, 20, 10, 0, tzinfo=UTC)
    with clock.frozen(moved):
        report = publish(load_home(home), WEB_URL)
    assert versions(f"agenda/{TIMED_EVENT}.ics") == {timed: (1, moved)}
    others = sorted(set(report.changed) - {f"agenda/{TIMED_EVENT}.ics", "agenda/agenda.ics"})
    assert not [name for name in others if name.endswith(".ics")]  # only its files changed

    # The same agenda again, later: nothing changes, byte for byte.
    with clock.frozen(moved + timedelta(days=3)):
        again = publish(load_home(home), WEB_URL)
    assert again.changed == ()
    assert versions(f"agenda/{TIMED_EVENT}.ics") == {timed: (1, moved)}

    # A preview builds the site without recording anything.
    record = (home / "state" / "published.json").read_bytes()
    agenda.write_text(agenda.read_text("utf-8").replace("14.00-17.30", "15.00-17.30"), "utf-8")
    with clock.frozen(moved + timedelta(days=5)):
        files = build_site(load_home(home), WEB_URL).files
        assert (home / "state" / "published.json").read_bytes() == record
        later = publish(load_home(home), WEB_URL)
    assert f"agenda/{TIMED_EVENT}.ics" in later.changed
    assert f"agenda/{TIMED_EVENT}.ics" in files
    assert versions(f"agenda/{TIMED_EVENT}.ics") == {timed: (2, moved + timedelta(days=5))}


def test_the_event_feed_reads_back_with_vobject(home: Path, site: Path) -> None:
    import vobject

    calendar = vobject.readOne((site / "agenda/agenda.ics").read_text("utf-8"))
    entries = calendar.contents["vevent"]
    # Upcoming = on or after the newest issue (June 2012): the five June events.
    upcoming = [
        e for e in load_agenda(home / "issues" / "agenda.yaml") if e.date >= date(2012, 6, 1)
    ]
    assert [e.uid.value for e in entries] == [f"{e.id}@www.bureau-kennis.net" for e in upcoming]
    assert [e.dtstart.value for e in entries] == [e.date for e in upcoming]
    assert all(e.url.value.startswith("https://www.bureau-kennis.net/agenda/") for e in entries)
    one = vobject.readOne((site / f"agenda/{TIMED_EVENT}.ics").read_text("utf-8"))
    start = one.vevent.dtstart.value
    assert start.replace(tzinfo=None) == datetime(2012, 5, 31, 13, 30)
    assert start.utcoffset().total_seconds() == 2 * 3600  # CEST


def test_atom_feed_reads_back_with_feedparser(site: Path) -> None:
    import feedparser

    feed = feedparser.parse((site / "feed.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Nieuwsbrief Bureau | Kennis"
    assert [e.link for e in feed.entries] == [WEB_URL + "2012-06/", WEB_URL + "2012-05/"]
    assert feed.entries[1].title.startswith("Nieuwsbrief mei 2012")
    assert feed.entries[1].published_parsed[:3] == (2012, 4, 30)  # midnight CEST in UTC
    assert feed.entries[1].summary.startswith("Masterclass Social Media")


def test_index_lists_issues_newest_first_with_date_and_preheader(site: Path) -> None:
    html = (site / "index.html").read_text("utf-8")
    june, may = html.index('href="2012-06/index.html"'), html.index('href="2012-05/index.html"')
    assert june < may
    assert "1 mei 2012" in html and "Masterclass Social Media en ambtenaar 2.0" in html


def test_issue_page_reads_like_the_email(home: Path, site: Path) -> None:
    page = (site / "2012-05/index.html").read_text("utf-8")
    composed = compose_issue(home / "issues" / "2012-05", factory_maker, web_url=WEB_URL)
    for title in composed.rendered.article_titles:
        assert title in page
    assert "Beste lezer," in page and "Voorbeeld Abonnee" not in page
    assert "Uit een onderzoek van David Kok" in page
    assert 'href="../agenda/masterclass-social-media-2012-05.ics">Zet in mijn agenda' in page
    assert "31 mei 2012, 13:30–17:00, Amersfoort" in page
    assert "Hotel Amersfoort, Stationsplein 1, 3818 LE Amersfoort" in page
    assert '<img src="../img/kantoor-' in page and 'width="552" height="276"' in page
    assert "\u034f\u200c" not in page  # no preheader spacer


def test_site_is_self_contained_and_holds_nothing_personal(site: Path) -> None:
    for name, data in site_files(site).items():
        text = data.decode("utf-8", "replace")
        assert "%%nb:" not in text and "abonnee@example.nl" not in text, name
        assert "afmelden" not in text.lower(), name
        if name.endswith(".html"):
            csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text)
            assert csp and "default-src 'none'" in csp[1], name
            assert "<script" not in text and "@import" not in text, name
            rels = set(re.findall(r'<link rel="([^"]+)"', text))
            assert rels <= {"canonical", "alternate"}, name  # no style sheet, font, preload


def test_email_links_to_its_page_and_calendar_files_that_the_site_has(
    home: Path, site: Path
) -> None:
    composed = compose_issue(home / "issues" / "2012-05", factory_maker, web_url=WEB_URL)
    html, text = composed.html, composed.text
    assert f'<a href="{WEB_URL}2012-05/"' in html
    assert f"Bekijk deze nieuwsbrief in uw browser:\n{WEB_URL}2012-05/" in text
    links = set(re.findall(r'(?:href|src)="(' + re.escape(WEB_URL) + r'[^"]*)"', html))
    links |= set(re.findall(re.escape(WEB_URL) + r"\S+", text))
    ics = {link for link in links if link.endswith(".ics")}
    # Three calls to action and nine agenda dates, each its own event: every event in the agenda.
    assert len(ics) == 9
    for link in links:
        target = site_file_for(link, WEB_URL)
        assert target is not None and (site / target).is_file(), link
    assert f"Zet in mijn agenda:\n   {WEB_URL}agenda/{TIMED_EVENT}.ics" in text
    assert "31 mei 2012, 13:30–17:00, Amersfoort" in text


def test_email_without_web_url_is_as_before(example_copy: Path) -> None:
    composed = compose_issue(example_copy, factory_maker)
    for part in (composed.html, composed.text):
        assert "Bekijk deze nieuwsbrief" not in part
        assert "Zet in mijn agenda" not in part and ".ics" not in part


def test_photo_in_email_and_site_at_the_right_size(home: Path, site: Path) -> None:
    from PIL import Image

    composed = compose_issue(home / "issues" / "2012-05", factory_maker, web_url=WEB_URL)
    match = re.search(r'<img src="(' + re.escape(WEB_URL) + r'img/[^"]+)"([^>]*)>', composed.html)
    assert match, "the photo is not in the e-mail"
    assert 'width="552"' in match[2] and 'height="276"' in match[2]
    assert 'alt="Het kantoor van Bureau | Kennis"' in match[2]
    name = match[1].removeprefix(WEB_URL)
    assert re.fullmatch(r"img/kantoor-[0-9a-f]{12}\.jpg", name)
    with Image.open(site / name) as image:
        assert image.size == (1104, 552)  # twice the column width, aspect kept
        assert not image.getexif()  # no metadata travels along


def test_remote_images_get_the_column_width(tmp_path: Path) -> None:
    from conftest import REPO

    issue = REPO / "tests" / "fixtures" / "issue-edge"
    composed = compose_issue(issue, factory_maker, agenda_path=issue.parent / "agenda-edge.yaml")
    (img,) = re.findall(r"<img [^>]*plattegrond[^>]*>", composed.html)
    assert 'width="552"' in img


def test_check_refuses_links_the_last_publish_did_not_produce(home: Path) -> None:
    issue = home / "issues" / "2012-05"
    before = check_issue(issue, factory_maker, web_url=WEB_URL, today=date(2012, 4, 1))
    assert [f.code for f in before.problems] == ["web-unpublished"]
    assert "run `nieuwsbrief publish` first" in before.problems[0].message
    publish(load_home(home), WEB_URL)
    assert check_issue(issue, factory_maker, web_url=WEB_URL).ok
    # A new photo after the publish: its address is not online yet.
    add_photo(issue, "nieuw.jpg", photo_bytes((800, 600)))
    after = check_issue(issue, factory_maker, web_url=WEB_URL)
    (problem,) = after.problems
    assert problem.code == "web-unpublished" and "/img/nieuw-" in problem.message
    other = check_issue(issue, factory_maker, web_url="https://example.org/nb/")
    assert "the last publish was for" in other.problems[0].message


@pytest.mark.parametrize(
    ("case", "data", "message"),
    [
        ("missing", None, "image 'kantoor.jpg' not found"),
        ("unreadable", b"not an image at all", "cannot be read as an image"),
        ("too-big", "noise", "MB even after scaling"),
    ],
)
def test_bad_photo_is_an_error_at_the_articles_line(
    example_copy: Path, case: str, data: bytes | str | None, message: str
) -> None:
    if data == "noise":
        from PIL import Image

        noise = Image.frombytes("RGB", (1104, 1104), __import__("os").urandom(1104 * 1104 * 3))
        out = io.BytesIO()
        noise.save(out, "PNG")
        data = out.getvalue()
    article = add_photo(example_copy, data=data if isinstance(data, bytes) else b"")
    if data is None:
        (example_copy / PHOTO).unlink()
    with pytest.raises(ContentError) as caught:
        compose_issue(example_copy, factory_maker, web_url=WEB_URL)
    assert caught.value.path == article and caught.value.line == photo_line(article)
    assert message in str(caught.value)
    result = runner.invoke(app, ["check", str(example_copy)], env={"NIEUWSBRIEF_WEB_URL": WEB_URL})
    assert result.exit_code == 2
    assert f"{article}:{photo_line(article)}: " in result.stderr and message in result.stderr


def test_local_photo_without_web_url_is_an_error_at_its_line(example_copy: Path) -> None:
    article = add_photo(example_copy)
    result = runner.invoke(app, ["check", str(example_copy)])
    assert result.exit_code == 2
    assert f"{article}:{photo_line(article)}: " in result.stderr
    assert "set NIEUWSBRIEF_WEB_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_photo_outside_the_issue_folder_is_refused(example_copy: Path) -> None:
    article = example_copy / "01-social-media.md"
    article.write_text(article.read_text("utf-8") + "\n![x](../../geheim.jpg)\n", "utf-8")
    with pytest.raises(ContentError, match="must be a file in the issue folder"):
        compose_issue(example_copy, factory_maker, web_url=WEB_URL)


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [("13:30-17:00", time(13, 30), time(17, 0)), ("9.00 – 12.30", time(9), time(12, 30)),
     ("19:30", time(19, 30), None)],
)  # fmt: skip
def test_agenda_time_forms(tmp_path: Path, value: str, start: time, end: time | None) -> None:
    agenda = tmp_path / "agenda.csv"
    agenda.write_text(
        "id;type;title;date;city;url;time;venue\n"
        f"a;Cursus;BIM;2012-06-14;Amersfoort;https://x.nl/a;{value};Zaal 1\n",
        "utf-8",
    )
    (event,) = load_agenda(agenda)
    assert (event.start_time, event.end_time, event.venue) == (start, end, "Zaal 1")


@pytest.mark.parametrize("value", ["13:30-", "25:00", "17:00-13:30", "half twee"])
def test_bad_agenda_time_names_its_line(tmp_path: Path, value: str) -> None:
    agenda = tmp_path / "agenda.yaml"
    agenda.write_text(
        "- id: a\n  type: Cursus\n  title: BIM\n  date: 2012-06-14\n  city: Amersfoort\n"
        f'  url: https://x.nl/a\n  time: "{value}"\n',
        "utf-8",
    )
    with pytest.raises(ContentError) as caught:
        load_agenda(agenda)
    assert caught.value.line == 7 and "13:30-17:00" in str(caught.value)


def test_publish_command(home: Path) -> None:
    result = runner.invoke(
        app, ["publish", str(home / "issues")], env={"NIEUWSBRIEF_WEB_URL": WEB_URL.rstrip("/")}
    )
    assert result.exit_code == 0, result.stderr
    assert "Issues:   2" in result.stdout and (home / "site" / "index.html").is_file()
    out = home / "elders"
    result = runner.invoke(app, ["publish", str(home), "--out", str(out)],
                           env={"NIEUWSBRIEF_WEB_URL": WEB_URL})  # fmt: skip
    assert result.exit_code == 0 and (out / "feed.xml").is_file()


def test_publish_without_web_url_or_home_is_one_clear_error(
    home: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    result = runner.invoke(app, ["publish", str(home)])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: publish needs")
    assert "NIEUWSBRIEF_WEB_URL" in result.stderr
    outside = tmp_path_factory.mktemp("geen-thuis")
    result = runner.invoke(app, ["publish", str(outside)], env={"NIEUWSBRIEF_WEB_URL": WEB_URL})
    assert result.exit_code == 2 and "is not inside a newsletter home" in result.stderr
    result = runner.invoke(app, ["publish", str(home)], env={"NIEUWSBRIEF_WEB_URL": "ftp://x/"})
    assert result.exit_code == 2 and "NIEUWSBRIEF_WEB_URL" in result.stderr


def test_preview_serves_the_web_edition_beside_the_email(example_copy: Path) -> None:
    import threading
    import urllib.request

    from nieuwsbrief.preview.server import bind_server
    from nieuwsbrief.preview.state import Inputs, PreviewState

    state = PreviewState(Inputs(example_copy, factory_maker, web_url=WEB_URL))
    assert state.refresh() is None
    server = bind_server("127.0.0.1", 0, state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"

    def get(path: str) -> tuple[str, bytes]:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return response.headers["Content-Type"], response.read()

    try:
        assert b'href="/web/"' in get("")[1]
        kind, page = get("web/")
        assert kind.startswith("text/html") and "Nieuwsbrief mei 2012" in page.decode("utf-8")
        assert b'href="../agenda/masterclass-social-media-2012-05.ics"' in page
        kind, ics = get("web/agenda/masterclass-social-media-2012-05.ics")
        assert kind.startswith("text/calendar") and b"BEGIN:VEVENT" in ics
        _, email_html = get("email.html")
        assert f'href="{WEB_URL}2012-05/"'.encode() in email_html  # the e-mail as it is sent
    finally:
        server.shutdown()
        server.server_close()
        state.close()


def test_send_refuses_links_into_an_unpublished_site_then_sends_them(home: Path) -> None:
    import mailbox

    issue = home / "issues" / "2012-05"
    subscribers = home / "lijst.csv"
    subscribers.write_text("email,naam\njan@gemeente.nl,Jan\n", "utf-8")
    env = {"NIEUWSBRIEF_WEB_URL": WEB_URL}
    args = ["send", str(issue), "--subscribers", str(subscribers), "--yes"]
    refused = runner.invoke(app, args, env=env)
    assert refused.exit_code == 2
    assert "web-unpublished" in refused.stderr and "nieuwsbrief publish" in refused.stderr
    outbox = home / "state" / "outbox"
    assert not outbox.exists()
    assert runner.invoke(app, ["publish", str(home)], env=env).exit_code == 0
    sent = runner.invoke(app, args, env=env)
    assert sent.exit_code == 0, sent.stderr
    (message,) = list(mailbox.Maildir(outbox, create=False))
    body = message.as_bytes().decode("ascii", "replace")
    assert "Bekijk deze nieuwsbrief in uw browser" in body
    assert f"{WEB_URL}agenda/{TIMED_EVENT}.ics" in body.replace("=\n", "")


def test_phone_photo_is_turned_upright_and_loses_its_metadata(home: Path) -> None:
    from PIL import Image

    photo = Image.linear_gradient("L").resize((2000, 1000)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was held upright, turn 90° clockwise
    exif[0x010F] = "Telefoonmerk"  # Make
    exif[0x9003] = "2012:05:01 09:00:00"  # DateTimeOriginal (personal: when and where)
    out = io.BytesIO()
    photo.save(out, "JPEG", exif=exif.tobytes())
    issue = home / "issues" / "2012-05"
    (issue / PHOTO).write_bytes(out.getvalue())
    publish(load_home(home), WEB_URL)
    (stored,) = (home / "site" / "img").iterdir()
    assert b"Telefoonmerk" not in stored.read_bytes() and b"2012:05:01" not in stored.read_bytes()
    with Image.open(stored) as image:
        assert image.size == (1000, 2000)  # portrait, not scaled: narrower than 1104
        assert not image.getexif()
    composed = compose_issue(issue, factory_maker, web_url=WEB_URL)
    assert re.search(r'<img src="[^"]*kantoor-[^"]*"[^>]*width="552" height="1104"', composed.html)


def test_web_url_from_the_home_config(home: Path) -> None:
    config = home / "nieuwsbrief.toml"
    config.write_text(config.read_text("utf-8") + f'web_url = "{WEB_URL}"\n', "utf-8")
    assert runner.invoke(app, ["publish", str(home)]).exit_code == 0
    result = runner.invoke(app, ["check", str(home / "issues" / "2012-05")])
    assert result.exit_code == 0, result.stdout
    compose = runner.invoke(app, ["compose", str(home / "issues" / "2012-05")])
    assert compose.exit_code == 0, compose.stderr
    html = (home / "issues" / "2012-05" / "out" / "email.html").read_text("utf-8")
    assert f'href="{WEB_URL}2012-05/"' in html
