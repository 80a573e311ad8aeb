"""The one-click unsubscribe endpoint (RFC 8058) as a plain WSGI application, and a small server.

    POST <prefix>TOKEN  body List-Unsubscribe=One-Click  -> suppressed at once, 200, no redirect
    GET  <prefix>TOKEN                                   -> a Dutch page with one confirm button
    POST <prefix>TOKEN  body bevestig=1 (that button)    -> suppressed, Dutch confirmation page

GET never unsubscribes: link scanners and previews follow GET links. The pages are the house
style's `unsubscribe_*.html.j2` (the home's over the defaults) with the home's brand, rendered
once when the app is made; a request only fills in the masked address. They carry no cookies,
no tracking and nothing from elsewhere but the brand's logo (allowed by its exact URL in the
CSP, fetched without a referrer), and never show a full address. The server log holds the
method, the first path segment and the status only: no token, no address, no client IP.
"""

from __future__ import annotations

import logging
import re
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from markupsafe import Markup, escape
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer

from nieuwsbrief.addresses import split_address
from nieuwsbrief.errors import ConfigError, EndpointError, NieuwsbriefError
from nieuwsbrief.i18n import _
from nieuwsbrief.templating import style_source
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from nieuwsbrief.unsubscribe.tokens import recipient_id, require_token_placeholder, verify_token

log = logging.getLogger("nieuwsbrief.unsubscribe")

MAX_BODY_BYTES = 64 * 1024

# The pages (templates unsubscribe_*.html.j2 and unsubscribe.css, the home's over the
# defaults) and what each is for; `problem` picks the text of unsubscribe_error.html.j2.
CONFIRM_PAGE = "unsubscribe_confirm.html.j2"
DONE_PAGE = "unsubscribe_done.html.j2"
ALREADY_PAGE = "unsubscribe_already.html.j2"
ERROR_PAGE = "unsubscribe_error.html.j2"
STYLE_FILE = "unsubscribe.css"
PROBLEMS = {
    "invalid": 400,  # the token does not verify
    "unknown": 404,  # a valid token of a recipient this home does not know
    "incomplete": 400,  # a POST with neither the one-click field nor the button's
    "not_found": 404,  # a path outside the endpoint
    "method": 405,
    "too_large": 413,
    "unavailable": 503,  # the suppression list is locked or broken
}
# Where a page shows the reader's masked address; replaced per request, escaped.
_ADDRESS_MARK = "\x00address\x00"
_SAFE_IMAGE_URL_RE = re.compile(
    r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%!$&()*+=:@/-]*)?"
)

_STATUS = {
    200: "200 OK",
    400: "400 Bad Request",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Content Too Large",
    503: "503 Service Unavailable",
}
_ALLOW = "GET, HEAD, POST"


def mask_address(address: str) -> str:
    """Return `address` with the local part hidden: jan@gemeente.nl -> j***@gemeente.nl."""
    local, domain = split_address(address)
    return f"{local[:1]}***@{domain}"


def _route(url_template: str) -> tuple[str, str]:
    require_token_placeholder(url_template)
    path = urlsplit(url_template).path
    if "{token}" not in path:
        raise ConfigError(
            _(
                "the unsubscribe URL {url} must have {placeholder} in its path, "
                "not in the host or query"
            ).format(url=repr(url_template), placeholder="'{token}'")
        )
    prefix, suffix = path.split("{token}", 1)
    return prefix, suffix


def _form_fields(environ: WSGIEnvironment, body: bytes) -> dict[str, str]:
    """Return the fields of a urlencoded or multipart form body; junk gives an empty dict."""
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type.lower().startswith("multipart/form-data"):
        return _multipart_fields(content_type, body)
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[0] for name, values in parsed.items()}


def _multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    try:
        message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        if not isinstance(message, EmailMessage) or not message.is_multipart():
            return {}
        fields: dict[str, str] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields.setdefault(name, payload.decode("utf-8", "replace").strip())
        return fields
    except Exception:  # a malformed body is the client's problem: answer 400, never 500
        return {}


@dataclass(frozen=True)
class _Page:
    """One rendered page: its status and body, the masked address still to fill in."""

    status: int
    body: bytes

    def filled(self, address: str = "") -> bytes:
        """Return the body with `address` (masked, HTML-escaped) where the page shows it."""
        if not address:
            return self.body
        masked = str(escape(mask_address(address))).encode("utf-8")
        return self.body.replace(_ADDRESS_MARK.encode("utf-8"), masked)


@dataclass(frozen=True)
class Pages:
    """Every page of the endpoint, rendered once from the house style with the brand."""

    confirm: _Page
    done: _Page
    already: _Page
    problems: dict[str, _Page]
    csp: str

    @classmethod
    def render(cls, templates_dir: Path | None = None) -> Pages:
        """Render the pages of the home whose templates folder is `templates_dir` (None: the
        defaults); a template error names its file and line (exit 2), before any request."""
        from nieuwsbrief.content.brand import load_brand
        from nieuwsbrief.render import _environment, _render_template

        brand = load_brand(templates_dir)
        env = _environment(templates_dir)
        style = _render_template(env, templates_dir, STYLE_FILE, {"c": brand.colors}).strip()
        # The logo is the one resource from elsewhere (the brand's site, without a referrer);
        # a URL a CSP source cannot name exactly is left out and the name shown instead.
        logo = _SAFE_IMAGE_URL_RE.fullmatch(brand.logo_url) is not None
        context = {
            "brand": brand,
            "logo": logo,
            "style": Markup(style),  # the house style's own file, not content
            "address": _ADDRESS_MARK,
        }

        def page(status: int, name: str, **values: str) -> _Page:
            html = _render_template(env, templates_dir, name, {**context, **values})
            return _Page(status, html.encode("utf-8"))

        image = f"img-src {brand.logo_url}; " if logo else ""
        return cls(
            confirm=page(200, CONFIRM_PAGE),
            done=page(200, DONE_PAGE),
            already=page(200, ALREADY_PAGE),
            problems={p: page(s, ERROR_PAGE, problem=p) for p, s in PROBLEMS.items()},
            csp=(
                f"default-src 'none'; {image}style-src {style_source(style)}; "
                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
            ),
        )


def make_app(
    secret: str, db_path: Path, url_template: str, *, templates_dir: Path | None = None
) -> WSGIApplication:
    """Return the WSGI application that handles unsubscribe links built from `url_template`.

    Its pages come from the house style of `templates_dir` (the home's templates folder; None:
    the defaults that ship), rendered here, once, with the brand of its brand.yaml.
    """
    prefix, suffix = _route(url_template)
    suppression = SuppressionList(db_path)
    recipient_id(secret, "")  # refuse a short secret now, not on the first request
    pages = Pages.render(templates_dir)
    problem = pages.problems

    def handle(environ: WSGIEnvironment) -> tuple[_Page, str, list[tuple[str, str]]]:
        """Return the page, the address it shows (or ''), and extra headers."""
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        token = path[len(prefix) : len(path) - len(suffix)] if suffix else path[len(prefix) :]
        if (
            not path.startswith(prefix)
            or not path.endswith(suffix)
            or len(path) < len(prefix) + len(suffix)
            or "/" in token
        ):
            return problem["not_found"], "", []
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method not in ("GET", "HEAD", "POST"):
            return problem["method"], "", [("Allow", _ALLOW)]

        fields: dict[str, str] = {}
        if method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY_BYTES:
                return problem["too_large"], "", []
            body = environ["wsgi.input"].read(length) if length else b""
            fields = _form_fields(environ, body)

        rid = verify_token(secret, token)
        if rid is None:
            return problem["invalid"], "", []

        if method == "POST":
            if fields.get("List-Unsubscribe") == "One-Click":
                source = "one-click"
            elif "bevestig" in fields:
                source = "web"
            else:
                return problem["incomplete"], "", []
            address = suppression.add_by_id(rid, source)
            if address is None:
                return problem["unknown"], "", []
            log.info("afgemeld via %s", source)
            return pages.done, address, []

        address = suppression.address_for(rid)
        if address is None:
            return problem["unknown"], "", []
        if suppression.is_suppressed(address):
            return pages.already, address, []
        return pages.confirm, address, []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            page, address, extra = handle(environ)
        except NieuwsbriefError as exc:
            # The suppression list is locked or broken: ask the client to retry (RFC 8058
            # senders and people alike), and keep the reason in the log. The message names the
            # database file only, never the request.
            log.error("unsubscribe request failed: %s", exc)
            page, address, extra = problem["unavailable"], "", [("Retry-After", "120")]
        body = page.filled(address)
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", pages.csp),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            *extra,
        ]
        start_response(_STATUS[page.status], headers)
        if environ.get("REQUEST_METHOD", "").upper() == "HEAD":
            return [b""]
        return [body]

    return app


# -- the server ---------------------------------------------------------------------------------
#
# waitress: a pure-Python production WSGI server. Its main thread reads every connection with
# poll() and hands only complete requests to a fixed pool of threads, so a slow or idle client
# costs a socket, never a thread; it has a real listen backlog and a connection limit. It lacks
# one thing: a client that trickles a request byte by byte stays "active" for ever. _Channel
# remembers when the request being read began, and _Server closes it after the time-out too.

_SAFE_SEGMENT_RE = re.compile(r"[a-z][a-z-]{0,19}")


@dataclass(frozen=True)
class ServerLimits:
    """How much the endpoint holds: time-out per connection, connections, threads, backlog."""

    timeout: int = 30  # seconds idle, and seconds to send one whole request
    connections: int = 2000  # open connections; more wait in the backlog until one closes
    threads: int = 8  # requests handled at the same time (writes queue in SQLite anyway)
    backlog: int = 1024  # connections the kernel queues before accept(): a burst of clicks


def _loggable_path(path: str) -> str:
    """Return the first path segment if it is a plain word; never a token or an address."""
    segment = path.split("?", 1)[0].lstrip("/").split("/", 1)[0]
    if _SAFE_SEGMENT_RE.fullmatch(segment):
        return f"/{segment}/…"
    return "/…"


def _logged(app: WSGIApplication) -> WSGIApplication:
    """Log method, path prefix and status only (no token, no address, no client IP)."""

    def logged_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in {"GET", "HEAD", "POST"} else "other"
        path = _loggable_path(environ.get("PATH_INFO", ""))

        def logging_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            log.info("%s %s %s", method, path, status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        try:
            return app(environ, logging_start_response)
        except Exception as exc:  # a bug must not put the request (its token) into a log
            log.error("%s %s failed (%s)", method, path, type(exc).__name__)
            body = b"Interne fout; probeer het later opnieuw."
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
                sys.exc_info(),
            )
            return [body]

    return logged_app


class _Channel(HTTPChannel):  # type: ignore[misc]
    """waitress's connection, remembering when the request it is reading began."""

    request_started: float | None = None

    def received(self, data: bytes) -> bool:
        if self.request is None:
            self.request_started = time.time()  # waitress's clock for last_activity
        result: bool = super().received(data)
        if self.request is None:
            self.request_started = None
        return result


class _Server(TcpWSGIServer):  # type: ignore[misc]
    """waitress's TCP server that also closes connections sending a request too slowly."""

    channel_class = _Channel

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle connections
        cutoff = now - self.adj.channel_timeout
        for channel in list(self.active_channels.values()):
            started = getattr(channel, "request_started", None)
            if started is not None and started < cutoff and not channel.requests:
                channel.will_close = True


class UnsubscribeServer:
    """The endpoint listening on host:port (port 0: any free port) until `stop()` or Ctrl+C."""

    def __init__(
        self, app: WSGIApplication, host: str, port: int, limits: ServerLimits = ServerLimits()
    ) -> None:
        # Each connection is a file descriptor; keep 64 for the database, logs and the pool.
        connections = min(limits.connections, _raise_open_files_limit(limits.connections + 64) - 64)
        limits = replace(limits, connections=max(connections, 1))
        adjustments = Adjustments(
            host=host,
            port=port,
            threads=limits.threads,
            connection_limit=limits.connections,
            backlog=limits.backlog,
            channel_timeout=limits.timeout,
            cleanup_interval=1,  # check the time-outs every second
            max_request_header_size=16 * 1024,
            max_request_body_size=MAX_BODY_BYTES,
            asyncore_use_poll=True,  # select() cannot watch more than 1,024 sockets
            ident="nieuwsbrief",
            expose_tracebacks=False,
        )
        try:
            self._server = _Server(_logged(app), adj=adjustments, sockinfo=adjustments.listen[0])
        except OSError as exc:
            raise EndpointError(
                _(
                    "{address}: cannot listen for unsubscribe requests ({reason}); "
                    "choose another --host/--port"
                ).format(address=f"{host}:{port}", reason=exc.strerror)
            ) from exc
        self.limits = limits
        self.host = str(self._server.effective_host)
        self.port = int(self._server.effective_port)
        self._stopping = threading.Event()

    def serve(self) -> None:
        """Serve until `stop()` is called or Ctrl+C; then close every connection."""
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=1.0, map=self._server._map, use_poll=True, count=1)
        except KeyboardInterrupt:
            pass
        finally:
            self._server.task_dispatcher.shutdown()
            wasyncore.close_all(self._server._map)

    def stop(self) -> None:
        """Make `serve()` return (from any thread)."""
        self._stopping.set()
        self._server.pull_trigger()  # wake poll() at once


def _raise_open_files_limit(wanted: int) -> int:
    """Raise this process's open-file limit towards `wanted`; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return wanted
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def serve(
    app: WSGIApplication,
    host: str = "127.0.0.1",
    port: int = 8025,
    limits: ServerLimits = ServerLimits(),
    *,
    announce: Callable[[str, ServerLimits], None] | None = None,
) -> None:
    """Serve `app` until interrupted (Ctrl+C); `announce` gets the address and limits in force."""
    logging.getLogger("waitress").setLevel(logging.WARNING)  # its INFO lines name the path
    # "Task queue depth is N" once per queued request: a burst of clicks is expected, not news.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = UnsubscribeServer(app, host, port, limits)
    url = f"http://{server.host}:{server.port}/"
    if announce is not None:
        announce(url, server.limits)
    log.info(
        "afmeldserver luistert op %s (time-out %s s, max. %s verbindingen, %s threads)",
        url,
        server.limits.timeout,
        server.limits.connections,
        server.limits.threads,
    )
    server.serve()
    log.info("afmeldserver gestopt")
