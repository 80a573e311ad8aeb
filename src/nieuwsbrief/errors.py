"""The one error family of nieuwsbrief; cli.py turns it into a message and an exit code.

NieuwsbriefError            exit 2 unless stated otherwise
├── ContentError            an issue folder, article, agenda or brand file is wrong (file:line)
├── TemplateError           a template failed to render (file:line)
├── SubscriberListError     a subscriber list cannot be read at all
├── HomeError               no newsletter home, or its nieuwsbrief.toml is wrong
├── ConfigError             environment / .env / nieuwsbrief.toml settings are wrong
├── LockError               another send of the same issue is running
├── DeliveryError           the mail server refused us as a whole (connect, TLS, login)
└── LedgerError             the send ledger disagrees with what is asked (changed issue, ...)
"""

from __future__ import annotations

from pathlib import Path


class NieuwsbriefError(Exception):
    """Base class: a problem the user can fix; the message says where and what to do."""

    exit_code = 2


def _where(path: Path | str, line: int | None) -> str:
    return f"{path}:{line}" if line else f"{path}"


class ContentError(NieuwsbriefError):
    """Something in the issue's content files is wrong."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.detail = message
        super().__init__(f"{_where(path, line)}: {message}")


class TemplateError(ContentError):
    """A Jinja2 or MJML template could not be rendered."""


class SubscriberListError(NieuwsbriefError):
    """A subscriber list cannot be read at all (not one row is usable)."""


class HomeError(NieuwsbriefError):
    """No newsletter home was found, or its nieuwsbrief.toml cannot be used."""


class LockError(NieuwsbriefError):
    """Another process is sending the same issue; the message says who and since when."""


class ConfigError(NieuwsbriefError):
    """One or more settings are missing or invalid; the message lists all of them."""


class DeliveryError(NieuwsbriefError):
    """The mail server cannot be used at all (connection, TLS or login failed)."""


class LedgerError(NieuwsbriefError):
    """The send ledger refuses the request (for example: the issue changed since it started)."""
