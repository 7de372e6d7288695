"""Planning against the simulator: reading, applying plans, faults mid-plan."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from test_schema_calls import load_routes, offending

import pvekit
from pvekit import InvalidInputError, PlanInvalidatedError, planning
from pvekit.planning import Policy
from pvekit.sim import Simulator

POLL = 0.05


@pytest.fixture
def fast_sim() -> Iterator[Simulator]:
    """A demo simulator of its own whose tasks run 50 times faster than real time."""
    s = Simulator("demo", task_scale=0.02)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def prod(fast_sim: Simulator) -> Iterator[pvekit.Cluster]:
    c = pvekit.connect(**fast_sim["prod"].connect_kwargs(identity="root"), cache=False)
    yield c
    c.close()


def migrate_posts(sim: Any) -> list[Any]:
    """The migrate POSTs a Simulator's ``prod`` (or that SimCluster itself) received."""
    c = sim["prod"] if isinstance(sim, Simulator) else sim
    return [r for r in c.requests if r.method == "POST" and r.path.endswith("/migrate")]


def test_demo_reads_ha_rules_and_what_planning_needs(prod: pvekit.Cluster) -> None:
    rules = prod.ha_rules().set_index("rule")
    assert rules.loc["dc-nodes", "nodes"] == {"pve1": 2, "pve3": 1}
    assert bool(rules.loc["dc-nodes", "strict"]) and not bool(rules.loc["api-prefer", "strict"])
    assert rules.loc["db-apart", "affinity"] == "negative"
    inp = planning.PlanningInput.read(prod)
    g = inp.guests.set_index("name")
    assert g.loc["search-02", "local_resources"] == ["hostpci0"]
    assert g.loc["old-erp", "unused"] == ["ceph-vm:vm-138-disk-1"]
    assert set(inp.nodes["cpu_model"].dropna()) >= {"AMD EPYC 7543 32-Core Processor"}


def test_pve8_serves_node_affinity_as_groups() -> None:
    with Simulator("demo", pve_version="8.4") as sim:
        c = pvekit.connect(**sim["prod"].connect_kwargs(identity="root"), cache=False)
        rules = c.ha_rules()
        assert rules["origin"].tolist() == ["group", "group"]
        dc = rules.set_index("rule").loc["dc-nodes"]
        assert bool(dc["strict"]) and sorted(dc["vmids"]) == [114, 115]
        paths = [r.path for r in sim["prod"].requests if "/ha/" in r.path]
        assert paths[0] == "/cluster/ha/rules"  # 501 on 8.x, then the two 8.x reads
        assert sorted(paths[1:]) == ["/cluster/ha/groups", "/cluster/ha/resources"]
        c.close()


def test_demo_nodes_show_what_planning_finds(prod: pvekit.Cluster) -> None:
    inp = planning.PlanningInput.read(prod)
    pve3 = planning.evacuate(inp, "pve3")
    assert not pve3.can_empty
    blocking = pve3.unplaced[pve3.unplaced["blocking"]].set_index("name")["reason"]
    assert "hostpci0" in blocking["search-02"]
    # CPU type host: only the node with the same CPU model (pve2 is Intel)
    assert pve3.moves.set_index("name").loc["analytics", "target"] == "pve1"
    stays = pve3.unplaced.set_index("name")
    assert "storage 'nvme-pve3' (local disk) does not exist" in stays.loc["old-erp", "reason"]
    pve1 = planning.evacuate(inp, "pve1")
    t = pve1.moves.set_index("name")
    assert t.loc["dc-02", "target"] == "pve3"  # strict HA node affinity: pve1/pve3 only
    assert t.loc["db-replica", "target"] != "pve3"  # kept apart from db-primary
    ready = planning.readiness(inp).set_index("node")["can_empty"].to_dict()
    assert ready == {"pve1": True, "pve2": True, "pve3": False}
    reb = planning.rebalance(inp)
    assert len(reb.moves) >= 1 and reb.score_after < reb.score_before
    assert set(reb.moves["node"]) == {"pve3"}  # the overloaded node


def test_evacuate_apply_empties_the_node(fast_sim: Simulator, prod: pvekit.Cluster) -> None:
    plan = planning.evacuate(prod, "pve2")
    assert plan.can_empty and len(plan.moves) > 10
    fast_sim["prod"].clear_requests()
    seen: list[str] = []
    result = plan.apply(confirm=True, parallel=2, poll=POLL, progress=seen.append)
    assert result["result"].tolist() == ["done"] * len(plan.moves)
    assert result["upid"].str.startswith("UPID:").all()
    live = prod.guests(fresh=True)
    on_pve2 = live[(live["node"] == "pve2") & ~live["template"].astype(bool)]
    assert on_pve2.empty
    now = planning.evacuate(prod, "pve1").before
    assert not now["above_limit"].any()
    posts = migrate_posts(fast_sim)
    assert len(posts) == len(plan.moves)  # each move sent exactly once
    assert Counter(p.path for p in posts).most_common(1)[0][1] == 1
    sent = {int(p.path.split("/")[4]): p.params for p in posts}
    modes = plan.moves.set_index("vmid")
    for vmid, params in sent.items():
        row = modes.loc[vmid]
        assert params["target"] == row["target"]
        assert ("online" in params) == (row["mode"] == "online")
        assert ("restart" in params) == (row["mode"] == "restart")
        assert ("with-local-disks" in params) == bool(row["with_local_disks"])
    _, routes = load_routes()
    assert offending(fast_sim["prod"].requests, routes) == []
    assert any("started" in line for line in seen)
    with pytest.raises(PlanInvalidatedError, match="sent already"):
        plan.apply(confirm=True)  # never twice
    assert len(migrate_posts(fast_sim)) == len(plan.moves)


def test_rebalance_apply_reaches_the_predicted_score(prod: pvekit.Cluster) -> None:
    policy = Policy(memory="allocated")
    plan = planning.rebalance(prod, policy=policy)
    assert len(plan.moves) >= 1
    plan.apply(confirm=True, poll=POLL)
    again = planning.rebalance(prod, policy=policy)
    assert again.score_before == pytest.approx(plan.score_after)


def test_a_503_on_the_post_stops_the_plan_and_nothing_is_resent(
    fast_sim: Simulator, prod: pvekit.Cluster
) -> None:
    plan = planning.evacuate(prod, "pve2")
    c = fast_sim["prod"]
    c.clear_requests()
    c.faults.errors(
        1.0, statuses=(503,), pattern="/nodes/*/*/*/migrate", methods=("POST",), times=1
    )
    result = plan.apply(confirm=True, poll=POLL)
    first = result.iloc[0]
    assert first["result"] == "failed" and "503" in first["error"]
    assert set(result["result"].iloc[1:]) == {"not started"}
    posts = migrate_posts(c)
    assert [p.status for p in posts] == [503]  # one POST, not retried, nothing after it
    with pytest.raises(PlanInvalidatedError):
        plan.apply(confirm=True)
    assert len(migrate_posts(c)) == 1


def test_a_failing_migration_task_stops_the_plan(fast_sim: Simulator, prod: pvekit.Cluster) -> None:
    plan = planning.evacuate(prod, "pve2")
    c = fast_sim["prod"]
    c.faults.fail_tasks("qmigrate", "migration aborted: target node is too busy")
    c.clear_requests()
    result = plan.apply(confirm=True, parallel=1, poll=POLL)
    failed = result[result["result"] == "failed"]
    assert len(failed) == 1 and "too busy" in failed["error"].iloc[0]
    # containers (vzmigrate) before the first VM went through; after the failure nothing starts
    idx = failed.index[0]
    assert set(result["result"].iloc[:idx]) <= {"done"}
    assert set(result["result"].iloc[idx + 1 :]) == {"not started"}
    posts = migrate_posts(c)
    assert len(posts) == idx + 1 and len({p.path for p in posts}) == len(posts)


def test_apply_refuses_a_plan_the_cluster_no_longer_matches(
    fast_sim: Simulator, prod: pvekit.Cluster
) -> None:
    plan = planning.evacuate(prod, "pve2")
    moved = plan.moves.iloc[0]
    prod.guest(int(moved["vmid"])).migrate(
        "pve3" if moved["target"] != "pve3" else "pve1",
        with_local_disks=bool(moved["with_local_disks"]),
    ).wait(poll=POLL, progress=False)
    fast_sim["prod"].clear_requests()
    with pytest.raises(PlanInvalidatedError, match=f"{moved['name']} .* is now on") as err:
        plan.apply(confirm=True)
    assert err.value.problems
    assert migrate_posts(fast_sim) == []
    with pytest.raises(InvalidInputError, match="confirm=True"):
        plan.apply(confirm="yes")  # type: ignore[arg-type]


def test_planning_on_a_group(fast_sim: Simulator) -> None:
    group = pvekit.Group(
        [
            pvekit.connect(**fast_sim[n].connect_kwargs(identity="root"), profile=n, cache=False)
            for n in ("prod", "lab")
        ]
    )
    try:
        inp = planning.PlanningInput.read(group)
        same = inp.copy(
            nodes=inp.nodes.replace({"node": {"pve": "pve1"}}),
            guests=inp.guests.replace({"node": {"pve": "pve1"}}),
        )
        with pytest.raises(InvalidInputError, match="pass profile="):
            planning.evacuate(same, "pve1")
        assert planning.evacuate(same, "pve1", profile="prod").can_empty
        w = planning.what_if(group, planning.guest_spec(cores=4, memory="8G", count=10))
        assert set(w.summary["profile"]) == {"prod", "lab"}
        lab = w.summary.set_index("profile").loc["lab"]
        assert lab["max_count_n_plus_1"] == 0  # one node: no failover
        t = planning.time_remaining(group)
        assert set(t["profile"]) == {"prod", "lab"}
        assert t.groupby("profile")["binding"].sum().tolist() == [1, 1]
        assert {"cpu", "memory"} <= set(t["resource"])
        r = planning.reclaimable(group)
        kinds = set(r.loc[r["profile"] == "prod", "kind"])
        assert {
            "unused disk",
            "orphaned disk",
            "unused template",
            "long stopped",
            "old snapshot",
        } <= kinds
        assert r["evidence"].notna().all()
    finally:
        group.close()


def test_simulator_refuses_what_proxmox_refuses(fast_sim: Simulator, prod: pvekit.Cluster) -> None:
    st = fast_sim["prod"].state
    with pytest.raises(pvekit.ServerError, match="uses local devices: hostpci0"):
        prod.guest(111).migrate("pve1")  # search-02
    local = next(
        g
        for g in st.guests.values()
        if g.running
        and g.type == "qemu"
        and not g.ha_state
        and not g.lock
        and any(d.storage == "local-lvm" for d in g.disks.values())
        and not any(k.startswith("hostpci") for k in g.config)
    )
    target = "pve1" if local.node != "pve1" else "pve2"
    with pytest.raises(pvekit.ServerError, match="without with-local-disks"):
        prod.guest(local.vmid).migrate(target)
    prod.guest(local.vmid).migrate(target, with_local_disks=True).wait(poll=POLL, progress=False)
    assert st.guests[local.vmid].node == target
