"""Home config + .env + environment -> one frozen Settings, checked once, all problems at once.

Precedence, lowest first: nieuwsbrief.toml in the newsletter home, the home's .env, the real
environment (for CI and servers). A key `web_url` in nieuwsbrief.toml is the setting
NIEUWSBRIEF_WEB_URL; secrets are refused there (they belong in .env). Relative paths are taken
from the home, and the state files default to its state folder, never the current folder.
"""

from __future__ import annotations

import difflib
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from nieuwsbrief.addresses import invalid_reason, is_loopback_host, split_address
from nieuwsbrief.errors import ConfigError, NieuwsbriefError
from nieuwsbrief.home import Home, find_home
from nieuwsbrief.i18n import LANGUAGES, _
from nieuwsbrief.model import SECURITIES, Security
from nieuwsbrief.text import breaks_header
from nieuwsbrief.unsubscribe.tokens import (
    MIN_SECRET_LENGTH,
    VERP_LOCAL_MAX,
    has_one_token_placeholder,
    verp_local_fits,
)

DEFAULT_PORTS: dict[Security, int] = {"starttls": 587, "ssl": 465, "none": 25}
PREFIX = "NIEUWSBRIEF_"
KNOWN_VARIABLES = (
    "NIEUWSBRIEF_SMTP_HOST",
    "NIEUWSBRIEF_SMTP_PORT",
    "NIEUWSBRIEF_SMTP_USER",
    "NIEUWSBRIEF_SMTP_PASSWORD",
    "NIEUWSBRIEF_SMTP_SECURITY",
    "NIEUWSBRIEF_FROM",
    "NIEUWSBRIEF_REPLY_TO",
    "NIEUWSBRIEF_UNSUBSCRIBE_MAILTO",
    "NIEUWSBRIEF_UNSUBSCRIBE_URL",
    "NIEUWSBRIEF_SECRET",
    "NIEUWSBRIEF_SECRET_FILE",
    "NIEUWSBRIEF_OUTBOX",
    "NIEUWSBRIEF_SUPPRESSION_DB",
    "NIEUWSBRIEF_LEDGER_DB",
    "NIEUWSBRIEF_MAX_PER_CONNECTION",
    "NIEUWSBRIEF_HOME",  # read by home.py, in the environment only
    "NIEUWSBRIEF_WEB_URL",
    "NIEUWSBRIEF_BOUNCE_ADDRESS",
    "NIEUWSBRIEF_VERP",
    "NIEUWSBRIEF_IMAP_HOST",
    "NIEUWSBRIEF_IMAP_PORT",
    "NIEUWSBRIEF_IMAP_USER",
    "NIEUWSBRIEF_IMAP_PASSWORD",
    "NIEUWSBRIEF_IMAP_FOLDER",
    "NIEUWSBRIEF_IMAP_SECURITY",
    "NIEUWSBRIEF_SMTP_CONNECT_TIMEOUT",
    "NIEUWSBRIEF_SMTP_TIMEOUT",
    "NIEUWSBRIEF_SMTP_DATA_TIMEOUT",
    "NIEUWSBRIEF_SMTP_PIPELINING",
    "NIEUWSBRIEF_LANGUAGE",
)
# Never echo these back: not in errors, notices or repr.
SECRET_VARIABLES = ("NIEUWSBRIEF_SMTP_PASSWORD", "NIEUWSBRIEF_SECRET", "NIEUWSBRIEF_IMAP_PASSWORD")
# State files: default name in the home's state folder, and where the first build kept them.
STATE_FILES: dict[str, tuple[str, str]] = {
    "NIEUWSBRIEF_SECRET_FILE": ("secret", ".nieuwsbrief-secret"),
    "NIEUWSBRIEF_OUTBOX": ("outbox", "outbox"),
    "NIEUWSBRIEF_SUPPRESSION_DB": ("suppression.sqlite", "suppression.sqlite"),
    "NIEUWSBRIEF_LEDGER_DB": ("ledger.sqlite", "ledger.sqlite"),
}
IMAP_DEFAULT_PORTS: dict[Security, int] = {"ssl": 993, "starttls": 143, "none": 143}


@dataclass(frozen=True)
class Settings:
    """Every setting nieuwsbrief uses, validated; nothing downstream reads the environment."""

    smtp_host: str | None  # None: no SMTP, messages go into the local Maildir outbox
    smtp_port: int
    smtp_security: Security
    smtp_user: str | None
    smtp_password: str | None = field(repr=False)
    from_address: str | None  # "Name <addr@domain>" or a bare address; None: the brand decides
    reply_to: str | None
    unsubscribe_mailto: str | None  # bare address for List-Unsubscribe mailto:
    unsubscribe_url: str | None  # contains "{token}" exactly once
    secret: str = field(repr=False)
    secret_path: Path
    outbox_dir: Path
    suppression_path: Path
    ledger_path: Path
    max_per_connection: int  # 0 = unlimited
    base_dir: Path  # the folder relative paths were resolved against: the home
    env_path: Path | None = None  # the .env file that was read, if any
    notices: tuple[str, ...] = ()
    home: Home | None = None
    # False: no secret exists yet and none was made (a read-only command); the tokens in a
    # preview then verify nowhere, which is right: nothing was sent with them.
    secret_persistent: bool = True
    web_url: str | None = None  # where `publish`'s site is served, ends in "/"; None: no links
    bounce_address: str | None = None  # the return path (envelope sender); None: the From address
    verp: bool = False  # envelope sender bounce_local+<token>@domain per message
    imap_host: str | None = None  # the returns mailbox that `nieuwsbrief mailbox` reads
    imap_port: int = 993
    imap_security: Security = "ssl"
    imap_user: str | None = None
    imap_password: str | None = field(default=None, repr=False)
    imap_folder: str = "INBOX"
    # Seconds to wait for the SMTP server: to connect, for each reply, for the reply to a body.
    smtp_connect_timeout: int = 30
    smtp_timeout: int = 60
    smtp_data_timeout: int = 120
    smtp_pipelining: bool = True  # use PIPELINING when the server offers it
    language: str | None = None  # "nl" or "en" for the command line; None: follow the locale

    @property
    def uses_smtp(self) -> bool:
        """Tell whether messages go to an SMTP server rather than the local outbox."""
        return self.smtp_host is not None

    @property
    def server_label(self) -> str:
        """Describe where messages go, for confirmations and logs."""
        if self.smtp_host is None:
            return _("local outbox {path}").format(
                path=_display_path(self.outbox_dir, self.base_dir)
            )
        host = f"[{self.smtp_host}]" if ":" in self.smtp_host else self.smtp_host
        return f"{host}:{self.smtp_port} ({self.smtp_security})"


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    home: Home | Path,
    env_file: Path | None = Path(".env"),
    create_secret: bool = False,
) -> Settings:
    """Read the home's settings; raise one ConfigError listing all problems.

    `create_secret`: a command that sends or records (not a check or a dry run) may create the
    signing secret and move state files of the first build's layout into the state folder.
    """
    if isinstance(home, Path):
        home = Home(root=home.resolve(), config_path=None, state_dir=home.resolve() / "state")
    base_dir = home.root
    environ = os.environ if environ is None else environ
    errors: list[str] = []
    notices: list[str] = []

    values = _config_file_values(home, errors)
    env_values, env_path = _read_env_file(env_file, base_dir, errors, notices)
    values.update(env_values)
    # The real environment wins, even when empty: NIEUWSBRIEF_SMTP_HOST= forces the local outbox.
    values.update({k: v for k, v in environ.items() if k.startswith(PREFIX)})
    _warn_unknown(values, notices)

    def get(name: str) -> str | None:
        value = values.get(name)
        value = value.strip() if value is not None else None
        return value or None

    language = _parse_language(get("NIEUWSBRIEF_LANGUAGE"), errors)
    smtp_host = get("NIEUWSBRIEF_SMTP_HOST")
    security = _parse_security(get("NIEUWSBRIEF_SMTP_SECURITY"), errors)
    smtp_port = _parse_int(
        "NIEUWSBRIEF_SMTP_PORT", get("NIEUWSBRIEF_SMTP_PORT"), DEFAULT_PORTS[security], 1, 65535
    )
    max_per_connection = _parse_int(
        "NIEUWSBRIEF_MAX_PER_CONNECTION", get("NIEUWSBRIEF_MAX_PER_CONNECTION"), 0, 0, None
    )
    timeouts = [
        _parse_int(name, get(name), default, 1, 3600)
        for name, default in (
            ("NIEUWSBRIEF_SMTP_CONNECT_TIMEOUT", 30),
            ("NIEUWSBRIEF_SMTP_TIMEOUT", 60),
            ("NIEUWSBRIEF_SMTP_DATA_TIMEOUT", 120),
        )
    ]
    for problem in (smtp_port, max_per_connection, *timeouts):
        if isinstance(problem, str):
            errors.append(problem)
    pipelining = _parse_on_off(
        "NIEUWSBRIEF_SMTP_PIPELINING", get("NIEUWSBRIEF_SMTP_PIPELINING"), errors
    )

    smtp_user = get("NIEUWSBRIEF_SMTP_USER")
    # Passwords may legitimately start or end with spaces; only an empty one counts as absent.
    smtp_password = values.get("NIEUWSBRIEF_SMTP_PASSWORD") or None
    if smtp_user and not smtp_password:
        errors.append(
            _("{set} is set but {unset} is not; set both or neither").format(
                set="NIEUWSBRIEF_SMTP_USER", unset="NIEUWSBRIEF_SMTP_PASSWORD"
            )
        )
    if smtp_password and not smtp_user:
        errors.append(
            _("{set} is set but {unset} is not; set both or neither").format(
                set="NIEUWSBRIEF_SMTP_PASSWORD", unset="NIEUWSBRIEF_SMTP_USER"
            )
        )
    if smtp_host and smtp_user and security == "none" and not is_loopback_host(smtp_host):
        errors.append(
            _(
                "NIEUWSBRIEF_SMTP_SECURITY: 'none' with a login to {host}: credentials are "
                "never sent without TLS; use starttls or ssl"
            ).format(host=smtp_host)
        )
    if isinstance(smtp_port, int) and smtp_host:
        expected = "ssl" if smtp_port == 465 else "starttls" if smtp_port == 587 else security
        if expected != security:
            notices.append(
                _(
                    "Warning: port {port} usually means NIEUWSBRIEF_SMTP_SECURITY={expected}, "
                    "not {security}"
                ).format(port=smtp_port, expected=expected, security=security)
            )

    from_address = _parse_address("NIEUWSBRIEF_FROM", get("NIEUWSBRIEF_FROM"), errors)
    reply_to = _parse_address("NIEUWSBRIEF_REPLY_TO", get("NIEUWSBRIEF_REPLY_TO"), errors)
    unsubscribe_mailto = _parse_mailto(get("NIEUWSBRIEF_UNSUBSCRIBE_MAILTO"), errors)
    unsubscribe_url = _parse_unsubscribe_url(get("NIEUWSBRIEF_UNSUBSCRIBE_URL"), errors)
    web_url = _parse_web_url(get("NIEUWSBRIEF_WEB_URL"), errors)
    returns = _parse_returns(get, values, errors)

    def path_of(name: str) -> Path:
        # Relative paths are taken from the home, never from wherever the command runs.
        given = get(name)
        if given:
            return base_dir / Path(given).expanduser()
        state_name, legacy_name = STATE_FILES[name]
        path = home.state_dir / state_name
        legacy = base_dir / legacy_name
        if not _exists(path) and _exists(legacy):
            if not create_secret:
                return legacy  # read where the first build left it; a real send moves it
            _move_legacy(legacy, path, home, notices)
        return path

    secret_path = path_of("NIEUWSBRIEF_SECRET_FILE")
    secret = values.get("NIEUWSBRIEF_SECRET") or None
    secret_persistent = True
    if secret is not None:
        if len(secret) < MIN_SECRET_LENGTH:
            errors.append(_short_secret("NIEUWSBRIEF_SECRET", len(secret)))
    elif secret_path.exists():
        secret = _read_secret(secret_path, errors, notices)
    elif create_secret and not errors:
        # Only write a new secret when everything else is fine: a failed load leaves no files.
        secret = _create_secret(secret_path, home, errors, notices)
    else:
        secret, secret_persistent = _PLACEHOLDER_SECRET, False

    if errors:
        raise ConfigError(
            _("Invalid settings:")
            + "\n"
            + "".join(f"  {e}\n" for e in errors)
            # A typo in a name ("..._SMTP_PASS") often explains an error above it.
            + "".join(f"  {n}\n" for n in notices)
            + _("Fix them in the environment or in {file}").format(
                file=str(env_path) if env_path else ".env"
            )
        )
    assert secret is not None  # every path without a secret added an error above

    return Settings(
        smtp_host=smtp_host,
        smtp_port=cast(int, smtp_port),
        smtp_security=security,
        smtp_user=smtp_user,
        smtp_password=smtp_password,
        from_address=from_address,
        reply_to=reply_to,
        unsubscribe_mailto=unsubscribe_mailto,
        unsubscribe_url=unsubscribe_url,
        secret=secret,
        secret_path=secret_path,
        outbox_dir=path_of("NIEUWSBRIEF_OUTBOX"),
        suppression_path=path_of("NIEUWSBRIEF_SUPPRESSION_DB"),
        ledger_path=path_of("NIEUWSBRIEF_LEDGER_DB"),
        max_per_connection=cast(int, max_per_connection),
        base_dir=base_dir,
        env_path=env_path,
        notices=tuple(notices),
        home=home,
        secret_persistent=secret_persistent,
        web_url=web_url,
        **returns,
        smtp_connect_timeout=cast(int, timeouts[0]),
        smtp_timeout=cast(int, timeouts[1]),
        smtp_data_timeout=cast(int, timeouts[2]),
        smtp_pipelining=pipelining,
        language=language,
    )


# Signs the tokens of a check, compose or dry run when no secret exists yet: those tokens are
# never mailed, and writing a secret would break "a check writes nothing".
_PLACEHOLDER_SECRET = "not-a-secret: no message was sent with this"


def _config_file_values(home: Home, errors: list[str]) -> dict[str, str]:
    """Map the setting keys of nieuwsbrief.toml onto NIEUWSBRIEF_* names."""
    values: dict[str, str] = {}
    where_file = home.config_path or home.root
    for key, (value, line) in home.settings.items():
        name = PREFIX + key.upper()
        where = f"{where_file}:{line}" if line else str(where_file)
        if name in SECRET_VARIABLES:
            errors.append(
                _(
                    "{where}: '{key}' is a secret and does not belong in the config file, which "
                    "is kept in git; put {name}=... in {env} (chmod 600)"
                ).format(where=where, key=key, name=name, env=home.root / ".env")
            )
            continue
        if name not in KNOWN_VARIABLES or name == "NIEUWSBRIEF_HOME":
            known = sorted(n.removeprefix(PREFIX).lower() for n in KNOWN_VARIABLES)
            close = difflib.get_close_matches(key.lower(), known, n=1)
            hint = " " + _("(did you mean {name}?)").format(name=close[0]) if close else ""
            errors.append(_("{where}: unknown key '{key}'").format(where=where, key=key) + hint)
            continue
        values[name] = value
    return values


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _move_legacy(legacy: Path, path: Path, home: Home, notices: list[str]) -> None:
    """Move a state file of the first build's layout (home root) into the state folder."""
    home.ensure_state_dir()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        old = legacy.with_name(legacy.name + suffix)
        if _exists(old):
            old.rename(path.with_name(path.name + suffix))
    notices.append(_("Moved {old} into the state folder: {new}").format(old=legacy, new=path))


def _parse_returns(
    get: Callable[[str], str | None], values: Mapping[str, str], errors: list[str]
) -> dict[str, Any]:
    """Parse the return-path (bounce address, VERP) and returns-mailbox (IMAP) settings."""
    bounce = get("NIEUWSBRIEF_BOUNCE_ADDRESS")
    if bounce is not None:
        problem = _("contains a line break") if breaks_header(bounce) else _address_problem(bounce)
        if problem is None and "+" in split_address(bounce)[0]:
            problem = _("has a '+' before '@'; VERP adds +<token> itself")
        elif problem is None and not verp_local_fits(split_address(bounce)[0]):
            problem = _(
                "the part before '@' is longer than {VERP_LOCAL_MAX} characters (VERP)"
            ).format(VERP_LOCAL_MAX=VERP_LOCAL_MAX)
        if problem:
            errors.append(
                _(
                    "NIEUWSBRIEF_BOUNCE_ADDRESS: {bounce!r}: {problem}; for "
                    "example bounces@bureau-kennis.net"
                ).format(bounce=bounce, problem=problem)
            )
            bounce = None
    verp = _parse_on_off("NIEUWSBRIEF_VERP", get("NIEUWSBRIEF_VERP"), errors)
    security = _parse_security(
        get("NIEUWSBRIEF_IMAP_SECURITY"), errors, "IMAP", ("ssl", "starttls")
    )
    port = _parse_int(
        "NIEUWSBRIEF_IMAP_PORT",
        get("NIEUWSBRIEF_IMAP_PORT"),
        IMAP_DEFAULT_PORTS[security],
        1,
        65535,
    )
    if isinstance(port, str):
        errors.append(port)
        port = IMAP_DEFAULT_PORTS[security]
    host = get("NIEUWSBRIEF_IMAP_HOST")
    user = get("NIEUWSBRIEF_IMAP_USER")
    password = values.get("NIEUWSBRIEF_IMAP_PASSWORD") or None
    if host and not (user and password):
        errors.append(
            _(
                "NIEUWSBRIEF_IMAP_HOST is set but NIEUWSBRIEF_IMAP_USER or "
                "NIEUWSBRIEF_IMAP_PASSWORD is not; set all three"
            )
        )
    if host and security == "none" and not is_loopback_host(host):
        errors.append(
            _(
                "NIEUWSBRIEF_IMAP_SECURITY: 'none' with a login to {host}: "
                "credentials are never sent without TLS; use ssl or starttls"
            ).format(host=host)
        )
    return {
        "bounce_address": bounce,
        "verp": bounce is not None and verp,
        "imap_host": host,
        "imap_port": port,
        "imap_security": security,
        "imap_user": user,
        "imap_password": password,
        "imap_folder": get("NIEUWSBRIEF_IMAP_FOLDER") or "INBOX",
    }


def _read_env_file(
    env_file: Path | None, base_dir: Path, errors: list[str], notices: list[str]
) -> tuple[dict[str, str], Path | None]:
    if env_file is None:
        return {}, None
    path = base_dir / env_file
    if not path.is_file():
        return {}, None  # .env is optional; the environment alone is enough
    from dotenv import dotenv_values  # not at import: most runs, and `--help`, have no .env

    try:
        raw = dotenv_values(path, interpolate=False)
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(
            _("{path}: cannot be read ({reason})").format(path=path, reason=exc.__class__.__name__)
        )
        return {}, None
    values = {k: v for k, v in raw.items() if v is not None}
    if any(values.get(name) for name in SECRET_VARIABLES) and _readable_by_others(path):
        notices.append(
            _(
                "Warning: {path} holds a password or secret and others can read it; "
                "chmod 600 {path}"
            ).format(path=path)
        )
    return values, path


# Read by the test suite and CI, not by nieuwsbrief; not worth a warning.
_TOOLING_VARIABLES = (
    "NIEUWSBRIEF_REQUIRE_TOOLS",
    "NIEUWSBRIEF_CHROMIUM",
    "NIEUWSBRIEF_UPDATE_GOLDEN",
)


def _warn_unknown(values: Mapping[str, str], notices: list[str]) -> None:
    for name in sorted(values):
        if name.startswith(PREFIX) and name not in KNOWN_VARIABLES + _TOOLING_VARIABLES:
            close = difflib.get_close_matches(name, KNOWN_VARIABLES, n=1)
            hint = " " + _("(did you mean {name}?)").format(name=close[0]) if close else ""
            notices.append(_("Warning: unknown setting {name} is ignored").format(name=name) + hint)


def _parse_security(
    value: str | None,
    errors: list[str],
    protocol: str = "SMTP",
    order: tuple[Security, Security] = ("starttls", "ssl"),
) -> Security:
    if value is None:
        return order[0]
    lowered = value.lower()
    if lowered in SECURITIES:
        return lowered
    errors.append(
        _("{name}: {value} is not one of {choices}").format(
            name=f"NIEUWSBRIEF_{protocol}_SECURITY",
            value=repr(value),
            choices=", ".join((*order, "none")),
        )
    )
    return order[0]


def _parse_language(value: str | None, errors: list[str]) -> str | None:
    """Return 'nl' or 'en', or None when unset (the locale decides)."""
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in LANGUAGES:
        return lowered
    errors.append(
        _("{name}: {value} is not one of {choices}").format(
            name="NIEUWSBRIEF_LANGUAGE", value=repr(value), choices=", ".join(LANGUAGES)
        )
    )
    return None


def configured_language(environ: Mapping[str, str] | None = None) -> str | None:
    """Return the language the settings ask for, before the command line is parsed.

    Reads NIEUWSBRIEF_LANGUAGE from the environment, else from the .env or nieuwsbrief.toml of
    the home around the current folder; anything unreadable or invalid counts as unset here
    (the command's own load_settings reports it). `--help` needs the language this early.
    """
    environ = os.environ if environ is None else environ
    value = environ.get("NIEUWSBRIEF_LANGUAGE")
    if value is None:
        try:
            home = find_home(None, environ)
        except (NieuwsbriefError, OSError):
            return None
        ignored: list[str] = []
        values = _config_file_values(home, ignored)
        values.update(_read_env_file(Path(".env"), home.root, ignored, ignored)[0])
        value = values.get("NIEUWSBRIEF_LANGUAGE")
    return _parse_language(value, []) if value else None


def _parse_on_off(name: str, value: str | None, errors: list[str]) -> bool:
    """Return a switch that is on unless set to off (on/off, any case); a bad value is an error."""
    word = (value or "on").lower()
    if word not in ("on", "off"):
        errors.append(_("{name}: {value!r} is not on or off").format(name=name, value=value))
    return word != "off"


def _parse_int(name: str, value: str | None, default: int, low: int, high: int | None) -> int | str:
    """Return the number, or an error line for the collected report."""
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        return _("{name}: {value} is not a number (for example {example})").format(
            name=name, value=repr(value), example=default or 100
        )
    if number < low or (high is not None and number > high):
        limits = (
            _("from {low} to {high}").format(low=low, high=high)
            if high is not None
            else _("{low} or more").format(low=low)
        )
        return _("{name}: {number} is out of range; use a number {limits}").format(
            name=name, number=number, limits=limits
        )
    return number


def _parse_address(name: str, value: str | None, errors: list[str]) -> str | None:
    """Check 'Name <addr@domain>' or 'addr@domain' and return it as given."""
    if value is None:
        return None
    if breaks_header(value):
        errors.append(
            _("{name}: contains a line break; give one line like Name <addr@domain.nl>").format(
                name=name
            )
        )
        return None
    from email.headerregistry import AddressHeader  # not at import: `--help` reads the config
    from email.policy import default as default_policy

    try:
        header = default_policy.header_factory("From", value)
        addresses = header.addresses if isinstance(header, AddressHeader) else ()
        defects = header.defects
    except Exception:
        # The stdlib address parser crashes (IndexError, ...) on some malformed input, e.g. "a@".
        addresses, defects = (), ()
    if len(addresses) != 1 or defects or not addresses[0].domain:
        errors.append(
            _(
                "{name}: {value} is not exactly one address; "
                "use Name <addr@domain.nl> or addr@domain.nl"
            ).format(name=name, value=repr(value))
        )
        return None
    problem = _address_problem(addresses[0].addr_spec)
    if problem:
        errors.append(f"{name}: {value!r}: {problem}")
        return None
    return value


def _parse_mailto(value: str | None, errors: list[str]) -> str | None:
    if value is None:
        return None
    # People paste the link they know; keep only the address, which is what List-Unsubscribe needs.
    address = value.removeprefix("mailto:")
    problem = (
        _("contains a line break") if breaks_header(address) else _address_problem(address) or ""
    )
    if problem or "<" in address:
        errors.append(
            _("{name}: {value}: {problem}; for example {example}").format(
                name="NIEUWSBRIEF_UNSUBSCRIBE_MAILTO",
                value=repr(value),
                problem=problem or _("give a bare address"),
                example="afmelden@bureau-kennis.net",
            )
        )
        return None
    return address


def _parse_unsubscribe_url(value: str | None, errors: list[str]) -> str | None:
    if value is None:
        return None
    name = "NIEUWSBRIEF_UNSUBSCRIBE_URL"
    example = _("for example {url}").format(url="https://www.bureau-kennis.net/afmelden?t={token}")
    if not has_one_token_placeholder(value):
        errors.append(
            _("{name}: {value} must contain {placeholder} exactly once; {example}").format(
                name=name, value=repr(value), placeholder="{token}", example=example
            )
        )
        return None
    if any(c.isspace() for c in value):
        errors.append(
            _("{name}: {value} contains white space; {example}").format(
                name=name, value=repr(value), example=example
            )
        )
        return None
    try:
        parts = urlsplit(value.replace("{token}", "x"))
        host = parts.hostname
    except ValueError:
        host = None
    if not host:
        errors.append(
            _("{name}: {value} is not a web address; {example}").format(
                name=name, value=repr(value), example=example
            )
        )
        return None
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host)):
        return value
    errors.append(
        _(
            "{name}: {value} must use https (http only for localhost/127.0.0.1 in tests); {example}"
        ).format(name=name, value=repr(value), example=example)
    )
    return None


def _parse_web_url(value: str | None, errors: list[str]) -> str | None:
    """Check the web edition's address; return it ending in '/' (pages are relative to it)."""
    if value is None:
        return None
    name = "NIEUWSBRIEF_WEB_URL"
    example = _("for example {url}").format(url="https://www.bureau-kennis.net/nieuwsbrief/")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
    if any(c.isspace() for c in value) or not host or parts.query or parts.fragment:
        errors.append(
            _("{name}: {value} is not a web address of a folder; {example}").format(
                name=name, value=repr(value), example=example
            )
        )
        return None
    if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))):
        errors.append(
            _(
                "{name}: {value} must use https (http only for localhost/127.0.0.1); {example}"
            ).format(name=name, value=repr(value), example=example)
        )
        return None
    return value if value.endswith("/") else value + "/"


def _address_problem(addr_spec: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email  # 20 ms: only when checking

    try:
        validate_email(addr_spec, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return _("not a valid e-mail address: {reason}").format(reason=invalid_reason(exc))
    return None


def _create_secret(path: Path, home: Home, errors: list[str], notices: list[str]) -> str | None:
    import secrets

    secret = secrets.token_urlsafe(32)
    try:
        if path.parent == home.state_dir:
            home.ensure_state_dir()
        # Written whole to a private temporary file, then linked into place: another run never
        # reads a half-written secret, and link() never overwrites the one it just made.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secret + "\n")
            os.link(temporary, path)
        finally:
            os.unlink(temporary)
    except FileExistsError:
        return _read_secret(path, errors, notices)
    except OSError as exc:
        errors.append(
            _(
                "NIEUWSBRIEF_SECRET_FILE: cannot create {path} ({reason}); "
                "set NIEUWSBRIEF_SECRET or point NIEUWSBRIEF_SECRET_FILE to a writable place"
            ).format(path=path, reason=exc.strerror)
        )
        return None
    notices.append(
        _(
            "Created a new signing secret in {path} (only you can read it); "
            "keep it: unsubscribe links depend on it"
        ).format(path=path)
    )
    return secret


def _read_secret(path: Path, errors: list[str], notices: list[str]) -> str | None:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(
            _("NIEUWSBRIEF_SECRET_FILE: cannot read {path} ({reason})").format(
                path=path, reason=exc.__class__.__name__
            )
        )
        return None
    if len(secret) < MIN_SECRET_LENGTH:
        errors.append(_short_secret(f"NIEUWSBRIEF_SECRET_FILE: {path}", len(secret)))
        return None
    if _readable_by_others(path):
        notices.append(
            _("Warning: others can read the signing secret in {path}; chmod 600 {path}").format(
                path=path
            )
        )
    return secret


def _short_secret(where: str, length: int) -> str:
    return _(
        "{where}: the secret is too short ({length} characters, at least {minimum}); "
        "generate one with: {command}"
    ).format(
        where=where,
        length=length,
        minimum=MIN_SECRET_LENGTH,
        command="python -c 'import secrets; print(secrets.token_urlsafe(32))'",
    )


def _readable_by_others(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def _display_path(path: Path, base_dir: Path) -> str:
    """Show a path as the user finds it from the current folder (absolute when outside it)."""
    try:
        return f"./{path.resolve().relative_to(Path.cwd().resolve())}"
    except (ValueError, OSError):
        return str(path)
