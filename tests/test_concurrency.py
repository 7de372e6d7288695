"""32 threads sharing one Cluster and one Group, reading and acting at the same moment.

Proves: no exception; one login per ticket expiry however many threads meet the refused
ticket together; every action is sent exactly once and its task ends (nothing lost, nothing
duplicated); reads under contention return the same tables as a quiet read.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

import pvekit

if TYPE_CHECKING:
    from pvekit import Cluster
    from pvekit.sim import SimCluster, Simulator

THREADS = 32
TICKET_LIFETIME = 2 * 3600


@pytest.fixture
def sim() -> Iterator[Simulator]:
    from pvekit.sim import Simulator

    with Simulator("demo", task_duration=0.05) as s:
        yield s


def _connect(sim: Simulator, name: str) -> Cluster:
    kw = dict(sim[name].connect_kwargs(identity="root"))
    kw.pop("profile", None)
    return pvekit.connect(name, cache="memory", retries=2, backoff=0.01, **kw)


def _logins(c: SimCluster) -> int:
    return sum(1 for r in c.requests if r.method == "POST" and r.path == "/access/ticket")


def _run(workers: list[Callable[[], Any]]) -> list[BaseException]:
    """Start every worker at the same instant; return what they raised."""
    barrier = threading.Barrier(len(workers))
    failures: list[BaseException] = []
    lock = threading.Lock()

    def body(fn: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            fn()
        except BaseException as err:  # collected: a thread's exception must fail the test
            with lock:
                failures.append(err)

    threads = [threading.Thread(target=body, args=(w,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    return failures


def _targets(sim: Simulator) -> list[tuple[str, int, str]]:
    """THREADS distinct (profile, vmid, action) pairs: start the stopped VMs and containers,
    snapshot the running ones."""
    out: list[tuple[str, int, str]] = []
    for name in ("prod", "lab"):
        st = sim[name].state
        for g in sorted(st.guests.values(), key=lambda g: g.vmid):
            if g.template or g.lock or not st.nodes[g.node].online:
                continue
            if g.status == "stopped":
                out.append((name, g.vmid, "start"))
            elif g.status == "running" and g.type == "qemu":
                out.append((name, g.vmid, "snapshot"))
    starts = [t for t in out if t[2] == "start"]
    snaps = [t for t in out if t[2] == "snapshot"]
    picked = (starts + snaps)[:THREADS]
    assert len(picked) == THREADS, f"only {len(picked)} usable guests"
    return picked


def test_32_threads_share_a_cluster_and_a_group(sim: Simulator) -> None:
    prod = _connect(sim, "prod")
    lab = _connect(sim, "lab")
    group = pvekit.Group([prod, lab])
    try:
        quiet = group.guests()
        quiet_nodes = group.nodes(progress=False)
        targets = _targets(sim)
        logins = {n: _logins(sim[n]) for n in ("prod", "lab")}
        assert logins == {"prod": 1, "lab": 1}

        # Every ticket lapses: the next request of every thread meets a 401 at once.
        sim.clock.advance(TICKET_LIFETIME + 60)
        tasks: dict[tuple[str, int], Any] = {}
        tables: list[Any] = []
        guard = threading.Lock()

        def worker(profile: str, vmid: int, action: str, i: int) -> Callable[[], None]:
            def run() -> None:
                # Mixed reads through both the shared Cluster and the shared Group ...
                if i % 3 == 0:
                    df = group.guests(fresh=True)
                elif i % 3 == 1:
                    df = prod.guests(details=True, progress=False)
                else:
                    df = group.nodes(progress=False)
                guest = group.guest(vmid, profile=profile)
                # ... and one action each, on its own guest.
                task = guest.start() if action == "start" else guest.snapshot(f"conc{i}")
                status = task.wait(timeout=30, poll=0.05, progress=False)
                assert status.ok, status
                with guard:
                    tasks[(profile, vmid)] = task
                    tables.append(df)

            return run

        failures = _run([worker(p, v, a, i) for i, (p, v, a) in enumerate(targets)])
        assert failures == [], failures[:3]

        # One login per cluster for this expiry, whatever the number of threads.
        assert _logins(sim["prod"]) == logins["prod"] + 1
        assert _logins(sim["lab"]) == logins["lab"] + 1

        # Every action was sent exactly once and its task exists exactly once.
        assert len(tasks) == THREADS
        assert len({t.upid for t in tasks.values()}) == THREADS
        for name in ("prod", "lab"):
            posts = Counter(
                r.path
                for r in sim[name].requests
                if r.method == "POST" and r.status == 200 and r.path != "/access/ticket"
            )
            mine = [(p, v, a) for p, v, a in targets if p == name]
            assert sum(posts.values()) == len(mine), posts
            assert all(n == 1 for n in posts.values()), posts
        for (profile, vmid), task in tasks.items():
            assert task.vmid == vmid and task.profile == profile
        for profile, vmid, action in targets:
            g = sim[profile].state.guests[vmid]
            if action == "start":
                assert g.status == "running", (profile, vmid)
            else:
                assert any(s.name.startswith("conc") for s in g.snapshots), (profile, vmid)

        # Tables read under contention match a quiet read (same guests, same nodes).
        for df in tables:
            if "vmid" in df:
                keys = set(zip(df["profile"], df["vmid"], strict=True))
                if len(set(df["profile"])) == 2:
                    assert keys == set(zip(quiet["profile"], quiet["vmid"], strict=True))
            else:
                assert sorted(df["node"]) == sorted(quiet_nodes["node"])

        # A second expiry: again exactly one login per cluster.
        sim.clock.advance(TICKET_LIFETIME + 60)
        failures = _run([lambda: group.guests(fresh=True) for _ in range(THREADS)])
        assert failures == []
        assert _logins(sim["prod"]) == logins["prod"] + 2
        assert _logins(sim["lab"]) == logins["lab"] + 2
    finally:
        group.close()


def test_concurrent_first_use_logs_in_once(sim: Simulator) -> None:
    """A lazily connected client used by 32 threads at once logs in a single time."""
    kw = dict(sim["prod"].connect_kwargs(identity="root"))
    kw.pop("profile", None)
    cluster = pvekit.connect("prod", cache="memory", check=False, **kw)
    try:
        failures = _run([lambda: cluster.guests() for _ in range(THREADS)])
        assert failures == []
        assert _logins(sim["prod"]) == 1
        resources = [r for r in sim["prod"].requests if r.path == "/cluster/resources"]
        # The cache fills once; threads that raced the first answer may have asked too,
        # but never more than there were threads.
        assert 1 <= len(resources) <= THREADS
    finally:
        cluster.close()
