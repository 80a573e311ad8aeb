"""The published site in real Chromium, from file:// and over a local HTTP server: every internal
link resolves, the style sheet and photos load under the CSP, axe finds nothing serious, and no
page scrolls sideways from 320 to 1280 px."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urldefrag, urlsplit

import pytest

from browser import axe_violations, browser_fixture, horizontal_overflow
from nieuwsbrief.web import publish
from web_home import WEB_URL, make_home

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

browser = browser_fixture()
WIDTHS = (320, 375, 768, 1024, 1280)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    from conftest import EXAMPLE_AGENDA, EXAMPLE_ISSUE, HOME_CONFIG, house_style_copy
    from nieuwsbrief.home import load_home

    root = tmp_path_factory.mktemp("home")
    (root / "nieuwsbrief.toml").write_text(HOME_CONFIG, encoding="utf-8")
    issues = root / "issues"
    issues.mkdir()
    shutil.copytree(EXAMPLE_ISSUE, issues / "2012-05", ignore=shutil.ignore_patterns("out"))
    shutil.copy(EXAMPLE_AGENDA, issues / "agenda.yaml")
    house_style_copy(root)
    home = make_home(issues / "2012-05")
    publish(load_home(home), WEB_URL)
    return home / "site"


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _context(browser: Browser, *, bypass_csp: bool = False) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1024, "height": 800}, bypass_csp=bypass_csp)
    # The logo lives on the company's site; offline here, so answer no remote request.
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
    return context


def _crawl(browser: Browser, root: str, site: Path) -> dict[str, list[str]]:
    """Visit every page reachable from index.html; return {page: problems}; check every link."""
    context = _context(browser)
    problems: dict[str, list[str]] = {}
    pages = [root + "index.html"]
    seen = set(pages)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        while pages:
            url = pages.pop(0)
            errors.clear()
            response = page.goto(url, wait_until="load")
            found: list[str] = []
            if response is not None and not response.ok:
                found.append(f"HTTP {response.status}")
            links: list[str] = page.eval_on_selector_all(
                "a[href], link[href], img[src]", "els => els.map(e => e.href || e.src)"
            )
            for link in links:
                target, _ = urldefrag(link)
                if not target.startswith(root):
                    continue  # the company's website, mailto:, event pages
                path = site / unquote(urlsplit(target).path)[len(urlsplit(root).path) :]
                if target.endswith("/"):
                    path = path / "index.html"
                if not path.is_file():
                    found.append(f"dead link {link}")
                elif root.startswith("http"):
                    status = context.request.get(target).status
                    if status != 200:
                        found.append(f"{link}: HTTP {status}")
                if target.endswith(".html") and target not in seen:
                    seen.add(target)
                    pages.append(target)
            broken: list[str] = page.eval_on_selector_all(
                "img",
                "els => els.filter(i => i.src.startsWith(location.protocol) "
                "&& !(i.complete && i.naturalWidth > 0)).map(i => i.src)",
            )
            found += [f"image not shown: {src}" for src in broken]
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            if background != "rgb(238, 241, 244)":  # brand background: the style sheet applied
                found.append(f"style sheet not applied (body background {background})")
            # The remote logo is refused by the route above; anything else (a CSP refusal) counts.
            found += [f"console: {e}" for e in errors if "net::ERR_FAILED" not in e]
            problems[url.removeprefix(root)] = found
    finally:
        context.close()
    return problems


@pytest.mark.parametrize("served", ["file", "http"])
def test_every_page_and_link_works(browser: Browser, site: Path, server: str, served: str) -> None:
    root = site.as_uri() + "/" if served == "file" else server
    problems = _crawl(browser, root, site)
    assert set(problems) >= {
        "index.html",
        "2012-05/index.html",
        "2012-06/index.html",
        "agenda/index.html",
    }
    assert {page: found for page, found in problems.items() if found} == {}


def test_axe_and_no_sideways_scroll(browser: Browser, site: Path, server: str) -> None:
    pages = ["index.html", "2012-05/index.html", "agenda/index.html"]
    context = _context(browser, bypass_csp=True)  # axe is a script the CSP (rightly) refuses
    try:
        page = context.new_page()
        for name in pages:
            page.goto(server + name, wait_until="load")
            for width in WIDTHS:
                assert horizontal_overflow(page, width) == 0, (name, width)
            page.set_viewport_size({"width": 1024, "height": 800})
            serious = [
                (v["id"], v["help"], [n["target"] for n in v["nodes"]])
                for v in axe_violations(page)
                if v["impact"] in ("serious", "critical")
            ]
            assert serious == [], name
    finally:
        context.close()


def test_csp_blocks_scripts_on_the_site(browser: Browser, server: str) -> None:
    context = _context(browser)
    try:
        page = context.new_page()
        page.goto(server + "2012-05/index.html", wait_until="load")
        page.evaluate(
            """() => { const s = document.createElement('script');
                       s.textContent = 'window.__ran = true'; document.body.append(s); }"""
        )
        assert page.evaluate("window.__ran === true") is False
    finally:
        context.close()


def test_email_with_web_links_and_photo_fits_and_passes_axe(browser: Browser, site: Path) -> None:
    from browser import email_page
    from conftest import factory_maker
    from nieuwsbrief.compose import compose_issue

    issue = site.parent / "issues" / "2012-05"
    composed = compose_issue(issue, factory_maker, web_url=WEB_URL)
    assert "Zet in mijn agenda" in composed.html
    for scheme in ("light", "dark"):
        with email_page(browser, composed.html, color_scheme=scheme, images=True) as page:
            for width in (320, 375, 600, 800):
                assert horizontal_overflow(page, width) == 0, (scheme, width)
            page.set_viewport_size({"width": 600, "height": 800})
            serious = [
                (v["id"], [n["target"] for n in v["nodes"]])
                for v in axe_violations(page)
                if v["impact"] in ("serious", "critical")
            ]
            assert serious == [], scheme
            photo = page.eval_on_selector(
                "img[src*='/img/kantoor-']", "i => [i.getAttribute('width'), i.clientWidth]"
            )
            assert photo[0] == "552" and photo[1] <= 552
