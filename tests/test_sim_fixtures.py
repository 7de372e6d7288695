"""The simulator answers with the same keys and JSON types as real Proxmox VE servers.

Each captured body in ``tests/data/pve-fixtures`` (see its MANIFEST.tsv) is compared with the
simulator's answer to the same endpoint, row by row for lists (matching rows of the same
kind: running vs stopped guest, template, offline node...). Keys the real body has must be
present (unless listed as optional for that row), and shared keys must have the same JSON
type: string numbers stay strings, 0/1 booleans stay integers. Version drift between the
captured server (often PVE 6/7) and the simulated 9.1 is listed explicitly with its reason.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import pytest
import requests
from _paths import FIXTURES
from _shapes import json_kind

from pvekit.sim import SimCluster, Simulator

API = "/api2/json"


def assert_same_shape(
    real: Any,
    sim: Any,
    where: str,
    *,
    optional: AbstractSet[str] = frozenset(),
    drift: AbstractSet[str] = frozenset(),
) -> None:
    """Keys of ``real`` exist in ``sim`` (except ``optional``) with the same JSON kind
    (except ``drift``, documented version differences). Recurses into dicts."""
    if isinstance(real, dict):
        assert isinstance(sim, dict), f"{where}: expected an object, got {json_kind(sim)}"
        missing = {k for k in real if k not in sim} - set(optional)
        assert not missing, f"{where}: simulator lacks keys {sorted(missing)}"
        for k, v in real.items():
            if k in sim and k not in drift and v is not None:
                assert_same_shape(v, sim[k], f"{where}.{k}")
        return
    if isinstance(real, list):
        assert isinstance(sim, list), f"{where}: expected a list, got {json_kind(sim)}"
        if real and sim and not isinstance(real[0], dict):
            assert json_kind(real[0]) == json_kind(sim[0]), (
                f"{where}[0]: {json_kind(real[0])} vs {json_kind(sim[0])}"
            )
        return
    assert json_kind(real) == json_kind(sim), (
        f"{where}: real server sends {json_kind(real)} ({real!r}), "
        f"simulator {json_kind(sim)} ({sim!r})"
    )


def _manifest() -> list[dict[str, str]]:
    with (FIXTURES / "MANIFEST.tsv").open() as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _body(row: dict[str, str]) -> Any:
    data = json.loads((FIXTURES / row["file"]).read_text())
    if row["envelope"] == "data-wrapped" and isinstance(data, dict) and "data" in data:
        return data["data"] if row["http_status"] == "200" else data
    return data


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    with Simulator("demo", seed=0) as sim:
        yield sim


@pytest.fixture(scope="module")
def prod(simulator: Simulator) -> SimCluster:
    return simulator["prod"]


@pytest.fixture(scope="module")
def api(prod: SimCluster) -> Callable[..., Any]:
    s = requests.Session()
    kw = prod.connect_kwargs("root")
    r = s.post(
        prod.url + API + "/access/ticket", data={"username": kw["user"], "password": kw["password"]}
    )
    r.raise_for_status()
    s.cookies.set("PVEAuthCookie", r.json()["data"]["ticket"])
    csrf = r.json()["data"]["CSRFPreventionToken"]

    def call(path: str, method: str = "GET", full: bool = False, **params: Any) -> Any:
        resp = s.request(
            method,
            prod.url + API + path,
            params=params if method == "GET" else None,
            data=None if method == "GET" else params,
            headers={"CSRFPreventionToken": csrf},
        )
        if full:
            return resp
        assert resp.status_code == 200, (path, resp.status_code, resp.reason)
        return resp.json()["data"]

    return call


def _pick(rows: list[dict[str, Any]], **want: Any) -> dict[str, Any]:
    for r in rows:
        if all((r.get(k) == v) if not callable(v) else v(r.get(k)) for k, v in want.items()):
            return r
    raise AssertionError(f"no simulator row with {want}")


def _guest(
    prod: SimCluster,
    gtype: str,
    *,
    running: bool,
    template: bool = False,
    agent: bool | None = None,
    balloon: bool | None = None,
    ostype: str | None = None,
) -> tuple[str, int]:
    for g in prod.state.guests.values():
        if g.type != gtype or g.running != running or g.template != template:
            continue
        if agent is not None and g.agent != agent:
            continue
        if balloon is not None and (g.balloon_mb is not None) != balloon:
            continue
        if ostype is not None and not g.ostype.startswith(ostype):
            continue
        if g.lock or g.paused:
            continue
        return g.node, g.vmid
    raise AssertionError("scenario lacks such a guest")


def _rows_by_state(
    real: list[dict[str, Any]],
    sim: list[dict[str, Any]],
    where: str,
    key: Callable[[dict[str, Any]], Any],
    **kw: Any,
) -> None:
    assert real, where
    for i, row in enumerate(real):
        match = [s for s in sim if key(s) == key(row)]
        assert match, f"{where}: simulator has no row like real row {i} ({key(row)})"
        assert_same_shape(row, match[0], f"{where}[{i}]", **kw)


# Known, documented differences between the captured (older) servers and PVE 9.1.
LXC_VMID_STRING = {"vmid"}  # PVE <= 7 sends the lxc list vmid as a string (QUIRKS 1)
PVE6_STRINGS = {"vmid", "disk", "maxdisk"}  # PVE 6 lxc/qemu rows (telegraf captures)


def _resource_kind(r: dict[str, Any]) -> Any:
    if r.get("type") in ("qemu", "lxc"):
        return (r["type"], r.get("status"), r.get("template"))
    return (r.get("type"), r.get("status"))


def test_cluster_status(api: Callable[..., Any]) -> None:
    real = _body(_row("luthermonson-go-proxmox/pve7.4/GET_cluster_status.json"))
    _rows_by_state(real, api("/cluster/status"), "/cluster/status", key=lambda r: r["type"])


def test_cluster_resources(api: Callable[..., Any]) -> None:
    real = _body(_row("luthermonson-go-proxmox/pve7.4/GET_cluster_resources.json"))
    sim = api("/cluster/resources")
    _rows_by_state(real, sim, "/cluster/resources", key=_resource_kind, optional={"tags"})
    for typ in ("qemu", "lxc"):
        assert all(isinstance(r["template"], int) for r in sim if r["type"] == typ)
    assert any("memhost" in r for r in sim if r["type"] == "qemu"), "9.x rows carry memhost"


@pytest.mark.parametrize(
    "name",
    [
        "issues__Corsinvest-cv4pve-diag/unknown/GET_cluster_resources_type_storage.json",
        "issues__Corsinvest-cv4pve-autosnap/pve6.2-12/GET_cluster_resources_type_storage.json",
    ],
)
def test_cluster_resources_storage(api: Callable[..., Any], name: str) -> None:
    real = _body(_row(name))
    sim = api("/cluster/resources", type="storage")
    assert {r["type"] for r in sim} == {"storage"}
    _rows_by_state(
        real, [r for r in sim if r["status"] == "available"], name, key=lambda r: r["type"]
    )


def test_cluster_resources_storage_fragment(api: Callable[..., Any]) -> None:
    real = _body(
        _row(
            "issues__Higangssh-homebutler/unknown/GET_cluster_resources__storage-row-fragment.json"
        )
    )
    sim = _pick(api("/cluster/resources", type="storage"), storage="local-lvm")
    assert_same_shape(real, sim, "storage row")


def test_cluster_resources_offline_node(simulator: Simulator) -> None:
    real = _body(
        _row(
            "issues__gethomepage-homepage/unknown/GET_cluster_resources__offline-node-partial.json"
        )
    )
    with Simulator("demo", offline_nodes=("pve3",)) as sim:
        c = sim["prod"]
        s = requests.Session()
        s.headers["Authorization"] = f"PVEAPIToken=root@pam!pvekit={c.auth.token_secret}"
        rows = s.get(c.url + API + "/cluster/resources", params={"type": "node"}).json()["data"]
    _rows_by_state(real, rows, "offline node", key=lambda r: r["status"])
    offline = _pick(rows, status="offline")
    assert set(offline) == {"id", "node", "status", "type", "cgroup-mode"}


def test_nodes(api: Callable[..., Any]) -> None:
    real = _body(_row("luthermonson-go-proxmox/pve7.4/GET_nodes.json"))
    _rows_by_state(real, api("/nodes"), "/nodes", key=lambda r: r["status"])


def test_nodes_with_node_down() -> None:
    real = _body(_row("proxmoxer-docs/unknown/GET_nodes.json"))
    with Simulator("empty") as sim:
        c = sim["empty"]
        c.set_node_online("pve", False)
        s = requests.Session()
        s.headers["Authorization"] = f"PVEAPIToken=root@pam!pvekit={c.auth.token_secret}"
        rows = s.get(c.url + API + "/nodes").json()["data"]
    _rows_by_state(real, rows, "/nodes (down)", key=lambda r: r["status"])
    assert set(rows[0]) == set(real[0])


def test_node_status_and_version(api: Callable[..., Any]) -> None:
    real = _body(_row("luthermonson-go-proxmox/pve7.4/GET_nodes_node_status.json"))
    sim = api("/nodes/pve1/status")
    assert_same_shape(real, sim, "/nodes/{node}/status")
    assert all(isinstance(x, str) for x in sim["loadavg"])
    assert isinstance(sim["cpuinfo"]["mhz"], str) and sim["cpuinfo"]["hvm"] == "1"
    assert "available" in sim["memory"]  # 9.x
    real = _body(_row("luthermonson-go-proxmox/pve7.4/GET_nodes_node_version.json"))
    assert_same_shape(real, api("/nodes/pve1/version"), "/nodes/{node}/version")
    assert_same_shape(real, api("/version"), "/version")
    real = _body(_row("influxdata-telegraf/unknown/GET_nodes_node_dns.json"))
    assert_same_shape(real, api("/nodes/pve1/dns"), "/nodes/{node}/dns")


@pytest.mark.parametrize(
    "name,drift",
    [
        ("luthermonson-go-proxmox/pve7.4/GET_nodes_node_lxc.json", LXC_VMID_STRING),
        ("proxmoxer-docs/unknown/GET_nodes_node_lxc.json", LXC_VMID_STRING),
        ("influxdata-telegraf/unknown/GET_nodes_node_lxc.json", PVE6_STRINGS),
    ],
)
def test_lxc_list(api: Callable[..., Any], prod: SimCluster, name: str, drift: set[str]) -> None:
    real = _body(_row(name))
    sim = [r for n in prod.state.nodes for r in api(f"/nodes/{n}/lxc")]
    assert all(isinstance(r["vmid"], int) for r in sim)  # PVE 8+ sends integers
    _rows_by_state(real, sim, name, key=lambda r: (r["status"], r.get("template")), drift=drift)
    assert all("pid" not in r for r in sim if r["status"] == "stopped")


def test_qemu_list(api: Callable[..., Any]) -> None:
    real = _body(_row("influxdata-telegraf/unknown/GET_nodes_node_qemu.json"))
    sim = api("/nodes/pve1/qemu")
    _rows_by_state(real, sim, "/nodes/{node}/qemu", key=lambda r: r["status"], drift={"vmid"})
    assert all(isinstance(r["vmid"], int) for r in sim)
    assert all(r.get("template") == 1 for r in sim if "template" in r)


def test_lxc_status_current(api: Callable[..., Any], prod: SimCluster) -> None:
    real = _body(_row("luthermonson-go-proxmox/pve7.4/GET_nodes_node_lxc_vmid_status_current.json"))
    node, vmid = _guest(prod, "lxc", running=False, template=True)
    assert_same_shape(real, api(f"/nodes/{node}/lxc/{vmid}/status/current"), "lxc template")
    real = _body(_row("influxdata-telegraf/unknown/GET_nodes_node_lxc_vmid_status_current.json"))
    node, vmid = _guest(prod, "lxc", running=True)
    assert_same_shape(
        real, api(f"/nodes/{node}/lxc/{vmid}/status/current"), "lxc running", drift=PVE6_STRINGS
    )


def test_qemu_status_current(api: Callable[..., Any], prod: SimCluster) -> None:
    real = _body(
        _row("luthermonson-go-proxmox/pve8.0/GET_nodes_node_qemu_vmid_status_current.json")
    )
    node, vmid = _guest(prod, "qemu", running=True, agent=True, balloon=True)
    sim = api(f"/nodes/{node}/qemu/{vmid}/status/current")
    assert_same_shape(real, sim, "qemu running", drift={"nics"})
    tap = next(iter(real["nics"].values()))
    assert_same_shape(tap, sim["nics"][f"tap{vmid}i0"], "qemu running.nics")
    assert sim["ha"]["managed"] in (0, 1) and sim["qmpstatus"] == "running"
    real = _body(_row("influxdata-telegraf/unknown/GET_nodes_node_qemu_vmid_status_current.json"))
    assert_same_shape(real, sim, "qemu running (telegraf)", drift={"vmid"})


def test_lxc_config_and_snapshots(
    api: Callable[..., Any], prod: SimCluster, simulator: Simulator
) -> None:
    real = _body(_row("luthermonson-go-proxmox/pve7.4/GET_nodes_node_lxc_vmid_config.json"))
    g = next(g for g in prod.state.guests.values() if g.type == "lxc" and g.running and g.tags)
    sim = api(f"/nodes/{g.node}/lxc/{g.vmid}/config")
    # raw lxc.* entries and a bind mount exist only on containers configured that way
    assert_same_shape(real, sim, "lxc config", optional={"lxc", "mp0"})
    assert isinstance(sim["memory"], int) and isinstance(sim["onboot"], int)
    lab = simulator["lab"]
    jelly = next(g for g in lab.state.guests.values() if g.name == "jellyfin")
    token = f"PVEAPIToken=root@pam!pvekit={lab.auth.token_secret}"
    body = requests.get(
        f"{lab.url}{API}/nodes/pve/lxc/{jelly.vmid}/config", headers={"Authorization": token}
    ).json()["data"]
    assert_same_shape(real, body, "lxc config (jellyfin)", optional={"tags"})
    assert body["lxc"][0] == ["lxc.cgroup2.devices.allow", "c 226:0 rwm"]
    real = _body(_row("luthermonson-go-proxmox/pve7.4/GET_nodes_node_lxc_vmid_snapshot.json"))
    g = next(g for g in prod.state.guests.values() if g.type == "lxc" and len(g.snapshots))
    sim = api(f"/nodes/{g.node}/lxc/{g.vmid}/snapshot")
    _rows_by_state(
        real, sim, "lxc snapshots", key=lambda r: r["name"] == "current", optional={"parent"}
    )
    assert sim[-1]["name"] == "current" and sim[-1]["description"] == "You are here!"


def test_qemu_config(api: Callable[..., Any], prod: SimCluster) -> None:
    node, vmid = _guest(prod, "qemu", running=True, agent=True)
    sim = api(f"/nodes/{node}/qemu/{vmid}/config")
    assert sim["agent"] == "1" and isinstance(sim["cores"], int)
    assert sim["scsi0"].startswith("ceph-vm:") or sim["scsi0"].startswith("local-lvm:")
    assert "size=" in sim["scsi0"] and len(sim["digest"]) == 40
    runner = next(g for g in prod.state.guests.values() if g.name == "ci-runner-01")
    cfg = api(f"/nodes/{runner.node}/qemu/{runner.vmid}/config")
    assert cfg["cpulimit"] == "4" and isinstance(cfg["memory"], str)  # strings, like PVE


@pytest.mark.parametrize(
    "name",
    [
        "luthermonson-go-proxmox/pve7.4/GET_nodes_node_qemu_vmid_rrddata_timeframe_hour.json",
        "pages__forum.proxmox.com/unknown/"
        "GET_nodes_node_qemu_vmid_rrddata_timeframe_hour__running-vm-partial.json",
    ],
)
def test_qemu_rrddata(api: Callable[..., Any], prod: SimCluster, name: str) -> None:
    real = _body(_row(name))
    template = "template" in _row(name)["notes"]
    node, vmid = _guest(prod, "qemu", running=not template, template=template)
    sim = api(f"/nodes/{node}/qemu/{vmid}/rrddata", timeframe="hour")
    assert len(sim) == 70
    # the newest bucket may be empty (QUIRKS 15): compare full rows
    assert_same_shape(real[0], sim[0], name)
    if template:
        assert set(sim[0]) == {"time", "maxcpu", "maxmem", "maxdisk", "disk"}


@pytest.mark.parametrize(
    "name,iface",
    [
        ("luthermonson-go-proxmox/pve7.4/GET_nodes_node_network.json", None),
        ("luthermonson-go-proxmox/pve7.4/GET_nodes_node_network__node2.json", None),
        ("luthermonson-go-proxmox/pve7.4/GET_nodes_node_network_iface.json", "vmbr0"),
    ],
)
def test_network(api: Callable[..., Any], name: str, iface: str | None) -> None:
    real = _body(_row(name))
    if iface:
        assert_same_shape(real, api(f"/nodes/pve1/network/{iface}"), name)
        return
    sim = api("/nodes/pve1/network")
    # Keys an admin sets per interface: present on some real rows of a type, not on all.
    _rows_by_state(
        real,
        sim,
        name,
        key=lambda r: r["type"],
        optional=set(),
    )
    vlan = _pick(sim, type="vlan")
    assert {"address6", "cidr6", "netmask6", "vlan-id", "vlan-raw-device"} <= set(vlan)
    bridge = _pick(sim, type="bridge")
    assert isinstance(bridge["netmask"], str) and isinstance(bridge["bridge_fd"], str)


def test_access(api: Callable[..., Any], prod: SimCluster) -> None:
    real = _body(_row("luthermonson-go-proxmox/unknown/POST_access_ticket.json"))
    resp = requests.post(
        prod.url + API + "/access/ticket", data={"username": "root@pam", "password": "pvekit-demo"}
    )
    sim = resp.json()["data"]
    assert_same_shape(real, sim, "POST /access/ticket", drift={"cap"})
    for group, privs in real["cap"].items():
        # VM.Monitor was split into Sys.Audit/VM.GuestAgent.* in PVE 9
        assert_same_shape(privs, sim["cap"][group], f"cap.{group}", optional={"VM.Monitor"})
    real = _body(_row("luthermonson-go-proxmox/pve7.4/GET_access_roles.json"))
    _rows_by_state(real, api("/access/roles"), "roles", key=lambda r: "x")
    real = _body(_row("luthermonson-go-proxmox/pve7.4/GET_access_permissions.json"))
    sim = api("/access/permissions")
    for path in real:
        # every privilege a PVE 7.4 root has, except the one PVE 9 removed
        assert_same_shape(real[path], sim[path], f"permissions {path}", optional={"VM.Monitor"})
        assert all(v == 1 for v in sim[path].values())
    real = _body(_row("proxmoxer-docs/unknown/GET_access_users.json"))
    _rows_by_state(real, api("/access/users"), "users", key=lambda r: "x", optional={"email"})


def test_pools(api: Callable[..., Any]) -> None:
    real = _body(_row("luthermonson-go-proxmox/unknown/GET_pools_poolid_poolid.json"))
    sim = api("/pools", poolid="production")
    assert_same_shape({k: v for k, v in real[0].items() if k != "members"}, sim[0], "pool")
    qemu_real = [m for m in real[0]["members"] if m["type"] == "qemu"]
    _rows_by_state(
        qemu_real, sim[0]["members"], "pool members", key=lambda r: (r["type"], r["status"])
    )


def test_nextid_error_shape(api: Callable[..., Any]) -> None:
    real = json.loads(
        (FIXTURES / "luthermonson-go-proxmox/unknown/GET_cluster_nextid_vmid_vmid.json").read_text()
    )
    resp = api("/cluster/nextid", full=True, vmid=100)
    assert resp.status_code == 400
    assert resp.json() == {"errors": {"vmid": "VM 100 already exists"}, "data": None}
    assert set(resp.json()) == set(real)
    assert isinstance(api("/cluster/nextid"), str)


def test_unknown_node_error_shape(api: Callable[..., Any]) -> None:
    real = json.loads(
        (
            FIXTURES / "luthermonson-go-proxmox/unknown/"
            "GET_nodes_node_status__error-unknown-node.json"
        ).read_text()
    )
    resp = api("/nodes/doesntexist/status", full=True)
    assert resp.status_code == 500
    assert resp.json() == real == {"data": None}
    assert "doesntexist" in resp.reason


@pytest.mark.parametrize(
    "name",
    [
        "issues__Telmate-proxmox-api-go/unknown/"
        "GET_nodes_node_qemu_vmid_agent_network-get-interfaces.json",
        "issues__xezpeleta-Ansible-Proxmox-inventory/pve6.1/"
        "GET_nodes_node_qemu_vmid_agent_network-get-interfaces.json",
    ],
)
def test_agent_interfaces(api: Callable[..., Any], prod: SimCluster, name: str) -> None:
    real = _body(_row(name))
    node, vmid = _guest(prod, "qemu", running=True, agent=True, ostype="l26")
    sim = api(f"/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces")
    assert_same_shape(real, sim, name)
    _rows_by_state(real["result"], sim["result"], name, key=lambda r: r["name"] == "lo")
    assert_same_shape(
        real["result"][1]["ip-addresses"][0], sim["result"][1]["ip-addresses"][0], "ip-address"
    )


def test_agent_fsinfo_windows(api: Callable[..., Any], prod: SimCluster) -> None:
    real = _body(
        _row(
            "issues__rcourtman-Pulse/pve9.0.6/"
            "GET_nodes_node_qemu_vmid_agent_get-fsinfo__windows-volume-fragment.json"
        )
    )
    node, vmid = _guest(prod, "qemu", running=True, agent=True, ostype="win")
    sim = api(f"/nodes/{node}/qemu/{vmid}/agent/get-fsinfo")["result"]
    reserved = _pick(sim, mountpoint="System Reserved")
    assert_same_shape({k: v for k, v in real.items() if k != "disk"}, reserved, "fsinfo")
    assert "total-bytes" not in reserved  # Windows reports no size for it (QUIRKS 11)
    assert any("total-bytes" in fs for fs in sim)


def test_agent_exec(api: Callable[..., Any], prod: SimCluster) -> None:
    node, vmid = _guest(prod, "qemu", running=True, agent=True, ostype="l26")
    real = _body(_row("proxmoxer-docs/unknown/POST_nodes_node_qemu_vmid_agent_exec.json"))
    sim = api(f"/nodes/{node}/qemu/{vmid}/agent/exec", "POST", command=["echo", "hello"])
    assert_same_shape(real, sim, "agent exec")
    real = _body(
        _row("proxmoxer-docs/unknown/GET_nodes_node_qemu_vmid_agent_exec-status_pid_pid.json")
    )
    status = api(f"/nodes/{node}/qemu/{vmid}/agent/exec-status", pid=sim["pid"])
    assert_same_shape(real, status, "exec-status")
    assert status["out-data"] == "hello\n"


def test_storage(api: Callable[..., Any], simulator: Simulator) -> None:
    real = _body(
        _row(
            "issues__Telmate-terraform-provider-proxmox/unknown/"
            "GET_nodes_node_storage_storage_status.json"
        )
    )
    assert_same_shape(real, api("/nodes/pve1/storage/ceph-vm/status"), "storage status")
    real = _body(
        _row("issues__rcourtman-Pulse/unknown/GET_storage__nodes-restricted-fragment.json")
    )
    lab = simulator["lab"]
    token = f"PVEAPIToken=root@pam!pvekit={lab.auth.token_secret}"
    sim = requests.get(f"{lab.url}{API}/storage", headers={"Authorization": token}).json()["data"]
    # a node-restricted dir storage: nodes and an explicit shared 0, like the real row
    assert_same_shape(real[0], _pick(sim, storage="usb-backup"), "/storage (restricted dir)")
    # the demo's ZFS pool is not node-restricted (a single-node host)
    assert_same_shape(real[1], _pick(sim, type="zfspool"), "/storage (zfs)", optional={"nodes"})


@pytest.mark.parametrize(
    "name",
    [
        "issues__Telmate-proxmox-api-go/unknown/GET_nodes_node_tasks_upid_status.json",
        "proxmoxer-docs/pve7.x/GET_nodes_node_tasks_upid_status__aptupdate.json",
        "proxmoxer-docs/pve7.x/GET_nodes_node_tasks_upid_status__vzcreate.json",
    ],
)
def test_task_status(api: Callable[..., Any], name: str) -> None:
    real = _body(_row(name))
    task = api("/nodes/pve1/tasks", source="all", limit=1)[0]
    sim = api(f"/nodes/pve1/tasks/{task['upid']}/status")
    assert_same_shape(real, sim, name)
    assert sim["status"] in ("running", "stopped")


def test_task_list_and_log(api: Callable[..., Any]) -> None:
    real = _body(_row("proxmoxer-docs/pve7.x/GET_nodes_node_tasks_limit_3_source_all.json"))
    sim = api("/nodes/pve1/tasks", limit=3, source="all")
    assert len(sim) == 3
    finished = [r for r in real if r["status"] != "RUNNING"]
    _rows_by_state(finished, sim, "task list", key=lambda r: r["status"] == "RUNNING")
    for name in (
        "proxmoxer-docs/pve7.x/GET_nodes_node_tasks_upid_log.json",
        "proxmoxer-docs/pve7.x/GET_nodes_node_tasks_upid_log__vzcreate.json",
    ):
        real = _body(_row(name))
        log = api(f"/nodes/pve1/tasks/{sim[0]['upid']}/log")
        _rows_by_state(real, log, name, key=lambda r: "x")


def test_every_manifest_entry_is_covered() -> None:
    """Adding a fixture without a comparison here should be a conscious choice."""
    source = Path(__file__).read_text()
    skipped = {
        # trimmed to two keys of an LXC-style config under a qemu path: not a real body
        "influxdata-telegraf/unknown/GET_nodes_node_qemu_vmid_config.json",
        "influxdata-telegraf/unknown/GET_nodes_node_lxc_vmid_config.json",
        # OVS/vlan mix of a host the simulator does not model
        "luthermonson-go-proxmox/unknown/GET_nodes_node_network.json",
    }
    for row in _manifest():
        name = row["file"]
        assert name in skipped or name.split("/", 2)[-1] in source or name in source, name


def _row(name: str) -> dict[str, str]:
    for row in _manifest():
        if row["file"] == name:
            return row
    raise KeyError(name)
