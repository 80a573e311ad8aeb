"""The ledger records the results that arrive together in one commit: all of them or none."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from nieuwsbrief.errors import LedgerError
from nieuwsbrief.sending.ledger import ACCEPTED, FAILED, Ledger


def test_results_recorded_together_are_all_recorded_or_none(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.record_many("issues/2012-05", [("a@example.nl", ACCEPTED, "250 2.0.0 ok", 1, "<a@x>")])

    broken = cast(str, None)  # a status the table refuses (NOT NULL), after a good row
    with pytest.raises(LedgerError, match="cannot write the send ledger"):
        ledger.record_many(
            "issues/2012-05",
            [
                ("b@example.nl", ACCEPTED, "250 2.0.0 ok", 1, "<b@x>"),
                ("c@example.nl", broken, "", 1, ""),
            ],
        )
    assert ledger.states("issues/2012-05") == {"a@example.nl": ACCEPTED}

    # The ledger is still usable, and a later outcome of the same address updates its row.
    ledger.record_many(
        "issues/2012-05",
        [
            ("b@example.nl", ACCEPTED, "250 2.0.0 ok", 1, "<b@x>"),
            ("a@example.nl", FAILED, "550 5.1.1 unknown", 1, ""),
        ],
    )
    assert ledger.states("issues/2012-05") == {"a@example.nl": FAILED, "b@example.nl": ACCEPTED}
    ledger.close()
