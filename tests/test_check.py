"""Tests for the pre-send lint: a clean message passes, and each broken thing is found alone."""

from __future__ import annotations

from datetime import date
from email import policy
from email.message import EmailMessage

import pytest

from nieuwsbrief.check import CheckReport, Finding, check_message

SUBJECT = "Nieuwsbrief mei 2012: BIM en de kennisdag"
PREHEADER = "Richtlijnen voor BIM en onze kennisdag in juni"
TITLES = ("Nieuwe BIM-richtlijnen", "Kennisdag in Utrecht")
ISSUE_DATE = date(2012, 5, 1)

CLEAN_HTML = """<!doctype html>
<html lang="nl">
<head>
<title>Nieuwsbrief mei 2012</title>
<style>.kop { font-size: 24px; }</style>
</head>
<body>
<div style="display:none">Richtlijnen voor BIM en onze kennisdag in juni</div>
<img src="https://www.example.nl/logo.png" alt="Bureau | Kennis" width="200">
<h1>Nieuwsbrief mei 2012</h1>
<p><a href="#agenda">Naar de agenda</a></p>
<h2>Nieuwe BIM-richtlijnen</h2>
<p>De richtlijnen zijn er. <a href="https://www.example.nl/bim">Wat er verandert voor BIM</a></p>
<h2 id="agenda">Kennisdag in Utrecht</h2>
<p>Op 12 juni. <a href="mailto:info@example.nl">Meld je aan</a></p>
<img src="https://www.example.nl/lijn.png" alt="">
<p><a href="https://www.example.nl/afmelden?t=abc">Afmelden</a></p>
</body>
</html>
"""

CLEAN_TEXT = """Nieuwsbrief mei 2012

Nieuwe BIM-richtlijnen
De richtlijnen zijn er. Wat er verandert voor BIM: https://www.example.nl/bim

Kennisdag in Utrecht
Op 12 juni. Meld je aan: info@example.nl

Afmelden: https://www.example.nl/afmelden?t=abc
"""


def build_eml(
    html: str,
    text: str | None,
    *,
    subject: str = SUBJECT,
    list_unsubscribe: str | None = "<https://www.example.nl/afmelden?t=abc>",
    html_first: bool = False,
    html_cte: str | None = None,
) -> bytes:
    """Build a multipart/alternative message (text/plain first) the way a sender would."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "Bureau | Kennis <nieuwsbrief@example.nl>"
    message["To"] = "Anna de Vries <anna@example.nl>"
    message["Subject"] = subject
    if list_unsubscribe is not None:
        message["List-Unsubscribe"] = list_unsubscribe
    if text is None:
        message.set_content(html, subtype="html", cte=html_cte)
    elif html_first:
        message.set_content(html, subtype="html", cte=html_cte)
        message.add_alternative(text)
    else:
        message.set_content(text)
        message.add_alternative(html, subtype="html", cte=html_cte)
    return message.as_bytes()


def check(
    html: str = CLEAN_HTML,
    text: str = CLEAN_TEXT,
    eml: bytes | None = None,
    *,
    subject: str = SUBJECT,
    preheader: str = PREHEADER,
    today: date = ISSUE_DATE,
    sending: bool = False,
) -> CheckReport:
    """Check a message that is clean unless an argument breaks it."""
    if eml is None:
        eml = build_eml(html, text, subject=subject)
    return check_message(
        html,
        text,
        eml,
        subject=subject,
        preheader=preheader,
        article_titles=TITLES,
        issue_date=ISSUE_DATE,
        today=today,
        sending=sending,
    )


def codes(findings: tuple[Finding, ...]) -> list[str]:
    return [finding.code for finding in findings]


def assert_only_problem(report: CheckReport, code: str) -> None:
    assert set(codes(report.problems)) == {code}, report.format()
    assert report.warnings == (), report.format()
    assert not report.ok


def assert_only_warning(report: CheckReport, code: str) -> None:
    assert codes(report.warnings) == [code], report.format()
    assert report.problems == (), report.format()
    assert report.ok


def padded_html(filler: str) -> str:
    return CLEAN_HTML.replace("<p>Op 12 juni.", f"<p>{filler}</p>\n<p>Op 12 juni.")


def test_clean_message_has_no_findings() -> None:
    report = check(sending=True)

    assert report.problems == ()
    assert report.warnings == ()
    assert report.ok
    assert report.format() == "OK: no problems"


def test_html_of_100_kb_encoded_is_a_size_problem() -> None:
    html = padded_html("<br>\n".join(["Een regel tekst over bouwen."] * 3_500))

    report = check(html)

    assert_only_problem(report, "size")
    assert "Gmail clips" in report.problems[0].message


def test_html_of_90_kb_encoded_is_a_size_warning() -> None:
    html = padded_html("<br>\n".join(["Een regel tekst over bouwen."] * 2_850))

    assert_only_warning(check(html), "size")


def test_size_counts_quoted_printable_escapes() -> None:
    # 20,000 'é' are 40 KB of UTF-8 but 120 KB once quoted-printable (=C3=A9).
    html = padded_html("<br>\n".join(["é" * 50] * 400))
    eml = build_eml(html, CLEAN_TEXT, html_cte="quoted-printable")

    assert len(html.encode("utf-8")) < 90_000
    assert_only_problem(check(html, eml=eml), "size")


def test_style_of_16_kb_is_a_problem() -> None:
    rules = "\n".join(f".kop{i} {{ font-size: 24px; color: #123456; }}" for i in range(400))
    html = CLEAN_HTML.replace("</style>", f"{rules}</style>")

    assert_only_problem(check(html), "style-size")


def test_empty_preheader_is_a_problem() -> None:
    assert_only_problem(check(preheader=" "), "preheader-missing")


def test_preheader_not_in_html_is_a_problem() -> None:
    html = CLEAN_HTML.replace(f'<div style="display:none">{PREHEADER}</div>', "")

    assert_only_problem(check(html), "preheader-missing")


def test_preheader_over_100_characters_is_a_warning() -> None:
    preheader = "Nieuwe BIM-richtlijnen " * 5
    html = CLEAN_HTML.replace(PREHEADER, preheader)

    assert_only_warning(check(html, preheader=preheader), "preheader-long")


def test_subject_over_70_characters_is_a_warning() -> None:
    subject = "Nieuwsbrief mei 2012: de nieuwe BIM-richtlijnen, onze kennisdag en meer"

    assert len(subject) > 70
    assert_only_warning(check(subject=subject), "subject-long")


def test_img_without_alt_is_a_problem() -> None:
    html = CLEAN_HTML.replace(' alt="Bureau | Kennis"', "")

    report = check(html)

    assert_only_problem(report, "img-alt")
    assert "logo.png" in report.problems[0].message
    assert "HTML line 9" in str(report.problems[0])


@pytest.mark.parametrize(
    "src", ["http://www.example.nl/logo.png", "/logo.png", "logo.png", "cid:logo", ""]
)
def test_img_without_absolute_https_src_is_a_problem(src: str) -> None:
    html = CLEAN_HTML.replace("https://www.example.nl/logo.png", src)

    assert_only_problem(check(html), "img-url")


def test_empty_link_is_a_problem() -> None:
    html = CLEAN_HTML.replace('href="https://www.example.nl/bim"', 'href=""')

    report = check(html)

    assert_only_problem(report, "link-empty")
    assert "'Wat er verandert voor BIM'" in report.problems[0].message


@pytest.mark.parametrize("href", ["#agneda", "#"])
def test_link_to_missing_anchor_is_a_problem(href: str) -> None:
    html = CLEAN_HTML.replace('href="#agenda"', f'href="{href}"')

    assert_only_problem(check(html), "link-anchor")


def test_link_to_anchor_by_name_is_fine() -> None:
    html = CLEAN_HTML.replace(' id="agenda"', "").replace(
        "<h2>Kennis", '<a name="agenda"></a><h2>Kennis'
    )

    assert check(html).problems == ()


@pytest.mark.parametrize(
    "href", ["javascript:alert(1)", "/bim", "www.example.nl/bim", "ftp://example.nl/bim"]
)
def test_link_that_is_not_http_or_mailto_is_a_problem(href: str) -> None:
    html = CLEAN_HTML.replace("https://www.example.nl/bim", href)

    assert_only_problem(check(html), "link-scheme")


@pytest.mark.parametrize("label", ["Klik hier", "lees meer", "Lees verder »", "hier", "Read more…"])
def test_vague_link_text_is_a_warning(label: str) -> None:
    html = CLEAN_HTML.replace(">Wat er verandert voor BIM<", f">{label}<")

    report = check(html)

    assert_only_warning(report, "link-vague")
    assert repr(label) in report.warnings[0].message


def test_link_text_that_says_where_it_goes_is_fine() -> None:
    html = CLEAN_HTML.replace(">Wat er verandert voor BIM<", ">Lees meer over de BIM-richtlijnen<")

    assert check(html).warnings == ()


@pytest.mark.parametrize("where", ["html", "text", "subject"])
@pytest.mark.parametrize("marker", ["{{ naam }}", "{% if x %}", "%%nb:first_name%%"])
def test_leftover_template_marker_is_a_problem(where: str, marker: str) -> None:
    html, text, subject = CLEAN_HTML, CLEAN_TEXT, SUBJECT
    if where == "html":
        html = html.replace("<h1>", f"<p>Beste {marker},</p><h1>")
    elif where == "text":
        text = f"Beste {marker},\n\n{text}"
    else:
        subject = f"{marker}, {subject}"[:70]

    report = check(html, text, subject=subject)

    assert_only_problem(report, "template-marker")
    assert marker[:5] in report.problems[0].message


def test_no_unsubscribe_link_in_html_is_a_problem() -> None:
    html = CLEAN_HTML.replace(
        '<a href="https://www.example.nl/afmelden?t=abc">Afmelden</a>',
        '<a href="https://www.example.nl/">Naar de website</a>',
    )

    report = check(html)

    assert_only_problem(report, "unsubscribe-missing")
    assert "HTML" in report.problems[0].message


def test_no_list_unsubscribe_header_is_a_problem() -> None:
    eml = build_eml(CLEAN_HTML, CLEAN_TEXT, list_unsubscribe=None)

    report = check(eml=eml)

    assert_only_problem(report, "unsubscribe-missing")
    assert "List-Unsubscribe" in report.problems[0].message


def test_html_only_message_is_missing_its_text() -> None:
    eml = build_eml(CLEAN_HTML, None)

    assert_only_problem(check(eml=eml), "text-missing")


def test_text_after_html_counts_as_missing_text() -> None:
    eml = build_eml(CLEAN_HTML, CLEAN_TEXT, html_first=True)

    assert_only_problem(check(eml=eml), "text-missing")


def test_message_without_html_part_is_a_problem() -> None:
    message = EmailMessage()
    message["List-Unsubscribe"] = "<https://www.example.nl/afmelden?t=abc>"
    message.set_content(CLEAN_TEXT)

    report = check(eml=message.as_bytes())

    assert "html-missing" in codes(report.problems)


@pytest.mark.parametrize("missing_from", ["html", "text"])
def test_article_title_in_one_version_only_is_a_problem(missing_from: str) -> None:
    html, text = CLEAN_HTML, CLEAN_TEXT
    if missing_from == "html":
        html = html.replace("<h2>Nieuwe BIM-richtlijnen</h2>", "")
    else:
        text = text.replace("Nieuwe BIM-richtlijnen\n", "")

    report = check(html, text)

    assert_only_problem(report, "text-mismatch")
    assert "'Nieuwe BIM-richtlijnen'" in report.problems[0].message


def test_title_matching_ignores_case_whitespace_and_entities() -> None:
    html = CLEAN_HTML.replace("Nieuwe BIM-richtlijnen</h2>", "Nieuwe\n  BIM&#45;richtlijnen</h2>")

    assert check(html).problems == ()


def test_past_issue_date_is_a_warning_when_sending() -> None:
    report = check(today=date(2012, 5, 2), sending=True)

    assert_only_warning(report, "date-past")
    assert "2012-05-01" in report.warnings[0].message


def test_past_issue_date_is_a_warning_when_only_checking_too() -> None:
    assert_only_warning(check(today=date(2012, 5, 2), sending=False), "date-past")


def test_format_gives_findings_and_a_verdict() -> None:
    report = CheckReport(
        problems=(Finding("img-alt", "a"), Finding("size", "b")),
        warnings=(Finding("date-past", "c"),),
    )

    assert report.format().splitlines() == [
        "problem  a [img-alt]",
        "problem  b [size]",
        "warning  c [date-past]",
        "2 problems, 1 warning — fix them before sending",
    ]
    assert (
        CheckReport(warnings=(Finding("date-past", "c"),))
        .format()
        .endswith("OK: no problems, 1 warning")
    )
