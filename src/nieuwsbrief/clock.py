"""The one wall clock: every timestamp and every "today" in nieuwsbrief is read here.

    from nieuwsbrief import clock
    clock.now()     # aware datetime in UTC
    clock.stamp()   # "2012-05-01T09:00:00+00:00": what the ledger, lock and lists store
    clock.today()   # the local calendar date (check's "is this event past", init/new)

Tests set the time instead of sleeping, in-process (a child process reads the real clock):

    with clock.frozen(datetime(2012, 5, 1, 9, 0, tzinfo=UTC)) as frozen:
        ...                                # every read gives 09:00:00
        frozen.advance(seconds=90)         # now 09:01:30, without waiting

Durations, timeouts and rates are not wall-clock time: they use time.monotonic() directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta


class Frozen:
    """A fixed time that only moves when a test moves it."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("clock.frozen needs an aware datetime (tzinfo=UTC)")
        self.at = at.astimezone(UTC)

    def advance(self, **delta: float) -> datetime:
        """Move the time forward by timedelta(**delta) (seconds=..., days=...); return it."""
        self.at += timedelta(**delta)
        return self.at


_frozen: Frozen | None = None


def now() -> datetime:
    """Return the current time, aware, in UTC (the frozen time inside `frozen`)."""
    return _frozen.at if _frozen is not None else datetime.now(UTC)


def stamp() -> str:
    """Return now() as ISO 8601 to the second, the form every stored timestamp has."""
    return now().isoformat(timespec="seconds")


def today() -> date:
    """Return the local calendar date of now()."""
    return now().astimezone().date()


@contextmanager
def frozen(at: datetime) -> Iterator[Frozen]:
    """Make now(), stamp() and today() read `at` (aware) until the block ends; nestable."""
    global _frozen
    previous, _frozen = _frozen, Frozen(at)
    try:
        yield _frozen
    finally:
        _frozen = previous
