"""The browser preview server: the issue exactly as recipients get it, re-rendered on every save.

The page (pages/preview.*) shows the inbox line, the email in an iframe at desktop or phone width,
light or dark, its plain-text part, its headers and its size; with a subscriber list it renders
the message for any row; it lists the messages in the local outbox and opens them the same way.

Live reload: a watcher thread polls the modification times of every input file (issue folder,
agenda, templates with brand.yaml, subscriber list). A change re-renders; the state gets a new
version, which open pages hear about over Server-Sent Events (/events). They then re-fetch
/view.json and reload only the iframe, so the chosen view (kept in the URL hash) stays. A render
that fails keeps the last good email and puts the error (file:line: message) on the page.

Dark mode: Chromium does not let an iframe's `color-scheme` decide which `prefers-color-scheme`
its document sees, and a page cannot emulate the media feature for a frame. So the email is
served byte for byte as composed, and after it loads, the page flips `prefers-color-scheme` in the
media queries of the email's own style sheets whenever the wanted scheme differs from the
browser's: the email's real dark rules apply, as in a client that honours the preference.
"""

from __future__ import annotations

import errno
import json
import mailbox
import os
import re
import secrets
import signal
import socket
import threading
import webbrowser
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from email import policy
from email.headerregistry import AddressHeader
from email.parser import BytesHeaderParser
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from nieuwsbrief.addresses import is_loopback_host
from nieuwsbrief.check import CheckReport, check_composed
from nieuwsbrief.compose import (
    SIZE_WARNING_BYTES,
    Composed,
    FactoryMaker,
    compose_issue,
    encoded_html_size,
    message_parts,
)
from nieuwsbrief.content.issue import default_agenda_path
from nieuwsbrief.errors import ContentError, NieuwsbriefError
from nieuwsbrief.i18n import _
from nieuwsbrief.message import MessageFactory
from nieuwsbrief.model import Subscriber
from nieuwsbrief.subscribers import load_subscribers
from nieuwsbrief.templating import template_files

# The page files ship inside the package (package data), next to this module.
PAGES_DIR = Path(__file__).resolve().parent / "pages"

POLL_SECONDS = 0.25
# Editors save in steps (write a temporary file, rename, touch); render once they are done.
SETTLE_SECONDS = 0.1
HEARTBEAT_SECONDS = 15.0
PORT_TRIES = 21  # the port asked for and the next 20
OUTBOX_LIST_LIMIT = 200
SAMPLE = "sample"
ROW_PREFIX = "row:"
MAIL_PREFIX = "mail:"
WEB_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".ics": "text/calendar; charset=utf-8",
    ".xml": "application/atom+xml; charset=utf-8",
    ".jpg": "image/jpeg",
    ".png": "image/png",
}
PAGE_FILES = {
    "/": ("preview.html", "text/html; charset=utf-8"),
    "/preview.css": ("preview.css", "text/css; charset=utf-8"),
    "/preview.js": ("preview.js", "text/javascript; charset=utf-8"),
}
# The page loads nothing but itself; the email may load its remote images, nothing else.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "frame-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
EMAIL_POLICY = (
    "default-src 'none'; img-src https: http: data: cid:; style-src 'unsafe-inline'; "
    "font-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
_INVISIBLE = "\u034f\u200b-\u200d\u2060\ufeff\u00ad"
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE}]+")
# The preheader spacer (render.PREHEADER_SPACER): a run of invisible characters that fills the
# inbox preview, so clients show nothing of the body after the preheader.
_SPACER_RUN_RE = re.compile(f"(?:[{_INVISIBLE}]\\s*){{3,}}")


class PreviewError(NieuwsbriefError):
    """The preview server cannot start (no free port, unknown host, ...)."""


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


def file_stamps(paths: list[Path]) -> dict[Path, tuple[int, int]]:
    """Return (modification time, size) of each path that exists."""
    stamps = {}
    for path in paths:
        try:
            status = path.stat()
        except OSError:
            continue
        stamps[path] = (status.st_mtime_ns, status.st_size)
    return stamps


def outbox_stamp(outbox_dir: Path | None) -> tuple[tuple[int, int], ...]:
    """Return something that changes when a message is added to or removed from a Maildir."""
    if outbox_dir is None:
        return ()
    stamp = []
    for sub in ("new", "cur"):
        try:
            stamp.append(((outbox_dir / sub).stat().st_mtime_ns, len(os.listdir(outbox_dir / sub))))
        except OSError:
            stamp.append((0, 0))
    return tuple(stamp)


# --- the messages shown --------------------------------------------------------------------


@dataclass(frozen=True)
class MessageView:
    """One message as the page shows it."""

    eml: bytes
    html: str
    text: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class OutboxEntry:
    """One message in the local outbox, by its Maildir key."""

    key: str
    to: str
    subject: str
    date: datetime | None


class _SnippetParser(HTMLParser):
    """Collect the visible text of an email body in order, as an inbox list reads it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("head", "style", "script", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("head", "style", "script", "title") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def inbox_snippet(html: str, limit: int = 140) -> str:
    """Return the first words of an email's body as a mail client's inbox list shows them."""
    parser = _SnippetParser()
    parser.feed(html)
    text = _SPACER_RUN_RE.split(" ".join(parser.parts), maxsplit=1)[0]
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


def read_outbox(
    outbox_dir: Path, known: dict[str, OutboxEntry] | None = None
) -> list[OutboxEntry] | None:
    """Return the messages of a Maildir outbox, newest first; None when there is no outbox.

    `known` caches entries by key across calls: a message in a Maildir never changes.
    """
    if not (outbox_dir / "new").is_dir():
        return None
    known = {} if known is None else known
    box = mailbox.Maildir(str(outbox_dir), factory=None, create=False)
    keys = set(box.keys())
    for key in set(known) - keys:
        del known[key]
    for key in keys - set(known):
        try:
            with box.get_file(key) as handle:
                head = BytesHeaderParser(policy=policy.default).parsebytes(_head_bytes(handle))
        except (OSError, KeyError):
            continue  # moved or removed while we were reading
        date = head.get("Date")
        known[key] = OutboxEntry(
            key=key,
            to=str(head.get("To", "")),
            subject=str(head.get("Subject", "")),
            date=getattr(date, "datetime", None),
        )
    return sorted(
        known.values(),
        key=lambda e: e.date.timestamp() if e.date and e.date.tzinfo else 0,
        reverse=True,
    )


def _head_bytes(lines: Iterable[bytes]) -> bytes:
    head = []
    for line in lines:
        if not line.strip():
            break
        head.append(line)
    return b"".join(head)


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
                listed = load_subscribers(inputs.subscribers_path)
                subscribers = listed.subscribers
                skipped = len(listed.invalid) + len(listed.duplicates)
                if skipped:
                    note = f"{skipped} rij(en) overgeslagen (ongeldig adres of dubbel)"
            except NieuwsbriefError as exc:
                error = f"{error}\n{exc}" if error else str(exc)
        self._publish(replace(self._render, good=good, factory=factory, error=error,
                              subscribers=subscribers, subscribers_note=note,
                              report=report))  # fmt: skip
        return error

    def web_files(self, web_url: str) -> dict[str, bytes]:
        """Return the web edition of the issue's home as `publish` builds it, served here."""
        from nieuwsbrief.home import find_home
        from nieuwsbrief.web import build_site

        key = (self.version, web_url)
        cached = self._web
        if cached is None or cached[0] != key:
            files = build_site(find_home(self.inputs.issue_dir), web_url)[0]
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
        if outbox_dir is None or not (outbox_dir / "new").is_dir():
            raise PreviewError(_("there is no local outbox"))
        box = mailbox.Maildir(str(outbox_dir), factory=None, create=False)
        try:
            eml = box.get_bytes(key)  # only keys of this Maildir: no other file can be read
        except (KeyError, OSError):
            raise PreviewError(
                _("message {key!r} is not (or no longer) in {outbox_dir}").format(
                    key=key, outbox_dir=outbox_dir
                )
            ) from None
        html, text = message_parts(eml)
        size = encoded_html_size(eml)
        notes = (_size_warning(size),) if size > SIZE_WARNING_BYTES else ()
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
            "sizeWarning": size > SIZE_WARNING_BYTES,
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


# --- watching ------------------------------------------------------------------------------


class Watcher(threading.Thread):
    """Poll the input files and the outbox; re-render after a change."""

    def __init__(self, state: PreviewState, report: Callable[[str], None]) -> None:
        super().__init__(name="nieuwsbrief-preview-watcher", daemon=True)
        self.state = state
        self.report = report
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Stop polling (the thread ends within one poll)."""
        self._stopping.set()

    def run(self) -> None:
        inputs = self.state.inputs
        stamps = file_stamps(inputs.watched_files())
        outbox = outbox_stamp(inputs.outbox_dir)
        failing = self.state.failing
        while not self._stopping.wait(POLL_SECONDS):
            current = file_stamps(inputs.watched_files())
            if current != stamps:
                while not self._stopping.wait(SETTLE_SECONDS):
                    settled = file_stamps(inputs.watched_files())
                    if settled == current:
                        break
                    current = settled
                stamps = current
                error = self.state.refresh()
                if error:
                    self.report(_("Error: {message}").format(message=error))
                elif failing:
                    self.report(_("Fixed: the email renders again."))
                failing = error is not None
            now = outbox_stamp(inputs.outbox_dir)
            if now != outbox:
                outbox = now
                self.state.touch()


# --- HTTP ----------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # open event streams must not keep the process alive
    state: PreviewState
    loopback_only: bool


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "nieuwsbrief-preview"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the terminal shows render errors, not every request."""

    def do_GET(self) -> None:
        if not self._host_allowed():
            self._send(403, b"Forbidden host\n", "text/plain; charset=utf-8")
            return
        url = urlsplit(self.path)
        who = parse_qs(url.query).get("who", [SAMPLE])[0]
        state = self.server.state
        if url.path in PAGE_FILES:
            name, content_type = PAGE_FILES[url.path]
            page = (PAGES_DIR / name).read_bytes()
            self._send(200, page, content_type, PAGE_POLICY)
        elif url.path == "/view.json":
            body = json.dumps(state.page_data(who), ensure_ascii=False).encode("utf-8")
            self._send(200, body, "application/json; charset=utf-8", PAGE_POLICY)
        elif url.path == "/email.html":
            self._message(who, lambda view: view.html.encode("utf-8"), "text/html; charset=utf-8")
        elif url.path == "/message.eml":
            self._message(who, lambda view: view.eml, "message/rfc822")
        elif url.path == "/events":
            self._events()
        elif url.path == "/web" or url.path.startswith("/web/"):
            self._web_file(url.path.removeprefix("/web").lstrip("/"))
        else:
            self._send(404, b"Not found\n", "text/plain; charset=utf-8")

    def _web_file(self, name: str) -> None:
        """Serve the web edition (built in memory, as `publish` would) under /web/."""
        from nieuwsbrief.weblinks import issue_page

        state = self.server.state
        try:
            files = state.web_files(f"http://{self.headers.get('Host', '127.0.0.1')}/web/")
        except NieuwsbriefError as exc:
            self._send(404, f"Geen webversie: {exc}\n".encode(), "text/plain; charset=utf-8")
            return
        if not name:
            name = issue_page(state.inputs.issue_dir)
        elif name.endswith("/"):
            name += "index.html"
        data = files.get(name)
        if data is None:
            self._send(404, b"Not found\n", "text/plain; charset=utf-8")
            return
        self._send(200, data, WEB_TYPES.get(Path(name).suffix, "application/octet-stream"))

    def _host_allowed(self) -> bool:
        # A loopback server answers only to loopback names: a web page elsewhere cannot read the
        # preview (and the subscriber list in it) by pointing its own domain at 127.0.0.1.
        if not self.server.loopback_only:
            return True
        host = self.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 or "]" in host else host
        return is_loopback_host(name)

    def _message(self, who: str, body: Callable[[MessageView], bytes], content_type: str) -> None:
        try:
            _, view = self.server.state.view(who)
        except NieuwsbriefError as exc:
            message = f"Geen e-mail om te tonen: {exc}\n".encode()
            self._send(404, message, "text/plain; charset=utf-8")
            return
        self._send(200, body(view), content_type, EMAIL_POLICY)

    def _send(self, status: int, body: bytes, content_type: str, csp: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self._common_headers(csp)
        self.end_headers()
        self.wfile.write(body)

    def _common_headers(self, csp: str | None) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if csp:
            self.send_header("Content-Security-Policy", csp)

    def _events(self) -> None:
        state = self.server.state
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self._common_headers(None)
        self.end_headers()
        seen = -1
        try:
            self.wfile.write(b"retry: 1000\n\n")
            while True:
                version = state.wait_for_change(seen, HEARTBEAT_SECONDS)
                if version is None:
                    return
                if version == seen:
                    self.wfile.write(b": still here\n\n")
                else:
                    data = json.dumps({"version": version, "run": state.run_id})
                    self.wfile.write(f"event: version\ndata: {data}\n\n".encode())
                    seen = version
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return  # the page was closed


def bind_server(host: str, port: int, state: PreviewState) -> _Server:
    """Listen on `port`, or on the next free one of the 20 after it."""
    server_class = _Server6 if ":" in host else _Server
    last = port if port == 0 else min(port + PORT_TRIES - 1, 65535)
    for candidate in range(port, last + 1):
        try:
            server = server_class((host, candidate), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                continue
            reason = exc.strerror or str(exc)
            raise PreviewError(
                _("cannot listen on {address}: {reason}").format(
                    address=f"{host}:{candidate}", reason=reason
                )
            ) from None
        server.state = state
        server.loopback_only = is_loopback_host(host)
        return server
    raise PreviewError(
        _("ports {first} to {last} on {host} are all in use; choose another with --port").format(
            first=port, last=last, host=host
        )
    )


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve_preview(
    inputs: Inputs,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_browser: bool = True,
    report: Callable[[str], None] = print,
) -> None:
    """Serve the preview page until Ctrl+C, re-rendering whenever an input file changes."""
    if not inputs.issue_dir.is_dir():
        raise ContentError(inputs.issue_dir, _("is not an issue folder (it does not exist)"))
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        _serve(inputs, host, port, open_browser, report)
    except KeyboardInterrupt:
        report(_("Preview stopped."))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve(
    inputs: Inputs, host: str, port: int, open_browser: bool, report: Callable[[str], None]
) -> None:
    state = PreviewState(inputs)
    error = state.refresh()
    if error:
        report(
            _("Error: {message}").format(message=error)
            + "\n"
            + _("(the page shows this until the file is fixed)")
        )
    server = bind_server(host, port, state)
    watcher = Watcher(state, report)
    try:
        bound_port = server.server_address[1]
        shown_host = f"[{host}]" if ":" in host else host
        url = f"http://{shown_host}:{bound_port}/"
        if port and bound_port != port:
            report(_("Port {port} is in use; using {bound}.").format(port=port, bound=bound_port))
        if not server.loopback_only:
            report(
                _(
                    "Warning: {host} is reachable from other computers; the page shows addresses"
                ).format(host=host)
            )
        report(
            _("Preview of {issue} at {url} (Ctrl+C to stop)").format(
                issue=inputs.issue_dir, url=url
            )
        )
        watcher.start()
        if open_browser:
            webbrowser.open(url)
        server.serve_forever(poll_interval=0.5)
    finally:
        watcher.stop()
        state.close()
        server.server_close()
