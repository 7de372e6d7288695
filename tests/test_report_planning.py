"""The capacity report's planning section: time remaining (beside the summary), capacity
remaining in guests of a reference size, maintenance readiness, reclaimable capacity."""

from __future__ import annotations

import html
import math

import pandas as pd
import pytest
from test_capacity import GIB, NOW, make_guests, make_nodes, make_storage, metrics_frame

import pvekit
from pvekit import InvalidInputError, charts, planning, report
from pvekit.cli import main as cli_main


def frames() -> dict[str, pd.DataFrame]:
    """prod: pve1 (a locked guest: cannot be emptied) and pve2 (can be); lab: one node."""
    nodes = make_nodes(
        [
            {"node": "pve1", "mem_used": 16 * GIB, "mem_total": 64 * GIB},
            {"node": "pve2", "mem_used": 8 * GIB, "mem_total": 64 * GIB},
            {"profile": "lab", "node": "lab1", "cores": 4, "mem_total": 16 * GIB},
        ]
    )
    guests = make_guests(
        [
            {"vmid": 100, "name": "web<1>", "node": "pve1", "lock": "backup"},
            {"vmid": 101, "name": "db", "node": "pve1", "mem_total": 8 * GIB},
            {"vmid": 102, "name": "mail", "node": "pve2"},
            {"profile": "lab", "vmid": 100, "name": "test", "node": "lab1"},
        ]
    )
    guests["disks"] = [
        [{"key": "scsi0", "storage": "ceph", "volume": f"vm-{v}-disk-0", "size": 32 * GIB}]
        for v in guests["vmid"]
    ]
    guests["memory"] = guests["mem_total"]
    storage = make_storage(
        [
            {"node": n, "storage": "ceph", "shared": True, "used": 50 * GIB, "total": 100 * GIB}
            for n in ("pve1", "pve2")
        ]
        + [
            {"node": "pve1", "storage": "local", "used": 10 * GIB, "total": 100 * GIB},
            {"profile": "lab", "node": "lab1", "storage": "ceph", "used": GIB, "total": 9 * GIB},
        ]
    )
    metrics = metrics_frame(
        {
            # grows ~1 % a day: runs out first; the flat pool is "not growing"
            "pve1/local": ("storage", "pve1", [float(10 + i) for i in range(30)], [100.0] * 30),
            "pve1/ceph": ("storage", "pve1", [50.0] * 30, [100.0] * 30),
            "pve2/ceph": ("storage", "pve2", [50.0] * 30, [100.0] * 30),
        }
    )
    return {"nodes": nodes, "guests": guests, "storage": storage, "metrics": metrics}


@pytest.fixture(scope="module")
def built() -> tuple[report.Report, str]:
    f = frames()
    rep = report.from_frames(f["nodes"], f["guests"], f["storage"], metrics=f["metrics"], now=NOW)
    return rep, rep.to_html()


def test_section_matches_the_planners(built) -> None:
    rep, _ = built
    sec = rep.planning
    assert sec is not None and sec.warnings == []
    tr = planning.time_remaining(sec.input, threshold=0.9, now=NOW)
    pd.testing.assert_frame_equal(sec.time_remaining, tr)
    prod = tr[tr["profile"] == "prod"]
    # binding resource first, the flat shared pool shown as not growing
    assert prod.iloc[0]["resource"] == "storage pve1/local" and bool(prod.iloc[0]["binding"])
    assert prod.iloc[0]["status"] == "growing"
    assert "not growing" in set(prod["status"])
    ref = planning.guest_spec(**report.DEFAULT_REFERENCE)
    pd.testing.assert_frame_equal(sec.reference, ref)
    pd.testing.assert_frame_equal(sec.capacity_remaining, planning.max_count(sec.input, ref))
    pd.testing.assert_frame_equal(sec.reclaimable, planning.reclaimable(sec.input, now=NOW))


def test_maintenance_readiness_per_node(built) -> None:
    rep, _ = built
    mt = rep.planning.maintenance.set_index(["profile", "node"])
    assert list(mt.index) == [("prod", "pve1"), ("prod", "pve2"), ("lab", "lab1")]
    for (profile, node), row in mt.iterrows():
        plan = planning.evacuate(rep.planning.input, node, profile=profile)
        assert bool(row["can_evacuate"]) == plan.can_empty, node
        assert row["moves"] == len(plan.moves)
        assert row["blocking"] == int(plan.unplaced["blocking"].sum())
    assert not mt.loc[("prod", "pve1"), "can_evacuate"]
    assert "web<1> (100)" in mt.loc[("prod", "pve1"), "reason"]
    assert "locked" in mt.loc[("prod", "pve1"), "reason"]
    assert mt.loc[("prod", "pve2"), "can_evacuate"] and mt.loc[("prod", "pve2"), "reason"] == ""
    assert mt.loc[("prod", "pve2"), "moves"] == 1
    assert not mt.loc[("lab", "lab1"), "can_evacuate"]  # a single node has nowhere to go
    fig = rep.planning.figures["maintenance"]
    assert list(fig.data[0].x) == ["prod/pve1 ✗", "prod/pve2 ✓", "lab/lab1 ✗"]
    assert list(fig.data[0].y) == [float(v) for v in mt["moves"]]
    assert list(fig.data[2].y) == [float(v) for v in mt["blocking"]]


def test_page_places_time_remaining_beside_the_summary(built) -> None:
    rep, page = built
    top = page.index('<div class="top">')
    findings = page.index('id="findings"')
    block = page.index('id="time-remaining"')
    assert top < page.index('id="summary"') < block < findings
    assert page.index('id="chart-time_remaining"') < findings
    # the table: binding resource first, marked, with its days; a flat pool reads so
    table = page[block : page.index("</table>", block)]
    assert table.index("storage pve1/local ★") < table.index("not growing")
    days = rep.planning.time_remaining.iloc[0]["days_until"]
    lo, hi = rep.planning.time_remaining.iloc[0][["days_low", "days_high"]]
    assert f"<td>{days:.0f} ({lo:.0f}-{hi:.0f})</td>" in table
    planning_at = page.index('id="planning"')
    assert findings < planning_at
    for name in ("capacity_remaining", "maintenance", "reclaimable"):
        assert page.index(f'id="chart-{name}"') > planning_at, name
    assert html.escape("web<1> (100)") in page and "web<1> (100)" not in page
    assert '<a href="#time-remaining">Time remaining</a>' in page
    assert '<a href="#planning">Planning</a>' in page


def test_time_remaining_chart() -> None:
    tr = pd.DataFrame(
        {
            "profile": ["a", "a", "a", "b", "b"],
            "resource": ["memory", "cpu", "storage x", "storage y", "cpu"],
            "status": ["growing", "not growing", "growing", "above threshold", "insufficient data"],
            "current": [0.8, 0.2, 0.1, 0.95, 0.1],
            "threshold": [0.9] * 5,
            "days_until": [12.0, math.nan, 20000.0, 0.0, math.nan],
            "days_low": [10.0, math.nan, 19000.0, 0.0, math.nan],
            "days_high": [15.0, math.nan, 21000.0, 0.0, math.nan],
            "binding": [True, False, False, True, False],
        }
    )
    fig = charts.time_remaining(tr)
    bar = fig.data[0]
    assert list(bar.y) == ["a · memory ★", "a · cpu", "a · storage x", "b · storage y ★", "b · cpu"]
    assert list(bar.x) == [12.0, 3650.0, 3650.0, 1.0, 3650.0]
    assert list(bar.text) == ["12 days", "not growing", "> 10 years", "now", "insufficient data"]
    assert list(bar.error_x.array) == [3.0, 0.0, 0.0, 0.0, 0.0]
    assert list(bar.error_x.arrayminus) == [2.0, 0.0, 0.0, 0.0, 0.0]
    assert bar.marker.color[0] == charts.COLORS["bad"]  # under a month
    assert bar.marker.color[1] == charts.COLORS["capacity"]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.autorange == "reversed"
    with pytest.raises(InvalidInputError, match="days_until"):
        charts.time_remaining(tr.drop(columns="days_until"))


def test_capacity_and_reclaimable_charts(built) -> None:
    rep, _ = built
    cr = rep.planning.capacity_remaining
    fig = charts.capacity_remaining(cr)
    assert list(fig.data[0].x) == ["prod", "lab"]
    assert list(fig.data[0].y) == [float(v) for v in cr["max_count"]]
    assert list(fig.data[1].y) == [float(v) for v in cr["max_count_n_plus_1"]]
    totals = pd.DataFrame(
        {
            "profile": ["p", "p", "q"],
            "kind": ["unused disk", "old snapshot", "idle guest"],
            "items": [2, 1, 1],
            "bytes": pd.array([10 * GIB, None, None], dtype="Int64"),
            "memory": pd.array([None, None, 4 * GIB], dtype="Int64"),
            "vcpus": pd.array([None, None, 2], dtype="Int64"),
        }
    )
    fig = charts.reclaimable(totals)
    assert list(fig.data[0].x) == ["p · unused disk", "p · old snapshot", "q · idle guest"]
    assert list(fig.data[0].y) == [10.0 * GIB, 0.0, 0.0]
    assert list(fig.data[1].y) == [0.0, 0.0, 4.0 * GIB]
    assert list(fig.data[2].y) == [0.0, 0.0, 2.0]


def test_reclaimable_totals() -> None:
    rows = pd.DataFrame(
        {
            "profile": ["p", "p", "p", "p"],
            "kind": ["old snapshot", "unused disk", "unused disk", "idle guest"],
            "bytes": pd.array([None, 5, 7, None], dtype="Int64"),
            "memory": pd.array([None, None, None, 8], dtype="Int64"),
            "vcpus": pd.array([None, None, None, 2], dtype="Int64"),
        }
    )
    t = report.reclaimable_totals(rows)
    # kinds in the planner's order, sizes NA where none is known
    assert list(t["kind"]) == ["idle guest", "old snapshot", "unused disk"]
    assert list(t["items"]) == [1, 1, 2]
    assert t["bytes"].tolist() == [pd.NA, pd.NA, 12]
    assert t["memory"].tolist() == [8, pd.NA, pd.NA]


def test_reference_size() -> None:
    f = frames()
    ref = planning.guest_spec(4, "8G", "64G")
    rep = report.from_frames(
        f["nodes"], f["guests"], f["storage"], metrics=f["metrics"], now=NOW, reference=ref
    )
    cr = rep.planning.capacity_remaining
    assert set(cr["shape"]) == {"4c/8G"}
    pd.testing.assert_frame_equal(cr, planning.max_count(rep.planning.input, ref))
    assert "Reference size for capacity remaining: 4 vCPU / 8.0 GB / 64.0 GB disk" in (
        rep.to_html()
    )
    assert report.parse_reference("4,8G")["memory"].iloc[0] == 8 * GIB
    for bad in ("4", "x,8G", "4,,1G", "4,8G,1G,2"):
        with pytest.raises(InvalidInputError, match="CORES,MEMORY"):
            report.parse_reference(bad)
    with pytest.raises(InvalidInputError, match="one guest shape"):
        report.from_frames(f["nodes"], f["guests"], f["storage"], reference=pd.concat([ref, ref]))


def test_without_planning() -> None:
    f = frames()
    rep = report.from_frames(f["nodes"], f["guests"], f["storage"], now=NOW, planning=False)
    assert rep.planning is None
    page = rep.to_html()
    assert 'id="time-remaining"' not in page and 'id="planning"' not in page


def test_a_failing_part_is_a_warning_not_a_broken_report() -> None:
    f = frames()
    guests = f["guests"].drop(columns=["status"])  # the planners cannot work without it
    rep = report.from_frames(f["nodes"], f["guests"], f["storage"], now=NOW)
    sec = report.planning_section(
        planning.PlanningInput(nodes=f["nodes"], guests=guests, storage=f["storage"])
    )
    assert sec.warnings and all("not computed" in w for w in sec.warnings)
    rep.planning = sec
    assert "Planning: " in rep.to_html()


def test_on_the_simulator_with_the_cli_reference(sim, tmp_path, capsys) -> None:
    c = pvekit.connect(**sim["prod"].connect_kwargs(identity="root"), cache=False)
    try:
        rep = report.capacity(c, reference="4,8G,64G", guest_metrics=False)
        sec = rep.planning
        assert sec is not None and sec.warnings == []
        # the planners read the HA rules and CPU models for the report
        assert sec.input.ha_rules is not None and "cpu_model" in sec.input.nodes
        mt = sec.maintenance.set_index("node")
        for node in mt.index:
            plan = planning.evacuate(c, node)
            assert bool(mt.loc[node, "can_evacuate"]) == plan.can_empty, node
            assert mt.loc[node, "moves"] == len(plan.moves), node
        assert set(sec.capacity_remaining["shape"]) == {"4c/8G"}
        tr = sec.time_remaining
        assert tr.iloc[0]["binding"] and set(tr["status"]) <= {
            "growing",
            "not growing",
            "above threshold",
            "insufficient data",
        }
        totals = sec.reclaimable_totals
        assert totals["items"].sum() == len(sec.reclaimable) > 0
    finally:
        c.close()
    code = cli_main(["report", "--demo", "--reference", "x", "--output", str(tmp_path / "r.html")])
    assert code != 0 and "CORES,MEMORY" in capsys.readouterr().err
