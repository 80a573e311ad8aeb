"""The house style: defaults inside the package, a home's templates/ overriding them file by file.

Every path that reads templates goes through the same loader: compose (and so check and send),
the preview, the web edition, the unsubscribe pages (tests/test_unsubscribe_app.py) and the
ledger's hash of the house style.
"""

from __future__ import annotations

import email
import shutil
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import (
    EXAMPLE_AGENDA,
    EXAMPLE_ISSUE,
    EXAMPLE_TEMPLATES,
    REPO,
    TEST_SECRET,
    house_style_copy,
)
from nieuwsbrief.cli import app
from nieuwsbrief.content.brand import load_brand
from nieuwsbrief.errors import ContentError
from nieuwsbrief.home import load_home
from nieuwsbrief.message import MessageFactory, make_factory
from nieuwsbrief.model import Brand, RenderedIssue
from nieuwsbrief.preview.state import Inputs, PreviewState
from nieuwsbrief.templating import default_templates_dir, template_files
from nieuwsbrief.web import build_site
from smtp_server import SmtpServer
from test_send import members, send_cli, smtp_env, write_list

GOLDEN = REPO / "tests" / "golden" / "2012-05"
WEB_URL = "https://www.example.nl/nieuwsbrief/"
ADDRESS = "{{ brand.address }}"  # a line of the default email.txt.j2
runner = CliRunner()


def issues_in(home: Path) -> Path:
    """Copy the example issue and agenda (not the house style) into `home`; return the issue."""
    shutil.copytree(
        EXAMPLE_ISSUE, home / "issues" / "2012-05", ignore=shutil.ignore_patterns("out")
    )
    shutil.copy(EXAMPLE_AGENDA, home / "issues" / "agenda.yaml")
    return home / "issues" / "2012-05"


def compose(issue: Path) -> tuple[EmailMessage, str, str]:
    """Compose through the CLI (the home found from the issue); return message, html, text."""
    result = runner.invoke(app, ["compose", str(issue)])
    assert result.exit_code == 0, result.stderr
    out = issue / "out"
    message = email.message_from_bytes((out / "preview.eml").read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    html = (out / "email.html").read_text(encoding="utf-8")
    return message, html, (out / "email.txt").read_text(encoding="utf-8")


def edited_default(folder: Path, name: str, old: str, new: str) -> Path:
    """Write into `folder` a copy of the default template `name` with `old` replaced."""
    text = (default_templates_dir() / name).read_text(encoding="utf-8")
    assert old in text
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder / name


def text_line(folder: Path, line: str) -> Path:
    """Override email.txt.j2 in `folder`: the default with `line` before the address."""
    return edited_default(folder, "email.txt.j2", ADDRESS, f"{line}\n{ADDRESS}")


def send(issue: Path, count: int) -> tuple[int, str]:
    """Send `issue` through the CLI to the first `count` members; return exit code and stderr."""
    subscribers = write_list(issue.parent.parent / f"lijst-{count}.csv", members(count))
    code, _out, err = send_cli(str(issue), "--subscribers", str(subscribers), "--yes")
    return code, err


def test_the_defaults_ship_inside_the_package() -> None:
    defaults = default_templates_dir()
    assert defaults == REPO / "src" / "nieuwsbrief" / "templates"
    names = set(template_files(None))
    assert {"brand.yaml", "email.mjml.j2", "email.txt.j2", "web.css"} <= names
    assert {"unsubscribe_confirm.html.j2", "unsubscribe_done.html.j2"} <= names
    assert not (defaults / "__init__.py").exists()
    # This repository's templates/ is the house style of the example home: only what differs.
    assert sorted(p.name for p in (REPO / "templates").iterdir()) == ["brand.yaml"]


def test_a_home_without_templates_composes_with_the_neutral_defaults(tmp_path: Path) -> None:
    issue = issues_in(tmp_path)
    assert not (tmp_path / "templates").exists()

    message, html, text = compose(issue)

    assert message["From"] == "Nieuwsbrief <info@example.nl>"
    for part in (html, text):
        assert "Postbus 1234, 1000 AA Plaats" in part
        assert "Postbus 2012" not in part and "logo-bureau-kennis" not in part
    assert "#2d4f6c" in html  # the default primary colour
    assert load_brand(None).name == "Nieuwsbrief"


def test_a_homes_template_overrides_that_default_and_no_other(tmp_path: Path) -> None:
    issue = issues_in(tmp_path)
    templates = house_style_copy(tmp_path)  # the example's brand.yaml
    text_line(templates, "Tekst van dit huis.")

    message, _html, text = compose(issue)

    assert "Tekst van dit huis." in text
    plain = message.get_body(("plain",))
    assert plain is not None and "Tekst van dit huis." in plain.get_content()
    # The HTML comes from the default email.mjml.j2 with the home's brand.yaml: as committed.
    assert (issue / "out" / "email.html").read_bytes() == (GOLDEN / "email.html").read_bytes()
    assert message["From"] == "Bureau | Kennis <info@bureau-kennis.net>"


def test_brand_yaml_is_the_homes_else_the_default(tmp_path: Path) -> None:
    only_a_template = tmp_path / "templates"
    text_line(only_a_template, "x")
    assert load_brand(only_a_template).name == "Nieuwsbrief"
    assert load_brand(EXAMPLE_TEMPLATES).name == "Bureau | Kennis"


def test_a_brand_address_that_is_not_one_is_refused_at_its_line(tmp_path: Path) -> None:
    # It is the From: of every message and the ORGANIZER of every calendar entry.
    style = tmp_path / "huisstijl"
    shutil.copytree(EXAMPLE_TEMPLATES, style)
    brand = style / "brand.yaml"
    text = brand.read_text("utf-8")
    assert 'email: "info@bureau-kennis.net"' in text
    brand.write_text(text.replace('"info@bureau-kennis.net"', '"info bureau-kennis.net"'), "utf-8")
    line = 1 + text.split('email: "info@bureau-kennis.net"')[0].count("\n")
    with pytest.raises(ContentError) as caught:
        load_brand(style)
    message = str(caught.value)
    assert f"{brand}:{line}:" in message and "not a valid e-mail address" in message, message


def test_the_templates_setting_moves_the_override(tmp_path: Path) -> None:
    issue = issues_in(tmp_path)
    style = tmp_path / "huisstijl"
    shutil.copytree(EXAMPLE_TEMPLATES, style)
    (tmp_path / "nieuwsbrief.toml").write_text('templates = "huisstijl"\n', encoding="utf-8")
    assert load_home(tmp_path).templates_dir == style
    message, _html, _text = compose(issue)
    assert message["From"] == "Bureau | Kennis <info@bureau-kennis.net>"


def test_a_template_error_in_the_home_names_the_homes_file(tmp_path: Path) -> None:
    issue = issues_in(tmp_path)
    broken = text_line(tmp_path / "templates", "{{ brand.fotter }}")
    result = runner.invoke(app, ["compose", str(issue)])
    assert result.exit_code == 2
    assert f"{broken}:" in result.stderr and "fotter" in result.stderr


def _factory(rendered: RenderedIssue, brand: Brand) -> MessageFactory:
    return make_factory(rendered, brand, secret=TEST_SECRET)


def test_the_preview_renders_and_watches_the_homes_override(tmp_path: Path) -> None:
    issue = issues_in(tmp_path)
    templates = house_style_copy(tmp_path)
    override = text_line(templates, "Uit de preview.")
    state = PreviewState(Inputs(issue, _factory, templates_dir=templates))
    assert state.refresh() is None
    _version, view = state.view("sample")
    assert "Uit de preview." in view.text
    watched = state.inputs.watched_files()
    assert override in watched and default_templates_dir() / "email.txt.j2" not in watched
    assert default_templates_dir() / "email.mjml.j2" in watched


def test_the_web_edition_uses_the_homes_override(tmp_path: Path) -> None:
    issues_in(tmp_path)
    templates = house_style_copy(tmp_path)
    block = "{%- block main %}"
    edited_default(templates, "web_index.html.j2", block, f"{block}<p>Ons archief</p>")
    files = build_site(load_home(tmp_path), WEB_URL).files
    index = files["index.html"].decode("utf-8")
    assert "<p>Ons archief</p>" in index and "Bureau | Kennis" in index
    assert "Ons archief" not in files["2012-05/index.html"].decode("utf-8")


def test_a_changed_template_mid_send_is_refused_and_an_identical_copy_is_not(
    tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger's house-style hash covers the effective files: the home's and the defaults."""
    smtp_env(monkeypatch, smtp_server)
    issue = issues_in(tmp_path)
    templates = house_style_copy(tmp_path)
    assert send(issue, 2)[0] == 0

    # Overriding a default with the same bytes changes nothing that is sent: not "changed".
    shutil.copy(default_templates_dir() / "email.txt.j2", templates / "email.txt.j2")
    code, err = send(issue, 3)
    assert code == 0, err

    text_line(templates, "Nieuw.")
    code, err = send(issue, 4)
    assert code == 2
    assert "changed since its send started" in err and "the house style or templates" in err
    assert len(smtp_server.messages) == 3


def test_init_writes_a_starter_brand_that_the_new_home_uses(tmp_path: Path) -> None:
    target = tmp_path / "nieuw"
    result = runner.invoke(app, ["init", str(target), "--name", "Gemeente Ergens"])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (target / "templates").iterdir()) == ["brand.yaml"]
    brand = load_brand(target / "templates")
    assert (brand.name, brand.logo_alt) == ("Gemeente Ergens", "Gemeente Ergens")
    assert brand.colors == load_brand(None).colors  # the rest is the default, to edit
    assert load_home(target).templates_dir == target / "templates"
    message, _html, _text = compose(issues_in(target))
    assert message["From"] == "Gemeente Ergens <info@example.nl>"
