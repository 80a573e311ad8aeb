"""The one wall clock: frozen in tests, and what the stored timestamps really read."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from nieuwsbrief import clock
from nieuwsbrief.sending.ledger import ACCEPTED, Ledger
from nieuwsbrief.unsubscribe.suppression import SuppressionList

MAY_FIRST = datetime(2012, 5, 1, 9, 0, tzinfo=UTC)


def test_frozen_time_moves_only_when_advanced_and_ends_with_the_block() -> None:
    with clock.frozen(MAY_FIRST) as frozen:
        assert clock.now() == MAY_FIRST
        assert clock.stamp() == "2012-05-01T09:00:00+00:00"
        frozen.advance(seconds=90)
        assert clock.stamp() == "2012-05-01T09:01:30+00:00"
        with clock.frozen(datetime(2030, 1, 1, 12, tzinfo=UTC)):
            assert clock.today() == date(2030, 1, 1)
        assert clock.now() == datetime(2012, 5, 1, 9, 1, 30, tzinfo=UTC)
    assert clock.now().year >= 2026  # the real clock again


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"), clock.frozen(datetime(2012, 5, 1)):
        pass


def test_the_suppression_list_stamps_entries_with_the_clock(tmp_path: Path) -> None:
    suppression = SuppressionList(tmp_path / "suppression.sqlite")
    with clock.frozen(MAY_FIRST) as frozen:
        suppression.add("a@example.nl", "staff", "asked by phone")
        frozen.advance(days=1)
        suppression.add("b@example.nl", "staff", "asked by mail")
    stamps = {entry.address: entry.added_at for entry in suppression.entries()}
    assert stamps == {
        "a@example.nl": "2012-05-01T09:00:00+00:00",
        "b@example.nl": "2012-05-02T09:00:00+00:00",
    }


def test_the_ledger_stamps_outcomes_with_the_clock(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with clock.frozen(MAY_FIRST) as frozen:
        ledger.begin_issue("2012-05", "hash", "Nieuwsbrief mei", force=False)
        frozen.advance(minutes=5)
        ledger.record("2012-05", "a@example.nl", ACCEPTED, "250 ok", 1)
    (row,) = ledger.rows("2012-05", [ACCEPTED])
    assert row.updated_at == "2012-05-01T09:05:00+00:00"
