"""Delivery engine tests: real SMTP over loopback, plus a scripted transport for rare failures."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hostile_smtp import HostileSmtpServer, Script
from nieuwsbrief.errors import ContentError, DeliveryError
from nieuwsbrief.sending.delivery import Job, Result, deliver
from nieuwsbrief.sending.outbox import MaildirOutbox
from nieuwsbrief.sending.smtp import SmtpParams, SmtpTransport
from nieuwsbrief.sending.transport import ConnectionLost, Outcome, Reply
from smtp_server import Fault, SmtpServer

SENDER = "nieuwsbrief@bureau-kennis.nl"
FAST_RETRIES = (0.05, 0.1)
FAST_RECONNECTS = (0.01, 0.05)


def address(n: int) -> str:
    return f"lid{n:05d}@example.nl"


def jobs(count: int, built: list[str] | None = None, start: int = 0) -> Iterator[Job]:
    """Yield `count` jobs lazily; `built` collects the recipients whose message was built."""
    for n in range(start, start + count):
        rcpt = address(n)

        def build(rcpt: str = rcpt) -> bytes:
            if built is not None:
                built.append(rcpt)
            return f"From: {SENDER}\r\nTo: {rcpt}\r\nSubject: Nieuwsbrief\r\n\r\nHoi.\r\n".encode()

        yield Job(key=rcpt, recipient=rcpt, sender=SENDER, build=build)


def smtp(server: SmtpServer, **changes: object) -> SmtpTransport:
    values: dict[str, object] = {"host": server.host, "port": server.port, "security": "none"}
    values.update(helo_name="client.test", timeout=5.0, ssl_context=server.client_context)
    if server.tls:
        values["security"] = server.tls
    if server.auth:
        values["user"], values["password"] = server.auth
    values.update(changes)
    return SmtpTransport(SmtpParams(**values))  # type: ignore[arg-type]


class Collector:
    """An on_result that records results and the threads it was called from."""

    def __init__(self) -> None:
        self.results: list[Result] = []
        self.threads: set[str] = set()

    def __call__(self, result: Result) -> None:
        self.results.append(result)
        self.threads.add(threading.current_thread().name)

    def by_key(self) -> dict[str, Result]:
        keys = [result.key for result in self.results]
        assert len(keys) == len(set(keys)), "a job was reported twice"
        return {result.key: result for result in self.results}


def test_many_messages_reuse_few_connections() -> None:
    collect = Collector()
    with SmtpServer(pipelining=True) as server:
        stats = deliver(jobs(200), smtp(server), connections=2, on_result=collect)

    assert Counter(server.recipients()) == Counter(address(n) for n in range(200))
    assert server.sessions <= 2
    assert {result.outcome for result in collect.results} == {Outcome.ACCEPTED}
    assert len(collect.by_key()) == 200
    assert collect.threads == {threading.current_thread().name}  # called in the caller's thread
    assert (stats.accepted, stats.temporary, stats.permanent, stats.retries) == (200, 0, 0, 0)
    assert stats.connections == server.sessions and stats.elapsed > 0


def test_jobs_are_pulled_lazily_in_the_calling_thread() -> None:
    pulling: set[str] = set()
    pulled_at_first_result: list[int] = []
    pulled = 0

    def source() -> Iterator[Job]:
        nonlocal pulled
        for job in jobs(100):
            pulling.add(threading.current_thread().name)
            pulled += 1
            yield job

    def on_result(result: Result) -> None:
        if not pulled_at_first_result:
            pulled_at_first_result.append(pulled)

    with SmtpServer() as server:
        deliver(source(), smtp(server), connections=3, on_result=on_result)
    assert pulling == {threading.current_thread().name}  # a SQLite cursor would work here
    # The feed holds 2 x connections, each worker one more: far fewer than all 100.
    assert pulled_at_first_result[0] < 30
    assert len(server.messages) == 100


def test_a_fresh_connection_after_max_per_connection() -> None:
    with SmtpServer() as server:
        transport = smtp(server, max_per_connection=20)
        deliver(jobs(100), transport, connections=2, on_result=Collector())

    per_session = Counter(message.session for message in server.messages)
    assert sum(per_session.values()) == 100
    assert max(per_session.values()) <= 20
    assert 5 <= server.sessions <= 6


def test_temporary_refusals_are_retried_and_permanent_ones_reported() -> None:
    faults = {
        address(3): Fault("451 4.7.1 Try again later", times=1),
        address(4): Fault("450 4.2.1 Receiving too fast", times=2, stage="data"),
        address(5): Fault("550 5.1.1 No such user"),
        address(6): Fault("454 4.7.0 Throttling failure: Maximum sending rate exceeded"),
    }
    collect = Collector()
    with SmtpServer(pipelining=True, faults=faults) as server:
        stats = deliver(
            jobs(30), smtp(server), connections=3, retry_delays=FAST_RETRIES, on_result=collect
        )

    results = collect.by_key()
    assert len(results) == 30
    assert (results[address(3)].outcome, results[address(3)].attempts) == (Outcome.ACCEPTED, 2)
    assert (results[address(4)].outcome, results[address(4)].attempts) == (Outcome.ACCEPTED, 3)
    gone = results[address(5)]
    assert (gone.outcome, str(gone.reply), gone.attempts) == (
        Outcome.PERMANENT,
        "550 5.1.1 No such user",
        1,
    )
    throttled = results[address(6)]
    assert throttled.outcome is Outcome.TEMPORARY and throttled.attempts == 3
    assert str(throttled.reply).startswith("454 4.7.0 Throttling failure")
    delivered = Counter(server.recipients())
    assert set(delivered) == {address(n) for n in range(30)} - {address(5), address(6)}
    assert max(delivered.values()) == 1
    assert (stats.accepted, stats.temporary, stats.permanent) == (28, 1, 1)
    assert server.attempts(address(5)) == 1  # a 5xx is never retried


def test_421_reconnects_and_retries() -> None:
    faults = {address(2): Fault("421 4.7.28 Unusual rate, temporarily rate limited", times=1)}
    collect = Collector()
    with SmtpServer(faults=faults) as server:
        deliver(jobs(10), smtp(server), connections=1, retry_delays=FAST_RETRIES, on_result=collect)

    assert Counter(server.recipients()) == Counter(address(n) for n in range(10))
    assert collect.by_key()[address(2)].attempts == 2
    assert server.sessions == 2


@pytest.mark.parametrize("keeps", [False, True], ids=["lost-in-flight", "queued-then-lost"])
def test_dropped_connections_lose_nothing(keeps: bool) -> None:
    collect = Collector()
    with SmtpServer(drop_after=7, drop_keeps_message=keeps) as server:
        deliver(
            jobs(60),
            smtp(server),
            connections=2,
            reconnect_delays=FAST_RECONNECTS,
            on_result=collect,
        )

    assert server.drops >= 7
    assert {r.outcome for r in collect.by_key().values()} == {Outcome.ACCEPTED}
    assert len(collect.results) == 60
    delivered = Counter(server.recipients())
    assert set(delivered) == {address(n) for n in range(60)}  # none lost
    twice = [rcpt for rcpt, count in delivered.items() if count > 1]
    # Only a message in flight when the line dropped can arrive twice, never more often.
    assert len(twice) <= (server.drops if keeps else 0)
    assert max(delivered.values()) <= 2


def test_rate_is_held_across_connections() -> None:
    with SmtpServer() as server:
        stats = deliver(jobs(20), smtp(server), connections=4, rate=50, on_result=Collector())
    assert stats.accepted == 20
    assert stats.elapsed >= 19 / 50 - 0.01  # 20 sends spaced 1/50 s apart


def test_a_refused_login_stops_everything_before_sending() -> None:
    built: list[str] = []
    collect = Collector()
    with SmtpServer(tls="starttls", auth=("nieuwsbrief", "goed")) as server:
        transport = smtp(server, password="fout")
        with pytest.raises(DeliveryError, match="refused the login for 'nieuwsbrief'"):
            deliver(jobs(10, built), transport, connections=3, on_result=collect)
    assert (built, collect.results, server.messages) == ([], [], [])


def test_stop_finishes_messages_in_flight_and_reports_exactly_what_was_sent() -> None:
    stop = threading.Event()
    pulled: list[str] = []
    collect = Collector()

    def source() -> Iterator[Job]:
        for job in jobs(10_000):
            pulled.append(job.key)
            yield job

    def on_result(result: Result) -> None:
        collect(result)
        if len(collect.results) == 5:
            stop.set()

    with SmtpServer() as server:
        stats = deliver(source(), smtp(server), connections=3, stop=stop, on_result=on_result)

    # Every message the server took was reported, and nothing else.
    assert Counter(server.recipients()) == Counter(r.key for r in collect.results)
    assert 5 <= stats.accepted < 10_000
    assert len(pulled) < 1_000  # jobs are pulled lazily, not materialised


def with_a_broken_job() -> Iterator[Job]:
    """Three jobs, one whose message cannot be built, three more."""

    def broken() -> bytes:
        raise ContentError("issues/2012-05/agenda.yaml", "no date", line=3)

    yield from jobs(3)
    yield Job("kapot@example.nl", "kapot@example.nl", SENDER, broken)
    yield from jobs(3, start=3)


@pytest.mark.parametrize("pipelining", [False, True], ids=["lock-step", "pipelined"])
def test_a_message_that_cannot_be_built_fails_alone(pipelining: bool) -> None:
    collect = Collector()
    with SmtpServer(pipelining=pipelining) as server:
        stats = deliver(with_a_broken_job(), smtp(server), connections=1, on_result=collect)
    results = collect.by_key()
    broken = results.pop("kapot@example.nl")
    assert (broken.outcome, broken.attempts) == (Outcome.PERMANENT, 0)
    assert str(broken.reply) == (
        "not delivered: the message could not be built: issues/2012-05/agenda.yaml:3: no date"
    )
    assert {r.outcome for r in results.values()} == {Outcome.ACCEPTED} and len(results) == 6
    assert sorted(server.recipients()) == sorted(results)  # the others all went, once
    assert (stats.accepted, stats.permanent) == (6, 1)
    assert server.sessions == 1


def test_any_exception_while_building_fails_only_that_recipient() -> None:
    def crashing() -> bytes:
        return "jan@bücher.example".encode("ascii")  # UnicodeEncodeError

    def source() -> Iterator[Job]:
        yield from jobs(2)
        yield Job("jan@bücher.example", "jan@xn--bcher-kva.example", SENDER, crashing)
        yield from jobs(2, start=2)

    collect = Collector()
    with SmtpServer(pipelining=True) as server:
        deliver(source(), smtp(server), connections=2, on_result=collect)
    failed = collect.by_key()["jan@bücher.example"]
    assert failed.outcome is Outcome.PERMANENT
    assert str(failed.reply).startswith(
        "not delivered: the message could not be built: UnicodeEncodeError: 'ascii' codec"
    )
    assert len(server.recipients()) == 4


def test_deliver_into_the_maildir_outbox(tmp_path: Path) -> None:
    outbox = MaildirOutbox(tmp_path / "outbox")
    collect = Collector()
    stats = deliver(jobs(25), outbox, connections=3, on_result=collect)
    assert stats.accepted == 25 and len(collect.by_key()) == 25
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 25


# -- a scripted transport for failures a real server rarely shows ---------------------------


class Scripted:
    """A transport whose channels lose the connection for the addresses in `lose`."""

    max_per_connection = 0

    def __init__(self, lose: set[str], refuse_reopen: bool = False) -> None:
        self.lose = lose
        self.refuse_reopen = refuse_reopen
        self.opened = 0
        self.accepted: list[str] = []
        self.lock = threading.Lock()

    def open(self) -> Scripted.Channel:
        with self.lock:
            self.opened += 1
            if self.refuse_reopen and self.opened > 1:
                raise DeliveryError("smtp.example.nl:587 cannot be reached (Connection refused)")
        return Scripted.Channel(self)

    def describe(self) -> str:
        return "scripted"

    class Channel:
        def __init__(self, owner: Scripted) -> None:
            self.owner = owner
            self.is_open = True

        def send(self, sender: str, recipient: str, data: bytes) -> Reply:
            if recipient in self.owner.lose:
                self.is_open = False
                raise ConnectionLost("reset by peer")
            with self.owner.lock:
                self.owner.accepted.append(recipient)
            return Reply(250, "2.0.0", "Ok")

        def close(self) -> None:
            self.is_open = False


def test_a_message_that_keeps_losing_the_connection_is_given_up() -> None:
    transport = Scripted(lose={address(1)})
    collect = Collector()
    deliver(jobs(5), transport, connections=2, on_result=collect)
    lost = collect.by_key()[address(1)]
    assert (lost.outcome, lost.attempts) == (Outcome.TEMPORARY, 3)
    assert str(lost.reply) == "not delivered: no final reply: reset by peer"
    assert sorted(transport.accepted) == [address(n) for n in (0, 2, 3, 4)]


def test_no_way_to_reconnect_is_a_delivery_error() -> None:
    transport = Scripted(lose={address(2)}, refuse_reopen=True)
    collect = Collector()
    with pytest.raises(DeliveryError) as caught:
        deliver(
            jobs(10),
            transport,
            connections=1,
            reconnect_delays=FAST_RECONNECTS,
            on_result=collect,
        )
    assert str(caught.value) == (
        "stopped after 2 failed connection(s) in a row to scripted, the last: "
        "smtp.example.nl:587 cannot be reached (Connection refused); messages without a result "
        "were not delivered"
    )
    assert [r.key for r in collect.results] == [address(0), address(1)]
    assert transport.accepted == [address(0), address(1)]


# -- pipelining across transactions: each body carries the next MAIL, RCPT and DATA ---------


class Paced:
    """`count` jobs, with the next ones always at hand when a worker looks for them.

    Whether an envelope goes out behind a body depends on the next job being in the feed at
    that moment, which the calling thread tops up when it gets to it. Instead of hoping it does
    in time, the server (`hold`, its `before_rcpt`) answers job n's RCPT only once the calling
    thread has pulled job n + 2 x connections from the list. The feed (at most 2 x connections
    jobs) cannot stop it from getting there: new jobs are taken from it in order, so with job n
    taken a full feed already reaches that far. Before each job in `pauses` the list waits
    until the server has every message before it: the workers run dry.
    """

    def __init__(self, count: int, connections: int, pauses: tuple[int, ...] = ()) -> None:
        self.count = count
        self.ahead = 2 * connections + 1  # counted in pulls: job n + ahead - 1 was pulled
        self.pauses = pauses
        self.pulled = 0
        self.changed = threading.Condition()
        self.server: SmtpServer | None = None

    def __iter__(self) -> Iterator[Job]:
        for n, job in enumerate(jobs(self.count)):
            if n in self.pauses:
                assert self.server is not None and self.server.wait_for_messages(n)
            with self.changed:
                self.pulled = n + 1
                self.changed.notify_all()
            yield job

    def hold(self, rcpt: str) -> None:
        n = int(rcpt.removeprefix("lid").partition("@")[0])
        wanted = min([self.count, n + self.ahead, *(p for p in self.pauses if p > n)])
        with self.changed:
            assert self.changed.wait_for(lambda: self.pulled >= wanted, 30)

    def smtp_server(self, **options: Any) -> SmtpServer:
        self.server = SmtpServer(pipelining=True, before_rcpt=self.hold, **options)
        return self.server


def test_pipelined_delivery_chains_the_next_envelope_behind_each_body() -> None:
    collect = Collector()
    paced = Paced(200, connections=2)
    with paced.smtp_server() as server:
        stats = deliver(paced, smtp(server), connections=2, on_result=collect)

    assert Counter(server.recipients()) == Counter(address(n) for n in range(200))
    assert len(collect.by_key()) == 200 and stats.accepted == 200 and stats.retries == 0
    assert server.sessions <= 2
    chained = sum(message.chained for message in server.messages)
    # Every body carried the next envelope (one round trip each) but each connection's last.
    assert chained == 200 - server.sessions


def test_pipelined_next_envelope_refused_on_rcpt_and_on_mail() -> None:
    faults = {
        address(5): Fault("550 5.1.1 No such user"),
        address(9): Fault("452 4.2.2 Mailbox full", times=1),
    }
    # MAIL number 8 belongs to job 7: the 7 before it each took one MAIL (5 is not retried).
    mail_faults = {8: "451 4.3.0 Try again later"}
    collect = Collector()
    paced = Paced(30, connections=1)
    with paced.smtp_server(faults=faults, mail_faults=mail_faults) as server:
        stats = deliver(
            paced, smtp(server), connections=1, retry_delays=FAST_RETRIES, on_result=collect
        )

    results = collect.by_key()
    assert len(results) == 30
    gone = results[address(5)]
    assert (gone.outcome, str(gone.reply), gone.attempts) == (
        Outcome.PERMANENT,
        "550 5.1.1 No such user",
        1,
    )
    assert (results[address(9)].outcome, results[address(9)].attempts) == (Outcome.ACCEPTED, 2)
    assert (results[address(7)].outcome, results[address(7)].attempts) == (Outcome.ACCEPTED, 2)
    assert (stats.accepted, stats.permanent, stats.temporary, stats.retries) == (29, 1, 0, 2)
    delivered = Counter(server.recipients())
    assert delivered == Counter(address(n) for n in range(30) if n != 5)
    assert server.sessions == 1  # RSET after each refusal kept the connection usable
    # The refused envelopes had come in behind the previous body.
    by_rcpt = {m.rcpt_tos[0]: m for m in server.messages}
    assert by_rcpt[address(4)].chained and by_rcpt[address(6)].chained
    assert by_rcpt[address(8)].chained


@pytest.mark.parametrize("keeps", [False, True], ids=["lost-in-flight", "queued-then-lost"])
def test_a_drop_after_a_body_with_the_next_envelope_pipelined(keeps: bool) -> None:
    collect = Collector()
    with SmtpServer(pipelining=True, drop_after=7, drop_keeps_message=keeps) as server:
        deliver(
            jobs(60),
            smtp(server),
            connections=2,
            reconnect_delays=FAST_RECONNECTS,
            on_result=collect,
        )

    assert server.drops >= 7 and server.drops_chained >= 1
    results = collect.by_key()
    assert len(results) == 60 and {r.outcome for r in results.values()} == {Outcome.ACCEPTED}
    delivered = Counter(server.recipients())
    assert set(delivered) == {address(n) for n in range(60)}  # none lost
    twice = [rcpt for rcpt, count in delivered.items() if count > 1]
    # Only the body in flight when the line dropped can arrive twice, never the pipelined
    # next one (its body had not been sent).
    assert len(twice) <= (server.drops if keeps else 0)
    assert max(delivered.values()) <= 2
    assert max(r.attempts for r in results.values()) == 2


def test_pipelined_delivery_when_the_job_feed_is_momentarily_empty() -> None:
    # The list stalls (e.g. a slow database) before jobs 9, 19 and 29: the workers run dry.
    paced = Paced(40, connections=2, pauses=(9, 19, 29))
    collect = Collector()
    with paced.smtp_server() as server:
        stats = deliver(paced, smtp(server), connections=2, on_result=collect)

    assert stats.accepted == 40 and len(collect.by_key()) == 40
    assert Counter(server.recipients()) == Counter(address(n) for n in range(40))
    chained = [message.chained for message in server.messages]
    # Each of the 4 runs of jobs ended with a body that went alone (at most one per
    # connection: no job was at hand); every other body carried the next envelope.
    assert 4 <= chained.count(False) <= 4 * server.sessions
    assert server.sessions <= 2


def test_pipelined_delivery_keeps_the_rate_and_max_per_connection() -> None:
    with SmtpServer(pipelining=True) as server:
        transport = smtp(server, max_per_connection=7)
        stats = deliver(jobs(20), transport, connections=4, rate=50, on_result=Collector())
        per_session = Counter(message.session for message in server.messages)
    assert stats.accepted == 20
    assert stats.elapsed >= 19 / 50 - 0.01
    assert max(per_session.values()) <= 7
    paced = Paced(100, connections=2)
    with paced.smtp_server() as server:
        transport = smtp(server, max_per_connection=20)
        deliver(paced, transport, connections=2, on_result=Collector())
        per_session = Counter(message.session for message in server.messages)
    assert sum(per_session.values()) == 100 and max(per_session.values()) <= 20
    assert 5 <= server.sessions <= 6
    # Every body carried the next envelope but each connection's last.
    assert sum(message.chained for message in server.messages) == 100 - server.sessions


def test_pipelined_stop_reports_exactly_what_was_sent() -> None:
    stop = threading.Event()
    collect = Collector()

    def on_result(result: Result) -> None:
        collect(result)
        if len(collect.results) == 25:
            stop.set()

    with SmtpServer(pipelining=True) as server:
        stats = deliver(jobs(10_000), smtp(server), connections=3, stop=stop, on_result=on_result)

    assert Counter(server.recipients()) == Counter(r.key for r in collect.results)
    assert 25 <= stats.accepted < 10_000


def test_a_build_failure_of_the_next_job_leaves_the_open_transaction_intact() -> None:
    # Chaining depends on the next job being in hand when a body goes out, which a loaded
    # machine can delay: repeat until the run chained (the outcomes must hold in every run).
    for _attempt in range(5):
        collect = Collector()
        with SmtpServer(pipelining=True) as server:
            deliver(
                with_a_broken_job(), smtp(server, timeout=5.0), connections=1, on_result=collect
            )
        results = collect.by_key()
        assert results["kapot@example.nl"].outcome is Outcome.PERMANENT
        # Whatever the server took was reported, and nothing else; the broken job never went out.
        assert Counter(server.recipients()) == Counter(
            r.key for r in collect.results if r.outcome is Outcome.ACCEPTED
        )
        assert len(server.recipients()) == 6 and server.sessions == 1
        if sum(message.chained for message in server.messages) >= 4:
            break
    assert sum(message.chained for message in server.messages) >= 4


# -- time-outs and the circuit breaker, against a scripted server (tests/hostile_smtp.py) ----


def hostile(server: HostileSmtpServer, **changes: object) -> SmtpTransport:
    values: dict[str, object] = {"helo_name": "client.test", "timeout": 2.0, "data_timeout": 0.2}
    values.update(changes)
    return SmtpTransport(SmtpParams(server.host, server.port, "none", **values))  # type: ignore[arg-type]


@pytest.mark.parametrize("connections", [1, 3])
def test_a_black_hole_trips_the_circuit_breaker(connections: int) -> None:
    collect = Collector()
    with HostileSmtpServer(Script(black_hole_after=0)) as server:
        with pytest.raises(DeliveryError) as caught:
            deliver(jobs(50), hostile(server), connections=connections, on_result=collect)
        sessions = server.sessions
    limit = 2 * connections
    assert str(caught.value).startswith(
        f"stopped after {limit} failed connection(s) in a row to 127.0.0.1:{server.port} "
        f"(none, no login), the last: 127.0.0.1:{server.port}: no reply to the end of the "
        "message within 0.2 s"
    )
    assert collect.results == [] and server.stored == []
    assert sessions <= limit + connections  # not 50 x 3 attempts


def test_one_message_that_hangs_the_server_does_not_stop_the_others() -> None:
    collect = Collector()
    with HostileSmtpServer(Script(black_hole_for={address(1)})) as server:
        stats = deliver(jobs(6), hostile(server), connections=1, on_result=collect)
    results = collect.by_key()
    hung = results.pop(address(1))
    assert (hung.outcome, hung.attempts) == (Outcome.TEMPORARY, 2)  # two time-outs: given up
    assert str(hung.reply).startswith("not delivered: no final reply: 127.0.0.1:")
    assert {r.outcome for r in results.values()} == {Outcome.ACCEPTED}
    assert sorted(server.stored_recipients()) == sorted(results)
    assert (stats.accepted, stats.temporary) == (5, 1)


def test_out_of_step_costs_only_the_message_in_flight() -> None:
    collect = Collector()
    script = Script(data_reply_250={address(2)}, extra_reply_after_body=True)
    with HostileSmtpServer(script) as server:
        deliver(jobs(8), hostile(server), connections=2, on_result=collect)
    results = collect.by_key()
    assert results.pop(address(2)).outcome is Outcome.TEMPORARY  # its DATA is never 354
    assert {r.outcome for r in results.values()} == {Outcome.ACCEPTED}
    assert Counter(server.stored_recipients()) == Counter(list(results))  # each once


@pytest.mark.parametrize("offered", [False, True])
def test_an_address_that_needs_smtputf8_fails_alone_unless_offered(offered: bool) -> None:
    def source() -> Iterator[Job]:
        yield from jobs(2)
        rcpt = "jösé@example.nl"
        yield Job(rcpt, rcpt, SENDER, lambda: b"Subject: hoi\r\n\r\nHoi.\r\n")
        yield from jobs(2, start=2)

    collect = Collector()
    with HostileSmtpServer(Script(smtputf8=offered)) as server:
        deliver(source(), hostile(server), connections=1, on_result=collect)
    jose = collect.by_key()["jösé@example.nl"]
    assert len(server.stored) == 4 + offered
    if offered:
        assert jose.outcome is Outcome.ACCEPTED
    else:
        assert (jose.outcome, str(jose.reply)) == (
            Outcome.PERMANENT,
            f"not delivered: jösé@example.nl needs SMTPUTF8, which 127.0.0.1:{server.port} "
            "does not offer",
        )
