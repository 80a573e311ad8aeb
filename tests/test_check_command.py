"""`nieuwsbrief check`: the example passes, and each problem of issue 5 is caught in a real issue.

Each test builds a small issue folder whose content causes one problem and runs the command.
Problems that content cannot cause (no unsubscribe link, no text part, ...) come from a copy
of the templates with one thing broken, through `check_issue(templates_dir=...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import EXAMPLE_AGENDA, EXAMPLE_ISSUE, factory_maker, house_style_copy
from nieuwsbrief import clock
from nieuwsbrief.check import CheckReport, check_issue
from nieuwsbrief.cli import app

runner = CliRunner()

SUBJECT = "Nieuwsbrief juni 2012: de Wabo in de praktijk"
PREHEADER = "Wat de Wabo verandert voor vergunningverlening en handhaving."
TITLE = "De Wabo in de praktijk"
ARTICLE = """Sinds 1 oktober 2010 is de Wet algemene bepalingen omgevingsrecht van kracht. Wij
zetten op een rij wat er verandert voor vergunningverlening, toezicht en handhaving.

Lees [het programma van de cursus Wabo](https://www.bureau-kennis.net/agenda/2012/wabo) of
mail uw vragen naar [info@bureau-kennis.net](mailto:info@bureau-kennis.net).
"""
AGENDA = """- id: cursus-wabo-2012-06
  type: Cursus
  title: Omgevingsvergunning voor vergunningverleners
  date: 2012-06-14
  city: Amersfoort
  url: https://www.bureau-kennis.net/agenda/2012/wabo
"""


def write_issue(
    root: Path,
    *,
    subject: str = SUBJECT,
    preheader: str | None = PREHEADER,
    bodies: tuple[str, ...] = (ARTICLE,),
) -> Path:
    """Write issues/2012-06 (one article per body) and issues/agenda.yaml; return the folder."""
    issue_dir = root / "issues" / "2012-06"
    issue_dir.mkdir(parents=True)
    (root / "issues" / "agenda.yaml").write_text(AGENDA, encoding="utf-8")
    names = []
    for number, body in enumerate(bodies, start=1):
        name = f"{number:02d}-artikel.md"
        title = TITLE if number == 1 else f"{TITLE}, deel {number}"
        front = f"---\ntitle: {title}\nevent: cursus-wabo-2012-06\n---\n"
        (issue_dir / name).write_text(front + body, encoding="utf-8")
        names.append(name)
    lines = [f'subject: "{subject}"', "date: 2012-06-01"]
    if preheader is not None:
        lines.append(f'preheader: "{preheader}"')
    lines.append("articles:")
    lines += [f"  - {name}" for name in names]
    (issue_dir / "issue.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return issue_dir


@pytest.fixture(autouse=True)
def _the_example_issues_day() -> Iterator[None]:
    """Check as on the example issue's date, so only what a test breaks is found."""
    with clock.frozen(datetime(2012, 5, 1, 12, tzinfo=UTC)):
        yield


def run_check(issue_dir: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["check", str(issue_dir), *args])
    return result.exit_code, result.stdout + result.stderr


def assert_problem(issue_dir: Path, code: str, *phrases: str) -> str:
    """Run `nieuwsbrief check`; assert exit 1 and that `code` is the only kind of problem."""
    exit_code, output = run_check(issue_dir)
    problems = [line for line in output.splitlines() if line.startswith("problem  ")]
    assert exit_code == 1, output
    assert problems, output
    assert all(line.endswith((f"[{code}]", "]")) and f"[{code}" in line for line in problems), (
        output
    )
    assert "fix them before sending" in output.splitlines()[-1]
    for phrase in phrases:
        assert phrase in output, output
    return output


def assert_warning(issue_dir: Path, code: str, *phrases: str) -> str:
    """Run `nieuwsbrief check`; assert exit 0 and `code` as the only finding."""
    exit_code, output = run_check(issue_dir)
    findings = [line for line in output.splitlines() if line.startswith(("problem", "warning"))]
    assert exit_code == 0, output
    assert findings and all(
        line.startswith("warning  ") and f"[{code}" in line for line in findings
    ), output
    assert output.splitlines()[-1].startswith("OK: no problems, ")
    for phrase in phrases:
        assert phrase in output, output
    return output


@pytest.fixture
def broken_templates(tmp_path: Path) -> Path:
    """Return a home's templates folder with copies of the two e-mail templates, to break."""
    return house_style_copy(tmp_path, "email.mjml.j2", "email.txt.j2")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def check_with(templates_dir: Path, issue_dir: Path) -> CheckReport:
    return check_issue(
        issue_dir, factory_maker, templates_dir=templates_dir, today=date(2012, 5, 20)
    )


def codes(report: CheckReport) -> set[str]:
    return {finding.code for finding in report.problems}


# --- clean --------------------------------------------------------------------------------


def test_example_issue_passes_clean() -> None:
    exit_code, output = run_check(EXAMPLE_ISSUE, "--agenda", str(EXAMPLE_AGENDA))

    assert exit_code == 0, output
    assert output.strip() == "OK: no problems"


def test_small_issue_passes_clean(tmp_path: Path) -> None:
    exit_code, output = run_check(write_issue(tmp_path))

    assert exit_code == 0, output
    assert output.strip() == "OK: no problems"


def test_check_writes_nothing(tmp_path: Path) -> None:
    issue_dir = write_issue(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    run_check(issue_dir)

    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_unreadable_issue_is_an_error_not_a_verdict(tmp_path: Path) -> None:
    exit_code, output = run_check(tmp_path / "bestaat-niet")

    assert exit_code == 2
    assert "Error:" in output and "bestaat-niet" in output


# --- one test per problem of issue 5, item 2 ---------------------------------------------


def test_html_over_gmails_clip_is_a_problem_and_compose_warns(tmp_path: Path) -> None:
    paragraph = (
        "De gemeente vervult een rol als ontwikkelaar, beheerder van de openbare ruimte, "
        "vergunningverlener en handhaver, en wordt nog niet vaak teruggezien in het proces. "
    ) * 6
    body = ARTICLE + "\n" + "\n\n".join([paragraph] * 25) + "\n"
    issue_dir = write_issue(tmp_path, bodies=(body, body, body))

    checked = assert_problem(issue_dir, "size", "Gmail clips above ~102 KB")
    composed = runner.invoke(app, ["compose", str(issue_dir), "--out", str(tmp_path / "out")])
    assert composed.exit_code == 1, composed.stderr
    assert (tmp_path / "out" / "email.html").is_file()  # written, so the author can look
    assert composed.stdout.endswith(checked)  # compose and check agree


def test_style_over_16_kb_is_a_problem(tmp_path: Path, broken_templates: Path) -> None:
    # Hover rules cannot be inlined, so they stay in <style>, as a bloated template's would.
    rules = "".join(
        f"      .nb-body a.nb-link-{n}:hover {{ color: #222222; }}\n" for n in range(500)
    )
    edit(broken_templates / "email.mjml.j2", "    <mj-style>\n", f"    <mj-style>\n{rules}")

    report = check_with(broken_templates, write_issue(tmp_path))

    assert codes(report) == {"style-size"}


def test_missing_preheader_is_a_problem(tmp_path: Path) -> None:
    assert_problem(write_issue(tmp_path, preheader=None), "preheader-missing", "preheader")


def test_preheader_over_100_characters_is_a_warning(tmp_path: Path) -> None:
    long = "Wat de Wabo verandert voor vergunningverlening, toezicht en handhaving " * 2

    assert_warning(write_issue(tmp_path, preheader=long.strip()), "preheader-long")


def test_subject_over_70_characters_is_a_warning(tmp_path: Path) -> None:
    subject = "Nieuwsbrief juni 2012: de Wabo in de praktijk van vergunningverlening en handhaving"

    assert_warning(write_issue(tmp_path, subject=subject), "subject-long", "shorten it")


def test_image_without_alt_is_a_problem(tmp_path: Path) -> None:
    body = ARTICLE + "\n![](https://www.bureau-kennis.net/img/wabo.png)\n"

    assert_problem(write_issue(tmp_path, bodies=(body,)), "img-alt", "wabo.png")


def test_image_without_absolute_https_url_is_a_problem(tmp_path: Path) -> None:
    body = (
        ARTICLE + "\n![Schema van de Wabo-procedure](http://www.bureau-kennis.net/img/wabo.png)\n"
    )

    assert_problem(write_issue(tmp_path, bodies=(body,)), "img-url", "absolute https URL")


@pytest.mark.parametrize(
    ("src", "says"),
    [("img/wabo.png", "not found; put the file next to the article"),
     ("/img/wabo.png", "must be a file in the issue folder")],
)  # fmt: skip
def test_image_path_names_a_file_in_the_issue_folder(tmp_path: Path, src: str, says: str) -> None:
    # A path is a photo from the issue folder (tests/test_web.py); one that is not there stops
    # check at the article's line, like every content error.
    body = ARTICLE + f"\n![Schema van de Wabo-procedure]({src})\n"
    exit_code, output = run_check(write_issue(tmp_path, bodies=(body,)))
    assert exit_code == 2
    assert "01-artikel.md:" in output and says in output


def test_empty_link_is_a_problem(tmp_path: Path) -> None:
    body = ARTICLE + "\nZie ook [de brochure over de Wabo]().\n"

    assert_problem(write_issue(tmp_path, bodies=(body,)), "link-empty", "de brochure over")


def test_link_to_an_anchor_that_is_not_there_is_a_problem(tmp_path: Path) -> None:
    body = ARTICLE + "\nZie [het overzicht hieronder](#nowhere).\n"

    assert_problem(write_issue(tmp_path, bodies=(body,)), "link-anchor", "'#nowhere'")


@pytest.mark.parametrize("href", ["/agenda/2012/wabo", "www.bureau-kennis.net", "tel:0331234567"])
def test_link_that_is_neither_http_nor_mailto_is_a_problem(tmp_path: Path, href: str) -> None:
    body = ARTICLE + f"\nBel of kijk via [de contactgegevens van Bureau Kennis]({href}).\n"

    assert_problem(write_issue(tmp_path, bodies=(body,)), "link-scheme", href)


def test_javascript_link_is_a_problem(tmp_path: Path, broken_templates: Path) -> None:
    # Markdown never makes a javascript: link (it stays text), so break the template.
    edit(
        broken_templates / "email.mjml.j2",
        '<a href="#agenda">Agenda</a>',
        '<a href="javascript:alert(1)">Agenda</a>',
    )

    report = check_with(broken_templates, write_issue(tmp_path))

    assert codes(report) == {"link-scheme"}
    template = broken_templates / "email.mjml.j2"
    lines = template.read_text(encoding="utf-8").split("\n")
    line = next(n for n, text in enumerate(lines, start=1) if "javascript:" in text)
    # a literal link in the template is found at its template line
    assert report.problems[0].where == f"{template}:{line}"
    assert "javascript:alert(1)" in report.format()


def test_javascript_link_in_content_stays_text(tmp_path: Path) -> None:
    body = ARTICLE + "\nNiet doen: [klik](javascript:alert(1)).\n"

    exit_code, output = run_check(write_issue(tmp_path, bodies=(body,)))

    assert exit_code == 0, output


def test_leftover_template_marker_in_an_article_is_a_problem(tmp_path: Path) -> None:
    body = ARTICLE + "\nBeste {{ naam }}, wij zien u graag in Amersfoort.\n"

    issue_dir = write_issue(tmp_path, bodies=(body,))
    output = assert_problem(issue_dir, "template-marker")
    # once, at the author's line (front matter 4 lines + the article's 6), not per HTML line
    assert output.splitlines()[0] == (
        f"problem  {issue_dir / '01-artikel.md'}:11: '{{{{ naam }}}}' is not a merge field and "
        "would reach every reader as typed; write {{ subscriber.<column> }} with a column of "
        "the subscriber list, e.g. {{ subscriber.voornaam }}, or remove the braces "
        "[template-marker]"
    )
    assert output.count("problem  ") == 1


def test_no_unsubscribe_link_is_a_problem(tmp_path: Path, broken_templates: Path) -> None:
    edit(
        broken_templates / "email.mjml.j2",
        'Geen interesse meer? <a href="{{ unsubscribe_url }}">Afmelden voor deze nieuwsbrief</a>.',
        "",
    )

    report = check_with(broken_templates, write_issue(tmp_path))

    assert codes(report) == {"unsubscribe-missing"}
    assert "no unsubscribe link" in report.format()
    assert report.problems[0].where == str(broken_templates / "email.mjml.j2")


def test_missing_text_part_is_a_problem(tmp_path: Path, broken_templates: Path) -> None:
    (broken_templates / "email.txt.j2").write_text("{#- nothing -#}\n", encoding="utf-8")

    report = check_with(broken_templates, write_issue(tmp_path))

    assert codes(report) == {"text-missing"}


def test_text_part_without_an_article_is_a_problem(tmp_path: Path, broken_templates: Path) -> None:
    edit(broken_templates / "email.txt.j2", "{{ loop.index }}. {{ article.title }}", "")

    report = check_with(broken_templates, write_issue(tmp_path))

    assert codes(report) == {"text-mismatch"}
    assert f"'{TITLE}' is in the HTML but not in the plain text" in report.format()


def test_past_issue_date_is_a_warning_when_sending(tmp_path: Path) -> None:
    issue_dir = write_issue(tmp_path)

    sending = check_issue(issue_dir, factory_maker, today=date(2012, 6, 2), sending=True)
    checking = check_issue(issue_dir, factory_maker, today=date(2012, 6, 2))

    assert sending.ok and [f.code for f in sending.warnings] == ["date-past"]
    assert "2012-06-01" in sending.format()
    # `check` shows the warning `send` shows, at the line of the date
    assert [str(f) for f in checking.warnings] == [
        f"{issue_dir / 'issue.yaml'}:2: the issue is dated 2012-06-01, before today "
        "(2012-06-02); if this is a new issue, update its 'date:' [date-past]"
    ]


def test_example_issue_only_warns_about_its_date_when_sending() -> None:
    report = check_issue(
        EXAMPLE_ISSUE,
        factory_maker,
        agenda_path=EXAMPLE_AGENDA,
        today=date(2012, 5, 2),
        sending=True,
    )

    assert report.ok
    assert [f.code for f in report.warnings] == ["date-past"]
