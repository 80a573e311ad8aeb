"""Tests for settings: defaults, .env handling, collected validation errors, secret handling."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nieuwsbrief.config import KNOWN_VARIABLES, Settings, load_settings
from nieuwsbrief.errors import ConfigError

PASSWORD = "Sup3r-Geheim-wachtwoord!"
SECRET = "s" * 40


def load(tmp_path: Path, **environ: str) -> Settings:
    return load_settings(environ, env_file=None, home=tmp_path, create_secret=True)


def config_error(tmp_path: Path, **environ: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(environ, env_file=None, home=tmp_path, create_secret=True)
    return str(info.value)


def test_defaults_with_empty_environment(tmp_path: Path) -> None:
    settings = load(tmp_path)

    assert settings.smtp_host is None
    assert not settings.uses_smtp
    assert settings.smtp_port == 587
    assert settings.smtp_security == "starttls"
    assert settings.smtp_user is None
    assert settings.smtp_password is None
    assert settings.from_address is None
    assert settings.reply_to is None
    assert settings.unsubscribe_mailto is None
    assert settings.unsubscribe_url is None
    # State lives in the home's state folder, never in the current folder.
    assert settings.outbox_dir == tmp_path / "state" / "outbox"
    assert settings.suppression_path == tmp_path / "state" / "suppression.sqlite"
    assert settings.ledger_path == tmp_path / "state" / "ledger.sqlite"
    assert settings.secret_path == tmp_path / "state" / "secret"
    assert settings.max_per_connection == 0
    assert settings.server_label == f"local outbox {tmp_path / 'state' / 'outbox'}"
    assert settings.env_path is None


def test_full_smtp_configuration(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        NIEUWSBRIEF_SMTP_HOST="smtp.example.nl",
        NIEUWSBRIEF_SMTP_USER="nieuwsbrief",
        NIEUWSBRIEF_SMTP_PASSWORD=PASSWORD,
        NIEUWSBRIEF_FROM="Bureau | Kennis <nieuwsbrief@bureau-kennis.net>",
        NIEUWSBRIEF_REPLY_TO="redactie@bureau-kennis.net",
        NIEUWSBRIEF_UNSUBSCRIBE_MAILTO="mailto:afmelden@bureau-kennis.net",
        NIEUWSBRIEF_UNSUBSCRIBE_URL="https://www.bureau-kennis.net/afmelden?t={token}",
        NIEUWSBRIEF_SECRET=SECRET,
        NIEUWSBRIEF_OUTBOX="mail/uit",
        NIEUWSBRIEF_LEDGER_DB="/var/lib/nb/ledger.sqlite",
        NIEUWSBRIEF_MAX_PER_CONNECTION="100",
    )

    assert settings.uses_smtp
    assert settings.server_label == "smtp.example.nl:587 (starttls)"
    assert settings.smtp_user == "nieuwsbrief"
    assert settings.smtp_password == PASSWORD
    assert settings.from_address == "Bureau | Kennis <nieuwsbrief@bureau-kennis.net>"
    assert settings.reply_to == "redactie@bureau-kennis.net"
    assert settings.unsubscribe_mailto == "afmelden@bureau-kennis.net"
    assert settings.unsubscribe_url == "https://www.bureau-kennis.net/afmelden?t={token}"
    assert settings.secret == SECRET
    assert settings.outbox_dir == tmp_path / "mail" / "uit"
    assert settings.ledger_path == Path("/var/lib/nb/ledger.sqlite")
    assert settings.max_per_connection == 100
    # A secret from the environment means no file is written.
    assert not (tmp_path / "state" / "secret").exists()
    assert settings.notices == ()


@pytest.mark.parametrize(
    ("security", "port", "label"),
    [("ssl", 465, "smtp.example.nl:465 (ssl)"), ("none", 25, "smtp.example.nl:25 (none)")],
)
def test_default_port_follows_security(
    tmp_path: Path, security: str, port: int, label: str
) -> None:
    settings = load(
        tmp_path, NIEUWSBRIEF_SMTP_HOST="smtp.example.nl", NIEUWSBRIEF_SMTP_SECURITY=security
    )

    assert settings.smtp_port == port
    assert settings.server_label == label


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# local settings\n"
        "NIEUWSBRIEF_SMTP_HOST=smtp.example.nl\n"
        "NIEUWSBRIEF_SMTP_PORT=2525\n"
        'NIEUWSBRIEF_FROM="Bureau | Kennis <nieuwsbrief@bureau-kennis.net>"\n'
        "NIEUWSBRIEF_OUTBOX=from-dotenv\n",
        encoding="utf-8",
    )
    environ = {"NIEUWSBRIEF_SMTP_PORT": "2526", "NIEUWSBRIEF_OUTBOX": "", "PATH": "/bin"}
    settings = load_settings(environ, home=tmp_path, create_secret=True)

    assert settings.env_path == tmp_path / ".env"
    assert settings.smtp_host == "smtp.example.nl"
    assert settings.smtp_port == 2526
    assert settings.from_address == "Bureau | Kennis <nieuwsbrief@bureau-kennis.net>"
    # Set-but-empty in the environment still overrides .env, and then means "default".
    assert settings.outbox_dir == tmp_path / "state" / "outbox"


def test_environment_is_not_modified(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NIEUWSBRIEF_SMTP_HOST=smtp.example.nl\n", encoding="utf-8")
    before = dict(os.environ)
    load_settings(None, home=tmp_path, create_secret=True)

    assert dict(os.environ) == before


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = config_error(
        tmp_path,
        NIEUWSBRIEF_SMTP_HOST="smtp.example.nl",
        NIEUWSBRIEF_SMTP_PORT="abc",
        NIEUWSBRIEF_SMTP_SECURITY="tls",
        NIEUWSBRIEF_SMTP_USER="nieuwsbrief",
        NIEUWSBRIEF_FROM="Bureau <nieuwsbrief@bureau-kennis.net>, ander@x.nl",
        NIEUWSBRIEF_REPLY_TO="redactie@",
        NIEUWSBRIEF_UNSUBSCRIBE_MAILTO="Afmelden <afmelden@bureau-kennis.net>",
        NIEUWSBRIEF_UNSUBSCRIBE_URL="http://www.bureau-kennis.net/afmelden",
        NIEUWSBRIEF_MAX_PER_CONNECTION="veel",
        NIEUWSBRIEF_SECRET="kort",
    )
    lines = message.splitlines()

    assert lines[0] == "Invalid settings:"
    assert lines[-1] == "Fix them in the environment or in .env"
    assert "  NIEUWSBRIEF_SMTP_PORT: 'abc' is not a number (for example 587)" in lines
    assert "  NIEUWSBRIEF_SMTP_SECURITY: 'tls' is not one of starttls, ssl, none" in lines
    assert (
        "  NIEUWSBRIEF_SMTP_USER is set but NIEUWSBRIEF_SMTP_PASSWORD is not; set both or neither"
        in lines
    )
    assert "  NIEUWSBRIEF_MAX_PER_CONNECTION: 'veel' is not a number (for example 100)" in lines
    for variable in (
        "NIEUWSBRIEF_FROM",
        "NIEUWSBRIEF_REPLY_TO",
        "NIEUWSBRIEF_UNSUBSCRIBE_MAILTO",
        "NIEUWSBRIEF_UNSUBSCRIBE_URL",
        "NIEUWSBRIEF_SECRET",
    ):
        assert sum(line.startswith(f"  {variable}: ") for line in lines) == 1, variable
    assert len(lines) == 11  # heading, nine problems, what to do
    # A failed load writes nothing.
    assert not (tmp_path / "state" / "secret").exists()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"NIEUWSBRIEF_SMTP_PORT": "0"}, "NIEUWSBRIEF_SMTP_PORT: 0 is out of range"),
        ({"NIEUWSBRIEF_SMTP_PORT": "65536"}, "use a number from 1 to 65535"),
        ({"NIEUWSBRIEF_SMTP_PASSWORD": PASSWORD}, "NIEUWSBRIEF_SMTP_PASSWORD is set but"),
        ({"NIEUWSBRIEF_FROM": "Jan\r\nBcc: x@evil.nl <a@b.nl>"}, "contains a line break"),
        ({"NIEUWSBRIEF_FROM": "Bureau | Kennis"}, "is not exactly one address"),
        ({"NIEUWSBRIEF_FROM": "nieuwsbrief@localhost"}, "not a valid e-mail address"),
        ({"NIEUWSBRIEF_UNSUBSCRIBE_URL": "https://x.nl/{token}/{token}"}, "exactly once"),
        ({"NIEUWSBRIEF_UNSUBSCRIBE_URL": "ftp://x.nl/{token}"}, "must use https"),
        ({"NIEUWSBRIEF_UNSUBSCRIBE_URL": "{token}"}, "is not a web address"),
        ({"NIEUWSBRIEF_SMTP_SECURITY": "SSL3"}, "'SSL3' is not one of starttls, ssl, none"),
    ],
)
def test_single_validation_errors(tmp_path: Path, environ: dict[str, str], expected: str) -> None:
    assert expected in config_error(tmp_path, **environ)


def test_credentials_never_sent_without_tls(tmp_path: Path) -> None:
    environ = {
        "NIEUWSBRIEF_SMTP_USER": "nieuwsbrief",
        "NIEUWSBRIEF_SMTP_PASSWORD": PASSWORD,
        "NIEUWSBRIEF_SMTP_SECURITY": "none",
    }
    message = config_error(tmp_path, NIEUWSBRIEF_SMTP_HOST="smtp.example.nl", **environ)
    assert "credentials are never sent without TLS; use starttls or ssl" in message

    # A test server on this machine is fine.
    settings = load(
        tmp_path, NIEUWSBRIEF_SMTP_HOST="127.0.0.1", NIEUWSBRIEF_SMTP_PORT="8025", **environ
    )
    assert settings.server_label == "127.0.0.1:8025 (none)"


def test_http_unsubscribe_url_only_on_loopback(tmp_path: Path) -> None:
    for url in ("http://127.0.0.1:8000/afmelden/{token}", "http://localhost/u?t={token}"):
        assert load(tmp_path, NIEUWSBRIEF_UNSUBSCRIBE_URL=url).unsubscribe_url == url


def test_secret_file_created_private_with_notice_then_reused(tmp_path: Path) -> None:
    first = load(tmp_path)
    secret_path = tmp_path / "state" / "secret"

    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    assert secret_path.read_text(encoding="ascii").strip() == first.secret
    assert len(first.secret) >= 40
    assert first.notices == (
        f"Created a new signing secret in {secret_path} (only you can read it); "
        "keep it: unsubscribe links depend on it",
    )

    second = load(tmp_path)
    assert second.secret == first.secret
    assert second.notices == ()


def test_secret_file_location_from_setting(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    settings = load(tmp_path, NIEUWSBRIEF_SECRET_FILE="keys/nb.secret")

    assert settings.secret_path == tmp_path / "keys" / "nb.secret"
    assert settings.secret_path.read_text(encoding="ascii").strip() == settings.secret


def test_secret_file_readable_by_others_gives_warning(tmp_path: Path) -> None:
    secret_path = tmp_path / "state" / "secret"
    secret_path.parent.mkdir()
    secret_path.write_text(SECRET + "\n", encoding="ascii")
    secret_path.chmod(0o644)
    settings = load(tmp_path)

    assert settings.secret == SECRET
    assert settings.notices == (
        f"Warning: others can read the signing secret in {secret_path}; chmod 600 {secret_path}",
    )


def test_short_secret_file_is_an_error(tmp_path: Path) -> None:
    secret_path = tmp_path / "state" / "secret"
    secret_path.parent.mkdir()
    secret_path.write_text("kort\n", encoding="ascii")
    secret_path.chmod(0o600)

    message = config_error(tmp_path)
    assert (
        f"NIEUWSBRIEF_SECRET_FILE: {secret_path}: the secret is too short (4 characters" in message
    )


def test_unknown_setting_gives_a_hint(tmp_path: Path) -> None:
    settings = load(tmp_path, NIEUWSBRIEF_SMTP_HOTS="smtp.example.nl", NIEUWSBRIEF_SECRET=SECRET)
    assert settings.notices == (
        "Warning: unknown setting NIEUWSBRIEF_SMTP_HOTS is ignored "
        "(did you mean NIEUWSBRIEF_SMTP_HOST?)",
    )

    message = config_error(
        tmp_path, NIEUWSBRIEF_SMTP_USER="nieuwsbrief", NIEUWSBRIEF_SMTP_PASS=PASSWORD
    )
    assert "did you mean NIEUWSBRIEF_SMTP_PASSWORD?" in message


def test_dotenv_with_password_readable_by_others_gives_warning(tmp_path: Path) -> None:
    env_path = tmp_path / ".env"
    env_path.write_text(
        f"NIEUWSBRIEF_SMTP_USER=nb\nNIEUWSBRIEF_SMTP_PASSWORD={PASSWORD}\n", encoding="utf-8"
    )
    env_path.chmod(0o644)
    settings = load_settings({"NIEUWSBRIEF_SECRET": SECRET}, home=tmp_path, create_secret=True)

    assert settings.smtp_password == PASSWORD
    assert settings.notices == (
        f"Warning: {env_path} holds a password or secret and others can read it; "
        f"chmod 600 {env_path}",
    )


def test_password_and_secret_never_shown(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        NIEUWSBRIEF_SMTP_HOST="smtp.example.nl",
        NIEUWSBRIEF_SMTP_USER="nieuwsbrief",
        NIEUWSBRIEF_SMTP_PASSWORD=PASSWORD,
        NIEUWSBRIEF_SECRET=SECRET,
    )
    for text in (repr(settings), str(settings), settings.server_label, *settings.notices):
        assert PASSWORD not in text
        assert SECRET not in text

    bad_configurations = [
        {"NIEUWSBRIEF_SMTP_PASSWORD": PASSWORD},
        {
            "NIEUWSBRIEF_SMTP_PASSWORD": PASSWORD,
            "NIEUWSBRIEF_SMTP_USER": "nb",
            "NIEUWSBRIEF_SMTP_PORT": "x",
        },
        {
            "NIEUWSBRIEF_SMTP_HOST": "smtp.example.nl",
            "NIEUWSBRIEF_SMTP_SECURITY": "none",
            "NIEUWSBRIEF_SMTP_USER": "nb",
            "NIEUWSBRIEF_SMTP_PASSWORD": PASSWORD,
        },
        {"NIEUWSBRIEF_SMTP_PASSWORD": PASSWORD, "NIEUWSBRIEF_SECRET": PASSWORD[:10]},
        {"NIEUWSBRIEF_SMTP_PASWORD": PASSWORD, "NIEUWSBRIEF_SMTP_USER": "nb"},
    ]
    for environ in bad_configurations:
        with pytest.raises(ConfigError) as info:
            load_settings(environ, env_file=None, home=tmp_path, create_secret=True)
        assert PASSWORD not in str(info.value)
        assert PASSWORD[:10] not in str(info.value)
        assert PASSWORD not in repr(info.value)
        assert info.value.__cause__ is None and info.value.__context__ is None


def test_env_example_documents_every_setting_and_loads(tmp_path: Path) -> None:
    example = (Path(__file__).parents[1] / ".env.example").read_text(encoding="utf-8")
    for name in KNOWN_VARIABLES:
        assert f"\n# {name}=" in example, name

    # Uncommented as a whole, the examples must form a valid configuration.
    uncommented = "\n".join(
        line.removeprefix("# ")
        for line in example.splitlines()
        if line.startswith("# NIEUWSBRIEF_")
    )
    (tmp_path / ".env").write_text(uncommented, encoding="utf-8")
    settings = load_settings({}, home=tmp_path, create_secret=True)

    assert settings.server_label == "smtp.example.nl:587 (starttls)"
    assert settings.from_address == "Bureau | Kennis <nieuwsbrief@bureau-kennis.net>"
    assert settings.max_per_connection == 100


def test_bounce_address_turns_verp_on_unless_switched_off(tmp_path: Path) -> None:
    assert load(tmp_path).bounce_address is None and not load(tmp_path).verp
    on = load(tmp_path, NIEUWSBRIEF_BOUNCE_ADDRESS="bounces@bureau-kennis.net")
    assert on.bounce_address == "bounces@bureau-kennis.net" and on.verp
    off = load(
        tmp_path, NIEUWSBRIEF_BOUNCE_ADDRESS="bounces@bureau-kennis.net", NIEUWSBRIEF_VERP="off"
    )
    assert not off.verp


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"NIEUWSBRIEF_BOUNCE_ADDRESS": "bounces"}, "NIEUWSBRIEF_BOUNCE_ADDRESS: 'bounces'"),
        ({"NIEUWSBRIEF_BOUNCE_ADDRESS": "b+x@bureau-kennis.net"}, "VERP adds +<token> itself"),
        ({"NIEUWSBRIEF_BOUNCE_ADDRESS": "b" * 23 + "@x.nl"}, "longer than 22 characters"),
        ({"NIEUWSBRIEF_VERP": "yes"}, "NIEUWSBRIEF_VERP: 'yes' is not on or off"),
        ({"NIEUWSBRIEF_IMAP_HOST": "imap.example.nl"}, "set all three"),
        (
            {"NIEUWSBRIEF_IMAP_SECURITY": "tls"},
            "NIEUWSBRIEF_IMAP_SECURITY: 'tls' is not one of ssl",
        ),
        ({"NIEUWSBRIEF_IMAP_PORT": "99999"}, "NIEUWSBRIEF_IMAP_PORT: 99999 is out of range"),
    ],
)
def test_returns_settings_errors(tmp_path: Path, environ: dict[str, str], expected: str) -> None:
    assert expected in config_error(tmp_path, **environ)


def test_imap_password_never_in_repr_and_never_without_tls_to_another_host(tmp_path: Path) -> None:
    imap = {
        "NIEUWSBRIEF_IMAP_HOST": "imap.example.nl",
        "NIEUWSBRIEF_IMAP_USER": "bounces",
        "NIEUWSBRIEF_IMAP_PASSWORD": "s3cr3t-imap",
    }
    settings = load(tmp_path, **imap)
    assert (settings.imap_port, settings.imap_security, settings.imap_folder) == (
        993,
        "ssl",
        "INBOX",
    )
    assert "s3cr3t-imap" not in repr(settings)
    message = config_error(tmp_path, NIEUWSBRIEF_IMAP_SECURITY="none", **imap)
    assert "never sent without TLS" in message and "s3cr3t-imap" not in message
    local = load(
        tmp_path, **{**imap, "NIEUWSBRIEF_IMAP_HOST": "127.0.0.1"}, NIEUWSBRIEF_IMAP_SECURITY="none"
    )
    assert local.imap_port == 143
