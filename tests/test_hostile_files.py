"""Hostile input files (issue 13): each gives exit 2 and one `file:line: what to do` message.

Every case runs the real command line as a process and checks: exit code 2, the exact message
on stderr, no traceback, and peak memory under 300 MB (measured with os.wait4).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_process import CliRun, run_cli
from conftest import EXAMPLE_AGENDA

MEMORY_LIMIT_MB = 300
OVER_THE_CELL_LIMIT = 1_100_000  # characters; tabular.FIELD_LIMIT is 1,000,000


def refused(run: CliRun, message: str) -> None:
    """Assert that the process stopped with exit 2 and exactly `Error: message`, cheaply."""
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stderr == f"Error: {message}\n"
    assert run.returncode == 2
    assert run.max_rss_mb < MEMORY_LIMIT_MB


def agenda_with(tmp_path: Path, extra: str) -> tuple[Path, int]:
    """Return the example agenda plus `extra` lines, and the file line where `extra` starts."""
    text = EXAMPLE_AGENDA.read_text(encoding="utf-8").rstrip("\n") + "\n\n"
    path = tmp_path / "agenda.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path, text.count("\n") + 1


# -- YAML ------------------------------------------------------------------------------------


def billion_laughs() -> str:
    """Return a 9-level alias bomb as one agenda entry (expands to 9**9 strings)."""
    lines = ["- id: lol", '  type: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level, (previous, name) in enumerate(zip("abcdefgh", "bcdefghi", strict=True)):
        lines.append(f"  x{level}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_in_the_agenda(example_copy: Path, tmp_path: Path) -> None:
    bomb = billion_laughs()
    assert len(bomb.encode()) < 450  # as small as the one in the issue (432 bytes)
    agenda, first = agenda_with(tmp_path, bomb)
    run = run_cli("compose", str(example_copy), "--agenda", str(agenda), cwd=tmp_path)
    refused(run, f"{agenda}:{first + 1}: aliases (&a / *a) are not allowed; write the value out")


def test_yaml_self_containing_alias(example_copy: Path, tmp_path: Path) -> None:
    agenda, first = agenda_with(tmp_path, "- &a [*a]\n")
    run = run_cli("compose", str(example_copy), "--agenda", str(agenda), cwd=tmp_path)
    refused(run, f"{agenda}:{first}: aliases (&a / *a) are not allowed; write the value out")


def test_yaml_alias_in_issue_yaml_and_front_matter(example_copy: Path, tmp_path: Path) -> None:
    issue_yaml = example_copy / "issue.yaml"
    text = issue_yaml.read_text(encoding="utf-8")
    issue_yaml.write_text(text.replace("preheader: ", "preheader: &p "), encoding="utf-8")
    run = run_cli("compose", str(example_copy), "--agenda", str(EXAMPLE_AGENDA), cwd=tmp_path)
    refused(run, f"{issue_yaml}:3: aliases (&p / *p) are not allowed; write the value out")

    issue_yaml.write_text(text, encoding="utf-8")
    article = example_copy / "02-bim.md"
    body = article.read_text(encoding="utf-8")
    article.write_text(body.replace("---\n", "---\nx: *t\n", 1), encoding="utf-8")
    run = run_cli("compose", str(example_copy), "--agenda", str(EXAMPLE_AGENDA), cwd=tmp_path)
    refused(
        run,
        f"{article}:2: aliases (&t / *t) are not allowed; write the value out "
        "(text that starts with * needs quotes)",
    )


def test_yaml_nested_too_deep(example_copy: Path, tmp_path: Path) -> None:
    agenda, first = agenda_with(tmp_path, "- " + "[" * 100_000 + "]" * 100_000 + "\n")
    run = run_cli("compose", str(example_copy), "--agenda", str(agenda), cwd=tmp_path)
    refused(
        run,
        f"{agenda}:{first}: values are nested more than 32 levels deep; "
        "this file needs at most a list of mappings",
    )


def test_yaml_with_too_many_values(example_copy: Path, tmp_path: Path) -> None:
    # 2.4 MB, under the size cap: without a cap on values PyYAML would need ~500 MB for it.
    agenda = tmp_path / "agenda.yaml"
    agenda.write_text("- x\n" * 600_000, encoding="utf-8")
    run = run_cli("compose", str(example_copy), "--agenda", str(agenda), cwd=tmp_path)
    # The list itself is the first value, its 100,000th item the 100,001st.
    refused(run, f"{agenda}:100000: the file has more than 100,000 values; is this the right file?")


# -- CSV cells over the limit ------------------------------------------------------------------


def long_cell_csv(path: Path, header: str, good: str, bad_prefix: str) -> Path:
    """Write a CSV whose third line starts a quoted cell of 1.1 million characters."""
    path.write_text(
        f'{header}\n{good}\n{bad_prefix}"{"x" * OVER_THE_CELL_LIMIT}"\n{good}\n', encoding="utf-8"
    )
    return path


CELL_MESSAGE = (
    "a cell in the row starting here is longer than 1,000,000 characters (the limit); often a "
    'quote (") that is never closed swallows the rest of the file: check the quotes in this row'
)


def test_csv_cell_over_the_limit_in_a_subscriber_list(tmp_path: Path) -> None:
    lst = long_cell_csv(tmp_path / "leden.csv", "naam;e-mail", "Jan;jan@gemeente.nl", "Piet;")
    run = run_cli("subscribers", "check", str(lst), cwd=tmp_path)
    refused(run, f"{lst}:3: {CELL_MESSAGE}")


def test_csv_cell_over_the_limit_in_an_agenda(example_copy: Path, tmp_path: Path) -> None:
    agenda = long_cell_csv(
        tmp_path / "agenda.csv",
        "id;type;title;date;city;url",
        "seminar-1;Seminar;Een seminar;2012-05-07;Woerden;https://www.bureau-kennis.net/a",
        "seminar-2;Seminar;",
    )
    run = run_cli("compose", str(example_copy), "--agenda", str(agenda), cwd=tmp_path)
    refused(run, f"{agenda}:3: {CELL_MESSAGE}")


def test_csv_cell_over_the_limit_in_an_unsubscribe_file(tmp_path: Path) -> None:
    requests = long_cell_csv(
        tmp_path / "afmeldingen.csv", "naam;e-mail", "Jan;jan@gemeente.nl", "Piet;"
    )
    database = tmp_path / "afgemeld.sqlite"
    env = {**os.environ, "NIEUWSBRIEF_SUPPRESSION_DB": str(database)}
    run = run_cli("unsubscribe", "--from-file", str(requests), cwd=tmp_path, env=env)
    refused(run, f"{requests}:3: {CELL_MESSAGE}")
    assert not database.exists()  # nobody half-processed


# -- files that are not files ------------------------------------------------------------------


def test_article_symlinked_to_dev_zero(example_copy: Path, tmp_path: Path) -> None:
    article = example_copy / "02-bim.md"
    article.unlink()
    article.symlink_to("/dev/zero")
    run = run_cli("compose", str(example_copy), "--agenda", str(EXAMPLE_AGENDA), cwd=tmp_path)
    refused(run, f"{article}: is a device (a link to /dev/zero), not a file; give a file")


def test_subscriber_list_that_is_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "leden.csv"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    run = run_cli("subscribers", "check", str(fifo), cwd=tmp_path, timeout=60)
    refused(run, f"{fifo}: is a pipe (FIFO), not a file; give a file")


def test_article_over_the_size_cap(example_copy: Path, tmp_path: Path) -> None:
    article = example_copy / "02-bim.md"
    article.write_text("---\ntitle: Groot\n---\n" + "woord " * 1_000_000, encoding="utf-8")
    run = run_cli("compose", str(example_copy), "--agenda", str(EXAMPLE_AGENDA), cwd=tmp_path)
    refused(
        run,
        f"{article}: is 5.7 MB; an article may be at most 5.0 MB. "
        "Is this the right file? Split it, or remove what does not belong in it",
    )


# -- control characters in a subject, title or preheader ---------------------------------------


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("\v", "a vertical tab (U+000B)"),
        ("\x1b", "an ESC character (U+001B)"),
        ("\x00", "a NUL character (U+0000)"),
    ],
)
def test_control_character_typed_into_the_subject(
    example_copy: Path, tmp_path: Path, written: str, name: str
) -> None:
    issue_yaml = example_copy / "issue.yaml"
    text = issue_yaml.read_text(encoding="utf-8")
    issue_yaml.write_text(text.replace("mei 2012:", f"mei{written} 2012:", 1), encoding="utf-8")
    run = run_cli("compose", str(example_copy), "--agenda", str(EXAMPLE_AGENDA), cwd=tmp_path)
    refused(
        run,
        f"{issue_yaml}:2: contains {name}, which has no place in a newsletter; "
        "delete it (it is invisible in most editors: retype the line)",
    )


@pytest.mark.parametrize(
    ("escape", "name"),
    [
        ("\\v", "a vertical tab (U+000B)"),
        ("\\e", "an ESC character (U+001B)"),
        ("\\0", "a NUL character (U+0000)"),
    ],
)
def test_control_character_escaped_in_subject_preheader_and_title(
    example_copy: Path, tmp_path: Path, escape: str, name: str
) -> None:
    issue_yaml = example_copy / "issue.yaml"
    text = issue_yaml.read_text(encoding="utf-8")
    agenda = str(EXAMPLE_AGENDA)
    advice = "remove the escape that writes it (\\e, \\v, \\0, \\x.., \\u00..)"

    issue_yaml.write_text(text.replace("mei 2012:", f"mei{escape} 2012:", 1), encoding="utf-8")
    run = run_cli("compose", str(example_copy), "--agenda", agenda, cwd=tmp_path)
    refused(run, f"{issue_yaml}:2: 'subject' contains {name}; {advice}")

    issue_yaml.write_text(text.replace("Masterclass", f"Master{escape}class", 1), "utf-8")
    run = run_cli("compose", str(example_copy), "--agenda", agenda, cwd=tmp_path)
    refused(run, f"{issue_yaml}:3: 'preheader' contains {name}; {advice}")

    issue_yaml.write_text(text, encoding="utf-8")
    article = example_copy / "02-bim.md"
    body = article.read_text(encoding="utf-8")
    title_line = body.split("\n").index(next(x for x in body.split("\n") if x.startswith("title")))
    title = body.split("\n")[title_line]
    article.write_text(
        body.replace(title, f'title: "BIM{escape} voor gemeenten"', 1), encoding="utf-8"
    )
    run = run_cli("compose", str(example_copy), "--agenda", agenda, cwd=tmp_path)
    refused(run, f"{article}:{title_line + 1}: 'title' contains {name}; {advice}")


def test_an_article_linked_to_a_file_outside_the_home_is_refused(
    example_copy: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    private = tmp_path_factory.mktemp("private") / "id_rsa.md"
    private.write_text("---\ntitle: geheim\n---\nPRIVATE KEY\n", encoding="utf-8")
    article = example_copy / "02-bim.md"
    article.unlink()
    article.symlink_to(private)
    result = subprocess.run(
        [sys.executable, "-m", "nieuwsbrief", "compose", str(example_copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"Error: {article}: is a link to {private}, outside the newsletter home "
        f"{example_copy.parent.parent}; copy the file into the home instead of linking to it\n"
    )
    assert not (example_copy / "out").exists()
