"""The command line in Dutch and English: the catalog is complete and compiled, and every
command's help, its usage errors and a whole send speak the user's language."""

from __future__ import annotations

import gettext
import io
import os
import pty
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Message
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from typer.main import get_command
from typer.testing import CliRunner

from nieuwsbrief import i18n
from nieuwsbrief.cli import app
from smtp_server import SmtpServer

SRC = Path(i18n.__file__).resolve().parent
PO_PATH = SRC / "locale" / "nl" / "LC_MESSAGES" / "nieuwsbrief.po"
MO_PATH = PO_PATH.with_suffix(".mo")
DUTCH = {"LANG": "nl_NL.UTF-8", "LANGUAGE": None, "LC_ALL": None, "LC_MESSAGES": None}
ENGLISH = {"LANG": "C", "LANGUAGE": None, "LC_ALL": None, "LC_MESSAGES": None}
# Words that give an English sentence away; none of them is also Dutch ("is", "in", "of" are).
ENGLISH_MARKERS = frozenset(
    {
        "the", "The", "and", "for", "not", "with", "this", "every", "Show", "Usage", "Send", "Try",
        "Error", "Options", "Arguments", "Commands", "file", "files", "folder", "message",
        "messages", "Missing", "Nothing", "sent", "Subject", "Recipients", "Delivered", "Skipped",
        "Failed", "already", "unsubscribed", "invalid", "duplicate", "problems", "warnings",
    }
)  # fmt: skip
PLACEHOLDER = re.compile(r"<[a-z][\w\[\], ]*>")  # Typer's type hints: <bool>, <list[str]>
_NOT_PROSE = re.compile(r"--?[\w-]+|\S*[./_@\\]\S*|\[blue\]|\{[^}]*\}")

runner = CliRunner()


@pytest.fixture(autouse=True)
def _inside_the_home_and_english_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Run the staff commands inside tmp_path (a home); reset the catalog to English after.

    A Dutch run in this process leaves the Dutch catalog chosen; the next test expects English.
    """
    monkeypatch.chdir(tmp_path)
    yield
    i18n.setup("en")


def english_words(text: str) -> set[str]:
    """Return the English marker words in `text`, ignoring options, paths, files and names."""
    return set(re.findall(r"[A-Za-z]+", _NOT_PROSE.sub(" ", text))) & ENGLISH_MARKERS


def catalog_messages() -> dict[str, Message]:
    """The catalog's messages by msgid (the singular one of a plural message)."""
    with PO_PATH.open("rb") as handle:
        catalog = read_po(handle)
    return {(m.id if isinstance(m.id, str) else m.id[0]): m for m in catalog if m.id}


def test_every_marked_text_is_in_the_catalog_and_translated() -> None:
    in_sources = {
        (msgid if isinstance(msgid, str) else msgid[0], filename)
        for filename, _line, msgid, _comments, _context in extract_from_dir(
            SRC, method_map=[("**.py", "python")]
        )
    }
    messages = catalog_messages()
    missing = sorted(f"{name}: {msgid!r}" for msgid, name in in_sources if msgid not in messages)
    assert not missing, "run the catalog update in README (Language):\n" + "\n".join(missing)
    for msgid, message in messages.items():
        string = message.string
        strings = [string] if isinstance(string, str) else list(string or [""])
        assert all(strings) and "fuzzy" not in message.flags, f"not translated: {msgid!r}"
        wanted = set(re.findall(r"\{\w*\}", msgid))
        for string in strings:
            assert set(re.findall(r"\{\w*\}", string)) == wanted, f"placeholders: {msgid!r}"


def test_the_compiled_catalog_matches_the_po_file() -> None:
    with PO_PATH.open("rb") as handle:
        catalog = read_po(handle)
    fresh = io.BytesIO()
    write_mo(fresh, catalog)
    fresh.seek(0)
    with MO_PATH.open("rb") as shipped:
        shipped_catalog = gettext.GNUTranslations(shipped)._catalog  # type: ignore[attr-defined]
    fresh_catalog = gettext.GNUTranslations(fresh)._catalog  # type: ignore[attr-defined]
    assert shipped_catalog == fresh_catalog, "run `pybabel compile` (README, Language)"


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({"LANG": "nl_NL.UTF-8"}, "nl"),
        ({"LC_ALL": "nl_BE.UTF-8", "LANG": "C"}, "nl"),
        ({"LANGUAGE": "nl", "LANG": "en_GB.UTF-8"}, "nl"),
        ({"LANG": "C"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LC_MESSAGES": "en_US.UTF-8", "LANG": "nl_NL.UTF-8"}, "en"),
        ({}, "en"),
    ],
)
def test_the_locale_chooses_the_language(environ: dict[str, str], language: str) -> None:
    assert i18n.locale_language(environ) == language


def test_plural_forms_in_both_languages() -> None:
    try:
        i18n.setup("nl")
        assert i18n.ngettext("{count} warning", "{count} warnings", 1) == "{count} waarschuwing"
        assert i18n.ngettext("{count} warning", "{count} warnings", 3) == "{count} waarschuwingen"
        i18n.setup("en")
        assert i18n.ngettext("{count} warning", "{count} warnings", 1) == "{count} warning"
        assert i18n.ngettext("{count} warning", "{count} warnings", 0) == "{count} warnings"
    finally:
        i18n.setup("en")


def command_paths() -> list[list[str]]:
    """Return every command and group of the CLI as its argument path, the root first."""
    paths: list[list[str]] = [[]]

    def walk(command: object, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*path, name])
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "nieuwsbrief")
def test_help_is_dutch_under_a_dutch_locale_and_english_under_c(path: list[str]) -> None:
    dutch = runner.invoke(app, [*path, "-h"], env=DUTCH)
    assert dutch.exit_code == 0, dutch.output
    assert "Gebruik:" in dutch.output and "Toon deze hulptekst" in dutch.output
    assert not english_words(dutch.output), dutch.output
    assert not PLACEHOLDER.search(dutch.output), dutch.output

    english = runner.invoke(app, [*path, "--help"], env=ENGLISH)
    assert english.exit_code == 0, english.output
    assert {"Usage", "Show"} <= english_words(english.output), english.output
    assert not PLACEHOLDER.search(english.output), english.output


@pytest.mark.parametrize(
    ("args", "dutch"),
    [
        (["send"], "Argument 'UITGAVEMAP' ontbreekt."),
        (
            ["send", "x", "--subscriber", "y"],
            "Onbekende optie: --subscriber (bedoelt u --subscribers?)",
        ),
        (["send", "x", "--rate", "snel"], "Ongeldige waarde voor '--rate': geef een getal"),
        (["send", "x", "--connections", "0"], "geef een getal van minstens 1"),
        (["sned"], "Onbekende opdracht 'sned'."),
        (["send", "x", "y"], "Onverwacht extra argument (y)"),
        (["preview", "x", "--subscribers", "geen.csv"], "'geen.csv' bestaat niet."),
    ],
)
def test_usage_errors_are_dutch(args: list[str], dutch: str) -> None:
    result = runner.invoke(app, args, env=DUTCH)
    assert result.exit_code == 2
    assert dutch in " ".join(result.stderr.replace("│", " ").split()), result.stderr
    assert "Fout" in result.stderr and "voor hulp" in result.stderr
    assert not english_words(result.stderr), result.stderr


def test_a_real_process_follows_lang(tmp_path: Path) -> None:
    for lang, expected in (("nl_NL.UTF-8", "Toon deze hulptekst en stop."), ("C", "Show this")):
        env = {"PATH": "/usr/bin:/bin", "LANG": lang}
        run = subprocess.run(
            [sys.executable, "-m", "nieuwsbrief", "-h"],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert expected in run.stdout


@pytest.mark.parametrize(
    ("rows", "dutch", "english"),
    [
        (1, "1 geldige ontvanger\n", "1 valid recipient\n"),
        (3, "3 geldige ontvangers\n", "3 valid recipients\n"),
    ],
)
def test_subscribers_check_counts_in_the_right_plural(
    tmp_path: Path, rows: int, dutch: str, english: str
) -> None:
    path = tmp_path / "lijst.csv"
    lines = ["naam;e-mail", *(f"Lid {n};lid{n}@example.nl" for n in range(rows)), "Fout;geen-adres"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["subscribers", "check", str(path)], env=DUTCH)
    assert result.exit_code == 0, result.output
    assert dutch in result.stdout and "1 ongeldige rij (overgeslagen):" in result.stdout
    assert "geen geldig e-mailadres: een e-mailadres moet een @ hebben" in result.stdout
    assert not english_words(result.stdout), result.stdout
    result = runner.invoke(app, ["subscribers", "check", str(path)], env=ENGLISH)
    assert english in result.stdout and "1 invalid row (skipped):" in result.stdout


def test_unsubscribe_speaks_dutch_and_no_is_an_answer() -> None:
    result = runner.invoke(app, ["unsubscribe", "piet@example.nl", "geen-adres"], env=DUTCH)
    assert result.exit_code == 1
    assert "piet@example.nl: afgemeld (piet@example.nl)" in result.stdout
    assert "geen-adres: geen adres of token" in result.stdout
    assert "1 afgemeld, 1 niet begrepen;" in result.stdout
    result = runner.invoke(
        app, ["unsubscribe", "--remove", "piet@example.nl"], env=DUTCH, input="x\nnee\n"
    )
    assert result.exit_code == 0, result.output
    assert "piet@example.nl weer aanmelden? [j/N]" in result.stdout
    assert "Antwoord j (ja) of n (nee)." in result.stderr
    assert "piet@example.nl blijft afgemeld." in result.stdout
    result = runner.invoke(
        app, ["unsubscribe", "--remove", "piet@example.nl"], env=DUTCH, input="ja\n"
    )
    assert result.exit_code == 0, result.output
    assert "piet@example.nl krijgt de nieuwsbrief weer" in result.stdout


def test_check_reports_in_dutch_with_plurals(example_copy: Path) -> None:
    clean = runner.invoke(app, ["check", str(example_copy)], env=DUTCH)
    assert clean.exit_code == 0, clean.output
    assert clean.stdout.strip().splitlines()[-1].startswith("OK: geen problemen")

    issue_yaml = example_copy / "issue.yaml"
    lines = issue_yaml.read_text(encoding="utf-8").splitlines()
    issue_yaml.write_text(
        "\n".join(line for line in lines if not line.startswith("preheader:")) + "\n",
        encoding="utf-8",
    )
    broken = runner.invoke(app, ["check", str(example_copy)], env=DUTCH)
    assert broken.exit_code == 1, broken.output
    assert "issue.yaml:1: de uitgave heeft geen preheader" in broken.stdout
    assert "[preheader-missing]" in broken.stdout
    assert "1 probleem, " in broken.stdout and "— los ze op vóór het versturen" in broken.stdout
    assert not english_words(broken.output), broken.output


def test_compose_summary_and_content_errors_in_dutch(example_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "uit"
    result = runner.invoke(app, ["compose", str(example_copy), "--out", str(out)], env=DUTCH)
    assert result.exit_code == 0, result.output
    assert "Samengesteld: " in result.stdout and "  Artikelen:  3" in result.stdout
    assert "KB zoals verzonden (Gmail kapt berichten boven ongeveer 102 KB af)" in result.stdout
    assert not english_words(result.output), result.output

    article = example_copy / "02-bim.md"
    text = article.read_text(encoding="utf-8")
    article.write_text(text.replace("event: ", "event: bestaat-niet-", 1), encoding="utf-8")
    broken = runner.invoke(app, ["compose", str(example_copy), "--out", str(out)], env=DUTCH)
    assert broken.exit_code == 2
    assert f"Fout: {article}:3: evenement 'bestaat-niet-" in broken.stderr
    assert "staat niet in de agenda (bekende id's: " in broken.stderr


def run_send_on_a_terminal(
    issue: Path, subscribers: Path, server: SmtpServer, cwd: Path, answer: str
) -> subprocess.CompletedProcess[str]:
    """Run `nieuwsbrief send` in Dutch with a terminal on stdin, answering the question."""
    env = {
        **os.environ,
        **{k: v for k, v in DUTCH.items() if v is not None},
        "NIEUWSBRIEF_SMTP_HOST": server.host,
        "NIEUWSBRIEF_SMTP_PORT": str(server.port),
        "NIEUWSBRIEF_SMTP_SECURITY": "none",
        "NIEUWSBRIEF_UNSUBSCRIBE_URL": "https://www.bureau-kennis.net/afmelden/{token}",
    }
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        env.pop(name, None)
    controller, terminal = pty.openpty()
    try:
        command = [sys.executable, "-m", "nieuwsbrief", "send", str(issue), "--subscribers",
                   str(subscribers)]  # fmt: skip
        with subprocess.Popen(
            command, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, cwd=cwd,
        ) as process:  # fmt: skip
            os.close(terminal)
            terminal = -1
            os.write(controller, answer.encode() + b"\n")
            stdout, stderr = process.communicate(timeout=120)
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)


def write_members(path: Path, count: int) -> Path:
    lines = ["naam;e-mail", *(f"Lid {n};lid{n}@example.nl" for n in range(count))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_answering_nee_sends_nothing_and_is_not_an_error(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    subscribers = write_members(tmp_path / "lijst.csv", 3)
    run = run_send_on_a_terminal(example_copy, subscribers, smtp_server, tmp_path, "n")
    assert run.returncode == 0, run.stderr
    assert "Nu versturen? [j/N]" in run.stdout
    assert run.stdout.rstrip().endswith("Niets verzonden."), run.stdout
    assert "Fout" not in run.stderr and "Error" not in run.stderr
    assert smtp_server.recipients() == []


def test_answering_j_sends_to_everyone(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    subscribers = write_members(tmp_path / "lijst.csv", 3)
    run = run_send_on_a_terminal(example_copy, subscribers, smtp_server, tmp_path, "j")
    assert run.returncode == 0, run.stderr
    assert sorted(smtp_server.recipients()) == [f"lid{n}@example.nl" for n in range(3)]
    assert "Ontvangers: 3 (van 3 rijen; overgeslagen: 0 al verzonden, 0 afgemeld" in run.stdout
    assert "Nu versturen? [j/N]" in run.stdout
    assert "3/3 bezorgd" in run.stderr
    assert "Afgeleverd:   3 in " in run.stdout and "Mislukt:      0 geweigerd" in run.stdout
    assert not english_words(run.stdout + run.stderr), run.stdout + run.stderr


def test_the_setting_beats_the_locale(tmp_path: Path) -> None:
    english_locale = {**ENGLISH, "NIEUWSBRIEF_LANGUAGE": "nl"}
    assert "Toon deze hulptekst" in runner.invoke(app, ["-h"], env=english_locale).output
    dutch_locale = {**DUTCH, "NIEUWSBRIEF_LANGUAGE": "en"}
    assert "Show this message" in runner.invoke(app, ["-h"], env=dutch_locale).output

    # The home's nieuwsbrief.toml (tmp_path is the home and the current folder here).
    config = tmp_path / "nieuwsbrief.toml"
    config.write_text(config.read_text(encoding="utf-8") + 'language = "nl"\n', encoding="utf-8")
    assert "Toon deze hulptekst" in runner.invoke(app, ["-h"], env=ENGLISH).output
    status = runner.invoke(app, ["status"], env=ENGLISH)
    assert status.exit_code == 0, status.output
    assert "er is nog geen uitgave verstuurd" in status.stdout

    config.write_text('language = "fr"\n', encoding="utf-8")
    wrong = runner.invoke(app, ["status"], env=ENGLISH)
    assert wrong.exit_code == 2
    assert "NIEUWSBRIEF_LANGUAGE: 'fr' is not one of en, nl" in wrong.stderr


def test_check_findings_of_a_careless_issue_are_dutch(example_copy: Path) -> None:
    """An image without alt text on http, raw HTML, an unlisted article, an event before the
    issue date: every finding in Dutch, with its file:line and code kept as they are."""
    issue_yaml = example_copy / "issue.yaml"
    issue_yaml.write_text(
        issue_yaml.read_text(encoding="utf-8").replace("date: 2012-05-01", "date: 2012-05-15"),
        encoding="utf-8",
    )
    article = example_copy / "03-kennismanagement.md"
    text = article.read_text(encoding="utf-8").replace(
        "event: workshop-kennismanagement-2012-05", "event: seminar-erfpacht-2012-05"
    )
    article.write_text(
        text + "\n![](http://www.example.nl/foto.jpg)\n\nBel ons: <b>030 123 4567</b>.\n",
        encoding="utf-8",
    )
    (example_copy / "04-extra.md").write_text(
        "---\ntitle: Nog een artikel\n---\nTekst.\n", encoding="utf-8"
    )

    dutch = runner.invoke(app, ["check", str(example_copy)], env=DUTCH)
    assert dutch.exit_code == 1, dutch.output
    out = " ".join(dutch.stdout.split())
    for expected in (
        "heeft geen alt-tekst; beschrijf de afbeelding tussen de haken",
        "is geen volledig https-adres; mailprogramma's kunnen die niet laden",
        "[img-alt; HTML-regel ",
        "'04-extra.md' staat in de map van de uitgave maar niet onder 'articles:'",
        "HTML zoals '<b>' wordt niet overgenomen",
        "is op 2012-05-07, vóór de datum van de uitgave 2012-05-15",
        "2 problemen, ",
    ):
        assert expected in out, dutch.stdout
    assert f"{article}:3: " in dutch.stdout and f"{issue_yaml}:9: " in dutch.stdout
    assert not english_words(dutch.output), dutch.output

    english = runner.invoke(app, ["check", str(example_copy)], env=ENGLISH)
    assert english.exit_code == 1, english.output
    assert "has no alt text; describe it between the brackets" in english.stdout
    assert "is in the issue folder but not under 'articles:'" in english.stdout


def test_smtp_errors_are_dutch(example_copy: Path, tmp_path: Path) -> None:
    """A server that refuses the login, and a port where nothing listens: exit 2, in Dutch,
    with the server's reply as it came."""
    subscribers = write_members(tmp_path / "lijst.csv", 2)
    base = {
        **DUTCH,
        "NIEUWSBRIEF_SMTP_HOST": "127.0.0.1",
        "NIEUWSBRIEF_SMTP_SECURITY": "none",
        "NIEUWSBRIEF_UNSUBSCRIBE_URL": "https://www.bureau-kennis.net/afmelden/{token}",
    }
    command = ["send", str(example_copy), "--subscribers", str(subscribers), "--yes"]
    with SmtpServer(auth=("nieuwsbrief", "goed")) as server:
        env = {
            **base,
            "NIEUWSBRIEF_SMTP_PORT": str(server.port),
            "NIEUWSBRIEF_SMTP_USER": "nieuwsbrief",
            "NIEUWSBRIEF_SMTP_PASSWORD": "fout",
        }
        refused = runner.invoke(app, command, env=env)
        assert server.recipients() == []
    assert refused.exit_code == 2, refused.output
    error = next(line for line in refused.stderr.splitlines() if line.startswith("Fout"))
    assert error == (
        f"Fout: 127.0.0.1:{server.port} weigerde de login voor 'nieuwsbrief' (535 5.7.8 "
        "Authentication credentials invalid); controleer de gebruikersnaam en het wachtwoord"
    )
    assert not english_words(re.sub(r"\(535 [^)]*\)", "", error)), error  # the reply stays

    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        closed = runner.invoke(app, command, env={**base, "NIEUWSBRIEF_SMTP_PORT": str(port)})
    assert closed.exit_code == 2, closed.output
    error = next(line for line in closed.stderr.splitlines() if line.startswith("Fout"))
    assert error.startswith(f"Fout: 127.0.0.1:{port} is niet bereikbaar ("), error
    assert error.endswith("); controleer de host, de poort en het netwerk"), error
    assert not english_words(error), error


def test_yaml_that_needs_quotes_is_explained_in_dutch(example_copy: Path) -> None:
    article = example_copy / "02-bim.md"
    lines = article.read_text(encoding="utf-8").split("\n")
    lines[1] = "title: De Omgevingswet komt eraan: bent u er klaar voor?"
    article.write_text("\n".join(lines), encoding="utf-8")
    result = runner.invoke(app, ["check", str(example_copy)], env=DUTCH)
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()) == (
        f"Fout: {article}:2: ongeldige YAML: hier mag geen ': ' staan; een waarde met ': ' (of "
        "die begint met een teken zoals @ * & !) moet tussen aanhalingstekens, zo: "
        'title: "De Omgevingswet komt eraan: bent u er klaar voor?"'
    )
    english = runner.invoke(app, ["check", str(example_copy)], env=ENGLISH)
    assert "invalid YAML: mapping values are not allowed here; a value with ': '" in english.stderr
