"""The one-send-at-a-time lock, with the race between taking it and saying who took it."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

import pytest

from nieuwsbrief.errors import LockError
from nieuwsbrief.sending.lock import IssueLock


def _take_silently(lock: IssueLock) -> int:
    """Hold the lock the way a sender does between flock(2) and writing who it is."""
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock.path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_second_sender_names_a_holder_that_writes_itself_down_late(tmp_path: Path) -> None:
    fd = _take_silently(IssueLock(tmp_path / "locks", "issues/2012-05"))
    info = {"pid": 4242, "host": "redactie-pc", "since": "2026-12-02T20:00:00+00:00"}
    late = threading.Timer(0.2, os.pwrite, (fd, json.dumps(info).encode(), 0))
    late.start()
    try:
        with pytest.raises(LockError) as refused, IssueLock(tmp_path / "locks", "issues/2012-05"):
            pass
    finally:
        late.join()
        os.close(fd)
    assert "process 4242 on redactie-pc since 2026-12-02T20:00:00+00:00" in str(refused.value)


def test_a_holder_that_never_says_who_it_is_is_another_process(tmp_path: Path) -> None:
    fd = _take_silently(IssueLock(tmp_path / "locks", "issues/2012-05"))
    try:
        with pytest.raises(LockError) as refused, IssueLock(tmp_path / "locks", "issues/2012-05"):
            pass
    finally:
        os.close(fd)
    assert "being sent right now by another process" in str(refused.value)


def test_the_lock_is_free_again_after_a_send_and_names_its_new_holder(tmp_path: Path) -> None:
    with IssueLock(tmp_path / "locks", "issues/2012-05") as first:
        assert json.loads(first.path.read_bytes())["pid"] == os.getpid()
    assert first.path.read_bytes() == b""
    with IssueLock(tmp_path / "locks", "issues/2012-05") as second:
        assert json.loads(second.path.read_bytes())["pid"] == os.getpid()
