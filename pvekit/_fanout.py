"""One cluster's fan-out: a long-lived thread pool whose concurrency follows the server.

A table that needs one request per guest or node runs those requests on threads, since the
client mostly waits for the network. But every request also costs client CPU under one GIL:
when the server answers at once (a LAN, loopback), extra threads only add switching and the
table is slower than a plain loop (measured: 1.33 s with 16 threads vs 0.82 s sequentially
for 305 guests at 0 ms). So :class:`FanOut` keeps as many requests in flight as Little's law
says keep the client busy: the wall time of a request over its CPU time (both measured per
request, smoothed), between 1 and ``max_workers``. At 1 the calling thread does the work
itself and no thread is started; at 20 ms latency and ~0.5 ms of CPU per request it uses
every worker allowed.

The pool lives as long as its cluster (one per cluster, not one per call) and is shut down
by ``close()``; threads are started only as the concurrency asks for them.

Most per-guest reads no longer come here: a table reads its paths with ``get_many``, whose
lean-path batch runs on the calling thread with ``max_workers`` requests in flight (see
:meth:`pvekit._api.ApiClient.get_many`). This pool runs what the batch cannot carry (persisted
and cluster-level reads, an injected session) and the reads it must try again. In a Group
each cluster's batch keeps its own ``max_workers`` bound (different servers; a batch costs no
thread): :data:`GROUP_IN_FLIGHT` and :func:`in_flight_share` bound these threads only.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["GROUP_IN_FLIGHT", "FanOut", "current_share", "in_flight_share"]

T = TypeVar("T")
R = TypeVar("R")

# Weight of the newest request in the smoothed wall and CPU times.
_ALPHA = 0.25
# Below this many requests in flight by Little's law, threads do not pay: stay sequential.
_MIN_GAIN = 1.5

_in_worker = threading.local()
_share = threading.local()

#: Requests a Group keeps in flight on fan-out threads over all its clusters at once: each
#: cluster's fan-out gets an even share (at least 1). Past a few dozen, threads of one
#: interpreter add switching and TLS connections, not throughput (the clients' CPU is the
#: bound, measured). A cluster's lean batch is not bound by it (see the module docs).
GROUP_IN_FLIGHT = 64


@contextlib.contextmanager
def in_flight_share(limit: int | None) -> Iterator[None]:
    """Bound the fan-outs this thread starts inside the block to ``limit`` at once."""
    previous = getattr(_share, "limit", None)
    _share.limit = limit if previous is None or limit is None else min(limit, previous)
    try:
        yield
    finally:
        _share.limit = previous


def current_share() -> int | None:
    """The in-flight bound set by :func:`in_flight_share` in this thread, if any."""
    limit: int | None = getattr(_share, "limit", None)
    return limit


# Items of a run whose wall and CPU are all measured before measuring only every _EVERY-th.
_FIRST = 8
_EVERY = 4
_SCHEDSTAT = "/proc/thread-self/schedstat"


def _runqueue_wait() -> float:
    """Seconds this thread has waited for a CPU (Linux), else 0.

    On a busy machine a request's wall time includes waiting for a CPU; that wait is no
    reason for more threads (they would wait too), so it is taken off the wall time.
    """
    try:
        with open(_SCHEDSTAT, "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class _Workers:
    """Threads taking jobs from one queue; a thread starts only when none is idle, so a
    fan-out never holds more threads than it had jobs in flight at once."""

    def __init__(self, name: str, token: object) -> None:
        self.name = name
        self.token = token
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.idle = 0
        self.started = 0
        self.stopped = False

    def submit(self, job: Callable[[], None], size: int) -> None:
        with self.lock:
            stopped = self.stopped
            if not stopped:
                # idle: threads waiting for a job minus jobs waiting for a thread
                if self.idle <= 0 and len(self.threads) >= size:
                    self.threads = [t for t in self.threads if t.is_alive()]
                if self.idle <= 0 and len(self.threads) < size:
                    t = threading.Thread(target=self._loop, name=f"pvekit-{self.name}", daemon=True)
                    self.threads.append(t)
                    self.started += 1
                    t.start()
                else:
                    self.idle -= 1  # that idle thread is spoken for
                # Queued under the lock: stop()'s sentinels come after every job submitted.
                self.jobs.put(job)
        if stopped:  # closed while a run was dispatching: its last items run here
            job()

    def _loop(self) -> None:
        _in_worker.owner = self.token
        while True:
            job = self.jobs.get()
            if job is None:
                return
            job()
            with self.lock:
                self.idle += 1

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            threads = list(self.threads)
        for _ in threads:
            self.jobs.put(None)
        for t in threads:
            if t is not threading.current_thread():
                t.join(30)


class FanOut:
    """A cluster's long-lived, adaptive executor (see the module docs)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._token = object()  # marks this fan-out's worker threads
        self._workers: _Workers | None = _Workers(name, self._token)
        # The threads end with the fan-out even if close() is never called.
        weakref.finalize(self, self._workers.stop)
        # Smoothed seconds of wall and CPU per item, kept across calls: the next table of
        # the same cluster starts at the concurrency the last one ended with.
        self._wall: float | None = None
        self._cpu: float | None = None
        self._items = 0  # items measured or run so far (every _EVERY-th is measured)
        #: the largest number of items in flight in the last :meth:`run`
        self.peak = 0
        #: items in flight right now (tests observe it)
        self.in_flight = 0

    @property
    def threads_started(self) -> int:
        """Threads this fan-out started over its life."""
        return self._started_total

    _started_total = 0

    @property
    def threads(self) -> int:
        """Worker threads alive right now."""
        w = self._workers
        return sum(t.is_alive() for t in w.threads) if w is not None else 0

    def close(self) -> None:
        """Stop the worker threads (running items finish); later runs stay sequential."""
        with self._lock:
            workers, self._workers = self._workers, None
        if workers is not None:
            workers.stop()

    # -- concurrency --------------------------------------------------------------------------

    def _observe(self, wall: float, cpu: float) -> None:
        if self._wall is None or self._cpu is None:
            self._wall, self._cpu = wall, cpu
        else:
            self._wall += _ALPHA * (wall - self._wall)
            self._cpu += _ALPHA * (cpu - self._cpu)

    def concurrency(self, limit: int) -> int:
        """Items to keep in flight now: wall over CPU per item, within 1..``limit``."""
        if self._wall is None or self._cpu is None:
            return 1  # the first item runs alone: it is the measurement
        ratio = self._wall / max(self._cpu, 1e-6)
        if ratio < _MIN_GAIN:
            return 1
        return max(1, min(limit, math.ceil(ratio)))

    # -- running ------------------------------------------------------------------------------

    def run(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        limit: int,
        size: int | None = None,
        done: Callable[[], None] | None = None,
    ) -> list[R]:
        """``fn`` of every item, in order, at most ``limit`` at once; ``done()`` after each.

        ``size`` is the pool's thread count (default ``limit``); calls of one cluster share
        the pool, each bounded by its own ``limit``.

        Exceptions propagate (the caller's ``fn`` turns expected failures into results).
        """
        results: list[Any] = [None] * len(items)
        self.peak = 0
        if getattr(_in_worker, "owner", None) is self._token or limit <= 1 or len(items) <= 1:
            # Inside one of this pool's own workers (a nested fan-out) a pool wait could
            # deadlock: the calling thread does the work.
            for i, item in enumerate(items):
                results[i] = self._timed(fn, item)[0]
                if done is not None:
                    done()
            return results
        run = _Run(self, fn, items, results, limit, max(limit, size or limit), done)
        run.work(caller=True)  # the calling thread works too; helpers join as it measures
        with run.cond:
            while run.busy:
                run.cond.wait()
        if run.failure is not None:
            raise run.failure
        return results

    def _timed(self, fn: Callable[[T], R], item: T) -> tuple[R, float, float]:
        with self._lock:
            self._items += 1
            sample = self._items <= _FIRST or self._items % _EVERY == 0
        if not sample:
            return fn(item), 0.0, 0.0
        q0 = _runqueue_wait()
        w0, c0 = time.perf_counter(), time.thread_time()
        value = fn(item)
        wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
        wall = max(cpu, wall - (_runqueue_wait() - q0))
        with self._lock:
            self._observe(wall, cpu)
        return value, wall, cpu


class _Run:
    """One :meth:`FanOut.run`: the caller and the helpers it grew take items in turn.

    Each thread takes its next item itself (no hand-off through the caller per item) and,
    after each item, the concurrency is re-read: helpers start while fewer threads work
    than it asks for, and a helper leaves when more do.
    """

    def __init__(
        self,
        fan: FanOut,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        results: list[Any],
        limit: int,
        size: int,
        done: Callable[[], None] | None,
    ) -> None:
        self.fan, self.fn, self.items, self.results = fan, fn, items, results
        self.limit, self.size, self.done = limit, size, done
        self.cond = threading.Condition()
        self.nxt = 0
        self.busy = 0  # items taken and not finished
        self.helpers = 0  # helper threads working on this run (or queued to)
        self.failure: BaseException | None = None

    def work(self, caller: bool = False) -> None:
        fan, count = self.fan, len(self.items)
        while True:
            with self.cond:
                if (
                    self.failure is not None
                    or self.nxt >= count
                    or (not caller and 1 + self.helpers > fan.concurrency(self.limit))
                ):
                    if not caller:
                        self.helpers -= 1
                    return
                i = self.nxt
                self.nxt += 1
                self.busy += 1
                with fan._lock:
                    fan.in_flight += 1
                    fan.peak = max(fan.peak, fan.in_flight)
            try:
                value = fan._timed(self.fn, self.items[i])[0]
                error: BaseException | None = None
            except BaseException as exc:  # raised in the calling thread once all are done
                value, error = None, exc
            spawn = 0
            with self.cond:
                self.busy -= 1
                with fan._lock:
                    fan.in_flight -= 1
                if error is not None:
                    if self.failure is None:
                        self.failure = error
                else:
                    self.results[i] = value
                    if self.done is not None:
                        self.done()
                if self.failure is None and self.nxt < count:
                    want = min(fan.concurrency(self.limit), count - self.nxt + self.busy)
                    spawn = max(0, want - 1 - self.helpers)
                    self.helpers += spawn
                if not self.busy:
                    self.cond.notify_all()
            workers = fan._workers
            for _ in range(spawn):
                if workers is None:  # closed: the threads already working finish the run
                    with self.cond:
                        self.helpers -= 1
                    continue
                workers.submit(self.work, self.size)
                fan._started_total = workers.started
