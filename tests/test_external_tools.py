"""The missing-tool rule: skip locally, fail when CI requires every tool."""

from __future__ import annotations

import pytest

from browser import chromium_path
from external_tools import require_tool


def test_available_tool_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIEUWSBRIEF_REQUIRE_TOOLS", "1")

    require_tool("spamassassin", True, "install it")


def test_missing_tool_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NIEUWSBRIEF_REQUIRE_TOOLS", raising=False)

    with pytest.raises(pytest.skip.Exception, match="spamassassin is not available: install it"):
        require_tool("spamassassin", False, "install it")


def test_missing_tool_fails_when_tools_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIEUWSBRIEF_REQUIRE_TOOLS", "1")

    with pytest.raises(pytest.fail.Exception, match="NIEUWSBRIEF_REQUIRE_TOOLS=1"):
        require_tool("spamassassin", False, "install it")


def test_chromium_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIEUWSBRIEF_CHROMIUM", "/nonexistent/chromium")

    assert chromium_path() is None
