"""The parallel delivery engine: jobs in, one final Result per job out, over any Transport.

Worker threads each own one channel (one SMTP connection) and reuse it for many messages;
with PIPELINING each body carries the next message's envelope, one round trip per message, and
the message after that is built while the reply is on its way. A
shared limiter keeps the total rate; 4xx replies requeue the job with backoff, 5xx replies are
final, and a lost connection is reopened and the unacknowledged message sent again. A message
that cannot be built, or that this server cannot take, fails alone: the others go on. When
connections keep failing (refused, timed out), the run stops instead of retrying
for hours. The engine knows nothing about how messages are built or where results are recorded.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from nieuwsbrief.errors import DeliveryError, NieuwsbriefError
from nieuwsbrief.i18n import _, ngettext
from nieuwsbrief.sending.transport import (
    Channel,
    ConnectionLost,
    Outcome,
    PipeliningChannel,
    Reply,
    TimedOut,
    Transport,
)

# How often one message may cost a connection before it is given up as a temporary failure.
MAX_LOST_CONNECTIONS_PER_JOB = 3
# The run stops when this many connections per worker in a row failed (could not be opened,
# or timed out on as many different messages) without a single reply in between. With the
# default time-outs a relay that has become a black hole costs 2 x 120 s, not hours. A message
# that times out this often is given up on its own (the server may hang on just that one), and
# a connection that drops or goes out of step costs only the message in flight a retry.
FAILURES_IN_A_ROW = 2
TIMED_OUT_RETRY_DELAY = 1.0  # seconds
# The most results handed to `on_results` at once (they were all waiting already).
RESULTS_AT_ONCE = 256


@dataclass(frozen=True)
class Job:
    """One message to one recipient; `build` makes its bytes (CRLF) in a worker thread.

    `build` may be called again for a retry after a 4xx reply, so it should be deterministic.
    """

    key: str
    recipient: str
    sender: str
    build: Callable[[], bytes] = field(repr=False)


@dataclass(frozen=True)
class Result:
    """What finally became of a job, with the reply to quote and how many sends it took."""

    key: str
    recipient: str
    outcome: Outcome
    reply: Reply
    attempts: int


@dataclass
class DeliveryStats:
    """Counts for one run of `deliver`."""

    accepted: int = 0
    temporary: int = 0
    permanent: int = 0
    retries: int = 0  # sends beyond the first, summed over the reported jobs
    connections: int = 0  # channels opened, including reconnects
    elapsed: float = 0.0  # seconds

    @property
    def reported(self) -> int:
        """How many jobs got a final Result."""
        return self.accepted + self.temporary + self.permanent


class RateLimiter:
    """A token bucket holding one token: sends are spaced 1/rate apart across all threads."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._interval = 1.0 / rate
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Claim the next send slot; return how many seconds to wait for it."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
            return slot - now

    def ready(self) -> bool:
        """Whether a slot is free right now (a hint: another thread may take it first)."""
        return self._next <= time.monotonic()

    def try_reserve(self) -> bool:
        """Claim the next send slot only if it is due now; never makes the caller wait."""
        with self._lock:
            now = time.monotonic()
            if self._next > now:
                return False
            self._next = now + self._interval
            return True


@dataclass(order=True)
class _Retry:
    due: float
    seq: int
    task: _Task = field(compare=False)


@dataclass
class _Task:
    job: Job
    attempts: int = 0  # sends so far
    deferrals: int = 0  # 4xx replies so far
    lost: int = 0  # connections lost while this job was in flight
    timeouts: int = 0  # of those, the ones where the server stopped answering
    data: bytes | None = None  # kept only while resending after a lost connection


class _GiveUp(Exception):
    """A worker could not (re)open its channel; carries the last DeliveryError."""

    def __init__(self, error: DeliveryError) -> None:
        super().__init__(str(error))
        self.error = error


_DONE = object()  # a worker's last word on the results queue
_MORE = object()  # a worker asks the calling thread for more jobs


class _Run:
    """Shared state of one `deliver` call: the job source, retry heap and results queue."""

    def __init__(
        self,
        jobs: Iterable[Job],
        transport: Transport,
        connections: int,
        rate: float | None,
        retry_delays: Sequence[float],
        reconnect_delays: Sequence[float],
        failures_in_a_row: int = FAILURES_IN_A_ROW,
    ) -> None:
        self.jobs: Iterator[Job] = iter(jobs)  # advanced only by the calling thread
        self.feed: deque[Job] = deque()  # new jobs waiting for a worker
        self.feed_limit = 2 * connections
        # Jobs pulled and not yet reported, apart from those waiting for a retry: the feed and
        # up to three per worker, so results the calling thread has not handled yet hold back
        # new jobs too (the look-ahead stays bounded however long the list).
        self.ahead_limit = 5 * connections
        self.pulled = 0  # both advanced only by the calling thread
        self.reported = 0
        self.transport = transport
        self.limiter = RateLimiter(rate) if rate else None
        self.retry_delays = tuple(retry_delays)
        self.reconnect_delays = tuple(reconnect_delays)
        self.halt = threading.Event()
        self.cond = threading.Condition()
        self.retries: list[_Retry] = []
        self.seq = itertools.count()
        self.exhausted = False
        self.in_hand = 0  # tasks taken by workers and not yet reported or requeued
        self.results: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.errors: list[BaseException] = []
        self.gave_up: list[DeliveryError] = []
        self.lock = threading.Lock()
        self.connections = 0
        self.failure_limit = max(1, failures_in_a_row * connections)
        self.failures = 0  # connections failed in a row, over all workers
        self.timed_out: set[str] = set()  # keys of the jobs among them, each counted once
        self.broken: str | None = None  # why the circuit breaker stopped the run
        self.source_error: Exception | None = None  # raised by the jobs iterable

    def failed(self, reason: str, key: str | None = None) -> None:
        """Count a failed connection (one per job `key`); stop after too many in a row."""
        with self.lock:
            if key is not None:
                if key in self.timed_out:
                    return  # the same message again: its own problem, not the server's
                self.timed_out.add(key)
            self.failures += 1
            if self.failures < self.failure_limit or self.broken is not None:
                return
            self.broken = reason
        self.stop()

    def answered(self) -> None:
        """The server answered a command: it is alive, whatever it said."""
        with self.lock:
            self.failures = 0
            self.timed_out.clear()

    def stop(self) -> None:
        self.halt.set()
        with self.cond:
            self.cond.notify_all()

    # -- the job source: pulled lazily into a short feed by the calling thread ------------

    def top_up(self) -> None:
        """Fill the feed from the jobs iterable (in the calling thread: it may use SQLite)."""
        while True:
            with self.cond:
                if (
                    self.exhausted
                    or self.halt.is_set()
                    or len(self.feed) >= self.feed_limit
                    or self.pulled - self.reported - len(self.retries) >= self.ahead_limit
                ):
                    return
            try:
                job = next(self.jobs)
            except StopIteration:
                with self.cond:
                    self.exhausted = True
                    self.cond.notify_all()
                return
            except Exception as exc:
                # The source broke (a list that changed): stop as on a stop request, so the
                # messages in flight are still reported; deliver() raises it afterwards.
                self.source_error = exc
                with self.cond:
                    self.exhausted = True
                self.stop()
                return
            self.pulled += 1
            with self.cond:
                self.feed.append(job)
                self.cond.notify()

    def next_task(self) -> _Task | None:
        """Take a due retry, else a new job; wait while others may still requeue work."""
        with self.cond:
            while not self.halt.is_set():
                now = time.monotonic()
                task = self._take(now)
                if task is not None:
                    return task
                if self.exhausted and not self.retries and self.in_hand == 0:
                    return None
                self.cond.wait(self.retries[0].due - now if self.retries else None)
            return None

    def task_at_hand(self, *, new_only: bool = False) -> _Task | None:
        """Take a due retry or a new job if one is there right now; never wait.

        With `new_only`, only a new job: a retry goes out on the next send, not one later.
        """
        with self.cond:
            if self.halt.is_set():
                return None
            return self._take(time.monotonic(), new_only=new_only)

    def _take(self, now: float, *, new_only: bool = False) -> _Task | None:
        # With self.cond held.
        if not new_only and self.retries and self.retries[0].due <= now:
            self.in_hand += 1
            return heapq.heappop(self.retries).task
        if self.feed:
            self.in_hand += 1
            if len(self.feed) <= self.feed_limit // 2:
                self.results.put(_MORE)  # wake the calling thread to top up
            return _Task(self.feed.popleft())
        return None

    def waiting(self) -> tuple[int, float]:
        """Return how many jobs wait for a retry, and the seconds until the next is due."""
        with self.cond:
            if not self.retries:
                return 0, 0.0
            return len(self.retries), max(self.retries[0].due - time.monotonic(), 0.0)

    def requeue(self, task: _Task, delay: float) -> None:
        with self.cond:
            heapq.heappush(self.retries, _Retry(time.monotonic() + delay, next(self.seq), task))
            self.in_hand -= 1
            self.cond.notify_all()

    def finish(self, task: _Task, result: Result | None) -> None:
        """Report `result` (None: the job was dropped because of a stop) and free the slot."""
        if result is not None:
            self.results.put(result)
        with self.cond:
            self.in_hand -= 1
            self.cond.notify_all()

    @property
    def work_left(self) -> bool:
        with self.cond:
            return bool(self.retries or self.feed) or self.in_hand > 0 or not self.exhausted


class _Worker:
    """One thread with one channel, sending jobs until there are none left."""

    def __init__(self, run: _Run, channel: Channel | None) -> None:
        self.run = run
        self.channel = channel
        self.pipe: PipeliningChannel | None = None  # the channel, if it can pipeline
        self.sent_on_channel = 0
        self.held: list[_Task] = []  # taken and not yet reported or requeued
        # What this worker sends next, in order, before taking other work (also in `held`): a
        # message whose connection was lost (again first, on the new connection) and the one
        # built while the previous body's reply was on its way.
        self.next_up: deque[_Task] = deque()
        self.adopt(channel)

    def __call__(self) -> None:
        run = self.run
        try:
            while (task := self.take_next() or run.next_task()) is not None:
                if task not in self.held:
                    self.held.append(task)
                if not self.channel_usable():
                    try:
                        self.connect()
                    except DeliveryError as exc:
                        # Let another worker have the jobs while this one waits to reconnect.
                        run.failed(str(exc))
                        self.requeue(task, 0.0)
                        while (waiting := self.take_next()) is not None:
                            self.requeue(waiting, 0.0)
                        self.reconnect(exc)
                        continue
                try:
                    self.process(task)
                except Exception as exc:  # a surprise mid-transaction: nothing held was delivered
                    self.drop_channel()
                    surprise = ConnectionLost(f"{type(exc).__name__}: {exc}")
                    for held in list(self.held):
                        if held not in self.next_up:  # those were not sent: nothing lost
                            self.lost(held, held.data, surprise)
        except _GiveUp as exc:
            run.gave_up.append(exc.error)
        except BaseException as exc:  # handed to the calling thread, which re-raises it
            run.errors.append(exc)
            run.stop()
        finally:
            for task in self.held:  # taken, but never sent or never answered
                run.finish(task, None)
            self.held.clear()
            if self.channel is not None:
                self.channel.close()  # mid-transaction it hangs up without ".": not delivered
            run.results.put(_DONE)

    def process(self, task: _Task) -> None:
        """Send the task once and report it, requeue it, or drop it if the run was stopped."""
        run = self.run
        channel = self.channel
        assert channel is not None
        job = task.job
        data = self.built(task)
        if data is None:
            return
        if run.limiter is not None:
            wait = run.limiter.reserve()
            if wait > 0 and run.halt.wait(wait):
                self.finish(task, None)  # stopped before it was sent: not reported
                return
        if run.halt.is_set():
            self.finish(task, None)
            return
        task.attempts += 1
        if self.pipe is not None:
            self.chain(self.pipe, task, data)
            return
        try:
            reply = channel.send(job.sender, job.recipient, data)
        except ConnectionLost as exc:
            self.lost(task, data, exc)
            return
        self.settle(task, reply)

    def chain(self, pipe: PipeliningChannel, task: _Task, data: bytes) -> None:
        """Send `task`, then while work is at hand the next tasks, one round trip each.

        RFC 2920 3.1: the next transaction's MAIL, RCPT and DATA may follow a body in the same
        write. Each body still waits for the previous one's final reply (so at most one message
        is unacknowledged), each reply is reported before anything else is read, and a next
        job is taken only if it is there without waiting and may be sent now (rate limit,
        max_per_connection), so its body always follows its 354 at once.
        """
        run = self.run
        job = task.job
        try:
            refused = pipe.begin(job.sender, job.recipient)
        except ConnectionLost as exc:
            self.lost(task, data, exc)
            return
        if refused is not None:
            self.settle(task, refused)
            return
        while True:  # task's DATA was answered 354: its body is due now
            follower = self.follower()
            follower_data = None
            while follower is not None:
                follower_data = self.built(follower)
                if follower_data is not None:
                    break
                follower = self.follower()  # that one failed alone: try the next
            if follower is None or follower_data is None:
                try:
                    reply = pipe.finish(data)
                except ConnectionLost as exc:
                    self.lost(task, data, exc)
                    return
                self.settle(task, reply)
                return
            after = follower.job
            try:
                reply = pipe.finish(data, (after.sender, after.recipient), self.prefetch)
            except ConnectionLost as exc:
                self.lost(task, data, exc)
                self.requeue(follower, 0.0)  # its envelope was never answered: not an attempt
                return
            self.settle(task, reply)  # reported before reading on
            if self.channel is not pipe:  # 421 to the body: the follower was never started
                self.requeue(follower, 0.0)
                return
            task, data = follower, follower_data
            task.attempts += 1
            try:
                refused = pipe.pipelined()
            except ConnectionLost as exc:
                self.lost(task, data, exc)
                return
            if refused is not None:
                self.settle(task, refused)
                return
            if run.halt.is_set():
                # Stopped before this body went out: hang up without "." so it is discarded.
                self.drop_channel()
                self.finish(task, None)
                return

    def follower(self) -> _Task | None:
        """Take the next task for this channel if one can be sent right now, without waiting."""
        run = self.run
        limit = run.transport.max_per_connection
        if limit and self.sent_on_channel + 1 >= limit:
            return None  # the message being sent is this channel's last
        waiting = self.take_next()
        if waiting is not None:
            return waiting
        limiter = run.limiter
        if limiter is not None and not limiter.ready():
            return None
        task = run.task_at_hand()
        if task is None:
            return None
        self.held.append(task)
        if limiter is not None and not limiter.try_reserve():  # another worker was quicker
            self.requeue(task, 0.0)
            return None
        return task

    def prefetch(self) -> None:
        """While a body's reply is on its way: take and build the message after the next one.

        Only without a rate limit (with one, the round trip is not what sets the pace) and
        when the channel may carry it. Its bytes are kept in the task until it is sent.
        """
        run = self.run
        if self.next_up or run.limiter is not None:
            return
        limit = run.transport.max_per_connection
        if limit and self.sent_on_channel + 2 >= limit:
            return  # the body in flight and the envelope behind it fill this channel
        task = run.task_at_hand(new_only=True)
        if task is None:
            return
        self.held.append(task)
        data = self.built(task)
        if data is not None:
            task.data = data
            self.next_up.append(task)

    def take_next(self) -> _Task | None:
        """Hand over the first task this worker holds for its next send (still in `held`)."""
        return self.next_up.popleft() if self.next_up else None

    def built(self, task: _Task) -> bytes | None:
        """Return the task's message; if it cannot be built, fail that task alone (None)."""
        if task.data is not None:
            return task.data
        try:
            return task.job.build()
        except Exception as exc:
            why = str(exc) if isinstance(exc, NieuwsbriefError) else f"{type(exc).__name__}: {exc}"
            reply = Reply.local(_("the message could not be built: {why}").format(why=why))
            self.finish(task, self.result(task, Outcome.PERMANENT, reply))
            return None

    def settle(self, task: _Task, reply: Reply) -> None:
        """Act on the reply that ended the task's transaction: report it, or retry later."""
        run = self.run
        if reply.code >= 200:  # the server answered (not a refusal made on this side)
            run.answered()
        self.sent_on_channel += 1
        if self.channel is not None and not self.channel.is_open:  # 421 or a failed RSET
            self.drop_channel()
        outcome = reply.outcome
        if outcome is Outcome.TEMPORARY and task.deferrals < len(run.retry_delays):
            delay = run.retry_delays[task.deferrals]
            task.deferrals += 1
            task.data = None  # rebuilt when due, so waiting jobs hold no message bytes
            self.requeue(task, delay)
            return
        self.finish(task, self.result(task, outcome, reply))

    def lost(self, task: _Task, data: bytes | None, exc: ConnectionLost) -> None:
        """The connection died before the task's final reply: send it again, up to a limit."""
        self.drop_channel()
        if isinstance(exc, TimedOut):
            self.run.failed(str(exc), task.job.key)
            task.timeouts += 1
        task.lost += 1
        if task.lost >= MAX_LOST_CONNECTIONS_PER_JOB or task.timeouts >= FAILURES_IN_A_ROW:
            lost = Reply.local((_("no final reply: {exc}").format(exc=exc)), temporary=True)
            self.finish(task, self.result(task, Outcome.TEMPORARY, lost))
        else:
            task.data = data  # resend the same bytes: same Message-ID if it did arrive
            if isinstance(exc, TimedOut):
                # Let other messages go first: if only this one makes the server hang, their
                # replies keep the circuit breaker from stopping the run.
                self.requeue(task, TIMED_OUT_RETRY_DELAY)
            else:  # first on this worker's next connection, before what it had built
                self.next_up.appendleft(task)

    def finish(self, task: _Task, result: Result | None) -> None:
        self.held.remove(task)
        self.run.finish(task, result)

    def requeue(self, task: _Task, delay: float) -> None:
        self.held.remove(task)
        self.run.requeue(task, delay)

    @staticmethod
    def result(task: _Task, outcome: Outcome, reply: Reply) -> Result:
        job = task.job
        return Result(job.key, job.recipient, outcome, reply, task.attempts)

    def channel_usable(self) -> bool:
        limit = self.run.transport.max_per_connection
        channel = self.channel
        return (
            channel is not None and channel.is_open and (not limit or self.sent_on_channel < limit)
        )

    def drop_channel(self) -> None:
        if self.channel is not None:
            self.channel.close()
        self.channel = self.pipe = None

    def adopt(self, channel: Channel | None) -> None:
        self.channel = channel
        self.pipe = None
        if isinstance(channel, PipeliningChannel) and channel.pipelining:
            self.pipe = channel

    def connect(self) -> None:
        """Replace the channel by a fresh one; raise DeliveryError if that fails."""
        self.drop_channel()
        self.adopt(self.run.transport.open())
        self.sent_on_channel = 0
        with self.run.lock:
            self.run.connections += 1

    def reconnect(self, error: DeliveryError) -> None:
        """Try again after each of the reconnect delays; raise _GiveUp when they run out."""
        for delay in self.run.reconnect_delays:
            if self.run.halt.wait(delay):
                return
            try:
                self.connect()
            except DeliveryError as exc:
                error = exc
                self.run.failed(str(exc))
            else:
                return
        raise _GiveUp(error)


def _report(
    batch: list[Result],
    on_result: Callable[[Result], None] | None,
    on_results: Callable[[list[Result]], None] | None,
) -> None:
    if on_results is not None:
        on_results(batch)
    elif on_result is not None:
        for result in batch:
            on_result(result)


def deliver(
    jobs: Iterable[Job],
    transport: Transport,
    *,
    on_result: Callable[[Result], None] | None = None,
    on_results: Callable[[list[Result]], None] | None = None,
    connections: int = 4,
    rate: float | None = None,
    retry_delays: Sequence[float] = (2, 10, 30, 60, 120),
    reconnect_delays: Sequence[float] = (1, 5, 15),
    stop: threading.Event | None = None,
    failures_in_a_row: int = FAILURES_IN_A_ROW,
    on_waiting: Callable[[int, float], None] | None = None,
) -> DeliveryStats:
    """Send every job over `connections` parallel channels; report each final Result once.

    `on_result` is called in the calling thread, one result at a time, as soon as a worker has
    the final reply (for ACCEPTED: right after the server's 250), so it needs no locking and
    may use a SQLite connection made in this thread. `on_results`, if given instead, gets the
    results that are waiting together (at most RESULTS_AT_ONCE, as soon as the first is there),
    so that one commit can record them: with many connections, a commit per result leaves the
    calling thread no time to feed the workers, and the next envelope then cannot ride along
    with a body. `jobs` is also iterated only in this
    thread, lazily: at most 5 x `connections` jobs are pulled and not yet reported, besides
    those waiting to retry: up to 2 x `connections` waiting for a worker and at most three per
    worker (the message awaiting its reply and, over SMTP with PIPELINING, the next one whose
    MAIL, RCPT and DATA went out behind its body, and the one after, built meanwhile).
    `on_waiting(count, next_in)`, also in the calling thread and about twice a second, says
    how many jobs wait for a retry after a 4xx reply and in how many seconds the next is due.

    A job whose message cannot be built (or that the server cannot take, e.g. an address that
    needs SMTPUTF8) gets a PERMANENT Result and the others go on.

    Raises DeliveryError before anything is sent if the first channel cannot be opened (login
    refused, TLS failure), and later if no worker can reconnect or `failures_in_a_row` x
    `connections` connections in a row failed (the circuit breaker); jobs without a Result
    were not acknowledged by the server. Setting `stop` (or Ctrl-C, re-raised afterwards) lets the
    messages in flight finish and leaves the other jobs unreported; so does an exception from
    iterating `jobs`, re-raised afterwards.
    """
    if connections < 1:
        raise ValueError("connections must be at least 1")
    started = time.monotonic()
    first = transport.open()  # fail before sending anything if the server cannot be used
    run = _Run(
        jobs, transport, connections, rate, retry_delays, reconnect_delays, failures_in_a_row
    )
    run.connections = 1
    stats = DeliveryStats()
    interrupted: KeyboardInterrupt | None = None
    try:
        run.top_up()
    except KeyboardInterrupt as exc:
        interrupted = exc
        run.stop()
    workers = [_Worker(run, first if n == 0 else None) for n in range(connections)]
    threads = [
        threading.Thread(target=worker, name=f"nieuwsbrief-delivery-{n}", daemon=True)
        for n, worker in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    next_tick = 0.0
    while running:
        if stop is not None and stop.is_set() and not run.halt.is_set():
            run.stop()
        if on_waiting is not None and time.monotonic() >= next_tick:
            next_tick = time.monotonic() + 0.5
            on_waiting(*run.waiting())
        batch: list[Result] = []  # taken off the queue: reported even after a Ctrl-C
        try:
            try:
                run.top_up()
                item = run.results.get(timeout=0.1)
                while True:
                    if item is _DONE:
                        running -= 1
                    elif isinstance(item, Result):
                        run.reported += 1
                        _count(stats, item)
                        batch.append(item)
                    if len(batch) >= RESULTS_AT_ONCE:
                        break
                    try:
                        item = run.results.get_nowait()
                    except queue.Empty:
                        break
            finally:
                if batch:
                    _report(batch, on_result, on_results)
        except queue.Empty:
            continue
        except KeyboardInterrupt as exc:
            # Let the messages in flight finish and be reported, then re-raise.
            interrupted = exc
            run.stop()
        except BaseException:
            run.stop()
            for thread in threads:
                thread.join()
            raise
    for thread in threads:
        thread.join()
    stats.connections = run.connections
    stats.elapsed = time.monotonic() - started
    if interrupted is not None:
        raise interrupted
    if run.source_error is not None:
        raise run.source_error
    if run.errors:
        raise run.errors[0]
    if run.broken is not None:
        raise DeliveryError(
            ngettext(
                "stopped after {count} failed connection(s) in a row to {server}, the last: "
                "{last}; messages without a result were not delivered",
                "stopped after {count} failed connection(s) in a row to {server}, the last: "
                "{last}; messages without a result were not delivered",
                run.failure_limit,
            ).format(count=run.failure_limit, server=transport.describe(), last=run.broken)
        )
    if run.gave_up and run.work_left and not run.halt.is_set():
        raise DeliveryError(
            _(
                "lost the connection to {server} and could not reconnect: "
                "{last}; messages without a result were not sent"
            ).format(server=transport.describe(), last=run.gave_up[-1])
        )
    return stats


def _count(stats: DeliveryStats, result: Result) -> None:
    stats.retries += result.attempts - 1
    if result.outcome is Outcome.ACCEPTED:
        stats.accepted += 1
    elif result.outcome is Outcome.TEMPORARY:
        stats.temporary += 1
    else:
        stats.permanent += 1
