"""Where the simulator used to differ from a real Proxmox VE 9.1 server (issue 12, part 2).

Each test talks real HTTP to the loopback server, the way the third-party clients that found
these differences did, and asserts what Proxmox VE answers.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests

from pvekit.sim import SimClock, SimCluster, Simulator

API = "/api2/json"


class Client:
    """Ticket (or token) auth over HTTP, like proxmoxer."""

    def __init__(self, c: SimCluster, identity: str = "root") -> None:
        self.c = c
        self.s = requests.Session()
        self.csrf = ""
        kw = c.connect_kwargs(identity)
        if "token_name" in kw:
            self.s.headers["Authorization"] = f"PVEAPIToken={kw['token_name']}={kw['token_value']}"
        else:
            r = self.s.post(
                c.url + API + "/access/ticket",
                data={"username": kw["user"], "password": kw["password"]},
            )
            assert r.status_code == 200, r.reason
            self.ticket = r.json()["data"]["ticket"]
            self.s.cookies.set("PVEAuthCookie", self.ticket)
            self.csrf = r.json()["data"]["CSRFPreventionToken"]

    def raw(self, method: str, url: str, /, **params: Any) -> requests.Response:
        get = method in ("GET", "DELETE")
        return self.s.request(
            method,
            self.c.url + API + url,
            params=params if get else None,
            data=None if get else params,
            headers={} if method == "GET" else {"CSRFPreventionToken": self.csrf},
            timeout=30,
        )

    def __call__(self, method: str, url: str, /, **params: Any) -> Any:
        r = self.raw(method, url, **params)
        assert r.status_code == 200, (method, url, r.status_code, r.reason)
        return r.json()["data"]


@pytest.fixture
def frozen() -> Iterator[Simulator]:
    with Simulator("demo", clock=SimClock(frozen=True)) as sim:
        yield sim


def _stopped_qemu(c: SimCluster, *, ha: bool = False) -> tuple[str, int]:
    for g in c.state.guests.values():
        if (
            g.type == "qemu"
            and not g.running
            and not g.template
            and not g.lock
            and bool(g.ha_state) == ha
        ):
            return g.node, g.vmid
    raise AssertionError("no such guest in the scenario")


def _upid_path(node: str, upid: str) -> str:
    return f"/nodes/{node}/tasks/{quote(upid, safe='')}"


# -- 1. header names are case-insensitive ---------------------------------------------------


def test_header_names_are_case_insensitive(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
    try:
        conn.request("GET", API + "/version", headers={"cookie": f"PVEAuthCookie={api.ticket}"})
        r = conn.getresponse()
        assert (r.status, json.loads(r.read())["data"]["release"]) == (200, "9.1")
        node, vmid = _stopped_qemu(c)
        body = urlencode({"description": "set with lower-case header names"})
        conn.request(
            "PUT",
            f"{API}/nodes/{node}/qemu/{vmid}/config",
            body=body,
            headers={
                "COOKIE": f"PVEAuthCookie={api.ticket}",
                "csrfpreventiontoken": api.csrf,
                "content-type": "application/x-www-form-urlencoded",
            },
        )
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.reason
        secret = c.auth.token_secret
        conn.request(
            "GET",
            API + "/nodes",
            headers={"authorization": f"PVEAPIToken=root@pam!pvekit={secret}"},
        )
        r = conn.getresponse()
        assert r.status == 200 and len(json.loads(r.read())["data"]) == 3
    finally:
        conn.close()


# -- 2. task log limit=0 and total ----------------------------------------------------------


def test_task_log_limit_zero_reads_to_the_end_and_lists_carry_total(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    task = max(
        (t for t in c.state.tasks if t.node == "pve1" and not t.running), key=lambda t: len(t.log)
    )
    assert len(task.log) > 3
    r = api.raw("GET", _upid_path("pve1", task.upid) + "/log", limit=0)
    body = r.json()
    assert [row["t"] for row in body["data"]] == task.log
    assert body["total"] == len(task.log)
    body = api.raw("GET", _upid_path("pve1", task.upid) + "/log", start=1, limit=2).json()
    assert [row["n"] for row in body["data"]] == [2, 3] and body["total"] == len(task.log)
    finished = [t for t in c.state.tasks if t.node == "pve1" and not t.running]
    body = api.raw("GET", "/nodes/pve1/tasks", limit=3).json()
    assert len(body["data"]) == 3 and body["total"] == len(finished) > 3
    body = api.raw("GET", "/nodes/pve1/tasks", limit=3, typefilter="vzdump").json()
    assert body["total"] == sum(t.type == "vzdump" for t in finished)


# -- 3. token tasks: user and tokenid -------------------------------------------------------


def test_token_started_tasks_report_user_and_tokenid(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c, "token")
    node, vmid = _stopped_qemu(c)
    upid = api("POST", f"/nodes/{node}/qemu/{vmid}/status/start")
    assert upid.endswith(f":qmstart:{vmid}:root@pam!pvekit:")  # the UPID keeps the authid
    status = api("GET", _upid_path(node, upid) + "/status")
    assert (status["user"], status["tokenid"]) == ("root@pam", "pvekit")
    row = next(t for t in api("GET", f"/nodes/{node}/tasks", source="all") if t["upid"] == upid)
    assert (row["user"], row["tokenid"]) == ("root@pam", "pvekit")
    row = next(t for t in api("GET", "/cluster/tasks") if t["upid"] == upid)
    assert (row["user"], row["tokenid"]) == ("root@pam", "pvekit")
    # tasks of a ticket user have no tokenid
    assert all("tokenid" not in t for t in api("GET", "/cluster/tasks") if t["upid"] != upid)


# -- 4. HA-managed guests migrate through the HA manager ------------------------------------


def test_ha_managed_migration_is_an_hamigrate_task_run_by_the_ha_manager(
    frozen: Simulator,
) -> None:
    c = frozen["prod"]
    api = Client(c)
    g = next(
        g
        for g in c.state.guests.values()
        if g.type == "qemu"
        and g.ha_state == "started"
        and g.running
        and not g.lock
        # a guest the real migration can move: shared disks only, no local devices
        and all(c.state.storage_defs[d.storage].shared for d in g.disks.values())
        and not any(k.startswith(("hostpci", "usb")) for k in g.config)
    )
    source = g.node
    target = next(n for n in c.state.nodes if n != source)
    sid = f"vm:{g.vmid}"
    upid = api("POST", f"/nodes/{source}/qemu/{g.vmid}/migrate", target=target)
    assert upid.split(":")[5:8] == ["hamigrate", str(g.vmid), "root@pam"]
    frozen.clock.advance(30)
    status = api("GET", _upid_path(source, upid) + "/status")
    assert status["exitstatus"] == "OK"
    log = [r["t"] for r in api("GET", _upid_path(source, upid) + "/log")]
    assert f"Requesting HA migration for VM {g.vmid} to node {target}" in log
    # the HA manager (the LRM of the source node) now runs the real migration
    qm = [
        t
        for t in api("GET", "/cluster/tasks")
        if t["type"] == "qmigrate" and t["id"] == str(g.vmid)
    ]
    assert len(qm) == 1 and qm[0]["node"] == source and qm[0]["status"] == "RUNNING"
    current = {r["id"]: r for r in api("GET", "/cluster/ha/status/current")}
    assert current[f"service:{sid}"]["state"] == "migrate"
    manager = api("GET", "/cluster/ha/status/manager_status")
    svc = manager["manager_status"]["service_status"][sid]
    assert (svc["state"], svc["node"], svc["target"]) == ("migrate", source, target)
    assert manager["manager_status"]["master_node"] == current["master"]["node"]
    frozen.clock.advance(60)
    current = {r["id"]: r for r in api("GET", "/cluster/ha/status/current")}
    assert c.state.guests[g.vmid].node == target  # tasks progress when a request arrives
    assert api("GET", f"/nodes/{target}/qemu/{g.vmid}/status/current")["status"] == "running"
    assert (current[f"service:{sid}"]["state"], current[f"service:{sid}"]["node"]) == (
        "started",
        target,
    )
    svc = api("GET", "/cluster/ha/status/manager_status")["manager_status"]["service_status"][sid]
    assert (svc["state"], svc["node"]) == ("started", target) and "target" not in svc
    # a guest the HA stack does not manage still gets a plain qmigrate task
    node, vmid = _stopped_qemu(c)
    other = next(n for n in c.state.nodes if n != node)
    assert ":qmigrate:" in api("POST", f"/nodes/{node}/qemu/{vmid}/migrate", target=other)


# -- 5. un-modelled GETs answer in the schema's shape ---------------------------------------


@pytest.mark.parametrize(
    "path", ["/cluster/ha/status/manager_status", "/cluster/config/qdevice", "/nodes/pve1/time"]
)
def test_unmodelled_object_endpoints_do_not_answer_a_list(frozen: Simulator, path: str) -> None:
    r = Client(frozen["prod"]).raw("GET", path)
    assert r.status_code == 501 or isinstance(r.json()["data"], dict), (r.status_code, r.text)


# -- 6. users, tokens, ACLs, roles, permissions ---------------------------------------------


def test_access_model_is_consistent(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    acl = api("GET", "/access/acl")
    entry = next(a for a in acl if a["ugid"] == "auditor@pve")
    assert entry == {
        "path": "/",
        "type": "user",
        "ugid": "auditor@pve",
        "roleid": "PVEAuditor",
        "propagate": 1,
    }
    roles = {r["roleid"]: set(r["privs"].split(",")) - {""} for r in api("GET", "/access/roles")}
    for a in acl:
        assert a["roleid"] in roles
        perms = api("GET", "/access/permissions", userid=a["ugid"], path=a["path"])
        assert set(perms[a["path"]]) == roles[a["roleid"]], a
    users = {u["userid"]: u for u in api("GET", "/access/users", full=1)}
    assert [t["tokenid"] for t in users["root@pam"]["tokens"]] == ["pvekit"]
    assert users["auditor@pve"]["tokens"] == []
    assert "tokens" not in api("GET", "/access/users")[0]
    tokens = api("GET", "/access/users/root@pam/token")
    assert [t["tokenid"] for t in tokens] == ["pvekit"]
    info = api("GET", "/access/users/root@pam/token/pvekit")
    assert info["privsep"] == 0 and "value" not in info
    # what the auditor may do follows from its ACL entry
    aud = Client(c, "auditor")
    assert set(aud("GET", "/access/permissions")["/"]) == roles["PVEAuditor"]
    node, vmid = _stopped_qemu(c)
    assert aud.raw("POST", f"/nodes/{node}/qemu/{vmid}/status/start").status_code == 403


# -- 7. inactive storages report zero sizes -------------------------------------------------


def test_inactive_storage_reports_zero_sizes(frozen: Simulator) -> None:
    rows = Client(frozen["prod"])("GET", "/nodes/pve3/storage")
    iso = next(r for r in rows if r["storage"] == "nas-iso")
    assert iso["active"] == 0
    assert (iso["total"], iso["used"], iso["avail"]) == (0, 0, 0)
    assert all({"total", "used", "avail"} <= set(r) for r in rows)


# -- 8. PVE 9 pressure fields in rrddata ----------------------------------------------------

NODE_PRESSURE = {
    "pressurecpusome",
    "pressureiosome",
    "pressureiofull",
    "pressurememorysome",
    "pressurememoryfull",
}
GUEST_PRESSURE = NODE_PRESSURE | {"pressurecpufull"}


@pytest.mark.parametrize("version", ["9.1", "8.4"])
def test_rrddata_pressure_fields_on_pve9(version: str) -> None:
    with Simulator("demo", pve_version=version, clock=SimClock(frozen=True)) as sim:
        c = sim["prod"]
        api = Client(c)
        node_rows = api("GET", "/nodes/pve1/rrddata", timeframe="hour")
        g = next(g for g in c.state.guests.values() if g.type == "qemu" and g.running)
        ct = next(g for g in c.state.guests.values() if g.type == "lxc" and g.running)
        vm_rows = api("GET", f"/nodes/{g.node}/qemu/{g.vmid}/rrddata", timeframe="hour")
        ct_rows = api("GET", f"/nodes/{ct.node}/lxc/{ct.vmid}/rrddata", timeframe="day")
    full = next(r for r in node_rows if "cpu" in r), vm_rows[0], ct_rows[0]
    if version == "9.1":
        assert set(full[0]) >= NODE_PRESSURE and "pressurecpufull" not in full[0]
        for row in full[1:]:
            assert set(row) >= GUEST_PRESSURE
            assert all(isinstance(row[k], int | float) and row[k] >= 0 for k in GUEST_PRESSURE)
    else:
        assert not any(k.startswith("pressure") for row in full for k in row)


# -- 9. /pools type filter ------------------------------------------------------------------


def test_pools_type_filter(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    pool = next(
        p
        for p in c.state.pools
        if {g.type for g in c.state.guests.values() if g.pool == p} == {"qemu", "lxc"}
    )
    members = api("GET", "/pools", poolid=pool, type="lxc")[0]["members"]
    assert members and {m["type"] for m in members} == {"lxc"}
    members = api("GET", f"/pools/{pool}", type="qemu")["members"]
    assert members and {m["type"] for m in members} == {"qemu"}
    everything = api("GET", f"/pools/{pool}")["members"]
    assert {m["type"] for m in everything} == {"qemu", "lxc"}


# -- 10. the guest lock refuses concurrent actions ------------------------------------------


def test_concurrent_starts_start_exactly_one_task() -> None:
    with Simulator("demo", task_duration=5.0) as sim:
        c = sim["prod"]
        api = Client(c)
        node, vmid = _stopped_qemu(c)
        barrier = threading.Barrier(32)
        results: list[requests.Response] = []
        lock = threading.Lock()

        def start() -> None:
            s = requests.Session()
            s.cookies.set("PVEAuthCookie", api.ticket)
            barrier.wait()
            r = s.post(
                f"{c.url}{API}/nodes/{node}/qemu/{vmid}/status/start",
                headers={"CSRFPreventionToken": api.csrf},
                timeout=30,
            )
            with lock:
                results.append(r)

        threads = [threading.Thread(target=start) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [r for r in results if r.status_code == 200]
        refused = [r for r in results if r.status_code != 200]
        assert len(ok) == 1 and len(refused) == 31
        assert {r.status_code for r in refused} == {500}
        assert {r.reason for r in refused} == {
            f"can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout"
        }
        starts = [t for t in c.state.tasks if t.type == "qmstart" and t.id == str(vmid)]
        assert len(starts) == 1


def test_a_running_power_task_holds_the_lock_until_overruled(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    c.faults.slow_tasks(60.0, task_type="vzshutdown")
    g = next(
        g
        for g in c.state.guests.values()
        if g.type == "lxc" and g.running and not g.lock and not g.ha_state
    )
    base = f"/nodes/{g.node}/lxc/{g.vmid}/status"
    shutdown = api("POST", base + "/shutdown")
    r = api.raw("POST", base + "/stop")
    assert (r.status_code, r.reason) == (
        500,
        f"can't lock file '/run/lock/lxc/pve-config-{g.vmid}.lock' - got timeout",
    )
    stop = api("POST", base + "/stop", **{"overrule-shutdown": 1})
    assert api("GET", _upid_path(g.node, shutdown) + "/status")["exitstatus"] != "OK"
    frozen.clock.advance(30)
    assert api("GET", _upid_path(g.node, stop) + "/status")["exitstatus"] == "OK"
    assert api("GET", base + "/current")["status"] == "stopped"
