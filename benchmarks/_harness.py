"""Shared helpers of the pvekit benchmarks.

The simulator runs in a child process (:class:`SimServer`) so that the client's process CPU
time and peak memory measure the client alone, and so that the server's request handling
does not compete with the client for the GIL (a real Proxmox VE is another machine). The
parent asks the child, over a pipe, to inject latency, to count the requests it received and
to reset its request log.

Timing helpers: :func:`measure` runs a callable under wall-clock and process-CPU timers,
counting the server requests it caused; :func:`peak_memory` runs it once more under
``tracemalloc`` (which slows Python down, so timings never come from that run);
:class:`Stats` keeps the repeats and gives median and spread.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LOGIN_PATH = "/access/ticket"


# ------------------------------------------------------------------------------ simulator


@dataclass(frozen=True)
class ClusterSpec:
    """One simulated cluster to serve: the profile name the client will use, and the
    :class:`~pvekit.sim.Simulator` scenario with its options."""

    profile: str
    scenario: str = "large"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterInfo:
    """What a client needs to reach one served cluster (token identity, pinned TLS)."""

    profile: str
    host: str  # "127.0.0.1:PORT"
    url: str  # "https://127.0.0.1:PORT"
    ca_file: str
    fingerprint: str
    token_name: str  # "root@pam!pvekit"
    token_value: str
    nodes: int
    guests: int

    def pvekit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`pvekit.connect` (without ``cache``)."""
        return {
            "host": self.url,
            "token_name": self.token_name,
            "token_value": self.token_value,
            "verify_ssl": True,
            "ca_file": self.ca_file,
            "fingerprint": self.fingerprint,
            "timeout": 120,
        }


def _serve(specs: list[ClusterSpec], conn: Connection) -> None:  # pragma: no cover - child
    """Child process: start one Simulator per spec and answer the parent's commands."""
    from pvekit.sim import Simulator

    sims = []
    clusters = []
    for spec in specs:
        options = dict(spec.options)
        # Clusters of one seed are the same cluster to a Group (same identity): an estate
        # of distinct clusters gives each its own seed.
        seed = int(options.pop("seed", 0))
        https = bool(options.pop("https", True))  # plain HTTP for simulator measurements
        sim = Simulator(spec.scenario, https=https, seed=seed, **options)
        sim.start()
        sims.append(sim)
        for sc in sim.clusters.values():
            clusters.append((spec.profile, sc))
    infos = []
    for profile, sc in clusters:
        kw = sc.connect_kwargs("token")
        st = sc.state
        infos.append(
            ClusterInfo(
                profile=profile,
                host=sc.host,
                url=sc.url,
                ca_file=str(sc.ca_file or ""),
                fingerprint=str(sc.fingerprint or ""),
                token_name=kw["token_name"],
                token_value=kw["token_value"],
                nodes=len(st.nodes),
                guests=len(st.guests),
            )
        )
    conn.send(infos)
    try:
        while True:
            cmd, arg = conn.recv()
            if cmd == "latency":
                for _, sc in clusters:
                    sc.faults.clear()
                    if arg:
                        sc.faults.latency(float(arg))
                conn.send(None)
            elif cmd == "requests":
                counts: Counter[str] = Counter()
                for _, sc in clusters:
                    for r in sc.requests:
                        counts[f"{r.method} {r.path}"] += 1
                conn.send(dict(counts))
            elif cmd == "clear":
                for _, sc in clusters:
                    sc.clear_requests()
                conn.send(None)
            elif cmd == "cpu":
                import resource

                ru = resource.getrusage(resource.RUSAGE_SELF)
                conn.send(ru.ru_utime + ru.ru_stime)
            elif cmd == "guests":
                conn.send(
                    [
                        (profile, g.node, g.type, g.vmid, g.agent and g.running)
                        for profile, sc in clusters
                        for g in sorted(sc.state.guests.values(), key=lambda g: g.vmid)
                    ]
                )
            elif cmd == "stop":
                break
    finally:
        for sim in sims:
            sim.stop()
        conn.close()


class SimServer:
    """Simulated clusters served by a child process, driven from the benchmark process.

    Use as a context manager::

        with SimServer([ClusterSpec("large", options={"nodes": 20, "guests": 1000})]) as srv:
            info = srv.clusters[0]
            srv.set_latency(0.02)
    """

    def __init__(self, specs: Sequence[ClusterSpec]) -> None:
        self.specs = list(specs)
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(self.specs, child), daemon=True)
        self.clusters: list[ClusterInfo] = []

    def __enter__(self) -> SimServer:
        self._proc.start()
        if not self._conn.poll(300):
            self._proc.kill()
            raise RuntimeError("the simulator process did not start within 300 s")
        self.clusters = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self._conn.send(("stop", None))
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.kill()

    def _ask(self, cmd: str, arg: Any = None) -> Any:
        self._conn.send((cmd, arg))
        return self._conn.recv()

    def set_latency(self, seconds: float) -> None:
        """Delay every request of every cluster by ``seconds`` (0 removes the delay)."""
        self._ask("latency", seconds)

    def request_counts(self) -> dict[str, int]:
        """``"METHOD /path"`` -> count, since the last :meth:`clear_requests`."""
        return dict(self._ask("requests"))

    def clear_requests(self) -> None:
        self._ask("clear")

    def server_cpu(self) -> float:
        """CPU seconds (user + system, every thread) the simulator process has used."""
        return float(self._ask("cpu"))

    def guests(self) -> list[tuple[str, str, str, int, bool]]:
        """(profile, node, type, vmid, agent answers) of every served guest."""
        return list(self._ask("guests"))

    def request_total(self, *, logins: bool = False) -> int:
        """Requests received since the last clear (logins excluded unless asked)."""
        return sum(
            n for k, n in self.request_counts().items() if logins or not k.endswith(LOGIN_PATH)
        )


# ------------------------------------------------------------------------------ measuring


@dataclass
class Sample:
    """One timed run: wall seconds, client-process CPU seconds, server requests caused."""

    wall: float
    cpu: float
    requests: int


def measure(fn: Callable[[], Any], server: SimServer | None = None) -> Sample:
    """Run ``fn`` once; time it (wall and process CPU) and count the requests it sent."""
    if server is not None:
        server.clear_requests()
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    t1, c1 = time.perf_counter(), time.process_time()
    n = server.request_total() if server is not None else 0
    del result  # results are not kept: they would inflate memory for the later cases
    return Sample(wall=t1 - t0, cpu=c1 - c0, requests=n)


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated by Python while ``fn`` runs (tracemalloc; timings not valid)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@dataclass
class Stats:
    """Repeated samples of one measurement: median and spread (min..max)."""

    samples: list[Sample] = field(default_factory=list)
    peak_bytes: int | None = None

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    @property
    def n(self) -> int:
        return len(self.samples)

    def median(self, attr: str = "wall") -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)

    def spread(self, attr: str = "wall") -> tuple[float, float]:
        vals = [getattr(s, attr) for s in self.samples]
        return min(vals), max(vals)

    @property
    def requests(self) -> int:
        """Requests per run (the median: they should not vary)."""
        return int(statistics.median(s.requests for s in self.samples))


def repeat(
    fn: Callable[[], Any],
    times: int,
    server: SimServer | None = None,
    *,
    setup: Callable[[], Any] | None = None,
) -> Stats:
    """``times`` samples of ``fn``; ``setup`` runs before each, untimed (e.g. a new client)."""
    stats = Stats()
    for _ in range(max(1, times)):
        if setup is not None:
            setup()
        stats.add(measure(fn, server))
    return stats


def ratio(a: Stats, b: Stats, attr: str = "wall") -> float:
    """Median of ``a`` over median of ``b`` (pvekit / proxmoxer: below 1 is faster)."""
    den = b.median(attr)
    return a.median(attr) / den if den else float("nan")


def ratio_range(a: Stats, b: Stats, attr: str = "wall") -> tuple[float, float]:
    """The most and least favourable ratio over both spreads (best a / worst b ...)."""
    alo, ahi = a.spread(attr)
    blo, bhi = b.spread(attr)
    return (alo / bhi if bhi else float("nan"), ahi / blo if blo else float("nan"))


# ------------------------------------------------------------------------------ formatting


def fmt_s(seconds: float) -> str:
    """Seconds with a unit that keeps 2-3 significant digits."""
    if seconds != seconds:  # NaN
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_stats(st: Stats, attr: str = "wall") -> str:
    """``median (min-max)``; just the median for one sample."""
    med = fmt_s(st.median(attr))
    if st.n < 2:
        return f"{med} (n=1)"
    lo, hi = st.spread(attr)
    return f"{med} ({fmt_s(lo)}-{fmt_s(hi)})"


def fmt_mib(nbytes: int | None) -> str:
    if nbytes is None:
        return "-"
    return f"{nbytes / 2**20:.1f} MiB"


def fmt_ratio(a: Stats, b: Stats, attr: str = "wall") -> str:
    """pvekit/proxmoxer ratio with its range and the speed-up it means."""
    r = ratio(a, b, attr)
    lo, hi = ratio_range(a, b, attr)
    speed = 1 / r if r else float("inf")
    return (
        f"{r:.3f} ({lo:.3f}-{hi:.3f}); {speed:.1f}x faster"
        if r < 1
        else (f"{r:.2f} ({lo:.2f}-{hi:.2f}); {r:.1f}x slower")
    )


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)
