#!/usr/bin/env python3
"""Warm frames: ``nodes()``, ``storage()``, ``guests()``, ``summary()`` repeated on a warm client.

Issue 18's target: each under 10 ms on the ``large`` scenario (20 nodes, 5,000 guests) with 0
requests. A warm repeat hands out a copy of the frame the client's cache layer kept, while
every answer it was built from is still the same (``ApiClient.memo_frame``); the copy is what
the caller may mutate, so its cost is measured on its own.

    python benchmarks/bench_warm.py             # 20 nodes, 5,000 guests, 20 repeats
    python benchmarks/bench_warm.py --quick     # 3 nodes, 100 guests, 5 repeats

``benchmarks/run.py`` includes this section in BENCHMARKS.md. Nothing is asserted here; the
request counts (0 on a warm repeat) are asserted in tests/test_endpoints.py.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import ClusterInfo, ClusterSpec, SimServer, md_table
from bench_inventory import pvekit_client

READS: dict[str, Callable[[Any], Any]] = {
    "nodes()": lambda c: c.nodes(progress=False),
    "storage()": lambda c: c.storage(progress=False),
    "guests()": lambda c: c.guests(progress=False),
    "summary()": lambda c: c.summary(),
}
TARGET_MS = 10.0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


@contextlib.contextmanager
def _thread_starts() -> Iterator[list[threading.Thread]]:
    """The threads started inside the block (a thread pool's workers among them)."""
    starts: list[threading.Thread] = []
    real_start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        starts.append(thread)
        real_start(thread)

    threading.Thread.start = counted  # type: ignore[method-assign]
    try:
        yield starts
    finally:
        threading.Thread.start = real_start  # type: ignore[method-assign]


def warm_rows(server: SimServer, info: ClusterInfo, repeats: int) -> list[list[Any]]:
    """One row per read: cold, warm median (min-max), requests and threads of the warm
    repeats, the cost of the copy handed out, and whether the target is met."""
    server.set_latency(0.0)
    client = pvekit_client(info)
    rows: list[list[Any]] = []
    try:
        for label, read in READS.items():
            t0 = time.perf_counter()
            frame = read(client)
            cold = time.perf_counter() - t0
            server.clear_requests()
            times = []
            with _thread_starts() as starts:
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    read(client)
                    times.append(time.perf_counter() - t0)
            started = len(starts)
            requests = server.request_total()
            copies = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                frame.copy()
                copies.append(time.perf_counter() - t0)
            median = statistics.median(times)
            rows.append(
                [
                    label,
                    len(frame),
                    _ms(cold),
                    f"{_ms(median)} ({_ms(min(times))}-{_ms(max(times))})",
                    requests,
                    started,
                    _ms(statistics.median(copies)),
                    "met" if median * 1000 < TARGET_MS and requests == 0 else "MISSED",
                ]
            )
    finally:
        client.close()
    return rows


HEADERS = [
    "read",
    "rows",
    "cold",
    "warm: median (min-max)",
    "req (warm)",
    "threads started (warm)",
    "copy of the frame",
    f"< {TARGET_MS:g} ms, 0 req",
]


def warm_section(nodes: int, guests: int, repeats: int) -> str:
    """The BENCHMARKS.md section: its own simulator, latency 0 (nothing is sent warm)."""
    spec = ClusterSpec("warm", "large", {"nodes": nodes, "guests": guests})
    with SimServer([spec]) as server:
        rows = warm_rows(server, server.clusters[0], repeats)
    return (
        f"## Warm frames ({nodes} nodes, {guests} guests; issue 18)\n\n"
        f"The same read repeated {repeats} times on a warm client (`cache='memory'`): the "
        "client's cache layer hands out a copy of the frame it kept while every answer the "
        "frame was built from is unchanged (no request, no thread pool, no frame building); "
        "*copy* is the part of that the caller's safety costs. *cold* is the first call "
        "(requests at 0 ms latency).\n\n" + md_table(HEADERS, rows) + "\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 nodes, 100 guests")
    args = parser.parse_args(argv)
    if args.quick:
        print(warm_section(3, 100, 5))
    else:
        print(warm_section(20, 5000, 20))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
