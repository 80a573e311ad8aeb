"""Shared fixtures: a test newsletter home, a copy of the example issue, a fixed secret.

The tests never read the live issues/ folder: tests/fixtures/home is the suite's own newsletter
home (a frozen copy of the May 2012 example), so marketing edits there cannot turn CI red.
Every test's `tmp_path` is a newsletter home (it holds a nieuwsbrief.toml); the current folder
is another temporary folder, outside any home.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nieuwsbrief.message import MessageFactory, make_factory
from nieuwsbrief.model import Brand, RenderedIssue, Subscriber
from nieuwsbrief.subscribers import DuplicateRow, RejectedRow, scan_subscribers
from nieuwsbrief.templating import default_templates_dir

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_HOME = REPO / "tests" / "fixtures" / "home"
EXAMPLE_ISSUE = EXAMPLE_HOME / "issues" / "2012-05"
EXAMPLE_AGENDA = EXAMPLE_HOME / "issues" / "agenda.yaml"
# The test home's house style: only brand.yaml (Bureau | Kennis), over the package defaults.
EXAMPLE_TEMPLATES = EXAMPLE_HOME / "templates"
HOME_CONFIG = '# a test newsletter home\nname = "Testnieuwsbrief"\n'

TEST_SECRET = "test-secret-0123456789-abcdefghijklmnop"


def factory_maker(rendered: RenderedIssue, brand: Brand) -> MessageFactory:
    """Build messages as a configured send would: fixed secret, one-click unsubscribe URL."""
    return make_factory(
        rendered,
        brand,
        secret=TEST_SECRET,
        unsubscribe_url="https://www.bureau-kennis.net/afmelden/{token}",
    )


@pytest.fixture(autouse=True)
def _isolated_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Run every test in a clean folder with a fixed secret and no NIEUWSBRIEF_* from outside."""
    import os

    for name in list(os.environ):
        if name.startswith("NIEUWSBRIEF_") and name not in (
            "NIEUWSBRIEF_REQUIRE_TOOLS",
            "NIEUWSBRIEF_CHROMIUM",
            "NIEUWSBRIEF_UPDATE_GOLDEN",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NIEUWSBRIEF_SECRET", TEST_SECRET)
    # English, whatever the developer's locale: tests that want Dutch set LANG themselves.
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    yield


@pytest.fixture(autouse=True)
def _tmp_path_is_a_home(tmp_path: Path) -> None:
    """Make every test's tmp_path a newsletter home, as `nieuwsbrief init` would."""
    (tmp_path / "nieuwsbrief.toml").write_text(HOME_CONFIG, encoding="utf-8")


def house_style_copy(home: Path, *names: str) -> Path:
    """Give `home` its own templates/ folder: the test home's brand.yaml and copies of the
    default templates `names`, to edit (each overrides the package's); return the folder."""
    target = home / "templates"
    shutil.copytree(EXAMPLE_TEMPLATES, target, dirs_exist_ok=True)
    for name in names:
        shutil.copy(default_templates_dir() / name, target / name)
    return target


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """Copy the test home's issues/ and templates/ into tmp_path (a home); return the issue."""
    shutil.copytree(EXAMPLE_TEMPLATES, tmp_path / "templates")
    target = tmp_path / "issues"
    target.mkdir()
    shutil.copytree(EXAMPLE_ISSUE, target / "2012-05", ignore=shutil.ignore_patterns("out"))
    shutil.copy(EXAMPLE_AGENDA, target / "agenda.yaml")
    return target / "2012-05"


@dataclass(frozen=True)
class ReadList:
    """A subscriber list as both passes of a send read it (for tests that look at all of it)."""

    subscribers: tuple[Subscriber, ...]
    invalid: tuple[RejectedRow, ...]  # the first REPORT_LIMIT
    duplicates: tuple[DuplicateRow, ...]  # the first REPORT_LIMIT
    columns: tuple[str, ...]
    encoding: str
    delimiter: str


def read_list(path: Path) -> ReadList:
    """Read a list with scan_subscribers and its second pass, as `send` does."""
    scan = scan_subscribers(path)
    return ReadList(
        tuple(scan.selected()),
        tuple(scan.first_invalid),
        tuple(scan.first_duplicates),
        scan.columns,
        scan.encoding,
        scan.delimiter,
    )


# Real SMTP servers on 127.0.0.1 (aiosmtpd): `smtp_server` and `make_smtp_server(**options)`.
# A real IMAP server (Dovecot, unprivileged, on a free port): `dovecot`.
from dovecot import dovecot  # noqa: E402, F401
from smtp_server import make_smtp_server, smtp_server  # noqa: E402, F401
