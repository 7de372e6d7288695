"""The planners' fast paths give exactly the answers of the slow ones they replaced.

- ``max_count_n_plus_1``: the N+1 test of each count used to rebuild the frames and call
  :func:`pvekit.capacity.headroom`; now :class:`pvekit.planning._n1.N1Model` answers it. Here
  the old frame-based test is the reference, at every count, on hand-built clusters.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from test_planning import EXACT, GIB, frames, guest, nodes

from pvekit import InvalidInputError, capacity, planning
from pvekit.planning import PlanningInput, Policy
from pvekit.planning._n1 import N1Model


def _headroom_fits(
    inp: PlanningInput, profile: str, placed: list[str], spec: dict[str, Any], ratio: float
) -> bool:
    """The N+1 test as it was: new running guests added to the frames, capacity.headroom."""
    n = inp.nodes[inp.nodes["profile"].astype(str) == profile].copy()
    cols = ["profile", "vmid", "node", "status", "template", "cores", "mem_total", "mem_used"]
    g = inp.guests if len(inp.guests) else pd.DataFrame(columns=cols)
    g = g[g["profile"].astype(str) == profile]
    if placed:
        add: dict[str, float] = {}
        for node in placed:
            add[node] = add.get(node, 0.0) + float(spec["memory"])
        n["mem_used"] = [
            float(u) + add.get(str(x), 0.0)
            for u, x in zip(pd.to_numeric(n["mem_used"]).fillna(0), n["node"], strict=True)
        ]
        rows = [
            {
                "profile": profile,
                "vmid": 10_000_000 + i,
                "node": node,
                "status": "running",
                "template": False,
                "cores": int(spec["cores"]),
                "mem_total": int(spec["memory"]),
                "mem_used": int(spec["memory"]),
            }
            for i, node in enumerate(placed)
        ]
        g = pd.concat([g, pd.DataFrame(rows)], ignore_index=True)
    h = capacity.headroom(n, g, max_vcpu_ratio=ratio)
    return bool(h["fits"].astype("boolean").fillna(True).all())


def _binary(ok: Any, upper: int) -> int:
    """The count search max_count runs (more guests never help N+1)."""
    if not ok(0):
        return 0
    lo, hi = 0, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


def _check_one(
    inp: PlanningInput, profile: str, s: Any, maxc: int, where: list[str], policy: Policy
) -> int:
    model = N1Model.build(inp.nodes, inp.guests, profile, max_vcpu_ratio=policy.vcpu_ratio)
    slow_at: dict[int, bool] = {}

    def slow(k: int) -> bool:
        if k not in slow_at:
            slow_at[k] = _headroom_fits(inp, profile, where[:k], s, policy.vcpu_ratio)
        return slow_at[k]

    def fast(k: int) -> bool:
        return model.fits((n, float(s["memory"]), float(s["cores"])) for n in where[:k])

    expected = _binary(slow, maxc)
    # every count the search visits, the answer and the one after it, and a spread of others
    ks = {*slow_at, expected, min(expected + 1, maxc), *range(0, maxc + 1, max(1, maxc // 12))}
    assert {k: fast(k) for k in ks} == {k: slow(k) for k in ks}
    return expected


def _check(inp: PlanningInput, spec: dict[str, Any], policy: Policy) -> list[int]:
    """Fast and slow N+1 agree at the counts tried, and max_count reports the slow answer."""
    shape = planning.guest_spec(**spec)
    summary = planning.max_count(inp, shape, policy=policy)
    out = []
    for row in summary.to_dict("records"):
        profile, maxc = str(row["profile"]), int(row["max_count"])
        # where 1..maxc guests go: the placements of asking for exactly that many
        w = planning.what_if(inp, shape.assign(count=max(maxc, 1)), profile=profile, policy=policy)
        where = [str(n) for n in w.placements["node"]][:maxc]
        assert len(where) == maxc
        expected = _check_one(inp, profile, shape.iloc[0], maxc, where, policy)
        assert int(row["max_count_n_plus_1"]) == expected
        out.append(expected)
    return out


def test_even_cluster_memory_bound() -> None:
    inp = frames(
        nodes(("a", 32, 128), ("b", 32, 128), ("c", 32, 128)),
        [guest(100, "a", 30), guest(101, "b", 10), guest(102, "c", 50), guest(103, "a", 8)],
    )
    (n1,) = _check(inp, {"cores": 2, "memory": "8G"}, EXACT)
    assert (
        0
        < n1
        < int(
            planning.max_count(inp, {"cores": 2, "memory": "8G"}, policy=EXACT)["max_count"].iloc[0]
        )
    )


def test_uneven_nodes_fragmentation() -> None:
    # a big node whose guests cannot land on one small survivor: greedy placement decides
    inp = frames(
        nodes(("big", 64, 512), ("s1", 16, 64), ("s2", 16, 64)),
        [guest(100, "big", 40), guest(101, "big", 40), guest(102, "s1", 20)],
    )
    _check(inp, {"cores": 1, "memory": "6G"}, EXACT)
    _check(inp, {"cores": 4, "memory": "30G"}, EXACT)


def test_vcpu_bound_and_wide_guests() -> None:
    inp = frames(
        nodes(("a", 8, 1000), ("b", 8, 1000), ("c", 16, 1000)),
        [guest(100, "a", 4, cores=12), guest(101, "c", 4, cores=16)],
    )
    _check(
        inp,
        {"cores": 4, "memory": "2G"},
        Policy(mem_limit=1.0, mem_reserve=0, memory="allocated", vcpu_ratio=2.0),
    )
    _check(inp, {"cores": 2, "memory": "1G"}, EXACT)


def test_overcommitted_node_without_guests_fails_n_plus_1() -> None:
    # headroom fails a node with no guests when the others are beyond the vCPU ratio
    inp = frames(nodes(("a", 2, 100), ("b", 2, 100)), [guest(100, "a", 1, cores=9)])
    assert _check(inp, {"cores": 1, "memory": "1G"}, EXACT) == [0]


def test_single_node_offline_node_and_default_policy() -> None:
    one = frames(nodes(("solo", 32, 128)), [guest(100, "solo", 8)])
    assert _check(one, {"cores": 2, "memory": "4G"}, EXACT) == [0]
    n = nodes(("a", 32, 128), ("b", 32, 128), ("c", 32, 128), ("d", 32, 128))
    n.loc[n["node"] == "d", "online"] = False
    n["mem_used"] = [20 * GIB, float("nan"), 5 * GIB, 0]  # one node does not say
    inp = frames(n, [guest(100, "a", 16), guest(101, "b", 24), guest(102, "d", 64)])
    _check(inp, {"cores": 2, "memory": "4G"}, Policy())
    _check(inp, {"cores": 8, "memory": "16G"}, EXACT)


def test_two_clusters_and_no_guests() -> None:
    n = pd.concat(
        [nodes(("a", 16, 64), ("b", 16, 96)), nodes(("x", 8, 32), ("y", 8, 32), profile="q")],
        ignore_index=True,
    )
    inp = frames(n, [guest(100, "a", 20), guest(200, "x", 12, profile="q")])
    assert len(_check(inp, {"cores": 2, "memory": "4G"}, EXACT)) == 2
    empty = frames(nodes(("a", 64, 100), ("b", 64, 100)), [])
    assert _check(empty, {"cores": 1, "memory": "10G"}, EXACT) == [10]


@pytest.fixture(scope="module")
def demo_input() -> PlanningInput:
    import pvekit

    return PlanningInput.read(pvekit.demo(), history=True)


def test_demo_clusters(demo_input: PlanningInput) -> None:
    _check(demo_input, {"cores": 2, "memory": "4G", "disk": "32G"}, Policy())
    _check(demo_input, {"cores": 16, "memory": "64G"}, Policy())


# -- reclaimable and time remaining reuse the report's analysis ------------------------------


def test_reclaimable_disk_without_volume() -> None:
    # a disk entry whose volume id is unknown (no "volume" key) used to raise KeyError
    g = [
        guest(104, "a", 4, status="stopped", disks=[{"key": "scsi0", "storage": "ceph"}]),
        guest(105, "a", 4, disks=[{"key": "scsi0", "storage": "ceph", "size": 8 * GIB}]),
    ]
    volumes = pd.DataFrame(
        {
            "profile": "p",
            "node": None,
            "storage": ["ceph", "ceph", "local"],
            "volid": ["ceph:vm-104-disk-0", "ceph:vm-777-disk-0", "local:vm-105-disk-9"],
            "vmid": [104, 777, 105],
            "size": [5 * GIB, 7 * GIB, 1 * GIB],
        }
    )
    inp = frames(nodes(("a", 64, 100)), g, volumes=volumes)
    r = planning.reclaimable(inp)
    orphans = r[r["kind"] == "orphaned disk"]
    # 104's and 105's ceph volumes may be the unnamed disks; 777 has no guest, and 105's disk
    # on "local" is not on the storage its config names
    assert sorted(orphans["volid"]) == ["ceph:vm-777-disk-0", "local:vm-105-disk-9"]
    stopped = r[r["kind"] == "long stopped"]
    assert stopped["vmid"].tolist() == [104]


@pytest.fixture(scope="module")
def demo_report() -> Any:
    import pvekit
    from pvekit import report

    return report.capacity(pvekit.demo(), "month")


def test_reclaimable_with_the_reports_rightsizing(demo_report: Any) -> None:
    inp = demo_report.planning.input
    rs = demo_report.analysis.rightsizing
    assert rs["category"].isin(["cpu oversized", "memory oversized"]).any()
    slow = planning.reclaimable(inp)
    fast = planning.reclaimable(inp, rightsizing=rs)
    pd.testing.assert_frame_equal(fast, slow)
    assert slow["kind"].isin(["oversized cpu", "oversized memory"]).any()
    pd.testing.assert_frame_equal(demo_report.planning.reclaimable, slow)
    # the precomputed frame is what is used: without its rows, no oversized kinds
    none = planning.reclaimable(inp, rightsizing=rs.iloc[0:0])
    assert not none["kind"].isin(["oversized cpu", "oversized memory"]).any()
    with pytest.raises(InvalidInputError, match="rightsizing"):
        planning.reclaimable(inp, rightsizing=rs.drop(columns=["category"]))


def test_time_remaining_with_the_reports_forecast(demo_report: Any) -> None:
    inp = demo_report.planning.input
    fc = demo_report.analysis.forecast
    slow = planning.time_remaining(inp)
    fast = planning.time_remaining(inp, forecast=fc)
    assert slow["resource"].str.startswith("storage").any()
    pd.testing.assert_frame_equal(fast, slow)
    pd.testing.assert_frame_equal(demo_report.planning.time_remaining, slow)
    with pytest.raises(InvalidInputError, match="forecast"):
        planning.time_remaining(inp, forecast=fc.drop(columns=["eta"]))


# -- one readiness implementation -------------------------------------------------------------


def test_readiness_offline_nodes_grouped_reasons_and_memory_moved() -> None:
    from pvekit import report

    n = nodes(("a", 64, 64), ("b", 64, 64), ("c", 64, 64))
    n.loc[n["node"] == "c", "online"] = False
    g = [guest(100, "a", 8), guest(101, "a", 4)]
    g += [guest(v, "b", 1, local_resources=["usb0"]) for v in (110, 111, 112, 113)]
    g += [guest(120, "c", 2)]
    inp = frames(n, g)
    r = planning.readiness(inp, policy=EXACT)
    assert r["node"].tolist() == ["a", "b"]  # online nodes only by default
    full = planning.readiness(inp, policy=EXACT, offline=True).set_index("node")
    assert full.loc["a", "memory_moved"] == 12 * GIB and full.loc["a", "can_empty"]
    assert (full.loc["a", "guests"], full.loc["a", "running"]) == (2, 2)
    # four guests with one reason: one clause, three names and a count
    why = "uses local device(s) usb0: Proxmox cannot migrate it"
    assert full.loc["b", "reason"] == f"g110 (110), g111 (111), g112 (112) and 1 more: {why}"
    assert full.loc["b", "blocking"] == 4 and not full.loc["b", "can_empty"]
    assert not full.loc["c", "can_empty"] and full.loc["c", "reason"].startswith("node is offline")
    rep = report.maintenance_readiness(inp, policy=EXACT)
    assert list(rep.columns) == list(report.MAINTENANCE_COLUMNS)
    assert rep["can_evacuate"].tolist() == full["can_empty"].tolist()
    assert rep["reason"].tolist() == full["reason"].tolist()
    assert rep["memory_moved"].tolist() == full["memory_moved"].tolist()


def test_report_uses_no_private_planning_module() -> None:
    import inspect

    from pvekit import report

    assert "planning._" not in inspect.getsource(report)
    assert planning.PlanningInput.of({"nodes": nodes(("a", 1, 1)), "guests": pd.DataFrame()})
