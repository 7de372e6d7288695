"""Guest lifecycle, migrate, clone and delete against the simulator: effects and refusals.

Also: no action is sent twice by a retry (fault injection, counting what the simulator
received), stale cached reads are dropped when a task ends, and every request the actions
make matches the official API schema (method, path, parameter names).
"""

from __future__ import annotations

import csv
import re
from typing import Any

import pytest
from _paths import ENDPOINTS_91

import pvekit
from pvekit import (
    APIError,
    ConnectionError,
    InvalidInputError,
    InvalidVMIDError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
)
from pvekit._guest import Guest, GuestStateError
from pvekit.sim import Simulator

POLL = 0.02
SCHEMA_TSV = ENDPOINTS_91


USED: set[int] = set()


def take(
    simx: Simulator, gtype: str = "qemu", running: bool | None = None, plain: bool = False
) -> int:
    """A guest no other test of this module touches, put in the wanted run state.

    ``plain``: one without host devices or local disks, so that a live migration needs
    nothing but ``online`` (the demo has both kinds for capacity planning).
    """
    st = simx["prod"].state
    with st.lock:
        for g in st.guests.values():
            if g.vmid in USED or g.template or g.lock or g.ha_state or g.type != gtype:
                continue
            if plain and _pinned(st, g):
                continue  # host devices or local disks: not the plain guest these tests want
            USED.add(g.vmid)
            if running is True and not g.running:
                g.status, g.started_at, g.paused = "running", st.clock.now(), False
            elif running is False and g.running:
                g.status, g.started_at, g.pid, g.paused = "stopped", None, 0, False
            st.changed()
            return g.vmid
    raise AssertionError(f"no unused {gtype} guest left")


def _pinned(st: Any, g: Any) -> bool:
    if any(k.startswith(("hostpci", "usb")) for k in g.config):
        return True
    return any(
        (d := st.storage_defs.get(disk.storage)) is not None and not d.shared
        for disk in g.disks.values()
    )


def posts(prod: Any, suffix: str) -> list[Any]:
    return [r for r in prod.requests if r.method == "POST" and r.path.endswith(suffix)]


def sim_guest(simx: Simulator, vmid: int) -> Any:
    return simx["prod"].state.guests.get(vmid)


# -- handle and resolution ----------------------------------------------------------------------


def test_handle_resolves_node_and_type(root: pvekit.Cluster, simx: Simulator) -> None:
    g = root.guest(146)
    assert isinstance(g, Guest)
    assert (g.node, g.type, g.name) == ("pve2", "lxc", "dns-01")
    assert g.path == "/nodes/pve2/lxc/146"
    assert "lxc 146 on pve2" in repr(g)


def test_unknown_and_invalid_vmids(root: pvekit.Cluster, prod: Any) -> None:
    with pytest.raises(NotFoundError, match="VMID 4242"):
        _ = root.guest(4242).node
    prod.clear_requests()
    for bad in (0, -5, "abc", 10**10):
        with pytest.raises(InvalidVMIDError):
            root.guest(bad)
    with pytest.raises(InvalidInputError, match="qemu"):
        Guest(root, 100, type="kvm")
    assert prod.requests == []


def test_given_type_must_match(root: pvekit.Cluster) -> None:
    with pytest.raises(NotFoundError, match="is a lxc"):
        Guest(root, 146, type="qemu").resolve()


# -- lifecycle ----------------------------------------------------------------------------------


def test_qemu_lifecycle_effects(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    vmid = take(simx, "qemu", running=False)
    g = root.guest(vmid)
    st = g.start().wait(poll=POLL, progress=False)
    assert st.ok and g.running
    g.suspend().wait(poll=POLL, progress=False)
    assert g.status()["qmpstatus"] == "paused"
    g.resume().wait(poll=POLL, progress=False)
    assert g.status()["qmpstatus"] == "running"
    g.reboot().wait(poll=POLL, progress=False)
    g.reset().wait(poll=POLL, progress=False)
    assert g.running
    g.shutdown(timeout=5, force_stop=True).wait(poll=POLL, progress=False)
    assert not g.running
    (shutdown,) = posts(prod, "/status/shutdown")
    assert shutdown.params == {"timeout": "5", "forceStop": "1"}
    g.start().wait(poll=POLL, progress=False)
    g.stop().wait(poll=POLL, progress=False)
    assert sim_guest(simx, vmid).status == "stopped"


def test_lxc_lifecycle_and_reset_refused_before_any_request(
    root: pvekit.Cluster, simx: Simulator, prod: Any
) -> None:
    vmid = take(simx, "lxc", running=False)
    g = Guest(root, vmid, node=sim_guest(simx, vmid).node, type="lxc")
    g.start().wait(poll=POLL, progress=False)
    assert g.running
    prod.clear_requests()
    with pytest.raises(InvalidInputError, match="only available for QEMU"):
        g.reset()
    with pytest.raises(InvalidInputError, match="QEMU"):
        g.suspend(to_disk=True)
    assert prod.requests == []
    g.shutdown().wait(poll=POLL, progress=False)
    assert not g.running


def test_wrong_state_is_refused_by_proxmox(root: pvekit.Cluster, simx: Simulator) -> None:
    running = root.guest(take(simx, "qemu", running=True))
    with pytest.raises(APIError, match="already running"):
        running.start()
    stopped = root.guest(take(simx, "qemu", running=False))
    with pytest.raises(APIError, match="not running"):
        stopped.shutdown()


def test_bad_arguments_are_refused_before_any_request(root: pvekit.Cluster, prod: Any) -> None:
    g = Guest(root, 100, node="pve1", type="qemu")
    prod.clear_requests()
    for call in (
        lambda: g.shutdown(timeout=-1),
        lambda: g.shutdown(force_stop="yes"),
        lambda: g.shutdown(timeout="10"),
    ):
        with pytest.raises(InvalidInputError):
            call()
    assert prod.requests == []


def test_auditor_cannot_act(simx: Simulator, root: pvekit.Cluster) -> None:
    auditor = pvekit.connect(**simx["prod"].connect_kwargs(identity="auditor"), cache=False)
    try:
        vmid = take(simx, "qemu", running=False)
        g = auditor.guest(vmid)
        assert g.node  # reading is allowed
        with pytest.raises(PermissionDeniedError):
            g.start()
        with pytest.raises(PermissionDeniedError):
            g.snapshot("audit-try")
        with pytest.raises(PermissionDeniedError):
            g.delete(confirm=vmid)
        with pytest.raises(PermissionDeniedError):
            g.migrate(next(n for n in ("pve1", "pve2", "pve3") if n != g.node))
        with pytest.raises(PermissionDeniedError):
            g.clone()
        model = sim_guest(simx, vmid)
        assert model.status == "stopped" and model.node == g.node and model.lock is None
    finally:
        auditor.close()


# -- no double sends ------------------------------------------------------------------------------


def test_failed_action_is_not_retried(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    g = root.guest(take(simx, "qemu", running=False))
    _ = g.node
    prod.faults.errors(
        1.0, statuses=(503,), pattern="/nodes/*/qemu/*/status/start", methods=("POST",), times=1
    )
    prod.clear_requests()
    with pytest.raises(ServerError):
        g.start()
    assert len(posts(prod, "/status/start")) == 1


def test_dropped_action_is_not_retried(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    g = root.guest(take(simx, "qemu", running=False))
    _ = g.node
    prod.faults.drop(1.0, pattern="/nodes/*/qemu/*/status/start", methods=("POST",), times=1)
    prod.clear_requests()
    with pytest.raises(ConnectionError):
        g.start()
    assert len(posts(prod, "/status/start")) == 1
    assert not g.running


def test_only_a_401_is_repeated(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    g = root.guest(take(simx, "qemu", running=False))
    _ = g.node
    prod.expire_tickets()
    prod.clear_requests()
    g.start().wait(poll=POLL, progress=False)
    sent = posts(prod, "/status/start")
    assert [r.status for r in sent] == [401, 200]
    assert g.running


# -- migrate ----------------------------------------------------------------------------------


def test_migrate_running_vm_live(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    vmid = take(simx, "qemu", running=True, plain=True)
    g = root.guest(vmid)
    source = g.node
    target = next(n for n in ("pve1", "pve2", "pve3") if n != source)
    t = g.migrate(target, bwlimit=10240)
    (sent,) = posts(prod, "/migrate")
    assert sent.path == f"/nodes/{source}/qemu/{vmid}/migrate"
    assert sent.params == {"target": target, "online": "1", "bwlimit": "10240"}
    t.wait(poll=POLL, progress=False)
    assert g.node == target and sim_guest(simx, vmid).node == target
    assert g.running


def test_migrate_container_uses_restart_mode(
    root: pvekit.Cluster, simx: Simulator, prod: Any
) -> None:
    vmid = take(simx, "lxc", running=True)
    g = root.guest(vmid)
    target = next(n for n in ("pve1", "pve2", "pve3") if n != g.node)
    with pytest.raises(InvalidInputError, match="live"):
        g.migrate(target, online=True)
    assert posts(prod, "/migrate") == []
    g.migrate(target).wait(poll=POLL, progress=False)
    (sent,) = posts(prod, "/migrate")
    assert sent.params == {"target": target, "restart": "1"}
    assert sim_guest(simx, vmid).node == target and g.node == target


def test_migrate_checks_target_before_sending(
    root: pvekit.Cluster, simx: Simulator, prod: Any
) -> None:
    g = root.guest(take(simx, "qemu", running=True))
    here = g.node
    other = next(n for n in ("pve1", "pve2", "pve3") if n != here)
    with pytest.raises(InvalidInputError, match="not in the cluster"):
        g.migrate("pve9")
    with pytest.raises(InvalidInputError, match="node name"):
        g.migrate("bad name!")
    with pytest.raises(GuestStateError, match="already on node"):
        g.migrate(here)
    with pytest.raises(GuestStateError, match="online=True"):
        g.migrate(other, online=False)
    prod.set_node_online(other, False)
    try:
        with pytest.raises(GuestStateError, match="not online"):
            g.migrate(other)
    finally:
        prod.set_node_online(other, True)
    assert posts(prod, "/migrate") == []


def test_stopped_vm_migrates_offline(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    vmid = take(simx, "qemu", running=False)
    g = root.guest(vmid)
    target = next(n for n in ("pve1", "pve2", "pve3") if n != g.node)
    g.migrate(target, with_local_disks=True, target_storage="local-lvm").wait(
        poll=POLL, progress=False
    )
    (sent,) = posts(prod, "/migrate")
    assert sent.params == {"target": target, "with-local-disks": "1", "targetstorage": "local-lvm"}
    assert sim_guest(simx, vmid).node == target


def test_handle_follows_a_guest_moved_by_someone_else(
    root: pvekit.Cluster, simx: Simulator, prod: Any
) -> None:
    vmid = take(simx, "qemu", running=True)
    mine = root.guest(vmid)
    source = mine.node
    target = next(n for n in ("pve1", "pve2", "pve3") if n != source)
    root.guest(vmid).migrate(target).wait(poll=POLL, progress=False)
    prod.clear_requests()
    mine.stop().wait(poll=POLL, progress=False)
    sent = posts(prod, "/status/stop")
    # The first POST reached the old node, which refused without doing anything.
    assert [(r.path.split("/")[2], r.status) for r in sent] == [(source, 500), (target, 200)]
    assert mine.node == target and sim_guest(simx, vmid).status == "stopped"


# -- clone -------------------------------------------------------------------------------------


def test_clone_to_next_free_vmid(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    vmid = take(simx, "qemu", running=False)
    g = root.guest(vmid)
    expected = int(root.get("/cluster/nextid", fresh=True))
    t = g.clone(name="copy-of-it")
    assert t.newid == expected
    t.wait(poll=POLL, progress=False)
    clone = sim_guest(simx, expected)
    assert clone is not None and clone.name == "copy-of-it" and clone.node == g.node
    (sent,) = posts(prod, "/clone")
    assert sent.params == {"newid": str(expected), "full": "1", "name": "copy-of-it"}
    assert root.guest(expected).exists()


def test_clone_template_linked_to_other_node(
    root: pvekit.Cluster, simx: Simulator, prod: Any
) -> None:
    template = root.guest(9001)  # on pve2
    t = template.clone(newid=777, target="pve1")
    t.wait(poll=POLL, progress=False)
    (sent,) = posts(prod, "/clone")
    assert sent.params == {"newid": "777", "full": "0", "target": "pve1"}
    assert sim_guest(simx, 777).node == "pve1"
    lxc = root.guest(9002)
    lxc.clone(newid=778, name="ct-copy", full=True).wait(poll=POLL, progress=False)
    assert posts(prod, "/clone")[-1].params == {"newid": "778", "full": "1", "hostname": "ct-copy"}


def test_clone_refusals(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    g = root.guest(take(simx, "qemu", running=False))
    with pytest.raises(InvalidInputError, match="already in use"):
        g.clone(newid=100)
    with pytest.raises(InvalidInputError, match="DNS name"):
        g.clone(name="no spaces allowed")
    with pytest.raises(InvalidInputError, match="not in the cluster"):
        g.clone(target="pve7")
    assert posts(prod, "/clone") == []


# -- delete ------------------------------------------------------------------------------------


def test_delete_needs_confirmation(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    vmid = take(simx, "qemu", running=False)
    g = Guest(root, vmid, node=sim_guest(simx, vmid).node, type="qemu")
    prod.clear_requests()
    for confirm in (None, True, vmid + 1, "yes"):
        with pytest.raises(InvalidInputError, match=f"confirm={vmid}"):
            g.delete(confirm=confirm)
    assert prod.requests == []
    g.delete(confirm=str(vmid)).wait(poll=POLL, progress=False)
    (sent,) = [r for r in prod.requests if r.method == "DELETE"]
    assert sent.params == {"destroy-unreferenced-disks": "1"}
    assert sim_guest(simx, vmid) is None and not g.exists()


def test_delete_refuses_running_guest_unless_stop_first(
    root: pvekit.Cluster, simx: Simulator, prod: Any
) -> None:
    vmid = take(simx, "lxc", running=True)
    g = root.guest(vmid)
    with pytest.raises(GuestStateError, match="stop_first=True"):
        g.delete(confirm=vmid)
    assert [r for r in prod.requests if r.method in ("POST", "DELETE")] == []
    g.delete(confirm=vmid, stop_first=True, purge=True).wait(poll=POLL, progress=False)
    assert [r.method for r in prod.requests if r.method in ("POST", "DELETE")] == ["POST", "DELETE"]
    assert next(r for r in prod.requests if r.method == "DELETE").params == {
        "purge": "1",
        "destroy-unreferenced-disks": "1",
    }
    assert sim_guest(simx, vmid) is None


# -- stale cached reads ----------------------------------------------------------------------------


def test_cached_reads_are_dropped_when_the_task_ends(simx: Simulator, prod: Any) -> None:
    prod.faults.slow_tasks(1.0, task_type="qmstart")  # long enough to read in between
    cached = pvekit.connect(**simx["prod"].connect_kwargs(identity="root"), cache="memory")
    try:
        vmid = take(simx, "qemu", running=False)
        g = cached.guest(vmid)
        status_path = f"{g.path}/status/current"
        assert cached.get(status_path)["status"] == "stopped"
        t = g.start()
        # Read while the task runs: the answer ("stopped") goes into the cache...
        assert cached.get(status_path)["status"] == "stopped"
        rows = cached.get("/cluster/resources", {"type": "vm"})
        assert next(r for r in rows if r["vmid"] == vmid)["status"] == "stopped"
        t.wait(poll=POLL, progress=False)
        # ...and is dropped when the task ends, so the next read is true.
        assert cached.get(status_path)["status"] == "running"
        rows = cached.get("/cluster/resources", {"type": "vm"})
        assert next(r for r in rows if r["vmid"] == vmid)["status"] == "running"
    finally:
        cached.close()


# -- schema ------------------------------------------------------------------------------------


def _official_endpoints() -> list[tuple[re.Pattern[str], str, set[str]]]:
    out = []
    with SCHEMA_TSV.open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            rx = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(row["path"]))
            names = {p.rstrip("*") for p in row["parameters"].split(",") if p}
            out.append((re.compile(f"^{rx}$"), row["method"], names))
    return out


def _allowed(name: str, names: set[str]) -> bool:
    if name in names:
        return True
    m = re.match(r"^([a-z]+)\d+$", name)
    return bool(m and f"{m.group(1)}[n]" in names)


def test_every_action_request_matches_the_official_schema(simx: Simulator) -> None:
    """Run every kind of action once and check what reached the server against the TSV."""
    endpoints = _official_endpoints()
    c = pvekit.connect(**simx["prod"].connect_kwargs(identity="root"), cache=False)
    prod = simx["prod"]
    try:
        prod.clear_requests()
        vm = c.guest(take(simx, "qemu", running=False))
        ct = c.guest(take(simx, "lxc", running=False))
        w = {"poll": POLL, "progress": False}
        for g in (vm, ct):
            g.start().wait(**w)
            g.suspend().wait(**w)
            g.resume().wait(**w)
            g.reboot().wait(**w)
            g.shutdown(timeout=10, force_stop=True).wait(**w)
            g.start().wait(**w)
            g.snapshot("walk", description="schema walk").wait(**w)
            g.rollback("walk", start=True).wait(**w)
            g.delete_snapshot("walk", force=True).wait(**w)
            g.update(cores=2, memory="1G", description="walked", onboot=True, tags=["walk"])
            g.resize(g.config()["disks"][-1]["key"], "+1G")
            g.backup(notes="{{guestname}}").wait(**w)
            g.delete_backup(g.backups()["volid"].iloc[0])
            g.vnc_proxy()
            target = next(n for n in ("pve1", "pve2", "pve3") if n != g.node)
            g.migrate(target, bwlimit=1000, with_local_disks=g.type == "qemu").wait(**w)
            g.stop().wait(**w)
            t = g.clone(name="walk-clone")
            t.wait(**w)
            c.guest(t.newid).delete(confirm=t.newid).wait(**w)
        vm.reset  # noqa: B018 - attribute exists; reset needs a running VM, done below
        vm.start().wait(**w)
        vm.reset().wait(**w)
        vm.agent.exec(["echo", "hi"])
        vm.agent.interfaces()
        vm.agent.filesystems()
        vm.stop().wait(**w)
        vol = vm.backups()["volid"].iloc[0]
        vm.restore(vol, force=True).wait(**w)
        vm.delete(confirm=vm.vmid, purge=True).wait(**w)
        checked = 0
        for r in prod.requests:
            match = [(m, n) for rx, m, n in endpoints if rx.match(r.path)]
            assert match, f"{r.path} is not an official path"
            methods = {m: n for m, n in match}
            assert r.method in methods, f"{r.method} {r.path} is not an official method"
            bad = [k for k in r.params if not _allowed(k, methods[r.method])]
            assert not bad, f"{r.method} {r.path}: unknown parameters {bad}"
            assert r.status != 400, f"{r.method} {r.path} was refused as invalid"
            checked += 1
        kinds = {
            (r.method, re.sub(r"/\d+|UPID[^/]*|[^/]*%3A[^/]*", "/X", r.path)) for r in prod.requests
        }
        assert checked > 100 and len(kinds) > 30
    finally:
        c.close()
