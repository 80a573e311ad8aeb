"""The pre-send lint: what in a composed message would go wrong in thousands of inboxes.

`check_message` is a pure function over what compose produces for the sample subscriber
(merge markers already replaced): the HTML, the plain text and the bytes of the MIME message.
`check_composed` runs it on a composed issue and `check_issue` composes one first; the
`check` command and `send` use them. Problems block `send`; warnings are shown and do not.
"""

from __future__ import annotations

import email
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from email import policy
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from pathlib import Path

from .compose import SIZE_WARNING_BYTES, Composed, FactoryMaker, compose_issue

# Gmail clips a message whose encoded HTML exceeds ~102 KB (EMAIL-STANDARDS 3.1); stay clear of it.
HTML_SIZE_LIMIT = 100_000
HTML_SIZE_WARNING = SIZE_WARNING_BYTES
# Gmail drops all <style> content beyond 16 KB (EMAIL-STANDARDS 3.2).
STYLE_SIZE_LIMIT = 16_384
PREHEADER_MAX_CHARS = 100
SUBJECT_MAX_CHARS = 70

_TEMPLATE_MARKER_RE = re.compile(r"\{\{|\{%|%%nb:")
_UNSUBSCRIBE_RE = re.compile(r"afmeld|uitschrijv|unsubscrib|opt-?out", re.IGNORECASE)
_ALLOWED_LINK_RE = re.compile(r"(https?://|mailto:)\S", re.IGNORECASE)
_EXCERPT_CHARS = 60
# Link texts that do not say where the link goes; screen readers list links out of context.
_VAGUE_LINK_TEXTS = frozenset(
    {
        "klik hier", "klik", "hier", "lees meer", "lees verder", "meer", "meer info",
        "meer informatie", "verder", "link", "deze link", "click here", "here", "read more",
        "more",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a message: a short code and a message saying what, where, what next."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class CheckReport:
    """The outcome of `check_message`: problems block sending, warnings do not."""

    problems: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        """Return whether the message may be sent."""
        return not self.problems

    def format(self) -> str:
        """Return the findings, one per line, and a verdict line."""
        lines = [f"problem  {finding}" for finding in self.problems]
        lines += [f"warning  {finding}" for finding in self.warnings]
        counted = _plural(len(self.warnings), "warning")
        if self.problems:
            problems = _plural(len(self.problems), "problem")
            verdict = f"{problems}, {counted} — fix them before sending"
        elif self.warnings:
            verdict = f"OK: no problems, {counted}"
        else:
            verdict = "OK: no problems"
        return "\n".join([*lines, verdict])


def check_message(
    html: str,
    text: str,
    eml: bytes,
    *,
    subject: str,
    preheader: str,
    article_titles: Sequence[str],
    issue_date: date,
    today: date,
    sending: bool = False,
) -> CheckReport:
    """Check one composed message as the sample subscriber gets it; return every finding."""
    page = _parse_html(html)
    message = email.message_from_bytes(eml, policy=policy.default)
    problems: list[Finding] = []
    warnings: list[Finding] = []

    size_problems, size_warnings = _check_size(message, page)
    problems += size_problems
    warnings += size_warnings
    preheader_problems, preheader_warnings = _check_preheader(preheader, page)
    problems += preheader_problems
    warnings += preheader_warnings
    if len(subject) > SUBJECT_MAX_CHARS:
        warnings.append(
            Finding(
                "subject-long",
                f"the subject is {len(subject)} characters ({_excerpt(subject)!r}); "
                f"phones cut it off after about {SUBJECT_MAX_CHARS}: shorten it",
            )
        )
    problems += _check_images(page)
    problems += _check_links(page)
    warnings += _check_link_texts(page)
    problems += _check_markers(html=html, text=text, subject=subject)
    problems += _check_unsubscribe(message, page)
    problems += _check_text(message, text, page, article_titles)
    if sending and issue_date < today:
        warnings.append(
            Finding(
                "date-past",
                f"the issue is dated {issue_date.isoformat()}, before today "
                f"({today.isoformat()}); update the issue's date if this is a new issue",
            )
        )
    return CheckReport(problems=tuple(problems), warnings=tuple(warnings))


def check_composed(
    composed: Composed, *, today: date | None = None, sending: bool = False
) -> CheckReport:
    """Check an issue composed for the sample subscriber; `today` defaults to the real date."""
    report = check_message(
        composed.html,
        composed.text,
        composed.eml,
        subject=composed.rendered.subject,
        preheader=composed.rendered.preheader,
        article_titles=composed.rendered.article_titles,
        issue_date=composed.issue.date,
        today=today or date.today(),
        sending=sending,
    )
    if composed.rendered.web_url:
        from .web import published_link_findings

        found = published_link_findings(
            composed.html, composed.text, composed.rendered.web_url, composed.issue.path
        )
        report = CheckReport(report.problems + tuple(found), report.warnings)
    return report


def check_issue(
    issue_dir: Path,
    factory_for: FactoryMaker,
    *,
    agenda_path: Path | None = None,
    templates_dir: Path | None = None,
    today: date | None = None,
    sending: bool = False,
    web_url: str | None = None,
) -> CheckReport:
    """Compose an issue in memory for the sample subscriber, like compose, and check it."""
    composed = compose_issue(
        issue_dir,
        factory_for,
        agenda_path=agenda_path,
        templates_dir=templates_dir,
        web_url=web_url,
    )
    return check_composed(composed, today=today, sending=sending)


@dataclass
class _Element:
    line: int
    attrs: dict[str, str | None]
    text: str = ""


class _PageParser(HTMLParser):
    """Collect what the checks need from an HTML document in one pass."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[_Element] = []
        self.links: list[_Element] = []
        self.targets: set[str] = set()  # id and <a name> values, for #fragment links
        self.style_text: list[str] = []
        self.body_text: list[str] = []
        self._skip = 0  # depth inside <head>, <style>, <script>: not visible text
        self._in_style = False
        self._link: _Element | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        line = self.getpos()[0]
        for name in ("id", "name") if tag == "a" else ("id",):
            value = attributes.get(name)
            if value:
                self.targets.add(value)
        if tag == "img":
            self.images.append(_Element(line, attributes))
        elif tag == "a":
            self._link = _Element(line, attributes)
            self.links.append(self._link)
        elif tag in ("head", "style", "script", "title"):
            self._skip += 1
            self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._link = None
        elif tag in ("head", "style", "script", "title") and self._skip:
            self._skip -= 1
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style_text.append(data)
        if self._skip:
            return
        self.body_text.append(data)
        if self._link is not None:
            self._link.text += data


@dataclass(frozen=True)
class _Page:
    images: tuple[_Element, ...]
    links: tuple[_Element, ...]
    targets: frozenset[str]
    style_bytes: int
    text: str  # visible text, whitespace collapsed


def _parse_html(html: str) -> _Page:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return _Page(
        images=tuple(parser.images),
        links=tuple(parser.links),
        targets=frozenset(parser.targets),
        style_bytes=len("".join(parser.style_text).encode("utf-8")),
        text=_normalise(" ".join(parser.body_text)),
    )


def _check_size(message: EmailMessage, page: _Page) -> tuple[list[Finding], list[Finding]]:
    problems: list[Finding] = []
    warnings: list[Finding] = []
    html_part = _find_part(message, "text/html")
    if html_part is None:
        problems.append(
            Finding(
                "html-missing",
                "the message has no text/html part; compose the message with its HTML version",
            )
        )
    else:
        size = _encoded_size(html_part)
        what = (
            f"the text/html part is {size:,} bytes as encoded in the message; Gmail clips "
            "above ~102 KB and hides the rest, including the unsubscribe link"
        )
        if size >= HTML_SIZE_LIMIT:
            problems.append(
                Finding("size", f"{what}: shorten the articles or the agenda to below 100,000")
            )
        elif size >= HTML_SIZE_WARNING:
            warnings.append(
                Finding("size", f"{what}: this issue is close, keep it below {HTML_SIZE_WARNING:,}")
            )
    if page.style_bytes >= STYLE_SIZE_LIMIT:
        problems.append(
            Finding(
                "style-size",
                f"the HTML has {page.style_bytes:,} bytes of <style> text; Gmail drops all of it "
                f"from {STYLE_SIZE_LIMIT:,} bytes on: trim the template's mj-style rules",
            )
        )
    return problems, warnings


def _check_preheader(preheader: str, page: _Page) -> tuple[list[Finding], list[Finding]]:
    if not preheader.strip():
        return [
            Finding(
                "preheader-missing",
                "the issue has no preheader; inboxes then show the first text of the email: "
                "set the issue's preheader",
            )
        ], []
    problems: list[Finding] = []
    if _normalise(preheader) not in page.text:
        problems.append(
            Finding(
                "preheader-missing",
                f"the preheader {_excerpt(preheader)!r} is not in the HTML; "
                "check that the template renders it (mj-preview)",
            )
        )
    warnings: list[Finding] = []
    if len(preheader) > PREHEADER_MAX_CHARS:
        warnings.append(
            Finding(
                "preheader-long",
                f"the preheader is {len(preheader)} characters; inboxes show about "
                f"{PREHEADER_MAX_CHARS} at most: shorten it",
            )
        )
    return problems, warnings


def _check_images(page: _Page) -> list[Finding]:
    findings: list[Finding] = []
    for image in page.images:
        src = (image.attrs.get("src") or "").strip()
        where = f"HTML line {image.line}: <img src={_excerpt(src)!r}>"
        if "alt" not in image.attrs:
            findings.append(
                Finding(
                    "img-alt",
                    f"{where} has no alt attribute; describe the image in alt, "
                    'or use alt="" if it is decoration',
                )
            )
        if not src.lower().startswith("https://") or len(src) <= len("https://"):
            findings.append(
                Finding(
                    "img-url",
                    f"{where} is not an absolute https URL; mail clients cannot load it: "
                    "host the image on the website and use its full https:// address",
                )
            )
    return findings


def _check_links(page: _Page) -> list[Finding]:
    findings: list[Finding] = []
    for link in page.links:
        if "href" not in link.attrs:
            continue  # <a name="..."> is a target, not a link
        href = (link.attrs["href"] or "").strip()
        where = f"HTML line {link.line}: link {_excerpt(_collapse(link.text))!r}"
        if not href:
            findings.append(
                Finding("link-empty", f"{where} has an empty href; give it the address it means")
            )
        elif href.startswith("#"):
            if href[1:] not in page.targets:
                findings.append(
                    Finding(
                        "link-anchor",
                        f"{where} points to {href!r}, but no element has id={href[1:]!r}; "
                        "fix the anchor or link to a full URL",
                    )
                )
        elif not _ALLOWED_LINK_RE.match(href):
            findings.append(
                Finding(
                    "link-scheme",
                    f"{where} has href={_excerpt(href)!r}, which is not http(s) or mailto; "
                    "links in e-mail must be absolute https://, http:// or mailto: addresses",
                )
            )
    return findings


def _check_link_texts(page: _Page) -> list[Finding]:
    findings: list[Finding] = []
    for link in page.links:
        label = _collapse(link.text).strip(" .:!…»›→").casefold()
        if "href" in link.attrs and label in _VAGUE_LINK_TEXTS:
            findings.append(
                Finding(
                    "link-vague",
                    f"HTML line {link.line}: the link text {_collapse(link.text)!r} does not say "
                    "where it goes; screen readers read links out of context: write what the "
                    "reader gets, e.g. 'Aanmelden voor de masterclass op 31 mei'",
                )
            )
    return findings


def _check_markers(*, html: str, text: str, subject: str) -> list[Finding]:
    findings: list[Finding] = []
    for name, content in (("subject", subject), ("HTML", html), ("plain text", text)):
        matches = list(_TEMPLATE_MARKER_RE.finditer(content))
        if not matches:
            continue
        first = matches[0].start()
        line = content.count("\n", 0, first) + 1
        where = name if name == "subject" else f"{name} line {line}"
        snippet = content[first : first + 40].splitlines()[0]
        findings.append(
            Finding(
                "template-marker",
                f"{where}: leftover template marker {snippet!r} "
                f"({len(matches)} in the {name}); the subscriber would see it literally: "
                "fix the template or the content that produced it",
            )
        )
    return findings


def _check_unsubscribe(message: EmailMessage, page: _Page) -> list[Finding]:
    findings: list[Finding] = []
    if not any(
        _UNSUBSCRIBE_RE.search(link.text) or _UNSUBSCRIBE_RE.search(link.attrs.get("href") or "")
        for link in page.links
    ):
        findings.append(
            Finding(
                "unsubscribe-missing",
                "the HTML has no unsubscribe link (text or address with 'afmelden' or "
                "'unsubscribe'); the law and the mailbox providers require one: "
                "keep the footer's afmelden link in the template",
            )
        )
    if not str(message.get("List-Unsubscribe", "")).strip():
        findings.append(
            Finding(
                "unsubscribe-missing",
                "the message has no List-Unsubscribe header; Gmail and Yahoo require it for "
                "bulk mail: set the unsubscribe address in the settings",
            )
        )
    return findings


def _check_text(
    message: EmailMessage, text: str, page: _Page, article_titles: Sequence[str]
) -> list[Finding]:
    parts = list(message.iter_parts()) if message.is_multipart() else []
    if message.get_content_type() != "multipart/alternative" or not parts:
        return [
            Finding(
                "text-missing",
                f"the message is {message.get_content_type()}, not multipart/alternative "
                "with a text/plain and a text/html part; compose it with both",
            )
        ]
    if parts[0].get_content_type() != "text/plain":
        return [
            Finding(
                "text-missing",
                f"the first part of the message is {parts[0].get_content_type()}, not text/plain; "
                "clients show the last part they understand, so text/plain must come first",
            )
        ]
    if not text.strip():
        return [Finding("text-missing", "the plain-text version is empty; render it as well")]
    findings: list[Finding] = []
    plain = _normalise(text)
    for title in article_titles:
        wanted = _normalise(title)
        in_html, in_text = wanted in page.text, wanted in plain
        if in_html != in_text:
            has, lacks = ("HTML", "plain text") if in_html else ("plain text", "HTML")
            findings.append(
                Finding(
                    "text-mismatch",
                    f"the article {title!r} is in the {has} but not in the {lacks}; "
                    "both versions must carry the same articles: check the templates",
                )
            )
    return findings


def _find_part(message: EmailMessage, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type and not part.is_multipart():
            return part
    return None


def _encoded_size(part: Message) -> int:
    """Return the size of a part's body as it stands in the message, transfer encoding included."""
    payload = part.get_payload(decode=False)
    assert isinstance(payload, str)
    # The bytes parser keeps non-ASCII bytes as surrogate escapes; undo that to count bytes.
    return len(payload.encode("ascii", "surrogateescape"))


def _normalise(value: str) -> str:
    return " ".join(value.split()).casefold()


def _collapse(value: str) -> str:
    return " ".join(value.split())


def _excerpt(value: str) -> str:
    return value if len(value) <= _EXCERPT_CHARS else value[: _EXCERPT_CHARS - 1] + "…"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
