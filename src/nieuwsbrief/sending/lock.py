"""One send of an issue at a time: an OS file lock in the state folder, gone when the process is.

flock(2) locks belong to the open file: the kernel releases them when the process ends in any
way, kill -9 included, so a lock is never stale. The file says who holds it, for the message
the second sender gets.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from nieuwsbrief import clock
from nieuwsbrief.errors import LockError
from nieuwsbrief.i18n import _

HOLDER_WAIT = 1.0  # seconds a second sender waits to learn who holds the lock


class IssueLock:
    """An exclusive lock on one issue's send, taken without waiting."""

    def __init__(self, locks_dir: Path, issue: str) -> None:
        digest = hashlib.sha256(issue.encode("utf-8")).hexdigest()[:24]
        self.path = locks_dir / f"send-{digest}.lock"
        self.issue = issue
        self._fd: int | None = None

    def __enter__(self) -> IssueLock:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise LockError(
                _(
                    "issue '{issue}' is being sent right now by {holder}; wait for that send "
                    "to finish (or stop it), then run the command again to send to whoever is left"
                ).format(issue=self.issue, holder=holder)
            ) from None
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": clock.stamp(),
        }
        data = json.dumps(info).encode("utf-8")
        os.pwrite(fd, data, 0)  # one write, so a reader sees nothing or all of it
        os.ftruncate(fd, len(data))
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # releases the lock
            self._fd = None


def _holder(fd: int) -> str:
    """Who holds the lock, as the holder wrote it.

    The holder writes just after it takes the lock, so a sender that arrives in between finds
    the file empty (or half written): it looks again for up to HOLDER_WAIT seconds.
    """
    deadline = time.monotonic() + HOLDER_WAIT
    while True:
        try:
            info = json.loads(os.pread(fd, 4096, 0))
            return _("process {pid} on {host} since {since}").format(**info)
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() >= deadline:
                return _("another process")
            time.sleep(0.01)
