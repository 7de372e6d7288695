"""Demo history: the real collector run over HTTP against the simulator at each simulated day."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .._errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from ._store import Store

__all__ = ["build_demo_history"]

_DAY = 86400.0
# Fan-out threads of each collector client. The simulator answers from this machine's CPU:
# beyond a few threads they only queue for the GIL (16 cost ~15 ms of thread start-up and
# switching a day for nothing).
_COLLECTOR_WORKERS = 4
# A worker process costs ~1 s of CPU before its first day (see _STARTUP_DAYS): below this
# many days one process is about as fast, and cheaper.
_PARALLEL_FROM_DAYS = 60
# Simulated days a worker's start-up is worth, when splitting the days between processes
# (~1 s of CPU before its first day: interpreter, imports, its simulator, the collector's
# clients, the first day's guest configs over HTTP; a day is 50-75 ms).
_STARTUP_DAYS = 16
# A day costs more as the estate grows (79 guests to ~210 over 180 days): day d costs
# about 1 + d / _GROWTH_DAYS of day 0 (measured on 180 days in two processes: 52 ms a day
# over the first half, 69 ms over the second, start-ups apart).
_GROWTH_DAYS = 350.0
# Days stored per commit (Store.write_many): one Arrow conversion and concatenation per kind
# for them all. The last batch is written after the last read, not alongside: not too many.
_BATCH_DAYS = 15


def _collector(sim: Any) -> Any:
    """The collector's own clients of the simulator: one per cluster, over HTTP, with the
    in-memory cache and the API token a collector service runs with.

    A token, not a ticket: the simulator's clock moves a day between snapshots, so a ticket
    would have expired at every one of them (a 401, a new login and the read again, each
    day, for each cluster).
    """
    from .._connect import connect
    from .._group import Group

    clusters: list[Any] = []
    try:
        for name, simcluster in sim.clusters.items():
            kwargs = dict(simcluster.connect_kwargs(identity="token"))
            kwargs.pop("profile", None)
            cluster = connect(name, cache="memory", **kwargs)
            cluster.max_workers = _COLLECTOR_WORKERS
            clusters.append(cluster)
    except BaseException:
        for c in clusters:
            c.close()
        raise
    return Group(clusters, name="demo-history")


def _invalidate_day(group: Any, changed: dict[str, list[str]]) -> None:
    """Drop from each client's cache what a day of growth changed, and only that.

    ``/cluster/resources`` and each node's status and storage change every day (usage,
    uptime, the guests created and removed); a guest's config only when the growth model
    resized it. The rest (``/version``, ``/cluster/status``, unchanged configs) is the same
    answer as yesterday's: read from the cache, that is what keeps 180 days of detailed
    snapshots a matter of seconds (a real collector reads ``fresh``).
    """
    for cluster in group:
        nodes = getattr(cluster, "_demo_nodes", ())
        exact = ["/cluster/resources", *changed.get(cluster.profile, [])]
        exact += [f"/nodes/{n}/status" for n in nodes]
        cluster.invalidate(*(f"/nodes/{n}/storage" for n in nodes), exact=exact)


def _collect_days(
    group: Any,
    sim: Any,
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

    for cluster in group:
        cluster._demo_nodes = sorted(sim[cluster.profile].state.nodes)
    t0 = time.perf_counter()
    collect_s = 0.0
    # Parquet encoding releases the GIL: a batch of days is written while the next is read.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pvekit-history") as writer:
        pending: list[Future[list[str]]] = []
        batch: list[Any] = []
        for day in range(first, last):
            if day:
                changed: dict[str, list[str]] = {}
                for ev in model.step(1.0):
                    changed.setdefault(ev.cluster, []).append(ev.config_path)
                _invalidate_day(group, changed)
            start = time.perf_counter()
            # The capacity analysis costs more than a day's reads: findings every 30 days
            # and on the last day.
            analyse = day % 30 == 0 or day == days - 1
            snap = read_snapshot(
                group,
                details=True,
                analyse=analyse,
                fresh=False,
                collected_at=sim.clock.now(),
                combine=False,
            )
            collect_s += time.perf_counter() - start
            batch.append((snap.for_store(), snap.collected_at, snap.profiles))
            if len(batch) >= _BATCH_DAYS or day + 1 == last:
                pending.append(writer.submit(store.write_many, batch))
                batch = []
            if pending and pending[0].done():
                pending.pop(0).result()  # a failed write stops the build here
            if (day + 1) % 30 == 0 or day + 1 == last:
                say(f"  day {day + 1}/{days}: {time.perf_counter() - t0:.1f} s")
        for f in pending:
            f.result()
    return collect_s


def _fingerprint(sim: Any) -> list[Any]:
    """What a worker's simulator must match: clusters, nodes (online or not) and guests."""
    out: list[Any] = []
    for name, c in sorted(sim.clusters.items()):
        # lists, not tuples: the worker gets it through JSON
        nodes = sorted([n, bool(node.online)] for n, node in c.state.nodes.items())
        out.append([name, nodes, sorted(c.state.guests)])
    return out


def _replicable(sim: Any) -> bool:
    """A worker rebuilds the simulator from scenario, seed and version only: the demo
    scenario without extra options (offline nodes...) is what it can reproduce."""
    from ..sim import Simulator

    if sim.scenario != "demo":
        return False
    twin = Simulator("demo", seed=sim.seed, pve_version=sim.pve_version)
    return _fingerprint(twin) == _fingerprint(sim)


def _run_chunk(spec: dict[str, Any]) -> dict[str, float]:
    """Days ``first``..``last - 1`` of the demo history in this process: a simulator of the
    same seed and clock start, the growth model replayed to ``first`` (state changes only,
    no HTTP), then those days collected over HTTP into the store."""
    from ..sim import SimClock, Simulator
    from ..sim._growth import GrowthModel
    from ._store import HistoryError, Store

    cpu = time.process_time()
    sim = Simulator(
        "demo", seed=spec["seed"], pve_version=spec["pve_version"], clock=SimClock(spec["start"])
    )
    if _fingerprint(sim) != spec["fingerprint"]:
        raise HistoryError("demo history worker: its simulator differs from the demo's")
    sim.start()
    try:
        group = _collector(sim)
        try:
            states = [c.state for c in sim.clusters.values()]
            model = GrowthModel(sim.clock, states, seed=spec["seed"])
            for _ in range(1, spec["first"]):
                model.step(1.0)
            store = Store(spec["url"], **spec["options"])
            args = (spec["first"], spec["last"], spec["days"], _quiet)
            collect_s = _collect_days(group, sim, store, model, *args)
        finally:
            group.close()
    finally:
        sim.stop()
    return {
        "collect_seconds": collect_s,
        "cpu_seconds": time.process_time() - cpu,
        "finished_at": time.time(),
    }


def _worker_main(spec: dict[str, Any]) -> None:
    """Entry point of a worker process: timings of its chunk on stdout, as JSON."""
    print(json.dumps(_run_chunk(spec)))


# A plain interpreter, not multiprocessing: spawn re-imports the caller's __main__ (a script
# calling pvekit.demo(history_days=...) without a main guard would run itself again), fork
# copies a process that runs server threads. The spec goes on stdin (store options may hold
# credentials), never on the command line, with this process's sys.path.
_WORKER_BOOT = (
    "import json, sys; spec = json.loads(sys.stdin.readline()); "
    "sys.path[:0] = spec.pop('path'); "
    "from pvekit.history._demo import _worker_main; _worker_main(spec)"
)


class _Worker:
    """One worker process and its output files (files, not pipes: a worker that writes
    much to stderr must not block while this process is busy with its own days)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import tempfile

        self.first, self.last = spec["first"], spec["last"]
        self.spawned_at = time.time()
        self.out = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in close())
        self.err = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_BOOT],
            stdin=subprocess.PIPE,
            stdout=self.out,
            stderr=self.err,
            text=True,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({**spec, "path": sys.path}) + "\n")
        self.proc.stdin.close()

    def result(self) -> dict[str, float]:
        from ._store import HistoryError

        status = self.proc.wait()
        self.out.seek(0)
        self.err.seek(0)
        out, err = self.out.read(), self.err.read().strip()
        if status != 0:
            why = err.splitlines()[-1] if err else f"exit status {status}"
            raise HistoryError(
                f"demo history worker for days {self.first + 1}..{self.last} failed: {why}"
            )
        result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
        # its whole life, start-up included (wall clock of this machine: the same clock)
        result["seconds"] = result.pop("finished_at", self.spawned_at) - self.spawned_at
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        self.err.close()


def _quiet(_msg: str) -> None:
    return None


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _cost(day: float) -> float:
    """CPU of days 0..``day`` (continuous), in units of day 0's."""
    return day + day * day / (2 * _GROWTH_DAYS)


def _chunks(days: int, workers: int) -> list[tuple[int, int]]:
    """Day ranges, the first ``workers - 1`` for worker processes and the last for this
    process: a worker starts later (its start-up), so it gets fewer days, and later days
    cost more (more guests), so the ranges are cut by cost, not by count."""
    if workers == 1:
        return [(0, days)]
    # w processes over the same time: each worker does `share - startup` of cost, this one
    # `share`, so that the total cost = w * share - (w - 1) * startup.
    share = (_cost(days) + (workers - 1) * _STARTUP_DAYS) / workers
    each = max(1.0, share - _STARTUP_DAYS)
    bounds = [0]
    day = 0
    for i in range(1, workers):
        while day < days - 1 and _cost(day + 1) <= i * each:
            day += 1
        # at least a day each, in order
        bounds.append(min(days - (workers - i), max(bounds[-1] + 1, day)))
    bounds.append(days)
    return list(itertools.pairwise(bounds))


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

    The collector has clients of its own (see :func:`_collector`), so ``group`` keeps its
    identity and cache. With ``workers`` > 1 (default: one per CPU, up to 4, from 60 days)
    the earlier days are collected by worker processes, each with its own simulator of the
    same seed and clock start and the model replayed to its first day; this process takes
    the last days, so the group's simulator ends in the final state.
    """
    from ..sim._growth import GrowthModel

    sim = getattr(group, "simulator", None)
    if sim is None:
        raise InvalidInputError("demo history needs the Group returned by pvekit.demo()")
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise InvalidInputError(f"history days must be a whole number >= 1, got {days!r}")
    if workers is None:
        workers = min(_cpus(), 4) if days >= _PARALLEL_FROM_DAYS else 1
    workers = max(1, min(workers, days))
    if workers > 1 and (not store._local or not _replicable(sim)):
        workers = 1  # a memory:// store or a customised simulator lives in this process only
    cpu0, t0 = time.process_time(), time.perf_counter()
    start = sim.clock.now()
    model = GrowthModel(sim.clock, [c.state for c in sim.clusters.values()], seed=seed)
    group.simulator_growth = model
    say = progress or _quiet
    chunks = _chunks(days, workers)
    spec = {
        "seed": seed,
        "pve_version": sim.pve_version,
        "start": start,
        "days": days,
        "url": store._url,
        "options": store._options,
        "fingerprint": _fingerprint(sim) if len(chunks) > 1 else None,
    }
    procs = [_Worker({**spec, "first": lo, "last": hi}) for lo, hi in chunks[:-1]]
    try:
        first, last = chunks[-1]
        for _ in range(1, first):
            model.step(1.0)
        collector = _collector(sim)
        try:
            collect_s = _collect_days(collector, sim, store, model, first, last, days, say)
        finally:
            collector.close()
        own_s = time.perf_counter() - t0
        results = [p.result() for p in procs]
    finally:
        for p in procs:
            p.close()
    return {
        "days": days,
        "workers": len(chunks),
        "seconds": time.perf_counter() - t0,
        "collect_seconds": collect_s + sum(r["collect_seconds"] for r in results),
        "cpu_seconds": time.process_time() - cpu0 + sum(r["cpu_seconds"] for r in results),
        # when this process and the last worker were done with their days (the split's check)
        "main_seconds": own_s,
        "worker_seconds": max((r["seconds"] for r in results), default=0.0),
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
