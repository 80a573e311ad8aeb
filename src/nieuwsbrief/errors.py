"""The one error family of nieuwsbrief; cli.py turns it into a message and an exit code.

Every class below is defined here and nowhere else; core code raises only the subclasses, never
NieuwsbriefError itself. The exit code is a class attribute (tests/test_errors.py compares this
tree with the classes):

NieuwsbriefError            exit 2 unless stated otherwise
├── UsageError              options that do not fit together, or a send that cannot be confirmed
├── HomeError               no newsletter home, or its nieuwsbrief.toml is wrong
├── ScaffoldError           init/new would change existing files, or got an unusable name
├── ConfigError             environment / .env / nieuwsbrief.toml settings are wrong
├── ContentError            an issue folder, article, agenda or brand file is wrong (file:line)
│   ├── TemplateError       a template failed to render (file:line)
│   └── InputFileError      an input file is missing, not a regular file, too big or unreadable
├── TableError              a text table (CSV) cannot be read; the caller names the file
├── SubscriberListError     a subscriber list cannot be read, or lacks a column the issue uses
├── AddressError            an address has no SMTP form (its domain is not a valid IDNA name)
├── MessageError            a recipient's values cannot be put in a message
├── CheckError              the issue has problems `check` reports; a send refuses it
├── LockError               another send of the same issue is running
├── LedgerError             the send ledger disagrees with what is asked (changed issue, ...)
├── DeliveryError           the mail server refused us as a whole (connect, TLS, login, proof)
├── PartialSendError        exit 1: the send stopped part-way; the message says how to resume
├── SuppressionError        the suppression list cannot be used, or lacks the address
├── ReturnsSourceError      the returns mailbox cannot be read (Maildir, mbox, IMAP)
├── ReturnsStoreError       the returns file (what was processed) cannot be used
├── PreviewError            the preview cannot start, or cannot show what is asked
├── EndpointError           the unsubscribe endpoint cannot start
└── PublishError            the web edition cannot be built as asked
"""

from __future__ import annotations

from pathlib import Path


class NieuwsbriefError(Exception):
    """Base class: a problem the user can fix; the message says where and what to do."""

    exit_code = 2


def _where(path: Path | str, line: int | None) -> str:
    return f"{path}:{line}" if line else f"{path}"


class UsageError(NieuwsbriefError):
    """The options given do not fit together, or a send cannot be confirmed."""


class HomeError(NieuwsbriefError):
    """No newsletter home was found, or its nieuwsbrief.toml cannot be used."""


class ScaffoldError(NieuwsbriefError):
    """`init` or `new` would change existing files, or was given a name it cannot use."""


class ConfigError(NieuwsbriefError):
    """One or more settings are missing or invalid; the message lists all of them."""


class ContentError(NieuwsbriefError):
    """Something in the issue's content files is wrong."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.detail = message
        super().__init__(f"{_where(path, line)}: {message}")


class TemplateError(ContentError):
    """A Jinja2 or MJML template could not be rendered."""


class InputFileError(ContentError):
    """An input file cannot be read: missing, not a regular file, too big, or unreadable."""


class TableError(NieuwsbriefError):
    """The bytes are not a text table; the message says why and what to do, `line` where.

    Raised without a file name; each caller names the file (`located`) in its own error.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line

    def located(self, path: object) -> str:
        """Return the message prefixed with `path:line` (or `path` when no line is known)."""
        return f"{_where(str(path), self.line)}: {self}"


class SubscriberListError(NieuwsbriefError):
    """A subscriber list cannot be read at all, or lacks a column the issue uses."""


class AddressError(NieuwsbriefError):
    """An address cannot be put into SMTP form (its domain is not a valid IDNA name)."""


class MessageError(NieuwsbriefError):
    """A recipient's values cannot be put in a message (for example a line break in a name)."""


class CheckError(NieuwsbriefError):
    """The issue has problems (as `check` reports them); a send refuses it without --force."""


class LockError(NieuwsbriefError):
    """Another process is sending the same issue; the message says who and since when."""


class LedgerError(NieuwsbriefError):
    """The send ledger refuses the request (for example: the issue changed since it started)."""


class DeliveryError(NieuwsbriefError):
    """The mail server cannot be used at all (connection, TLS or login failed, proof refused)."""


class PartialSendError(NieuwsbriefError):
    """The send stopped after some deliveries; the message gives the command that resumes it."""

    exit_code = 1  # some were sent: not "nothing happened" (2)


class SuppressionError(NieuwsbriefError):
    """The suppression list cannot be opened or written, or does not hold the address."""


class ReturnsSourceError(NieuwsbriefError):
    """The returns mailbox cannot be read (missing Maildir, refused login, ...)."""


class ReturnsStoreError(NieuwsbriefError):
    """The returns file (which returns were processed) cannot be read, created or used."""


class PreviewError(NieuwsbriefError):
    """The preview cannot start (no free port, unknown host) or show what is asked."""


class EndpointError(NieuwsbriefError):
    """The unsubscribe endpoint cannot start (the address cannot be listened on)."""


class PublishError(NieuwsbriefError):
    """The site cannot be built as asked (no issues, no web address, an unwritable folder)."""
