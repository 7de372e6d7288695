"""Demo history: the real collector run over HTTP against the simulator at each simulated day."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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


def build_demo_history(
    group: Any,
    store: Store,
    days: int,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Collect ``days`` daily snapshots of a demo Group whose simulator clock starts ``days``
    ago; between snapshots the seeded growth model changes the clusters. Returns timings."""
    from ..sim._growth import GrowthModel
    from ._collect import read_snapshot

    sim = getattr(group, "simulator", None)
    if sim is None:
        raise InvalidInputError("demo history needs the Group returned by pvekit.demo()")
    if not isinstance(days, int) or days < 1:
        raise InvalidInputError(f"history days must be a whole number >= 1, got {days!r}")
    model = GrowthModel(sim.clock, [c.state for c in sim.clusters.values()], seed=seed)
    group.simulator_growth = model
    for cluster in group:
        cluster._demo_nodes = sorted(sim[cluster.profile].state.nodes)
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    collect_s = 0.0
    changed: dict[str, list[str]] = {}
    # Parquet encoding releases the GIL: day N is written while day N+1 is read over HTTP.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pvekit-history") as writer:
        pending: list[Future[str]] = []
        for day in range(days):
            if day:
                events = model.step(1.0)
                changed = {}
                for ev in events:
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
            if (day + 1) % 30 == 0 or day + 1 == days:
                say(f"  day {day + 1}/{days}: {time.perf_counter() - t0:.1f} s")
        for f in pending:
            f.result()
    return {"days": days, "seconds": time.perf_counter() - t0, "collect_seconds": collect_s}


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
