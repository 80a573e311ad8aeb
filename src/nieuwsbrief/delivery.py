"""The parallel delivery engine: jobs in, one final Result per job out, over any Transport.

Worker threads each own one channel (one SMTP connection) and reuse it for many messages. A
shared limiter keeps the total rate; 4xx replies requeue the job with backoff, 5xx replies are
final, and a lost connection is reopened and the unacknowledged message sent again. The engine
knows nothing about how messages are built or where results are recorded.
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

from nieuwsbrief.errors import DeliveryError
from nieuwsbrief.transport import Channel, ConnectionLost, Outcome, Reply, Transport

# How often one message may cost a connection before it is given up as a temporary failure.
MAX_LOST_CONNECTIONS_PER_JOB = 3


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

    @property
    def per_second(self) -> float:
        """Reported jobs per second of wall-clock time."""
        return self.reported / self.elapsed if self.elapsed > 0 else 0.0


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
    ) -> None:
        self.jobs: Iterator[Job] = iter(jobs)  # advanced only by the calling thread
        self.feed: deque[Job] = deque()  # new jobs waiting for a worker
        self.feed_limit = 2 * connections
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

    def stop(self) -> None:
        self.halt.set()
        with self.cond:
            self.cond.notify_all()

    # -- the job source: pulled lazily into a short feed by the calling thread ------------

    def top_up(self) -> None:
        """Fill the feed from the jobs iterable (in the calling thread: it may use SQLite)."""
        while True:
            with self.cond:
                if self.exhausted or self.halt.is_set() or len(self.feed) >= self.feed_limit:
                    return
            try:
                job = next(self.jobs)
            except StopIteration:
                with self.cond:
                    self.exhausted = True
                    self.cond.notify_all()
                return
            with self.cond:
                self.feed.append(job)
                self.cond.notify()

    def next_task(self) -> _Task | None:
        """Take a due retry, else a new job; wait while others may still requeue work."""
        with self.cond:
            while not self.halt.is_set():
                now = time.monotonic()
                if self.retries and self.retries[0].due <= now:
                    self.in_hand += 1
                    return heapq.heappop(self.retries).task
                if self.feed:
                    self.in_hand += 1
                    if len(self.feed) <= self.feed_limit // 2:
                        self.results.put(_MORE)  # wake the calling thread to top up
                    return _Task(self.feed.popleft())
                if self.exhausted and not self.retries and self.in_hand == 0:
                    return None
                self.cond.wait(self.retries[0].due - now if self.retries else None)
            return None

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
        self.sent_on_channel = 0

    def __call__(self) -> None:
        run = self.run
        try:
            while (task := run.next_task()) is not None:
                if not self.channel_usable():
                    try:
                        self.connect()
                    except DeliveryError as exc:
                        # Let another worker have the job while this one waits to reconnect.
                        run.requeue(task, 0.0)
                        self.reconnect(exc)
                        continue
                try:
                    self.process(task)
                except BaseException:
                    run.finish(task, None)
                    raise
        except _GiveUp as exc:
            run.gave_up.append(exc.error)
        except BaseException as exc:  # handed to the calling thread, which re-raises it
            run.errors.append(exc)
            run.stop()
        finally:
            if self.channel is not None:
                self.channel.close()
            run.results.put(_DONE)

    def process(self, task: _Task) -> None:
        """Send the task once and report it, requeue it, or drop it if the run was stopped."""
        run = self.run
        channel = self.channel
        assert channel is not None
        job = task.job
        data = task.data if task.data is not None else job.build()
        if run.limiter is not None:
            wait = run.limiter.reserve()
            if wait > 0 and run.halt.wait(wait):
                run.finish(task, None)  # stopped before it was sent: not reported
                return
        if run.halt.is_set():
            run.finish(task, None)
            return
        task.attempts += 1
        try:
            reply = channel.send(job.sender, job.recipient, data)
        except ConnectionLost as exc:
            self.drop_channel()
            task.lost += 1
            if task.lost >= MAX_LOST_CONNECTIONS_PER_JOB:
                lost = Reply(421, "4.4.2", f"connection lost before the reply ({exc})")
                run.finish(task, self.result(task, Outcome.TEMPORARY, lost))
            else:
                task.data = data  # resend the same bytes: same Message-ID if it did arrive
                run.requeue(task, 0.0)
            return
        self.sent_on_channel += 1
        if not channel.is_open:  # 421 or a failed RSET
            self.drop_channel()
        outcome = reply.outcome
        if outcome is Outcome.TEMPORARY and task.deferrals < len(run.retry_delays):
            delay = run.retry_delays[task.deferrals]
            task.deferrals += 1
            task.data = None  # rebuilt when due, so waiting jobs hold no message bytes
            run.requeue(task, delay)
            return
        run.finish(task, self.result(task, outcome, reply))

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
        self.channel = None

    def connect(self) -> None:
        """Replace the channel by a fresh one; raise DeliveryError if that fails."""
        self.drop_channel()
        self.channel = self.run.transport.open()
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
            else:
                return
        raise _GiveUp(error)


def deliver(
    jobs: Iterable[Job],
    transport: Transport,
    *,
    on_result: Callable[[Result], None],
    connections: int = 4,
    rate: float | None = None,
    retry_delays: Sequence[float] = (2, 10, 30, 60, 120),
    reconnect_delays: Sequence[float] = (1, 5, 15),
    stop: threading.Event | None = None,
) -> DeliveryStats:
    """Send every job over `connections` parallel channels; report each final Result once.

    `on_result` is called in the calling thread, one result at a time, as soon as a worker has
    the final reply (for ACCEPTED: right after the server's 250), so it needs no locking and
    may use a SQLite connection made in this thread. `jobs` is also iterated only in this
    thread, lazily: at most 2 x `connections` jobs wait in memory, plus those waiting to retry.

    Raises DeliveryError before anything is sent if the first channel cannot be opened (login
    refused, TLS failure), and later if no worker can reconnect; jobs without a Result were
    not acknowledged by the server. Setting `stop` (or Ctrl-C, re-raised afterwards) lets the
    messages in flight finish and leaves the other jobs unreported.
    """
    if connections < 1:
        raise ValueError("connections must be at least 1")
    started = time.monotonic()
    first = transport.open()  # fail before sending anything if the server cannot be used
    run = _Run(jobs, transport, connections, rate, retry_delays, reconnect_delays)
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
    while running:
        if stop is not None and stop.is_set() and not run.halt.is_set():
            run.stop()
        try:
            run.top_up()
            item = run.results.get(timeout=0.1)
            if item is _DONE:
                running -= 1
            elif isinstance(item, Result):
                _count(stats, item)
                on_result(item)
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
    if run.errors:
        raise run.errors[0]
    if run.gave_up and run.work_left and not run.halt.is_set():
        raise DeliveryError(
            f"lost the connection to {transport.describe()} and could not reconnect: "
            f"{run.gave_up[-1]}; messages without a result were not sent"
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
