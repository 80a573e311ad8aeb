"""Render an Issue once for everybody: Jinja2 -> MJML -> HTML (premailer) and plain text.

Personal values (greeting, unsubscribe link, merge fields) are rendered as merge markers; the
message builder splices them in per recipient, so MJML and premailer run once per issue.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
import sys
import textwrap
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
from babel.dates import format_date
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

from nieuwsbrief.content.images import (
    EMAIL_COLUMN_WIDTH,
    ProcessedImage,
    is_local,
    local_image_path,
    process_image,
)
from nieuwsbrief.content.issue import read_text
from nieuwsbrief.errors import ContentError, TemplateError
from nieuwsbrief.i18n import _
from nieuwsbrief.model import (
    Brand,
    Event,
    Finding,
    Issue,
    RenderedIssue,
    SourceMap,
    merge_marker,
)
from nieuwsbrief.templating import template_loader, template_path
from nieuwsbrief.weblinks import IMAGE_DIR, event_ics, issue_url

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"
TEXT_WIDTH = 72
# Invisible characters after the preheader keep clients from filling the inbox preview with
# the first words of the body (zero-width non-joiner + combining grapheme joiner + nbsp).
PREHEADER_SPACER = "\u034f\u200c\u00a0" * 40

_log_silenced = False


# --- Markdown ---------------------------------------------------------------------------

# CommonMark with raw HTML disabled: staff's HTML is shown as text, never passed through.
_markdown = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")


def _renumber_headings(tokens: Sequence[Token], top_level: int) -> None:
    """Make the heading levels used consecutive from `top_level`: # and ### become h3 and h4."""
    levels = sorted({int(t.tag[1]) for t in tokens if t.type == "heading_open"})
    # Screen readers navigate by level; a skipped level (h3 -> h5) reads as a missing section.
    new_level = {level: min(6, top_level + rank) for rank, level in enumerate(levels)}
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{new_level[int(token.tag[1])]}"


def _render_image(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    if alt.strip():
        token.attrSet("alt", alt)
    else:
        # ![](url) is a content image without a description, not a decoration: leave alt
        # out so `check` reports it, instead of hiding the omission behind alt="".
        token.attrs.pop("alt", None)
    return self.renderToken(tokens, idx, options, env)


_markdown.add_render_rule("image", _render_image)


def _harden(tokens: Sequence[Token]) -> None:
    """Give the header cells of Markdown tables a scope, for screen readers."""
    for token in tokens:
        if token.type == "th_open":
            token.attrSet("scope", "col")


# (src as written, its line in the Markdown) -> (src to use, width, height or None)
ImageResolver = Callable[[str, int | None], tuple[str, int, int | None]]


class ImageLinker:
    """Give every image an address and a size: local files via the web edition's img/ folder.

    `base` is where img/ files are served ("https://.../nieuwsbrief/img/", or "../img/" on
    a site page); None when no web address is configured (then a local image is an error).
    """

    def __init__(self, base: str | None) -> None:
        self.base = base
        self.used: dict[str, ProcessedImage] = {}  # by file name, for the site builder

    def resolver(self, folder: Path, where: Path, first_line: int | None) -> ImageResolver:
        """Return the resolver for Markdown from `where` (lines counted from `first_line`)."""

        def resolve(src: str, line: int | None) -> tuple[str, int, int | None]:
            if not is_local(src):
                return src, EMAIL_COLUMN_WIDTH, None  # size unknown: Outlook needs a width
            file_line = first_line + line - 1 if first_line and line else first_line
            path = local_image_path(src, folder, where, file_line)
            image = process_image(path, src, where, file_line)
            if self.base is None:
                raise ContentError(
                    where,
                    _(
                        "image '{src}' is a file in the issue folder; e-mail can show it only "
                        "from the web edition: set NIEUWSBRIEF_WEB_URL and run nieuwsbrief publish"
                    ).format(src=src),
                    file_line,
                )
            self.used[image.name] = image
            return self.base + image.name, image.display_width, image.display_height

        return resolve


def _size_images(tokens: Sequence[Token], images: ImageResolver) -> None:
    """Give every image its final address and explicit width/height (Outlook needs them)."""
    for block in tokens:
        for child in block.children or []:
            if child.type != "image":
                continue
            line = block.map[0] + 1 if block.map else None
            src, width, height = images(str(child.attrGet("src") or ""), line)
            child.attrSet("src", src)
            child.attrSet("width", str(width))
            if height is not None:
                child.attrSet("height", str(height))


# Where a Markdown image or link comes from, carried through MJML and premailer, then removed.
SOURCE_ATTR = "data-nb-src"
_SOURCE_ATTR_RE = re.compile(rf'\s{SOURCE_ATTR}="[^"]*"')
# {{ subscriber.plaats }} in an article: a merge field, spliced in per recipient.
MERGE_FIELD_RE = re.compile(r"\{\{\s*subscriber\.([A-Za-z0-9_]+)\s*\}\}")
_LEFTOVER_RE = re.compile(r"\{\{.*?(\}\}|$)|\{%.*?(%\}|$)")
_RAW_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>")


@dataclass
class SourceNotes:
    """What rendering the author's Markdown found, each at its file:line."""

    problems: list[Finding]
    warnings: list[Finding]
    fields: dict[str, str]  # merge-field column -> where it is first used

    def __init__(self) -> None:
        self.problems, self.warnings, self.fields = [], [], {}


def _annotate(tokens: Sequence[Token], path: str, first_line: int, notes: SourceNotes) -> None:
    """Mark images and links with their file:line; note raw HTML, fields and stray markers."""
    for token in tokens:
        if token.type != "inline" or token.map is None:
            continue
        line = first_line + token.map[0]
        for child in token.children or []:
            if child.type in ("softbreak", "hardbreak"):
                line += 1
            elif child.type in ("image", "link_open"):
                child.attrSet(SOURCE_ATTR, f"{path}:{line}")
            elif child.type == "text":
                _note_text(child.content, f"{path}:{line}", notes)


def _note_text(text: str, where: str, notes: SourceNotes) -> None:
    for match in MERGE_FIELD_RE.finditer(text):
        notes.fields.setdefault(match[1].lower(), where)
    leftover = _LEFTOVER_RE.search(MERGE_FIELD_RE.sub("", text))
    if leftover:
        snippet = leftover[0][:40]
        notes.problems.append(
            Finding(
                "template-marker",
                (
                    _(
                        "'{snippet}' is not a merge field and would reach every "
                        "reader as typed; write {{{{ subscriber.<column> }}}} with a "
                        "column of the subscriber list, e.g. {{{{ "
                        "subscriber.voornaam }}}}, or remove the braces"
                    ).format(snippet=snippet)
                ),
                where,
            )
        )
    tag = _RAW_TAG_RE.search(text)
    if tag:
        notes.warnings.append(
            Finding(
                "raw-html",
                (
                    _(
                        "HTML such as {value!r} is not passed through: the e-mail "
                        "shows it as typed; use Markdown instead: **bold**, "
                        "*italic*, [link text](https://...)"
                    ).format(value=tag[0])
                ),
                where,
            )
        )


def _note_one_line(text: str, where: str, what: str, notes: SourceNotes) -> None:
    """Note a template marker in a one-line value (a title, the subject): no merge fields there."""
    leftover = _LEFTOVER_RE.search(text)
    if leftover:
        notes.problems.append(
            Finding(
                "template-marker",
                (
                    _(
                        "'{value}' in the {what} would reach every reader as typed; "
                        "merge fields such as {{{{ subscriber.voornaam }}}} work in "
                        "the article text only: remove the braces"
                    ).format(value=leftover[0][:40], what=what)
                ),
                where,
            )
        )


def _merge_fields(rendered: str) -> str:
    return MERGE_FIELD_RE.sub(lambda m: merge_marker(f"field_{m[1].lower()}"), rendered)


def markdown_html(
    source: str,
    top_heading: int = 3,
    images: ImageResolver | None = None,
    *,
    origin: tuple[str, int] | None = None,
    notes: SourceNotes | None = None,
) -> str:
    """Render Markdown to HTML; the biggest heading used becomes `top_heading` (h3).

    With `origin` (file, line of the first Markdown line), images and links carry their
    file:line in a data attribute that `strip_sources` removes after rendering.
    """
    tokens = _markdown.parse(source)
    _renumber_headings(tokens, top_heading)
    _harden(tokens)
    if images is not None:
        _size_images(tokens, images)
    if origin is not None:
        _annotate(tokens, origin[0], origin[1], notes if notes is not None else SourceNotes())
    return _merge_fields(str(_markdown.renderer.render(tokens, _markdown.options, {})))


class _SourceCollector(HTMLParser):
    """Count start tags the way check.py does and collect their source attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.count = 0
        self.tags: dict[int, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        where = dict(attrs).get(SOURCE_ATTR)
        if where:
            self.tags[self.count] = where
        self.count += 1


def strip_sources(html: str) -> tuple[str, dict[int, str]]:
    """Return the HTML without source attributes, and start-tag index -> file:line."""
    collector = _SourceCollector()
    collector.feed(html)
    collector.close()
    return _SOURCE_ATTR_RE.sub("", html), collector.tags


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    links: list[tuple[str, int]] = []
    for child in token.children or []:
        kind = child.type
        if kind in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "link_open":
            links.append((str(child.attrGet("href") or ""), len(parts)))
        elif kind == "link_close" and links:
            href, start = links.pop()
            label = "".join(parts[start:]).strip()
            target = href.removeprefix("mailto:")
            if href and not href.startswith("#") and target != label:
                parts.append(f" ({target})")
        elif kind == "image":
            alt = child.content.strip()
            src = str(child.attrGet("src") or "")
            parts.append(f"[Afbeelding: {alt}]" if alt else f"[Afbeelding: {src}]")
    return "".join(parts).strip()


def _wrap(text: str, first: str, rest: str) -> str:
    lines = []
    for index, paragraph_line in enumerate(text.split("\n")):
        lines.append(
            textwrap.fill(
                paragraph_line,
                TEXT_WIDTH,
                initial_indent=first if index == 0 else rest,
                subsequent_indent=rest,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)


def markdown_text(source: str) -> str:
    """Render Markdown as readable plain text: wrapped paragraphs, lists, links as URLs."""
    # Before wrapping, so a field is never split over two lines.
    return _markdown_text(_merge_fields(source))


def _markdown_text(source: str) -> str:
    tokens = _markdown.parse(source)
    blocks: list[str] = []
    tight_join: list[bool] = []  # per block: joined to the previous one without a blank line
    lists: list[list[int]] = []  # stack of [ordered(0/1), next number]
    pending_marker: str | None = None
    heading_level = 0
    quote_depth = 0
    list_starts = False
    for token in tokens:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            start = int(token.attrGet("start") or 1)
            if not lists:
                list_starts = True  # a new top-level list is set apart by a blank line
            lists.append([1 if kind == "ordered_list_open" else 0, start])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            ordered, number = lists[-1]
            pending_marker = f"{number}. " if ordered else "- "
            lists[-1][1] += 1
        elif kind == "heading_open":
            heading_level = int(token.tag[1])
        elif kind == "blockquote_open":
            quote_depth += 1
        elif kind == "blockquote_close":
            quote_depth -= 1
        elif kind == "hr":
            blocks.append("-" * 20)
            tight_join.append(False)
        elif kind in ("fence", "code_block"):
            indent = "    " * (len(lists) + 1)
            blocks.append(textwrap.indent(token.content.rstrip("\n"), indent))
            tight_join.append(False)
        elif kind == "inline":
            text = _inline_text(token)
            if heading_level:
                blocks.append(text.upper() if heading_level <= 3 else text)
                tight_join.append(False)
                heading_level = 0
                continue
            quote = "> " * quote_depth
            depth = len(lists)
            base = "   " * max(0, depth - 1)
            if pending_marker is not None:
                first, rest = base + pending_marker, base + " " * len(pending_marker)
                tight_join.append(not list_starts)
                pending_marker = None
                list_starts = False
            else:
                first = rest = ("   " * depth) if depth else ""
                tight_join.append(depth > 0)
            blocks.append(_wrap(text, quote + first, quote + rest))
    out: list[str] = []
    for index, block in enumerate(blocks):
        if index and not tight_join[index]:
            out.append("")
        out.append(block)
    return "\n".join(out)


# --- the issue --------------------------------------------------------------------------


@dataclass(frozen=True)
class _EventView:
    id: str
    type: str
    title: str
    city: str
    url: str
    date_long: str
    date_short: str
    time: str = ""  # "13:30–17:00", "13:30" or ""
    venue: str = ""
    address: str = ""
    ics_url: str = ""  # "Zet in mijn agenda"; "" without a web edition


def dutch_date(day: date) -> str:
    """Format a date the Dutch way: '7 mei 2012'."""
    return format_date(day, format="d MMMM y", locale="nl")


def time_label(event: Event) -> str:
    """Return an event's time the Dutch way: '13:30–17:00', '13:30' or '' (all day)."""
    if event.start_time is None:
        return ""
    start = event.start_time.strftime("%H:%M")
    return f"{start}–{event.end_time.strftime('%H:%M')}" if event.end_time else start


def _event_view(event: Event, ics_base: str | None = None) -> _EventView:
    return _EventView(
        id=event.id,
        type=event.type,
        title=event.title,
        city=event.city,
        url=event.url,
        date_long=dutch_date(event.date),
        date_short=dutch_date(event.date),
        time=time_label(event),
        venue=event.venue,
        address=event.address,
        ics_url=ics_base + event_ics(event) if ics_base is not None else "",
    )


class _MergeFields:
    """Template access to a subscriber's extra columns: {{ subscriber.organisatie }}."""

    def __getattr__(self, name: str) -> str:
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise AttributeError(name)
        return merge_marker(f"field_{name}")

    __getitem__ = __getattr__


def _environment(templates_dir: Path | None) -> jinja2.Environment:
    return jinja2.Environment(
        loader=template_loader(templates_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=lambda name: name is None or not name.endswith(".txt.j2"),
        keep_trailing_newline=True,
        auto_reload=True,
    )


def _template_position(exc: BaseException, default: str) -> tuple[str, int | None]:
    """Return the template file and line a Jinja2 runtime error happened on."""
    where: tuple[str, int | None] = (default, None)
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return where


def _render_template(
    env: jinja2.Environment, templates_dir: Path | None, name: str, context: dict[str, Any]
) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        path = exc.filename or str(template_path(templates_dir, exc.name or name))
        raise TemplateError(path, exc.message or _("syntax error"), exc.lineno) from None
    except jinja2.TemplateNotFound as exc:
        missing = template_path(templates_dir, str(exc.name))
        raise TemplateError(missing, _("template not found")) from None
    except jinja2.UndefinedError as exc:
        path, line = _template_position(exc, str(template_path(templates_dir, name)))
        raise TemplateError(
            path, _("{reason}; check the name in the template").format(reason=exc.message), line
        ) from None


def _silence_css_logging() -> None:
    """Keep premailer's and cssutils' warnings about email-only CSS away from the user."""
    global _log_silenced
    if _log_silenced:
        return
    import cssutils

    cssutils.log.setLevel(logging.CRITICAL)
    logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)
    logging.getLogger("premailer").setLevel(logging.CRITICAL)
    _log_silenced = True


def mjml_to_html(mjml_source: str, templates_dir: Path | None) -> str:
    """Render MJML to HTML (mjml-python); CSS not yet inlined."""
    from mjml import mjml2html

    try:
        # fonts={} : no web-font <link>; the font stack ends in safe system fonts.
        return str(mjml2html(mjml_source, disable_comments=True, fonts={}))
    except ValueError as exc:
        raise TemplateError(
            template_path(templates_dir, HTML_TEMPLATE),
            _("MJML could not be rendered: {reason}").format(reason=exc),
        ) from None


# Outlook's conditional comments: MJML's ghost tables and the Office settings live in them.
MSO_MARKERS = ("<!--[if mso", "<!--[if mso | IE]", "<![endif]-->", "<!--[if !mso")


class _ImportedOnUse(types.ModuleType):
    """Stands in for a module that is imported only when one of its attributes is used."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(self.__name__), name)


def _import_premailer() -> Any:
    """Import premailer without what it would load and never use here.

    premailer imports requests (with urllib3, chardet and charset_normalizer, a third of its
    import time) only to fetch external stylesheets, which allow_network=False never does: while
    premailer is imported, `requests` is a stand-in that imports the real one if it is ever used.
    Nothing else sees the stand-in; a later `import requests` elsewhere gets the real module.

    And premailer 3.10 has cssutils validate every inline style attribute against the CSS
    profiles even with disable_validation=True (its merge_styles ignores the flag). Validation
    only logs, which is silenced, but compiling the profiles' expressions costs more than the
    inlining itself. Without profiles there is nothing to validate against; the output is the same.
    """
    import cssutils

    if "premailer" not in sys.modules and "requests" not in sys.modules:
        stand_in = _ImportedOnUse("requests")
        sys.modules["requests"] = stand_in
        try:
            import premailer
        finally:
            if sys.modules.get("requests") is stand_in:
                del sys.modules["requests"]
    import premailer

    if cssutils.profile.knownNames:
        cssutils.profile.removeProfile(all=True)
    return premailer


def inline_css(html: str, templates_dir: Path | None) -> str:
    """Inline the class-based CSS (premailer), keeping Outlook's conditional comments intact."""
    premailer = _import_premailer()
    _silence_css_logging()
    inliner = premailer.Premailer(
        html,
        allow_network=False,
        keep_style_tags=False,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        cache_css_parsing=False,
        # MJML's `img { height: auto }` would overwrite every image's height attribute with
        # "auto"; Outlook needs the real one (it ignores max-width), the CSS keeps it fluid.
        disable_basic_attributes=["height"],
    )
    result = str(inliner.transform(pretty_print=False))
    # premailer drops the doctype that MJML wrote; clients need it for standards mode.
    if not result.lstrip().lower().startswith("<!doctype"):
        result = "<!doctype html>\n" + result
    for marker in MSO_MARKERS:
        if result.count(marker) != html.count(marker):
            # Without its ghost tables Outlook renders the layout at full window width.
            raise TemplateError(
                template_path(templates_dir, HTML_TEMPLATE),
                _(
                    "inlining the CSS changed the number of {marker} comments "
                    "({before} -> {after}); Outlook needs them all"
                ).format(
                    marker=repr(marker), before=html.count(marker), after=result.count(marker)
                ),
            )
    return result


def _context(
    issue: Issue,
    brand: Brand,
    web_url: str | None = None,
    images: ImageLinker | None = None,
    notes: SourceNotes | None = None,
) -> dict[str, Any]:
    """Return what the templates see; `web_url` adds the links to the web edition."""
    images = images or ImageLinker(web_url + IMAGE_DIR if web_url else None)
    issue_yaml = issue.path / "issue.yaml"
    # Source attributes only for the e-mail, which strips them; a web page never has them.
    annotate = notes is not None
    notes = notes if notes is not None else SourceNotes()
    intro_origin = (issue.issue_file, issue.lines.get("intro_body", 1)) if annotate else None
    for key in ("subject", "preheader"):
        where = f"{issue.issue_file}:{issue.lines.get(key, 1)}"
        _note_one_line(getattr(issue, key), where, key, notes)
    for article in issue.articles:
        _note_one_line(article.title, f"{article.path}:{article.title_line}", "title", notes)
    articles = [
        {
            "anchor": f"artikel-{index}",
            "title": article.title,
            "html": Markup(
                markdown_html(
                    article.body,
                    origin=(str(article.path), article.body_line) if annotate else None,
                    notes=notes,
                    images=images.resolver(article.path.parent, article.path, article.body_line),
                )
            ),
            "text": markdown_text(article.body),
            "event": _event_view(article.event, web_url) if article.event else None,
        }
        for index, article in enumerate(issue.articles, start=1)
    ]
    intro_images = images.resolver(issue.path, issue_yaml, None)
    website_label = re.sub(r"^https?://", "", brand.website).rstrip("/")
    return {
        "brand": {
            **{k: getattr(brand, k) for k in brand.__dataclass_fields__},
            "website_label": website_label,
        },
        "subject": issue.subject,
        "preheader": issue.preheader,
        "preheader_spacer": PREHEADER_SPACER if issue.preheader else "",
        "month_year": format_date(issue.date, format="MMMM y", locale="nl"),
        "date_long": dutch_date(issue.date),
        "intro_html": (
            Markup(
                markdown_html(issue.intro, images=intro_images, origin=intro_origin, notes=notes)
            )
            if issue.intro
            else ""
        ),
        "intro_text": markdown_text(issue.intro) if issue.intro else "",
        "articles": articles,
        "events": [_event_view(e, web_url) for e in issue.agenda],
        "web_issue_url": issue_url(web_url, issue.path) if web_url else "",
        "greeting": merge_marker("greeting"),
        "unsubscribe_url": merge_marker("unsubscribe_url"),
        "subscriber": _MergeFields(),
        "rule": "=" * TEXT_WIDTH,
        "footer_text": textwrap.fill(brand.footer, TEXT_WIDTH),
    }


_LITERAL_URL_RE = re.compile(r'\b(?:href|src)="([^"{}]+)"')


def _template_values(path: Path) -> dict[str, str]:
    """Return the literal link and image addresses written in a template, with their line."""
    values: dict[str, str] = {}
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        for match in _LITERAL_URL_RE.finditer(line):
            values.setdefault(match[1], f"{path}:{number}")
    return values


def render_mjml(
    issue: Issue,
    brand: Brand,
    templates_dir: Path | None = None,
    web_url: str | None = None,
    *,
    env: jinja2.Environment | None = None,
    context: dict[str, Any] | None = None,
) -> str:
    """Fill the MJML template of an issue (the first of the three HTML steps)."""
    return _render_template(
        env or _environment(templates_dir),
        templates_dir,
        HTML_TEMPLATE,
        context if context is not None else _context(issue, brand, web_url),
    )


def render_issue(
    issue: Issue, brand: Brand, templates_dir: Path | None = None, web_url: str | None = None
) -> RenderedIssue:
    """Render an issue to inlined HTML and plain text, with merge markers for personal values.

    With `web_url` (NIEUWSBRIEF_WEB_URL) the e-mail links to its web page and calendar files.
    """
    env = _environment(templates_dir)
    html_template = template_path(templates_dir, HTML_TEMPLATE)
    notes = SourceNotes()
    context = _context(issue, brand, web_url, notes=notes)
    mjml_source = render_mjml(issue, brand, templates_dir, env=env, context=context)
    html, tags = strip_sources(inline_css(mjml_to_html(mjml_source, templates_dir), templates_dir))
    text = _render_template(env, templates_dir, TEXT_TEMPLATE, context)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    digest = hashlib.sha256()
    for part in (issue.subject, issue.preheader, html, text):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return RenderedIssue(
        subject=issue.subject,
        preheader=issue.preheader,
        html=html,
        text=text,
        content_hash=digest.hexdigest(),
        article_titles=tuple(a.title for a in issue.articles),
        event_count=len(issue.agenda),
        web_url=web_url,
        problems=tuple(notes.problems),
        warnings=tuple(notes.warnings),
        field_sources=notes.fields,
        source_map=SourceMap(
            tags=tags,
            values={
                **_template_values(html_template),
                **{e.url: e.source for e in issue.all_events or issue.agenda if e.source},
                **brand.sources,
            },
            template=str(html_template),
        ),
    )
