"""RRD history in the simulator outlives reboots: a node, guest or storage series spans the
whole timeframe, and only the time the node was down leaves empty rows (a gap)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

import pvekit
from pvekit.sim import SimClock, Simulator
from pvekit.sim._rrd import TIMEFRAMES, rows_times


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator("demo", clock=SimClock(frozen=True)) as s:
        yield s


def _cluster(sim: Simulator) -> pvekit.Cluster:
    return pvekit.connect(**sim["prod"].connect_kwargs(identity="root"), cache=False)


def _times(m: pd.DataFrame, target: str, metric: str) -> list[pd.Timestamp]:
    rows = m[(m["target"] == target) & (m["metric"].astype("string") == metric)]
    return sorted(rows["time"])


def test_every_node_series_spans_the_month_and_a_maintenance_leaves_a_gap(sim: Simulator) -> None:
    c = _cluster(sim)
    try:
        m = c.metrics("node", timeframe="month", progress=False)
        nodes = c.nodes()
    finally:
        c.close()
    first = pd.Timestamp(rows_times(sim.clock.now(), "month")[0], unit="s", tz="UTC")
    step = pd.Timedelta(seconds=TIMEFRAMES["month"])
    for node in ("pve1", "pve2", "pve3"):
        times = _times(m, node, "memused")
        # booted days or weeks ago, yet the history starts with the timeframe
        assert times[0] == first, node
    assert (nodes["uptime"] < 20 * 86400).any()  # some node rebooted inside the month
    # pve2 was down for a day and a half: missing rows between data, not a late start
    gaps = pd.Series(_times(m, "pve2", "memused")).diff().dropna()
    assert gaps.max() >= 3 * step
    assert (pd.Series(_times(m, "pve1", "memused")).diff().dropna() == step).all()


def test_a_reboot_leaves_null_rows_in_node_guest_and_storage_history(sim: Simulator) -> None:
    prod = sim["prod"]
    guest = next(g for g in prod.state.guests.values() if g.node == "pve3" and g.running)
    sim.clock.advance(1800)
    prod.set_node_online("pve3", False)
    sim.clock.advance(600)
    prod.set_node_online("pve3", True)
    sim.clock.advance(1200)
    c = _cluster(sim)
    try:
        node = c.metrics("node", ["pve3"], timeframe="hour", progress=False)
        storage = c.metrics("storage", ["pve3/local"], timeframe="hour", progress=False)
        g = c.metrics("guest", [guest.vmid], timeframe="hour", progress=False)
    finally:
        c.close()
    first = pd.Timestamp(rows_times(sim.clock.now(), "hour")[0], unit="s", tz="UTC")
    for label, frame, target, metric in (
        ("node", node, "pve3", "memused"),
        ("storage", storage, "pve3/local", "used"),
        ("guest", g, str(guest.vmid), "maxmem"),
    ):
        times = pd.Series(_times(frame, target, metric))
        assert times.iloc[0] == first, label  # history from before the reboot is kept
        gap = times.diff().max()
        # ten minutes down: about ten one-minute rows missing, data on both sides
        assert pd.Timedelta(minutes=9) <= gap <= pd.Timedelta(minutes=12), (label, gap)
