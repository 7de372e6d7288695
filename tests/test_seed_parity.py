"""Seed parity (issue 14): the seed package's and later pvetui's calls, end to end against the
simulator, each checked by its effect."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from _paths import official_schema

import pvekit
from pvekit import frames
from pvekit._guest import GuestStateError

if TYPE_CHECKING:
    from pvekit import Cluster, Task
    from pvekit.sim import Simulator


# -- nodes(): cluster name, CPU model and sockets; summary(): cluster name ------------------


def test_nodes_carry_cluster_name_cpu_model_and_sockets(sim: Simulator) -> None:
    c = pvekit.connect(**sim["prod"].connect_kwargs(), cache=False)
    try:
        df = c.nodes(progress=False).set_index("node")
        state = sim["prod"].state
        for name, node in state.nodes.items():
            assert df.at[name, "cpu_model"] == node.model
            assert df.at[name, "sockets"] == node.sockets
        assert set(df["cluster"]) == {state.name}
        assert c.summary().at[0, "cluster"] == state.name
    finally:
        c.close()


def test_a_standalone_node_has_no_cluster_name(sim: Simulator) -> None:
    c = pvekit.connect(**sim["lab"].connect_kwargs(), cache=False)
    try:
        assert len(sim["lab"].state.nodes) == 1
        assert c.nodes(progress=False)["cluster"].isna().all()
        assert c.summary()["cluster"].isna().all()
    finally:
        c.close()


# -- tasks(): tokenid apart from user, saved --------------------------------------------------


def test_tasks_frame_keeps_tokenid_apart_from_user() -> None:
    rows = [
        {
            "upid": "UPID:a:1:1:1:qmstart:100:root@pam!ci:",
            "starttime": 3,
            "user": "root@pam",
            "tokenid": "ci",
            "status": "OK",
            "endtime": 4,
        },
        {
            "upid": "UPID:a:2:2:2:qmstart:101:root@pam!nb:",
            "starttime": 2,
            "user": "root@pam!nb",
            "status": "RUNNING",
            "saved": "0",
        },
        {
            "upid": "UPID:a:3:3:3:vzdump::alice@pve:",
            "starttime": 1,
            "user": "alice@pve",
            "status": "OK",
            "endtime": 2,
            "saved": "1",
        },
    ]
    df = frames.tasks_frame("p", rows)
    assert df["user"].tolist() == ["root@pam", "root@pam", "alice@pve"]
    assert df["tokenid"].tolist()[:2] == ["ci", "nb"] and df["tokenid"].isna().tolist()[2]
    assert df["saved"].tolist() == [True, False, True]
    assert str(df["saved"].dtype) == "boolean"


def test_tasks_started_by_a_token_show_the_token(fresh_sim: Simulator) -> None:
    tok = pvekit.connect(**fresh_sim["prod"].connect_kwargs(identity="token"), cache=False)
    try:
        st = fresh_sim["prod"].state
        vmid = next(
            g.vmid
            for g in st.guests.values()
            if g.status == "stopped" and not g.template and not g.lock and st.nodes[g.node].online
        )
        task = tok.guest(vmid).start()
        df = tok.tasks(progress=False).set_index("upid")
        assert df.at[task.upid, "user"] == "root@pam"
        assert df.at[task.upid, "tokenid"] == "pvekit"
        assert bool(df.at[task.upid, "saved"]) is False  # running: not archived yet
        task.wait(timeout=60, poll=0.1, progress=False)
        df = tok.tasks(fresh=True, progress=False).set_index("upid")
        assert bool(df.at[task.upid, "saved"]) is True
    finally:
        tok.close()


# -- the Node handle: status, config, disks, SMART, updates ----------------------------------


@pytest.fixture(scope="module")
def fast() -> Iterator[Simulator]:
    from pvekit.sim import Simulator

    with Simulator("demo", task_scale=0.02) as s:
        yield s


@pytest.fixture
def prod(fast: Simulator) -> Iterator[Cluster]:
    c = pvekit.connect(**fast["prod"].connect_kwargs(), cache=False)
    yield c
    c.close()


def done(task: Task) -> Task:
    task.wait(timeout=60, poll=0.05, progress=False)
    return task


def test_node_status_has_cpu_model_and_sockets(fast: Simulator, prod: Cluster) -> None:
    node = fast["prod"].state.nodes["pve1"]
    status = prod.node("pve1").status()
    assert status["cpu_model"] == node.model and status["sockets"] == node.sockets
    assert status["cpus"] == node.cpus and status["kernel"] == node.kernel_release
    assert isinstance(status["cpuinfo"], dict)  # Proxmox's own body is kept


def test_node_config_round_trip(prod: Cluster) -> None:
    node = prod.node("pve2")
    assert "digest" in node.config()
    prod.put("/nodes/pve2/config", {"description": "rack 4"})
    assert node.config(fresh=True)["description"] == "rack 4"


def test_disks_and_smart(fast: Simulator, prod: Cluster) -> None:
    last = list(fast["prod"].state.nodes)[-1]
    disks = prod.node(last).disks()
    assert {"nvme", "ssd", "hdd"} <= set(disks["type"].astype(str))
    assert str(disks["size"].dtype) == "Int64" and (disks["size"] > 0).all()
    hdd = disks[disks["type"] == "hdd"].iloc[0]
    assert pd.isna(hdd["wearout"]) and hdd["rpm"] == 7200  # "N/A" for a spinning disk
    assert hdd["health"] == "FAILED"  # the simulated failing disk of the last node
    smart = prod.node(last).smart(str(hdd["devpath"]))
    assert smart["health"] == "FAILED" and smart["type"] == "ata"
    attrs = smart["attributes"].set_index("name")
    assert list(smart["attributes"].columns) == frames.columns("smart")
    realloc = attrs.loc["Reallocated_Sector_Ct"]
    assert realloc["value"] < realloc["threshold"] and realloc["fail"] == "FAILING_NOW"
    assert str(smart["attributes"]["threshold"].dtype) == "Int64"
    nvme = prod.node(last).smart("/dev/nvme0n1")
    assert nvme["type"] == "text" and "Percentage Used" in nvme["text"]
    assert prod.node("pve1").disks(skipsmart=True)["health"].isna().all()
    parts = prod.node("pve1").disks(include_partitions=True)
    assert (parts.loc[parts["type"] == "partition", "parent"] == "/dev/nvme0n1").all()
    with pytest.raises(pvekit.InvalidInputError, match="device path"):
        prod.node("pve1").smart("sda")
    with pytest.raises(pvekit.NotFoundError, match="no such disk"):
        prod.node("pve1").smart("/dev/sdz")


def test_pending_updates_and_refresh(prod: Cluster) -> None:
    node = prod.node("pve1")
    updates = node.updates()
    assert len(updates) >= 2 and "pve-manager" in set(updates["package"])
    row = updates.set_index("package").loc["pve-manager"]
    assert row["old_version"] != row["version"] and row["origin"] == "Proxmox"
    task = done(node.refresh_updates())
    assert task.status().ok and task.upid_info.type == "aptupdate"


# -- node-local guest lists: the recovery path ------------------------------------------------


def test_node_guest_lists_match_the_cluster_view(fast: Simulator, prod: Cluster) -> None:
    state = fast["prod"].state
    local = prod.node("pve1").guests()
    expected = sorted(g.vmid for g in state.guests.values() if g.node == "pve1")
    assert local["vmid"].tolist() == expected
    assert set(local["node"]) == {"pve1"}
    by_id = {g.vmid: g for g in state.guests.values()}
    assert all(str(t) == by_id[v].type for v, t in zip(local["vmid"], local["type"], strict=True))
    assert list(local.columns) == frames.columns("guests")


def test_guests_from_nodes_when_cluster_resources_is_degraded(fresh_sim: Simulator) -> None:
    c = pvekit.connect(**fresh_sim["prod"].connect_kwargs(), cache=False, retries=0)
    try:
        fresh_sim["prod"].faults.errors(statuses=(500,), pattern="/cluster/resources")
        with pytest.raises(pvekit.ServerError):
            c.guests()
        fresh_sim["prod"].clear_requests()
        df = c.guests_from_nodes(progress=False)
        state = fresh_sim["prod"].state
        online = {n for n, node in state.nodes.items() if node.online}
        expected = sorted(g.vmid for g in state.guests.values() if g.node in online)
        assert df["vmid"].tolist() == expected
        # /nodes once, then the two lists of each online node, nothing else
        sent = sorted(r.path for r in fresh_sim["prod"].requests)
        lists = [f"/nodes/{n}/{t}" for n in online for t in ("qemu", "lxc")]
        assert sent == sorted(["/nodes", *lists])
        down = sorted(online)[-1]
        fresh_sim["prod"].set_node_online(down, False)
        with pytest.warns(pvekit.IncompleteDataWarning, match=down):
            df = c.guests_from_nodes(progress=False)
        assert down not in set(df["node"]) and len(df)
    finally:
        c.close()


# -- storage content of any type, downloads, OCI pull, appliances -----------------------------


def test_content_of_any_type_and_delete(fast: Simulator, prod: Cluster) -> None:
    node = prod.node("pve1")
    content = node.content("nfs-backup")
    kinds = set(content["content"].astype(str))
    assert {"iso", "vztmpl", "backup"} <= kinds
    isos = node.content("nfs-backup", content="iso")
    assert set(isos["content"].astype(str)) == {"iso"} and len(isos) < len(content)
    images = node.content("local-lvm", content="images")
    assert len(images) and images["vmid"].notna().all()
    volid = str(isos["volid"].iloc[0])
    task = node.delete_volume(volid)
    if task is not None:
        done(task)
    assert volid not in set(node.content("nfs-backup", fresh=True)["volid"])
    assert len(node.content("nfs-backup", fresh=True)) == len(content) - 1
    with pytest.raises(pvekit.InvalidInputError, match="storage:path"):
        node.delete_volume("no-colon")
    with pytest.raises(pvekit.InvalidInputError, match="content="):
        node.content("local", content="isos")


def test_download_url_with_checksum(fast: Simulator, prod: Cluster) -> None:
    from pvekit.sim._handlers_nodes import simulated_checksum

    node = prod.node("pve1")
    url = "https://example.org/images/alpine-virt-3.22.iso"
    good = simulated_checksum(url, "sha256")
    task = done(
        node.download_url(
            "local", url, "alpine-virt.iso", checksum=good, checksum_algorithm="sha256"
        )
    )
    assert task.status().ok
    assert "local:iso/alpine-virt.iso" in set(node.content("local", fresh=True)["volid"])
    bad = node.download_url(
        "local", url, "alpine-bad.iso", checksum="0" * 64, checksum_algorithm="sha256"
    )
    with pytest.raises(pvekit.TaskFailedError, match="checksum mismatch"):
        bad.wait(timeout=60, poll=0.05, progress=False)
    assert "local:iso/alpine-bad.iso" not in set(node.content("local", fresh=True)["volid"])
    with pytest.raises(pvekit.InvalidInputError, match="does not suit content 'iso'"):
        node.download_url("local", url, "alpine.tar.zst")
    with pytest.raises(pvekit.InvalidInputError, match="give both"):
        node.download_url("local", url, "x.iso", checksum=good)
    with pytest.raises(pvekit.InvalidInputError, match="64 hex digits"):
        node.download_url("local", url, "x.iso", checksum="abc", checksum_algorithm="sha256")


def test_oci_pull_on_pve9(prod: Cluster) -> None:
    node = prod.node("pve1")
    task = done(node.pull_oci("local", "docker.io/library/nginx:1.29"))
    assert task.status().ok
    assert "local:vztmpl/nginx_1.29.tar" in set(node.content("local", fresh=True)["volid"])


def test_oci_pull_is_refused_on_pve8() -> None:
    from pvekit.sim import Simulator

    with Simulator("demo", pve_version="8.4") as s:
        c = pvekit.connect(**s["prod"].connect_kwargs(), cache=False)
        try:
            s["prod"].clear_requests()
            with pytest.raises(pvekit.NotImplementedByServerError, match="Proxmox VE 9"):
                c.node("pve1").pull_oci("local", "docker.io/library/nginx:1.29")
            assert not [r for r in s["prod"].requests if "oci" in r.path]
        finally:
            c.close()


def test_appliance_index_and_download(prod: Cluster) -> None:
    node = prod.node("pve1")
    apps = node.appliances()
    assert len(apps) >= 3 and set(apps["type"].astype(str)) == {"lxc"}
    template = str(apps.loc[apps["package"] == "debian-13-standard", "template"].iloc[0])
    done(node.download_appliance("local", template))
    assert f"local:vztmpl/{template}" in set(node.content("local", fresh=True)["volid"])
    with pytest.raises(pvekit.APIError, match="no such template"):
        node.download_appliance("local", "nothing_1.0_amd64.tar.zst")


# -- creating guests -------------------------------------------------------------------------


def test_next_vmid_and_create_vm(fast: Simulator, prod: Cluster) -> None:
    state = fast["prod"].state
    free = prod.next_vmid()
    assert free not in state.guests and free >= 100
    assert prod.next_vmid(free + 1000) == free + 1000
    taken = min(state.guests)
    with pytest.raises(pvekit.InvalidInputError, match="already in use"):
        prod.next_vmid(taken)
    task = prod.node("pve2").create_vm("web-new", disk_size=20)
    assert task.newid == free
    done(task)
    row = prod.guests(fresh=True).set_index("vmid").loc[free]
    assert row["name"] == "web-new" and row["node"] == "pve2" and row["type"] == "qemu"
    assert pd.isna(row["lock"])
    cfg = prod.guest(free).config(fresh=True)
    assert cfg["cores"] == 2 and cfg["sockets"] == 1 and cfg["memory"] == 2048 * 1024**2
    assert cfg["ostype"] == "l26" and cfg["networks"][0]["bridge"] == "vmbr0"
    with pytest.raises(pvekit.InvalidInputError, match="already in use"):
        prod.node("pve2").create_vm("again", vmid=free)
    with pytest.raises(pvekit.InvalidInputError, match="DNS name"):
        prod.node("pve2").create_vm("not a name")


def test_create_container(fast: Simulator, prod: Cluster) -> None:
    template = "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst"
    task = prod.node("pve1").create_container("ct-new", template, ip="10.0.0.9/24")
    done(task)
    vmid = task.newid
    assert vmid is not None and vmid in fast["prod"].state.guests
    row = prod.guests(fresh=True).set_index("vmid").loc[vmid]
    assert row["type"] == "lxc" and row["name"] == "ct-new" and pd.isna(row["lock"])
    cfg = prod.guest(vmid).config(fresh=True)
    assert cfg["memory"] == 512 * 1024**2 and cfg["swap"] == 512 * 1024**2
    assert cfg["networks"][0]["ip"] == "10.0.0.9/24"
    with pytest.raises(pvekit.InvalidInputError, match="ostemplate"):
        prod.node("pve1").create_container("x", "debian.tar.zst")


# -- guest agent: exec start and status apart -------------------------------------------------


def _pick(sim: Simulator, gtype: str, status: str, agent: bool | None = None) -> int:
    st = sim["prod"].state
    for g in sorted(st.guests.values(), key=lambda g: g.vmid):
        usable = not g.template and not g.lock and st.nodes[g.node].online
        if g.type == gtype and g.status == status and usable and agent in (None, g.agent):
            return g.vmid
    raise AssertionError(f"no {status} {gtype}")


def test_agent_exec_start_then_poll_status(fast: Simulator, prod: Cluster) -> None:
    vm = prod.guest(_pick(fast, "qemu", "running", agent=True))
    fast["prod"].clear_requests()
    pid = vm.agent.exec_start(["uname", "-a"])
    assert isinstance(pid, int)
    starts = [r for r in fast["prod"].requests if r.path.endswith("/agent/exec")]
    assert len(starts) == 1 and not [r for r in fast["prod"].requests if "exec-status" in r.path]
    first = vm.agent.exec_status(pid)
    result = first
    for _ in range(200):
        if result.exited:
            break
        fast.clock.advance(1)
        result = vm.agent.exec_status(pid)
    assert result.exited and result.ok and "Linux" in result.stdout
    assert result.command == ("uname", "-a") and result.pid == pid
    # started once, whatever the number of polls
    assert len([r for r in fast["prod"].requests if r.path.endswith("/agent/exec")]) == 1
    with pytest.raises(pvekit.GuestAgentError):
        vm.agent.exec_status(999_999)


# -- migrate force / migration_network / delete; delete skiplock; backup notification-mode ---


def test_migrate_force_for_local_devices_and_migration_network(fresh_sim: Simulator) -> None:
    c = pvekit.connect(**fresh_sim["prod"].connect_kwargs(), cache=False)
    try:
        st = fresh_sim["prod"].state
        vmid = _pick(fresh_sim, "qemu", "stopped")
        g = st.guests[vmid]
        g.config["hostpci0"] = "0000:01:00.0"
        target = next(n for n, node in st.nodes.items() if node.online and n != g.node)
        guest = c.guest(vmid)
        with pytest.raises(pvekit.APIError, match="uses local devices: hostpci0"):
            guest.migrate(target)
        assert st.guests[vmid].node != target
        task = guest.migrate(target, force=True, migration_network="10.10.10.0/24")
        task.wait(timeout=120, poll=0.2, progress=False)
        assert st.guests[vmid].node == target and guest.node == target
        assert any("migration network 10.10.10.0/24" in line for line in task.log_tail(50))
        with pytest.raises(pvekit.InvalidInputError, match="CIDR"):
            guest.migrate(g.node, migration_network="eth1")
        with pytest.raises(pvekit.InvalidInputError, match="always removes"):
            guest.migrate(g.node, delete=False)
        ct = c.guest(_pick(fresh_sim, "lxc", "stopped"))
        with pytest.raises(pvekit.InvalidInputError, match="QEMU VMs only"):
            ct.migrate(target, force=True)
    finally:
        c.close()


def test_delete_skiplock_removes_a_locked_vm(fast: Simulator, prod: Cluster) -> None:
    st = fast["prod"].state
    vmid = _pick(fast, "qemu", "stopped")
    st.guests[vmid].lock = "backup"  # a backup that died and left its lock
    guest = prod.guest(vmid)
    with pytest.raises(pvekit.APIError, match="locked"):
        guest.delete(confirm=vmid).wait(timeout=60, poll=0.05, progress=False)
    assert vmid in st.guests
    done(guest.delete(confirm=vmid, skiplock=True))
    assert vmid not in st.guests


def test_backup_notification_mode(fast: Simulator, prod: Cluster) -> None:
    guest = prod.guest(_pick(fast, "lxc", "stopped"))
    task = done(guest.backup(mode="stop", notification_mode="notification-system"))
    assert "--notification-mode notification-system" in task.log(start=0, limit=5)[0]
    with pytest.raises(pvekit.InvalidInputError, match="notification_mode"):
        guest.backup(notification_mode="always")


def test_lxc_interface_records(fast: Simulator, prod: Cluster) -> None:
    vmid = _pick(fast, "lxc", "running")
    g = fast["prod"].state.guests[vmid]
    records = prod.guest(vmid).interfaces()
    eth0 = next(r for r in records if r["name"] == "eth0")
    assert eth0["mac"] == g.mac.upper()
    if g.ip:
        assert eth0["ipv4"] == [g.ip]
        assert {"ip": g.ip, "family": "ipv4", "prefix": 24} in eth0["addresses"]
    assert eth0["ipv6"] and eth0["ipv6"][0].startswith("fe80::")
    stopped = prod.guest(_pick(fast, "lxc", "stopped"))
    with pytest.raises(GuestStateError, match="no interfaces"):
        stopped.interfaces()


# -- refresh one node / one guest: exactly its cached reads -----------------------------------


def test_refresh_drops_exactly_one_guests_and_one_nodes_reads(fast: Simulator) -> None:
    c = pvekit.connect(**fast["prod"].connect_kwargs(), cache="memory")
    try:
        st = fast["prod"].state
        running = [
            g
            for g in sorted(st.guests.values(), key=lambda g: g.vmid)
            if g.status == "running" and not g.template and st.nodes[g.node].online
        ]
        a, b = c.guest(running[0].vmid), c.guest(running[1].vmid)
        for guest in (a, b):
            guest.raw_config()
            c.get(guest.path + "/status/current")
        c.get("/nodes/pve1/status")
        c.get("/nodes/pve2/status")
        fast["prod"].clear_requests()
        a.refresh()
        a.raw_config()
        b.raw_config()
        c.get(b.path + "/status/current")
        paths = [r.path for r in fast["prod"].requests]
        assert paths.count(a.path + "/status/current") == 1  # refresh read it afresh
        assert paths.count(a.path + "/config") == 1  # dropped, so read again
        assert b.path + "/config" not in paths and b.path + "/status/current" not in paths
        fast["prod"].clear_requests()
        status = c.node("pve1").refresh()
        assert status["cpu_model"] == st.nodes["pve1"].model
        c.get("/nodes/pve1/status")
        c.get("/nodes/pve2/status")
        paths = [r.path for r in fast["prod"].requests]
        assert paths.count("/nodes/pve1/status") == 1 and "/nodes/pve2/status" not in paths
    finally:
        c.close()


# -- Group: one cluster through two profiles is read once; a failed profile keeps a row -------


def test_group_dedupes_a_cluster_reached_twice_and_shows_a_failed_profile(
    fresh_sim: Simulator,
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: a cluster that is down
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]

    def connect(name: str, url: str) -> Cluster:
        kw = dict(fresh_sim["prod"].connect_kwargs())
        kw.pop("host")
        return pvekit.connect(name, host=url, cache=False, retries=0, check=False, **kw)

    lab_kw = dict(fresh_sim["lab"].connect_kwargs())
    lab_kw.pop("host")
    members = [
        connect("prod-a", fresh_sim["prod"].url),
        connect("prod-b", fresh_sim["prod"].url),  # the same cluster through another profile
        pvekit.connect("lab", host=fresh_sim["lab"].url, cache=False, retries=0, **lab_kw),
        connect("down", f"http://127.0.0.1:{dead_port}"),
    ]
    group = pvekit.Group(members, name="all")
    try:
        with pytest.warns(pvekit.PartialResultWarning, match="'down'"):
            nodes = group.nodes(progress=False)
        prod_nodes = len(fresh_sim["prod"].state.nodes)
        assert (nodes["profile"] == "prod-a").sum() == prod_nodes
        assert "prod-b" not in set(nodes["profile"])
        assert group.duplicates == {"prod-b": "prod-a"}
        down = nodes[nodes["profile"] == "down"]
        assert len(down) == 1 and pd.isna(down["node"].iloc[0])
        assert down["status"].iloc[0] == "unknown" and not down["online"].iloc[0]
        assert len(nodes) == prod_nodes + len(fresh_sim["lab"].state.nodes) + 1
        with pytest.warns(pvekit.PartialResultWarning):
            guests = group.guests()
        expected = len(fresh_sim["prod"].state.guests) + len(fresh_sim["lab"].state.guests)
        assert len(guests) == expected
        assert not guests.duplicated(["profile", "vmid"]).any()
        with pytest.warns(pvekit.PartialResultWarning):
            assert group.summary()["profile"].tolist() == ["prod-a", "lab"]
    finally:
        group.close()


def test_two_standalone_nodes_with_the_same_name_are_not_merged(fresh_sim: Simulator) -> None:
    from pvekit.sim import Simulator

    with Simulator("demo", seed=7) as other:
        kw_a = dict(fresh_sim["lab"].connect_kwargs())
        kw_b = dict(other["lab"].connect_kwargs())
        a = pvekit.connect("lab-a", cache=False, **kw_a)
        b = pvekit.connect("lab-b", cache=False, **kw_b)
        group = pvekit.Group([a, b])
        try:
            assert set(group.nodes(progress=False)["node"]) == set(fresh_sim["lab"].state.nodes)
            assert set(group.guests()["profile"]) == {"lab-a", "lab-b"}
            assert group.duplicates == {}
        finally:
            group.close()


# -- the new simulator answers have the official schema's shape ------------------------------

def _returns(path: str, method: str = "GET") -> dict[str, Any]:
    def walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for node in nodes:
            yield node
            yield from walk(node.get("children") or [])

    for node in walk(official_schema()):
        if node["path"] == path:
            return dict(node["info"][method].get("returns") or {})
    raise AssertionError(f"{path} not in the schema")


def _shape_problems(value: Any, spec: Mapping[str, Any], where: str) -> list[str]:
    kind = spec.get("type")
    ok = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: v in (0, 1) or isinstance(v, bool),  # PVE sends 0/1
        "array": lambda v: isinstance(v, list) or v is None,  # osdid-list is null
        "object": lambda v: isinstance(v, dict),
        "null": lambda v: v is None,
    }
    if kind in ok and not ok[kind](value):
        return [f"{where}: {value!r} is not {kind}"]
    problems: list[str] = []
    if kind == "array" and isinstance(value, list) and isinstance(spec.get("items"), Mapping):
        for i, item in enumerate(value):
            problems += _shape_problems(item, spec["items"], f"{where}[{i}]")
    if kind == "object" and isinstance(value, dict):
        for key, sub in (spec.get("properties") or {}).items():
            if key not in value:
                if not sub.get("optional") and "[n]" not in key:
                    problems.append(f"{where}: required {key!r} missing")
                continue
            problems += _shape_problems(value[key], sub, f"{where}.{key}")
    return problems


def test_new_simulated_answers_match_the_schema(fast: Simulator, prod: Cluster) -> None:
    reads = {
        "/nodes/{node}/config": prod.get("/nodes/pve1/config"),
        "/nodes/{node}/disks/list": prod.get("/nodes/pve1/disks/list", {"include-partitions": 1}),
        "/nodes/{node}/disks/smart": prod.get("/nodes/pve1/disks/smart", {"disk": "/dev/sda"}),
        "/nodes/{node}/apt/update": prod.get("/nodes/pve1/apt/update"),
        "/nodes/{node}/aplinfo": prod.get("/nodes/pve1/aplinfo"),
    }
    problems: list[str] = []
    for template, body in reads.items():
        problems += _shape_problems(body, _returns(template), template)
    assert problems == []
    # the check itself catches a wrong shape
    assert _shape_problems([{"devpath": 1}], _returns("/nodes/{node}/disks/list"), "x")
    for template in (
        "/nodes/{node}/storage/{storage}/download-url",
        "/nodes/{node}/storage/{storage}/oci-registry-pull",
        "/nodes/{node}/aplinfo",
        "/nodes/{node}/apt/update",
    ):
        assert _returns(template, "POST")["type"] == "string"  # a UPID, as the sim answers


def test_a_guest_being_created_is_locked_and_gone_if_the_task_fails(fresh_sim: Simulator) -> None:
    c = pvekit.connect(**fresh_sim["prod"].connect_kwargs(), cache=False)
    try:
        fresh_sim["prod"].faults.slow_tasks(math.inf, "qmcreate")
        task = c.node("pve1").create_vm("slow-vm")
        row = c.guests(fresh=True).set_index("vmid").loc[task.newid]
        assert row["lock"] == "create"  # visible while the task runs, as in Proxmox
        task.stop()
        fresh_sim["prod"].faults.clear()
        fresh_sim["prod"].faults.fail_tasks("qmcreate", "unable to create VM: disk full")
        failing = c.node("pve1").create_vm("full-vm")
        with pytest.raises(pvekit.TaskFailedError, match="disk full"):
            failing.wait(timeout=120, poll=0.2, progress=False)
        assert failing.newid not in set(c.guests(fresh=True)["vmid"])
    finally:
        c.close()
