"""The pre-send lint: what in a composed message would go wrong in thousands of inboxes.

`check_message` is a pure function over what compose produces for the sample subscriber
(merge markers already replaced): the HTML, the plain text and the bytes of the MIME message.
`check_composed` runs it on a composed issue and `check_issue` composes one first; the
`check` command and `send` use them. Problems block `send`; warnings are shown and do not.
"""

from __future__ import annotations

import email
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from email import policy
from email.message import EmailMessage, Message
from pathlib import Path

from nieuwsbrief import clock
from nieuwsbrief.compose import (
    SIZE_WARNING_BYTES,
    Composed,
    FactoryMaker,
    compose_issue,
    encoded_size,
    near_clipping,
)
from nieuwsbrief.htmltext import VisibleTextParser
from nieuwsbrief.i18n import _, ngettext
from nieuwsbrief.model import Finding, Issue, SourceMap
from nieuwsbrief.render import TEXT_TEMPLATE

__all__ = ["CheckReport", "Finding", "check_composed", "check_issue", "check_message"]

# Gmail clips a message whose encoded HTML exceeds ~102 KB (EMAIL-STANDARDS 3.1); stay clear of it.
HTML_SIZE_LIMIT = 100_000
# Gmail drops all <style> content beyond 16 KB (EMAIL-STANDARDS 3.2).
STYLE_SIZE_LIMIT = 16_384
PREHEADER_MAX_CHARS = 100
SUBJECT_MAX_CHARS = 70

_TEMPLATE_MARKER_RE = re.compile(r"\{\{|\{%|%%nb:")
_UNSUBSCRIBE_RE = re.compile(r"afmeld|uitschrijv|unsubscrib|opt-?out", re.IGNORECASE)
_ALLOWED_LINK_RE = re.compile(r"(https?://|mailto:)\S", re.IGNORECASE)
_EXCERPT_CHARS = 60
# An issue dated further from today than this is probably a typo in its year or month.
DATE_FAR_DAYS = 62
# Link texts that do not say where the link goes; screen readers list links out of context.
_VAGUE_LINK_TEXTS = frozenset(
    {
        "klik hier", "klik", "hier", "lees meer", "lees verder", "meer", "meer info",
        "meer informatie", "verder", "link", "deze link", "click here", "here", "read more",
        "more",
    }
)  # fmt: skip


@dataclass(frozen=True)
class CheckReport:
    """The outcome of `check_message`: problems block sending, warnings do not."""

    problems: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()
    notes: tuple[Finding, ...] = ()  # for information only

    @property
    def ok(self) -> bool:
        """Return whether the message may be sent."""
        return not self.problems

    def format(self) -> str:
        """Return the findings, one per line, and a verdict line."""
        lines = [_("problem  {finding}").format(finding=f) for f in self.problems]
        lines += [_("warning  {finding}").format(finding=f) for f in self.warnings]
        lines += [_("info     {finding}").format(finding=f) for f in self.notes]
        warnings = len(self.warnings)
        counted = ngettext("{count} warning", "{count} warnings", warnings).format(count=warnings)
        if self.problems:
            count = len(self.problems)
            problems = ngettext("{count} problem", "{count} problems", count).format(count=count)
            verdict = _("{problems}, {warnings} — fix them before sending").format(
                problems=problems, warnings=counted
            )
        elif self.warnings:
            verdict = _("OK: no problems, {warnings}").format(warnings=counted)
        else:
            verdict = _("OK: no problems")
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
    source_map: SourceMap | None = None,
    origins: Mapping[str, str] | None = None,
) -> CheckReport:
    """Check one composed message as the sample subscriber gets it; return every finding.

    `source_map` says which author's file and line each element comes from; `origins` where
    the subject, preheader and date are set ("issue.yaml:2"). Without them, findings name
    the HTML line only.
    """
    page = _parse_html(html, source_map or SourceMap())
    at = dict(origins or {})
    message = email.message_from_bytes(eml, policy=policy.default)
    problems: list[Finding] = []
    warnings: list[Finding] = []

    size_problems, size_warnings = _check_size(message, page)
    problems += size_problems
    warnings += size_warnings
    preheader_problems, preheader_warnings = _check_preheader(preheader, page, at)
    problems += preheader_problems
    warnings += preheader_warnings
    if len(subject) > SUBJECT_MAX_CHARS:
        warnings.append(
            Finding(
                "subject-long",
                (
                    _(
                        "the subject is {length} characters ({subject!r}); phones cut it off "
                        "after about {SUBJECT_MAX_CHARS}: shorten it"
                    ).format(
                        length=len(subject),
                        subject=_excerpt(subject),
                        SUBJECT_MAX_CHARS=SUBJECT_MAX_CHARS,
                    )
                ),
                at.get("subject", ""),
            )
        )
    problems += _check_images(page)
    problems += _check_links(page)
    warnings += _check_link_texts(page)
    problems += _check_markers(html=html, text=text, subject=subject, at=at)
    problems += _check_unsubscribe(message, page)
    problems += _check_text(message, text, page, article_titles)
    if issue_date < today:
        days = (today - issue_date).days
        ago = ", " + _("{days} days ago").format(days=days) if days > DATE_FAR_DAYS else ""
        advice = (
            _("if you are sending a new issue, update its 'date:'")
            if sending
            else _("if this is a new issue, update its 'date:'")
        )
        warnings.append(
            Finding(
                "date-past",
                _("the issue is dated {date}, before today ({today}{ago}); {advice}").format(
                    date=issue_date.isoformat(), today=today.isoformat(), ago=ago, advice=advice
                ),
                at.get("date", ""),
            )
        )
    return CheckReport(problems=tuple(problems), warnings=tuple(warnings))


def check_composed(
    composed: Composed, *, today: date | None = None, sending: bool = False
) -> CheckReport:
    """Check an issue composed for the sample subscriber; `today` defaults to the real date.

    Besides the message itself: what rendering found in the author's files (raw HTML, stray
    template markers), and what an editor would ask about dates and events.
    """
    issue, rendered = composed.issue, composed.rendered
    today = today or clock.today()
    origins = {key: f"{issue.issue_file}:{line}" for key, line in issue.lines.items()}
    origins["issue"] = f"{issue.issue_file}:1"
    message = check_message(
        composed.html,
        composed.text,
        composed.eml,
        subject=rendered.subject,
        preheader=rendered.preheader,
        article_titles=rendered.article_titles,
        issue_date=issue.date,
        today=today,
        sending=sending,
        source_map=rendered.source_map,
        origins=origins,
    )
    problems = list(rendered.problems)
    if any(f.code == "template-marker" for f in rendered.problems):
        # The same markers, found at their source line: do not report them twice.
        problems += [f for f in message.problems if f.code != "template-marker"]
    else:
        problems += message.problems
    if rendered.web_url:
        from nieuwsbrief.web import published_link_findings

        problems += published_link_findings(
            composed.html, composed.text, rendered.web_url, issue.path
        )
    warnings, notes = _check_content(issue, today, origins)
    located = _Locator(composed)
    return CheckReport(
        problems=tuple(located(f) for f in problems),
        warnings=tuple(
            located(f) for f in (*issue.warnings, *rendered.warnings, *message.warnings, *warnings)
        ),
        notes=tuple(notes),
    )


class _Locator:
    """Give a finding that names no file the file that decides it (a template, the issue)."""

    def __init__(self, composed: Composed) -> None:
        html_template = composed.rendered.source_map.template
        text_template = str(Path(html_template).with_name(TEXT_TEMPLATE)) if html_template else ""
        self.by_code = {
            "html-missing": html_template,
            "style-size": html_template,
            "unsubscribe-missing": html_template,
            "template-marker": html_template,
            "text-missing": text_template,
            "text-mismatch": text_template,
            "size": str(composed.issue.path),
        }

    def __call__(self, finding: Finding) -> Finding:
        if finding.where or not self.by_code.get(finding.code):
            return finding
        return replace(finding, where=self.by_code[finding.code])


def _check_content(
    issue: Issue, today: date, origins: Mapping[str, str]
) -> tuple[list[Finding], list[Finding]]:
    """Return the editor's warnings and notes about the issue's date and its events."""
    warnings: list[Finding] = []
    notes: list[Finding] = []
    date_at = origins.get("date", origins["issue"])
    if (issue.date - today).days > DATE_FAR_DAYS:
        warnings.append(
            Finding(
                "date-far",
                _(
                    "the issue is dated {date}, {days} days after today ({today}); "
                    "check the year and month of 'date:'"
                ).format(
                    date=issue.date.isoformat(),
                    days=(issue.date - today).days,
                    today=today.isoformat(),
                ),
                date_at,
            )
        )
    if not issue.agenda:
        last = max((e.date for e in issue.all_events), default=None)
        latest = (
            " " + _("(the last one is on {date})").format(date=last.isoformat()) if last else ""
        )
        warnings.append(
            Finding(
                "no-events",
                _(
                    "no event in the agenda is on or after the issue date {date}{latest}, "
                    "so the e-mail's agenda is empty; check 'date:' or add events"
                ).format(date=issue.date.isoformat(), latest=latest),
                date_at,
            )
        )
    for article in issue.articles:
        event = article.event
        if event is None:
            continue
        where = f"{article.path}:{article.event_line}"
        if event.date < issue.date:
            warnings.append(
                Finding(
                    "event-before-issue",
                    _(
                        "the event '{id}' is on {date}, before the issue date {issue_date}; "
                        "readers would be invited to something that is over: link a later "
                        "event or remove the 'event:' line"
                    ).format(
                        id=event.id, date=event.date.isoformat(), issue_date=issue.date.isoformat()
                    ),
                    where,
                    _("agenda {where}").format(where=event.source),
                )
            )
        elif event.date < today:
            warnings.append(
                Finding(
                    "event-past",
                    _(
                        "the event '{id}' was on {date}, before today ({today}): "
                        "link a later event or remove the 'event:' line"
                    ).format(id=event.id, date=event.date.isoformat(), today=today.isoformat()),
                    where,
                    _("agenda {where}").format(where=event.source),
                )
            )
    in_email = {e.id for e in issue.agenda} | {a.event.id for a in issue.articles if a.event}
    for event in issue.all_events:
        if event.date >= today and event.id not in in_email:
            notes.append(
                Finding(
                    "event-unmentioned",
                    _(
                        "the event '{id}' on {date} is in neither the e-mail's agenda (it is "
                        "before the issue date {issue_date}) nor an article; link it from an "
                        "article if readers should hear of it"
                    ).format(
                        id=event.id, date=event.date.isoformat(), issue_date=issue.date.isoformat()
                    ),
                    event.source,
                )
            )
    return warnings, notes


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
    where: str = ""  # the author's file:line, from the source map

    @property
    def detail(self) -> str:
        return _("HTML line {line}").format(line=self.line)


class _PageParser(VisibleTextParser):
    """Collect what the checks need from an HTML document in one pass."""

    def __init__(self, source_map: SourceMap) -> None:
        super().__init__()
        self.source_map = source_map
        self.tag_count = 0  # start tags so far: the index the source map uses
        self.images: list[_Element] = []
        self.links: list[_Element] = []
        self.targets: set[str] = set()  # id and <a name> values, for #fragment links
        self.style_text: list[str] = []
        self._in_style = False
        self._link: _Element | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        line = self.getpos()[0]
        index, self.tag_count = self.tag_count, self.tag_count + 1
        for name in ("id", "name") if tag == "a" else ("id",):
            value = attributes.get(name)
            if value:
                self.targets.add(value)
        if tag in ("img", "a"):
            value = (attributes.get("src" if tag == "img" else "href") or "").strip()
            element = _Element(line, attributes, where=self.source_map.locate(index, value))
        if tag == "img":
            self.images.append(element)
        elif tag == "a":
            self._link = element
            self.links.append(self._link)
        elif tag == "style":
            self._in_style = True
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._link = None
        elif tag == "style":
            self._in_style = False
        super().handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style_text.append(data)
        if self.hidden:
            return
        super().handle_data(data)
        if self._link is not None:
            self._link.text += data


@dataclass(frozen=True)
class _Page:
    images: tuple[_Element, ...]
    links: tuple[_Element, ...]
    targets: frozenset[str]
    style_bytes: int
    text: str  # visible text, whitespace collapsed


def _parse_html(html: str, source_map: SourceMap) -> _Page:
    parser = _PageParser(source_map)
    parser.feed(html)
    parser.close()
    return _Page(
        images=tuple(parser.images),
        links=tuple(parser.links),
        targets=frozenset(parser.targets),
        style_bytes=len("".join(parser.style_text).encode("utf-8")),
        text=_normalise(" ".join(parser.visible)),
    )


def _check_size(message: EmailMessage, page: _Page) -> tuple[list[Finding], list[Finding]]:
    problems: list[Finding] = []
    warnings: list[Finding] = []
    html_part = _find_part(message, "text/html")
    if html_part is None:
        problems.append(
            Finding(
                "html-missing",
                (_("the message has no text/html part; compose the message with its HTML version")),
            )
        )
    else:
        size = encoded_size(html_part)
        what = _(
            "the text/html part is {size:,} bytes as encoded in the message; Gmail "
            "clips above ~102 KB and hides the rest, including the unsubscribe link"
        ).format(size=size)
        if size >= HTML_SIZE_LIMIT:
            problems.append(
                Finding(
                    "size",
                    _("{what}: shorten the articles or the agenda to below 100,000").format(
                        what=what
                    ),
                )
            )
        elif near_clipping(size):
            warnings.append(
                Finding(
                    "size",
                    _("{what}: this issue is close, keep it below {limit:,}").format(
                        what=what, limit=SIZE_WARNING_BYTES
                    ),
                )
            )
    if page.style_bytes >= STYLE_SIZE_LIMIT:
        problems.append(
            Finding(
                "style-size",
                (
                    _(
                        "the HTML has {style_bytes:,} bytes of <style> text; Gmail drops all of "
                        "it from {STYLE_SIZE_LIMIT:,} bytes on: trim the template's mj-style "
                        "rules"
                    ).format(style_bytes=page.style_bytes, STYLE_SIZE_LIMIT=STYLE_SIZE_LIMIT)
                ),
            )
        )
    return problems, warnings


def _check_preheader(
    preheader: str, page: _Page, at: Mapping[str, str]
) -> tuple[list[Finding], list[Finding]]:
    if not preheader.strip():
        return [
            Finding(
                "preheader-missing",
                _(
                    "the issue has no preheader; inboxes then show the first text of the email: "
                    "add a line 'preheader: ...' (one sentence on what this issue brings)"
                ),
                at.get("issue", ""),
            )
        ], []
    problems: list[Finding] = []
    if _normalise(preheader) not in page.text:
        problems.append(
            Finding(
                "preheader-missing",
                (
                    _(
                        "the preheader {preheader!r} is not in the HTML; check that the template "
                        "renders it (mj-preview)"
                    ).format(preheader=_excerpt(preheader))
                ),
                at.get("preheader", ""),
            )
        )
    warnings: list[Finding] = []
    if len(preheader) > PREHEADER_MAX_CHARS:
        warnings.append(
            Finding(
                "preheader-long",
                (
                    _(
                        "the preheader is {length} characters; inboxes show about "
                        "{PREHEADER_MAX_CHARS} at most: shorten it"
                    ).format(length=len(preheader), PREHEADER_MAX_CHARS=PREHEADER_MAX_CHARS)
                ),
                at.get("preheader", ""),
            )
        )
    return problems, warnings


def _check_images(page: _Page) -> list[Finding]:
    findings: list[Finding] = []
    for image in page.images:
        src = (image.attrs.get("src") or "").strip()
        what = _("the image {src!r}").format(src=_excerpt(src))
        if "alt" not in image.attrs:
            findings.append(
                Finding(
                    "img-alt",
                    (
                        _(
                            "{what} has no alt text; describe "
                            "it between the brackets: ![Deelnemers "
                            'aan de cursus](https://...), or use alt="" in a template if it is '
                            "decoration"
                        ).format(what=what)
                    ),
                    image.where,
                    image.detail,
                )
            )
        if not src.lower().startswith("https://") or len(src) <= len("https://"):
            findings.append(
                Finding(
                    "img-url",
                    (
                        _(
                            "{what} is not an absolute https URL; mail clients cannot load it: put "
                            "the image on the website and use its full https:// address"
                        ).format(what=what)
                    ),
                    image.where,
                    image.detail,
                )
            )
    return findings


def _check_links(page: _Page) -> list[Finding]:
    findings: list[Finding] = []
    for link in page.links:
        if "href" not in link.attrs:
            continue  # <a name="..."> is a target, not a link
        href = (link.attrs["href"] or "").strip()
        what = _("the link {text!r}").format(text=_excerpt(_collapse(link.text)))
        if not href:
            findings.append(
                Finding(
                    "link-empty",
                    (_("{what} has no address; write it as [text](https://...)").format(what=what)),
                    link.where,
                    link.detail,
                )
            )
        elif href.startswith("#"):
            if href[1:] not in page.targets:
                findings.append(
                    Finding(
                        "link-anchor",
                        (
                            _(
                                "{what} points to {href!r}, but no "
                                "element has id={value!r}; fix the "
                                "anchor or link to a full URL"
                            ).format(what=what, href=href, value=href[1:])
                        ),
                        link.where,
                        link.detail,
                    )
                )
        elif not _ALLOWED_LINK_RE.match(href):
            findings.append(
                Finding(
                    "link-scheme",
                    (
                        _(
                            "{what} goes to {href!r}, which is not http(s) or mailto; links in "
                            "e-mail must be absolute https://, http:// or mailto: addresses"
                        ).format(what=what, href=_excerpt(href))
                    ),
                    link.where,
                    link.detail,
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
                    (
                        _(
                            "the link text {text!r} does not "
                            "say where it goes; screen readers read "
                            "links out of context: write what "
                            "the reader gets, e.g. 'Aanmelden voor "
                            "de masterclass op 31 mei'"
                        ).format(text=_collapse(link.text))
                    ),
                    link.where,
                    link.detail,
                )
            )
    return findings


def _check_markers(*, html: str, text: str, subject: str, at: Mapping[str, str]) -> list[Finding]:
    findings: list[Finding] = []
    for name, content in (("subject", subject), ("HTML", html), ("plain text", text)):
        matches = list(_TEMPLATE_MARKER_RE.finditer(content))
        if not matches:
            continue
        first = matches[0].start()
        line = content.count("\n", 0, first) + 1
        label = {"subject": _("subject"), "HTML": "HTML", "plain text": _("plain text")}[name]
        detail = (
            label if name == "subject" else _("{name} line {line}").format(name=label, line=line)
        )
        snippet = content[first : first + 40].splitlines()[0]
        findings.append(
            Finding(
                "template-marker",
                _(
                    "leftover template marker {snippet!r} ({count} in the {name}); the subscriber "
                    "would see it literally: fix the template or the content that produced it"
                ).format(snippet=snippet, count=len(matches), name=label),
                at.get("subject", "") if name == "subject" else "",
                detail,
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
                (
                    _(
                        "the HTML has no unsubscribe link (text or address with 'afmelden' or "
                        "'unsubscribe'); the law and the mailbox providers require one: keep the "
                        "footer's afmelden link in the template"
                    )
                ),
            )
        )
    if not str(message.get("List-Unsubscribe", "")).strip():
        findings.append(
            Finding(
                "unsubscribe-missing",
                (
                    _(
                        "the message has no List-Unsubscribe header; Gmail and Yahoo require it "
                        "for bulk mail: set the unsubscribe address in the settings"
                    )
                ),
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
                (
                    _(
                        "the message is {get_content_type}, not multipart/alternative with a "
                        "text/plain and a text/html part; compose it with both"
                    ).format(get_content_type=message.get_content_type())
                ),
            )
        ]
    if parts[0].get_content_type() != "text/plain":
        return [
            Finding(
                "text-missing",
                (
                    _(
                        "the first part of the message is {get_content_type}, not text/plain; "
                        "clients show the last part they understand, so text/plain must come "
                        "first"
                    ).format(get_content_type=parts[0].get_content_type())
                ),
            )
        ]
    if not text.strip():
        return [Finding("text-missing", _("the plain-text version is empty; render it as well"))]
    findings: list[Finding] = []
    plain = _normalise(text)
    for title in article_titles:
        wanted = _normalise(title)
        in_html, in_text = wanted in page.text, wanted in plain
        if in_html != in_text:
            has, lacks = ("HTML", _("plain text")) if in_html else (_("plain text"), "HTML")
            findings.append(
                Finding(
                    "text-mismatch",
                    (
                        _(
                            "the article {title!r} is in the {has} but not in the {lacks}; both "
                            "versions must carry the same articles: check the templates"
                        ).format(title=title, has=has, lacks=lacks)
                    ),
                )
            )
    return findings


def _find_part(message: EmailMessage, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type and not part.is_multipart():
            return part
    return None


def _normalise(value: str) -> str:
    return " ".join(value.split()).casefold()


def _collapse(value: str) -> str:
    return " ".join(value.split())


def _excerpt(value: str) -> str:
    return value if len(value) <= _EXCERPT_CHARS else value[: _EXCERPT_CHARS - 1] + "…"
