"""Writing an issue as a marketing colleague would: every finding at the author's file:line.

Issue 11: a June issue with each mistake from the issue text; `check` and `compose` report the
same findings, each at the file and line the author wrote, with what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import house_style_copy
from nieuwsbrief import clock
from nieuwsbrief.check import check_issue
from nieuwsbrief.cli import app
from nieuwsbrief.content.issue import load_agenda, parse_date, parse_time_range
from nieuwsbrief.errors import ContentError

runner = CliRunner()
TODAY = date(2012, 6, 4)  # a few days after the issue date: `send` and `check` warn alike

# Saved by Dutch Excel as "CSV (gescheiden door puntkomma)": Windows-1252, d-m-yyyy dates.
AGENDA_CSV = (
    "id;type;title;date;city;url\r\n"
    "seminar-leegstand-2012-05;Seminar;Leegstand en herbestemming;7 mei 2012;Utrecht;"
    "https://www.bureau-kennis.net/agenda/2012/leegstand\r\n"
    "cursus-wabo-2012-06;Cursus;Omgevingsvergunning in de praktijk;2-6-2012;Amersfoort;"
    "https://www.bureau-kennis.net/agenda/2012/wabo\r\n"
    "masterclass-bim-2012-06;Masterclass;BIM voor gemeenten;26-06-2012;’s-Hertogenbosch;"
    "https://www.bureau-kennis.net/agenda/2012/bim\r\n"
)
ISSUE_YAML = """\
subject: "Nieuwsbrief juni 2012: leegstand en de Wabo"
preheader: "Leegstand van kantoren en de Wabo in de praktijk."
date: 2012-06-01  # de verzenddatum
intro: |
  Welkom bij de nieuwsbrief van juni.
  Vragen? Bel ons <b>bel</b> gerust.
articles:
  - 01-wabo.md
  - 02-leegstand.md
"""
WABO = """\
---
title: De Wabo in de praktijk
event: cursus-wabo-2012-06
---
Sinds 1 oktober 2010 is de Wabo van kracht. Lees
[het programma van de cursus Omgevingsvergunning](https://www.bureau-kennis.net/agenda/2012/wabo).
"""
KANTOOR = "http://www.bureau-kennis.net/img/kantoor.jpg"  # not https
LEEGSTAND = f"""\
---
title: Leegstand van kantoren
event: seminar-leegstand-2012-05
---
Nederland telt ruim zeven miljoen vierkante meter leeg kantoor.

Gemeenten zoeken nieuwe bestemmingen, ook in {{{{ plaats }}}}.
![]({KANTOOR})
"""
FORGOTTEN = """\
---
title: Een artikel dat niet in de lijst staat
---
Dit artikel is vergeten in issue.yaml.
"""


def write_june_issue(root: Path) -> Path:
    """Write issues/2012-06 with each mistake of issue 11 and a Dutch-Excel agenda.csv."""
    issue_dir = root / "issues" / "2012-06"
    issue_dir.mkdir(parents=True)
    (root / "issues" / "agenda.csv").write_bytes(AGENDA_CSV.encode("cp1252"))
    (issue_dir / "issue.yaml").write_text(ISSUE_YAML, encoding="utf-8")
    (issue_dir / "01-wabo.md").write_text(WABO, encoding="utf-8")
    (issue_dir / "02-leegstand.md").write_text(LEEGSTAND, encoding="utf-8")
    (issue_dir / "03-vergeten.md").write_text(FORGOTTEN, encoding="utf-8")
    return issue_dir


@pytest.fixture(autouse=True)
def _june_the_fourth() -> Iterator[None]:
    with clock.frozen(datetime.combine(TODAY, time(12), UTC)):
        yield


def expected_june_findings(issue_dir: Path) -> list[str]:
    issue, leegstand = issue_dir / "issue.yaml", issue_dir / "02-leegstand.md"
    agenda = issue_dir.parent / "agenda.csv"
    return [
        f"problem  {leegstand}:7: '{{{{ plaats }}}}' is not a merge field and would reach every "
        "reader as typed; write {{ subscriber.<column> }} with a column of the subscriber "
        "list, e.g. {{ subscriber.voornaam }}, or remove the braces [template-marker]",
        f"problem  {leegstand}:8: the image '{KANTOOR}' has no alt text; describe it between "
        'the brackets: ![Deelnemers aan de cursus](https://...), or use alt="" in a '
        "template if it is decoration [img-alt; HTML line <n>]",
        f"problem  {leegstand}:8: the image '{KANTOOR}' is not an absolute https URL; mail "
        "clients cannot load it: put the image on the website and use its full https:// "
        "address [img-url; HTML line <n>]",
        f"warning  {issue}:8: '03-vergeten.md' is in the issue folder but not under "
        "'articles:', so it is left out of the e-mail; add a line '  - 03-vergeten.md' to "
        "'articles:' or move the file elsewhere [article-unlisted]",
        f"warning  {issue}:6: HTML such as '<b>' is not passed through: the e-mail shows it as "
        "typed; use Markdown instead: **bold**, *italic*, [link text](https://...) [raw-html]",
        f"warning  {issue}:3: the issue is dated 2012-06-01, before today (2012-06-04); if "
        "this is a new issue, update its 'date:' [date-past]",
        f"warning  {issue_dir / '01-wabo.md'}:3: the event 'cursus-wabo-2012-06' was on "
        "2012-06-02, before today (2012-06-04): link a later event or remove the 'event:' "
        f"line [event-past; agenda {agenda}:3]",
        f"warning  {leegstand}:3: the event 'seminar-leegstand-2012-05' is on 2012-05-07, "
        "before the issue date 2012-06-01; readers would be invited to something that is "
        f"over: link a later event or remove the 'event:' line [event-before-issue; agenda "
        f"{agenda}:2]",
        "3 problems, 5 warnings — fix them before sending",
    ]


def mask_html_lines(output: str) -> list[str]:
    import re

    return [re.sub(r"HTML line \d+", "HTML line <n>", line) for line in output.splitlines()]


def test_june_issue_every_mistake_at_its_file_and_line(tmp_path: Path) -> None:
    issue_dir = write_june_issue(tmp_path)
    agenda = issue_dir.parent / "agenda.csv"

    checked = runner.invoke(app, ["check", str(issue_dir), "--agenda", str(agenda)])

    assert checked.exit_code == 1, checked.output
    assert mask_html_lines(checked.stdout) == expected_june_findings(issue_dir)


def test_compose_shows_the_same_findings_after_writing_the_files(tmp_path: Path) -> None:
    issue_dir = write_june_issue(tmp_path)
    agenda = str(issue_dir.parent / "agenda.csv")

    checked = runner.invoke(app, ["check", str(issue_dir), "--agenda", agenda])
    composed = runner.invoke(app, ["compose", str(issue_dir), "--agenda", agenda])

    assert composed.exit_code == 1, composed.output
    assert composed.stdout.endswith(checked.stdout)  # the summary, then the same report
    assert "Events:   2 on or after 2012-06-01" in composed.stdout
    html = (issue_dir / "out" / "email.html").read_text(encoding="utf-8")
    assert "data-nb-src" not in html  # the source map never reaches a recipient
    assert "’s-Hertogenbosch" in html  # the Windows-1252 agenda was read as such


def test_an_issue_dated_in_the_wrong_year_says_so(tmp_path: Path) -> None:
    issue_dir = write_june_issue(tmp_path)
    (issue_dir / "03-vergeten.md").unlink()
    issue_yaml = issue_dir / "issue.yaml"
    issue_yaml.write_text(
        ISSUE_YAML.replace("date: 2012-06-01", "date: 2021-06-01"), encoding="utf-8"
    )

    report = check_issue(
        issue_dir,
        __import__("conftest").factory_maker,
        agenda_path=issue_dir.parent / "agenda.csv",
        today=TODAY,
    )

    by_code = {f.code: f for f in (*report.warnings, *report.notes)}
    assert str(by_code["date-far"]) == (
        f"{issue_yaml}:3: the issue is dated 2021-06-01, 3284 days after today (2012-06-04); "
        "check the year and month of 'date:' [date-far]"
    )
    assert str(by_code["no-events"]) == (
        f"{issue_yaml}:3: no event in the agenda is on or after the issue date 2021-06-01 "
        "(the last one is on 2012-06-26), so the e-mail's agenda is empty; check 'date:' or "
        "add events [no-events]"
    )
    # the masterclass is in the agenda but, with this date, nowhere in the e-mail
    assert [str(f) for f in report.notes] == [
        f"{issue_dir.parent / 'agenda.csv'}:4: the event 'masterclass-bim-2012-06' on "
        "2012-06-26 is in neither the e-mail's agenda (it is before the issue date "
        "2021-06-01) nor an article; link it from an article if readers should hear of it "
        "[event-unmentioned]"
    ]
    assert "info     " in report.format()


def test_a_title_with_a_colon_says_to_quote_it_with_the_fixed_line(tmp_path: Path) -> None:
    issue_dir = write_june_issue(tmp_path)
    (issue_dir / "01-wabo.md").write_text(
        WABO.replace(
            "title: De Wabo in de praktijk",
            "title: De Omgevingswet komt eraan: bent u er klaar voor?",
        ),
        encoding="utf-8",
    )

    result = runner.invoke(
        app, ["check", str(issue_dir), "--agenda", str(issue_dir.parent / "agenda.csv")]
    )

    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {issue_dir / '01-wabo.md'}:2: invalid YAML: mapping values are not allowed "
        "here; a value with ': ' (or starting with a sign such as @ * & !) needs quotes, like "
        'this: title: "De Omgevingswet komt eraan: bent u er klaar voor?"\n'
    )


def test_quote_advice_escapes_quotes_in_the_value(tmp_path: Path) -> None:
    path = tmp_path / "issue.yaml"
    path.write_text('subject: Nieuw: de "Wabo" uitgelegd\ndate: 2012-06-01\n', encoding="utf-8")

    with pytest.raises(ContentError) as caught:
        from nieuwsbrief.yamlfile import parse_yaml

        parse_yaml(path.read_text(encoding="utf-8"), path)

    assert str(caught.value).endswith('like this: subject: "Nieuw: de \\"Wabo\\" uitgelegd"')


def test_a_hash_that_yaml_reads_as_a_comment_is_a_warning(tmp_path: Path) -> None:
    issue_dir = write_june_issue(tmp_path)
    wabo = issue_dir / "01-wabo.md"
    wabo.write_text(WABO.replace("in de praktijk", "in de praktijk #2"), encoding="utf-8")

    report = check_issue(
        issue_dir,
        __import__("conftest").factory_maker,
        agenda_path=issue_dir.parent / "agenda.csv",
        today=TODAY,
    )

    assert [str(f) for f in report.warnings if f.code == "yaml-comment"] == [
        f"{wabo}:2: YAML reads ' #2' as a comment, so 'title' is only 'De Wabo in de praktijk'; "
        'if the # belongs to the value, put it in quotes: title: "De Wabo in de praktijk #2" '
        "[yaml-comment]"
    ]
    # a comment written as one (a space after #) is not a mistake
    assert not [
        f
        for f in report.warnings
        if f.where.startswith(str(issue_dir / "issue.yaml")) and f.code == "yaml-comment"
    ]


def test_a_marker_in_a_title_or_the_subject_is_a_problem_at_its_line(tmp_path: Path) -> None:
    issue_dir = write_june_issue(tmp_path)
    (issue_dir / "03-vergeten.md").unlink()
    wabo, issue_yaml = issue_dir / "01-wabo.md", issue_dir / "issue.yaml"
    wabo.write_text(WABO.replace("in de praktijk", "in {{ subscriber.plaats }}"), encoding="utf-8")
    issue_yaml.write_text(ISSUE_YAML.replace('de Wabo"', 'de Wabo {{ maand }}"'), encoding="utf-8")

    report = check_issue(
        issue_dir,
        __import__("conftest").factory_maker,
        agenda_path=issue_dir.parent / "agenda.csv",
        today=TODAY,
    )

    markers = [f for f in report.problems if f.code == "template-marker"]
    assert [(f.where, f.message.split("'")[1]) for f in markers] == [
        (f"{issue_yaml}:1", "{{ maand }}"),
        (f"{wabo}:2", "{{ subscriber.plaats }}"),
        (f"{issue_dir / '02-leegstand.md'}:7", "{{ plaats }}"),
    ]
    assert "work in the article text only" in markers[1].message


# --- Dutch Excel agendas ------------------------------------------------------------------


def test_a_dutch_excel_agenda_loads(tmp_path: Path) -> None:
    path = tmp_path / "agenda.csv"
    path.write_bytes(AGENDA_CSV.encode("cp1252"))

    events = load_agenda(path)

    assert [(e.id, e.date) for e in events] == [
        ("seminar-leegstand-2012-05", date(2012, 5, 7)),
        ("cursus-wabo-2012-06", date(2012, 6, 2)),
        ("masterclass-bim-2012-06", date(2012, 6, 26)),
    ]
    assert events[2].city == "’s-Hertogenbosch"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2012-06-26", date(2012, 6, 26)),
        ("26-6-2012", date(2012, 6, 26)),
        ("26-06-2012", date(2012, 6, 26)),
        ("6-7-2012", date(2012, 7, 6)),  # Dutch order: day first
        ("7 mei 2012", date(2012, 5, 7)),
        ("1 Maart 2012", date(2012, 3, 1)),
        ("1 mrt. 2012", date(2012, 3, 1)),
        (" 26  juni   2012 ", date(2012, 6, 26)),
    ],
)
def test_dutch_dates(text: str, expected: date) -> None:
    assert parse_date(text, Path("agenda.csv"), 3, "date") == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("6/7/2012", "is ambiguous (6/7/2012 is 6 July in Dutch, 7 June in English)"),
        ("26-6-12", "has a two-digit year, which could mean two centuries"),
        ("26-6-2012 13:30", "has a time in it; put the time in its own column"),
        ("juni 2012", "is not a date"),
        ("31-6-2012", "is not a valid date (day is out of range for month)"),
    ],
)
def test_ambiguous_or_wrong_dates_are_errors_at_their_line(text: str, reason: str) -> None:
    with pytest.raises(ContentError) as caught:
        parse_date(text, Path("agenda.csv"), 3, "date")

    assert str(caught.value).startswith(f"agenda.csv:3: date '{text}' {reason}")


def test_a_month_name_that_is_not_dutch_is_named() -> None:
    with pytest.raises(ContentError, match=r"agenda.csv:4: date '7 may 2012': 'may' is not a"):
        parse_date("7 may 2012", Path("agenda.csv"), 4, "date")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("13.30", time(13, 30)), ("13:30", time(13, 30)), ("9.00", time(9, 0)), ("09:05", time(9, 5))],
)
def test_dutch_times(text: str, expected: time) -> None:
    assert parse_time_range(text, Path("agenda.csv"), 2) == (expected, None)


@pytest.mark.parametrize("text", ["13,30", "25.00", "13.3", "half twee", "1330"])
def test_times_that_are_not_times_are_errors(text: str) -> None:
    with pytest.raises(ContentError, match=r"agenda.csv:2: time .* write it as 13:30-17:00"):
        parse_time_range(text, Path("agenda.csv"), 2)


# --- personal fields ----------------------------------------------------------------------


@pytest.fixture
def greeting_templates(tmp_path: Path) -> Path:
    """A copy of the templates whose greeting uses the voornaam column with a fallback."""
    target = house_style_copy(tmp_path)
    brand = target / "brand.yaml"
    text = brand.read_text(encoding="utf-8")
    text = text.replace('greeting: "Beste {name},"\ngreeting_anonymous: "Beste lezer,"\n', "")
    brand.write_text(text + 'greeting: "Beste {voornaam|lezer},"\n', encoding="utf-8")
    return target


def sent_bodies(data: bytes) -> tuple[str, str]:
    """The (html, text) of a message as the send path builds it, decoded."""
    from test_send import parsed
    from test_send_messages import body

    message = parsed(data)
    return body(message, "html"), body(message, "plain")


def add_merge_field(issue_dir: Path) -> Path:
    article = issue_dir / "02-bim.md"
    article.write_text(
        article.read_text(encoding="utf-8")
        + "\nOok in {{ subscriber.plaats }} werkt men met BIM.\n",
        encoding="utf-8",
    )
    return article


def test_greeting_uses_any_column_with_a_fallback(
    example_copy: Path, greeting_templates: Path
) -> None:
    from conftest import factory_maker
    from nieuwsbrief.compose import compose_issue
    from nieuwsbrief.model import Subscriber

    composed = compose_issue(example_copy, factory_maker, templates_dir=greeting_templates)
    joost = Subscriber(
        email="joost@example.nl",
        name="Mr. J. (Joost) van 't Hof",
        fields={"voornaam": " Joost ", "organisatie": "Gemeente Delft"},
    )
    nameless = Subscriber(email="info@example.nl", fields={"voornaam": ""})

    html, text = sent_bodies(composed.factory.build(joost))
    assert ">Beste Joost,</p>" in html and "Beste Joost," in text
    html, text = sent_bodies(composed.factory.build(nameless))
    assert ">Beste lezer,</p>" in html and "Beste lezer," in text
    assert "Beste [voornaam]," in composed.text  # the sample shows where the column goes


def test_a_merge_field_in_an_article_reaches_each_recipient(example_copy: Path) -> None:
    from conftest import factory_maker
    from nieuwsbrief.compose import compose_issue
    from nieuwsbrief.model import Subscriber

    add_merge_field(example_copy)
    composed = compose_issue(example_copy, factory_maker)

    assert "Ook in [plaats] werkt men met BIM." in composed.html
    assert "Ook in [plaats] werkt men met BIM." in composed.text
    html, text = sent_bodies(
        composed.factory.build(
            Subscriber(email="a@example.nl", name="A", fields={"plaats": "Zwolle & Kampen"})
        )
    )
    assert "Ook in Zwolle &amp; Kampen werkt men met BIM." in html
    assert "Ook in Zwolle & Kampen werkt men met BIM." in text
    assert "{{" not in html + text


def test_a_column_the_list_lacks_stops_the_send_naming_column_list_and_line(
    example_copy: Path, tmp_path: Path
) -> None:
    article = add_merge_field(example_copy)
    line = article.read_text(encoding="utf-8").count("\n")  # the last line
    subscribers = tmp_path / "leden.csv"
    subscribers.write_text("e-mail;naam\nanna@example.nl;Anna\n", encoding="utf-8")

    result = runner.invoke(
        app, ["send", str(example_copy), "--subscribers", str(subscribers), "--dry-run"]
    )

    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == (
        f"Error: {subscribers}: the issue uses the column(s) 'plaats' ({article}:{line}), but "
        "the list has only the columns e_mail, naam; add the column to the list or change the "
        "text that uses it"
    )


def test_the_greetings_columns_are_needed_from_the_list(
    example_copy: Path, greeting_templates: Path
) -> None:
    from conftest import factory_maker
    from nieuwsbrief.compose import compose_issue

    brand = greeting_templates / "brand.yaml"
    line = (
        brand.read_text(encoding="utf-8").splitlines().index('greeting: "Beste {voornaam|lezer},"')
    )
    composed = compose_issue(example_copy, factory_maker, templates_dir=greeting_templates)

    # send compares these with the list's columns, as for an article's merge field
    assert composed.factory.columns == {"voornaam": f"{brand}:{line + 1}"}


@pytest.mark.parametrize(
    ("greeting", "message"),
    [
        (
            '"Beste {voornaam},"',
            "'greeting' uses {voornaam} without a fallback, so it needs 'greeting_anonymous' "
            '(e.g. "Beste lezer,") for rows without that column; add it, or write the fallback '
            "in the placeholder: {voornaam|lezer}",
        ),
        (
            '"Beste {voornaam|lezer,"',
            "'greeting' has a brace that is not a placeholder; write {column} or "
            '{column|fallback}, e.g. "Beste {voornaam|lezer},"',
        ),
    ],
)
def test_a_greeting_that_cannot_work_is_an_error_at_its_line(
    greeting_templates: Path, greeting: str, message: str
) -> None:
    from nieuwsbrief.content.brand import load_brand

    brand = greeting_templates / "brand.yaml"
    text = brand.read_text(encoding="utf-8")
    brand.write_text(text.replace('"Beste {voornaam|lezer},"', greeting), encoding="utf-8")
    line = text.splitlines().index('greeting: "Beste {voornaam|lezer},"') + 1

    with pytest.raises(ContentError) as caught:
        load_brand(greeting_templates)

    assert str(caught.value) == f"{brand}:{line}: {message}"


def test_the_web_edition_has_no_source_map_no_markers_and_the_fallback_greeting(
    example_copy: Path,
) -> None:
    from nieuwsbrief.home import load_home
    from nieuwsbrief.web import build_site
    from web_home import WEB_URL, make_home

    home_dir = make_home(example_copy)
    article = add_merge_field(example_copy)
    article.write_text(
        article.read_text(encoding="utf-8")
        + "\nZie [de cursus BIM](https://www.bureau-kennis.net/bim).\n",
        encoding="utf-8",
    )
    # the home's own house style, with a greeting whose fallback the web page uses
    brand = house_style_copy(home_dir) / "brand.yaml"
    text = brand.read_text(encoding="utf-8")
    text = text.replace('greeting: "Beste {name},"\ngreeting_anonymous: "Beste lezer,"\n', "")
    brand.write_text(text + 'greeting: "Beste {voornaam|collega},"\n', encoding="utf-8")

    files = build_site(load_home(home_dir), WEB_URL).files

    page = files[next(name for name in files if name.endswith("2012-05/index.html"))].decode()
    assert "de cursus BIM</a>" in page and "Ook in  werkt men met BIM." in page
    assert "data-nb-src" not in page and "%%nb:" not in page
    assert "Beste collega," in page
