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
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["FanOut"]

T = TypeVar("T")
R = TypeVar("R")

# Weight of the newest request in the smoothed wall and CPU times.
_ALPHA = 0.25
# Below this many requests in flight by Little's law, threads do not pay: stay sequential.
_MIN_GAIN = 1.5

_in_worker = threading.local()
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


class FanOut:
    """A cluster's long-lived, adaptive executor (see the module docs)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0
        self._closed = False
        # Smoothed seconds of wall and CPU per item, kept across calls: the next table of
        # the same cluster starts at the concurrency the last one ended with.
        self._wall: float | None = None
        self._cpu: float | None = None
        self._items = 0  # items measured or run so far (every _EVERY-th is measured)
        #: the largest number of items in flight in the last :meth:`run`
        self.peak = 0
        #: items in flight right now (tests observe it)
        self.in_flight = 0
        #: threads this fan-out started over its life
        self.threads_started = 0

    # -- pool ---------------------------------------------------------------------------------

    def _executor(self, size: int) -> ThreadPoolExecutor | None:
        with self._lock:
            if self._closed:
                return None
            if self._pool is None or self._size != size:
                # A resized pool replaces the old one without shutting it down: another
                # call may still be submitting to it; its idle threads end once it is freed.
                self._pool = ThreadPoolExecutor(
                    max_workers=size,
                    thread_name_prefix=f"pvekit-{self.name}",
                    initializer=self._started,
                )
                self._size = size
            return self._pool

    def _started(self) -> None:
        _in_worker.owner = self
        with self._lock:
            self.threads_started += 1

    @property
    def threads(self) -> int:
        """Worker threads alive right now."""
        pool = self._pool
        return len(getattr(pool, "_threads", ())) if pool is not None else 0

    def close(self) -> None:
        """Stop the worker threads (running items finish); later runs stay sequential."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

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
        if getattr(_in_worker, "owner", None) is self or limit <= 1 or len(items) <= 1:
            # Inside one of this pool's own workers (a nested fan-out) a pool wait could
            # deadlock: the calling thread does the work.
            for i, item in enumerate(items):
                results[i] = self._timed(fn, item)[0]
                if done is not None:
                    done()
            return results
        finished: queue.SimpleQueue[tuple[int, bool, Any, float, float]] = queue.SimpleQueue()

        def work(i: int, item: T) -> None:
            try:
                value, wall, cpu = self._timed(fn, item)
                finished.put((i, True, value, wall, cpu))
            except BaseException as exc:  # handed to the calling thread, raised there
                finished.put((i, False, exc, 0.0, 0.0))

        nxt = 0
        pending = 0
        count = len(items)
        failure: BaseException | None = None
        while nxt < count or pending:
            want = self.concurrency(limit)
            if failure is None and pending == 0 and want == 1 and nxt < count:
                # Sequential: no thread hop at all.
                results[nxt] = self._timed(fn, items[nxt])[0]
                nxt += 1
                self.peak = max(self.peak, 1)
                if done is not None:
                    done()
                continue
            pool = self._executor(max(limit, size or limit)) if failure is None else None
            while pool is not None and pending < want and nxt < count:
                pending += 1
                with self._lock:
                    self.in_flight += 1
                    self.peak = max(self.peak, self.in_flight)
                try:
                    pool.submit(work, nxt, items[nxt])
                except RuntimeError:  # closed by another thread just now
                    pending -= 1
                    with self._lock:
                        self.in_flight -= 1
                    pool = None
                    break
                nxt += 1
            if pool is None and failure is None and nxt < count:
                # Closed meanwhile: finish in this thread.
                results[nxt] = self._timed(fn, items[nxt])[0]
                nxt += 1
                if done is not None:
                    done()
                continue
            if not pending:
                break
            i, ok, value, _wall, _cpu = finished.get()
            pending -= 1
            with self._lock:
                self.in_flight -= 1
            if ok:
                results[i] = value
            elif failure is None:
                failure = value
                nxt = count  # submit nothing more; wait for what runs
            if done is not None:
                done()
        if failure is not None:
            raise failure
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
