"""pvekit.capacity on small hand-built frames with answers worked out by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pvekit import InvalidInputError, capacity

GIB = 1024**3
UTC = "UTC"
NOW = pd.Timestamp("2026-11-29 12:00", tz=UTC)


# ---------------------------------------------------------------------------- frame builders


def make_nodes(rows: list[dict[str, Any]]) -> pd.DataFrame:
    base = {
        "profile": "prod",
        "status": "online",
        "online": True,
        "cpu": 0.0,
        "cores": 8,
        "mem_used": 0,
        "mem_total": 64 * GIB,
        "disk_used": 0,
        "disk_total": 100 * GIB,
    }
    df = pd.DataFrame([{**base, **r} for r in rows])
    for c in ("cores", "mem_used", "mem_total", "disk_used", "disk_total"):
        df[c] = df[c].astype("Int64")
    df["online"] = df["online"].astype("boolean")
    df["status"] = df["status"].astype("category")
    return df


def make_guests(rows: list[dict[str, Any]]) -> pd.DataFrame:
    base = {
        "profile": "prod",
        "name": "",
        "type": "qemu",
        "status": "running",
        "template": False,
        "tags": [],
        "pool": None,
        "ha_state": None,
        "lock": None,
        "cpu": 0.5,
        "cores": 2,
        "mem_used": GIB,
        "mem_total": 4 * GIB,
        "disk_used": 0,
        "disk_total": 32 * GIB,
    }
    df = pd.DataFrame([{**base, **r} for r in rows])
    for c in ("vmid", "cores", "mem_used", "mem_total", "disk_used", "disk_total"):
        df[c] = df[c].astype("Int64")
    df["template"] = df["template"].astype("boolean")
    df["status"] = df["status"].astype("category")
    if not df["name"].astype(bool).any():
        df["name"] = [f"vm{v}" for v in df["vmid"]]
    return df


def make_storage(rows: list[dict[str, Any]]) -> pd.DataFrame:
    base = {
        "profile": "prod",
        "type": "dir",
        "content": ["images"],
        "shared": False,
        "status": "available",
        "active": True,
        "enabled": True,
    }
    df = pd.DataFrame([{**base, **r} for r in rows])
    for c in ("used", "total"):
        df[c] = df[c].astype("Int64")
    df["avail"] = (df["total"] - df["used"]).astype("Int64")
    df["used_fraction"] = df["used"].astype("float64") / df["total"].astype("float64")
    for c in ("shared", "active", "enabled"):
        df[c] = df[c].astype("boolean")
    return df


@pytest.fixture
def nodes() -> pd.DataFrame:
    return make_nodes(
        [
            {"node": "pve1", "cpu": 0.5, "mem_used": 16 * GIB, "mem_total": 64 * GIB},
            {"node": "pve2", "cpu": 0.25, "mem_used": 8 * GIB, "mem_total": 32 * GIB},
            # an offline node: Proxmox leaves its sizes out
            {
                "node": "pve3",
                "status": "offline",
                "online": False,
                "cpu": None,
                "cores": None,
                "mem_used": None,
                "mem_total": None,
            },
            {
                "profile": "lab",
                "node": "lab1",
                "cores": 4,
                "cpu": 0.1,
                "mem_used": 4 * GIB,
                "mem_total": 16 * GIB,
            },
        ]
    )


@pytest.fixture
def guests() -> pd.DataFrame:
    return make_guests(
        [
            {"vmid": 100, "node": "pve1", "cores": 4, "mem_total": 8 * GIB},
            {"vmid": 101, "node": "pve1", "cores": 2, "mem_total": 4 * GIB},
            {"vmid": 102, "node": "pve2", "cores": 2, "mem_total": 16 * GIB},
            {
                "vmid": 103,
                "node": "pve2",
                "status": "stopped",
                "cores": 4,
                "mem_total": 8 * GIB,
                "cpu": 0.0,
                "mem_used": 0,
            },
            {
                "vmid": 104,
                "node": "pve1",
                "status": "stopped",
                "template": True,
                "cores": 2,
                "mem_total": 2 * GIB,
                "disk_total": 10 * GIB,
                "cpu": 0.0,
                "mem_used": 0,
            },
            {"vmid": 105, "node": "pve3", "status": "unknown", "cores": 1, "mem_total": 1 * GIB},
            {"profile": "lab", "vmid": 100, "node": "lab1", "cores": 2, "mem_total": 2 * GIB},
        ]
    )


@pytest.fixture
def storage() -> pd.DataFrame:
    return make_storage(
        [
            {"node": "pve1", "storage": "local", "used": 10 * GIB, "total": 100 * GIB},
            {"node": "pve2", "storage": "local", "used": 30 * GIB, "total": 100 * GIB},
            # a shared pool, listed once per node as Proxmox does
            {
                "node": "pve1",
                "storage": "ceph",
                "type": "rbd",
                "shared": True,
                "used": 500 * GIB,
                "total": 1000 * GIB,
            },
            {
                "node": "pve2",
                "storage": "ceph",
                "type": "rbd",
                "shared": True,
                "used": 500 * GIB,
                "total": 1000 * GIB,
            },
            {
                "node": "pve3",
                "storage": "ceph",
                "type": "rbd",
                "shared": True,
                "status": "unknown",
                "active": False,
                "used": 0,
                "total": 0,
            },
            {
                "node": "pve3",
                "storage": "local",
                "status": "unknown",
                "active": False,
                "used": 0,
                "total": 0,
            },
            {
                "profile": "lab",
                "node": "lab1",
                "storage": "local",
                "used": 90 * GIB,
                "total": 100 * GIB,
            },
        ]
    )


# ---------------------------------------------------------------------------- usage


def test_node_usage_allocation_and_overcommit(nodes, guests, storage) -> None:
    u = capacity.node_usage(nodes, guests, storage).set_index(["profile", "node"])
    pve1 = u.loc[("prod", "pve1")]
    # running: 100 (4 vCPU, 8 GiB) + 101 (2, 4 GiB); the template does not count
    assert pve1["guests_running"] == 2 and pve1["guests_total"] == 2
    assert pve1["vcpus_running"] == 6 and pve1["vcpus_all"] == 6
    assert pve1["mem_alloc_running"] == 12 * GIB
    assert pve1["cpu_overcommit_running"] == pytest.approx(6 / 8)
    assert pve1["mem_overcommit_running"] == pytest.approx(12 / 64)
    assert pve1["cpu_used"] == pytest.approx(4.0)
    assert pve1["mem_fraction"] == pytest.approx(0.25)
    assert pve1["storage_used"] == 10 * GIB and pve1["storage_total"] == 100 * GIB
    pve2 = u.loc[("prod", "pve2")]
    # the stopped guest counts for "all" but not for "running"
    assert pve2["vcpus_running"] == 2 and pve2["vcpus_all"] == 6
    assert pve2["mem_alloc_all"] == 24 * GIB
    assert pve2["mem_overcommit_all"] == pytest.approx(24 / 32)
    pve3 = u.loc[("prod", "pve3")]
    assert not pve3["online"]
    assert math.isnan(pve3["cpu_overcommit_running"])  # no size known: NaN, not inf
    assert pd.isna(pve3["mem_total"])
    assert pd.isna(pve3["storage_total"])  # its only local pool is unknown: not counted


def test_node_usage_dtypes(nodes, guests) -> None:
    u = capacity.node_usage(nodes, guests)
    assert str(u["mem_alloc_all"].dtype) == "Int64"
    assert u["cpu_overcommit_all"].dtype == "float64"
    assert u["storage_total"].isna().all()  # no storage frame given


def test_cluster_usage_counts_online_capacity_and_shared_once(nodes, guests, storage) -> None:
    c = capacity.cluster_usage(nodes, guests, storage).set_index("profile")
    prod = c.loc["prod"]
    assert prod["nodes_online"] == 2 and prod["nodes_total"] == 3
    assert prod["cores"] == 16  # the offline node adds nothing
    assert prod["mem_total"] == 96 * GIB and prod["mem_used"] == 24 * GIB
    assert prod["cpu"] == pytest.approx((4 + 2) / 16)
    # ceph once (1000) + two locals (100 each); pve3's unknown pools are skipped
    assert prod["storage_total"] == 1200 * GIB
    assert prod["storage_used"] == 540 * GIB
    # running: 100, 101, 102 and 105 (unknown status is not running)
    assert prod["vcpus_running"] == 8 and prod["guests_running"] == 3
    assert prod["vcpus_all"] == 4 + 2 + 2 + 4 + 1
    assert prod["cpu_overcommit_all"] == pytest.approx(13 / 16)
    lab = c.loc["lab"]
    assert lab["nodes_total"] == 1 and lab["storage_fraction"] == pytest.approx(0.9)


def test_group_usage_sums_and_recomputes_ratios(nodes, guests, storage) -> None:
    c = capacity.cluster_usage(nodes, guests, storage)
    g = capacity.group_usage(c)
    assert len(g) == 1 and g.loc[0, "profile"] == "(all)"
    assert g.loc[0, "cores"] == 20
    assert g.loc[0, "mem_total"] == 112 * GIB
    assert g.loc[0, "storage_total"] == 1300 * GIB
    assert g.loc[0, "mem_fraction"] == pytest.approx(28 / 112)
    assert g.loc[0, "cpu_overcommit_running"] == pytest.approx(10 / 20)


def test_storage_pools_shared_once_and_thin_provisioning(storage) -> None:
    guests = make_guests(
        [
            {
                "vmid": 100,
                "node": "pve1",
                "disks": [
                    {"key": "scsi0", "storage": "ceph", "size": 600 * GIB},
                    {"key": "scsi1", "storage": "local", "size": 50 * GIB},
                    {"key": "ide2", "storage": "local", "size": None},  # a CD-ROM
                ],
            },
            {
                "vmid": 101,
                "node": "pve2",
                "disks": [
                    {"key": "scsi0", "storage": "ceph", "size": 600 * GIB},
                ],
            },
        ]
    )
    p = capacity.storage_pools(storage, guests).set_index("pool")
    assert list(p.index).count("prod/ceph") == 1
    ceph = p.loc["prod/ceph"]
    assert ceph["nodes"] == 3 and ceph["counted"] and pd.isna(ceph["node"])
    assert ceph["total"] == 1000 * GIB  # the active view, not pve3's empty one
    assert ceph["provisioned"] == 1200 * GIB and ceph["guest_disks"] == 2
    assert ceph["provisioned_ratio"] == pytest.approx(1.2)
    assert p.loc["prod/pve1/local", "provisioned"] == 50 * GIB
    assert p.loc["prod/pve2/local", "provisioned"] == 0
    assert not p.loc["prod/pve3/local", "counted"]
    no_details = capacity.storage_pools(storage)
    assert no_details["provisioned"].isna().all()


# ---------------------------------------------------------------------------- headroom


def test_headroom_n_plus_one(nodes, guests) -> None:
    h = capacity.headroom(nodes, guests).set_index(["profile", "node"])
    pve1 = h.loc[("prod", "pve1")]
    # pve1 runs 12 GiB; pve2 has 32-8 = 24 GiB free; the offline pve3 is no survivor
    assert pve1["mem_needed"] == 12 * GIB
    assert pve1["mem_free_elsewhere"] == 24 * GIB
    assert pve1["mem_headroom"] == 12 * GIB
    assert pve1["fits"]
    pve2 = h.loc[("prod", "pve2")]
    assert pve2["mem_needed"] == 16 * GIB and pve2["mem_free_elsewhere"] == 48 * GIB
    assert pve2["fits"]
    # the weakest link is the failure leaving the least memory: pve1
    assert pve1["weakest"] and not pve2["weakest"]
    assert pd.isna(h.loc[("prod", "pve3"), "fits"])  # already down: not evaluated
    lab = h.loc[("lab", "lab1")]
    # one node: nowhere to fail over to
    assert not lab["fits"] and lab["mem_free_elsewhere"] == 0 and lab["weakest"]
    weakest = capacity.weakest_link(h.reset_index())
    assert set(zip(weakest["profile"], weakest["node"], strict=True)) == {
        ("prod", "pve1"),
        ("lab", "lab1"),
    }


def test_headroom_catches_fragmentation_and_vcpus() -> None:
    nodes = make_nodes(
        [
            {"node": "a", "cores": 16, "mem_used": 0, "mem_total": 64 * GIB},
            {"node": "b", "cores": 4, "mem_used": 20 * GIB, "mem_total": 32 * GIB},
            {"node": "c", "cores": 4, "mem_used": 20 * GIB, "mem_total": 32 * GIB},
        ]
    )
    guests = make_guests(
        [
            # 16 GiB fits in the sum of free memory on b+c (24 GiB) but on neither alone (12)
            {"vmid": 1, "node": "a", "cores": 8, "mem_total": 16 * GIB},
        ]
    )
    h = capacity.headroom(nodes, guests, max_vcpu_ratio=4).set_index("node")
    a = h.loc["a"]
    assert a["mem_free_elsewhere"] == 24 * GIB and a["unplaced"] == 1
    assert not a["mem_fits"]
    # 8 vCPUs > the 4 cores of the biggest survivor
    assert a["largest_node_cores_elsewhere"] == 4 and not a["vcpus_fit"]
    assert not a["fits"] and a["weakest"]
    with pytest.raises(InvalidInputError, match="max_vcpu_ratio"):
        capacity.headroom(nodes, guests, max_vcpu_ratio=0)


# ---------------------------------------------------------------------------- forecasts


def metrics_frame(
    series: dict[str, tuple[str, str, list[float | None], list[float | None]]], days: int = 30
) -> pd.DataFrame:
    """series: target -> (kind, node, used values, total values), one sample a day."""
    rows = []
    for target, (kind, node, used, total) in series.items():
        used_name, total_name = ("used", "total") if kind == "storage" else ("memused", "memtotal")
        for i, (u, t) in enumerate(zip(used, total, strict=True)):
            time = NOW - pd.Timedelta(days=len(used) - 1 - i)
            for metric, value in ((used_name, u), (total_name, t)):
                rows.append(
                    dict(
                        profile="prod",
                        kind=kind,
                        target=target,
                        node=node,
                        time=time,
                        metric=metric,
                        value=value,
                    )
                )
    df = pd.DataFrame(rows)
    df["value"] = df["value"].astype("float64")
    return df


def test_forecast_linear_growth_with_outlier_and_missing_rows() -> None:
    # 50 % full growing 1 %/day: reaches 90 % in 40 days; an outlier and two missing newest
    # rows (RRD leaves them empty) do not move a Theil-Sen fit
    used = [50 + (i - 29) for i in range(30)]
    used[10] = 99.0
    total: list[float | None] = [100.0] * 30
    used_m: list[float | None] = list(map(float, used))
    used_m += [None, None]
    total += [100.0, None]
    m = metrics_frame({"pve1/local": ("storage", "pve1", used_m, total)})
    f = capacity.forecast(m, threshold=0.9)
    assert len(f) == 1
    r = f.iloc[0]
    assert r["status"] == "growing" and r["resource"] == "storage"
    assert r["points"] == 30
    assert r["slope_per_day"] == pytest.approx(0.01, rel=1e-6)
    assert r["current"] == pytest.approx(0.50, abs=1e-9)
    assert r["days_until"] == pytest.approx(40, rel=1e-6)
    assert r["days_low"] <= r["days_until"] <= r["days_high"]
    assert r["eta"] == r["last_time"] + pd.Timedelta(days=40)


def test_forecast_not_growing_above_and_insufficient() -> None:
    rng = np.random.default_rng(0)
    flat = list(0.4 + rng.normal(0, 0.01, 30))
    m = metrics_frame(
        {
            "pve1": ("node", "pve1", [v * 64 for v in flat], [64.0] * 30),
            "pve2/local": ("storage", "pve2", [95.0] * 30, [100.0] * 30),
            "pve2/tiny": ("storage", "pve2", [1.0, 2.0, 3.0], [100.0] * 3),
            # an inactive pool: every sample empty
            "pve2/gone": ("storage", "pve2", [None] * 5, [None] * 5),
            "pve2/down": ("storage", "pve2", [10.0 - i * 0.1 for i in range(30)], [100.0] * 30),
        }
    )
    f = capacity.forecast(m).set_index("target")
    assert f.loc["pve1", "status"] == "not growing" and f.loc["pve1", "resource"] == "memory"
    assert pd.isna(f.loc["pve1", "days_until"]) and pd.isna(f.loc["pve1", "eta"])
    assert f.loc["pve2/local", "status"] == "above threshold"
    assert f.loc["pve2/local", "days_until"] == 0
    assert f.loc["pve2/tiny", "status"] == "insufficient data"
    assert f.loc["pve2/gone", "status"] == "insufficient data"
    assert f.loc["pve2/gone", "points"] == 0
    assert f.loc["pve2/down", "status"] == "not growing"
    assert f.loc["pve2/down", "slope_per_day"] == pytest.approx(-0.001)


def test_forecast_shared_pool_once_and_bad_input(storage) -> None:
    series = [float(i) for i in range(30)]
    m = metrics_frame(
        {
            "pve1/ceph": ("storage", "pve1", series, [100.0] * 30),
            "pve2/ceph": ("storage", "pve2", series, [100.0] * 30),
        }
    )
    assert len(capacity.forecast(m)) == 2
    once = capacity.forecast(m, storage=storage)
    assert len(once) == 1
    # one name for the pool, as storage_pools and the findings give it, not a node's view
    pools = capacity.storage_pools(storage)
    assert once["pool"].tolist() == ["prod/ceph"]
    assert "prod/ceph" in set(pools["pool"])
    found = capacity.findings(forecast=once.assign(days_until=5.0))
    assert found["object"].tolist() == ["storage prod/ceph"]
    assert found["message"].str.startswith("storage prod/ceph reaches").all()
    assert capacity.forecast(m)["pool"].tolist() == ["prod/pve1/ceph", "prod/pve2/ceph"]
    with pytest.raises(InvalidInputError, match="threshold"):
        capacity.forecast(m, threshold=90)
    with pytest.raises(InvalidInputError, match="lacks column"):
        capacity.forecast(m.drop(columns="metric"))
    assert capacity.forecast(m.iloc[0:0]).empty


def test_theil_sen_confidence_range_contains_true_slope() -> None:
    rng = np.random.default_rng(1)
    x = np.arange(100, dtype=float)
    y = 3.0 + 0.5 * x + rng.normal(0, 1.0, 100)
    slope, intercept, lo, hi = capacity.theil_sen(x, y)
    assert lo < 0.5 < hi and lo < slope < hi
    assert intercept == pytest.approx(3.0, abs=0.5)
    with pytest.raises(InvalidInputError):
        capacity.theil_sen(np.array([1.0, 1.0]), np.array([1.0, 2.0]))


# ---------------------------------------------------------------------------- right-sizing


def guest_metrics(vmid: int, cpu: list[float], mem: list[float], maxmem: float) -> pd.DataFrame:
    rows = []
    for i, (c, m) in enumerate(zip(cpu, mem, strict=True)):
        t = NOW - pd.Timedelta(hours=len(cpu) - i)
        for metric, value in (("cpu", c), ("mem", m), ("maxmem", maxmem)):
            rows.append(
                dict(
                    profile="prod",
                    kind="guest",
                    target=str(vmid),
                    node="pve1",
                    time=t,
                    metric=metric,
                    value=float(value),
                )
            )
    return pd.DataFrame(rows)


def test_rightsizing_categories() -> None:
    g = make_guests(
        [
            {"vmid": 1, "node": "pve1", "cores": 8, "mem_total": 16 * GIB},  # idle: oversized
            {"vmid": 2, "node": "pve1", "cores": 2, "mem_total": 4 * GIB},  # busy: pinned
            {"vmid": 3, "node": "pve1", "status": "stopped", "disk_total": 50 * GIB, "cpu": 0.0},
            {
                "vmid": 4,
                "node": "pve1",
                "status": "stopped",
                "template": True,
                "disk_total": 8 * GIB,
                "cpu": 0.0,
            },
            # no metrics: judged on current values (cpu 0.95 of 4 cores)
            {
                "vmid": 5,
                "node": "pve1",
                "cores": 4,
                "cpu": 0.95,
                "mem_used": 2 * GIB,
                "mem_total": 4 * GIB,
            },
        ]
    )
    m = pd.concat(
        [
            guest_metrics(1, [0.02] * 20 + [0.1], [1 * GIB] * 21, 16 * GIB),
            guest_metrics(2, [0.97] * 21, [3.9 * GIB] * 21, 4 * GIB),
        ]
    )
    r = capacity.rightsizing(g, m)
    cats = set(zip(r["vmid"].astype(int), r["category"], strict=True))
    assert cats == {
        (1, "cpu oversized"),
        (1, "memory oversized"),
        (2, "cpu pinned"),
        (2, "memory pinned"),
        (3, "stopped with disk"),
        (4, "template"),
        (5, "cpu pinned"),
    }
    one = r[(r.vmid == 1) & (r.category == "cpu oversized")].iloc[0]
    # peak (95th pct) 0.02 of 8 cores = 0.16 cores; at a 70 % target 1 vCPU suffices
    assert one["suggested_cores"] == 1 and one["basis"] == "period"
    mem = r[(r.vmid == 1) & (r.category == "memory oversized")].iloc[0]
    # peak 1/16 of 16 GiB = 1 GiB -> 1/0.7 = 1.43 GiB rounded up to 256 MiB: 1.5 GiB
    assert mem["suggested_mem"] == int(1.5 * GIB)
    five = r[r.vmid == 5].iloc[0]
    assert five["basis"] == "current" and five["message"].endswith("no history to judge by)")
    assert "history" not in one["message"]
    with pytest.raises(InvalidInputError):
        capacity.rightsizing(g, m, low=0.9, high=0.5)


# ---------------------------------------------------------------------------- hygiene


def test_hygiene_backups_snapshots_locks() -> None:
    g = make_guests(
        [
            {"vmid": 1, "node": "pve1"},
            {"vmid": 2, "node": "pve1", "lock": "backup"},
            {"vmid": 3, "node": "pve1"},
            # a template without backup is fine: it is rebuilt, not restored
            {"vmid": 4, "node": "pve1", "status": "stopped", "template": True},
            {"profile": "lab", "vmid": 1, "node": "lab1"},
        ]
    )
    b = pd.DataFrame(
        {
            "profile": ["prod", "prod", "prod", "lab"],
            "vmid": pd.array([1, 1, 2, 1], dtype="Int64"),
            "ctime": [
                NOW - pd.Timedelta(days=20),
                NOW - pd.Timedelta(days=1),
                NOW - pd.Timedelta(days=10),
                NOW - pd.Timedelta(days=2),
            ],
        }
    )
    s = pd.DataFrame(
        {
            "profile": ["prod", "prod", "prod"],
            "node": ["pve1"] * 3,
            "vmid": pd.array([1, 1, 1], dtype="Int64"),
            "name": ["before-upgrade", "yesterday", "current"],
            "snaptime": [NOW - pd.Timedelta(days=40), NOW - pd.Timedelta(days=1), pd.NaT],
        }
    )
    h = capacity.hygiene(g, b, s, backup_days=7, snapshot_days=30, now=NOW)
    got = {(p, int(v), c) for p, v, c in zip(h["profile"], h["vmid"], h["category"], strict=True)}
    # VMIDs repeat across clusters: lab/1 has its own recent backup
    assert got == {
        ("prod", 2, "backup overdue"),
        ("prod", 3, "no backup"),
        ("prod", 1, "old snapshot"),
        ("prod", 2, "locked"),
    }
    overdue = h[h.category == "backup overdue"].iloc[0]
    assert overdue["age_days"] == pytest.approx(10)
    assert "before-upgrade" in h[h.category == "old snapshot"].iloc[0]["message"]


# ---------------------------------------------------------------------------- findings


def test_findings_prioritised(nodes, guests, storage) -> None:
    a = capacity.analyse(
        nodes,
        guests,
        storage,
        now=NOW,
        summary=pd.DataFrame({"profile": ["prod", "lab"], "quorate": [True, False]}),
    )
    f = a.findings
    assert list(f.columns) == [*capacity.FINDING_COLUMNS, "unit", "kind"]
    assert f["severity"].is_monotonic_increasing  # ordered: critical first
    crit = f[f.severity == "critical"]
    objs = set(zip(crit["profile"], crit["category"], crit["object"], strict=True))
    assert ("prod", "node", "node pve3") in objs  # offline
    # a single-node cluster cannot fail over: a warning that says why
    single = f[(f.profile == "lab") & (f.category == "failover")].iloc[0]
    assert single["severity"] == "warning" and "single online node" in single["message"]
    assert ("lab", "storage", "storage lab/lab1/local") in objs  # 90 % full
    assert ("lab", "cluster", "lab") in objs  # quorum lost
    lab_storage = crit[crit.object == "storage lab/lab1/local"].iloc[0]
    assert lab_storage["metric"] == pytest.approx(0.9)
    assert lab_storage["unit"] == "fraction"
    assert set(f[f.category == "failover"]["unit"]) == {"bytes"}
    # the weakest link of a cluster that fits is reported as info
    info = f[(f.severity == "info") & (f.category == "failover")]
    assert list(info["object"]) == ["node pve1"]
    # right-sizing: the template summary and the stopped guest holding disk
    assert ((f.category == "right-sizing") & (f.object == "guest 103")).any()


def _finding(sev: str, profile: str, category: str, kind: str, obj: str, metric: float) -> dict:
    return dict(
        severity=sev,
        profile=profile,
        category=category,
        object=obj,
        message=f"{obj}: {kind}",
        metric=metric,
        unit="bytes" if kind == "stopped with disk" else "days",
        kind=kind,
    )


def test_group_findings_folds_repeats_per_cluster_and_kind() -> None:
    rows = [
        *[
            _finding("warning", "prod", "hygiene", "no backup", f"guest {v}", 0.0)
            for v in (1, 2, 3)
        ],
        _finding("warning", "lab", "hygiene", "no backup", "guest 7", 0.0),  # other cluster
        _finding("warning", "prod", "hygiene", "locked", "guest 4", 2.0),
        *[
            _finding("info", "prod", "right-sizing", "stopped with disk", f"guest {v}", 10.0 * v)
            for v in (5, 6)
        ],
        _finding("critical", "prod", "node", "node offline", "node pve3", float("nan")),
    ]
    f = pd.DataFrame(rows)
    f["severity"] = pd.Categorical(f["severity"], categories=capacity.SEVERITIES, ordered=True)
    g = capacity.group_findings(f)
    assert g["count"].sum() == len(f)
    # critical first; then the warnings that stand alone; the folded row after them
    assert g["severity"].tolist() == ["critical", "warning", "warning", "warning", "info"]
    assert g["count"].tolist() == [1, 1, 1, 3, 2]
    assert g.iloc[0]["object"] == "node pve3"
    folded = g.iloc[3]
    assert (folded["profile"], folded["kind"], folded["object"]) == (
        "prod",
        "no backup",
        "3 guests",
    )
    assert folded["message"] == "3 guests have no backup"
    assert folded["items"]["object"].tolist() == ["guest 1", "guest 2", "guest 3"]
    disk = g.iloc[4]
    assert disk["metric"] == 110.0 and disk["message"].startswith("2 stopped guests hold")
    # nothing folds below min_count
    assert capacity.group_findings(f, min_count=4)["count"].max() == 1
    with pytest.raises(InvalidInputError, match="min_count"):
        capacity.group_findings(f, min_count=1)


def test_findings_from_forecast_days() -> None:
    used: list[float | None] = [float(60 + i) for i in range(30)]  # 89 % today, +1 %/day
    m = metrics_frame({"pve1/local": ("storage", "pve1", used, [100.0] * 30)})
    fc = capacity.forecast(m, threshold=0.95)
    f = capacity.findings(forecast=fc)
    assert len(f) == 1
    r = f.iloc[0]
    assert r["severity"] == "critical" and r["category"] == "forecast"
    assert r["metric"] == pytest.approx(6.0) and r["unit"] == "days"
    assert "reaches 95 %" in r["message"]


def test_bad_frames_are_clear_errors(nodes) -> None:
    with pytest.raises(InvalidInputError, match="guests frame lacks column"):
        capacity.node_usage(nodes, pd.DataFrame({"profile": []}))
    with pytest.raises(InvalidInputError, match="must be a pandas DataFrame"):
        capacity.node_usage([], nodes)  # type: ignore[arg-type]


def test_analyse_an_empty_cluster(nodes, guests, storage) -> None:
    # a fresh cluster: one node, no guests, no pools, no metrics
    one = nodes[nodes.profile == "lab"]
    a = capacity.analyse(one, guests.iloc[0:0], storage.iloc[0:0], now=NOW)
    assert a.node_usage.loc[0, "guests_total"] == 0
    assert a.node_usage.loc[0, "cpu_overcommit_all"] == 0
    assert a.storage_pools.empty and a.forecast.empty and a.rightsizing.empty
    # nothing runs, so losing the only node loses nothing
    assert bool(a.headroom.loc[0, "fits"]) and a.headroom.loc[0, "mem_needed"] == 0
    assert a.cluster_usage.loc[0, "nodes_total"] == 1
    assert pd.isna(a.cluster_usage.loc[0, "storage_total"])
    assert a.findings.empty


def _old_analysis(nodes: pd.DataFrame, guests: pd.DataFrame, storage: pd.DataFrame) -> Any:
    """The analysis as read_snapshot and analyse() ran it before the frames were shared."""
    nu = capacity.node_usage(nodes, guests, storage)
    sp = capacity.storage_pools(storage, guests)
    hr = capacity.headroom(nodes, guests)
    cu = capacity.cluster_usage(nodes, guests, storage)
    return nu, sp, hr, cu, capacity.findings(node_usage=nu, storage_pools=sp, headroom=hr)


def test_snapshot_findings_equal_the_old_computation_on_the_demo() -> None:
    import pvekit
    from pvekit.history._collect import read_snapshot

    group = pvekit.demo()
    try:
        f = read_snapshot(group).frames
    finally:
        group.close()
    n, g, s = f["nodes"], f["guests"], f["storage"]
    old = capacity.findings(
        node_usage=capacity.node_usage(n, g, s),
        storage_pools=capacity.storage_pools(s, g),
        headroom=capacity.headroom(n, g),
        summary=f["summary"],
    )
    assert len(old)
    pd.testing.assert_frame_equal(f["findings"], old)
    test_shared_usage_and_pools_give_the_same_analysis(n, g, s)


def test_shared_usage_and_pools_give_the_same_analysis(nodes, guests, storage) -> None:
    nu, sp, hr, cu, fi = _old_analysis(nodes, guests, storage)
    pd.testing.assert_frame_equal(capacity.node_usage(nodes, guests, storage, pools=sp), nu)
    # the pools of storage alone (no disk details) serve node_usage as well
    bare = capacity.storage_pools(storage)
    pd.testing.assert_frame_equal(capacity.node_usage(nodes, guests, storage, pools=bare), nu)
    # headroom reads a node_usage frame with or without storage columns filled
    pd.testing.assert_frame_equal(capacity.headroom(nodes, guests, usage=nu), hr)
    no_storage = capacity.node_usage(nodes, guests)
    pd.testing.assert_frame_equal(capacity.headroom(nodes, guests, usage=no_storage), hr)
    pd.testing.assert_frame_equal(
        capacity.cluster_usage(nodes, guests, storage, usage=nu, pools=sp), cu
    )
    a = capacity.analyse(nodes, guests, storage)
    old = capacity.findings(
        node_usage=nu,
        storage_pools=sp,
        headroom=hr,
        forecast=a.forecast,
        rightsizing=a.rightsizing,
        hygiene=a.hygiene,
    )
    pd.testing.assert_frame_equal(a.findings, old)
    assert len(fi) and len(old)  # the comparisons mean something: there are findings
    pd.testing.assert_frame_equal(a.headroom, hr)
    pd.testing.assert_frame_equal(a.cluster_usage, cu)


def test_analysis_builds_node_usage_and_pools_once(monkeypatch, nodes, guests, storage) -> None:
    # headroom() used to rebuild node_usage, and node_usage() the storage pools: a third of
    # each snapshot's analysis done twice.
    from pvekit.capacity import _analyse, _headroom, _usage

    calls: dict[str, int] = {"node_usage": 0, "storage_pools": 0}

    def counted(module: Any, name: str) -> None:
        real = getattr(module, name)

        def wrapper(*a: Any, **k: Any) -> Any:
            calls[name] += 1
            return real(*a, **k)

        monkeypatch.setattr(module, name, wrapper)

    for module in (_analyse, _headroom, _usage):
        for name in calls:
            if hasattr(module, name):
                counted(module, name)
    capacity.analyse(nodes, guests, storage)
    assert calls == {"node_usage": 1, "storage_pools": 1}
