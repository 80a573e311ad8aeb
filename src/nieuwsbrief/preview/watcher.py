"""Live reload: a thread that polls the modification times of every input file (issue folder,
agenda, the house style in force, subscriber list) and the local outbox, and re-renders the
preview's state after a change, once the editor has finished saving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from nieuwsbrief.i18n import _
from nieuwsbrief.preview.state import PreviewState
from nieuwsbrief.sending.outbox import outbox_stamp

POLL_SECONDS = 0.25
# Editors save in steps (write a temporary file, rename, touch); render once they are done.
SETTLE_SECONDS = 0.1


def file_stamps(paths: list[Path]) -> dict[Path, tuple[int, int]]:
    """Return (modification time, size) of each path that exists."""
    stamps = {}
    for path in paths:
        try:
            status = path.stat()
        except OSError:
            continue
        stamps[path] = (status.st_mtime_ns, status.st_size)
    return stamps


# --- watching ------------------------------------------------------------------------------


class Watcher(threading.Thread):
    """Poll the input files and the outbox; re-render after a change."""

    def __init__(self, state: PreviewState, report: Callable[[str], None]) -> None:
        super().__init__(name="nieuwsbrief-preview-watcher", daemon=True)
        self.state = state
        self.report = report
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Stop polling (the thread ends within one poll)."""
        self._stopping.set()

    def run(self) -> None:
        inputs = self.state.inputs
        stamps = file_stamps(inputs.watched_files())
        outbox = outbox_stamp(inputs.outbox_dir)
        failing = self.state.failing
        while not self._stopping.wait(POLL_SECONDS):
            current = file_stamps(inputs.watched_files())
            if current != stamps:
                while not self._stopping.wait(SETTLE_SECONDS):
                    settled = file_stamps(inputs.watched_files())
                    if settled == current:
                        break
                    current = settled
                stamps = current
                error = self.state.refresh()
                if error:
                    self.report(_("Error: {message}").format(message=error))
                elif failing:
                    self.report(_("Fixed: the email renders again."))
                failing = error is not None
            now = outbox_stamp(inputs.outbox_dir)
            if now != outbox:
                outbox = now
                self.state.touch()
