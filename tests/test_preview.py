"""`nieuwsbrief preview` as a real process on 127.0.0.1, driven by a real headless Chromium."""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from browser import browser_fixture
from conftest import EXAMPLE_AGENDA, EXAMPLE_ISSUE, EXAMPLE_TEMPLATES, HOME_CONFIG, house_style_copy
from nieuwsbrief.compose import encoded_html_size
from nieuwsbrief.content.brand import load_brand
from nieuwsbrief.message import MessageFactory, make_factory
from nieuwsbrief.model import Brand, RenderedIssue
from nieuwsbrief.preview.state import PREVIEW_ROWS, ROW_PREFIX, SAMPLE, Inputs, PreviewState
from nieuwsbrief.templating import default_templates_dir
from nieuwsbrief.unsubscribe.tokens import make_token

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Frame, Page

ROOT = Path(__file__).resolve().parent.parent
SECRET = "preview-test-secret-0123456789"
TITLE = "Social Media en ambtenaar 2.0"
SUBJECT = "Nieuwsbrief mei 2012: social media, BIM en kennismanagement"
URL_RE = re.compile(r"^Preview of .+ at (http://127\.0\.0\.1:(\d+)/) \(Ctrl\+C to stop\)$", re.M)
SUBSCRIBERS_CSV = (
    "e-mail;naam;organisatie\n"
    "jan.jansen@gemeente.nl;Jan Jansen;Gemeente Utrecht\n"
    "anoniem@example.nl;;\n"
)
WAIT_MS = 5000  # a change must show well within this; the issue asks for about a second

browser = browser_fixture("session")


@dataclass
class Preview:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    workdir: Path
    issue_dir: Path
    stdout_path: Path
    stderr_path: Path

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=10) as response:
            body: bytes = response.read()
            return body

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # PYTHONFAULTHANDLER: SIGABRT writes every thread's stack to preview.err, so a
                # preview that does not stop says where it hangs.
                self.process.send_signal(signal.SIGABRT)
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        return self.process.returncode


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIEUWSBRIEF_")}
    env["NIEUWSBRIEF_SECRET"] = SECRET
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"
    return env


def _copy_issue(workdir: Path) -> Path:
    """Copy the test home's example issue and agenda into `workdir`, a newsletter home."""
    issues = workdir / "issues"
    shutil.copytree(EXAMPLE_ISSUE, issues / "2012-05")
    shutil.copy(EXAMPLE_AGENDA, issues / "agenda.yaml")
    house_style_copy(workdir)
    (workdir / "nieuwsbrief.toml").write_text(HOME_CONFIG, encoding="utf-8")
    return issues / "2012-05"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_preview(workdir: Path, *args: str, port: int | None = None) -> Preview:
    """Start `nieuwsbrief preview` on a copy of the example issue; wait for its URL."""
    issue_dir = workdir / "issues" / "2012-05"
    if not issue_dir.exists():
        _copy_issue(workdir)
    stdout_path, stderr_path = workdir / "preview.out", workdir / "preview.err"
    command = [sys.executable, "-m", "nieuwsbrief", "preview", str(issue_dir), "--no-browser"]
    command += ["--port", str(port or _free_port()), *args]
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(command, cwd=workdir, env=_env(), stdout=out, stderr=err)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = URL_RE.search(stdout_path.read_text(encoding="utf-8"))
        if match:
            return Preview(
                process, match.group(1), int(match.group(2)), workdir, issue_dir,
                stdout_path, stderr_path,
            )  # fmt: skip
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    pytest.fail(
        f"preview did not start:\n{stdout_path.read_text()}\n{stderr_path.read_text()}",
        pytrace=False,
    )


def _outbox_message(to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Bureau | Kennis <info@bureau-kennis.net>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Tue, 01 May 2012 09:00:00 +0200"
    message.set_content(f"{body}\n")
    message.add_alternative(f"<!doctype html><p>{body}</p>", subtype="html")
    return message


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Preview]:
    """One preview for the read-only checks, with a subscriber list and one outbox message."""
    workdir = tmp_path_factory.mktemp("preview")
    (workdir / "abonnees.csv").write_text(SUBSCRIBERS_CSV, encoding="utf-8")
    (workdir / "state").mkdir(mode=0o700)
    outbox = mailbox.Maildir(str(workdir / "state" / "outbox"), create=True)
    outbox.add(_outbox_message("Lezer <lezer@example.nl>", "Bericht uit de outbox", "Hallo lezer"))
    preview = start_preview(workdir, "--subscribers", str(workdir / "abonnees.csv"))
    yield preview
    preview.stop()


@pytest.fixture
def context(browser: Browser, served: Preview) -> Iterator[BrowserContext]:
    yield from _offline_context(browser, served)


def _offline_context(
    browser: Browser, preview: Preview, color_scheme: str = "light"
) -> Iterator[BrowserContext]:
    # Only the preview server answers; the email's remote logo fails fast instead of hanging.
    context = browser.new_context(
        viewport={"width": 1100, "height": 900},
        color_scheme=color_scheme,  # type: ignore[arg-type]
    )
    context.route(lambda url: not url.startswith(preview.url), lambda route: route.abort())
    try:
        yield context
    finally:
        context.close()


def open_page(context: BrowserContext, preview: Preview, hash_: str = "") -> Page:
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(preview.url + hash_)
    expect(page.locator("#status")).to_have_class(re.compile("live"), timeout=WAIT_MS)
    return page


def email_frame(page: Page, text: str = TITLE) -> Frame:
    """Wait until the iframe shows `text`; return its frame."""
    from playwright.sync_api import expect

    expect(page.frame_locator("#email").locator("body")).to_contain_text(text, timeout=WAIT_MS)
    frame = page.locator("#email").element_handle().content_frame()
    assert frame is not None
    return frame


def body_background(frame: Frame) -> str:
    colour: str = frame.evaluate("() => getComputedStyle(document.body).backgroundColor")
    return colour


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.fixture(scope="module")
def composed_dir(served: Preview) -> Path:
    """Run `nieuwsbrief compose` on the same issue, into a folder of its own."""
    out = served.workdir / "compose-out"
    subprocess.run(
        [sys.executable, "-m", "nieuwsbrief", "compose", str(served.issue_dir), "--out", str(out)],
        cwd=served.workdir,
        env=_env(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


# --- without a browser ----------------------------------------------------------------------


def test_email_html_is_the_same_bytes_compose_writes(served: Preview, composed_dir: Path) -> None:
    assert served.get("/email.html") == (composed_dir / "email.html").read_bytes()


def test_the_page_loads_nothing_from_elsewhere(served: Preview) -> None:
    with urllib.request.urlopen(served.url, timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]
        page = response.read().decode("utf-8")
    assert "default-src 'none'" in policy
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_other_host_names_are_refused(served: Preview) -> None:
    request = urllib.request.Request(served.url, headers={"Host": f"evil.example:{served.port}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


def test_busy_port_moves_on_and_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        preview = start_preview(tmp_path, port=busy)
        try:
            assert busy < preview.port <= busy + 20
            assert (
                f"Port {busy} is in use; using {preview.port}." in preview.stdout_path.read_text()
            )
            assert b"Voorbeeld" in preview.get("/")
        finally:
            code = preview.stop(signal.SIGINT)
    assert code == 0, preview.stderr_path.read_text()
    assert "Traceback" not in preview.stderr_path.read_text()
    assert "Preview stopped." in preview.stdout_path.read_text()


def _state(
    tmp_path: Path, *, subscribers_path: Path | None = None, templates_dir: Path | None = None
) -> PreviewState:
    def factory(rendered: RenderedIssue, brand: Brand) -> MessageFactory:
        return make_factory(rendered, brand, secret=SECRET)

    return PreviewState(
        Inputs(
            _copy_issue(tmp_path),
            factory,
            subscribers_path=subscribers_path,
            templates_dir=templates_dir,
        )
    )


def test_every_input_file_is_watched(tmp_path: Path) -> None:
    """The issue, agenda, list, and the house style in force: the home's files and the defaults
    they leave in place (a default the home overrides is never read, so it is not watched)."""
    subscribers = tmp_path / "abonnees.csv"
    home_templates = house_style_copy(tmp_path)  # brand.yaml only
    state = _state(tmp_path, subscribers_path=subscribers, templates_dir=home_templates)
    issue_dir = state.inputs.issue_dir
    (issue_dir / "out").mkdir()
    (issue_dir / "out" / "email.html").write_text("written by compose")
    watched = state.inputs.watched_files()
    defaults = default_templates_dir()
    for path in (
        issue_dir / "issue.yaml",
        issue_dir / "02-bim.md",
        issue_dir.parent / "agenda.yaml",
        home_templates / "brand.yaml",
        defaults / "email.mjml.j2",
        defaults / "email.txt.j2",
        subscribers,
    ):
        assert path in watched
    assert issue_dir / "out" / "email.html" not in watched
    assert defaults / "brand.yaml" not in watched


def test_a_long_list_offers_its_first_rows_and_says_how_many_there_are(tmp_path: Path) -> None:
    # The same streaming read as a send: only the rows a tester can pick from are held.
    subscribers = tmp_path / "abonnees.csv"
    rows = "".join(f"Lid {n};lid{n}@example.nl\n" for n in range(250))
    subscribers.write_text("naam;e-mail\n" + rows + "Kapot;geen-adres\nDubbel;lid0@example.nl\n")
    state = _state(tmp_path, subscribers_path=subscribers)
    assert state.refresh() is None
    data = state.page_data(SAMPLE)
    rows_offered = [c for c in data["subscribers"] if c["key"] != SAMPLE]
    assert len(rows_offered) == PREVIEW_ROWS
    assert rows_offered[-1]["key"] == f"{ROW_PREFIX}{PREVIEW_ROWS + 1}"  # file line of row 200
    assert data["subscribersNote"] == (
        f"de eerste {PREVIEW_ROWS} van 250 ontvangers; 2 rij(en) overgeslagen "
        "(ongeldig adres of dubbel)"
    )
    # A row that was offered renders with its own name.
    _version, view = state.view(f"{ROW_PREFIX}3")
    assert "Lid 1" in view.html

    # Another render reads the list again only if the file changed: the same sample, the very
    # same objects (a second scan would have made new ones).
    offered, sample = state.page_data(SAMPLE)["subscribers"], state._render.subscribers
    assert state.refresh() is None
    assert state.page_data(SAMPLE)["subscribers"] == offered
    assert state._render.subscribers is sample
    subscribers.write_text("naam;e-mail\nNieuw;nieuw@example.nl\n")
    assert state.refresh() is None
    data = state.page_data(SAMPLE)
    assert [c["label"] for c in data["subscribers"] if c["key"] != SAMPLE] == [
        "regel 2: Nieuw <nieuw@example.nl>"
    ]
    assert data["subscribersNote"] == ""


def test_template_error_names_file_and_line_and_keeps_the_last_email(tmp_path: Path) -> None:
    templates = house_style_copy(tmp_path, "email.mjml.j2")
    state = _state(tmp_path, templates_dir=templates)
    assert state.refresh() is None
    template = templates / "email.mjml.j2"
    original = template.read_text(encoding="utf-8")

    template.write_text(original.replace("{{ subject }}", "{{ subjet }}", 1), encoding="utf-8")
    error = state.refresh()
    assert error is not None
    assert re.match(re.escape(str(template)) + r":7: .*'subjet'", error)
    data = state.page_data(SAMPLE)
    assert data["error"] == error and data["stale"] and data["message"] is not None

    template.write_text(original, encoding="utf-8")
    assert state.refresh() is None
    assert state.page_data(SAMPLE)["error"] is None


# --- in Chromium ----------------------------------------------------------------------------


def test_inbox_line_size_text_and_headers(
    context: BrowserContext, served: Preview, composed_dir: Path
) -> None:
    from playwright.sync_api import expect

    page = open_page(context, served)
    email_frame(page)
    expect(page.locator("#inbox-from")).to_have_text("Bureau | Kennis")
    expect(page.locator("#inbox-subject")).to_have_text(SUBJECT)
    # The inbox preview ends with the preheader: the spacer keeps the body out of it.
    expect(page.locator("#inbox-preheader")).to_have_text(
        "Masterclass Social Media en ambtenaar 2.0, BIM voor gemeenten en kennis die met "
        "pensioen gaat."
    )
    size = encoded_html_size((composed_dir / "preview.eml").read_bytes())
    expect(page.locator("#size")).to_contain_text(f"{size / 1024:.1f} KB".replace(".", ","))
    expect(page.locator("#size")).to_contain_text("102 KB")

    page.click("#tab-text")
    expect(page.locator("#text-part")).to_be_visible()
    expect(page.locator("#text-part")).to_contain_text("Beste Voorbeeld Abonnee,")
    expect(page.locator("#text-part")).to_contain_text(f"1. {TITLE}")
    expect(page.locator("#email")).to_be_hidden()

    page.click("#tab-headers")
    expect(page.locator("#headers")).to_contain_text(f"Subject: {SUBJECT}")
    expect(page.locator("#headers")).to_contain_text("List-Unsubscribe: <mailto:")
    expect(page.locator("#text-part")).to_be_hidden()
    assert "tab=headers" in page.url


def test_desktop_and_phone_width(context: BrowserContext, served: Preview) -> None:
    page = open_page(context, served)
    frame = email_frame(page)
    box = page.locator("#email").bounding_box()
    assert box is not None and box["width"] > 600

    page.click("#view-phone")
    box = page.locator("#email").bounding_box()
    assert box is not None and round(box["width"]) == 375 + 2  # plus the 1 px device border
    sideways = frame.evaluate(
        "() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    )
    assert sideways == 0
    assert frame.evaluate("() => document.documentElement.clientWidth") == 375


def test_dark_view_applies_the_emails_dark_styles(browser: Browser, served: Preview) -> None:
    from playwright.sync_api import expect

    colours = load_brand(EXAMPLE_TEMPLATES).colors  # the served home's house style
    dark, light = rgb(colours["dark_background"]), rgb(colours["background"])
    for browser_scheme in ("light", "dark"):  # the view decides, whatever the browser prefers
        for context in _offline_context(browser, served, browser_scheme):
            page = open_page(context, served, "#scheme=dark")
            frame = email_frame(page)
            expect(page.locator("#scheme-dark")).to_have_attribute("aria-pressed", "true")
            assert body_background(frame) == dark, browser_scheme
            page.click("#scheme-light")
            assert body_background(frame) == light, browser_scheme
            page.click("#scheme-dark")
            assert body_background(frame) == dark, browser_scheme


def test_subscriber_picker_renders_any_row(context: BrowserContext, served: Preview) -> None:
    from playwright.sync_api import expect

    page = open_page(context, served)
    email_frame(page, "Beste Voorbeeld Abonnee,")
    options = page.locator("#who option").all_text_contents()
    assert options[1:] == [
        "regel 2: Jan Jansen <jan.jansen@gemeente.nl>",
        "regel 3: (geen naam) <anoniem@example.nl> — leeg: naam, organisatie",
    ]

    page.select_option("#who", "row:3")
    frame = email_frame(page, "Beste lezer,")
    assert make_token(SECRET, "anoniem@example.nl") in frame.content()
    expect(page.locator("#inbox-date")).to_have_text("aan anoniem@example.nl")
    page.click("#tab-text")
    expect(page.locator("#text-part")).to_contain_text("Beste lezer,")

    page.select_option("#who", "row:2")
    expect(page.locator("#text-part")).to_contain_text("Beste Jan Jansen,")
    assert "who=row%3A2" in page.url


def test_outbox_messages_open_in_the_viewer(context: BrowserContext, served: Preview) -> None:
    from playwright.sync_api import expect

    page = open_page(context, served, "#tab=text")
    rows = page.locator("#outbox-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Bericht uit de outbox")
    expect(rows.first).to_contain_text("Lezer <lezer@example.nl>")

    rows.first.locator("button").click()
    expect(page.locator("#text-part")).to_have_text(re.compile(r"^Hallo lezer\s*$"))
    expect(page.locator("#viewing-mail")).to_be_visible()
    page.click("#tab-email")
    email_frame(page, "Hallo lezer")
    page.click("#tab-headers")
    expect(page.locator("#headers")).to_contain_text("Subject: Bericht uit de outbox")

    # A message that arrives while the page is open shows up by itself.
    outbox = mailbox.Maildir(str(served.workdir / "state" / "outbox"), create=False)
    key = outbox.add(_outbox_message("tweede@example.nl", "Tweede bericht", "Nog een"))
    try:
        expect(rows).to_have_count(2, timeout=WAIT_MS)
    finally:
        outbox.remove(key)

    page.click("#back")
    page.click("#tab-email")
    email_frame(page, TITLE)


def test_live_reload_keeps_the_view_and_shows_errors(browser: Browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    preview = start_preview(tmp_path)
    try:
        for context in _offline_context(browser, preview):
            page = open_page(context, preview, "#view=phone&scheme=dark")
            email_frame(page)
            page.evaluate("() => { window.notReloaded = true; }")
            article = preview.issue_dir / "01-social-media.md"
            original = article.read_text(encoding="utf-8")

            _save(article, original.replace(f"title: {TITLE}", "title: Social Media in 2025"))
            frame = email_frame(page, "Social Media in 2025")
            expect(page.locator("#view-phone")).to_have_attribute("aria-pressed", "true")
            assert page.evaluate("() => window.notReloaded") is True
            assert body_background(frame) != "rgb(255, 255, 255)"
            assert "view=phone" in page.url and "scheme=dark" in page.url

            _save(article, original.replace("---\n", "---\ntitle: 'niet gesloten\n", 1))
            error = page.locator("#error")
            expect(error).to_be_visible(timeout=WAIT_MS)
            expect(error).to_contain_text(
                re.compile(re.escape(str(article)) + r":\d+: invalid YAML")
            )
            expect(page.locator("#error-stale")).to_be_visible()  # the last good email stays

            broken_event = original.replace(
                "event: masterclass-social-media-2012-05", "event: <b>kapot</b>"
            )
            _save(article, broken_event)
            expect(error).to_contain_text(f"{article}:3: event '<b>kapot</b>' is not in the agenda")
            assert error.locator("b").count() == 0  # shown as text, never as HTML

            _save(article, original)
            expect(error).to_be_hidden(timeout=WAIT_MS)
            body = page.frame_locator("#email").locator("body")
            expect(body).not_to_contain_text("Social Media in 2025", timeout=WAIT_MS)
            email_frame(page, TITLE)
            assert page.evaluate("() => window.notReloaded") is True
    finally:
        preview.stop()
    assert "Traceback" not in preview.stderr_path.read_text()


def _save(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_headers_are_decoded() -> None:
    from nieuwsbrief.preview.state import header_block

    raw = (
        b"To: =?utf-8?b?Wm/DqyB2YW4gRGlqaw==?= <zoe@example.nl>\r\n"
        b"Subject: =?utf-8?q?Co=C3=B6rdinatie_en_=E2=82=AC?=\r\n"
        b"List-Unsubscribe: <mailto:afmelden@example.nl>,\r\n <https://example.nl/a>\r\n"
        b"\r\nbody\r\n"
    )

    assert header_block(raw).splitlines() == [
        "To: Zoë van Dijk <zoe@example.nl>",
        "Subject: Coördinatie en €",
        "List-Unsubscribe: <mailto:afmelden@example.nl>, <https://example.nl/a>",
    ]


SIDEWAYS_JS = "() => { const s = document.scrollingElement; return s.scrollWidth - s.clientWidth; }"


@pytest.mark.parametrize("view", ["desktop", "phone"])
def test_the_page_fits_a_375_px_window(browser: Browser, served: Preview, view: str) -> None:
    from playwright.sync_api import expect

    for context in _offline_context(browser, served):
        page = context.new_page()
        page.set_viewport_size({"width": 375, "height": 800})
        page.goto(f"{served.url}#view={view}")
        expect(page.locator("#status")).to_have_class(re.compile("live"), timeout=WAIT_MS)
        email_frame(page)
        page.click("#tab-headers")
        for tab in ("#tab-headers", "#tab-text", "#tab-email"):
            page.click(tab)
            sideways = page.evaluate(SIDEWAYS_JS)
            assert sideways == 0, tab
        picker = page.locator("#who").bounding_box()
        assert picker is not None and picker["x"] >= 0 and picker["x"] + picker["width"] <= 375


def test_check_results_show_and_follow_every_save(browser: Browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    preview = start_preview(tmp_path)
    try:
        for context in _offline_context(browser, preview):
            page = open_page(context, preview)
            email_frame(page)
            findings = page.locator("#check-findings")
            issue_yaml = preview.issue_dir / "issue.yaml"
            expect(findings).to_contain_text(f"{issue_yaml}:4")  # the date, before today
            expect(findings).to_contain_text("[date-past]")
            expect(page.locator("#check-verdict")).to_contain_text("OK: no problems")

            article = preview.issue_dir / "02-bim.md"
            original = article.read_text(encoding="utf-8")
            _save(article, original + "\n![](http://www.bureau-kennis.net/img/kantoor.jpg)\n")
            line = original.count("\n") + 2
            problem = findings.locator("li.problem").filter(has_text="[img-url")
            expect(problem).to_contain_text(f"Probleem: {article}:{line}", timeout=WAIT_MS)
            expect(problem).to_contain_text("not an absolute https URL")
            expect(page.locator("#check-verdict")).to_contain_text("fix them before sending")

            _save(article, original)
            expect(findings.locator("li.problem")).to_have_count(0, timeout=WAIT_MS)
    finally:
        preview.stop()


def test_ctrl_c_stops_while_a_request_is_still_arriving(tmp_path: Path) -> None:
    preview = start_preview(tmp_path)
    with socket.create_connection(("127.0.0.1", preview.port), timeout=10) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the headers never end
        assert b"Voorbeeld" in preview.get("/")  # the request thread has been started
        code = preview.stop(signal.SIGINT)
    assert code == 0, preview.stderr_path.read_text()
    assert "Preview stopped." in preview.stdout_path.read_text()
