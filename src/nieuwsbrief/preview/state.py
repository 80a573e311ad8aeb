"""What the preview shows: the latest render of the issue and the messages built from it.

`Inputs` names every file a render reads; `PreviewState` holds the last good render (a render
that fails keeps it and records the error, file:line: message), its version, the check report,
the subscriber list's rows and the local outbox, and builds the message for any of them. It is
shared by the watcher thread (watcher.py), which re-renders, and the request handlers
(server.py), which read; every change bumps the version that open pages wait for.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email import policy
from email.headerregistry import AddressHeader
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nieuwsbrief.check import CheckReport, check_composed
from nieuwsbrief.compose import (
    Composed,
    FactoryMaker,
    compose_issue,
    encoded_html_size,
    message_parts,
    near_clipping,
)
from nieuwsbrief.content.issue import default_agenda_path
from nieuwsbrief.errors import NieuwsbriefError, PreviewError
from nieuwsbrief.htmltext import visible_text
from nieuwsbrief.i18n import _
from nieuwsbrief.message import MessageFactory
from nieuwsbrief.model import Subscriber
from nieuwsbrief.sending.outbox import (
    OutboxEntry,
    has_outbox,
    read_message,
    read_outbox,
)
from nieuwsbrief.subscribers import scan_subscribers
from nieuwsbrief.templating import template_files

OUTBOX_LIST_LIMIT = 200
SAMPLE = "sample"
ROW_PREFIX = "row:"
MAIL_PREFIX = "mail:"
_INVISIBLE = "\u034f\u200b-\u200d\u2060\ufeff\u00ad"
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE}]+")
# The preheader spacer (render.PREHEADER_SPACER): a run of invisible characters that fills the
# inbox preview, so clients show nothing of the body after the preheader.
_SPACER_RUN_RE = re.compile(f"(?:[{_INVISIBLE}]\\s*){{3,}}")


# --- what is watched -----------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """Everything the preview renders from, and where the local outbox is."""

    issue_dir: Path
    factory_for: FactoryMaker
    agenda_path: Path | None = None
    templates_dir: Path | None = None
    subscribers_path: Path | None = None
    outbox_dir: Path | None = None
    web_url: str | None = None  # NIEUWSBRIEF_WEB_URL: the e-mail links to the web edition

    def watched_files(self) -> list[Path]:
        """Return every file a render reads: issue folder, agenda, templates, subscriber list."""
        files = [
            *_files_under(self.issue_dir, skip_top=("out",)),  # compose writes into out/
            self.agenda_path or default_agenda_path(self.issue_dir),
            *template_files(self.templates_dir).values(),  # the home's and the defaults
        ]
        if self.subscribers_path is not None:
            files.append(self.subscribers_path)
        return files


def _files_under(folder: Path, skip_top: tuple[str, ...]) -> Iterator[Path]:
    try:
        paths = sorted(folder.rglob("*"))
    except OSError:
        return
    for path in paths:
        parts = path.relative_to(folder).parts
        # Editor swap and backup files change while typing; they are never read by a render.
        if parts[0] in skip_top or path.name.startswith(".") or path.name.endswith("~"):
            continue
        if path.is_file():
            yield path


# --- the messages shown --------------------------------------------------------------------


@dataclass(frozen=True)
class MessageView:
    """One message as the page shows it."""

    eml: bytes
    html: str
    text: str
    notes: tuple[str, ...]


def inbox_snippet(html: str, limit: int = 140) -> str:
    """Return the first words of an email's body as a mail client's inbox list shows them."""
    text = _SPACER_RUN_RE.split(" ".join(visible_text(html)), maxsplit=1)[0]
    text = " ".join(_INVISIBLE_RE.sub("", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def header_block(eml: bytes) -> str:
    """Return the header lines of a message decoded (RFC 2047 words as text), one per line."""
    headers = BytesHeaderParser(policy=policy.default).parsebytes(eml)
    lines = []
    for name, value in headers.items():
        lines.append(f"{name}: {' '.join(str(value).split())}")
    return "\n".join(lines)


def inbox_line(eml: bytes, html: str) -> dict[str, str]:
    """Return sender name and address, recipient, subject, date and snippet of a message."""
    headers = BytesHeaderParser(policy=policy.default).parsebytes(eml)
    sender = headers.get("From")
    name, address = "", str(sender or "")
    if isinstance(sender, AddressHeader) and sender.addresses:
        name, address = sender.addresses[0].display_name, sender.addresses[0].addr_spec
    return {
        "fromName": name or address,
        "fromAddress": address,
        "to": str(headers.get("To", "")),
        "subject": str(headers.get("Subject", "")),
        "date": str(headers.get("Date", "")),
        "snippet": inbox_snippet(html),
    }


def _subscriber_label(subscriber: Subscriber) -> str:
    label = f"regel {subscriber.line}: {subscriber.name or '(geen naam)'} <{subscriber.email}>"
    empty = [key for key, value in subscriber.fields.items() if not value.strip()]
    return label + (f" — leeg: {', '.join(empty)}" if empty else "")


# --- the state shared by the watcher and the request handlers -----------------------------


@dataclass(frozen=True)
class _Render:
    version: int
    good: Composed | None  # the last render that worked
    factory: MessageFactory | None
    error: str | None  # why the latest render failed
    subscribers: tuple[Subscriber, ...]
    subscribers_note: str
    report: CheckReport | None = None  # `nieuwsbrief check` on the last good render


class PreviewState:
    """The latest render, its version, and the views built from it; safe across threads."""

    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.run_id = secrets.token_hex(4)  # a restarted server is a new run: pages reload
        self._changed = threading.Condition()
        self._closed = False
        self._render = _Render(0, None, None, None, (), "")
        self._views: dict[tuple[int, str], MessageView] = {}
        self._web: tuple[tuple[int, str], dict[str, bytes]] | None = None
        self._outbox: dict[str, OutboxEntry] = {}
        # The list's sample, read again only when the file changes: saving an article must
        # not wait for a scan of 100,000 rows.
        self._list: tuple[tuple[int, ...], tuple[Subscriber, ...], str] | None = None

    @property
    def version(self) -> int:
        """Return the number of the latest render or outbox change."""
        return self._render.version

    @property
    def failing(self) -> bool:
        """Tell whether the latest render failed."""
        return self._render.error is not None

    def refresh(self) -> str | None:
        """Render from the files; keep the last good render on failure and return the error."""
        inputs = self.inputs
        good, factory, error = self._render.good, self._render.factory, None
        report = self._render.report
        try:
            good = compose_issue(
                inputs.issue_dir,
                inputs.factory_for,
                agenda_path=inputs.agenda_path,
                templates_dir=inputs.templates_dir,
                web_url=inputs.web_url,
            )
            factory = inputs.factory_for(good.rendered, good.brand)
            report = check_composed(good)
        except NieuwsbriefError as exc:
            error = str(exc)
        except Exception as exc:  # a bug must not stop the preview; show it like a content error
            error = _("unexpected {kind}: {exc}").format(kind=exc.__class__.__name__, exc=exc)
        subscribers: tuple[Subscriber, ...] = ()
        note = ""
        if inputs.subscribers_path is not None:
            try:
                subscribers, note = self._subscribers_of(inputs.subscribers_path)
            except NieuwsbriefError as exc:
                error = f"{error}\n{exc}" if error else str(exc)
        self._publish(replace(self._render, good=good, factory=factory, error=error,
                              subscribers=subscribers, subscribers_note=note,
                              report=report))  # fmt: skip
        return error

    def _subscribers_of(self, path: Path) -> tuple[tuple[Subscriber, ...], str]:
        """Return list_sample(path), read again only if the file changed since last time."""
        try:
            info = path.stat()
        except OSError:
            identity: tuple[int, ...] = ()  # let the scan say what is wrong with it
        else:
            identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        cached = self._list
        if identity and cached is not None and cached[0] == identity:
            return cached[1], cached[2]
        subscribers, note = list_sample(path)
        self._list = (identity, subscribers, note) if identity else None
        return subscribers, note

    def web_files(self, web_url: str) -> dict[str, bytes]:
        """Return the web edition of the issue's home as `publish` builds it, served here."""
        from nieuwsbrief.home import find_home
        from nieuwsbrief.web import build_site

        key = (self.version, web_url)
        cached = self._web
        if cached is None or cached[0] != key:
            files = build_site(find_home(self.inputs.issue_dir), web_url).files
            cached = self._web = (key, files)
        return cached[1]

    def touch(self) -> None:
        """Tell open pages that something besides the render changed (the outbox)."""
        self._publish(self._render)

    def _publish(self, render: _Render) -> None:
        with self._changed:
            self._render = replace(render, version=self._render.version + 1)
            self._views.clear()
            self._changed.notify_all()

    def close(self) -> None:
        """Release every page waiting for a change."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_for_change(self, seen: int, timeout: float) -> int | None:
        """Return the version once it differs from `seen` (or at the timeout); None when closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self.version != seen, timeout)
            return None if self._closed else self.version

    def view(self, who: str) -> tuple[int, MessageView]:
        """Return the message for `who`: the sample, a row of the list, or an outbox message."""
        render = self._render
        cached = self._views.get((render.version, who))
        if cached is not None:
            return render.version, cached
        view = self._build_view(render, who)
        with self._changed:
            if render.version == self.version:
                self._views[(render.version, who)] = view
        return render.version, view

    def _build_view(self, render: _Render, who: str) -> MessageView:
        if who.startswith(MAIL_PREFIX):
            return self._outbox_view(who.removeprefix(MAIL_PREFIX))
        if render.good is None or render.factory is None:
            raise PreviewError(render.error or _("the issue has not been rendered yet"))
        composed = render.good
        if who.startswith(ROW_PREFIX):
            line = who.removeprefix(ROW_PREFIX)
            row = next((s for s in render.subscribers if str(s.line) == line), None)
            if row is None:
                raise PreviewError(
                    _("line {line} is not (or no longer) a row of the subscriber list").format(
                        line=line
                    )
                )
            eml = render.factory.build(row)
            html, text = message_parts(eml)
            composed = replace(composed, sample=row, html=html, text=text, eml=eml)
        elif who != SAMPLE:
            raise PreviewError(_("unknown message {who!r}").format(who=who))
        # No notes: the page's check section shows every finding of this issue, size included.
        return MessageView(composed.eml, composed.html, composed.text, ())

    def _outbox_view(self, key: str) -> MessageView:
        outbox_dir = self.inputs.outbox_dir
        if outbox_dir is None or not has_outbox(outbox_dir):
            raise PreviewError(_("there is no local outbox"))
        eml = read_message(outbox_dir, key)
        if eml is None:
            raise PreviewError(
                _("message {key!r} is not (or no longer) in {outbox_dir}").format(
                    key=key, outbox_dir=outbox_dir
                )
            )
        html, text = message_parts(eml)
        size = encoded_html_size(eml)
        notes = (_size_warning(size),) if near_clipping(size) else ()
        return MessageView(eml, html, text, notes)

    def page_data(self, who: str) -> dict[str, Any]:
        """Return everything the page shows for `who`, as JSON-ready data."""
        render = self._render
        data: dict[str, Any] = {
            "run": self.run_id,
            "version": render.version,
            "issue": str(self.inputs.issue_dir),
            "who": who,
            "error": render.error,
            "stale": render.error is not None and render.good is not None,
            "subscribers": self._choices(render),
            "subscribersNote": render.subscribers_note,
            "outbox": self._outbox_data(),
            "check": _check_data(render.report),
            "message": None,
            "messageError": None,
        }
        try:
            version, view = self.view(who)
        except NieuwsbriefError as exc:
            if not (render.error and render.good is None):  # else the page shows render.error
                data["messageError"] = str(exc)
            return data
        size = encoded_html_size(view.eml)
        data["message"] = {
            **inbox_line(view.eml, view.html),
            "text": view.text,
            "headers": header_block(view.eml),
            "sizeBytes": size,
            "sizeKb": f"{size / 1024:.1f}".replace(".", ","),
            "sizeWarning": near_clipping(size),
            "notes": list(view.notes),
            "htmlUrl": f"/email.html?who={quote(who, safe='')}&v={version}&run={self.run_id}",
            "emlUrl": f"/message.eml?who={quote(who, safe='')}",
        }
        return data

    def _choices(self, render: _Render) -> list[dict[str, str]]:
        choices = []
        if render.good is not None:
            brand = render.good.brand
            label = f"Voorbeeldlezer (zoals compose): {brand.sample_name} <{brand.sample_email}>"
            choices.append({"key": SAMPLE, "label": label})
        for subscriber in render.subscribers:
            choices.append(
                {"key": f"{ROW_PREFIX}{subscriber.line}", "label": _subscriber_label(subscriber)}
            )
        return choices

    def _outbox_data(self) -> dict[str, Any] | None:
        outbox_dir = self.inputs.outbox_dir
        if outbox_dir is None:
            return None
        with self._changed:  # request threads share the cache
            entries = read_outbox(outbox_dir, self._outbox)
        if entries is None:
            return {"dir": str(outbox_dir), "exists": False, "messages": [], "more": 0}
        shown = entries[:OUTBOX_LIST_LIMIT]
        return {
            "dir": str(outbox_dir),
            "exists": True,
            "messages": [
                {
                    "key": f"{MAIL_PREFIX}{e.key}",
                    "to": e.to,
                    "subject": e.subject,
                    "date": e.date.strftime("%d-%m-%Y %H:%M") if e.date else "",
                }
                for e in shown
            ],
            "more": len(entries) - len(shown),
        }


def _check_data(report: CheckReport | None) -> dict[str, Any] | None:
    """Return a check report as the page shows it: one entry per finding, then the verdict."""
    if report is None:
        return None
    findings = [
        {"level": level, "where": f.where, "message": f.message, "code": f.code, "detail": f.detail}
        for level, group in (
            ("problem", report.problems),
            ("warning", report.warnings),
            ("info", report.notes),
        )
        for f in group
    ]
    return {"ok": report.ok, "verdict": report.format().splitlines()[-1], "findings": findings}


def _size_warning(size: int) -> str:
    return _(
        "the HTML part is {size:.1f} KB; Gmail clips messages over "
        "about 102 KB (shorten the articles or move one to the next "
        "issue)"
    ).format(size=size / 1024)


# Rows of the list a tester can pick from: examples, not the list (which may have a million).
PREVIEW_ROWS = 200


def list_sample(path: Path) -> tuple[tuple[Subscriber, ...], str]:
    """Return the first PREVIEW_ROWS recipients of a list, and a note on what else it holds.

    The same two passes over the file as a send, as a stream: any list that can be sent can
    be previewed, and only the rows offered are held.
    """
    scan = scan_subscribers(path)
    rows = scan.selected()
    try:
        sample = tuple(itertools.islice(rows, PREVIEW_ROWS))
    finally:
        rows.close()
    notes = []
    if scan.valid > len(sample):
        notes.append(f"de eerste {len(sample)} van {scan.valid} ontvangers")
    skipped = scan.invalid + scan.duplicates
    if skipped:
        notes.append(f"{skipped} rij(en) overgeslagen (ongeldig adres of dubbel)")
    return sample, "; ".join(notes)
