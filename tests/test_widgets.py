"""GuestPanel and Dashboard driven through their Python API against the simulator.

No browser: buttons are pressed with ``click()``, choices made by setting trait values, and the
effects checked in the simulator's state and in what the panel shows. ipywidgets only logs
exceptions raised in ``on_click`` callbacks, and the panels log unexpected errors of their
background jobs: the autouse ``swallowed`` fixture fails any test during which such a record
appears.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import pytest

import pvekit
from pvekit.widgets import Dashboard, GuestPanel, Permissions
from pvekit.widgets._actions import guest_reason

if TYPE_CHECKING:
    from pvekit import Cluster
    from pvekit.sim import Simulator

WATCHED = ("traitlets", "ipywidgets", "pvekit.widgets")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def swallowed() -> Iterator[_Collector]:
    """Fail the test if a widget callback or background job raised (they only log)."""
    collector = _Collector()
    loggers = [logging.getLogger(name) for name in WATCHED]
    for lg in loggers:
        lg.addHandler(collector)
    try:
        yield collector
    finally:
        for lg in loggers:
            lg.removeHandler(collector)
    problems = [f"{r.name}: {r.getMessage()}" for r in collector.records]
    assert not problems, f"widget callbacks raised: {problems}"


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def sim_guest(sim: Simulator, vmid: int, cluster: str = "prod") -> Any:
    return sim[cluster].state.guests[vmid]


def posts(sim: Simulator) -> list[str]:
    return [r.path for r in sim.requests if r.method == "POST" and "access/ticket" not in r.path]


@pytest.fixture
def fresh_sim() -> Iterator[Simulator]:
    """A demo simulator of its own whose tasks run ten times faster than by default."""
    from pvekit.sim import Simulator

    with Simulator("demo", task_scale=0.1) as sim:
        yield sim


@pytest.fixture
def cluster(fresh_sim: Simulator) -> Iterator[Cluster]:
    """The demo ``prod`` cluster under its own profile name, root password, no cache."""
    c = pvekit.connect("prod", **fresh_sim["prod"].connect_kwargs(identity="root"), cache=False)
    yield c
    c.close()


@pytest.fixture
def panel(cluster: Cluster) -> Iterator[GuestPanel]:
    p = GuestPanel(cluster, poll=0.05)
    yield p
    p.wait_idle(30)
    p.close()


def visible_vmids(p: GuestPanel) -> list[int]:
    return [int(v) for v in p.visible["vmid"]] if len(p.visible) else []


# --------------------------------------------------------------------------- the fixture -----


def test_swallowed_fixture_sees_on_click_errors(swallowed: _Collector) -> None:
    button = w.Button()
    button.on_click(lambda _b: 1 / 0)
    button.click()  # ipywidgets catches the ZeroDivisionError and only logs it
    assert any("ZeroDivisionError" in str(r.exc_info) for r in swallowed.records)
    swallowed.records.clear()


def test_unexpected_error_in_background_job_is_logged(
    panel: GuestPanel, swallowed: _Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fresh: bool = False) -> Any:
        raise RuntimeError("bug in a read")

    monkeypatch.setattr(panel._src, "guests", broken)
    panel.refresh_button.click()
    assert panel.wait_idle(20)
    assert any(r.levelno == logging.ERROR and r.name == "pvekit.widgets" for r in swallowed.records)
    swallowed.records.clear()


# --------------------------------------------------------------------------- list ------------


def test_list_shows_every_guest_with_key_columns(panel: GuestPanel, cluster: Cluster) -> None:
    frame = cluster.guests()
    assert len(panel.guest_list.options) == len(frame) == len(panel.frame)
    label, value = panel.guest_list.options[0]
    row = frame.sort_values("vmid").iloc[0]
    assert value == f"prod/{row['vmid']}"
    for cell in ("prod", str(row["vmid"]), row["name"], row["node"], row["status"]):
        assert cell in label.replace("\u00a0", " ")
    assert "64 shown of 64" in panel.title.value


def test_filters_narrow_the_list(panel: GuestPanel, cluster: Cluster) -> None:
    frame = cluster.guests()
    panel.filters["status"].value = "stopped"
    assert sorted(visible_vmids(panel)) == sorted(frame[frame.status == "stopped"].vmid)
    panel.filters["status"].value = ""
    panel.filters["type"].value = "lxc"
    panel.filters["tag"].value = "infra"
    want = frame[(frame.type == "lxc") & frame.tags.map(lambda t: "infra" in t)]
    assert sorted(visible_vmids(panel)) == sorted(want.vmid)
    panel.filters["type"].value = ""
    panel.filters["tag"].value = ""
    panel.filters["node"].value = "pve2"
    panel.filters["search"].value = "K8S worker"
    want = frame[frame.name.str.contains("k8s-worker") & (frame.node == "pve2")]
    assert sorted(visible_vmids(panel)) == sorted(want.vmid) and len(want) >= 2
    assert "shown of 64" in panel.title.value


def test_select_only_what_is_shown(panel: GuestPanel) -> None:
    panel.filters["node"].value = "pve1"
    with pytest.raises(pvekit.InvalidInputError, match="not in the"):
        panel.select(101)  # on pve2: hidden by the filter
    panel.select(100)
    assert list(panel.selection.vmid) == [100]
    panel.filters["node"].value = "pve2"  # hides the selected guest: it leaves the selection
    assert panel.selection.empty


def test_panel_refresh_does_not_stack(panel: GuestPanel, fresh_sim: Simulator) -> None:
    fresh_sim["prod"].faults.latency(0.5, pattern="/cluster/resources", times=1)
    fresh_sim.clear_requests()
    assert panel.refresh()
    assert panel.refresh_button.disabled
    assert not panel.refresh()
    panel.refresh_button.click()  # ignored as well
    assert panel.wait_idle(30)
    assert not panel.refresh_button.disabled
    assert len([r for r in fresh_sim.requests if r.path == "/access/permissions"]) == 1


# --------------------------------------------------------------------------- rules -----------


def test_buttons_follow_type_state_and_lock(panel: GuestPanel) -> None:
    def enabled() -> set[str]:
        return {n for n, b in panel.buttons.items() if not b.disabled}

    panel.select(100)  # running VM
    assert enabled() == {
        "shutdown",
        "stop",
        "reboot",
        "reset",
        "suspend",
        "snapshot",
        "backup",
        "migrate",
    }
    panel.select(123)  # stopped VM
    assert enabled() == {"start", "snapshot", "backup", "migrate"}
    panel.select(146)  # running container: no reset, no suspend
    assert enabled() == {"shutdown", "stop", "reboot", "snapshot", "backup", "migrate"}
    assert "containers cannot be reset" in panel.buttons["reset"].tooltip
    panel.select(9000)  # template
    assert enabled() == {"backup", "migrate"}
    assert "template" in panel.buttons["start"].tooltip
    panel.select(139)  # locked by a snapshot
    assert enabled() == set()
    assert "locked (snapshot)" in panel.buttons["start"].tooltip
    panel.select(100, 123)  # mixed states, different nodes
    assert enabled() == {"backup"}
    assert panel.reason("migrate") == "select guests on one node"
    assert panel.reason("snapshot") == "select exactly one guest"
    panel.select(100, 103)  # both running on pve1
    assert "migrate" in enabled() and "stop" in enabled()


def test_guest_rules_for_paused_and_hibernated() -> None:
    paused = {"vmid": 1, "type": "qemu", "status": "paused"}
    assert guest_reason("resume", paused) is None
    assert guest_reason("suspend", paused) == "is paused"
    assert guest_reason("stop", paused) is None
    hibernated = {"vmid": 2, "type": "qemu", "status": "stopped", "lock": "suspended"}
    assert guest_reason("start", hibernated) is None
    assert guest_reason("backup", hibernated) == "locked (suspended)"
    assert (
        guest_reason(
            "resume", {"vmid": 3, "type": "qemu", "status": "running", "qmpstatus": "paused"}
        )
        is None
    )


def test_permissions_resolution() -> None:
    perms = Permissions(
        {
            "/": {"Sys.Audit": 1, "VM.Audit": 1},
            "/vms": {"VM.Audit": 1, "VM.PowerMgmt": 0},
            "/vms/101": {"VM.Snapshot": 0, "VM.Audit": 1},
            "/pool/dev": {"VM.Backup": 1},
        }
    )
    assert perms.allows("VM.PowerMgmt", "/vms")  # listed on the path itself
    assert not perms.allows("VM.PowerMgmt", "/vms/100")  # not propagated below /vms
    assert perms.allows("VM.Audit", "/vms/100")
    assert perms.allows("VM.Snapshot", "/vms/101")  # exact path, propagate flag irrelevant
    assert not perms.allows("VM.Snapshot", "/vms/102")
    assert not perms.allows("VM.Backup", "/vms/102")
    assert perms.allows("VM.Backup", "/vms/102", pool="dev")
    assert not Permissions({}).allows("VM.Audit", "/")


def test_auditor_gets_no_enabled_action(fresh_sim: Simulator) -> None:
    auditor = pvekit.connect("prod", **fresh_sim["prod"].connect_kwargs("auditor"), cache=False)
    try:
        p = GuestPanel(auditor)
        assert p.permissions["prod"].allows("VM.Audit", "/vms/100")
        p.select(100)
        assert all(b.disabled for b in p.buttons.values())
        assert "not allowed (VM.PowerMgmt on /vms/100)" in p.buttons["stop"].tooltip
        p.buttons["stop"].click()  # a click from code on a disabled button does nothing
        assert "not allowed" in p.message.value
        assert p.confirm_box.layout.display == "none"
        assert not posts(fresh_sim)
        p.close()
    finally:
        auditor.close()
    reads = [r for r in fresh_sim.requests if r.path == "/access/permissions"]
    assert reads and all(r.method == "GET" for r in reads)


def test_read_only_panel_has_no_actions(cluster: Cluster) -> None:
    p = GuestPanel(cluster, read_only=True)
    try:
        assert p.buttons == {}

        def walk(widget: w.Widget) -> Iterator[w.Widget]:
            yield widget
            for child in getattr(widget, "children", ()):
                yield from walk(child)

        classes = {c for wd in walk(p) for c in getattr(wd, "_dom_classes", ())}
        assert "pvekit-guest-list" in classes
        assert not {c for c in classes if c.startswith("pvekit-action")}
        assert "pvekit-confirm-box" not in classes
        assert p.reason("start") == "the panel is read-only"
    finally:
        p.close()


# --------------------------------------------------------------------------- actions ---------


def test_start_runs_in_background_then_list_refreshes(
    panel: GuestPanel, fresh_sim: Simulator
) -> None:
    fresh_sim["prod"].faults.slow_tasks(1000, "qmstart")
    panel.select(123)
    panel.buttons["start"].click()  # returns at once: the task runs in the background
    assert panel.busy
    view = panel.task_views[0]
    assert "prod" in view.title.value and "123" in view.title.value
    wait_for(lambda: "running" in view.state.value)
    assert sim_guest(fresh_sim, 123).status == "stopped"
    assert panel.buttons["start"].disabled  # busy guest: no second start
    assert "still running" in panel.buttons["start"].tooltip
    fresh_sim.clock.advance(1001)
    assert panel.wait_idle(30)
    assert sim_guest(fresh_sim, 123).status == "running"
    assert view.ok and view.bar.value == 1.0 and view.bar.bar_style == "success"
    assert panel.frame.set_index("vmid").loc[123, "status"] == "running"  # re-read fresh
    assert "running" in dict((v, k) for k, v in panel.guest_list.options)["prod/123"]
    assert not panel.buttons["shutdown"].disabled  # the selection survived the refresh


def test_stop_asks_for_confirmation_of_exactly_that_selection(
    panel: GuestPanel, fresh_sim: Simulator
) -> None:
    panel.select(100)
    panel.buttons["stop"].click()
    assert panel.confirm_box.layout.display != "none"
    text = panel.confirm_text.value
    assert "web-01" in text and "profile prod" in text and "node pve1" in text
    assert not posts(fresh_sim)
    panel.filters["tag"].value = "web"  # still shows and selects 100: confirmation stays
    assert panel.confirm_box.layout.display != "none"
    panel.select(101)  # another guest: the confirmation is gone
    assert panel.confirm_box.layout.display == "none"
    panel.confirm()
    assert "nothing to confirm" in panel.message.value
    panel.select(100, 101)
    panel.confirm()
    assert panel.wait_idle(10)
    assert not posts(fresh_sim)
    assert sim_guest(fresh_sim, 100).status == "running"
    assert sim_guest(fresh_sim, 101).status == "running"

    panel.select(100)
    panel.buttons["stop"].click()
    panel.cancel_button.click()
    assert panel.confirm_box.layout.display == "none" and not posts(fresh_sim)

    panel.buttons["stop"].click()
    panel.confirm_button.click()
    assert panel.wait_idle(30)
    assert sim_guest(fresh_sim, 100).status == "stopped"
    assert sim_guest(fresh_sim, 101).status == "running"
    assert posts(fresh_sim) == ["/nodes/pve1/qemu/100/status/stop"]
    assert panel.selection.iloc[0]["status"] == "stopped"


def test_suspend_then_resume_uses_the_qmp_state(panel: GuestPanel, fresh_sim: Simulator) -> None:
    panel.select(100)
    assert panel.wait_idle(20)  # the QMP probe of the selected running VM
    assert panel.reason("resume") == "100 web-01 is running, not paused"
    panel.buttons["suspend"].click()
    assert panel.wait_idle(30)
    assert sim_guest(fresh_sim, 100).paused
    # /cluster/resources still says "running"; the probe after the refresh says "paused".
    assert panel.selection.iloc[0]["status"] == "running"
    assert panel.reason("resume") is None
    assert panel.reason("suspend") == "100 web-01 is paused"
    assert panel.reason("shutdown") == "100 web-01 is paused"
    assert "web-01 (paused)" in panel.summary.value
    panel.buttons["resume"].click()
    assert panel.wait_idle(30)
    assert not sim_guest(fresh_sim, 100).paused
    assert panel.reason("suspend") is None


def test_confirmation_rechecks_the_action(panel: GuestPanel, fresh_sim: Simulator) -> None:
    panel.select(101)
    panel.buttons["stop"].click()
    fresh_sim["prod"].state.guests[101].status = "stopped"  # stopped behind the panel's back
    fresh_sim["prod"].state.changed()
    panel.refresh(wait=True)
    assert panel.confirm_box.layout.display != "none"  # same guest, same node: still pending
    panel.confirm()
    assert "no longer possible" in panel.message.value and "is stopped" in panel.message.value
    assert panel.wait_idle(10)
    assert not posts(fresh_sim)


def test_task_failure_shows_proxmox_message(panel: GuestPanel, fresh_sim: Simulator) -> None:
    fresh_sim["prod"].faults.fail_tasks("qmstart", "start failed: QEMU exited with code 1")
    panel.select(123, 136)
    panel.buttons["start"].click()
    assert panel.wait_idle(30)
    assert [v.ok for v in panel.task_views[:2]] == [False, False]
    assert "QEMU exited with code 1" in panel.task_views[0].state.value
    assert "TASK ERROR" in panel.task_views[0].tail.value
    assert "2 of 2 failed" in panel.message.value
    assert "QEMU exited with code 1" in panel.message.value
    assert sim_guest(fresh_sim, 123).status == "stopped"


def test_refused_request_shows_proxmox_message(
    fresh_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pvekit.widgets._common import Source

    # Pretend the permissions allowed it: Proxmox still refuses, and the panel says why.
    monkeypatch.setattr(
        Source, "permissions", lambda self: {"prod": Permissions({"/": {"VM.PowerMgmt": 1}})}
    )
    auditor = pvekit.connect("prod", **fresh_sim["prod"].connect_kwargs("auditor"), cache=False)
    p = GuestPanel(auditor, poll=0.05)
    try:
        p.select(123)
        p.buttons["start"].click()
        assert p.wait_idle(30)
        assert p.task_views[0].ok is False
        error = p.task_views[0].error or ""
        assert "403" in error and "Permission check failed" in error
        assert "Permission check failed" in p.message.value
        assert sim_guest(fresh_sim, 123).status == "stopped"
    finally:
        p.close()
        auditor.close()


# --------------------------------------------------------------------------- dialogs ---------


def test_migrate_dialog_lists_other_online_nodes(panel: GuestPanel, fresh_sim: Simulator) -> None:
    panel.select(100)  # on pve1
    panel.buttons["migrate"].click()
    dialog = panel._dialog
    assert dialog is not None and dialog.kind == "migrate"
    targets = dialog.parts["target"]
    assert {v for _, v in targets.options} == {"pve2", "pve3"}
    assert all("free memory" in label for label, _ in targets.options)
    panel.select(101)  # selection changed: the dialog closes
    assert panel._dialog is None and panel.dialog_box.children == ()

    fresh_sim["prod"].set_node_online("pve3", False)
    panel.refresh(wait=True)
    panel.select(100)
    panel.buttons["migrate"].click()
    dialog = panel._dialog
    assert dialog is not None
    assert [v for _, v in dialog.parts["target"].options] == ["pve2"]
    dialog.parts["go"].click()
    assert panel.wait_idle(60)
    assert panel.task_views[0].ok, panel.task_views[0].error
    assert sim_guest(fresh_sim, 100).node == "pve2"
    assert panel.frame.set_index("vmid").loc[100, "node"] == "pve2"


def test_backup_dialog_offers_backup_storages(
    panel: GuestPanel, cluster: Cluster, fresh_sim: Simulator
) -> None:
    panel.select(123)
    panel.buttons["backup"].click()
    dialog = panel._dialog
    assert dialog is not None and dialog.kind == "backup"
    storage = cluster.storage()
    node = panel.selection.iloc[0]["node"]
    want = storage[
        (storage.node == node)
        & storage.content.map(lambda c: "backup" in c)
        & storage.active.fillna(False)
    ].storage
    offered = [v for _, v in dialog.parts["storage"].options]
    assert sorted(offered) == sorted(want) and "local-lvm" not in offered
    dialog.parts["storage"].value = "nfs-backup"
    dialog.parts["go"].click()
    assert panel.wait_idle(60)
    assert panel.task_views[0].ok, panel.task_views[0].error
    backups = cluster.backups()
    assert ((backups.vmid == 123) & (backups.storage == "nfs-backup")).any()


def test_snapshot_manager_create_rollback_delete(panel: GuestPanel, fresh_sim: Simulator) -> None:
    panel.select(136)
    panel.buttons["snapshot"].click()
    assert panel.wait_idle(20)
    dialog = panel._dialog
    assert dialog is not None and dialog.kind == "snapshot"
    listing = dialog.parts["list"]
    assert [v for _, v in listing.options] == ["before-upgrade"]

    dialog.parts["name"].value = "1bad name"
    dialog.parts["create"].click()
    assert "snapshot name" in panel.message.value

    dialog.parts["name"].value = "pre-test"
    dialog.parts["create"].click()
    assert panel.wait_idle(30)
    assert "pre-test" in [s.name for s in sim_guest(fresh_sim, 136).snapshots]
    assert sorted(v for _, v in listing.options) == ["before-upgrade", "pre-test"]

    listing.value = "before-upgrade"
    dialog.parts["rollback"].click()
    assert "before-upgrade" in panel.confirm_text.value
    assert "profile prod" in panel.confirm_text.value
    listing.value = "pre-test"  # another snapshot: the confirmation is dropped
    assert panel.confirm_box.layout.display == "none"

    dialog.parts["delete"].click()
    assert "pre-test" in panel.confirm_text.value
    panel.confirm()
    assert panel.wait_idle(30)
    assert [s.name for s in sim_guest(fresh_sim, 136).snapshots] == ["before-upgrade"]
    assert [v for _, v in listing.options] == ["before-upgrade"]
    assert not [p for p in posts(fresh_sim) if "rollback" in p]


# --------------------------------------------------------------------------- group -----------


def test_group_panel_spans_profiles(fresh_sim: Simulator) -> None:
    group = pvekit.Group(
        [
            pvekit.connect(name, **{k: v for k, v in c.connect_kwargs().items()}, cache=False)
            for name, c in fresh_sim.clusters.items()
        ]
    )
    p = GuestPanel(group, poll=0.05)
    try:
        assert set(p.frame.profile) == {"prod", "lab"}
        assert {v for _, v in p.filters["profile"].options} == {"", "prod", "lab"}
        p.filters["profile"].value = "lab"
        assert set(p.visible.profile) == {"lab"}
        lab = p.visible[p.visible.status == "stopped"].iloc[0]
        p.select(("lab", int(lab.vmid)))
        p.buttons["start"].click()
        assert p.wait_idle(30)
        assert sim_guest(fresh_sim, int(lab.vmid), "lab").status == "running"
    finally:
        p.close()
        group.close()


# --------------------------------------------------------------------------- dashboard -------


def test_dashboard_shows_charts_and_status(cluster: Cluster) -> None:
    d = Dashboard(cluster)
    try:
        assert d.refreshes == 1
        for name, fig in d.figures.items():
            assert len(fig.data) >= 1, name
        nodes = d.figures["nodes"]
        assert any("pve1" in list(t.x if t.x is not None else t.y) for t in nodes.data)
        assert "prod" in d.status.value and "pvekit-status-ok" in d.status.value
        # What a view built later (Voila, a reload) renders: the synced state, not the edits.
        for name, fig in d.figures.items():
            synced = fig.get_state()["_widget_data"]
            assert len(synced) == len(fig.data) >= 1, name
        assert d.refresh(wait=True)
        assert d.refreshes == 2
    finally:
        d.close()


def test_dashboard_refresh_never_stacks(cluster: Cluster, fresh_sim: Simulator) -> None:
    d = Dashboard(cluster, charts=("nodes",))
    try:
        fresh_sim.clear_requests()
        assert d.refresh(wait=True)
        per_refresh = len(fresh_sim.requests)
        assert per_refresh > 0
        fresh_sim.clear_requests()
        fresh_sim["prod"].faults.latency(1.0, pattern="/cluster/resources", times=1)
        assert d.refresh()
        assert d.in_flight and d.refresh_button.disabled
        assert not d.tick() and not d.refresh() and not d.tick()
        assert d.skipped == 2
        assert d.wait_idle(30)
        assert len(fresh_sim.requests) == per_refresh  # one refresh's worth, nothing stacked
        assert not d.refresh_button.disabled and d.refreshes == 3
    finally:
        d.close()


def test_dashboard_auto_refresh_and_close(cluster: Cluster) -> None:
    d = Dashboard(cluster, refresh_interval=0.05, charts=("overview",))
    try:
        assert d.interval.value == 0.05
        wait_for(lambda: d.refreshes >= 3)
        d.interval.value = 0  # off
        assert d.refresh_interval is None
    finally:
        d.close()
    assert d._timer is not None
    d._timer.join(5)
    assert not d._timer.is_alive()


def test_dashboard_rejects_bad_arguments(cluster: Cluster) -> None:
    with pytest.raises(pvekit.InvalidInputError, match="refresh_interval"):
        Dashboard(cluster, refresh_interval=-1)
    with pytest.raises(pvekit.InvalidInputError, match="unknown chart"):
        Dashboard(cluster, charts=("pie",))
    with pytest.raises(pvekit.InvalidInputError, match="Cluster or Group"):
        GuestPanel(object())  # type: ignore[arg-type]


def test_group_with_a_cluster_down_shows_the_others(fresh_sim: Simulator) -> None:
    group = pvekit.Group(
        [
            pvekit.connect(n, **c.connect_kwargs(), cache=False, retries=0)
            for n, c in fresh_sim.clusters.items()
        ]
    )
    fresh_sim["lab"].stop()
    try:
        with pytest.warns(UserWarning):
            p = GuestPanel(group, poll=0.05)
        assert set(p.frame.profile) == {"prod"} and len(p.frame) == 64
        assert "profile lab unreachable" in p.message.value
        p.close()
        with pytest.warns(UserWarning):
            d = Dashboard(group, charts=("nodes",))
        assert "pvekit-status-down" in d.status.value and "lab" in d.status.value
        assert len(d.figures["nodes"].data) >= 1
        d.close()
    finally:
        group.close()
