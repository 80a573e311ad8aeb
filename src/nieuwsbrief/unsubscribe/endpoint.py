"""The one-click unsubscribe endpoint (RFC 8058) as a plain WSGI application, and a small server.

    POST <prefix>TOKEN  body List-Unsubscribe=One-Click  -> suppressed at once, 200, no redirect
    GET  <prefix>TOKEN                                   -> a Dutch page with one confirm button
    POST <prefix>TOKEN  body bevestig=1 (that button)    -> suppressed, Dutch confirmation page

GET never unsubscribes: link scanners and previews follow GET links. Pages carry no cookies, no
tracking and no external resources, and never show a full address. The server log holds the
method, the first path segment and the status only: no token, no address, no client IP.
"""

from __future__ import annotations

import base64
import hashlib
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

import jinja2
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer

from nieuwsbrief.errors import NieuwsbriefError
from nieuwsbrief.i18n import _
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from nieuwsbrief.unsubscribe.tokens import recipient_id, require_token_placeholder, verify_token

log = logging.getLogger("nieuwsbrief.unsubscribe")

MAX_BODY_BYTES = 64 * 1024
LIST_NAME = "de nieuwsbrief van Bureau | Kennis"
CONTACT = "info@bureau-kennis.net"

_STYLE = (
    "body{font-family:Arial,Helvetica,sans-serif;max-width:36rem;margin:3rem auto;"
    "padding:0 1rem;line-height:1.5;color:#1a1a1a;background:#fff}"
    "h1{font-size:1.6rem}"
    "button{font-size:1.1rem;padding:.6rem 1.2rem;border:2px solid #1a1a1a;border-radius:4px;"
    "background:#1a1a1a;color:#fff;cursor:pointer}"
    "button:focus{outline:3px solid #e07000;outline-offset:2px}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")
_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

_PAGE = """<!DOCTYPE html>
<html lang="nl">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{ title }} – Bureau | Kennis</title>
<style>{{ style }}</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
{% for paragraph in paragraphs %}<p>{{ paragraph }}</p>
{% endfor %}{% if confirm %}<form method="post">
<input type="hidden" name="bevestig" value="1">
<button type="submit">Ja, meld mij af</button>
</form>
<p>Wilt u de nieuwsbrief blijven ontvangen? Dan hoeft u niets te doen.</p>
{% endif %}{% if contact %}<p>Vragen? Mail naar
<a href="mailto:{{ contact }}">{{ contact }}</a>.</p>
{% endif %}</main>
</body>
</html>
"""

_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_page_template = _env.from_string(_PAGE)

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
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


def _route(url_template: str) -> tuple[str, str]:
    require_token_placeholder(url_template)
    path = urlsplit(url_template).path
    if "{token}" not in path:
        raise NieuwsbriefError(
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


class _Page:
    """One response: status, paragraphs of Dutch text, and whether to show the button."""

    def __init__(
        self,
        status: int,
        title: str,
        paragraphs: Iterable[str],
        *,
        confirm: bool = False,
        contact: str = "",
    ) -> None:
        self.status = status
        html = _page_template.render(
            title=title,
            paragraphs=list(paragraphs),
            confirm=confirm,
            contact=contact,
            style=_STYLE,
        )
        self.body = html.encode("utf-8")


def make_app(
    secret: str,
    db_path: Path,
    url_template: str,
    *,
    list_name: str = LIST_NAME,
    contact: str = CONTACT,
) -> WSGIApplication:
    """Return the WSGI application that handles unsubscribe links built from `url_template`."""
    prefix, suffix = _route(url_template)
    suppression = SuppressionList(db_path)
    recipient_id(secret, "")  # refuse a short secret now, not on the first request

    def invalid() -> _Page:
        return _Page(
            400,
            "Ongeldige afmeldlink",
            [
                "Deze afmeldlink is niet geldig of niet compleet. Er is niets gewijzigd.",
                "Gebruik de afmeldlink onderaan de nieuwsbrief, of beantwoord de nieuwsbrief "
                "met het woord ‘afmelden’.",
            ],
            contact=contact,
        )

    def unknown() -> _Page:
        return _Page(
            404,
            "Afmeldlink niet gevonden",
            [
                "We kunnen niet vinden bij welk e-mailadres deze afmeldlink hoort. "
                "Er is niets gewijzigd.",
                "Beantwoord de nieuwsbrief met het woord ‘afmelden’, of mail naar "
                f"{contact}; dan melden wij u af.",
            ],
            contact=contact,
        )

    def done(address: str) -> _Page:
        return _Page(
            200,
            "U bent afgemeld",
            [
                f"U bent afgemeld voor {list_name}. "
                f"Wij sturen hem niet meer naar {mask_address(address)}.",
                "Afgemeld per ongeluk? Laat het ons weten, dan zetten wij u terug op de lijst.",
            ],
            contact=contact,
        )

    def handle(environ: WSGIEnvironment) -> tuple[_Page, list[tuple[str, str]]]:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        token = path[len(prefix) : len(path) - len(suffix)] if suffix else path[len(prefix) :]
        if (
            not path.startswith(prefix)
            or not path.endswith(suffix)
            or len(path) < len(prefix) + len(suffix)
            or "/" in token
        ):
            page = _Page(404, "Pagina niet gevonden", ["Deze pagina bestaat niet."])
            return page, []
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method not in ("GET", "HEAD", "POST"):
            page = _Page(405, "Niet toegestaan", ["Deze manier van opvragen wordt niet gebruikt."])
            return page, [("Allow", _ALLOW)]

        fields: dict[str, str] = {}
        if method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY_BYTES:
                page = _Page(413, "Verzoek te groot", ["Dit verzoek is te groot of onjuist."])
                return page, []
            body = environ["wsgi.input"].read(length) if length else b""
            fields = _form_fields(environ, body)

        rid = verify_token(secret, token)
        if rid is None:
            return invalid(), []

        if method == "POST":
            if fields.get("List-Unsubscribe") == "One-Click":
                source = "one-click"
            elif "bevestig" in fields:
                source = "web"
            else:
                page = _Page(
                    400,
                    "Onvolledig verzoek",
                    [
                        "Dit afmeldverzoek is niet compleet. Er is niets gewijzigd.",
                        "Open de afmeldlink uit de nieuwsbrief opnieuw en klik op de knop.",
                    ],
                    contact=contact,
                )
                return page, []
            address = suppression.add_by_id(rid, source)
            if address is None:
                return unknown(), []
            log.info("afgemeld via %s", source)
            return done(address), []

        address = suppression.address_for(rid)
        if address is None:
            return unknown(), []
        if suppression.is_suppressed(address):
            page = _Page(
                200,
                "U bent al afgemeld",
                [
                    f"{mask_address(address)} is al afgemeld voor {list_name}. "
                    "U hoeft niets meer te doen."
                ],
                contact=contact,
            )
            return page, []
        page = _Page(
            200,
            "Afmelden voor de nieuwsbrief",
            [
                f"Wilt u {list_name} niet meer ontvangen op {mask_address(address)}?",
                "Klik dan op de knop hieronder. U bent daarna meteen afgemeld.",
            ],
            confirm=True,
            contact=contact,
        )
        return page, []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            page, extra = handle(environ)
        except NieuwsbriefError as exc:
            # The suppression list is locked or broken: ask the client to retry (RFC 8058
            # senders and people alike), and keep the reason in the log. The message names the
            # database file only, never the request.
            log.error("unsubscribe request failed: %s", exc)
            page = _Page(
                503,
                "Tijdelijk niet beschikbaar",
                [
                    "Uw afmelding kon nu niet worden verwerkt. Probeer het over enkele minuten "
                    "opnieuw, of beantwoord de nieuwsbrief met het woord ‘afmelden’."
                ],
                contact=contact,
            )
            extra = [("Retry-After", "120")]
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(page.body))),
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", _CSP),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            *extra,
        ]
        start_response(_STATUS[page.status], headers)
        if environ.get("REQUEST_METHOD", "").upper() == "HEAD":
            return [b""]
        return [page.body]

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
            raise NieuwsbriefError(
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
