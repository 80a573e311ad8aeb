"""Start-up: `--help`, a usage error and `import nieuwsbrief.cli` load none of the program's heavy
parts. A property of what is imported, checked in real processes; how long a start takes is for
benchmarks/bench_startup.py (no timing here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

from nieuwsbrief.cli import app

REPO = Path(__file__).resolve().parent.parent  # the example home: it has a nieuwsbrief.toml
# Libraries only some commands need, and the parts of nieuwsbrief that load them (or much code).
HEAVY = (
    "premailer",
    "cssutils",
    "mjml",
    "jinja2",
    "email_validator",
    "markdown_it",
    "PIL",
    "icalendar",
    "imap_tools",
    "waitress",
    "requests",
    "yaml",
    "babel",
    "nieuwsbrief.render",
    "nieuwsbrief.compose",
    "nieuwsbrief.message",
    "nieuwsbrief.check",
    "nieuwsbrief.content",
    "nieuwsbrief.sending",
    "nieuwsbrief.preview",
    "nieuwsbrief.returns",
    "nieuwsbrief.web",
)
# Typer renders its help and error boxes with rich, and rich.markdown imports markdown_it (the
# floor CLI in benchmarks/ pays the same); nieuwsbrief itself must not need it to start.
RICH_HELP = frozenset({"markdown_it"})


def _imported(*args: str, cwd: Path = REPO, language: str = "C") -> tuple[set[str], int]:
    """Run `python -X importtime ARGS`; return the modules it imported and its exit code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NIEUWSBRIEF_", "LC_"))}
    env.update(LANG=language, LANGUAGE="")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert "nieuwsbrief.cli" in modules, done.stderr[-2000:]
    return modules, done.returncode


def _heavy(modules: set[str], allowed: frozenset[str] = frozenset()) -> list[str]:
    return sorted(
        m
        for m in modules
        if any(m == h or m.startswith(h + ".") for h in HEAVY if h not in allowed)
    )


def _command_paths() -> list[list[str]]:
    """Every command as the words that name it: [], ['send'], ['subscribers', 'check']."""
    paths: list[list[str]] = []

    def walk(command: object, words: list[str]) -> None:
        paths.append(words)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*words, name])

    walk(get_command(app), [])
    return paths


def test_importing_the_cli_loads_nothing_heavy() -> None:
    modules, code = _imported("-c", "import nieuwsbrief.cli")
    assert code == 0
    assert _heavy(modules) == []


@pytest.mark.parametrize("words", _command_paths(), ids=lambda w: " ".join(w) or "nieuwsbrief")
def test_help_of_every_command_loads_nothing_heavy(words: list[str]) -> None:
    modules, code = _imported("-m", "nieuwsbrief", *words, "--help")
    assert code == 0
    assert _heavy(modules, RICH_HELP) == []


def test_dutch_help_and_a_usage_error_load_nothing_heavy(tmp_path: Path) -> None:
    # Dutch: the catalog is read; outside any home: the configured language is looked for.
    modules, code = _imported("-m", "nieuwsbrief", "send", "--help", language="nl_NL.UTF-8")
    assert code == 0
    assert _heavy(modules, RICH_HELP) == []
    modules, code = _imported("-m", "nieuwsbrief", "compose", "--no-such-option", cwd=tmp_path)
    assert code == 2
    assert _heavy(modules, RICH_HELP) == []


def test_a_command_still_loads_what_it_uses(tmp_path: Path) -> None:
    # The other side of the lazy imports: the command itself finds its modules.
    modules, code = _imported(
        "-m", "nieuwsbrief", "compose", "issues/2012-05", "--out", str(tmp_path)
    )
    assert code == 0
    assert {"nieuwsbrief.render", "premailer", "jinja2"} <= modules
    assert "requests" not in modules  # premailer's, for stylesheets it never fetches here
    assert (tmp_path / "email.html").is_file()


def test_premailer_still_reaches_requests_when_it_uses_it() -> None:
    # The stand-in premailer gets for requests imports the real module on first use, and
    # nobody else ever sees the stand-in.
    script = (
        "import sys, types\n"
        "from nieuwsbrief.render import _import_premailer\n"
        "premailer = _import_premailer()\n"
        "assert 'requests' not in sys.modules\n"
        "from premailer import premailer as inliner\n"
        "assert inliner.requests.Session.__module__ == 'requests.sessions'\n"
        "import requests\n"
        "assert type(requests) is types.ModuleType and requests.get is inliner.requests.get\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
