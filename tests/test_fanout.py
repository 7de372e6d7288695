"""A cluster's fan-out (pvekit/_fanout.py): one executor per cluster, reused across calls,
closed by close(), with as many requests in flight as the server's answers make worth it.

In-flight counts are observed at the simulator (requests being handled at once), never
timings.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _inflight import InFlight

import pvekit
from pvekit._fanout import FanOut
from pvekit.sim import Simulator


@pytest.fixture
def inproc() -> Iterator[Simulator]:
    with Simulator("demo", inprocess=True) as s:
        yield s


def _connect(sim: Simulator) -> pvekit.Cluster:
    return pvekit.connect(**sim["prod"].connect_kwargs(identity="token"), cache="memory")


def _guests(sim: Simulator) -> int:
    st = sim["prod"].state
    return sum(1 for g in st.guests.values() if st.nodes[g.node].online)


def test_fast_answers_stay_sequential_without_threads(inproc: Simulator) -> None:
    probe = InFlight(inproc["prod"])
    cluster = _connect(inproc)
    try:
        df = cluster.guests(details=True, progress=False)
        assert probe.handled == _guests(inproc) >= 5
        assert probe.peak == 1  # the server answers at once: threads would not help
        assert cluster._fan_pool().threads_started == 0
        assert df["error"].isna().all()
    finally:
        cluster.close()


def test_slow_answers_get_concurrency_and_the_executor_is_reused(inproc: Simulator) -> None:
    probe = InFlight(inproc["prod"], delay=0.05)
    cluster = _connect(inproc)
    try:
        cluster.guests(details=True, progress=False)
        assert probe.peak >= 3  # waiting on the server: several requests in flight
        assert probe.peak <= cluster.max_workers
        pool = cluster._fan_pool()
        started = pool.threads_started
        assert 1 <= started <= cluster.max_workers
        probe.peak = 0
        cluster.guests(details=True, progress=False, fresh=True)
        assert probe.peak >= 3
        assert cluster._fan_pool() is pool  # one executor per cluster, not one per call
        assert pool.threads_started == started  # its threads served the second call too
        assert pool.threads >= 1
    finally:
        cluster.close()
    assert pool.threads == 0  # close() stopped them
    assert cluster._fan_pool() is pool


def test_concurrency_never_passes_max_workers(inproc: Simulator) -> None:
    probe = InFlight(inproc["prod"], delay=0.05)
    cluster = _connect(inproc)
    cluster.max_workers = 2
    try:
        cluster.guests(details=True, progress=False)
        assert probe.peak == 2
    finally:
        cluster.close()


def test_fan_out_after_close_starts_no_thread() -> None:
    fan = FanOut("t")
    fan._wall, fan._cpu = 1.0, 0.001  # as if the server were slow: many in flight wanted
    assert fan.run(lambda x: x * 2, [1, 2, 3], limit=4) == [2, 4, 6]
    assert fan.threads_started >= 1
    fan.close()
    before = fan.threads_started
    assert fan.run(lambda x: x + 1, [1, 2, 3], limit=4) == [2, 3, 4]
    assert fan.threads_started == before and fan.threads == 0


def test_an_exception_propagates_after_running_items_finish() -> None:
    fan = FanOut("t")
    fan._wall, fan._cpu = 1.0, 0.001
    seen: list[int] = []

    def fn(x: int) -> int:
        seen.append(x)
        if x == 2:
            raise KeyError(x)
        return x

    with pytest.raises(KeyError):
        fan.run(fn, list(range(10)), limit=3)
    assert fan.in_flight == 0
    fan.close()


def test_nested_fan_out_inside_a_worker_does_not_deadlock() -> None:
    fan = FanOut("t")
    fan._wall, fan._cpu = 1.0, 0.001

    def outer(x: int) -> list[int]:
        return fan.run(lambda y: x * 10 + y, [0, 1, 2], limit=2)

    assert fan.run(outer, [1, 2, 3], limit=2) == [[10, 11, 12], [20, 21, 22], [30, 31, 32]]
    fan.close()


def test_a_group_shares_its_requests_in_flight_among_its_clusters(
    inproc: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pvekit._group as group_module

    monkeypatch.setattr(group_module, "GROUP_IN_FLIGHT", 4)
    probes = {name: InFlight(inproc[name], delay=0.05) for name in ("prod", "lab")}
    clusters = [
        pvekit.connect(**inproc[name].connect_kwargs(identity="token"), cache="memory")
        for name in ("prod", "lab")
    ]
    group = pvekit.Group(clusters)
    try:
        group.guests(details=True, progress=False)
        for name, probe in probes.items():
            assert probe.handled > 4, name
            assert probe.peak == 2, name  # 4 in flight over 2 clusters
        pools = [c._fan_pool() for c in clusters]
        assert all(p.threads_started <= 2 for p in pools)
    finally:
        group.close()
    assert all(p.threads == 0 for p in pools)  # Group.close() closed each cluster's pool
