"""Test helpers that show an email in a real headless Chromium (Playwright) and measure it.

Usage, in a test module (or conftest.py with scope="session"):

browser = browser_fixture()  # one Chromium per module: the machine has 2 cores

def test_x(browser):
    with email_page(browser, html) as page:
        assert horizontal_overflow(page, 320) == 0
        assert axe_violations(page) == []
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import pytest

from external_tools import NODE_MODULES, NPM_HINT, require_tool

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_PATH = NODE_MODULES / "axe-core" / "axe.min.js"


def chromium_path() -> str | None:
    """Return the Chromium to drive: $NIEUWSBRIEF_CHROMIUM, else Debian's /usr/bin/chromium."""
    candidate = os.environ.get("NIEUWSBRIEF_CHROMIUM") or "/usr/bin/chromium"
    return shutil.which(candidate)


# Playwright's sync API runs one event loop per thread: a second `sync_playwright()` while one
# is open fails. Fixtures of several modules (module or session scope) therefore share one
# Chromium, started by the first and closed when the last one is done.
_shared: dict[str, Any] = {"users": 0}


def browser_fixture(
    scope: Literal["session", "package", "module", "class", "function"] = "module",
) -> Callable[..., Any]:
    """Return a pytest fixture that gives the (shared) headless Chromium for `scope`."""

    @pytest.fixture(scope=scope)
    def browser() -> Iterator[Browser]:
        if not _shared["users"]:
            _shared["browser"], _shared["stop"] = _launch()
        _shared["users"] += 1
        try:
            yield _shared["browser"]
        finally:
            _shared["users"] -= 1
            if not _shared["users"]:
                _shared.pop("stop")()

    return browser


def _launch() -> tuple[Browser, Callable[[], None]]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_tool("playwright", False, "pip install playwright (the Python package)")
    executable = chromium_path()
    require_tool(
        "chromium",
        executable is not None,
        "install Debian's chromium or set NIEUWSBRIEF_CHROMIUM to a Chromium binary",
    )
    manager = sync_playwright()
    playwright = manager.start()
    try:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
    except BaseException:
        manager.__exit__(None, None, None)
        raise

    def stop() -> None:
        try:
            launched.close()
        finally:
            manager.__exit__(None, None, None)

    return launched, stop


def wide_png(width: int = 1200, height: int = 300) -> bytes:
    """Return a plain grey PNG of the given size (an image far wider than a phone)."""
    row = b"\x00" + b"\x99\x99\x99" * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@contextmanager
def email_page(
    browser: Browser,
    html: str,
    width: int = 600,
    *,
    color_scheme: Literal["light", "dark"] = "light",
    images: bool = False,
) -> Iterator[Page]:
    """Show `html` in a fresh page, offline: remote images and fonts fail fast, never hang.

    `images=True` answers every remote image with a 1200x300 PNG instead, to see it scale;
    `color_scheme="dark"` shows the page as a client in dark mode would.
    """
    context = browser.new_context(
        viewport={"width": width, "height": 800}, color_scheme=color_scheme
    )
    try:
        png = wide_png()

        def answer(route: Route) -> None:
            if images and route.request.resource_type == "image":
                route.fulfill(status=200, content_type="image/png", body=png)
            else:
                route.abort()

        # A regular expression: Playwright 1.5x's globs no longer match "http*://**", which left
        # remote requests to fail on DNS instead of being answered here.
        context.route(re.compile(r"^https?://"), answer)
        page = context.new_page()
        page.set_content(html, wait_until="load")
        yield page
    finally:
        context.close()


def horizontal_overflow(page: Page, width: int) -> int:
    """Show the page `width` CSS pixels wide; return how many pixels it scrolls sideways."""
    page.set_viewport_size({"width": width, "height": 800})
    overflow: int = page.evaluate(
        "() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    )
    return overflow


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core's default rules (color-contrast included) on the page; return the violations.

    Each violation: {"id", "impact", "help", "helpUrl", "nodes": [{"target", "html", "summary"}]}.
    """
    require_tool("axe-core", AXE_PATH.is_file(), NPM_HINT)
    page.add_script_tag(path=str(AXE_PATH))
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const results = await axe.run(document, {resultTypes: ['violations']});
            return results.violations.map((v) => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                helpUrl: v.helpUrl,
                nodes: v.nodes.map((n) => ({
                    target: n.target, html: n.html, summary: n.failureSummary,
                })),
            }));
        }"""
    )
    return violations
