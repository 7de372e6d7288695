"""pvekit.charts: every chart's data equals the frame it was given."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from test_capacity import GIB, NOW, make_guests, make_nodes, make_storage, metrics_frame

from pvekit import InvalidInputError, capacity, charts


def same(a: object, b: pd.Series) -> bool:
    """plotly stores arrays as tuples/ndarrays with NaN or None for gaps."""
    left = [
        None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in list(a)
    ]  # type: ignore[call-overload]
    right = [None if pd.isna(v) else float(v) for v in b]
    return left == right


@pytest.fixture
def frames() -> dict[str, pd.DataFrame]:
    nodes = make_nodes(
        [
            {"node": "pve1", "cpu": 0.5, "mem_used": 16 * GIB, "mem_total": 64 * GIB},
            {"node": "pve2", "cpu": 0.25, "mem_used": 8 * GIB, "mem_total": 32 * GIB},
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
                "mem_used": 4 * GIB,
                "mem_total": 16 * GIB,
            },
        ]
    )
    guests = make_guests(
        [
            {
                "vmid": 100,
                "name": "web",
                "node": "pve1",
                "cores": 4,
                "mem_total": 8 * GIB,
                "cpu": 0.8,
            },
            {
                "vmid": 101,
                "name": "db",
                "node": "pve1",
                "cores": 2,
                "mem_total": 4 * GIB,
                "cpu": 0.2,
            },
            {"vmid": 102, "name": "mail", "node": "pve2", "cores": 2, "mem_total": 16 * GIB},
            {"profile": "lab", "vmid": 100, "name": "test", "node": "lab1", "mem_total": 2 * GIB},
        ]
    )
    storage = make_storage(
        [
            {"node": "pve1", "storage": "local", "used": 10 * GIB, "total": 100 * GIB},
            {
                "node": "pve1",
                "storage": "ceph",
                "shared": True,
                "used": 500 * GIB,
                "total": 1000 * GIB,
            },
            {
                "node": "pve2",
                "storage": "ceph",
                "shared": True,
                "used": 500 * GIB,
                "total": 1000 * GIB,
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
    return {"nodes": nodes, "guests": guests, "storage": storage}


def test_template_registered_once_and_used(frames) -> None:
    name = charts.register_template()
    assert name == "pvekit" and "pvekit" in pio.templates and "pvekit_dark" in pio.templates
    tmpl = pio.templates["pvekit"]
    assert charts.register_template() == "pvekit"
    assert pio.templates["pvekit"] is tmpl  # not rebuilt
    # transparent backgrounds: the notebook's own light or dark background shows through
    assert tmpl.layout.paper_bgcolor == "rgba(0,0,0,0)"
    usage = capacity.node_usage(frames["nodes"], frames["guests"])
    fig = charts.node_utilisation(usage)
    assert fig.layout.template.layout.colorway == tmpl.layout.colorway
    charts.set_theme("dark")
    try:
        dark = charts.node_utilisation(usage)
        assert dark.layout.template.layout.font.color == "#d1d5db"
    finally:
        charts.set_theme("light")
    with pytest.raises(InvalidInputError):
        charts.set_theme("blue")


def test_node_utilisation_data(frames) -> None:
    usage = capacity.node_usage(frames["nodes"], frames["guests"])
    fig = charts.node_utilisation(usage)
    assert len(fig.data) == 6
    # two profiles: labels carry the profile
    assert list(fig.data[0].x) == ["prod/pve1", "prod/pve2", "prod/pve3", "lab/lab1"]
    cols = ["cpu_used", "vcpus_running", "cores", "mem_used", "mem_alloc_running", "mem_total"]
    for trace, col in zip(fig.data, cols, strict=True):
        assert same(trace.y, usage[col]), col
    # hover shows formatted bytes and the share of physical memory
    assert fig.data[3].customdata[0][0] == "16.0 GB" and fig.data[3].customdata[0][1] == "25.0 %"
    # memory axis ticks are labelled in binary units
    assert "GB" in fig.layout.yaxis2.ticktext[1]
    one = charts.node_utilisation(usage[usage.profile == "prod"])
    assert list(one.data[0].x) == ["pve1", "pve2", "pve3"]  # one cluster: plain node names


def test_overview_cluster_and_group(frames) -> None:
    cu = capacity.cluster_usage(frames["nodes"], frames["guests"], frames["storage"])
    both = pd.concat([cu, capacity.group_usage(cu)], ignore_index=True)
    fig = charts.overview(both)
    assert list(fig.data[0].y) == [*cu["profile"], "(all)"] == ["lab", "prod", "(all)"]
    for trace, col in zip(
        fig.data,
        [
            "cpu",
            "mem_fraction",
            "storage_fraction",
            "cpu_overcommit_running",
            "mem_overcommit_running",
            "provisioned_ratio",
        ],
        strict=True,
    ):
        assert same(trace.x, both[col]), col
    assert fig.data[1].customdata[1][1] == "(24.0 GB of 96.0 GB)"


def test_storage_pools_chart(frames) -> None:
    guests = frames["guests"].assign(disks=[[{"storage": "ceph", "size": 1200 * GIB}], [], [], []])
    pools = capacity.storage_pools(frames["storage"], guests)
    fig = charts.storage_pools(pools)
    # the pool's one name (as in the forecast, the tables and the findings); shared: in the hover
    assert list(fig.data[0].y) == ["prod/ceph", "lab/lab1/local", "prod/pve1/local"]
    assert [c[3] for c in fig.data[0].customdata] == ["shared by 2 nodes", "local", "local"]
    assert same(fig.data[0].x, pools["used"]) and same(fig.data[1].x, pools["avail"])
    assert fig.data[2].name == "provisioned"
    # markers where guests have disks; pools without any get none (not a marker at 0)
    assert same(fig.data[2].x, pools["provisioned"].where(pools["provisioned"] > 0))
    assert list(fig.data[1].text) == ["50.0 %", "90.0 %", "10.0 %"]
    assert fig.data[2].customdata[0][1] == "1.20"
    without = charts.storage_pools(capacity.storage_pools(frames["storage"]))
    assert [t.name for t in without.data] == ["used", "free"]


def test_guests_treemap(frames) -> None:
    g = frames["guests"]
    fig = charts.guests_treemap(g)
    t = fig.data[0]
    ids = list(t.ids)
    assert ids[:5] == ["prod", "prod/pve1", "prod/pve2", "lab", "lab/lab1"]
    leaves = [i for i, p in enumerate(t.parents) if p.count("/") == 1]
    assert [ids[i] for i in leaves] == [
        "prod/pve1/100",
        "prod/pve1/101",
        "prod/pve2/102",
        "lab/lab1/100",
    ]
    assert same([t.values[i] for i in leaves], g["mem_total"])
    assert same([t.marker.colors[i] for i in leaves], g["cpu"])
    # pve1's colour: memory-weighted CPU of web (8 GiB, 0.8) and db (4 GiB, 0.2)
    assert t.marker.colors[ids.index("prod/pve1")] == pytest.approx((8 * 0.8 + 4 * 0.2) / 12)
    assert t.customdata[ids.index("prod/pve1/100")][0] == "8.0 GB"
    assert t.labels[ids.index("prod/pve1/100")] == "web (100)"


def test_metrics_history_with_forecast_band() -> None:
    used: list[float | None] = [50.0 + i for i in range(30)]
    flat: list[float | None] = [40.0] * 30
    m = metrics_frame(
        {
            "pve1/local": ("storage", "pve1", used, [100.0] * 30),
            "pve2/local": ("storage", "pve2", flat, [100.0] * 30),
        }
    )
    fc = capacity.forecast(m, threshold=0.9)
    fig = charts.metrics_history(m, fc)
    lines = [t for t in fig.data if t.mode == "lines" and t.showlegend is not False]
    assert [t.name for t in lines] == ["prod/pve1/local", "prod/pve2/local"]  # pool names
    assert same(lines[0].y, pd.Series(used) / 100)
    assert list(lines[0].x)[-1] == NOW
    band = [t for t in fig.data if t.fill == "toself"]
    assert len(band) == 2  # a band for the growing pool and one for the flat one
    trend = next(t for t in fig.data if t.name == "prod/pve1/local trend")
    assert trend.y[0] == pytest.approx(fc.set_index("target").loc["pve1/local", "current"])
    assert trend.x[0] == NOW
    assert any(s.y0 == 0.9 for s in fig.layout.shapes)  # the threshold line
    raw = charts.metrics_history(m, kind="storage", metric="used")
    assert same(raw.data[0].y, pd.Series(used))
    assert raw.data[0].customdata[0] == "50 B"
    with pytest.raises(InvalidInputError):
        charts.metrics_history(m, kind="guest")


def test_overcommit_and_headroom(frames) -> None:
    usage = capacity.node_usage(frames["nodes"], frames["guests"])
    fig = charts.overcommit(usage)
    for trace, col in zip(
        fig.data,
        [
            "cpu_overcommit_running",
            "cpu_overcommit_all",
            "mem_overcommit_running",
            "mem_overcommit_all",
        ],
        strict=True,
    ):
        assert same(trace.y, usage[col]), col
    h = capacity.headroom(frames["nodes"], frames["guests"])
    hf = charts.headroom(h)
    assert same(hf.data[0].y, h["mem_needed"]) and same(hf.data[1].y, h["mem_free_elsewhere"])
    assert same(hf.data[2].y, h["vcpus_needed"])
    assert same(hf.data[3].y, h["vcpu_capacity_elsewhere"])
    # the weakest link is starred; lab1 (single node) does not fit and is drawn in alert colour
    x = list(hf.data[0].x)
    assert "prod/pve1 ★" in x and "lab/lab1 ★" in x
    assert hf.data[0].marker.color[x.index("lab/lab1 ★")] == charts.COLORS["bad"]


def test_charts_reject_wrong_frames(frames) -> None:
    with pytest.raises(InvalidInputError, match="lacks column"):
        charts.node_utilisation(frames["nodes"])
    with pytest.raises(InvalidInputError, match="lacks column"):
        charts.headroom(frames["guests"])
    assert isinstance(charts.guests_treemap(frames["guests"].iloc[0:0]), go.Figure)


def test_metrics_history_draws_a_gap_where_rows_are_missing() -> None:
    # a node down for days 10..13: RRD leaves those rows empty (the frame has none of them)
    used: list[float | None] = [20.0 + 0.1 * i for i in range(30)]
    for i in range(10, 14):
        used[i] = None
    m = metrics_frame({"pve2": ("node", "pve2", used, [64.0] * 30)})
    m = m.dropna(subset=["value"])
    fc = capacity.forecast(m, threshold=0.9)
    fig = charts.metrics_history(m, fc, kind="node")
    line = next(t for t in fig.data if t.name == "pve2")
    assert line.connectgaps is False
    ys = list(line.y)
    xs = list(line.x)
    # one break, between the last sample before the outage and the first after it
    assert ys.count(None) == 1
    cut = ys.index(None)
    assert xs[cut - 1] == NOW - pd.Timedelta(days=20)
    assert xs[cut + 1] == NOW - pd.Timedelta(days=15)
    drawn = [y for y in ys if y is not None]
    assert drawn == pytest.approx([v / 64 for v in used if v is not None])
    assert len(line.customdata) == len(ys)
    # the forecast reads the real times: the gap does not bend the trend
    assert fc.iloc[0]["slope_per_day"] == pytest.approx(0.1 / 64, rel=1e-6)
    assert fc.iloc[0]["points"] == 26
