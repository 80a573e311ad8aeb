"""compose: the example issue end to end, its golden files, and every bad input."""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import EXAMPLE_ISSUE, REPO
from nieuwsbrief.cli import app

GOLDEN = REPO / "tests" / "golden" / "2012-05"
REGENERATE = os.environ.get("NIEUWSBRIEF_UPDATE_GOLDEN") == "1"
runner = CliRunner()


def compose(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["compose", *args])
    return result.exit_code, result.stdout, result.stderr


def normalise_eml(data: bytes) -> bytes:
    """Mask the two headers that differ on every run."""
    data = re.sub(rb"^Date: [^\r\n]*", b"Date: <DATE>", data, flags=re.M)
    return re.sub(rb"^Message-ID: [^\r\n]*", b"Message-ID: <MESSAGE-ID>", data, flags=re.M)


@pytest.fixture
def composed(example_copy: Path) -> Path:
    code, _, err = compose(str(example_copy))
    assert code == 0, err
    return example_copy / "out"


def test_compose_writes_three_files_and_summary(example_copy: Path) -> None:
    code, out, err = compose(str(example_copy))
    assert code == 0, err
    assert sorted(p.name for p in (example_copy / "out").iterdir()) == [
        "email.html",
        "email.txt",
        "preview.eml",
    ]
    assert "Subject:  Nieuwsbrief mei 2012: social media, BIM en kennismanagement" in out
    assert "Articles: 3" in out
    assert "Events:   9 on or after 2012-05-01" in out
    assert re.search(r"HTML:\s+\d+\.\d KB as sent", out)
    assert "Warning" not in err


def test_golden_files(composed: Path) -> None:
    """The example issue renders exactly as committed.

    Regenerate after an intended change with:
    NIEUWSBRIEF_UPDATE_GOLDEN=1 pytest tests/test_compose.py -k golden
    """
    produced = {
        "email.html": (composed / "email.html").read_bytes(),
        "email.txt": (composed / "email.txt").read_bytes(),
        "preview.eml": normalise_eml((composed / "preview.eml").read_bytes()),
    }
    if REGENERATE:
        for name, data in produced.items():
            (GOLDEN / name).write_bytes(data)
    for name, data in produced.items():
        assert data == (GOLDEN / name).read_bytes(), f"{name} differs from tests/golden"


def test_html_shows_articles_calls_to_action_and_agenda_in_order(composed: Path) -> None:
    html = (composed / "email.html").read_text(encoding="utf-8")
    assert '<html lang="nl"' in html
    for title in (
        "Social Media en ambtenaar 2.0",
        "Bouw Informatie Model (BIM) en de relatie met de gemeentelijke praktijk",
        "Opbouw en verdwijning van kennis binnen de gemeentelijke praktijk",
    ):
        assert title in html
    # Each call to action: the event's date and city, then a button short enough for 320 px.
    for when, button in (
        ("31 mei 2012, Amersfoort", "Aanmelden voor de masterclass"),
        ("14 juni 2012, Amersfoort", "Aanmelden voor de cursus"),
        ("22 mei 2012, Amersfoort", "Aanmelden voor de workshop"),
    ):
        assert re.search(re.escape(when) + r"</p></div>.*?>" + re.escape(button) + "</a>", html)
    agenda = html[html.index('id="agenda"') :]
    dates = re.findall(r'class="nb-date"[^>]*>([^<]+)<', agenda)
    assert dates == [
        "7 mei 2012",
        "10 mei 2012",
        "22 mei 2012",
        "31 mei 2012",
        "7 juni 2012",
        "12 juni 2012",
        "14 juni 2012",
        "18 juni 2012",
        "19 juni 2012",
    ]
    assert "https://www.bureau-kennis.net/agenda/2012/cursus-bim-binnen-gemeenten" in agenda
    assert "<style" in html and "@media (prefers-color-scheme: dark)" in html
    # CSS is inlined: the article headings carry their style themselves.
    assert re.search(r'<h2 id="artikel-1" style="[^"]*font-size:22px', html)


def test_text_twin_has_same_content_links_as_urls(composed: Path) -> None:
    text = (composed / "email.txt").read_text(encoding="utf-8")
    assert text.startswith("BUREAU | KENNIS · Nieuwsbrief mei 2012")
    assert "Beste Voorbeeld Abonnee," in text
    assert "1. Social Media en ambtenaar 2.0" in text
    assert (
        "Aanmelden voor de masterclass op 31 mei 2012:\n"
        "   https://www.bureau-kennis.net/agenda/2012/masterclass-social-media-en-ambtenaar-2-0"
    ) in text
    assert "- Doelstellingen formuleren" in text
    assert "1. Kennisopslag." in text
    assert text.index("7 mei 2012, Woerden") < text.index("19 juni 2012, Amersfoort")
    assert "www.bureau-kennis.net" in text and "info@bureau-kennis.net" in text
    assert "Afmelden:\nmailto:info@bureau-kennis.net?subject=afmelden%201" in text
    assert "%%nb:" not in text
    # Lines stay readable; only a URL, which must not be broken, may be longer.
    long_lines = [line.strip() for line in text.splitlines() if len(line) > 78]
    assert all(re.fullmatch(r"(https?|mailto):\S+", line) for line in long_lines), long_lines


def test_files_are_exactly_the_parts_of_preview_eml(composed: Path) -> None:
    message = email.message_from_bytes(
        (composed / "preview.eml").read_bytes(), policy=policy.default
    )
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    # The parts travel with CRLF line ends (RFC 2046); the files use the local "\n".
    text_part, html_part = (p.get_content().replace("\r\n", "\n") for p in parts)
    assert text_part == (composed / "email.txt").read_text(encoding="utf-8")
    assert html_part == (composed / "email.html").read_text(encoding="utf-8")
    assert message["To"] == "Voorbeeld Abonnee <abonnee@example.nl>"
    assert message["Subject"] == "Nieuwsbrief mei 2012: social media, BIM en kennismanagement"
    raw = (composed / "preview.eml").read_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_agenda_csv_is_accepted(example_copy: Path, tmp_path: Path) -> None:
    agenda = tmp_path / "agenda.csv"
    agenda.write_bytes(
        "\ufeffid;type;title;date;city;url\r\n"
        "masterclass-social-media-2012-05;Masterclass;Social Media en ambtenaar 2.0;2012-05-31;"
        "Amersfoort;https://www.bureau-kennis.net/a\r\n"
        "cursus-bim-2012-06;Cursus;BIM binnen gemeenten;2012-06-14;Amersfoort;https://x.nl/b\r\n"
        "workshop-kennismanagement-2012-05;Workshop;Kennis;2012-05-22;Utrecht;https://x.nl/c\r\n"
        "oud;Seminar;Voorbij;2012-04-01;Zwolle;https://x.nl/d\r\n".encode()
    )
    code, out, err = compose(str(example_copy), "--agenda", str(agenda))
    assert code == 0, err
    assert "Events:   3 on or after 2012-05-01" in out
    html = (example_copy / "out" / "email.html").read_text(encoding="utf-8")
    assert "22 mei 2012" in html and "Voorbij" not in html


def test_out_option(example_copy: Path, tmp_path: Path) -> None:
    code, _, err = compose(str(example_copy), "--out", str(tmp_path / "elders"))
    assert code == 0, err
    assert (tmp_path / "elders" / "preview.eml").is_file()
    assert not (example_copy / "out").exists()


def test_missing_preheader_warns(example_copy: Path) -> None:
    issue_yaml = example_copy / "issue.yaml"
    issue_yaml.write_text(
        re.sub(r"^preheader:.*\n", "", issue_yaml.read_text(encoding="utf-8"), flags=re.M),
        encoding="utf-8",
    )
    code, out, _ = compose(str(example_copy))
    assert code == 1  # a problem, as `check` says; the files are written to look at
    assert (example_copy / "out" / "email.html").is_file()
    assert (
        f"problem  {example_copy / 'issue.yaml'}:1: the issue has no preheader; inboxes then "
        "show the first text of the email: add a line 'preheader: ...'"
    ) in out


def test_raw_html_in_markdown_is_shown_as_text(example_copy: Path) -> None:
    article = example_copy / "02-bim.md"
    article.write_text(
        article.read_text(encoding="utf-8") + '\n<script>alert("x")</script> <b>vet</b>\n',
        encoding="utf-8",
    )
    code, _, err = compose(str(example_copy))
    assert code == 0, err
    html = (example_copy / "out" / "email.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "<b>vet</b>" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;vet&lt;/b&gt;" in html


def test_articles_default_to_sorted_md_files(example_copy: Path) -> None:
    issue_yaml = example_copy / "issue.yaml"
    text = issue_yaml.read_text(encoding="utf-8")
    issue_yaml.write_text(text[: text.index("articles:")], encoding="utf-8")
    (example_copy / "01-social-media.md").rename(example_copy / "04-social-media.md")
    code, out, err = compose(str(example_copy))
    assert code == 0, err
    titles = re.findall(r"^    \d\. (.*)$", out, flags=re.M)
    assert titles[0].startswith("Bouw Informatie Model") and titles[2].startswith("Social Media")


# --- bad input: exit 2, one message naming file and line, nothing written -----------------


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _remove_articles(issue: Path) -> None:
    _replace(
        issue / "issue.yaml",
        "articles:\n  - 01-social-media.md\n  - 02-bim.md\n  - 03-kennismanagement.md\n",
        "",
    )
    for article in issue.glob("*.md"):
        article.unlink()


BAD_INPUTS: dict[str, tuple[Callable[[Path], object], str]] = {
    "broken front matter": (
        lambda d: _replace(d / "02-bim.md", "title: Bouw", "title: [Bouw"),
        r"02-bim\.md:3: invalid YAML",
    ),
    "front matter not closed": (
        lambda d: _replace(d / "02-bim.md", "event: cursus-bim-2012-06\n---\n", "event: x\n"),
        r"02-bim\.md:1: front matter is not closed",
    ),
    "article without title": (
        lambda d: _replace(
            d / "02-bim.md",
            "title: Bouw Informatie Model (BIM) en de relatie met de gemeentelijke praktijk\n",
            "",
        ),
        r"02-bim\.md:1: 'title' is missing",
    ),
    "unknown front matter key": (
        lambda d: _replace(d / "02-bim.md", "event: cursus", "auteur: Jan\nevent: cursus"),
        r"02-bim\.md:3: unknown front matter key 'auteur'",
    ),
    "unknown front matter key with a block value": (
        lambda d: _replace(d / "02-bim.md", "event: cursus", "tags:\n  - bim\nevent: cursus"),
        r"02-bim\.md:3: unknown front matter key 'tags'",
    ),
    "unknown issue.yaml key with a block value": (
        lambda d: _replace(d / "issue.yaml", "date: 2012-05-01", "date: 2012-05-01\nextra:\n  - x"),
        r"issue\.yaml:5: unknown key 'extra'",
    ),
    "unknown event": (
        lambda d: _replace(d / "02-bim.md", "event: cursus-bim-2012-06", "event: cursus-bmi"),
        r"02-bim\.md:3: event 'cursus-bmi' is not in the agenda",
    ),
    "invalid issue date": (
        lambda d: _replace(d / "issue.yaml", "date: 2012-05-01", "date: 2012-02-31"),
        r"issue\.yaml:4: date '2012-02-31' is not a valid date",
    ),
    "missing issue date": (
        lambda d: _replace(d / "issue.yaml", "date: 2012-05-01\n", ""),
        r"issue\.yaml:1: 'date' is missing",
    ),
    "date ambiguous": (
        lambda d: _replace(d / "issue.yaml", "date: 2012-05-01", "date: 5/1/2012"),
        r"issue\.yaml:4: date '5/1/2012' is ambiguous \(6/7/2012 is 6 July in Dutch, 7 June in "
        r"English\); write it as 2012-06-26, 26-6-2012 or 26 juni 2012",
    ),
    "date with a two-digit year": (
        lambda d: _replace(d / "issue.yaml", "date: 2012-05-01", "date: 1-5-12"),
        r"issue\.yaml:4: date '1-5-12' has a two-digit year",
    ),
    "date with an unknown month": (
        lambda d: _replace(d / "issue.yaml", "date: 2012-05-01", "date: 1 may 2012"),
        r"issue\.yaml:4: date '1 may 2012': 'may' is not a Dutch month name",
    ),
    "no issue.yaml": (
        lambda d: (d / "issue.yaml").unlink(),
        r"issue\.yaml: not found",
    ),
    "no articles": (
        _remove_articles,
        r"2012-05: has no articles",
    ),
    "listed article missing": (
        lambda d: (d / "02-bim.md").unlink(),
        r"issue\.yaml:10: article '02-bim\.md' not found",
    ),
    "article not UTF-8": (
        lambda d: (d / "02-bim.md").write_bytes(
            "---\ntitle: Caf\u00e9\n---\nTekst\n".encode("cp1252")
        ),
        r"02-bim\.md:2: is not UTF-8 text",
    ),
    "agenda not a list": (
        lambda d: (d.parent / "agenda.yaml").write_text("id: x\ntype: Seminar\n"),
        r"agenda\.yaml:1: the agenda must be a YAML list",
    ),
    "event missing a field": (
        lambda d: _replace(d.parent / "agenda.yaml", "  city: Rotterdam\n", ""),
        r"agenda\.yaml:\d+: this event has no 'city'",
    ),
    "duplicate event id": (
        lambda d: _replace(
            d.parent / "agenda.yaml",
            "id: masterclass-dagvaarding-2012-05",
            "id: seminar-erfpacht-2012-05",
        ),
        r"agenda\.yaml:\d+: event id 'seminar-erfpacht-2012-05' is used twice \(also on line 5\)",
    ),
    "event url not http": (
        lambda d: _replace(
            d.parent / "agenda.yaml",
            "https://www.bureau-kennis.net/agenda/2012/masterclass-vaardig-met-de-dagvaarding",
            "javascript:alert(1)",
        ),
        r"agenda\.yaml:\d+: url 'javascript:alert\(1\)' is not a web address",
    ),
    "invalid event date": (
        lambda d: _replace(d.parent / "agenda.yaml", "date: 2012-06-19", "date: 2012-06-31"),
        r"agenda\.yaml:\d+: date '2012-06-31' is not a valid date",
    ),
    "agenda missing": (
        lambda d: (d.parent / "agenda.yaml").unlink(),
        r"agenda\.yaml: agenda not found; create it or pass --agenda FILE",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_is_one_clear_error_and_nothing_is_written(case: str, example_copy: Path) -> None:
    breaks, expected = BAD_INPUTS[case]
    breaks(example_copy)
    code, out, err = compose(str(example_copy))
    assert code == 2
    assert out == ""
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert re.search(expected, err), err
    assert "Traceback" not in err
    assert not (example_copy / "out").exists()


def test_event_lines_are_right(example_copy: Path) -> None:
    _replace(example_copy.parent / "agenda.yaml", "  city: Rotterdam\n", "")
    _, _, err = compose(str(example_copy))
    assert "agenda.yaml:12: this event has no 'city'" in err  # the '- id:' line of that event


def test_issue_dir_that_does_not_exist() -> None:
    code, _, err = compose("nergens")
    assert code == 2
    assert err == "Error: nergens: is not an issue folder (it does not exist or is a file)\n"


# --- the installed program ----------------------------------------------------------------


def test_console_script_runs_compose(tmp_path: Path, example_copy: Path) -> None:
    script = Path(sys.executable).with_name("nieuwsbrief")
    assert script.is_file(), "install the package: pip install -e ."
    result = subprocess.run(
        [str(script), "compose", str(example_copy), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Articles: 3" in result.stdout
    assert (tmp_path / "o" / "email.html").stat().st_size > 10_000


def test_python_dash_m_and_help(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nieuwsbrief", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0
    assert "compose" in result.stdout


def test_example_issue_in_repo_is_untouched() -> None:
    assert (EXAMPLE_ISSUE / "issue.yaml").is_file()


@pytest.mark.slow
def test_installed_wheel_finds_its_templates(tmp_path: Path, example_copy: Path) -> None:
    """A regular (non-editable) install carries the default templates and brand file.

    The example home (tmp_path) overrides only brand.yaml; every template comes from the wheel.
    """
    import shutil

    wheels, target, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "source"
    # Build from a copy: setuptools writes build/ next to the sources.
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / part, source / part)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("nieuwsbrief-*.whl")
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target)]
    assert subprocess.run([*install, str(wheel)], capture_output=True, timeout=300).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run(
        [sys.executable, "-m", "nieuwsbrief", "compose", str(example_copy), "--out", "o"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import nieuwsbrief.templating as t; print(t.default_templates_dir())",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(str(target))
    assert (tmp_path / "o" / "email.html").read_bytes() == (GOLDEN / "email.html").read_bytes()


def test_agenda_csv_from_dutch_excel_in_windows_1252(example_copy: Path, tmp_path: Path) -> None:
    agenda = tmp_path / "agenda.csv"
    rows = [
        "id;type;title;date;city;url",
        "masterclass-social-media-2012-05;Masterclass;Social Media;2012-05-31;Amersfoort;https://x.nl/a",
        "cursus-bim-2012-06;Cursus;BIM in het caf\u00e9;2012-06-14;Den Haag;https://x.nl/b",
        "workshop-kennismanagement-2012-05;Workshop;Kennis;2012-05-22;Utrecht;https://x.nl/c",
    ]
    agenda.write_bytes("\r\n".join(rows).encode("cp1252"))
    code, _, err = compose(str(example_copy), "--agenda", str(agenda))
    assert code == 0, err
    assert "BIM in het café" in (example_copy / "out" / "email.html").read_text(encoding="utf-8")
