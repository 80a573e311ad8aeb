"""Where returned messages come from: an IMAP folder, a local Maildir, or an mbox file.

Each source yields raw messages (bounded in size) and marks a processed one so the next run
skips it: IMAP with the keyword `$NbProcessed`, a Maildir by moving the file into its
`verwerkt` folder (Maildir++ `.verwerkt/`, shown as a folder by IMAP servers and mail programs),
an mbox not at all (it is an export; the returns file remembers what was processed).
"""

from __future__ import annotations

import contextlib
import imaplib
import mailbox
import os
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from imap_tools import AND, BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import MailboxLoginError

from nieuwsbrief.config import Settings
from nieuwsbrief.errors import ReturnsSourceError
from nieuwsbrief.i18n import _
from nieuwsbrief.returns.classify import MAX_MESSAGE_BYTES

PROCESSED_KEYWORD = "$NbProcessed"
PROCESSED_FOLDER = "verwerkt"
IMAP_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Item:
    """One message from a source; `data` is None when it was too big to read (see `note`)."""

    ref: str  # where it is, for the report: a Maildir file name, an IMAP UID, an mbox index
    data: bytes | None
    note: str = ""


class Source(Protocol):
    """A mailbox of returned messages."""

    label: str

    def items(self) -> Iterator[Item]:
        """Yield every message not yet marked as processed."""
        ...

    def mark(self, item: Item) -> None:
        """Mark one message as processed."""
        ...

    def close(self) -> None:
        """Release the mailbox."""
        ...


def _too_big(size: int) -> str:
    return f"{size:,} bytes, larger than {MAX_MESSAGE_BYTES:,}: not read"


class MaildirSource:
    """The messages in `new/` and `cur/` of a Maildir; processed ones move to `.verwerkt/`."""

    def __init__(self, path: Path) -> None:
        missing = [sub for sub in ("cur", "new", "tmp") if not (path / sub).is_dir()]
        if missing:
            raise ReturnsSourceError(
                _(
                    "{path}: is not a Maildir (no {value}); give the folder that "
                    "holds cur/, new/ and tmp/"
                ).format(path=path, value=", ".join(m + "/" for m in missing))
            )
        self.path = path
        self.label = f"Maildir {path}"
        self._done = path / f".{PROCESSED_FOLDER}"

    def items(self) -> Iterator[Item]:
        """Yield the messages of the top folder, oldest first by file name."""
        for sub in ("new", "cur"):
            folder = self.path / sub
            for name in sorted(os.listdir(folder)):
                if name.startswith("."):
                    continue
                path = folder / name
                try:
                    info = path.lstat()
                    if not path.is_file() or path.is_symlink():
                        continue
                    if info.st_size > MAX_MESSAGE_BYTES:
                        yield Item(f"{sub}/{name}", None, _too_big(info.st_size))
                        continue
                    data = path.read_bytes()
                except FileNotFoundError:
                    continue  # a mail program moved it meanwhile
                except OSError as exc:
                    yield Item(f"{sub}/{name}", None, f"cannot be read ({exc.strerror})")
                    continue
                yield Item(f"{sub}/{name}", data)

    def mark(self, item: Item) -> None:
        """Move the message into the `verwerkt` folder, flagged seen (S)."""
        for sub in ("cur", "new", "tmp"):
            (self._done / sub).mkdir(parents=True, exist_ok=True)
        (self._done / "maildirfolder").touch()
        base = item.ref.split("/", 1)[1].split(":2,", 1)[0]
        flags = item.ref.split(":2,", 1)[1] if ":2," in item.ref else ""
        flags = "".join(sorted(set(flags) | {"S"}))
        try:
            os.replace(self.path / item.ref, self._done / "cur" / f"{base}:2,{flags}")
        except OSError as exc:
            raise ReturnsSourceError(
                _("{path}: cannot move it into {done} ({strerror})").format(
                    path=self.path / item.ref, done=self._done, strerror=exc.strerror
                )
            ) from None

    def close(self) -> None:
        """Nothing to release."""


class MboxSource:
    """An mbox file (exported from a mail program); read only, never changed."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise ReturnsSourceError(
                _("{path}: no such mbox file; give the exported .mbox file").format(path=path)
            )
        self.path = path
        self.label = f"mbox {path}"
        self._box = mailbox.mbox(path, create=False)

    def items(self) -> Iterator[Item]:
        """Yield every message in the file."""
        try:
            keys = list(self._box.keys())
        except (OSError, mailbox.Error) as exc:
            raise ReturnsSourceError(
                _("{path}: cannot be read as an mbox ({exc})").format(path=self.path, exc=exc)
            ) from None
        for number, key in enumerate(keys, start=1):
            with self._box.get_file(key) as handle:  # read at most the limit + 1 byte
                data = handle.read(MAX_MESSAGE_BYTES + 1)
            if len(data) > MAX_MESSAGE_BYTES:
                yield Item(f"message {number}", None, f"larger than {MAX_MESSAGE_BYTES:,} bytes")
                continue
            yield Item(f"message {number}", data)

    def mark(self, item: Item) -> None:
        """Leave the export as it is; the returns file remembers the message."""

    def close(self) -> None:
        """Close the file."""
        self._box.close()


class ImapSource:
    """An IMAP folder; processed messages get the keyword `$NbProcessed` (no expunge, ever)."""

    def __init__(self, settings: Settings) -> None:
        host, port = settings.imap_host, settings.imap_port
        if host is None or settings.imap_user is None or settings.imap_password is None:
            raise ReturnsSourceError(
                _(
                    "no returns mailbox given: use --maildir PATH or --mbox "
                    "FILE, or set NIEUWSBRIEF_IMAP_HOST, NIEUWSBRIEF_IMAP_USER "
                    "and NIEUWSBRIEF_IMAP_PASSWORD"
                )
            )
        where = f"{host}:{port} ({settings.imap_security})"
        self.label = f"IMAP {settings.imap_user}@{host}:{port}/{settings.imap_folder}"
        context = ssl.create_default_context()  # verified; a private CA via SSL_CERT_FILE
        box: BaseMailBox
        try:
            if settings.imap_security == "ssl":
                box = MailBox(host, port, timeout=IMAP_TIMEOUT_SECONDS, ssl_context=context)
            elif settings.imap_security == "starttls":
                box = MailBoxStartTls(host, port, timeout=IMAP_TIMEOUT_SECONDS, ssl_context=context)
            else:
                box = MailBoxUnencrypted(host, port, timeout=IMAP_TIMEOUT_SECONDS)
        except ssl.SSLError as exc:
            raise ReturnsSourceError(
                _(
                    "{where}: TLS failed ({reason}); check "
                    "NIEUWSBRIEF_IMAP_SECURITY and the server's certificate (a "
                    "private CA can be trusted with SSL_CERT_FILE)"
                ).format(where=where, reason=exc.reason or exc)
            ) from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ReturnsSourceError(
                _("{where}: cannot connect ({exc}); check NIEUWSBRIEF_IMAP_HOST and _PORT").format(
                    where=where, exc=exc
                )
            ) from None
        try:
            box.login(settings.imap_user, settings.imap_password, initial_folder=None)
        except MailboxLoginError:
            box.logout()
            raise ReturnsSourceError(
                _(
                    "{where} refused the login for {imap_user!r}; check "
                    "NIEUWSBRIEF_IMAP_USER and NIEUWSBRIEF_IMAP_PASSWORD"
                ).format(where=where, imap_user=settings.imap_user)
            ) from None
        try:
            box.folder.set(settings.imap_folder)
        except Exception as exc:  # imap-tools raises its own MailboxFolderSelectError
            box.logout()
            raise ReturnsSourceError(
                _(
                    "{where}: no folder {imap_folder!r} ({kind}); check NIEUWSBRIEF_IMAP_FOLDER"
                ).format(where=where, imap_folder=settings.imap_folder, kind=exc.__class__.__name__)
            ) from None
        self._box = box
        self._where = where

    def items(self) -> Iterator[Item]:
        """Yield the messages without the processed keyword, oldest first (BODY.PEEK: unread)."""
        try:
            yield from self._items()
        except (OSError, imaplib.IMAP4.error) as exc:
            raise self._lost(exc) from None

    def _lost(self, exc: Exception) -> ReturnsSourceError:
        return ReturnsSourceError(
            _(
                "{where}: the connection failed mid-run ({kind}: {exc}); "
                "what was processed before it is kept: run the same command "
                "again"
            ).format(where=self._where, kind=exc.__class__.__name__, exc=exc)
        )

    def _items(self) -> Iterator[Item]:
        todo = AND(no_keyword=PROCESSED_KEYWORD)
        big = set(self._box.uids(AND(no_keyword=PROCESSED_KEYWORD, size_gt=MAX_MESSAGE_BYTES)))
        for uid in self._box.uids(todo):
            if uid in big:
                yield Item(f"UID {uid}", None, f"larger than {MAX_MESSAGE_BYTES:,} bytes: not read")
                continue
            status, data = self._box.client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next(
                (part[1] for part in data if isinstance(part, tuple) and len(part) == 2), None
            )
            if status != "OK" or not isinstance(raw, bytes):
                yield Item(f"UID {uid}", None, f"the server did not return it ({status})")
                continue
            yield Item(f"UID {uid}", raw)

    def mark(self, item: Item) -> None:
        """Add the keyword with a plain UID STORE (imap-tools' flag() would also EXPUNGE)."""
        uid = item.ref.removeprefix("UID ")
        if not re.fullmatch(r"\d+", uid):
            raise ReturnsSourceError(
                _("{where}: bad UID {uid!r}").format(where=self._where, uid=uid)
            )
        try:
            status, data = self._box.client.uid(
                "STORE", uid, "+FLAGS.SILENT", f"({PROCESSED_KEYWORD})"
            )
        except (OSError, imaplib.IMAP4.error) as exc:
            raise self._lost(exc) from None
        if status != "OK":
            raise ReturnsSourceError(
                _(
                    "{where}: cannot set the keyword {PROCESSED_KEYWORD} on UID "
                    "{uid} ({data!r}); the folder must allow keywords "
                    "(PERMANENTFLAGS \\*)"
                ).format(where=self._where, PROCESSED_KEYWORD=PROCESSED_KEYWORD, uid=uid, data=data)
            )

    def close(self) -> None:
        """Log out."""
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self._box.logout()
