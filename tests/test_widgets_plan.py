"""PlanPanel driven through its Python API against the simulator: plan a maintenance or a
rebalance, confirm the plan shown, apply it and follow each migration.

As in tests/test_widgets.py, the autouse ``swallowed`` fixture fails a test during which a
widget callback or a background job raised (ipywidgets only logs those)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_widgets import swallowed  # noqa: F401  (autouse fixture)

import pvekit
from pvekit import InvalidInputError, planning
from pvekit.sim import Simulator
from pvekit.widgets import PlanPanel


@pytest.fixture
def simf() -> Iterator[Simulator]:
    """A demo simulator of its own whose tasks run 50 times faster than by default."""
    with Simulator("demo", task_scale=0.02) as sim:
        yield sim


def connect(sim: Simulator, identity: str = "root") -> Any:
    return pvekit.connect("prod", **sim["prod"].connect_kwargs(identity), cache=False)


def migrations(sim: Simulator, cluster: str = "prod") -> list[str]:
    return [r.path for r in sim[cluster].requests if r.method == "POST" and "migrate" in r.path]


def plan_for(panel: PlanPanel, *nodes: str, profile: str | None = None) -> planning.Plan:
    panel.select_nodes(*nodes, profile=profile)
    panel.plan_button.click()
    assert panel.wait_idle(60)
    assert panel.plan is not None, panel.message.value
    return panel.plan


def test_maintenance_is_planned_confirmed_applied_and_followed(simf: Simulator) -> None:
    c = connect(simf)
    panel = PlanPanel(c, poll=0.05)
    try:
        assert panel.nodes.options == ("pve1", "pve2", "pve3")
        assert panel.apply_reason() == "make a plan first" and panel.apply_button.disabled
        plan = plan_for(panel, "pve2")
        assert plan.kind == "evacuate" and plan.nodes == ("pve2",) and plan.can_empty
        moved = set(plan.moves["vmid"])
        assert len(moved) > 5
        # the plan on screen: its moves and what stays
        assert "k8s-worker-02" in panel.plan_view.value and "Not moved" in panel.plan_view.value
        assert panel.apply_reason() is None and not panel.apply_button.disabled
        panel.apply_button.click()
        assert panel.confirm_box.layout.display is None
        for vmid in moved:
            assert f"VM {vmid} (" in panel.confirm_text.value or f"container {vmid} (" in (
                panel.confirm_text.value
            )
        assert migrations(simf) == []  # nothing sent before the confirmation
        panel.confirm()
        assert panel.wait_idle(120)
        assert len(migrations(simf)) == len(plan.moves)
        res = panel.result
        assert res is not None and list(res["result"]) == ["done"] * len(plan.moves)
        assert f"{len(plan.moves)} of {len(plan.moves)} move(s) done" in panel.message.value
        state = simf["prod"].state.guests
        assert not [v for v, g in state.items() if g.node == "pve2" and g.status == "running"]
        for vmid in moved:
            target = plan.moves.set_index("vmid").loc[vmid, "target"]
            assert state[int(vmid)].node == target
        # every move has its own view, finished, fed by its migration task's log
        assert set(panel.task_views) == {("prod", int(v)) for v in moved}
        for (_, vmid), view in panel.task_views.items():
            assert view.done and view.ok and view.bar.value == 1.0
            assert str(vmid) in view.tail.value, view.tail.value  # its task's log
        assert "Result" in panel.result_view.value
        # the plan cannot be sent twice: Apply is off, a second confirm sends nothing
        assert "applied" in (panel.apply_reason() or "") and panel.apply_button.disabled
        panel.confirm()
        assert "nothing to confirm" in panel.message.value
        assert len(migrations(simf)) == len(plan.moves)
    finally:
        panel.close()
        c.close()


def test_the_confirmation_is_bound_to_the_plan_shown(simf: Simulator) -> None:
    c = connect(simf)
    panel = PlanPanel(c, poll=0.05)
    try:
        plan_for(panel, "pve1")
        panel.apply_button.click()
        assert panel.confirm_box.layout.display is None
        panel.select_nodes("pve2")  # another choice: the plan and its confirmation go
        assert panel.confirm_box.layout.display == "none" and panel.plan is None
        assert "plan again" in panel.plan_view.value
        panel.confirm()
        assert "nothing to confirm" in panel.message.value
        first = plan_for(panel, "pve2")
        panel.apply_button.click()
        panel.plan_button.click()  # planning again withdraws the confirmation too
        assert panel.wait_idle(60)
        assert panel.plan is not first and panel.confirm_box.layout.display == "none"
        panel.confirm()
        assert "nothing to confirm" in panel.message.value
        panel.apply_button.click()
        panel.cancel_button.click()
        assert "nothing was sent" in panel.message.value
        assert migrations(simf) == []
    finally:
        panel.close()
        c.close()


def test_a_plan_the_cluster_no_longer_matches_sends_nothing(simf: Simulator) -> None:
    c = connect(simf)
    panel = PlanPanel(c, poll=0.05)
    try:
        plan = plan_for(panel, "pve2")
        running = plan.moves[plan.moves["status"] == "running"].iloc[0]
        simf["prod"].state.guests[int(running["vmid"])].status = "stopped"  # behind its back
        simf["prod"].state.changed()
        panel.apply_button.click()
        panel.confirm()
        assert panel.wait_idle(60)
        assert "nothing was applied" in panel.message.value
        assert "changed" in panel.message.value and str(running["vmid"]) in panel.message.value
        assert migrations(simf) == []
        assert all(v.done and not v.ok for v in panel.task_views.values())
        assert panel.plan_button.disabled is False
    finally:
        panel.close()
        c.close()


def test_rebalance_mode(simf: Simulator) -> None:
    c = connect(simf)
    panel = PlanPanel(c)
    try:
        panel.mode.value = "rebalance"
        assert panel.nodes.layout.display == "none" and panel.by.layout.display is None
        panel.by.value = "memory"
        panel.max_moves.value = 1
        panel.plan_button.click()
        assert panel.wait_idle(60)
        plan = panel.plan
        assert plan is not None and plan.kind == "rebalance" and plan.by == "memory"
        expected = planning.rebalance(c, by="memory", max_moves=1)
        assert list(plan.moves["vmid"]) == list(expected.moves["vmid"])
        assert list(plan.moves["target"]) == list(expected.moves["target"])
        assert len(plan.moves) <= 1
    finally:
        panel.close()
        c.close()


def test_auditor_sees_the_plan_but_cannot_apply(simf: Simulator) -> None:
    c = connect(simf, "auditor")
    panel = PlanPanel(c)
    try:
        plan = plan_for(panel, "pve2")
        assert len(plan.moves) and "k8s-worker-02" in panel.plan_view.value
        reason = panel.apply_reason()
        assert reason is not None and "VM.Migrate" in reason
        assert panel.apply_button.disabled and "VM.Migrate" in panel.apply_button.tooltip
        panel.apply_button.click()  # a click on the disabled button from code
        assert "cannot apply" in panel.message.value
        assert panel.confirm_box.layout.display == "none"
        assert migrations(simf) == []
    finally:
        panel.close()
        c.close()


def test_read_only_and_bad_choices(simf: Simulator) -> None:
    c = connect(simf)
    panel = PlanPanel(c, read_only=True)
    try:
        assert panel.apply_button not in panel.children
        assert panel.confirm_box not in panel.children
        plan_for(panel, "pve3")
        assert panel.apply_reason() == "the panel is read-only"
        with pytest.raises(InvalidInputError, match="nope"):
            panel.select_nodes("nope")
        panel.nodes.value = ()
        panel.plan_button.click()
        assert "choose the node" in panel.message.value
    finally:
        panel.close()
        c.close()
    with pytest.raises(InvalidInputError, match="parallel"):
        PlanPanel(c, parallel=0)


def test_group_profile_and_a_node_that_cannot_be_emptied(simf: Simulator) -> None:
    group = pvekit.Group(
        {
            name: pvekit.connect(name, **simf[name].connect_kwargs("root"), cache=False)
            for name in ("prod", "lab")
        }
    )
    panel = PlanPanel(group)
    try:
        assert panel.profile.options == ("prod", "lab")
        plan = plan_for(panel, "pve", profile="lab")
        assert not plan.can_empty and plan.moves.empty
        assert "cannot be emptied" in panel.plan_view.value
        assert panel.apply_reason() == "the plan moves nothing"
    finally:
        panel.close()
        group.close()
