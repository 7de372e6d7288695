"""Planners on hand-built frames with known answers (no HTTP)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from pvekit import InvalidInputError, planning
from pvekit._ha import ha_rules_frame
from pvekit.planning import PlanningInput, Policy

GIB = 1024**3
AMD = "AMD EPYC 7543 32-Core Processor"
INTEL = "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
# exact figures: no limit, no reserve, memory counted as configured
EXACT = Policy(mem_limit=1.0, mem_reserve=0, memory="allocated")


def nodes(
    *spec: tuple[str, int, int], profile: str = "p", models: dict[str, str] | None = None
) -> pd.DataFrame:
    """(name, cores, memory GiB) per node, all online, idle."""
    return pd.DataFrame(
        {
            "profile": profile,
            "node": [s[0] for s in spec],
            "online": True,
            "cores": [s[1] for s in spec],
            "mem_total": [s[2] * GIB for s in spec],
            "mem_used": 0,
            "cpu": 0.0,
            "cpu_model": [(models or {}).get(s[0], AMD) for s in spec],
        }
    )


def guest(
    vmid: int,
    node: str,
    mem_gib: float,
    *,
    cores: int = 2,
    status: str = "running",
    profile: str = "p",
    disks: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "profile": profile,
        "vmid": vmid,
        "name": f"g{vmid}",
        "type": "qemu",
        "node": node,
        "status": status,
        "template": False,
        "tags": [],
        "lock": None,
        "cpu": 0.0,
        "cores": cores,
        "mem_total": int(mem_gib * GIB),
        "mem_used": int(mem_gib * GIB) // 2,
        "disk_total": 10 * GIB,
        "cpu_type": None,
        "disks": disks
        if disks is not None
        else [
            {
                "key": "scsi0",
                "storage": "ceph",
                "volume": f"vm-{vmid}-disk-0",
                "size": 10 * GIB,
                "media": "disk",
            }
        ],
    }
    row.update(extra)
    return row


def storage(
    rows: list[tuple[str, str, bool]], profile: str = "p", avail: int = 10**13
) -> pd.DataFrame:
    """(node, storage, shared) rows, all available."""
    return pd.DataFrame(
        {
            "profile": profile,
            "node": [r[0] for r in rows],
            "storage": [r[1] for r in rows],
            "shared": [r[2] for r in rows],
            "status": "available",
            "active": True,
            "enabled": True,
            "avail": avail,
        }
    )


def frames(
    n: pd.DataFrame, guests: list[dict[str, Any]], st: pd.DataFrame | None = None, **kw: Any
) -> PlanningInput:
    if st is None:
        st = storage([(name, "ceph", True) for name in n["node"]])
    return PlanningInput(nodes=n, guests=pd.DataFrame(guests), storage=st, **kw)


# -- evacuate ---------------------------------------------------------------------------------


def test_node_that_cannot_be_emptied_says_why() -> None:
    inp = frames(nodes(("a", 64, 64), ("b", 64, 64)), [guest(100, "a", 16), guest(101, "b", 50)])
    plan = planning.evacuate(inp, "a", policy=EXACT)
    assert not plan.can_empty
    assert plan.moves.empty
    (row,) = plan.unplaced.to_dict("records")
    assert row["vmid"] == 100 and row["blocking"]
    assert "b: memory: needs 16.0 GB, 14.0 GB left" in row["reason"]
    # the same guest fits once b has room: the reason was the memory, nothing else
    assert planning.evacuate(inp.with_node("b", mem_total="128G"), "a", policy=EXACT).can_empty


def test_evacuation_fills_nodes_and_reports_before_after() -> None:
    inp = frames(
        nodes(("a", 64, 100), ("b", 64, 100), ("c", 64, 100)),
        [guest(100, "a", 40), guest(101, "a", 30), guest(102, "a", 20), guest(103, "b", 10)],
    )
    plan = planning.evacuate(inp, "a", policy=EXACT)
    assert plan.can_empty
    # largest first, each to the node with the most memory left: 40 -> c, 30 -> b, 20 -> b|c
    got = dict(zip(plan.moves["vmid"], plan.moves["target"], strict=True))
    assert got == {100: "c", 101: "b", 102: "c"}
    assert list(plan.moves["step"]) == [1, 2, 3]
    assert set(plan.moves["mode"]) == {"online"}
    after = plan.after.set_index("node")
    assert after.loc["a", "guests_running"] == 0
    assert after.loc["b", "mem_load"] == 40 * GIB and after.loc["c", "mem_load"] == 60 * GIB
    assert plan.before.set_index("node").loc["a", "mem_load"] == 90 * GIB
    assert "can be emptied" in plan.summary() and "<table" in plan._repr_html_()


def test_anti_affinity_pair_by_tag_and_by_ha_rule() -> None:
    n = nodes(("a", 64, 100), ("b", 64, 100), ("c", 64, 40))
    tagged = [
        guest(100, "a", 8, tags=["anti-affinity-web"]),
        guest(101, "b", 8, tags=["anti-affinity-web"]),
    ]
    # b has more room, but its partner runs there
    plan = planning.evacuate(frames(n, tagged), "a", policy=EXACT)
    assert plan.moves["target"].tolist() == ["c"]
    # with c gone too, nowhere is left: the reason names the partner
    plan = planning.evacuate(frames(n, tagged), ["a", "c"], policy=EXACT)
    assert "anti-affinity (tag:web) with g101 (101)" in plan.unplaced["reason"].iloc[0]
    # the same through an HA resource-affinity rule (PVE 9)
    rules = ha_rules_frame(
        "p",
        rules=[
            {
                "rule": "apart",
                "type": "resource-affinity",
                "affinity": "negative",
                "resources": "vm:100,vm:101",
            }
        ],
    )
    plain = [guest(100, "a", 8), guest(101, "b", 8)]
    plan = planning.evacuate(frames(n, plain, ha_rules=rules), "a", policy=EXACT)
    assert plan.moves["target"].tolist() == ["c"]
    # tags are a convention the policy can switch off
    plan = planning.evacuate(frames(n, tagged), "a", policy=EXACT.with_(tags=False))
    assert plan.moves["target"].tolist() == ["b"]


def test_positive_affinity_keeps_a_group_together() -> None:
    n = nodes(("a", 64, 100), ("b", 64, 100), ("c", 64, 100))
    g = [guest(100, "a", 8, tags=["affinity-app"]), guest(101, "c", 30, tags=["affinity-app"])]
    plan = planning.evacuate(frames(n, g), "a", policy=EXACT)
    assert plan.moves["target"].tolist() == ["c"]  # b is emptier, but the partner is on c


def test_local_disk_needs_its_storage_on_the_target() -> None:
    n = nodes(("a", 64, 100), ("b", 64, 100))
    local = [
        {
            "key": "scsi0",
            "storage": "nvme",
            "volume": "vm-100-disk-0",
            "size": 50 * GIB,
            "media": "disk",
        }
    ]
    g = [guest(100, "a", 8, disks=local)]
    only_a = storage([("a", "nvme", False), ("a", "ceph", True), ("b", "ceph", True)])
    plan = planning.evacuate(frames(n, g, only_a), "a", policy=EXACT)
    assert not plan.can_empty
    assert "storage 'nvme' (local disk) does not exist on b" in plan.unplaced["reason"].iloc[0]
    both = storage([("a", "nvme", False), ("b", "nvme", False)])
    plan = planning.evacuate(frames(n, g, both), "a", policy=EXACT)
    assert plan.moves[["target", "with_local_disks", "mode"]].values.tolist() == [
        ["b", True, "online"]
    ]
    # too little room on b's pool
    small = storage([("a", "nvme", False), ("b", "nvme", False)], avail=10 * GIB)
    plan = planning.evacuate(frames(n, g, small), "a", policy=EXACT)
    assert "storage 'nvme' has 10.0 GB free, needs 50.0 GB" in plan.unplaced["reason"].iloc[0]


def test_single_node_cluster_cannot_be_emptied_and_is_balanced() -> None:
    inp = frames(
        nodes(("solo", 16, 64)), [guest(100, "solo", 8), guest(101, "solo", 4, status="stopped")]
    )
    plan = planning.evacuate(inp, "solo", policy=EXACT)
    assert not plan.can_empty and plan.moves.empty
    assert plan.unplaced.set_index("vmid").loc[100, "reason"] == "no target: no other node"
    assert not plan.unplaced.set_index("vmid").loc[101, "blocking"]  # stopped: may stay
    reb = planning.rebalance(inp, policy=EXACT)
    assert reb.moves.empty and "one online node" in reb.notes[0]
    w = planning.what_if(inp, planning.guest_spec(cores=2, memory="8G"), policy=EXACT)
    assert w.summary["max_count"].iloc[0] == 7  # 56 GiB left, stopped guests hold none
    assert w.summary["max_count_n_plus_1"].iloc[0] == 0  # nowhere to fail over
    assert w.summary["n_plus_1_reason"].iloc[0].startswith("already now: if solo fails")


def test_what_is_not_moved_and_why() -> None:
    n = nodes(("a", 64, 100), ("b", 64, 100))
    g = [
        guest(100, "a", 4, template=True, status="stopped"),
        guest(101, "a", 4, lock="backup"),
        guest(102, "a", 4, tags=["no-move"]),
        guest(103, "a", 4, local_resources=["hostpci0"]),
        guest(104, "a", 4, disks=None),
        guest(105, "a", 4, status="stopped"),
    ]
    g[4]["disks"] = None
    plan = planning.evacuate(frames(n, g), "a", policy=EXACT)
    why = plan.unplaced.set_index("vmid")["reason"].to_dict()
    assert why[100].startswith("template") and why[101].startswith("locked (backup)")
    assert why[102].startswith("tagged 'no-move'") and "hostpci0" in why[103]
    assert why[104].startswith("configuration unknown")
    assert plan.unplaced.set_index("vmid")["blocking"].to_dict() == {
        100: False,
        101: True,
        102: True,
        103: True,
        104: True,
    }
    assert plan.moves[["vmid", "mode"]].values.tolist() == [[105, "offline"]]
    stay = planning.evacuate(frames(n, g), "a", policy=EXACT.with_(move_stopped=False))
    assert stay.moves.empty and "stays" in stay.unplaced.set_index("vmid").loc[105, "reason"]


def test_cpu_type_host_needs_the_same_model_and_named_models_the_vendor() -> None:
    models = {"a": AMD, "b": INTEL, "c": AMD}
    n = nodes(("a", 64, 100), ("b", 64, 200), ("c", 64, 100), models=models)
    plan = planning.evacuate(frames(n, [guest(100, "a", 8, cpu_type="host")]), "a", policy=EXACT)
    assert plan.moves["target"].tolist() == ["c"]
    plan = planning.evacuate(
        frames(n, [guest(100, "a", 8, cpu_type="Skylake-Server")]), "a", policy=EXACT
    )
    assert plan.moves["target"].tolist() == ["b"]
    plan = planning.evacuate(
        frames(n, [guest(100, "a", 8, cpu_type="x86-64-v2-AES")]), "a", policy=EXACT
    )
    assert plan.moves["target"].tolist() == ["b"]  # generic: the roomiest node


def test_ha_node_affinity_strict_and_preferred() -> None:
    n = nodes(("a", 64, 100), ("b", 64, 200), ("c", 64, 100))
    g = [guest(100, "a", 8)]
    strict = ha_rules_frame(
        "p",
        rules=[
            {
                "rule": "r",
                "type": "node-affinity",
                "resources": "vm:100",
                "nodes": "a,c",
                "strict": 1,
            }
        ],
    )
    assert planning.evacuate(frames(n, g, ha_rules=strict), "a", policy=EXACT).moves[
        "target"
    ].tolist() == ["c"]
    only_a = ha_rules_frame(
        "p",
        rules=[
            {"rule": "r", "type": "node-affinity", "resources": "vm:100", "nodes": "a", "strict": 1}
        ],
    )
    plan = planning.evacuate(frames(n, g, ha_rules=only_a), "a", policy=EXACT)
    assert "not allowed by HA rule" in plan.unplaced["reason"].iloc[0]
    # non-strict: c is preferred, though b has more room
    prefer = ha_rules_frame(
        "p",
        rules=[
            {
                "rule": "r",
                "type": "node-affinity",
                "resources": "vm:100",
                "nodes": "c:5,b:1",
                "strict": 0,
            }
        ],
    )
    assert planning.evacuate(frames(n, g, ha_rules=prefer), "a", policy=EXACT).moves[
        "target"
    ].tolist() == ["c"]
    # 8.x: a restricted group, membership from /cluster/ha/resources
    group = ha_rules_frame(
        "p",
        groups=[{"group": "grp", "nodes": "a,c", "restricted": 1}],
        resources=[{"sid": "vm:100", "group": "grp"}],
    )
    assert planning.evacuate(frames(n, g, ha_rules=group), "a", policy=EXACT).moves[
        "target"
    ].tolist() == ["c"]
    # disabled rules and honour_ha=False are ignored
    assert planning.evacuate(
        frames(n, g, ha_rules=only_a), "a", policy=EXACT.with_(honour_ha=False)
    ).can_empty


def test_memory_reserve_and_limit_are_honoured() -> None:
    n = nodes(("a", 64, 100), ("b", 64, 100))
    g = [guest(100, "a", 40), guest(101, "b", 50)]
    ok = planning.evacuate(frames(n, g), "a", policy=EXACT)
    assert ok.can_empty  # 90 of 100
    limited = Policy(mem_limit=0.9, mem_reserve="4G", memory="allocated")
    assert not planning.evacuate(frames(n, g), "a", policy=limited).can_empty  # 86 allowed
    per_node = Policy(mem_limit=1.0, mem_reserve={"b": "20G", "*": 0}, memory="allocated")
    assert not planning.evacuate(frames(n, g), "a", policy=per_node).can_empty
    # "used": what the guests use now (half their allocation here) and the node's own use
    n_used = n.assign(mem_used=[20 * GIB, 25 * GIB])
    assert planning.evacuate(frames(n_used, g), "a", policy=limited.with_(memory="used")).can_empty


# -- rebalance --------------------------------------------------------------------------------


def test_rebalance_known_answer_and_score() -> None:
    n = nodes(("a", 64, 100), ("b", 64, 100))
    g = [guest(100, "a", 45), guest(101, "a", 30), guest(102, "a", 5), guest(103, "b", 10)]
    plan = planning.rebalance(frames(n, g), policy=EXACT)
    # a 80 %, b 10 %: moving the 30 GiB guest gives 50/40 (the 45 GiB one 35/55)
    assert plan.moves[["vmid", "node", "target"]].values.tolist() == [[101, "a", "b"]]
    assert plan.score_before == pytest.approx(0.7)
    assert plan.score_after == pytest.approx(0.1)
    after = plan.after.set_index("node")["mem_fraction"]
    assert after["a"] == pytest.approx(0.5) and after["b"] == pytest.approx(0.4)


def test_rebalance_does_nothing_on_a_balanced_cluster() -> None:
    n = nodes(("a", 64, 100), ("b", 64, 100))
    g = [guest(100, "a", 40), guest(101, "b", 35)]
    plan = planning.rebalance(frames(n, g), policy=EXACT)
    assert plan.moves.empty and "already balanced" in plan.notes[0]
    # a tighter margin asks for a move, but none improves: 40/35 -> 0/75 is worse
    plan = planning.rebalance(frames(n, g), margin=0.01, policy=EXACT)
    assert plan.moves.empty and "no further move improves" in plan.notes[0]


def test_rebalance_threshold_and_max_moves() -> None:
    n = nodes(("a", 64, 100), ("b", 64, 100), ("c", 64, 100))
    g = [guest(100 + i, "a", 10) for i in range(9)]
    plan = planning.rebalance(frames(n, g), threshold=0.5, margin=1.0, policy=EXACT)
    assert len(plan.moves) == 4  # 90 % -> 50 %: only the threshold is asked for
    assert plan.after.set_index("node").loc["a", "mem_fraction"] == pytest.approx(0.5)
    capped = planning.rebalance(frames(n, g), max_moves=2, policy=EXACT)
    assert len(capped.moves) == 2 and "max_moves=2" in capped.notes[-1]


def test_rebalance_respects_placement_rules() -> None:
    n = nodes(("a", 64, 100), ("b", 64, 100))
    g = [guest(100, "a", 60, tags=["pin-a"]), guest(101, "a", 20, lock="backup")]
    plan = planning.rebalance(frames(n, g), policy=EXACT)
    assert plan.moves.empty  # one pinned, one locked: nothing may move


def test_rebalance_by_cpu() -> None:
    n = nodes(("a", 10, 100), ("b", 10, 100)).assign(cpu=[0.6, 0.0])
    g = [guest(100, "a", 1, cores=4, cpu=1.0), guest(101, "a", 1, cores=2, cpu=1.0)]
    plan = planning.rebalance(frames(n, g), by="cpu", policy=EXACT)
    # 6 of 8 usable cores on a: the 4-core guest makes it 2/4, the 2-core one 4/2
    assert plan.moves["vmid"].tolist() == [101] or plan.moves["vmid"].tolist() == [100]
    assert plan.score_after < plan.score_before


# -- what-if ----------------------------------------------------------------------------------


def test_what_if_counts_with_and_without_n_plus_1() -> None:
    inp = frames(nodes(("a", 64, 100), ("b", 64, 100)), [])
    w = planning.what_if(inp, planning.guest_spec(cores=1, memory="10G", count=25), policy=EXACT)
    row = w.summary.iloc[0]
    assert (row["max_count"], row["fit"], row["requested"]) == (20, 20, 25)
    # N+1 (capacity.headroom): one node's guests must fit on the other: a + b <= 10
    assert row["max_count_n_plus_1"] == 10 and row["fit_n_plus_1"] == 10
    assert row["n_plus_1_reason"] in (
        "if a fails: memory (1 guest(s) would find no room)",
        "if b fails: memory (1 guest(s) would find no room)",
    )
    assert row["stopped_by"] == "memory"
    assert w.placements["node"].value_counts().to_dict() == {"a": 10, "b": 10}
    assert w.placements["n_plus_1"].sum() == 10


def test_what_if_vcpus_and_storage_stop_it() -> None:
    inp = frames(nodes(("a", 4, 1000), ("b", 4, 1000)), [])
    w = planning.what_if(inp, planning.guest_spec(cores=4, memory="1G"), policy=EXACT)
    assert w.summary["max_count"].iloc[0] == 8 and w.summary["stopped_by"].iloc[0] == "vcpus"
    st = storage([("a", "ceph", True), ("b", "ceph", True)], avail=100 * GIB)
    inp = frames(nodes(("a", 64, 1000), ("b", 64, 1000)), [], st)
    w = planning.what_if(inp, planning.guest_spec(2, "1G", "30G", storage="ceph"), policy=EXACT)
    assert w.summary["max_count"].iloc[0] == 3 and w.summary["stopped_by"].iloc[0] == "storage"


def test_what_if_on_edited_frames() -> None:
    inp = frames(nodes(("a", 64, 100), ("b", 64, 100)), [])
    spec = {"cores": 1, "memory": "10G"}
    assert planning.max_count(inp, spec, policy=EXACT)["max_count"].iloc[0] == 20
    bigger = inp.with_node("b", mem_total="300G")
    assert planning.max_count(bigger, spec, policy=EXACT)["max_count"].iloc[0] == 40
    assert inp.nodes["mem_total"].iloc[1] == 100 * GIB  # the original is untouched


def test_bad_input_is_named() -> None:
    inp = frames(nodes(("a", 64, 100)), [])
    with pytest.raises(InvalidInputError, match="node 'zz' is in none"):
        planning.evacuate(inp, "zz")
    with pytest.raises(InvalidInputError, match="by must be"):
        planning.rebalance(inp, by="disk")
    with pytest.raises(InvalidInputError, match="mem_limit"):
        Policy(mem_limit=1.5)
    with pytest.raises(InvalidInputError, match="mem_reserve"):
        Policy(mem_reserve="lots")
    with pytest.raises(InvalidInputError, match="cores"):
        planning.guest_spec(cores=0, memory="1G")
    with pytest.raises(InvalidInputError, match="memory"):
        planning.guest_spec(cores=1, memory="eight")
    with pytest.raises(InvalidInputError, match="source must be"):
        planning.evacuate(42, "a")
    with pytest.raises(InvalidInputError, match="policy must be"):
        planning.evacuate(inp, "a", policy={"mem_limit": 0.5})  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"PlanningInput\.nodes"):
        PlanningInput(nodes=None, guests=pd.DataFrame())  # type: ignore[arg-type]
    two = PlanningInput(
        nodes=pd.concat([nodes(("a", 1, 1)), nodes(("a", 1, 1), profile="q")]),
        guests=pd.DataFrame(columns=["profile", "vmid", "node", "status", "cores", "mem_total"]),
    )
    with pytest.raises(InvalidInputError, match="several clusters"):
        planning.evacuate(two, "a")


def test_apply_needs_confirmation_and_a_source() -> None:
    inp = frames(nodes(("a", 64, 100), ("b", 64, 100)), [guest(100, "a", 8)])
    plan = planning.evacuate(inp, "a", policy=EXACT)
    with pytest.raises(InvalidInputError, match="nothing sent: this plan has 1 migration"):
        plan.apply()
    with pytest.raises(InvalidInputError, match="pass source="):
        plan.apply(confirm=True)


# -- time remaining ---------------------------------------------------------------------------

NOW = pd.Timestamp("2026-06-01", tz="UTC")


def history(per_day_gib: float, start_gib: float, days: int = 10) -> pd.DataFrame:
    """Daily snapshots: one running guest whose allocation grows ``per_day_gib`` a day."""
    rows = []
    for d in range(days):
        when = NOW - pd.Timedelta(days=days - 1 - d)
        rows.append(guest(100, "a", start_gib + per_day_gib * d, cores=4, collected_at=when))
        rows.append(guest(101, "b", 10, cores=4, status="stopped", collected_at=when))
    return pd.DataFrame(rows)


def test_time_remaining_from_allocation_history() -> None:
    inp = frames(nodes(("a", 8, 100), ("b", 8, 100), ("c", 8, 100)), [])
    h = history(1.0, 141.0)  # 150 GiB at the last snapshot, +1 GiB a day
    t = planning.time_remaining(inp, history=h, now=NOW, policy=EXACT)
    mem = t.set_index("resource").loc["allocated memory"]
    # N+1 capacity: 300 GiB without the largest node = 200 GiB; 50 GiB to go at 1 GiB/day
    assert mem["status"] == "growing" and mem["basis"] == "allocation"
    assert mem["days_until"] == pytest.approx(50.0)
    assert mem["capacity"] == pytest.approx(200 * GIB)
    vc = t.set_index("resource").loc["allocated vcpus"]
    assert vc["status"] == "not growing"  # 4 vCPUs all along
    assert t["binding"].tolist()[0] and t.iloc[0]["resource"] == "allocated memory"
    flat = planning.time_remaining(inp, history=history(0.0, 150.0), now=NOW, policy=EXACT)
    assert set(flat["status"]) == {"not growing"}


def test_time_remaining_needs_tz_aware_history() -> None:
    inp = frames(nodes(("a", 8, 100)), [])
    bad = history(1.0, 10.0).assign(collected_at=lambda d: d["collected_at"].dt.tz_localize(None))
    with pytest.raises(InvalidInputError, match="tz-aware"):
        planning.time_remaining(inp, history=bad)
    with pytest.raises(InvalidInputError, match="lacks column"):
        planning.time_remaining(inp, history=pd.DataFrame({"profile": ["p"]}))


def test_time_remaining_from_usage_metrics() -> None:
    times = [NOW - pd.Timedelta(days=9 - d) for d in range(10)]
    rows = []
    for t_i, t in enumerate(times):
        for node in ("a", "b"):
            used = (40 + 1.0 * t_i) * GIB  # both nodes +1 GiB a day: cluster +2 of 200
            rows += [
                ("p", "node", node, node, t, "memused", used),
                ("p", "node", node, node, t, "memtotal", 100 * GIB),
                ("p", "node", node, node, t, "cpu", 0.25),
                ("p", "node", node, node, t, "maxcpu", 8),
            ]
    metrics = pd.DataFrame(
        rows, columns=["profile", "kind", "target", "node", "time", "metric", "value"]
    )
    inp = frames(nodes(("a", 8, 100), ("b", 8, 100)), [], metrics=metrics)
    t = planning.time_remaining(inp, threshold=0.9, now=NOW).set_index("resource")
    # 98 of 200 GiB now (49 %), +1 % a day: 41 days to 90 %
    assert t.loc["memory", "days_until"] == pytest.approx(41.0)
    assert t.loc["cpu", "status"] == "not growing"
    assert t.loc["memory", "binding"]


# -- reclaimable ------------------------------------------------------------------------------


def test_reclaimable_kinds_with_evidence() -> None:
    tmpl_disk = [
        {
            "key": "scsi0",
            "storage": "ceph",
            "volume": "base-9000-disk-0",
            "size": 20 * GIB,
            "media": "disk",
        }
    ]
    clone_disk = [
        {
            "key": "scsi0",
            "storage": "ceph",
            "volume": "base-9000-disk-0/vm-102-disk-0",
            "size": 20 * GIB,
            "media": "disk",
        }
    ]
    g = [
        guest(9000, "a", 2, template=True, status="stopped", disks=tmpl_disk),
        guest(
            9001,
            "a",
            2,
            template=True,
            status="stopped",
            disks=[
                {
                    "key": "scsi0",
                    "storage": "ceph",
                    "volume": "base-9001-disk-0",
                    "size": 8 * GIB,
                    "media": "disk",
                }
            ],
        ),
        guest(102, "a", 4, disks=clone_disk, unused=["ceph:vm-102-disk-1"]),
        guest(103, "a", 4, status="stopped"),
    ]
    volumes = pd.DataFrame(
        {
            "profile": "p",
            "node": None,
            "storage": "ceph",
            "volid": ["ceph:vm-102-disk-1", "ceph:vm-777-disk-0", "ceph:base-9000-disk-0"],
            "vmid": [102, 777, 9000],
            "size": [5 * GIB, 7 * GIB, 20 * GIB],
        }
    )
    backups = pd.DataFrame(
        {
            "profile": "p",
            "node": "a",
            "storage": "nfs",
            "volid": [f"nfs:backup/vzdump-qemu-102-{i}.vma.zst" for i in range(3)],
            "vmid": 102,
            "size": [1 * GIB, 2 * GIB, 3 * GIB],
            "ctime": [NOW - pd.Timedelta(days=d) for d in (1, 2, 3)],
            "protected": [False, False, False],
        }
    )
    tasks = pd.DataFrame(
        {
            "profile": "p",
            "id": ["103", ""],
            "starttime": [NOW - pd.Timedelta(days=45), NOW - pd.Timedelta(days=100)],
        }
    )
    inp = frames(nodes(("a", 64, 100)), g, volumes=volumes, backups=backups, tasks=tasks)
    r = planning.reclaimable(inp, keep_backups=2, now=NOW)
    by = {k: grp for k, grp in r.groupby("kind")}
    assert by["unused disk"][["volid", "bytes"]].values.tolist() == [
        ["ceph:vm-102-disk-1", 5 * GIB]
    ]
    assert by["orphaned disk"]["volid"].tolist() == ["ceph:vm-777-disk-0"]
    assert by["unused template"]["vmid"].tolist() == [9001]  # 9000 has a linked clone
    assert by["backup beyond retention"]["bytes"].tolist() == [3 * GIB]  # the oldest
    ls = by["long stopped"].iloc[0]
    assert ls["vmid"] == 103 and ls["age_days"] == pytest.approx(45) and ls["bytes"] == 10 * GIB
    assert "last task was 45 days ago" in ls["evidence"]
    assert r["evidence"].notna().all()
    recent = tasks.assign(starttime=[NOW - pd.Timedelta(days=3), NOW - pd.Timedelta(days=100)])
    r2 = planning.reclaimable(inp.copy(tasks=recent), keep_backups=2, now=NOW)
    assert "long stopped" not in set(r2["kind"])


def test_readiness_per_node() -> None:
    inp = frames(
        nodes(("a", 64, 64), ("b", 64, 64), ("c", 64, 64)),
        [guest(100, "a", 8), guest(101, "b", 8, local_resources=["usb0"]), guest(102, "c", 60)],
    )
    r = planning.readiness(inp, policy=EXACT).set_index("node")
    assert r["can_empty"].to_dict() == {"a": True, "b": False, "c": False}
    assert (
        r.loc["b", "reason"] == "g101 (101): uses local device(s) usb0: Proxmox cannot migrate it"
    )
    assert "g102 (102): no target: a: memory" in r.loc["c", "reason"]
    assert r.loc["a", "moves"] == 1 and r.loc["a", "reason"] == ""


def test_plan_html_escapes_names() -> None:
    n = nodes(("a", 64, 100), ("b", 64, 100))
    inp = frames(n, [guest(100, "a", 8, name="<script>x</script>")])
    html = planning.evacuate(inp, "a", policy=EXACT)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_apply_bounds_migrations_per_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two moves into c from different nodes never run together with parallel=1; the move
    out of c waits for nothing, the move into b waits for the earlier move out of b."""
    import threading
    import time

    from pvekit.planning import _plan

    n = nodes(("a", 64, 100), ("b", 64, 100), ("c", 64, 100), ("d", 64, 100))
    inp = frames(n, [guest(100, "a", 8), guest(101, "b", 8), guest(102, "d", 8)])
    plan = planning.evacuate(inp, ["a", "b", "d"], policy=EXACT)
    assert set(plan.moves["target"]) == {"c"}
    busy: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()
    order: list[int] = []

    class FakeTask:
        upid = "UPID:c:0:0:0:qmigrate:1:root@pam:"
        type = "qmigrate"

        def __init__(self, nodes: tuple[str, str]) -> None:
            self.nodes = nodes

        def wait(self, **_: Any) -> None:
            time.sleep(0.05)
            with lock:
                for x in self.nodes:
                    busy[x] -= 1

    class FakeGuest:
        def __init__(self, m: dict[str, Any]) -> None:
            self.m = m

        def migrate(self, target: str, **_: Any) -> FakeTask:
            with lock:
                order.append(int(self.m["vmid"]))
                for x in (self.m["node"], target):
                    busy[x] = busy.get(x, 0) + 1
                    peak[x] = max(peak.get(x, 0), busy[x])
            return FakeTask((self.m["node"], target))

    monkeypatch.setattr(_plan, "_guest", lambda _src, m: FakeGuest(m))
    monkeypatch.setattr(planning.Plan, "check", lambda self, source=None: [])
    result = plan.apply(confirm=True, source=object(), parallel=1)
    assert result["result"].tolist() == ["done"] * 3
    assert peak["c"] == 1 and sorted(order) == [100, 101, 102]
    busy.clear()
    peak.clear()
    plan2 = planning.evacuate(inp, ["a", "b", "d"], policy=EXACT)
    plan2.apply(confirm=True, source=object(), parallel=2)
    assert peak["c"] == 2  # two at a time, never three
