"""Simulator behaviour: HTTP details, auth, actions and tasks, faults, metrics, scenarios."""

from __future__ import annotations

import gc
import hashlib
import math
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from pvekit.sim import SimClock, SimCluster, Simulator
from pvekit.sim._faults import MAX_LATENCY, Faults

API = "/api2/json"


class Client:
    """A tiny ticket-auth client (like proxmoxer, with CSRF on writes)."""

    def __init__(self, c: SimCluster, user: str = "root@pam", password: str = "pvekit-demo"):
        self.c = c
        self.s = requests.Session()
        r = self.s.post(
            c.url + API + "/access/ticket", data={"username": user, "password": password}
        )
        assert r.status_code == 200, r.reason
        self.data = r.json()["data"]
        self.s.cookies.set("PVEAuthCookie", self.data["ticket"])
        self.csrf = self.data["CSRFPreventionToken"]

    def raw(self, method: str, path: str, **params: Any) -> requests.Response:
        headers = {} if method == "GET" else {"CSRFPreventionToken": self.csrf}
        return self.s.request(
            method,
            self.c.url + API + path,
            params=params if method in ("GET", "DELETE") else None,
            data=None if method in ("GET", "DELETE") else params,
            headers=headers,
            timeout=10,
        )

    def __call__(self, method: str, path: str, **params: Any) -> Any:
        r = self.raw(method, path, **params)
        assert r.status_code == 200, (method, path, r.status_code, r.reason, r.text)
        return r.json()["data"]


@pytest.fixture
def frozen() -> Iterator[Simulator]:
    """A demo simulator whose clock moves only when the test advances it."""
    with Simulator("demo", clock=SimClock(frozen=True)) as sim:
        yield sim


def _finish(sim: Simulator, api: Client, node: str, upid: str) -> dict[str, Any]:
    sim.clock.advance(30)  # longer than any default task, far shorter than a ticket's life
    status: dict[str, Any] = api("GET", f"/nodes/{node}/tasks/{quote(upid, safe='')}/status")
    assert status["status"] == "stopped"
    return status


# -- HTTP -----------------------------------------------------------------------------------


def test_headers_and_envelope(frozen: Simulator) -> None:
    c = frozen["prod"]
    r = requests.get(c.url + API + "/version", timeout=5)
    assert r.status_code == 401 and r.reason == "No ticket"
    assert r.headers["Server"] == "pve-api-daemon/3.0"
    assert r.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert r.headers["Cache-Control"] == "max-age=0"
    assert r.json() == {"data": None}
    api = Client(c)
    body = api.raw("GET", "/version").json()
    assert set(body) == {"data"}


def test_https_fingerprint_matches_certificate() -> None:
    with Simulator("empty", https=True) as sim:
        c = sim["empty"]
        pem = ssl.get_server_certificate(("127.0.0.1", c.port))
        der = ssl.PEM_cert_to_DER_cert(pem)
        digest = hashlib.sha256(der).hexdigest().upper()
        assert c.fingerprint == ":".join(digest[i : i + 2] for i in range(0, 64, 2))
        assert c.ca_file is not None and os.path.exists(c.ca_file)
        r = requests.get(c.url + API + "/version", verify=c.ca_file, timeout=5)
        assert r.status_code == 401
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(c.url + API + "/version", verify=True, timeout=5)
        kw = c.connect_kwargs("root")
        assert kw["host"].startswith("https://") and kw["ca_file"] == c.ca_file
    # Stopped, it starts again with the same certificate...
    fingerprint, ca_file = c.fingerprint, c.ca_file
    with sim:
        pem_again = ssl.get_server_certificate(("127.0.0.1", c.port))
        assert ssl.PEM_cert_to_DER_cert(pem_again) == der and c.fingerprint == fingerprint
    # ...and the files go with the simulator object.
    del sim, c
    gc.collect()
    assert not os.path.exists(ca_file)


# -- authentication -------------------------------------------------------------------------


def test_ticket_lifetime_and_renewal(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    assert api("GET", "/version")
    frozen.clock.advance(3600)
    r = requests.post(
        c.url + API + "/access/ticket",
        data={"username": "root@pam", "password": api.data["ticket"]},
    )
    assert r.status_code == 200
    renewed = r.json()["data"]["ticket"]
    assert renewed != api.data["ticket"]
    frozen.clock.advance(3601)  # the first ticket is now 2 h + 1 s old
    assert api.raw("GET", "/version").status_code == 401
    s = requests.Session()
    s.cookies.set("PVEAuthCookie", renewed)
    assert s.get(c.url + API + "/version").status_code == 200


def test_csrf_required_on_writes(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    r = api.s.post(c.url + API + "/nodes/pve1/qemu/100/status/suspend")
    assert r.status_code == 401 and "csrf" in r.reason.lower()
    r = api.s.post(
        c.url + API + "/nodes/pve1/qemu/100/status/suspend",
        headers={"CSRFPreventionToken": "6B0B0000:forged"},
    )
    assert r.status_code == 401
    assert api.raw("POST", "/nodes/pve1/qemu/100/status/suspend").status_code == 200


def test_expire_tickets(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    c.expire_tickets()
    r = api.raw("GET", "/version")
    assert r.status_code == 401 and r.reason == "permission denied - invalid PVE ticket"
    assert Client(c)("GET", "/version")["release"] == "9.1"


def test_two_factor_flow(frozen: Simulator) -> None:
    c = frozen["prod"]
    r = requests.post(
        c.url + API + "/access/ticket", data={"username": "tfa@pve", "password": "tfa-demo"}
    ).json()["data"]
    assert r["NeedTFA"] == 1 and "cap" not in r
    partial = r["ticket"]
    s = requests.Session()
    s.cookies.set("PVEAuthCookie", partial)
    assert s.get(c.url + API + "/version").status_code == 401  # not a real ticket yet
    bad = requests.post(
        c.url + API + "/access/ticket",
        data={
            "username": "tfa@pve",
            "tfa-challenge": partial,
            "password": "totp:000000" if c.auth.current_otp() != "000000" else "totp:111111",
        },
    )
    assert bad.status_code == 401
    good = requests.post(
        c.url + API + "/access/ticket",
        data={
            "username": "tfa@pve",
            "tfa-challenge": partial,
            "password": f"totp:{c.auth.current_otp()}",
        },
    )
    assert good.status_code == 200 and "NeedTFA" not in good.json()["data"]
    assert c.connect_kwargs("tfa")["otp"] == c.auth.current_otp()


def test_api_token_and_bad_token(frozen: Simulator) -> None:
    c = frozen["prod"]
    ok = requests.get(
        c.url + API + "/version",
        headers={"Authorization": f"PVEAPIToken=root@pam!pvekit={c.auth.token_secret}"},
    )
    assert ok.status_code == 200
    bad = requests.get(
        c.url + API + "/version",
        headers={
            "Authorization": "PVEAPIToken=root@pam!pvekit=00000000-0000-0000-0000-000000000000"
        },
    )
    assert bad.status_code == 401


def test_auditor_is_refused_every_action(frozen: Simulator) -> None:
    c = frozen["prod"]
    aud = Client(c, "auditor@pve", "auditor-demo")
    for path, params in [
        ("/nodes/pve1/qemu/100/status/start", {}),
        ("/nodes/pve1/vzdump", {"vmid": "100"}),
        ("/nodes/pve1/qemu/100/snapshot", {"snapname": "x"}),
        ("/nodes/pve1/qemu/100/migrate", {"target": "pve2"}),
    ]:
        r = aud.raw("POST", path, **params)
        assert r.status_code == 403, path
        assert r.reason.startswith("Permission check failed (")
    r = aud.raw("PUT", "/nodes/pve1/qemu/100/config", cores="2")
    assert r.status_code == 403
    assert aud("GET", "/access/permissions")["/vms"]["VM.Audit"] == 1
    assert aud("GET", "/nodes/pve1/qemu/100/agent/network-get-interfaces")["result"]


# -- actions and tasks ----------------------------------------------------------------------


def _by_name(c: SimCluster, name: str) -> Any:
    return next(g for g in c.state.guests.values() if g.name == name)


def test_online_migration_moves_guest_when_task_ends(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    g = _by_name(c, "web-02")
    assert g.running
    r = api.raw("POST", f"/nodes/{g.node}/qemu/{g.vmid}/migrate", target="pve3")
    assert r.status_code == 500 and r.reason == "can't migrate running VM without --online"
    source = g.node
    upid = api("POST", f"/nodes/{source}/qemu/{g.vmid}/migrate", target="pve3", online=1)
    assert ":qmigrate:" in upid
    row = next(x for x in api("GET", "/cluster/resources", type="vm") if x["vmid"] == g.vmid)
    assert row["node"] == source and row["lock"] == "migrate"
    r = api.raw("POST", f"/nodes/{source}/qemu/{g.vmid}/status/reboot")
    assert r.status_code == 500 and r.reason == "VM is locked (migrate)"
    _finish(frozen, api, source, upid)
    row = next(x for x in api("GET", "/cluster/resources", type="vm") if x["vmid"] == g.vmid)
    assert row["node"] == "pve3" and "lock" not in row and row["status"] == "running"
    assert api.raw("GET", f"/nodes/{source}/qemu/{g.vmid}/status/current").status_code == 500
    log = api("GET", f"/nodes/{source}/tasks/{quote(upid, safe='')}/log")
    assert log[-1]["t"] == "TASK OK" and "migration finished" in log[-2]["t"]


def test_lxc_migration_needs_restart_mode(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    g = _by_name(c, "grafana")
    r = api.raw(
        "POST",
        f"/nodes/{g.node}/lxc/{g.vmid}/migrate",
        target="pve1" if g.node != "pve1" else "pve2",
    )
    assert r.status_code == 500 and "restart" in r.reason
    target = "pve1" if g.node != "pve1" else "pve2"
    upid = api("POST", f"/nodes/{g.node}/lxc/{g.vmid}/migrate", target=target, restart=1)
    _finish(frozen, api, g.node if g.node != target else target, upid)
    assert g.node == target


def test_lifecycle_and_wrong_states(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    g = _by_name(c, "staging-db")  # stopped
    base = f"/nodes/{g.node}/qemu/{g.vmid}"
    r = api.raw("POST", base + "/status/shutdown")
    assert r.status_code == 500 and r.reason == f"VM {g.vmid} not running"
    _finish(frozen, api, g.node, api("POST", base + "/status/start"))
    cur = api("GET", base + "/status/current")
    assert cur["status"] == "running" and cur["qmpstatus"] == "running" and cur["pid"] > 0
    _finish(frozen, api, g.node, api("POST", base + "/status/suspend"))
    assert api("GET", base + "/status/current")["qmpstatus"] == "paused"
    _finish(frozen, api, g.node, api("POST", base + "/status/resume"))
    _finish(frozen, api, g.node, api("POST", base + "/status/stop"))
    cur = api("GET", base + "/status/current")
    assert cur["status"] == "stopped" and "pid" not in cur and cur["cpu"] == 0
    locked = _by_name(c, "test-upgrade")
    r = api.raw("POST", f"/nodes/{locked.node}/qemu/{locked.vmid}/status/start")
    assert r.status_code == 500 and r.reason == "VM is locked (snapshot)"
    tmpl = c.state.guests[9000]
    r = api.raw("POST", f"/nodes/{tmpl.node}/qemu/9000/status/start")
    assert r.status_code == 500 and "template" in r.reason


def test_config_resize_clone_delete(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    ct = _by_name(c, "wiki")
    assert api("PUT", f"/nodes/{ct.node}/lxc/{ct.vmid}/config", cores=3, tags="docs;new") is None
    cfg = api("GET", f"/nodes/{ct.node}/lxc/{ct.vmid}/config")
    assert cfg["cores"] == 3 and cfg["tags"] == "docs;new"
    r = api.raw("PUT", f"/nodes/{ct.node}/lxc/{ct.vmid}/config", digest="0" * 40, cores=1)
    assert r.status_code == 500 and "modified" in r.reason
    vm = _by_name(c, "staging-web")
    base = f"/nodes/{vm.node}/qemu/{vm.vmid}"
    upid = api("POST", base + "/config", memory=6144, description="resized")
    assert upid.startswith("UPID:") and ":qmconfig:" in upid
    assert api("GET", base + "/config")["memory"] == "6144"
    size = vm.disks["scsi0"].size
    _finish(frozen, api, vm.node, api("PUT", base + "/resize", disk="scsi0", size="+8G"))
    assert vm.disks["scsi0"].size == size + 8 * 1024**3
    r = api.raw("PUT", base + "/resize", disk="scsi0", size="1G")
    assert r.status_code == 500 and r.reason == "shrinking disks is not supported"
    newid = int(api("GET", "/cluster/nextid"))
    upid = api("POST", "/nodes/pve1/qemu/9000/clone", newid=newid, name="from-template", full=1)
    assert c.state.guests[newid].lock == "clone"
    _finish(frozen, api, "pve1", upid)
    assert api("GET", f"/nodes/pve1/qemu/{newid}/config")["name"] == "from-template"
    r = api.raw("POST", "/nodes/pve1/qemu/9000/clone", newid=newid)
    assert r.status_code == 500 and "already exists" in r.reason
    _finish(frozen, api, "pve1", api("DELETE", f"/nodes/pve1/qemu/{newid}"))
    assert newid not in c.state.guests


def test_snapshots(frozen: Simulator) -> None:
    c = frozen["lab"]
    api = Client(c)
    g = _by_name(c, "homeassistant")
    base = f"/nodes/pve/qemu/{g.vmid}/snapshot"
    before = api("GET", base)
    _finish(frozen, api, "pve", api("POST", base, snapname="pre-test", description="x"))
    snaps = api("GET", base)
    assert len(snaps) == len(before) + 1
    assert snaps[-1]["name"] == "current" and snaps[-1]["parent"] == "pre-test"
    r = api.raw("POST", base, snapname="pre-test")
    assert r.status_code == 500 and r.reason == "snapshot name 'pre-test' already used"
    _finish(frozen, api, "pve", api("POST", base + "/pre-test/rollback"))
    _finish(frozen, api, "pve", api("DELETE", base + "/pre-test"))
    assert [s["name"] for s in api("GET", base)] == [s["name"] for s in before]
    r = api.raw("DELETE", base + "/nope")
    assert r.status_code == 500 and r.reason == "snapshot 'nope' does not exist"


def test_backup_adds_volume_and_restore(frozen: Simulator) -> None:
    c = frozen["lab"]
    api = Client(c)
    g = _by_name(c, "pihole")
    before = api("GET", "/nodes/pve/storage/usb-backup/content", vmid=g.vmid)
    upid = api(
        "POST",
        "/nodes/pve/vzdump",
        vmid=str(g.vmid),
        storage="usb-backup",
        mode="snapshot",
        compress="zstd",
        **{"notes-template": "{{guestname}}"},
    )
    assert g.lock == "backup"
    r = api.raw("POST", f"/nodes/pve/lxc/{g.vmid}/status/reboot")
    assert r.status_code == 500 and r.reason == "CT is locked (backup)"
    _finish(frozen, api, "pve", upid)
    after = api("GET", "/nodes/pve/storage/usb-backup/content", vmid=g.vmid)
    assert len(after) == len(before) + 1
    new = next(v for v in after if v not in before)
    assert new["content"] == "backup" and new["subtype"] == "lxc" and new["notes"] == "pihole"
    assert new["volid"].startswith(f"usb-backup:backup/vzdump-lxc-{g.vmid}-")
    upid = api(
        "POST", "/nodes/pve/lxc", vmid=950, ostemplate=new["volid"], restore=1, storage="local-zfs"
    )
    _finish(frozen, api, "pve", upid)
    assert api("GET", "/nodes/pve/lxc/950/config")["hostname"] == "pihole"
    vol = quote(new["volid"], safe="")
    assert api("GET", f"/nodes/pve/storage/usb-backup/content/{vol}")["size"] == new["size"]


def test_task_filters_and_custom_durations() -> None:
    with Simulator(
        "demo",
        clock=SimClock(frozen=True),
        task_durations={"qmstart": math.inf},
        task_outcomes={"qmshutdown": "WARNINGS: 2"},
    ) as sim:
        c = sim["prod"]
        api = Client(c)
        g = _by_name(c, "staging-db")
        upid = api("POST", f"/nodes/{g.node}/qemu/{g.vmid}/status/start")
        sim.clock.advance(86400 * 30)
        api = Client(c)  # the old ticket expired a month ago
        assert (
            api("GET", f"/nodes/{g.node}/tasks/{quote(upid, safe='')}/status")["status"]
            == "running"
        )
        active = api("GET", f"/nodes/{g.node}/tasks", source="active")
        assert [t["upid"] for t in active] == [upid] and active[0]["status"] == "RUNNING"
        assert upid not in [t["upid"] for t in api("GET", f"/nodes/{g.node}/tasks")]
        assert upid in [t["upid"] for t in api("GET", "/cluster/tasks")]
        api("DELETE", f"/nodes/{g.node}/tasks/{quote(upid, safe='')}")
        status = api("GET", f"/nodes/{g.node}/tasks/{quote(upid, safe='')}/status")
        assert status["status"] == "stopped" and status["exitstatus"] != "OK"
        w = _by_name(c, "web-01")
        upid = api("POST", f"/nodes/{w.node}/qemu/{w.vmid}/status/shutdown")
        assert _finish(sim, api, w.node, upid)["exitstatus"] == "WARNINGS: 2"
        errors = api("GET", f"/nodes/{w.node}/tasks", errors=1, limit=500)
        assert errors and all(
            t["status"] not in ("OK",) and not t["status"].startswith("WARNINGS") for t in errors
        )
        only = api("GET", f"/nodes/{w.node}/tasks", typefilter="qmshutdown", vmid=w.vmid)
        assert [t["upid"] for t in only][:1] == [upid]


def test_failing_and_slow_tasks_via_faults(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    c.faults.fail_tasks("qmstart", "start failed: QEMU exited with code 1")
    g = _by_name(c, "staging-db")
    upid = api("POST", f"/nodes/{g.node}/qemu/{g.vmid}/status/start")
    status = _finish(frozen, api, g.node, upid)
    assert status["exitstatus"] == "start failed: QEMU exited with code 1"
    assert not g.running
    log = api("GET", f"/nodes/{g.node}/tasks/{quote(upid, safe='')}/log")
    assert log[-1]["t"] == "TASK ERROR: start failed: QEMU exited with code 1"
    c.faults.clear()
    c.faults.slow_tasks(7200.0, "qmstart")
    upid = api("POST", f"/nodes/{g.node}/qemu/{g.vmid}/status/start")
    frozen.clock.advance(3600)
    assert api("GET", f"/nodes/{g.node}/tasks/{quote(upid, safe='')}/status")["status"] == "running"
    frozen.clock.advance(3601)
    assert g.running is False  # effects apply lazily, on the next request
    Client(c)("GET", "/version")
    assert g.running


def test_default_tasks_finish_in_real_time() -> None:
    import time

    with Simulator("empty") as sim:
        c = sim["empty"]
        api = Client(c)
        upid = (
            api("POST", "/nodes/pve/vzdump", vmid="100", storage="local")
            if c.state.guests
            else None
        )
        assert upid is None  # empty scenario: nothing to back up
        r = api.raw("POST", "/nodes/pve/vzdump", vmid="100")
        assert r.status_code == 500
        up = api("POST", "/nodes/pve/termproxy")
        assert set(up) >= {"port", "ticket", "upid", "user"}
    with Simulator("demo", task_scale=0.2) as sim:
        c = sim["lab"]
        api = Client(c)
        g = _by_name(c, "kali")
        upid = api("POST", f"/nodes/pve/qemu/{g.vmid}/status/start")
        deadline = time.monotonic() + 10
        while api("GET", f"/nodes/pve/tasks/{quote(upid, safe='')}/status")["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert g.running


# -- faults ---------------------------------------------------------------------------------


def test_error_rate_and_times(frozen: Simulator) -> None:
    c = frozen["lab"]
    api = Client(c)
    rule = c.faults.errors(1.0, statuses=(503,), pattern="/cluster/resources", times=2)
    assert api.raw("GET", "/cluster/resources").status_code == 503
    assert api.raw("GET", "/cluster/resources").status_code == 503
    assert api.raw("GET", "/cluster/resources").status_code == 200
    assert api.raw("GET", "/version").status_code == 200
    assert rule.hits == 2
    c.faults.errors(1.0, statuses=(500, 502), pattern="/nodes/*/qemu/**")
    codes = {api.raw("GET", "/nodes/pve/qemu/101/status/current").status_code for _ in range(12)}
    assert codes == {500, 502}
    assert api.raw("GET", "/nodes/pve/lxc").status_code == 200
    c.faults.clear()
    assert api.raw("GET", "/nodes/pve/qemu/101/status/current").status_code == 200


def test_dropped_connections(frozen: Simulator) -> None:
    c = frozen["lab"]
    api = Client(c)
    c.faults.drop(1.0, pattern="/nodes", times=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        api.raw("GET", "/nodes")
    assert api.raw("GET", "/nodes").status_code == 200
    assert [r.status for r in c.requests if r.path == "/nodes"] == [0, 200]


def test_fault_decisions_are_seeded_and_bounded() -> None:
    a, b = Faults(seed=7, name="x"), Faults(seed=7, name="x")
    for f in (a, b):
        f.errors(0.5, statuses=(500, 502, 503))
        f.latency(0.1, jitter=0.05)
    seq_a = [a.decide("GET", "/nodes") for _ in range(40)]
    seq_b = [b.decide("GET", "/nodes") for _ in range(40)]
    assert [(d.status, round(d.delay, 9)) for d in seq_a] == [
        (d.status, round(d.delay, 9)) for d in seq_b
    ]
    assert {d.status for d in seq_a} >= {None, 500} and all(0.05 <= d.delay <= 0.15 for d in seq_a)
    c = Faults()
    for _ in range(5):
        c.latency(20.0)
    assert c.decide("GET", "/x").delay == MAX_LATENCY
    with pytest.raises(ValueError):
        c.errors(1.5)


def test_node_offline(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    on_pve3 = [
        g for g in c.state.guests.values() if g.node == "pve3" and g.running and g.type == "qemu"
    ]
    assert on_pve3
    c.set_node_online("pve3", False)
    r = api.raw("GET", "/nodes/pve3/status")
    assert r.status_code == 595 and r.json() == {"data": None}
    assert api.raw("POST", f"/nodes/pve3/qemu/{on_pve3[0].vmid}/status/start").status_code == 595
    nodes = {n["name"]: n for n in api("GET", "/cluster/status") if n["type"] == "node"}
    assert nodes["pve3"]["online"] == 0
    res = api("GET", "/cluster/resources")
    row = next(x for x in res if x["id"] == "node/pve3")
    assert row["status"] == "offline" and "cpu" not in row
    assert not any(x["type"] == "storage" and x["node"] == "pve3" for x in res)
    assert all(
        x["status"] == "stopped"
        for x in res
        if x.get("node") == "pve3" and x["type"] in ("qemu", "lxc")
    )
    g = on_pve3[0]
    assert api.raw("GET", f"/nodes/pve3/qemu/{g.vmid}/config").status_code == 595
    r = api.raw("POST", "/nodes/pve1/qemu/100/migrate", target="pve3", online=1)
    assert r.status_code == 500 and "not online" in r.reason
    c.set_node_online("pve3", True)
    assert api("GET", "/nodes/pve3/status")["uptime"] == 0


def test_request_log_redacts_secrets(frozen: Simulator) -> None:
    c = frozen["prod"]
    c.clear_requests()
    api = Client(c)
    api("GET", "/cluster/resources", type="vm")
    api("POST", "/nodes/pve1/qemu/100/status/suspend")
    reqs = c.requests
    assert [(r.method, r.path, r.status) for r in reqs] == [
        ("POST", "/access/ticket", 200),
        ("GET", "/cluster/resources", 200),
        ("POST", "/nodes/pve1/qemu/100/status/suspend", 200),
    ]
    assert reqs[0].params == {"username": "root@pam", "password": "***"}
    assert reqs[1].params == {"type": "vm"}
    assert reqs[2].headers["CSRFPreventionToken"] == "***"
    assert reqs[2].headers["Cookie"] == "PVEAuthCookie=***"
    text = repr(reqs)
    for secret in ("pvekit-demo", api.data["ticket"], api.csrf):
        assert secret not in text
    assert len(frozen.requests) == 3
    c.clear_requests()
    assert c.requests == []


# -- metrics --------------------------------------------------------------------------------


def test_rrd_is_deterministic_with_cycles_and_growth() -> None:
    start = 1_790_000_000.0
    bodies = []
    for _ in range(2):
        with Simulator("demo", seed=5, clock=SimClock(start, frozen=True)) as sim:
            api = Client(sim["prod"])
            bodies.append(
                [
                    api("GET", "/nodes/pve1/rrddata", timeframe="day"),
                    api(
                        "GET", "/nodes/pve1/storage/ceph-vm/rrddata", timeframe="year", cf="AVERAGE"
                    ),
                ]
            )
            g = _by_name(sim["prod"], "logs-01")
            hour = api("GET", f"/nodes/{g.node}/qemu/{g.vmid}/rrddata", timeframe="hour")
            week_avg = api("GET", f"/nodes/{g.node}/qemu/{g.vmid}/rrddata", timeframe="week")
            week_max = api(
                "GET", f"/nodes/{g.node}/qemu/{g.vmid}/rrddata", timeframe="week", cf="MAX"
            )
            flat = api("GET", "/nodes/pve1/storage/nfs-backup/rrddata", timeframe="year")
    assert bodies[0] == bodies[1]
    day, year = bodies[0]
    assert len(day) == 70 and day[1]["time"] - day[0]["time"] == 1800
    assert hour[1]["time"] - hour[0]["time"] == 60 and set(hour[-1]) >= {"time", "maxmem"}
    cpus = [r["cpu"] for r in day if "cpu" in r]
    assert max(cpus) > 1.3 * min(cpus)  # a daily cycle
    used = [r["used"] for r in year]
    assert used[-1] > used[0] * 1.3  # ceph grows ~6 %/month
    flat_used = [r["used"] for r in flat]
    assert max(flat_used) < min(flat_used) * 1.01
    mem = [r["mem"] for r in week_avg if "mem" in r]
    assert mem[-1] > mem[0]  # logs-01 memory trends up
    pairs = [(a["cpu"], b["cpu"]) for a, b in zip(week_avg, week_max, strict=True) if "cpu" in a]
    assert all(mx >= avg for avg, mx in pairs)


# -- scenarios ------------------------------------------------------------------------------


def test_demo_scenario_contents() -> None:
    sim = Simulator("demo")
    prod, lab = sim["prod"].state, sim["lab"].state
    assert list(sim.clusters) == ["prod", "lab"]
    assert len(prod.nodes) == 3 and 55 <= len(prod.guests) <= 70
    assert len(lab.nodes) == 1 and 12 <= len(lab.guests) <= 18
    for st in (prod, lab):
        guests = list(st.guests.values())
        assert {g.type for g in guests} == {"qemu", "lxc"}
        assert any(g.template for g in guests) and any(not g.running for g in guests)
        assert any(g.snapshots for g in guests) and any(g.tags for g in guests)
        assert any(v.content == "backup" for v in st.volumes)
    assert any(g.ha_state for g in prod.guests.values())
    assert any(g.lock for g in prod.guests.values())
    assert any(g.pool for g in prod.guests.values())
    assert any(u.status == "unknown" for u in prod.storage_use.values())
    assert any(sdef.shared for sdef in prod.storage_defs.values())
    again = Simulator("demo")
    assert [(g.vmid, g.name, g.node, g.memory_mb) for g in again["prod"].state.guests.values()] == [
        (g.vmid, g.name, g.node, g.memory_mb) for g in prod.guests.values()
    ]
    other = Simulator("demo", seed=1)
    assert [g.load.base for g in other["prod"].state.guests.values()] != [
        g.load.base for g in prod.guests.values()
    ]


def test_large_and_empty_and_bad_options() -> None:
    with Simulator("large", nodes=4, guests=300) as sim:
        c = sim["large"]
        assert list(sim.clusters) == ["large"]
        api = Client(c)
        res = api("GET", "/cluster/resources", type="vm")
        assert len(res) == 300
        assert {r["node"] for r in res} == {"node01", "node02", "node03", "node04"}
    with Simulator("empty") as sim:
        api = Client(sim["empty"])
        assert api("GET", "/cluster/resources", type="vm") == []
        assert api("GET", "/cluster/nextid") == "100"
    with pytest.raises(ValueError, match="scenario"):
        Simulator("nope")
    with pytest.raises(TypeError, match="bogus"):
        Simulator("demo", bogus=1)
    with pytest.raises(ValueError, match="pve_version"):
        Simulator("demo", pve_version="7.0")


def test_pve_8_4_bodies() -> None:
    with Simulator("demo", pve_version="8.4") as sim:
        api = Client(sim["prod"])
        rows = api("GET", "/cluster/resources", type="vm")
        assert not any("memhost" in r for r in rows)
        assert "available" not in api("GET", "/nodes/pve1/status")["memory"]
        assert api("GET", "/version")["version"].startswith("8.4")


def test_guest_agent_and_lxc_interfaces(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    g = _by_name(c, "old-erp")  # stopped, no agent configured
    r = api.raw("GET", f"/nodes/{g.node}/qemu/{g.vmid}/agent/get-fsinfo")
    assert r.status_code == 500 and r.reason == "No QEMU guest agent configured"
    g = _by_name(c, "staging-db")  # stopped, agent configured
    r = api.raw("GET", f"/nodes/{g.node}/qemu/{g.vmid}/agent/network-get-interfaces")
    assert r.status_code == 500 and "not running" in r.reason
    g = _by_name(c, "api-01")
    fs = api("GET", f"/nodes/{g.node}/qemu/{g.vmid}/agent/get-fsinfo")["result"]
    assert fs[0]["mountpoint"] == "/" and 0 < fs[0]["used-bytes"] < fs[0]["total-bytes"]
    pid = api("POST", f"/nodes/{g.node}/qemu/{g.vmid}/agent/exec", command=["sleep", "30"])["pid"]
    assert api("GET", f"/nodes/{g.node}/qemu/{g.vmid}/agent/exec-status", pid=pid) == {"exited": 0}
    frozen.clock.advance(31)
    assert api("GET", f"/nodes/{g.node}/qemu/{g.vmid}/agent/exec-status", pid=pid)["exitcode"] == 0
    rds = _by_name(c, "rds-01")
    body = api("GET", f"/nodes/{rds.node}/qemu/{rds.vmid}/agent/get-fsinfo")
    assert body["result"]["error"]["class"] == "GenericError"
    body = api("GET", f"/nodes/{rds.node}/qemu/{rds.vmid}/agent/network-get-interfaces")
    assert set(body["result"]["error"]) == {"class", "desc"}
    g2 = _by_name(c, "dc-01")
    body = api("GET", f"/nodes/{g2.node}/qemu/{g2.vmid}/agent/network-get-interfaces")
    assert body["result"][0]["name"] == "Ethernet"
    ct = _by_name(c, "dns-01")
    ifaces = api("GET", f"/nodes/{ct.node}/lxc/{ct.vmid}/interfaces")
    eth0 = next(i for i in ifaces if i["name"] == "eth0")
    assert eth0["inet"] == f"{ct.ip}/24" and eth0["hwaddr"] == ct.mac.lower()
    console = api("POST", f"/nodes/{ct.node}/lxc/{ct.vmid}/termproxy")
    assert console["upid"].startswith(f"UPID:{ct.node}:") and console["ticket"]


def test_storage_views(frozen: Simulator) -> None:
    api = Client(frozen["prod"])
    rows = api("GET", "/nodes/pve3/storage")
    unknown = next(r for r in rows if r["storage"] == "nas-iso")
    assert unknown["active"] == 0 and unknown["total"] == 0
    ok = next(r for r in rows if r["storage"] == "ceph-vm")
    assert ok["shared"] == 1 and 0 < ok["used_fraction"] < 1
    assert api.raw("GET", "/nodes/pve3/storage/nas-iso/status").status_code == 500
    backups = api("GET", "/nodes/pve1/storage/pbs/content", content="backup")
    assert backups and all(b["volid"].startswith("pbs:backup/") for b in backups)
    assert all(b.get("verification", {}).get("state") in ("ok", "failed") for b in backups)
    images = api("GET", "/nodes/pve1/storage/local-lvm/content", content="images")
    assert images and all(i["volid"].startswith("local-lvm:vm-") for i in images)
    assert [r["storage"] for r in api("GET", "/nodes/pve1/storage", content="backup")] == [
        "local",
        "nfs-backup",
        "pbs",
    ]


# -- command line ---------------------------------------------------------------------------


def test_cli_serves_and_prints_connection_info() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pvekit.cli", "sim", "--scenario", "empty", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "pvekit simulator" in first and "'empty'" in first
        line = proc.stdout.readline()
        url = line.split()[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api2/json")
        r = requests.post(
            url + "/access/ticket",
            data={"username": "root@pam", "password": "pvekit-demo"},
            timeout=5,
        )
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert proc.returncode in (0, 130)
    assert proc.stdout is not None
    rest = proc.stdout.read()
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    assert "root@pam / pvekit-demo" in rest


def test_migration_fails_when_target_goes_down(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    g = next(
        g
        for g in c.state.guests.values()
        if g.type == "qemu" and g.running and g.node == "pve1" and not g.lock and not g.paused
    )
    upid = api("POST", f"/nodes/pve1/qemu/{g.vmid}/migrate", target="pve2", online=1)
    c.set_node_online("pve2", False)
    status = _finish(frozen, api, "pve1", upid)
    assert status["exitstatus"] == "migration aborted: target node 'pve2' is not online"
    assert g.node == "pve1" and g.lock is None and g.running
    log = api("GET", f"/nodes/pve1/tasks/{quote(upid, safe='')}/log")
    assert log[-1]["t"].startswith("TASK ERROR: migration aborted")


def test_stopping_one_cluster_cuts_its_connections() -> None:
    with Simulator("demo") as sim:
        lab, prod = sim["lab"], sim["prod"]
        api = Client(lab)
        assert api.raw("GET", "/version").status_code == 200  # keep-alive connection open
        lab.stop()
        with pytest.raises(requests.exceptions.ConnectionError):
            api.raw("GET", "/version")
        assert Client(prod)("GET", "/version")["release"] == "9.1"
        lab.start()  # back on the same port
        assert Client(lab)("GET", "/version")["release"] == "9.1"


def test_consoles(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    g = _by_name(c, "api-01")
    vnc = api("POST", f"/nodes/{g.node}/qemu/{g.vmid}/vncproxy", websocket=1)
    assert isinstance(vnc["port"], int) and vnc["ticket"].startswith("PVEVNC:") and vnc["cert"]
    term = api("POST", f"/nodes/{g.node}/qemu/{g.vmid}/termproxy")
    assert set(term) == {"port", "ticket", "upid", "user"}
    shell = api("POST", f"/nodes/{g.node}/termproxy")
    assert ":vncshell::root@pam:" in shell["upid"]
    stopped = _by_name(c, "old-erp")
    r = api.raw("POST", f"/nodes/{stopped.node}/qemu/{stopped.vmid}/vncproxy")
    assert r.status_code == 500 and r.reason == f"VM {stopped.vmid} not running"
    assert vnc["ticket"] not in repr(c.requests)


def test_same_seed_same_answers() -> None:
    bodies = []
    for _ in range(2):
        with Simulator("demo", seed=11, clock=SimClock(1_790_000_000.0, frozen=True)) as sim:
            api = Client(sim["prod"])
            bodies.append(
                (
                    api("GET", "/cluster/resources"),
                    api("GET", "/cluster/tasks"),
                    api("GET", "/nodes/pve2/status"),
                )
            )
    assert bodies[0] == bodies[1]


def test_simulator_wide_faults_and_ticket_expiry(frozen: Simulator) -> None:
    prod, lab = Client(frozen["prod"]), Client(frozen["lab"])
    rules = frozen.faults.errors(1.0, statuses=(502,), pattern="/version", times=1)
    assert len(rules) == 2
    assert prod.raw("GET", "/version").status_code == 502
    assert lab.raw("GET", "/version").status_code == 502
    assert prod.raw("GET", "/version").status_code == 200
    frozen.faults.clear()
    frozen.expire_tickets()
    assert prod.raw("GET", "/version").status_code == 401
    assert lab.raw("GET", "/version").status_code == 401


def test_backup_notes_protection_and_delete(frozen: Simulator) -> None:
    c = frozen["lab"]
    api = Client(c)
    vol = next(v for v in c.state.volumes if v.content == "backup" and not v.protected)
    path = f"/nodes/pve/storage/{vol.storage}/content/{quote(vol.volid, safe='')}"
    assert api("PUT", path, notes="keep me", protected=1) is None
    row = api("GET", path)
    assert row["notes"] == "keep me" and row["protected"] == 1
    r = api.raw("DELETE", path)
    assert r.status_code == 500 and r.reason == "cannot delete protected backup"
    api("PUT", path, protected=0)
    _finish(frozen, api, "pve", api("DELETE", path))
    assert vol not in c.state.volumes
    assert api.raw("GET", path).status_code == 500


def test_config_values_keep_their_types(frozen: Simulator) -> None:
    c = frozen["prod"]
    api = Client(c)
    g = _by_name(c, "jumpbox")
    base = f"/nodes/{g.node}/qemu/{g.vmid}/config"
    size = g.disks["scsi0"].size
    api(
        "PUT",
        base,
        onboot=0,
        protection=1,
        cpulimit="2.5",
        description="bastion",
        scsi0=f"{g.disks['scsi0'].volid},cache=writeback,size=1G",
    )
    cfg = api("GET", base)
    assert cfg["onboot"] == 0 and cfg["protection"] == 1 and cfg["description"] == "bastion"
    assert cfg["cpulimit"] == "2.5"  # PVE sends number-typed keys as strings
    assert "cache=writeback" in cfg["scsi0"] and g.disks["scsi0"].size == size
    api("PUT", base, delete="description,protection")
    cfg = api("GET", base)
    assert "description" not in cfg and "protection" not in cfg


def test_env_for_other_processes(frozen: Simulator) -> None:
    c = frozen["lab"]
    env = c.env("token")
    assert env["PROXMOX_HOST"] == c.url and env["PROXMOX_TOKEN_ID"] == "root@pam!pvekit"
    r = requests.get(
        env["PROXMOX_HOST"] + API + "/version",
        headers={
            "Authorization": f"PVEAPIToken={env['PROXMOX_TOKEN_ID']}={env['PROXMOX_TOKEN_SECRET']}"
        },
    )
    assert r.status_code == 200
    env = c.env("auditor")
    assert env["PROXMOX_USER"] == "auditor@pve" and env["PROXMOX_VALIDATE_CERTS"] == "true"
    with pytest.raises(ValueError):
        c.env("tfa")


def test_env_is_read_by_pvekit(frozen: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import pvekit

    for key, value in frozen["prod"].env("root").items():
        monkeypatch.setenv(key, value)
    cluster = pvekit.connect("env", cache=False)
    try:
        assert cluster.get("/version")["release"] == "9.1"
    finally:
        cluster.close()


def test_a_demo_left_open_does_not_hang_the_interpreter_at_exit() -> None:
    """A notebook or script that never calls ``close()``: the simulator's serve threads are
    daemon threads, frozen once the interpreter finalizes, so stopping them from ``__del__``
    then would wait forever (seen once cluster reads took the lean path)."""
    code = "import pvekit\ng = pvekit.demo()\ng.nodes()\ng.guests(details=True)\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
