"""Read an issue folder (issue.yaml, article files) and the event agenda into the model.

Every problem is a ContentError that names the file and, where known, the line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from urllib.parse import urlsplit

from nieuwsbrief.errors import ContentError, TableError
from nieuwsbrief.i18n import N_, _
from nieuwsbrief.inputfile import CONTENT_LIMIT, read_input
from nieuwsbrief.model import Article, Event, Finding, Issue
from nieuwsbrief.tabular import decode, detect_delimiter, numbered_rows
from nieuwsbrief.text import character_name, find_control_character
from nieuwsbrief.yamlfile import Node, parse_yaml

ISSUE_FILE = "issue.yaml"
AGENDA_FILE = "agenda.yaml"
EVENT_FIELDS = ("id", "type", "title", "date", "city", "url")
OPTIONAL_EVENT_FIELDS = ("time", "venue", "address")
_TIME_RE = re.compile(r"(\d{1,2})[:.](\d{2})")
_FRONT_MATTER_FENCE = "---"
_SLUG_RE = re.compile(r"[^a-z0-9]+")


def read_text(path: Path, what: str = N_("a content file")) -> str:
    """Read a UTF-8 text file (BOM allowed) of at most 5 MB; anything else is a ContentError."""
    data = read_input(path, CONTENT_LIMIT, what)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ContentError(
            path, _("is not UTF-8 text; save it as UTF-8 (in Excel: 'CSV UTF-8')"), line
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    check_control_characters(text, path)
    return text


def check_control_characters(text: str, path: Path, first_line: int = 1) -> None:
    """Refuse control characters (NUL, ESC, vertical tab, ...; tab and newline are fine)."""
    match = find_control_character(text)
    if match:
        line = first_line + text.count("\n", 0, match.start())
        raise ContentError(
            path,
            _(
                "contains {character}, which has no place in a newsletter; "
                "delete it (it is invisible in most editors: retype the line)"
            ).format(character=character_name(match.group(0))),
            line,
        )


_ISO_DATE_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DUTCH_DATE_RE = re.compile(r"(\d{1,2})-(\d{1,2})-(\d{4})")  # Dutch Excel: 26-6-2012
_WORDS_DATE_RE = re.compile(r"(\d{1,2})\s+([^\W\d_]+)\.?\s+(\d{4})")  # 26 juni 2012
_DATE_ADVICE = N_("write it as 2012-06-26, 26-6-2012 or 26 juni 2012")


@functools.cache
def _dutch_months() -> dict[str, int]:
    from babel.dates import get_month_names

    months: dict[str, int] = {}
    for width in ("wide", "abbreviated"):
        for number, name in get_month_names(width, locale="nl").items():
            months[str(name).casefold().rstrip(".")] = int(number)
    months["maa"] = 3  # an older Dutch abbreviation of maart, still in use
    return months


def parse_date(value: str, path: Path, line: int, what: str) -> date:
    """Parse 2012-06-26, 26-6-2012 / 26-06-2012 (Dutch Excel) or 26 juni 2012; else ContentError.

    Day-month order is the Dutch one; anything that could be read two ways (a two-digit year,
    slashes as in 6/7/2012, a month name Babel does not know) is refused with its line.
    """
    text = " ".join(value.split())
    numbers: tuple[int, int, int] | None = None
    if match := _ISO_DATE_RE.fullmatch(text):
        numbers = (int(match[1]), int(match[2]), int(match[3]))
    elif match := _DUTCH_DATE_RE.fullmatch(text):
        numbers = (int(match[3]), int(match[2]), int(match[1]))
    elif match := _WORDS_DATE_RE.fullmatch(text):
        month = _dutch_months().get(match[2].casefold())
        if month is None:
            raise ContentError(
                path,
                _("{what} '{text}': '{month}' is not a Dutch month name; {advice}").format(
                    what=what, text=text, month=match[2], advice=_(_DATE_ADVICE)
                ),
                line,
            )
        numbers = (int(match[3]), month, int(match[1]))
    if numbers is None:
        if re.fullmatch(r"\d{1,2}[-/.]\d{1,2}[-/.]\d{2}", text):
            reason = _("has a two-digit year, which could mean two centuries")
        elif "/" in text:
            reason = _("is ambiguous (6/7/2012 is 6 July in Dutch, 7 June in English)")
        elif re.search(r"\d[.:]\d\d", text):
            reason = _("has a time in it; put the time in its own column")
        else:
            reason = _("is not a date")
        raise ContentError(
            path,
            _("{what} '{text}' {reason}; {advice}").format(
                what=what, text=text, reason=reason, advice=_(_DATE_ADVICE)
            ),
            line,
        )
    year, month, day = numbers
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ContentError(
            path,
            _("{what} '{text}' is not a valid date ({reason})").format(
                what=what, text=text, reason=exc
            ),
            line,
        ) from None


# `title: Nummer #1`: YAML reads ' #1' as a comment, so the value silently stops before it.
_CUT_BY_COMMENT_RE = re.compile(r"^\s*([A-Za-z_][\w-]*):[ \t]+([^'\"\s|>#][^#]*?)[ \t]+#(\S.*)$")


def comment_warnings(text: str, path: Path, first_line: int = 1) -> tuple[Finding, ...]:
    """Warn about unquoted values that YAML cuts short at ' #' (read as a comment)."""
    findings = []
    for number, line in enumerate(text.split("\n"), start=first_line):
        match = _CUT_BY_COMMENT_RE.match(line)
        if match is None:
            continue
        key, value, rest = match[1], match[2].strip(), match[3].rstrip()
        whole = f"{value} #{rest}".replace("\\", "\\\\").replace('"', '\\"')
        findings.append(
            Finding(
                "yaml-comment",
                _(
                    "YAML reads ' #{rest}' as a comment, so '{key}' is only {value!r}; if the "
                    '# belongs to the value, put it in quotes: {key}: "{whole}"'
                ).format(rest=rest, key=key, value=value, whole=whole),
                f"{path}:{number}",
            )
        )
    return tuple(findings)


def _text_field(
    mapping: dict[str, Node], key: str, path: Path, line: int, *, required: bool
) -> str:
    node = mapping.get(key)
    if node is None or node.value is None or node.value == "":
        if required:
            raise ContentError(
                path, _("'{key}' is missing; add a line '{key}: ...'").format(key=key), line
            )
        return ""
    if not isinstance(node.value, str):
        raise ContentError(
            path, _("'{key}' must be text, not a list or mapping").format(key=key), node.line
        )
    control = find_control_character(node.value)
    if control:  # written as a YAML escape such as "\e", "\v", "\0" or "\x1b"
        raise ContentError(
            path,
            _(
                "'{key}' contains {character}; remove the escape that writes it "
                "(\\e, \\v, \\0, \\x.., \\u00..)"
            ).format(key=key, character=character_name(control.group(0))),
            node.line,
        )
    return node.value.strip()


# --- agenda -----------------------------------------------------------------------------


def load_agenda(path: Path) -> tuple[Event, ...]:
    """Load every event of an agenda file (.yaml/.yml or .csv), in file order."""
    if path.suffix.lower() == ".csv":
        rows = _agenda_rows_from_csv(path)
    else:
        rows = _agenda_rows_from_yaml(path)
    events: list[Event] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        event = _event_from_row(row, path, line)
        if event.id in seen:
            raise ContentError(
                path,
                _(
                    "event id '{id}' is used twice (also on line {line}); "
                    "give every event its own id"
                ).format(id=event.id, line=seen[event.id]),
                line,
            )
        seen[event.id] = line
        events.append(event)
    return tuple(events)


def _agenda_rows_from_yaml(path: Path) -> list[tuple[int, dict[str, tuple[str, int]]]]:
    root = parse_yaml(read_text(path, N_("an agenda")), path)
    if root.value is None:
        return []
    if not isinstance(root.value, list):
        raise ContentError(
            path,
            _("the agenda must be a YAML list of events (each starting with '- id: ...')"),
            root.line,
        )
    rows = []
    for item in root.value:
        if not isinstance(item.value, dict):
            raise ContentError(
                path, _("each agenda entry must be a mapping of id, type, ..."), item.line
            )
        row: dict[str, tuple[str, int]] = {}
        for key, node in item.value.items():
            if node.value is not None and not isinstance(node.value, str):
                raise ContentError(path, _("'{key}' must be text").format(key=key), node.line)
            row[key.strip().lower()] = (node.value or "", node.line)
        rows.append((item.line, row))
    return rows


def _agenda_rows_from_csv(path: Path) -> list[tuple[int, dict[str, tuple[str, int]]]]:
    data = read_input(path, CONTENT_LIMIT, N_("an agenda"))
    try:
        text = decode(data)[0]  # Excel: UTF-8 (with BOM) or Windows-1252
    except TableError as exc:
        raise ContentError(path, str(exc)) from None
    check_control_characters(text, path)
    delimiter, skipped, text = detect_delimiter(text)
    rows = numbered_rows(text, delimiter, first_line=skipped + 1)
    header: list[str] | None = None
    result = []
    for line, values in _table_rows(rows, path):
        if not any(v.strip() for v in values):
            continue
        if header is None:
            header = [h.strip().lstrip("\ufeff").lower() for h in values]
            continue
        if len(values) > len(header):
            raise ContentError(
                path,
                _("this row has {count} columns, the header {header}").format(
                    count=len(values), header=len(header)
                ),
                line,
            )
        result.append((line, {h: (v, line) for h, v in zip(header, values, strict=False)}))
    return result


def _table_rows(
    rows: Iterator[tuple[int, list[str]]], path: Path
) -> Iterator[tuple[int, list[str]]]:
    """Yield `rows`; a row the CSV reader cannot read becomes a ContentError at its line."""
    try:
        yield from rows
    except TableError as exc:
        raise ContentError(path, str(exc), exc.line) from None


def _event_from_row(row: dict[str, tuple[str, int]], path: Path, line: int) -> Event:
    missing = [f for f in EVENT_FIELDS if not row.get(f, ("", 0))[0].strip()]
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        raise ContentError(
            path,
            _("this event has no {names}; every event needs {fields}").format(
                names=names, fields=", ".join(EVENT_FIELDS)
            ),
            line,
        )
    values = {f: row[f][0].strip() for f in EVENT_FIELDS}
    url_line = row["url"][1]
    parts = urlsplit(values["url"])
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ContentError(
            path,
            _("url '{url}' is not a web address; it must start with https://").format(
                url=values["url"]
            ),
            url_line,
        )
    if re.search(r"\s", values["url"]):
        raise ContentError(
            path, _("url '{url}' contains a space").format(url=values["url"]), url_line
        )
    extra = {f: " ".join(row[f][0].split()) for f in OPTIONAL_EVENT_FIELDS if f in row}
    start, end = (None, None)
    if extra.get("time"):
        start, end = parse_time_range(extra["time"], path, row["time"][1])
    return Event(
        id=values["id"],
        type=values["type"],
        title=values["title"],
        date=parse_date(values["date"], path, row["date"][1], "date"),
        city=values["city"],
        url=values["url"],
        source=f"{path}:{line}",
        start_time=start,
        end_time=end,
        venue=extra.get("venue", ""),
        address=extra.get("address", ""),
    )


def parse_time_range(value: str, path: Path, line: int) -> tuple[time, time | None]:
    """Parse '13:30-17:00', '13.30 - 17.00' or a start time alone ('13:30')."""
    parts = [p.strip() for p in re.split(r"\s*[-–]\s*", value.strip(), maxsplit=1)]
    times: list[time] = []
    for part in parts:
        match = _TIME_RE.fullmatch(part)
        hour, minute = (int(match[1]), int(match[2])) if match else (99, 99)
        if hour > 23 or minute > 59:
            raise ContentError(
                path,
                _(
                    "time '{value}' is not a time or a time range; write it as 13:30-17:00 "
                    "(or 13:30 when only the start is known)"
                ).format(value=value),
                line,
            )
        times.append(time(hour, minute))
    if len(times) == 2 and times[1] <= times[0]:
        raise ContentError(
            path,
            (
                _("time '{value}' ends before it starts; write it as 13:30-17:00").format(
                    value=value
                )
            ),
            line,
        )
    return times[0], times[1] if len(times) == 2 else None


def upcoming(events: tuple[Event, ...], on_or_after: date) -> tuple[Event, ...]:
    """Return the events dated on or after a day, sorted by date (ties keep file order)."""
    return tuple(sorted((e for e in events if e.date >= on_or_after), key=lambda e: e.date))


# --- articles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _FrontMatter:
    fields: dict[str, Node]
    body: str
    line: int  # line of the opening fence
    body_line: int = 1  # the file line the body starts on
    warnings: tuple[Finding, ...] = ()


def _split_front_matter(text: str, path: Path) -> _FrontMatter:
    lines = text.split("\n")
    if not lines or lines[0].strip() != _FRONT_MATTER_FENCE:
        raise ContentError(
            path, _("no front matter; start the file with '---', 'title: ...', '---'"), 1
        )
    for index in range(1, len(lines)):
        if lines[index].strip() == _FRONT_MATTER_FENCE:
            yaml_text = "\n".join(lines[1:index])
            node = parse_yaml(yaml_text, path, first_line=2)
            if node.value is None:
                fields: dict[str, Node] = {}
            elif isinstance(node.value, dict):
                fields = node.value
            else:
                raise ContentError(path, _("front matter must be 'key: value' lines"), 2)
            rest = lines[index + 1 :]
            blank = next((n for n, text in enumerate(rest) if text), len(rest))
            return _FrontMatter(
                fields,
                "\n".join(rest).strip("\n"),
                1,
                index + 2 + blank,
                comment_warnings(yaml_text, path, first_line=2),
            )
    raise ContentError(path, _("front matter is not closed; add a line '---' after it"), 1)


def slugify(text: str) -> str:
    """Return a lowercase ASCII id for an anchor, e.g. '02-bim'."""
    return _SLUG_RE.sub("-", text.lower()).strip("-") or "artikel"


def load_article(path: Path, events_by_id: dict[str, Event]) -> Article:
    """Load one article file and link it to its agenda event."""
    front = _split_front_matter(read_text(path, N_("an article")), path)
    title = _text_field(front.fields, "title", path, front.line, required=True)
    event_id = _text_field(front.fields, "event", path, front.line, required=False)
    unknown = sorted(set(front.fields) - {"title", "event"})
    if unknown:
        raise ContentError(
            path,
            _("unknown front matter key '{key}'; allowed are 'title' and 'event'").format(
                key=unknown[0]
            ),
            front.fields[unknown[0]].key_line,
        )
    event = None
    if event_id:
        event = events_by_id.get(event_id)
        if event is None:
            known = ", ".join(sorted(events_by_id)) or _("none")
            raise ContentError(
                path,
                _("event '{id}' is not in the agenda (known ids: {known})").format(
                    id=event_id, known=known
                ),
                front.fields["event"].line,
            )
    if not front.body.strip():
        raise ContentError(path, _("the article has no text after its front matter"))
    return Article(
        slug=slugify(path.stem),
        title=title,
        body=front.body,
        event=event,
        path=path,
        body_line=front.body_line,
        event_line=front.fields["event"].line if event else 0,
        title_line=front.fields["title"].line,
        warnings=front.warnings,
    )


# --- issue ------------------------------------------------------------------------------


def default_agenda_path(issue_dir: Path) -> Path:
    """Return where an issue's agenda lives by default: agenda.yaml beside the issue folder."""
    return issue_dir.resolve().parent / AGENDA_FILE


def load_issue_id(issue_path: Path) -> str:
    """Return the `id` of an issue.yaml, or "" when it has none."""
    root = parse_yaml(read_text(issue_path, "issue.yaml"), issue_path)
    if not isinstance(root.value, dict):
        return ""
    return _text_field(root.value, "id", issue_path, 1, required=False).strip()


def load_issue(issue_dir: Path, agenda_path: Path | None = None) -> Issue:
    """Load and check an issue folder and its agenda."""
    if not issue_dir.is_dir():
        raise ContentError(issue_dir, _("is not an issue folder (it does not exist or is a file)"))
    issue_path = issue_dir / ISSUE_FILE
    if not issue_path.is_file():
        raise ContentError(
            issue_path,
            _("not found; every issue folder needs an issue.yaml with subject and date"),
        )
    issue_text = read_text(issue_path, "issue.yaml")
    root = parse_yaml(issue_text, issue_path)
    if not isinstance(root.value, dict):
        raise ContentError(
            issue_path, _("must be 'key: value' lines (subject, date, ...)"), root.line
        )
    fields = root.value
    allowed = {"id", "subject", "preheader", "date", "intro", "articles"}
    for key, node in fields.items():
        if key not in allowed:
            raise ContentError(
                issue_path,
                _("unknown key '{key}'; allowed are {allowed}").format(
                    key=key, allowed=", ".join(sorted(allowed))
                ),
                node.key_line,
            )
    subject = _text_field(fields, "subject", issue_path, 1, required=True)
    if re.search(r"[\r\n]", subject):
        raise ContentError(issue_path, _("the subject must be one line"), fields["subject"].line)
    preheader = " ".join(_text_field(fields, "preheader", issue_path, 1, required=False).split())
    date_text = _text_field(fields, "date", issue_path, 1, required=True)
    issue_date = parse_date(date_text, issue_path, fields["date"].line, "date")
    intro = _text_field(fields, "intro", issue_path, 1, required=False)
    issue_id = _text_field(fields, "id", issue_path, 1, required=False).strip()
    if issue_id and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}", issue_id):
        raise ContentError(
            issue_path,
            _(
                "id {id} must be letters, digits, '.', '_' or '-' (at most 80), "
                "for example 2026-12-a7k2"
            ).format(id=repr(issue_id)),
            fields["id"].line,
        )

    agenda_path = agenda_path or default_agenda_path(issue_dir)
    if not agenda_path.is_file():
        raise ContentError(agenda_path, _("agenda not found; create it or pass --agenda FILE"))
    all_events = load_agenda(agenda_path)
    events_by_id = {e.id: e for e in all_events}

    article_paths = _article_paths(issue_dir, issue_path, fields.get("articles"))
    _check_inside_home(issue_dir, [issue_path, *article_paths])
    articles = tuple(load_article(p, events_by_id) for p in article_paths)
    _check_unique_slugs(articles)

    return Issue(
        path=issue_dir,
        subject=subject,
        preheader=preheader,
        date=issue_date,
        intro=intro,
        articles=articles,
        agenda=upcoming(all_events, issue_date),
        warnings=(
            *comment_warnings(issue_text, issue_path),
            *(finding for article in articles for finding in article.warnings),
            *_unlisted_articles(issue_dir, issue_path, fields.get("articles"), article_paths),
        ),
        id=issue_id,
        all_events=all_events,
        issue_file=str(issue_path),
        lines=_key_lines(fields, issue_text),
    )


def _key_lines(fields: dict[str, Node], text: str) -> dict[str, int]:
    """Return the line of each key; 'intro_body' is where the intro's Markdown starts."""
    lines = {key: node.line for key, node in fields.items()}
    if "intro" in lines:
        raw = text.split("\n")[lines["intro"] - 1] if lines["intro"] else ""
        block = re.search(r"[:-]\s*[|>][-+0-9]*\s*(#.*)?$", raw) is not None
        lines["intro_body"] = lines["intro"] + (1 if block else 0)
    return lines


def _unlisted_articles(
    issue_dir: Path, issue_path: Path, node: Node | None, listed: list[Path]
) -> tuple[Finding, ...]:
    """Warn about Markdown files in the folder that 'articles:' leaves out of the e-mail."""
    names = {p.name for p in listed}
    left_out = sorted(p.name for p in issue_dir.glob("*.md") if p.name not in names)
    line = node.line if node is not None else 1
    return tuple(
        Finding(
            "article-unlisted",
            (
                _(
                    "'{name}' is in the issue folder but not under 'articles:', "
                    "so it is left out of the e-mail; add a line '  - {name}' to "
                    "'articles:' or move the file elsewhere"
                ).format(name=name)
            ),
            f"{issue_path}:{line}",
        )
        for name in left_out
    )


def _article_paths(issue_dir: Path, issue_path: Path, node: Node | None) -> list[Path]:
    if node is None or node.value is None:
        paths = sorted(issue_dir.glob("*.md"), key=lambda p: p.name)
        if not paths:
            raise ContentError(
                issue_dir,
                _("has no articles; add Markdown files (*.md) or list them under 'articles:'"),
            )
        return paths
    if not isinstance(node.value, list):
        raise ContentError(issue_path, _("'articles' must be a list of file names"), node.line)
    if not node.value:
        raise ContentError(
            issue_path, _("'articles' is empty; list at least one article"), node.line
        )
    paths = []
    for item in node.value:
        if not isinstance(item.value, str) or not item.value.strip():
            raise ContentError(
                issue_path, _("each entry of 'articles' must be a file name"), item.line
            )
        name = item.value.strip()
        candidate = issue_dir / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ContentError(
                issue_path,
                _("'{name}' must be a file inside the issue folder").format(name=name),
                item.line,
            )
        if not candidate.exists():  # a folder or a device by that name: read_input says so
            raise ContentError(
                issue_path,
                (
                    _("article '{name}' not found in {issue_dir}").format(
                        name=name, issue_dir=issue_dir
                    )
                ),
                item.line,
            )
        paths.append(candidate)
    return paths


def _check_inside_home(issue_dir: Path, paths: list[Path]) -> None:
    """Refuse content files that are links to files outside the newsletter home.

    An article symlinked to a private file elsewhere (a key, another customer's list) would
    otherwise be mailed to every subscriber; files named on the command line are the user's
    explicit choice and are not checked here.
    """
    from nieuwsbrief.errors import HomeError
    from nieuwsbrief.home import find_home

    try:
        root = find_home(issue_dir, environ={}).root
    except HomeError:
        root = issue_dir.resolve()
    for path in paths:
        target = path.resolve()
        # Devices, FIFOs and folders are refused by read_input with a better message.
        if target.is_file() and not target.is_relative_to(root):
            raise ContentError(
                path,
                _(
                    "is a link to {target}, outside the newsletter home {home}; "
                    "copy the file into the home instead of linking to it"
                ).format(target=target, home=root),
            )


def _check_unique_slugs(articles: tuple[Article, ...]) -> None:
    seen: dict[str, Path] = {}
    for article in articles:
        if article.slug in seen:
            raise ContentError(
                article.path,
                _("is listed twice (or clashes with {other})").format(
                    other=seen[article.slug].name
                ),
            )
        seen[article.slug] = article.path
