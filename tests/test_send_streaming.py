"""send streams the list: read twice, never held, with a bounded look-ahead; and PIPELINING off.

Real deliveries into aiosmtpd on 127.0.0.1; the list file is real and the instruments only
count (the reads of the file, the jobs the delivery pulled against the results it reported).
"""

from __future__ import annotations

import codecs
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from nieuwsbrief import subscribers as subscribers_mod
from nieuwsbrief.addresses import normalise_address
from nieuwsbrief.cli import _factory_maker
from nieuwsbrief.config import load_settings
from nieuwsbrief.errors import NieuwsbriefError
from nieuwsbrief.home import find_home
from nieuwsbrief.inputfile import open_input
from nieuwsbrief.sending import ledger as ledger_mod
from nieuwsbrief.sending.campaign import Progress, SendReport, SendRequest, send_issue
from nieuwsbrief.sending.delivery import Job, Result, deliver
from nieuwsbrief.sending.transport import Preopened
from smtp_server import SmtpServer
from test_delivery import Collector, address, jobs, smtp
from test_send import members, send_cli, smtp_env, write_list


def core_send(
    issue: Path,
    subscribers: Path,
    progress: Callable[[Progress], None] | None = None,
    connections: int = 2,
) -> SendReport:
    settings = load_settings(home=find_home(issue), create_secret=True)
    request = SendRequest(
        issue_dir=issue, subscribers_path=subscribers, connections=connections, command="send"
    )
    return send_issue(
        request,
        settings,
        lambda prefix: _factory_maker(settings, prefix),
        confirm=lambda plan: True,
        progress=progress,
    )


class Instrumented:
    """Wraps the real `deliver`: counts jobs pulled and results reported, keeps the peak gap."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pulled = 0
        self.reported = 0
        self.peak = 0
        self.connections = 0
        real = deliver  # the engine itself; the campaign's name for it is replaced

        def counting(jobs: Iterable[Job], *args: Any, **kwargs: Any) -> Any:
            on_results: Callable[[list[Result]], None] = kwargs.pop("on_results")
            self.connections = kwargs["connections"]

            def counted() -> Iterator[Job]:
                for job in jobs:
                    self.pulled += 1
                    self.peak = max(self.peak, self.pulled - self.reported)
                    yield job

            def reported(results: list[Result]) -> None:
                self.reported += len(results)
                on_results(results)

            return real(counted(), *args, on_results=reported, **kwargs)

        monkeypatch.setattr("nieuwsbrief.sending.campaign.deliver", counting)


def count_opens(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[Path]:
    opened: list[Path] = []
    real = open_input

    def spy(target: Path, *args: Any, **kwargs: Any) -> Any:
        if target == path:
            opened.append(target)
        return real(target, *args, **kwargs)

    monkeypatch.setattr("nieuwsbrief.subscribers.open_input", spy)
    return opened


def test_send_reads_the_list_twice_and_keeps_a_bounded_look_ahead(
    example_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = members(1500)
    subscribers = write_list(tmp_path / "lijst.csv", [*rows, rows[3], ("Kapot", "geen-adres")])
    instrument = Instrumented(monkeypatch)
    opened = count_opens(monkeypatch, subscribers)
    progress: list[tuple[int, int]] = []
    with SmtpServer(pipelining=True, headers_only=True) as server:
        smtp_env(monkeypatch, server)
        report = core_send(
            example_copy,
            subscribers,
            connections=2,
            progress=lambda p: progress.append((p.total, p.delivered)),
        )
        received = Counter(server.recipients())

    assert report.delivered == 1500 and received == Counter(a for _, a in rows)
    assert (report.plan.duplicates, report.plan.invalid, report.plan.list_rows) == (1, 1, 1502)
    # The encoding check, the first pass (validate, count, plan), the second (the jobs).
    assert len(opened) == 3
    assert instrument.pulled == 1500 == instrument.reported
    # Never more than 5 x connections jobs pulled ahead of the results reported (the feed, and
    # per connection the message awaiting its reply, the next one and the one built meanwhile).
    assert instrument.peak <= 5 * instrument.connections
    assert {total for total, _ in progress} == {1500} and progress[-1] == (1500, 1500)


def test_a_bad_row_late_in_a_long_list_stops_the_send_before_anything_is_sent(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_env(monkeypatch, smtp_server)
    subscribers = write_list(tmp_path / "lijst.csv", members(20_000))
    # 0x81 is neither UTF-8 nor Windows-1252: the file cannot be read as text from there.
    with subscribers.open("ab") as handle:
        handle.write(b"Laatste;laat\x81@example.nl\r\n")
    code, out, err = send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")

    assert code == 2, out
    assert f"{subscribers}: not text in UTF-8 or Windows-1252 (byte 0x81 at offset" in err
    assert "Traceback" not in err
    assert smtp_server.messages == []
    settings = load_settings(home=find_home(example_copy))
    assert ledger_mod.Ledger(settings.ledger_path, readonly=True).issues() == []


def test_a_list_that_changes_during_the_send_stops_it_and_a_rerun_resumes(
    example_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = members(1200)
    subscribers = write_list(tmp_path / "lijst.csv", rows)

    def edit_once(state: Progress) -> None:
        if state.delivered == 5:
            with subscribers.open("a", encoding="utf-8") as handle:
                handle.write("Nieuw;nieuw@example.nl\r\n")

    with SmtpServer(pipelining=True, headers_only=True) as server:
        smtp_env(monkeypatch, server)
        with pytest.raises(NieuwsbriefError) as caught:
            core_send(example_copy, subscribers, connections=2, progress=edit_once)
        first = Counter(server.recipients())
        assert "the list changed while it was being sent" in str(caught.value)
        assert caught.value.exit_code == 1  # some were sent
        assert 5 <= sum(first.values()) < 1200 and max(first.values()) == 1

        report = core_send(example_copy, subscribers, connections=2)
        total = Counter(server.recipients())
    # The re-run sends to the rest (and the new row), each address once over both runs.
    assert report.plan.already_sent == sum(first.values())
    assert total == Counter([a for _, a in rows] + ["nieuw@example.nl"])


@pytest.mark.parametrize("setting", ["on", "off"])
def test_pipelining_can_be_switched_off(
    example_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    subscribers = write_list(tmp_path / "lijst.csv", members(60))
    with SmtpServer(pipelining=True, headers_only=True) as server:
        smtp_env(monkeypatch, server, NIEUWSBRIEF_SMTP_PIPELINING=setting)
        code, _out, err = send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")
        messages = list(server.messages)

    assert code == 0, err
    assert len(messages) == 60
    pipelined = sum(m.pipelined for m in messages) + sum(m.chained for m in messages)
    if setting == "off":
        assert pipelined == 0  # every command waited for its reply
    else:
        assert sum(m.pipelined for m in messages) == 60  # MAIL, RCPT and DATA in one write


def test_a_bad_pipelining_setting_is_refused(
    example_copy: Path, tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_env(monkeypatch, smtp_server, NIEUWSBRIEF_SMTP_PIPELINING="soms")
    subscribers = write_list(tmp_path / "lijst.csv", members(2))
    code, _out, err = send_cli(str(example_copy), "--subscribers", str(subscribers), "--yes")
    assert code == 2
    assert "NIEUWSBRIEF_SMTP_PIPELINING: 'soms' is not on or off" in err
    assert smtp_server.messages == []


def test_preopened_connections_are_the_ones_delivery_uses() -> None:
    with SmtpServer(pipelining=True) as server:
        transport = Preopened(smtp(server), 3)
        collect = Collector()
        stats = deliver(jobs(30), transport, connections=3, on_result=collect)
        assert stats.accepted == 30 and stats.connections == 3
        assert server.sessions == 3  # the three opened in advance, no others
        transport.open().close()  # all taken: the next is opened on demand
        assert server.sessions == 4
        unused = Preopened(smtp(server), 2)
        unused.open().close()
        unused.close()  # closes the one never taken (or closes it once it is open)
    assert Counter(server.recipients()) == Counter(address(n) for n in range(30))


LISTS = {
    "bom-and-duplicates": codecs.BOM_UTF8
    + b"Naam;E-mail\r\nJan;jan@Example.NL\r\nPiet;piet@example.nl\r\nJ2;JAN@example.nl\r\n;\r\n"
    b"X;not-an-address\r\nY;y@example.nl\x07\r\n",
    "cp1252": "Naam;E-mail\r\nJosé;jose@example.nl\r\n".encode("cp1252"),
    "sep-hint-and-quoted-break": b'sep=,\r\nemail,name\r\na@example.nl,"A\r\nB"\r\n'
    b"b@example.nl,B\r\n",
    "international": "email\nü@example.nl\nx@bücher.de\nX@BÜCHER.de\n".encode(),
    # Longer than the sniffing sample, with first/middle/last name columns and bare LF.
    "long": (
        "Voornaam;Tussenvoegsel;Achternaam;E-mailadres\n"
        + "".join(f"V{i};van;A{i};lid{i % 4000}@Gemeente{i % 7}.example\n" for i in range(5000))
    ).encode(),
}


# What each list holds, worked out by hand from the bytes above: (encoding, delimiter, columns),
# (valid, invalid, duplicates), and the recipients as (address in normal form, name, line).
EXPECTED: dict[str, tuple[tuple[str, str, tuple[str, ...]], tuple[int, int, int], list[Any]]] = {
    "bom-and-duplicates": (
        ("utf-8-sig", ";", ("naam", "e_mail")),
        (2, 2, 1),  # JAN@ is jan@ again; ";" is a blank row; a non-address and a BEL are invalid
        [("jan@example.nl", "Jan", 2), ("piet@example.nl", "Piet", 3)],
    ),
    "cp1252": (("cp1252", ";", ("naam", "e_mail")), (1, 0, 0), [("jose@example.nl", "José", 2)]),
    "sep-hint-and-quoted-break": (
        ("utf-8", ",", ("email", "name")),
        (1, 1, 0),  # a name with a line break is refused; the next row starts on line 5
        [("b@example.nl", "B", 5)],
    ),
    "international": (
        ("utf-8", ",", ("email",)),
        (2, 0, 1),  # X@BÜCHER.de is x@bücher.de in normal form
        [("ü@example.nl", "", 2), ("x@bücher.de", "", 3)],
    ),
    "long": (
        ("utf-8", ";", ("voornaam", "tussenvoegsel", "achternaam", "e_mailadres")),
        (5000, 0, 0),  # lid{i % 4000} repeats, but never with the same Gemeente{i % 7}
        [(f"lid{i % 4000}@gemeente{i % 7}.example", f"V{i} van A{i}", i + 2) for i in range(5000)],
    ),
}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_the_two_passes_read_each_kind_of_list(tmp_path: Path, name: str) -> None:
    path = tmp_path / "lijst.csv"
    path.write_bytes(LISTS[name])
    shape, counts, recipients = EXPECTED[name]
    scan = subscribers_mod.scan_subscribers(path)
    everyone = list(scan.selected())
    assert [(s.email, s.name, s.line) for s in everyone] == recipients
    assert (scan.valid, scan.invalid, scan.duplicates) == counts
    assert (scan.encoding, scan.delimiter, scan.columns) == shape
    # select() sees every valid unique address once, in file order, and decides per address.
    seen: list[str] = []

    def every_other(keys: Sequence[str]) -> list[bool]:
        seen.extend(keys)
        return [(len(seen) - len(keys) + n) % 2 == 0 for n in range(len(keys))]

    chosen = subscribers_mod.scan_subscribers(path, every_other)
    expected = [s for n, s in enumerate(everyone) if n % 2 == 0]
    assert list(chosen.selected()) == expected and chosen.chosen == len(expected)
    assert seen == [normalise_address(s.email) for s in everyone]
