"""Snapshots (names validated as Proxmox does) and backups (vzdump, restore, delete)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pvekit
from pvekit import InvalidInputError, NotFoundError, PermissionDeniedError
from pvekit._guest import Guest, GuestStateError, validate_snapshot_name
from pvekit.sim import Simulator
from pvekit.sim._schema import load_schema

POLL = 0.02
W = {"poll": POLL, "progress": False}


def writes(prod: Any) -> list[Any]:
    return [r for r in prod.requests if r.method != "GET"]


def sim_guest(simx: Simulator, vmid: int) -> Any:
    return simx["prod"].state.guests.get(vmid)


# -- snapshot names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ab", "before-upgrade", "pre_patch_2025", "A1", "x" * 40])
def test_valid_snapshot_names(name: str) -> None:
    assert validate_snapshot_name(name) == name


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("", "empty"),
        ("a", "at least 2"),
        ("1st", "start with a letter"),
        ("-x", "start with a letter"),
        ("has space", "only letters"),
        ("dot.ted", "only letters"),
        ("x" * 41, "at most 40"),
        ("current", "reserved"),
        ("Pending", "reserved"),
        (None, "string"),
        (5, "string"),
    ],
)
def test_invalid_snapshot_names(name: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        validate_snapshot_name(name)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcXYZ019_-. é", min_size=0, max_size=45))
def test_snapshot_names_agree_with_the_official_schema(name: str) -> None:
    """Whatever pvekit accepts, the schema's snapname check accepts, and vice versa."""
    schema = load_schema()
    problems = schema.validate(
        "POST", "/nodes/pve1/qemu/100/snapshot", {"snapname": name} if name else {}
    )
    schema_ok = "snapname" not in problems and bool(name)
    try:
        validate_snapshot_name(name)
        ours = True
    except InvalidInputError:
        ours = False
    if name.lower() in ("current", "pending"):
        assert not ours  # reserved by the guest code, not by the schema
    else:
        assert ours == schema_ok


# -- snapshots ------------------------------------------------------------------------------------


def test_snapshot_rollback_delete_cycle(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    g = root.guest(136)  # stopped VM with one snapshot
    before = set(g.snapshots()["name"])
    g.snapshot("pre-change", description="before the change").wait(**W)
    snaps = g.snapshots()
    row = snaps[snaps["name"] == "pre-change"].iloc[0]
    assert row["description"] == "before the change" and row["vmid"] == 136
    assert row["node"] == g.node and row["guest_type"] == "qemu"
    assert set(snaps["name"]) == before | {"pre-change"}
    assert "current" not in set(snaps["name"])
    sent = writes(prod)[0]
    assert sent.path == f"{g.path}/snapshot"
    assert sent.params == {"snapname": "pre-change", "description": "before the change"}
    # Change state after the snapshot, then roll back: the guest returns to it.
    g.start().wait(**W)
    g.rollback("pre-change").wait(**W)
    assert not g.running and sim_guest(simx, 136).parent_snapshot == "pre-change"
    g.rollback("pre-change", start=True).wait(**W)
    assert g.running
    g.delete_snapshot("pre-change").wait(**W)
    assert set(g.snapshots()["name"]) == before


def test_vmstate_snapshot_of_running_vm(root: pvekit.Cluster, prod: Any) -> None:
    g = root.guest(116)
    g.snapshot("with-ram", vmstate=True).wait(**W)
    assert writes(prod)[0].params == {"snapname": "with-ram", "vmstate": "1"}
    snaps = g.snapshots()
    assert bool(snaps[snaps["name"] == "with-ram"]["vmstate"].iloc[0])


def test_container_snapshots(root: pvekit.Cluster, prod: Any) -> None:
    g = root.guest(152)
    with pytest.raises(InvalidInputError, match="QEMU"):
        g.snapshot("ram", vmstate=True)
    assert writes(prod) == []
    g.snapshot("ct-snap").wait(**W)
    assert "ct-snap" in set(g.snapshots()["name"])
    g.delete_snapshot("ct-snap", force=True).wait(**W)
    assert writes(prod)[-1].params == {"force": "1"}
    assert "ct-snap" not in set(g.snapshots()["name"])


def test_snapshot_refusals(root: pvekit.Cluster, prod: Any) -> None:
    g = root.guest(117)
    for bad in ("1bad", "no spaces", "current"):
        with pytest.raises(InvalidInputError):
            g.snapshot(bad)
        with pytest.raises(InvalidInputError):
            g.rollback(bad)
        with pytest.raises(InvalidInputError):
            g.delete_snapshot(bad)
    assert writes(prod) == []
    with pytest.raises(NotFoundError, match="does not exist"):
        g.rollback("never-taken")
    g.snapshot("twice").wait(**W)
    with pytest.raises(pvekit.APIError, match="already used"):
        g.snapshot("twice")


# -- backups --------------------------------------------------------------------------------------


def test_backup_appears_in_storage_content(root: pvekit.Cluster, prod: Any) -> None:
    g = root.guest(118)
    before = set(g.backups()["volid"])
    t = g.backup(storage="nfs-backup", mode="stop", compress="gzip", notes="{{guestname}} nightly")
    assert t.type == "vzdump" and t.vmid == 118
    t.wait(**W)
    (sent,) = writes(prod)
    assert sent.path == f"/nodes/{g.node}/vzdump"
    assert sent.params == {
        "vmid": "118",
        "storage": "nfs-backup",
        "mode": "stop",
        "compress": "gzip",
        "notes-template": "{{guestname}} nightly",
        "remove": "0",
    }
    after = g.backups()
    new = after[~after["volid"].isin(before)]
    assert len(new) == 1
    row = new.iloc[0]
    assert row["storage"] == "nfs-backup" and row["vmid"] == 118
    assert row["notes"] == "logs-01 nightly" and row["volid"].endswith(".vma.gz")
    content = root.get(
        f"/nodes/{g.node}/storage/nfs-backup/content", {"content": "backup"}, fresh=True
    )
    assert row["volid"] in {c["volid"] for c in content}


def test_backup_default_storage_is_first_backup_capable(root: pvekit.Cluster, prod: Any) -> None:
    g = root.guest(153)
    storages = root.get(f"/nodes/{g.node}/storage", {"content": "backup"}, fresh=True)
    first = next(s["storage"] for s in storages if s.get("active", 1))
    prod.clear_requests()
    g.backup(remove=True, compress="0").wait(**W)
    (sent,) = writes(prod)
    assert sent.params["storage"] == first and sent.params["remove"] == "1"
    assert sent.params["compress"] == "0" and sent.params["mode"] == "snapshot"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "live"}, "mode"),
        ({"compress": "xz"}, "compress"),
        ({"notes": 3}, "notes"),
        ({"remove": "yes"}, "remove"),
        ({"storage": "bad id!"}, "storage"),
        ({"storage": "local-lvm"}, "cannot take backups"),
        ({"storage": "nowhere"}, "cannot take backups"),
    ],
)
def test_backup_refusals(
    root: pvekit.Cluster, prod: Any, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        Guest(root, 119, node="pve2", type="qemu").backup(**kwargs)
    assert writes(prod) == []


def test_restore_over_existing_guest(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    g = root.guest(137)  # stopped VM
    g.backup(storage="pbs").wait(**W)
    volid = g.backups().query("storage == 'pbs'").sort_values("ctime")["volid"].iloc[-1]
    g.update(cores=7)
    prod.clear_requests()
    with pytest.raises(GuestStateError, match="force=True"):
        g.restore(volid)
    assert writes(prod) == []
    t = g.restore(volid, force=True)
    assert t.newid == 137 and t.type == "qmrestore" and t.vmid == 137
    assert t.wait(**W).ok
    (sent,) = writes(prod)
    assert sent.path == f"/nodes/{g.node}/qemu"
    assert sent.params == {"vmid": "137", "force": "1", "archive": volid}
    restored = sim_guest(simx, 137)
    assert restored is not None and restored.lock is None and not restored.running


def test_restore_refuses_running_guest_and_wrong_type(root: pvekit.Cluster, prod: Any) -> None:
    vm = root.guest(120)  # running
    vol = vm.backups()["volid"].iloc[0]
    with pytest.raises(GuestStateError, match="running"):
        vm.restore(vol, force=True)
    ct = root.guest(154)
    with pytest.raises(InvalidInputError, match="qemu backup"):
        ct.restore(vol, force=True)
    with pytest.raises(InvalidInputError, match="volume id"):
        vm.restore("no-colon")
    assert writes(prod) == []


def test_restore_deleted_container(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    g = root.guest(160)  # stopped container
    node = g.node
    g.backup(storage="nfs-backup").wait(**W)
    volid = g.backups().sort_values("ctime")["volid"].iloc[-1]
    g.delete(confirm=160).wait(**W)
    assert not g.exists()
    prod.clear_requests()
    g.restore(volid, start=True).wait(**W)
    (sent,) = writes(prod)
    assert sent.path == f"/nodes/{node}/lxc"
    assert sent.params == {"vmid": "160", "start": "1", "ostemplate": volid, "restore": "1"}
    assert g.exists() and g.running and g.type == "lxc"


def test_delete_backup(root: pvekit.Cluster, prod: Any) -> None:
    g = root.guest(121)
    g.backup(storage="local").wait(**W)
    volid = g.backups().query("storage == 'local'")["volid"].iloc[0]
    prod.clear_requests()
    t = g.delete_backup(volid)
    assert t is not None
    t.wait(**W)
    deletes = [r for r in prod.requests if r.method == "DELETE"]
    assert len(deletes) == 1 and deletes[0].path.endswith(
        "/storage/local/content/" + quote(volid, safe="")
    )
    assert volid not in set(g.backups()["volid"])
    with pytest.raises(NotFoundError):
        g.delete_backup(volid)
    other = root.guest(100).backups()["volid"].iloc[0]
    with pytest.raises(InvalidInputError, match="backup of guest 100"):
        g.delete_backup(other)


def test_auditor_cannot_snapshot_or_back_up(simx: Simulator) -> None:
    auditor = pvekit.connect(**simx["prod"].connect_kwargs(identity="auditor"), cache=False)
    try:
        g = auditor.guest(122)
        assert len(g.snapshots()) >= 0  # reading is allowed
        with pytest.raises(PermissionDeniedError):
            g.snapshot("nope")
        with pytest.raises(PermissionDeniedError):
            g.backup(storage="pbs")
    finally:
        auditor.close()
