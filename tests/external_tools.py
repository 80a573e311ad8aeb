"""Test helpers around external tools (SpamAssassin, Node caniemail) and the missing-tool rule.

A missing tool skips the test with the reason, unless NIEUWSBRIEF_REQUIRE_TOOLS=1 (set by CI):
then it fails, so a broken CI image cannot pass by skipping everything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

JS_DIR = Path(__file__).parent / "js"
NODE_MODULES = JS_DIR / "node_modules"
CANIEMAIL_SCRIPT = JS_DIR / "caniemail-check.mjs"
NPM_HINT = "run `npm ci --prefix tests/js`"

_SPAM_STATUS_RE = re.compile(r"^X-Spam-Status: \w+, score=(-?\d+(?:\.\d+)?)", re.MULTILINE)
_SPAM_RULE_RE = re.compile(r"^\s*-?\d+(?:\.\d+)?\s+([A-Z][A-Z0-9_]+)\s")


def require_tool(name: str, available: bool, reason: str) -> None:
    """Skip the calling test when a tool is missing, or fail it when CI requires all tools."""
    if available:
        return
    message = f"{name} is not available: {reason}"
    if os.environ.get("NIEUWSBRIEF_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{message} (NIEUWSBRIEF_REQUIRE_TOOLS=1 requires it)", pytrace=False)
    pytest.skip(message)


def spam_report(eml: bytes) -> tuple[float, set[str]]:
    """Run SpamAssassin locally (`spamassassin -L -t`) on a message; return its score and rules."""
    spamassassin = shutil.which("spamassassin")
    require_tool("spamassassin", spamassassin is not None, "install Debian's spamassassin")
    assert spamassassin is not None
    with tempfile.TemporaryDirectory() as home:
        # An empty prefs file of our own: SpamAssassin would otherwise create ~/.spamassassin.
        prefs_path = Path(home) / "user_prefs"
        prefs_path.write_text("")
        result = subprocess.run(
            [spamassassin, "-L", "-t", "-p", str(prefs_path)],
            input=eml,
            capture_output=True,
            timeout=120,
            check=True,
            env={**os.environ, "HOME": home},
        )
    output = result.stdout.decode("utf-8", "replace")
    status = _SPAM_STATUS_RE.search(output)
    assert status, f"no X-Spam-Status in spamassassin output:\n{output[:2000]}"
    return float(status.group(1)), _spam_rules(output)


def _spam_rules(output: str) -> set[str]:
    """Return the rule names of the "Content analysis details" table of a -t report."""
    _, marker, table = output.partition("Content analysis details:")
    assert marker, f"no 'Content analysis details' in spamassassin output:\n{output[:2000]}"
    rules: set[str] = set()
    for line in table.splitlines()[3:]:  # skip the summary, header and ---- lines
        if not line.strip():
            break
        match = _SPAM_RULE_RE.match(line)
        if match:  # otherwise a wrapped description line
            rules.add(match.group(1))
    return rules


def caniemail_report(html_path: Path, clients: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return caniemail's findings for an HTML file: {"success", "clients", "errors", "warnings"}.

    errors and warnings map a client ("outlook.windows") to its issues, each
    {"title", "support", "notes", "line"}; default clients: gmail.*, outlook.*, apple-mail.*.
    """
    node = shutil.which("node")
    require_tool("node", node is not None, "install Node.js 20.19 or later")
    require_tool("caniemail", (NODE_MODULES / "caniemail").is_dir(), NPM_HINT)
    assert node is not None
    result = subprocess.run(
        [node, str(CANIEMAIL_SCRIPT), str(html_path), *clients],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"caniemail-check.mjs failed:\n{result.stderr}"
    report: dict[str, Any] = json.loads(result.stdout)
    return report
