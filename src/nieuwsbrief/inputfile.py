"""Read one input file with a size cap; only a regular file is read, never a device or a pipe.

Every file nieuwsbrief reads from the user (issue.yaml, articles, agenda, brand.yaml, subscriber
lists, unsubscribe request files) comes through `read_input`, so a list exported wrongly, an
article that is a symlink to /dev/zero or a FIFO never fills the memory or hangs the command.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from nieuwsbrief.errors import InputFileError
from nieuwsbrief.i18n import N_, _

MB = 1024 * 1024
CONTENT_LIMIT = 5 * MB  # an article, issue.yaml, the agenda, brand.yaml
LIST_LIMIT = 50 * MB  # a subscriber list or an unsubscribe request file, read whole
# A subscriber list that `send` reads as a stream (twice), so its size costs no memory.
STREAM_LIST_LIMIT = 2048 * MB


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return _("a folder")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return _("a device")
    if stat.S_ISFIFO(mode):
        return _("a pipe (FIFO)")
    if stat.S_ISSOCK(mode):
        return _("a socket")
    return _("not a regular file")


def _size(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB else f"{size:,} bytes"


def read_input(path: Path, limit: int, what: str = N_("a file")) -> bytes:
    """Return the bytes of the regular file at `path` (symlinks followed), at most `limit`."""
    with open_input(path, limit, what) as handle:
        data = handle.read(limit + 1)  # a file that grew since stat() is still capped
    if len(data) > limit:
        raise InputFileError(path, _too_big(len(data), limit, what))
    return data


def open_input(path: Path, limit: int, what: str = N_("a file")) -> BinaryIO:
    """Open the regular file at `path` (symlinks followed) for reading if it is at most `limit`.

    For a file too big to hold (a long subscriber list read twice as a stream); the caller
    reads it in chunks and should stop at `limit` should the file grow meanwhile.
    """
    try:
        info = path.stat()  # follows symlinks: the target is what would be read
    except FileNotFoundError:
        raise InputFileError(path, _("no such file; check the path")) from None
    except OSError as exc:
        raise InputFileError(
            path, _("cannot be read ({reason})").format(reason=exc.strerror)
        ) from None
    if not stat.S_ISREG(info.st_mode):
        target = ""
        if path.is_symlink():
            target = " " + _("(a link to {target})").format(target=path.resolve())
        hint = (
            _("give the folder's file instead") if stat.S_ISDIR(info.st_mode) else _("give a file")
        )
        raise InputFileError(
            path,
            _("is {kind}{target}, not a file; {hint}").format(
                kind=_kind(info.st_mode), target=target, hint=hint
            ),
        )
    if info.st_size > limit:
        raise InputFileError(path, _too_big(info.st_size, limit, what))
    try:
        # O_NONBLOCK: should the file have been swapped for a FIFO since stat(), open() must
        # not wait for a writer; fstat() below then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputFileError(
            path, _("cannot be read ({reason})").format(reason=exc.strerror)
        ) from None
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise InputFileError(path, _("is not a regular file; give a file"))
    return handle


def too_big(path: Path, size: int, limit: int, what: str) -> InputFileError:
    """Return the error for a file of `size` bytes over `limit` (one that grew while read)."""
    return InputFileError(path, _too_big(size, limit, what))


def _too_big(size: int, limit: int, what: str) -> str:
    return _(
        "is {size}; {what} may be at most {limit}. "
        "Is this the right file? Split it, or remove what does not belong in it"
    ).format(size=_size(size), what=_(what), limit=_size(limit))
