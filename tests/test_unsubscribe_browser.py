"""The unsubscribe pages in Chromium: the brand's style and logo pass the CSP, axe finds nothing
(contrast included, light and dark), nothing scrolls sideways on a phone, and the button works."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from browser import axe_violations, browser_fixture, horizontal_overflow, wide_png
from conftest import EXAMPLE_TEMPLATES
from nieuwsbrief.unsubscribe.endpoint import UnsubscribeServer, make_app
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from nieuwsbrief.unsubscribe.tokens import make_token, recipient_id

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

browser = browser_fixture()
SECRET = "test-secret-0123456789abcdef"
URL = "https://www.bureau-kennis.net/afmelden/{token}"
ADDRESS = "jan.jansen@gemeente.nl"
LOGO = "https://www.bureau-kennis.net/img/logo-bureau-kennis.png"


@pytest.fixture(params=["example", "default"])
def endpoint(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, SuppressionList]]:
    """The endpoint of the test home (Bureau | Kennis), or of a home without a house style."""
    db = SuppressionList(tmp_path / "suppression.sqlite")
    db.register([(recipient_id(SECRET, ADDRESS), ADDRESS)])
    templates = EXAMPLE_TEMPLATES if request.param == "example" else None
    app = make_app(SECRET, db.path, URL, templates_dir=templates)
    httpd = UnsubscribeServer(app, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve, daemon=True)
    thread.start()
    try:
        yield f"http://{httpd.host}:{httpd.port}", db
    finally:
        httpd.stop()
        thread.join(5)


def _open(
    browser: Browser, url: str, scheme: str = "light", *, axe: bool = False
) -> tuple[Page, list[str], list[str]]:
    """Open `url` offline (the logo's host answered here); return page, console errors and
    the remote requests. `axe=True` lets axe's script past the CSP; otherwise it is enforced."""
    context = browser.new_context(
        viewport={"width": 1024, "height": 800},
        color_scheme="dark" if scheme == "dark" else "light",
        bypass_csp=axe,
    )
    png = wide_png(400, 80)
    requested: list[str] = []

    def answer(route: Route) -> None:
        requested.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=png)

    context.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), answer)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url, wait_until="load")
    return page, errors, requested


def _accessible(browser: Browser, url: str, scheme: str = "light") -> None:
    page, _errors, _requested = _open(browser, url, scheme, axe=True)
    try:
        assert axe_violations(page) == []
        assert horizontal_overflow(page, 320) == 0
    finally:
        page.context.close()


@pytest.mark.parametrize("endpoint", ["example"], indirect=True)
def test_the_brand_passes_the_csp_and_the_button_unsubscribes(
    browser: Browser, endpoint: tuple[str, SuppressionList]
) -> None:
    base, db = endpoint
    page, errors, requested = _open(browser, f"{base}/afmelden/{make_token(SECRET, ADDRESS)}")
    try:
        assert page.title() == "Afmelden voor de nieuwsbrief – Bureau | Kennis"
        assert requested == [LOGO]  # the CSP let the logo through, and nothing else went out
        assert page.evaluate("document.querySelector('header img').naturalWidth") == 400
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(238, 241, 244)"  # the brand's: the inline style applied
        assert not db.is_suppressed(ADDRESS)

        page.get_by_role("button", name="Ja, meld mij af").click()  # form-action 'self'
        page.wait_for_load_state("load")
        assert page.locator("h1").inner_text() == "U bent afgemeld"
        assert db.is_suppressed(ADDRESS)
        assert errors == []  # no CSP refusal anywhere
    finally:
        page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_kind_of_page_is_accessible_and_fits_a_phone(
    browser: Browser, endpoint: tuple[str, SuppressionList], scheme: str
) -> None:
    base, db = endpoint
    link = f"{base}/afmelden/{make_token(SECRET, ADDRESS)}"
    _accessible(browser, link, scheme)  # the confirm page, with its button
    _accessible(browser, f"{base}/afmelden/1ongeldig", scheme)  # an error page
    db.add(ADDRESS, "web")
    _accessible(browser, link, scheme)  # "already unsubscribed"
