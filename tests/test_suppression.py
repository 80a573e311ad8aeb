"""The SQLite suppression list, staff requests and request files."""

from __future__ import annotations

import sqlite3
import stat
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nieuwsbrief import clock
from nieuwsbrief.errors import NieuwsbriefError
from nieuwsbrief.unsubscribe.staff import Status, unsubscribe_requests
from nieuwsbrief.unsubscribe.suppression import SCHEMA_VERSION, SuppressionList
from nieuwsbrief.unsubscribe.tokens import mailto_link, make_token, recipient_id

SECRET = "test-secret-0123456789abcdef"


@pytest.fixture
def db(tmp_path: Path) -> SuppressionList:
    return SuppressionList(tmp_path / "suppression.sqlite")


def test_schema_wal_and_version(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    SuppressionList(path)
    SuppressionList(path)  # opening again is fine
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"suppressed", "recipients"} <= tables


def test_add_keeps_first_date_and_is_case_insensitive(db: SuppressionList) -> None:
    with clock.frozen(datetime(2026, 3, 1, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))) as frozen:
        assert db.add("Jan@Gemeente.nl", "staff", "telefoon")
        first = db.entries()[0]
        frozen.advance(days=2)
        assert not db.add("jan@gemeente.nl ", "web")
    assert db.entries() == [first]
    assert first.address == "jan@gemeente.nl"
    assert first.source == "staff"
    assert first.note == "telefoon"
    assert first.added_at == "2026-03-01T09:00:00+00:00"
    assert db.is_suppressed("JAN@gemeente.NL")
    assert not db.is_suppressed("piet@gemeente.nl")
    assert db.suppressed_set() == frozenset({"jan@gemeente.nl"})
    assert db.count() == 1


def test_remove(db: SuppressionList) -> None:
    db.add("jan@gemeente.nl", "staff")
    assert db.remove("JAN@gemeente.nl")
    assert not db.remove("jan@gemeente.nl")
    assert db.count() == 0


def test_unknown_source_is_refused(db: SuppressionList) -> None:
    with pytest.raises(NieuwsbriefError, match="source"):
        db.add("jan@gemeente.nl", "spam")


def test_register_and_add_by_id(db: SuppressionList) -> None:
    address = "jan@gemeente.nl"
    rid = recipient_id(SECRET, address)
    assert db.register([(rid, "Jan@Gemeente.nl")]) == 1
    assert db.register([(rid, address)]) == 0
    assert db.address_for(rid) == address
    assert db.add_by_id(rid, "one-click") == address
    assert db.add_by_id(rid, "web") == address  # idempotent
    assert db.entries()[0].source == "one-click"
    assert db.add_by_id("AAAAAAAAAAAAAAAA", "one-click") is None
    assert db.count() == 1


def test_register_100k_at_once(db: SuppressionList) -> None:
    # How long it takes is measured in benchmarks/bench_test_timings.py, not asserted here.
    pairs = [(f"id{i:06d}", f"lid{i}@example.nl") for i in range(100_000)]
    assert db.register(pairs) == 100_000
    assert db.register(pairs[-10:]) == 0
    assert db.address_for("id000000") == "lid0@example.nl"
    assert db.address_for("id099999") == "lid99999@example.nl"


def test_not_a_database_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "adressen.csv"
    path.write_text("email\njan@gemeente.nl\n" * 200)
    with pytest.raises(NieuwsbriefError, match=r"adressen\.csv.*not a SQLite"):
        SuppressionList(path)


def test_missing_folder_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "s.sqlite"
    SuppressionList(path).add("jan@example.nl", "staff")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_unusable_folder_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "nope").write_text("a file, not a folder")
    with pytest.raises(NieuwsbriefError, match=r"nope/s\.sqlite: cannot create"):
        SuppressionList(tmp_path / "nope" / "s.sqlite")


def test_first_schema_is_migrated_and_keeps_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE suppressed (address TEXT PRIMARY KEY, added_at TEXT NOT NULL,
                source TEXT NOT NULL CHECK (source IN ('one-click', 'web', 'mailto', 'staff',
                'import')), note TEXT NOT NULL DEFAULT '');
            CREATE TABLE recipients (recipient_id TEXT PRIMARY KEY, address TEXT NOT NULL,
                first_seen TEXT NOT NULL);
            INSERT INTO suppressed VALUES ('jan@example.nl', '2026-01-01T00:00:00+00:00',
                'one-click', '');
            PRAGMA user_version = 1;
            """
        )
    conn.close()
    db = SuppressionList(path)
    assert db.add("weg@example.nl", "bounce", "550 5.1.1 no such user")  # a source v1 refused
    assert [(e.address, e.source) for e in db.entries()] == [
        ("jan@example.nl", "one-click"),
        ("weg@example.nl", "bounce"),
    ]


def test_foreign_sqlite_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE klanten (naam TEXT)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(NieuwsbriefError, match="not a suppression list; it was left untouched"):
        SuppressionList(path)
    assert path.read_bytes() == before


def test_readonly_list_writes_nothing(tmp_path: Path) -> None:
    missing = SuppressionList(tmp_path / "state" / "s.sqlite", readonly=True)
    assert missing.suppressed_set() == frozenset()
    assert not (tmp_path / "state").exists()
    path = tmp_path / "s.sqlite"
    SuppressionList(path).add("jan@example.nl", "staff")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert SuppressionList(path, readonly=True).suppressed_set() == {"jan@example.nl"}
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    with pytest.raises(NieuwsbriefError, match="read-only"):
        SuppressionList(path, readonly=True).add("piet@example.nl", "staff")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(NieuwsbriefError, match="version 99"):
        SuppressionList(path)


def test_concurrent_writers_wait_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    SuppressionList(path)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            lst = SuppressionList(path)
            for i in range(50):
                lst.add(f"t{n}-{i}@example.nl", "one-click")
                lst.register([(f"r{n}-{i}", f"t{n}-{i}@example.nl")])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert SuppressionList(path).count() == 200


def test_unsubscribe_requests_outcomes(db: SuppressionList) -> None:
    known = "jan@gemeente.nl"
    db.register([(recipient_id(SECRET, known), known)])
    db.add("al@gemeente.nl", "web")
    token = make_token(SECRET, known)
    stranger = make_token(SECRET, "onbekend@gemeente.nl")
    forged = make_token("another-secret-0123456789", known)
    items = [
        "Piet@Gemeente.nl",
        "al@gemeente.nl",
        f"Re: afmelden {token}",
        mailto_link("afmelden@bureau-kennis.net", token),
        stranger,
        forged,
        token[:20],
        "geen adres",
        "jan at gemeente",
    ]
    outcomes = unsubscribe_requests(SECRET, db, items)
    assert [o.status for o in outcomes] == [
        Status.ADDED,
        Status.ALREADY,
        Status.ADDED,
        Status.ALREADY,
        Status.UNKNOWN_TOKEN,
        Status.INVALID_TOKEN,
        Status.INVALID_TOKEN,
        Status.NOT_AN_ADDRESS,
        Status.NOT_AN_ADDRESS,
    ]
    assert outcomes[0].address == "piet@gemeente.nl"
    assert outcomes[2].address == known
    assert db.suppressed_set() == {"piet@gemeente.nl", "al@gemeente.nl", known}
    assert {e.source for e in db.entries() if e.address != "al@gemeente.nl"} == {"staff"}


def test_unsubscribe_requests_accepts_a_path(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    outcomes = unsubscribe_requests(SECRET, path, ["jan@gemeente.nl"], source="mailto")
    assert outcomes[0].status is Status.ADDED
    assert SuppressionList(path).entries()[0].source == "mailto"


def test_a_version_2_file_gains_reasons_and_keeps_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE suppressed (address TEXT PRIMARY KEY, added_at TEXT NOT NULL,
                source TEXT NOT NULL, note TEXT NOT NULL DEFAULT '');
            CREATE TABLE recipients (recipient_id TEXT PRIMARY KEY, address TEXT NOT NULL,
                first_seen TEXT NOT NULL);
            INSERT INTO suppressed VALUES ('old@example.nl', '2026-01-01T00:00:00+00:00',
                'staff', 'phone');
            PRAGMA user_version = 2;
            """
        )
    conn.close()
    # Read-only (unsubscribe --list, status) reads it as it is, without migrating it.
    readonly = SuppressionList(path, readonly=True).entries()
    assert [(e.address, e.reason) for e in readonly] == [("old@example.nl", "")]
    db = SuppressionList(path)
    assert db.add("new@example.nl", "bounce", "issue 2012-05; Status: 5.1.1", "hard bounce 5.1.1")
    entries = {e.address: e for e in db.entries()}
    assert (entries["old@example.nl"].note, entries["old@example.nl"].reason) == ("phone", "")
    assert (entries["new@example.nl"].source, entries["new@example.nl"].reason) == (
        "bounce",
        "hard bounce 5.1.1",
    )


def test_two_processes_creating_the_list_at_once_both_succeed(tmp_path: Path) -> None:
    """The schema is checked in one snapshot and again under the write lock: no false alarm."""
    import threading

    from nieuwsbrief.sending.ledger import Ledger

    errors: list[BaseException] = []

    def create(start: threading.Barrier, path: Path, make: object) -> None:
        start.wait()
        try:
            made = make(path)  # type: ignore[operator]
            if isinstance(made, Ledger):
                made.close()
        except BaseException as exc:  # collected and reported below
            errors.append(exc)

    for round_ in range(25):
        start = threading.Barrier(4)
        targets = [
            (start, tmp_path / f"s{round_}.sqlite", SuppressionList),
            (start, tmp_path / f"l{round_}.sqlite", Ledger),
        ]
        threads = [
            threading.Thread(target=create, args=target) for target in targets for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
