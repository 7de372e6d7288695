"""Demo history: the real collector run over HTTP against the simulator at each simulated day."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .._errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from ._store import Store

__all__ = ["build_demo_history"]

_DAY = 86400.0


def _invalidate_day(group: Any, changed: dict[str, list[str]]) -> None:
    """Drop what a day of growth changed from each client's cache.

    Cluster-wide lists and node/storage status change every day; a guest's config only when
    the growth model resized it. Unchanged configs stay cached: that is what keeps 180 days
    of detailed snapshots a matter of seconds (a real collector reads ``fresh``).
    """
    for cluster in group:
        nodes = [n for n in getattr(cluster, "_demo_nodes", ())]
        prefixes = ["/cluster/", "/version"]
        prefixes += [f"/nodes/{n}/status" for n in nodes]
        prefixes += [f"/nodes/{n}/storage" for n in nodes]
        cluster.invalidate(*prefixes, exact=changed.get(cluster.profile, []))


def _collect_days(
    group: Any,
    store: Store,
    model: Any,
    first: int,
    last: int,
    days: int,
    say: Callable[[str], None],
) -> float:
    """Collect days ``first``..``last - 1`` (stepping the model before each but day 0);
    returns the seconds spent reading."""
    from ._collect import read_snapshot

    sim = group.simulator
    for cluster in group:
        cluster._demo_nodes = sorted(sim[cluster.profile].state.nodes)
    t0 = time.perf_counter()
    collect_s = 0.0
    # Parquet encoding releases the GIL: day N is written while day N+1 is read over HTTP.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pvekit-history") as writer:
        pending: list[Future[str]] = []
        for day in range(first, last):
            if day:
                changed: dict[str, list[str]] = {}
                for ev in model.step(1.0):
                    changed.setdefault(ev.cluster, []).append(ev.config_path)
                _invalidate_day(group, changed)
            start = time.perf_counter()
            # The capacity analysis costs more than the reads (~0.7 s against ~0.3 s a day):
            # findings every 30 days and on the last day.
            analyse = day % 30 == 0 or day == days - 1
            snap = read_snapshot(
                group, details=True, analyse=analyse, fresh=False, collected_at=sim.clock.now()
            )
            collect_s += time.perf_counter() - start
            pending.append(
                writer.submit(
                    store.write, snap.frames, collected_at=snap.collected_at, profiles=snap.profiles
                )
            )
            if pending[0].done():
                pending.pop(0).result()  # a failed write stops the build here
            if (day + 1) % 30 == 0 or day + 1 == last:
                say(f"  day {day + 1}/{days}: {time.perf_counter() - t0:.1f} s")
        for f in pending:
            f.result()
    return collect_s


def _chunk_worker(
    url: str, options: dict[str, Any], start: float, seed: int, first: int, last: int, days: int
) -> float:
    """In a worker process: the same demo (same seed, same clock start), the growth model
    replayed to ``first`` (no HTTP: state changes only), then days ``first``..``last - 1``
    collected over HTTP into the same store."""
    from .._connect import demo
    from ..sim import SimClock
    from ..sim._growth import GrowthModel
    from ._store import Store

    group: Any = demo(seed=seed, clock=SimClock(start=start))
    try:
        sim = group.simulator
        model = GrowthModel(sim.clock, [c.state for c in sim.clusters.values()], seed=seed)
        for _ in range(1, first):
            model.step(1.0)
        return _collect_days(group, Store(url, **options), model, first, last, days, _quiet)
    finally:
        group.close()


def _quiet(_msg: str) -> None:
    return None


def build_demo_history(
    group: Any,
    store: Store,
    days: int,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> dict[str, float]:
    """Collect ``days`` daily snapshots of a demo Group whose simulator clock starts ``days``
    ago; between snapshots the seeded growth model changes the clusters. Returns timings.

    With ``workers`` > 1 (default: one per CPU, up to 4, for 60 days or more) the earlier
    days are collected by worker processes, each with its own simulator of the same seed and
    clock start and the model replayed to its first day; this process takes the last days,
    so the group ends in the final state.
    """
    from ..sim._growth import GrowthModel

    sim = getattr(group, "simulator", None)
    if sim is None:
        raise InvalidInputError("demo history needs the Group returned by pvekit.demo()")
    if not isinstance(days, int) or days < 1:
        raise InvalidInputError(f"history days must be a whole number >= 1, got {days!r}")
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if days >= 60 else 1
    workers = max(1, min(workers, days))
    start = sim.clock.now()
    model = GrowthModel(sim.clock, [c.state for c in sim.clusters.values()], seed=seed)
    group.simulator_growth = model
    say = progress or _quiet
    t0 = time.perf_counter()
    bounds = [round(i * days / workers) for i in range(workers + 1)]
    chunks = list(itertools.pairwise(bounds))
    first, last = chunks[-1]
    futures: list[Future[float]] = []
    pool = None
    if len(chunks) > 1:
        # spawn, not fork: this process runs server threads
        pool = ProcessPoolExecutor(len(chunks) - 1, mp_context=mp.get_context("spawn"))
        futures = [
            pool.submit(_chunk_worker, store._url, store._options, start, seed, lo, hi, days)
            for lo, hi in chunks[:-1]
        ]
    try:
        for _ in range(1, first):
            model.step(1.0)
        collect_s = _collect_days(group, store, model, first, last, days, say)
        collect_s += sum(f.result() for f in futures)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return {
        "days": days,
        "workers": len(chunks),
        "seconds": time.perf_counter() - t0,
        "collect_seconds": collect_s,
    }


def past_clock(days: int) -> Any:
    """A simulator clock that starts ``days`` ago (and runs on from there)."""
    from ..sim import SimClock

    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise InvalidInputError(f"history_days must be a whole number >= 1, got {days!r}")
    return SimClock(start=time.time() - (days - 1) * _DAY)  # the last snapshot is today


def attach_history(group: Any, days: int, location: str | None, *, seed: int = 0) -> Any:
    """Build ``days`` of demo history into ``location`` (default: a temporary folder that
    goes away with the group) and set it as ``group.history``."""
    import shutil
    import tempfile
    import weakref

    from ._store import Store

    if location is None:
        location = tempfile.mkdtemp(prefix="pvekit-history-")
        weakref.finalize(group, shutil.rmtree, location, ignore_errors=True)
    store = Store(location)
    group.history_build = build_demo_history(group, store, days, seed=seed)
    group.history = store
    return store
