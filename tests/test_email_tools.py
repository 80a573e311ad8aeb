"""The browser, accessibility, spam and client-support helpers, shown on a small MJML email."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from mjml import mjml2html

from browser import axe_violations, browser_fixture, email_page, horizontal_overflow
from external_tools import caniemail_report, spam_report
from nieuwsbrief.check import check_message

if TYPE_CHECKING:
    from playwright.sync_api import Browser

browser = browser_fixture(scope="module")

SUBJECT = "Nieuwsbrief mei 2012"
PREHEADER = "Nieuwe richtlijnen voor BIM en de kennisdag in Utrecht"
TITLES = ("Nieuwe richtlijnen voor BIM", "Kennisdag in Utrecht")
LONG_URL = (
    "https://www.example.nl/kennisbank/publicaties/2012/05/"
    "richtlijnen-voor-bouwwerkinformatiemodellen-in-de-praktijk-van-de-middelgrote-aannemer"
    "?utm_source=nieuwsbrief&utm_medium=email&utm_campaign=mei-2012"
)
UNSUBSCRIBE_URL = "https://www.example.nl/afmelden?t=0123456789abcdef"
PARAGRAPH = (
    "Het ministerie heeft nieuwe richtlijnen gepubliceerd voor het werken met "
    "bouwwerkinformatiemodellen. Wij zetten voor u op een rij wat er verandert voor "
    "opdrachtgevers, architecten en aannemers, en welke afspraken u in uw volgende "
    "project het beste vooraf kunt maken over uitwisseling en eigendom van modellen."
)

FIXTURE_MJML = f"""<mjml lang="nl">
  <mj-head>
    <mj-title>{SUBJECT}</mj-title>
    <mj-preview>{PREHEADER}</mj-preview>
    <mj-attributes>
      <mj-all font-family="Arial, Helvetica, sans-serif" />
      <mj-text color="#222222" font-size="16px" line-height="1.5" />
    </mj-attributes>
  </mj-head>
  <mj-body background-color="#ffffff">
    <mj-section>
      <mj-column>
        <mj-image src="https://www.example.nl/logo.png" alt="Bureau | Kennis"
                  width="200px" height="60px" />
        <mj-text><h1 style="font-size:26px;margin:0">{SUBJECT}</h1></mj-text>
        <mj-text><h2 style="font-size:20px;margin:0">{TITLES[0]}</h2>
          <p>{PARAGRAPH}</p>
          <p>Lees verder: <a href="{LONG_URL}"
             style="color:#0b5394">{LONG_URL}</a></p>
        </mj-text>
        <mj-text><h2 style="font-size:20px;margin:0">{TITLES[1]}</h2>
          <p>Op dinsdag 12 juni 2012 organiseren wij onze jaarlijkse kennisdag in Utrecht.
          {PARAGRAPH}</p>
        </mj-text>
        <mj-text font-size="13px" color="#555555">
          Bureau | Kennis, Postbus 1, 1000 AA Amsterdam.
          <a href="{UNSUBSCRIBE_URL}" style="color:#555555">Afmelden</a>
        </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""

FIXTURE_TEXT = f"""{SUBJECT}

{TITLES[0]}
{PARAGRAPH}
Lees verder: {LONG_URL}

{TITLES[1]}
Op dinsdag 12 juni 2012 organiseren wij onze jaarlijkse kennisdag in Utrecht.
{PARAGRAPH}

Bureau | Kennis, Postbus 1, 1000 AA Amsterdam.
Afmelden: {UNSUBSCRIBE_URL}
"""


@pytest.fixture(scope="module")
def fixture_html() -> str:
    html: str = mjml2html(FIXTURE_MJML)
    return html


@pytest.fixture(scope="module")
def fixture_eml(fixture_html: str) -> bytes:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "Bureau | Kennis <nieuwsbrief@example.nl>"
    message["To"] = "Anna de Vries <anna@example.nl>"
    message["Subject"] = SUBJECT
    message["Date"] = format_datetime(datetime(2012, 5, 1, 9, 0, tzinfo=UTC))
    message["Message-ID"] = make_msgid(domain="example.nl")
    message["List-Unsubscribe"] = f"<{UNSUBSCRIBE_URL}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(FIXTURE_TEXT)
    message.add_alternative(fixture_html, subtype="html")
    return message.as_bytes()


def test_fixture_email_passes_the_pre_send_check(fixture_html: str, fixture_eml: bytes) -> None:
    report = check_message(
        fixture_html,
        FIXTURE_TEXT,
        fixture_eml,
        subject=SUBJECT,
        preheader=PREHEADER,
        article_titles=TITLES,
        issue_date=date(2012, 5, 1),
        today=date(2012, 5, 1),
        sending=True,
    )

    assert report.format() == "OK: no problems"


@pytest.mark.parametrize("width", [320, 375, 600, 800])
def test_fixture_email_does_not_scroll_sideways(
    browser: Browser, fixture_html: str, width: int
) -> None:
    with email_page(browser, fixture_html) as page:
        assert horizontal_overflow(page, width) == 0


def test_overflow_is_measured(browser: Browser) -> None:
    html = '<html><body><div style="width:700px">breed</div></body></html>'

    with email_page(browser, html) as page:
        assert horizontal_overflow(page, 320) > 300


def test_fixture_email_has_no_serious_accessibility_violations(
    browser: Browser, fixture_html: str
) -> None:
    with email_page(browser, fixture_html) as page:
        violations = axe_violations(page)

    serious = [v for v in violations if v["impact"] in ("critical", "serious")]
    assert serious == []


def test_axe_reports_low_contrast_and_missing_alt(browser: Browser) -> None:
    html = (
        '<!doctype html><html lang="nl"><head><title>t</title></head><body><main>'
        '<p style="color:#dddddd;background:#ffffff">Bijna onzichtbaar</p>'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="10" height="10">'
        "</main></body></html>"
    )

    with email_page(browser, html) as page:
        violations = {v["id"]: v["impact"] for v in axe_violations(page)}

    assert violations["color-contrast"] == "serious"
    assert violations["image-alt"] == "critical"


def test_spamassassin_scores_the_fixture_email(fixture_eml: bytes) -> None:
    score, rules = spam_report(fixture_eml)

    assert -5.0 < score < 5.0
    assert rules, "a -t report always lists some rules"
    assert all(rule.replace("_", "").isalnum() and rule.isupper() for rule in rules)
    assert not rules & {"MISSING_DATE", "MISSING_MID", "MIME_HTML_ONLY", "MPART_ALT_DIFF"}


def test_spamassassin_flags_a_bare_html_message() -> None:
    eml = b"From: a@example.nl\r\nTo: b@example.nl\r\nSubject: x\r\n" + (
        b"Content-Type: text/html\r\n\r\n<html><body><p>Hallo</p></body></html>\r\n"
    )

    score, rules = spam_report(eml)

    assert {"MISSING_DATE", "MISSING_MID", "MIME_HTML_ONLY"} <= rules
    assert score > 3.0


def test_caniemail_reports_on_the_fixture_email(fixture_html: str, tmp_path: Path) -> None:
    html_path = tmp_path / "email.html"
    html_path.write_text(fixture_html, encoding="utf-8")

    report = caniemail_report(html_path)

    assert report["clients"] == ["gmail.*", "outlook.*", "apple-mail.*"]
    assert isinstance(report["success"], bool)
    for level in ("errors", "warnings"):
        for client, issues in report[level].items():
            assert client.split(".")[0] in ("gmail", "outlook", "apple-mail")
            assert all(issue["title"] and issue["support"] for issue in issues)


def test_caniemail_reports_flexbox_for_outlook(tmp_path: Path) -> None:
    html_path = tmp_path / "flex.html"
    html_path.write_text('<html><body><div style="display:flex">x</div></body></html>')

    report = caniemail_report(html_path, ("outlook.windows",))

    titles = [issue["title"] for issue in report["errors"]["outlook.windows"]]
    assert "display:flex" in titles
