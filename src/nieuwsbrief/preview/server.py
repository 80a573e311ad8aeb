"""The browser preview server: the issue exactly as recipients get it, re-rendered on every save.

The page (pages/preview.*) shows the inbox line, the email in an iframe at desktop or phone width,
light or dark, its plain-text part, its headers and its size; with a subscriber list it renders
the message for any row; it lists the messages in the local outbox and opens them the same way.

This module is the HTTP side; state.py holds what is shown, watcher.py polls the input files.
Live reload: after a change the state gets a new version, which open pages hear about over
Server-Sent Events (/events). They then re-fetch /view.json and reload only the iframe, so the
chosen view (kept in the URL hash) stays. A render that fails keeps the last good email and puts
the error (file:line: message) on the page.

Dark mode: Chromium does not let an iframe's `color-scheme` decide which `prefers-color-scheme`
its document sees, and a page cannot emulate the media feature for a frame. So the email is
served byte for byte as composed, and after it loads, the page flips `prefers-color-scheme` in the
media queries of the email's own style sheets whenever the wanted scheme differs from the
browser's: the email's real dark rules apply, as in a client that honours the preference.
"""

from __future__ import annotations

import errno
import json
import signal
import socket
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nieuwsbrief.addresses import is_loopback_host
from nieuwsbrief.errors import ContentError, NieuwsbriefError, PreviewError
from nieuwsbrief.i18n import _
from nieuwsbrief.preview.state import (
    SAMPLE,
    Inputs,
    MessageView,
    PreviewState,
)
from nieuwsbrief.preview.watcher import Watcher

# The page files ship inside the package (package data), next to this module.
PAGES_DIR = Path(__file__).resolve().parent / "pages"

HEARTBEAT_SECONDS = 15.0
PORT_TRIES = 21  # the port asked for and the next 20
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
