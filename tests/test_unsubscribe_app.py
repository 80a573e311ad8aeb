"""The one-click unsubscribe endpoint, over real HTTP against its waitress server on 127.0.0.1."""

from __future__ import annotations

import http.client
import io
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from wsgiref.types import WSGIApplication
from wsgiref.util import setup_testing_defaults

import pytest

from conftest import EXAMPLE_TEMPLATES
from nieuwsbrief.errors import NieuwsbriefError, TemplateError
from nieuwsbrief.unsubscribe.endpoint import UnsubscribeServer, make_app, mask_address
from nieuwsbrief.unsubscribe.suppression import SuppressionList
from nieuwsbrief.unsubscribe.tokens import make_token, recipient_id

SECRET = "test-secret-0123456789abcdef"
LOGO = "https://www.bureau-kennis.net/img/logo-bureau-kennis.png"
URL = "https://www.bureau-kennis.net/afmelden/{token}"
ADDRESS = "jan.jansen@gemeente.nl"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    text: str


@dataclass
class Server:
    host: str
    port: int
    db: SuppressionList

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read().decode("utf-8"))
        finally:
            conn.close()


@contextmanager
def running(db_path: Path, templates_dir: Path | None) -> Iterator[Server]:
    """The endpoint of a home whose house style is `templates_dir`, served by waitress."""
    db = SuppressionList(db_path)
    db.register([(recipient_id(SECRET, ADDRESS), ADDRESS)])
    app = make_app(SECRET, db_path, URL, templates_dir=templates_dir)
    httpd = UnsubscribeServer(app, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve, daemon=True)
    thread.start()
    try:
        yield Server(httpd.host, httpd.port, db)
    finally:
        httpd.stop()
        thread.join(5)


@pytest.fixture
def server(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Server]:
    """The endpoint of the test home (Bureau | Kennis)."""
    caplog.set_level(logging.INFO, logger="nieuwsbrief.unsubscribe")
    with running(tmp_path / "suppression.sqlite", EXAMPLE_TEMPLATES) as server:
        yield server


def wsgi_call(
    app: WSGIApplication, path: str, *, wsgi_input: bytes = b"", **environ_values: str
) -> tuple[str, bytes]:
    """POST a form to `app` directly, as another WSGI server would; return status and body."""
    environ: dict[str, object] = {
        "PATH_INFO": path,
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "wsgi.input": io.BytesIO(wsgi_input),
        **environ_values,
    }
    setup_testing_defaults(environ)
    statuses: list[str] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        statuses.append(status)
        return lambda data: None

    body = b"".join(app(environ, start_response))
    return statuses[0], body


def token() -> str:
    return make_token(SECRET, ADDRESS)


def assert_safe_headers(resp: Response) -> None:
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["Location"] is None
    assert resp.headers["Set-Cookie"] is None
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"


def test_one_click_post_unsubscribes_at_once(server: Server) -> None:
    headers = {**FORM, "Content-Length": "26"}
    assert len(ONE_CLICK) == 26
    resp = server.request("POST", f"/afmelden/{token()}", ONE_CLICK, headers)
    assert resp.status == 200
    assert "U bent afgemeld" in resp.text
    assert ADDRESS not in resp.text
    assert_safe_headers(resp)
    assert server.db.is_suppressed(ADDRESS)
    assert server.db.entries()[0].source == "one-click"
    # Repeating it is harmless.
    again = server.request("POST", f"/afmelden/{token()}", ONE_CLICK, headers)
    assert again.status == 200
    assert server.db.count() == 1


def test_one_click_multipart(server: Server) -> None:
    boundary = "----grens123"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    resp = server.request("POST", f"/afmelden/{token()}", body, headers)
    assert resp.status == 200
    assert server.db.is_suppressed(ADDRESS)


def test_get_shows_confirm_page_and_does_not_unsubscribe(server: Server) -> None:
    resp = server.request("GET", f"/afmelden/{token()}")
    assert resp.status == 200
    assert_safe_headers(resp)
    assert '<html lang="nl">' in resp.text
    assert "<title>" in resp.text
    assert resp.text.count("<h1>") == 1
    assert '<form method="post">' in resp.text
    assert resp.text.count("<button") == 1
    assert "Bureau | Kennis" in resp.text
    assert "j***@gemeente.nl" in resp.text
    assert ADDRESS not in resp.text
    # Nothing from elsewhere but the brand's logo, which the CSP allows by its exact URL.
    assert re.findall(r"https?://[^\s\"'<>]+", resp.text) == [LOGO]
    assert f"img-src {LOGO};" in resp.headers["Content-Security-Policy"]
    assert not server.db.is_suppressed(ADDRESS)
    head = server.request("HEAD", f"/afmelden/{token()}")
    assert head.status == 200
    assert head.text == ""
    assert not server.db.is_suppressed(ADDRESS)


def test_confirm_button_unsubscribes(server: Server) -> None:
    resp = server.request("POST", f"/afmelden/{token()}", b"bevestig=1", FORM)
    assert resp.status == 200
    assert "U bent afgemeld" in resp.text
    assert server.db.entries()[0].source == "web"
    after = server.request("GET", f"/afmelden/{token()}")
    assert after.status == 200
    assert "al afgemeld" in after.text
    assert "<button" not in after.text


def test_post_without_fields_changes_nothing(server: Server) -> None:
    resp = server.request("POST", f"/afmelden/{token()}", b"iets=anders", FORM)
    assert resp.status == 400
    assert not server.db.is_suppressed(ADDRESS)
    garbage = server.request(
        "POST",
        f"/afmelden/{token()}",
        b"\xff\xfe rommel",
        {"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert garbage.status == 400
    assert server.db.count() == 0


def forged_tokens() -> list[str]:
    good = token()
    wrong_mac = good[:-1] + ("A" if good[-1] != "A" else "B")
    return [wrong_mac, make_token("another-secret-0123456789", ADDRESS)]


def test_forged_tokens_are_refused(server: Server) -> None:
    for forged in forged_tokens():
        for method, body in (("POST", ONE_CLICK), ("POST", b"bevestig=1"), ("GET", None)):
            resp = server.request(method, f"/afmelden/{forged}", body, FORM)
            assert resp.status == 400, (method, forged)
            assert "Ongeldige afmeldlink" in resp.text
            assert_safe_headers(resp)
    assert server.db.count() == 0


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/afmelden/", 400),
        ("/afmelden/1abc", 400),
        ("/afmelden/" + "%21" * 33, 400),
        ("/afmelden/1" + "A" * 5000, 400),
        ("/afmelden/..", 400),
        ("/afmelden/../../etc/passwd", 404),
        ("/afmelden/..%2F..%2Fetc%2Fpasswd", 404),
        ("/afmelden/%00", 400),
        ("/afmelden/jan.jansen@gemeente.nl", 400),
    ],
)
def test_malformed_tokens_change_nothing(server: Server, path: str, status: int) -> None:
    for method, body in (("POST", ONE_CLICK), ("GET", None)):
        resp = server.request(method, path, body, FORM)
        assert resp.status == status, (method, path)
    assert server.db.count() == 0


def test_unknown_recipient_gets_404_with_contact(server: Server) -> None:
    stranger = make_token(SECRET, "onbekend@gemeente.nl")
    for method, body in (("POST", ONE_CLICK), ("GET", None)):
        resp = server.request(method, f"/afmelden/{stranger}", body, FORM)
        assert resp.status == 404
        assert "info@bureau-kennis.net" in resp.text
        assert "afmelden" in resp.text
    assert server.db.count() == 0


@pytest.mark.parametrize(
    "path", ["/", "/afmelden", "/afmeldenX/1AAAA", "/anders/{t}", "/afmelden/{t}/extra"]
)
def test_other_paths_are_404(server: Server, path: str) -> None:
    resp = server.request("POST", path.format(t=token()), ONE_CLICK, FORM)
    assert resp.status == 404
    assert server.db.count() == 0


def test_other_methods_are_405(server: Server) -> None:
    for method in ("PUT", "DELETE", "OPTIONS"):
        resp = server.request(method, f"/afmelden/{token()}")
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET, HEAD, POST"
    assert server.db.count() == 0


def test_body_is_capped(server: Server) -> None:
    body = b"List-Unsubscribe=One-Click&x=" + b"a" * 70_000
    resp = server.request("POST", f"/afmelden/{token()}", body, FORM)
    assert resp.status == 413
    assert server.db.count() == 0


def test_log_has_no_token_and_no_address(
    server: Server, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    stranger = make_token(SECRET, "onbekend@gemeente.nl")
    server.request("GET", f"/afmelden/{token()}")
    server.request("POST", f"/afmelden/{token()}", ONE_CLICK, FORM)
    server.request("POST", f"/afmelden/{stranger}", ONE_CLICK, FORM)
    server.request("GET", "/afmelden/jan.jansen@gemeente.nl")
    server.request("GET", f"/{token()}")
    server.request("GET", "/x" * 40_000)  # a request line over the limit: refused by waitress
    logged = caplog.text + capfd.readouterr().err
    assert "POST /afmelden/… 200" in logged
    assert "GET /afmelden/… 200" in logged
    for secret_bit in (token(), token()[1:17], stranger, "jan.jansen", "gemeente", "127.0.0.1"):
        assert secret_bit not in logged


def test_app_under_a_path_with_suffix(tmp_path: Path) -> None:
    db_path = tmp_path / "s.sqlite"
    SuppressionList(db_path).register([(recipient_id(SECRET, ADDRESS), ADDRESS)])
    app = make_app(SECRET, db_path, "https://x.nl/nb/{token}/uit")

    def call(path: str) -> str:
        return wsgi_call(app, path, CONTENT_LENGTH="26", wsgi_input=ONE_CLICK)[0]

    assert call(f"/nb/{token()}") == "404 Not Found"
    assert call(f"/nb/{token()}/uit") == "200 OK"
    assert SuppressionList(db_path).is_suppressed(ADDRESS)


def test_make_app_checks_its_settings(tmp_path: Path) -> None:
    with pytest.raises(NieuwsbriefError, match="token"):
        make_app(SECRET, tmp_path / "s.sqlite", "https://x.nl/afmelden/")
    with pytest.raises(NieuwsbriefError, match="NIEUWSBRIEF_SECRET"):
        make_app("kort", tmp_path / "s.sqlite", URL)


def test_mask_address() -> None:
    assert mask_address("jan@gemeente.nl") == "j***@gemeente.nl"
    assert mask_address("@x.nl") == "***@x.nl"


def test_broken_database_gives_503(server: Server) -> None:
    server.db.path.unlink()
    server.db.path.write_text("dit is geen database " * 100)
    resp = server.request("POST", f"/afmelden/{token()}", ONE_CLICK, FORM)
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "120"
    assert "opnieuw" in resp.text


def _every_page(server: Server) -> dict[str, Response]:
    """Request every page the endpoint has: confirm, done, already, and each error."""
    stranger = make_token(SECRET, "onbekend@gemeente.nl")
    pages = {
        "confirm": server.request("GET", f"/afmelden/{token()}"),
        "invalid": server.request("GET", "/afmelden/1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        "unknown": server.request("GET", f"/afmelden/{stranger}"),
        "incomplete": server.request("POST", f"/afmelden/{token()}", b"x=1", FORM),
        "not_found": server.request("GET", "/anders"),
        "method": server.request("PUT", f"/afmelden/{token()}"),
        "done": server.request("POST", f"/afmelden/{token()}", b"bevestig=1", FORM),
        "already": server.request("GET", f"/afmelden/{token()}"),
    }
    server.db.path.unlink()
    server.db.path.write_text("dit is geen database " * 100)
    pages["unavailable"] = server.request("POST", f"/afmelden/{token()}", ONE_CLICK, FORM)
    return pages


def test_pages_carry_the_brand_of_the_home(tmp_path: Path) -> None:
    """A home with another brand.yaml gets its name, address, colours and logo on every page,
    and no trace of Bureau | Kennis; a home without one gets the neutral default."""
    templates = tmp_path / "templates"
    templates.mkdir()
    brand = (EXAMPLE_TEMPLATES / "brand.yaml").read_text(encoding="utf-8")
    for old, new in (
        ("Bureau | Kennis, Postbus 2012, 3800 CA Amersfoort", "Stadhuisplein 1, 9999 ZZ Ergens"),
        ("Bureau | Kennis", "Gemeente <Ergens> & Co"),
        ("logo-bureau-kennis", "logo-ergens"),
        ("bureau-kennis.net", "ergens.example"),
        ("#1f4e79", "#0b5d1e"),
    ):
        brand = brand.replace(old, new)
    (templates / "brand.yaml").write_text(brand, encoding="utf-8")

    with running(tmp_path / "a.sqlite", templates) as server:
        pages = _every_page(server)
    assert {name: r.status for name, r in pages.items()} == {
        "confirm": 200, "invalid": 400, "unknown": 404, "incomplete": 400, "not_found": 404,
        "method": 405, "done": 200, "already": 200, "unavailable": 503,
    }  # fmt: skip
    for name, resp in pages.items():
        assert_safe_headers(resp)
        assert "Bureau" not in resp.text and "bureau-kennis" not in resp.text, name
        assert "Kennis" not in resp.text, name
        assert "<title>" in resp.text and "– Gemeente &lt;Ergens&gt; &amp; Co</title>" in resp.text
        assert "Stadhuisplein 1, 9999 ZZ Ergens" in resp.text, name
        assert "#0b5d1e" in resp.text, name
        assert 'src="https://www.ergens.example/img/logo-' in resp.text, name
    assert "de nieuwsbrief van Gemeente &lt;Ergens&gt; &amp; Co" in pages["confirm"].text
    assert "j***@gemeente.nl" in pages["done"].text and "j***@gemeente.nl" in pages["already"].text
    assert "info@ergens.example" in pages["unknown"].text
    # waitress refuses an over-long body itself; another WSGI server hands it to the app.
    app = make_app(SECRET, tmp_path / "c.sqlite", URL, templates_dir=templates)
    status, body = wsgi_call(app, f"/afmelden/{token()}", CONTENT_LENGTH="70000")
    assert status == "413 Content Too Large"
    assert b"Verzoek te groot" in body and b"Gemeente &lt;Ergens&gt;" in body

    with running(tmp_path / "b.sqlite", None) as server:
        default = server.request("GET", f"/afmelden/{token()}")
    assert default.status == 200
    assert "de nieuwsbrief van Nieuwsbrief" in default.text
    assert "Bureau" not in default.text


def test_a_home_can_override_one_page(tmp_path: Path) -> None:
    """A home's unsubscribe_done.html.j2 replaces the default; the other pages stay."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "unsubscribe_done.html.j2").write_text(
        '{% extends "_unsubscribe_base.html.j2" %}{% set contact = false %}'
        "{% block title %}Tot ziens{% endblock %}"
        "{% block main %}<p>Dag {{ address }} <script></p>{% endblock %}",
        encoding="utf-8",
    )
    with running(tmp_path / "s.sqlite", templates) as server:
        done = server.request("POST", f"/afmelden/{token()}", ONE_CLICK, FORM)
        again = server.request("GET", f"/afmelden/{token()}")
    assert "<h1>Tot ziens</h1>" in done.text and "Dag j***@gemeente.nl" in done.text
    assert "U bent al afgemeld" in again.text


def test_a_broken_page_template_stops_the_start_at_its_line(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    page = templates / "unsubscribe_confirm.html.j2"
    page.write_text(
        '{% extends "_unsubscribe_base.html.j2" %}\n'
        "{% block main %}\n{{ adress }}\n{% endblock %}\n",
        encoding="utf-8",
    )
    with pytest.raises(TemplateError) as raised:
        make_app(SECRET, tmp_path / "s.sqlite", URL, templates_dir=templates)
    assert str(raised.value).startswith(f"{page}:3: ")
    assert "adress" in str(raised.value)
