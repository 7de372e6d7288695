"""The in-process transport: the same simulator without a socket (issue 12, part 3)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

import pvekit
from pvekit import PVEError
from pvekit.sim import SimClock, SimTransport, Simulator

API = "/api2/json"


def _login(s: requests.Session, url: str) -> dict[str, Any]:
    r = s.post(
        url + API + "/access/ticket", data={"username": "root@pam", "password": "pvekit-demo"}
    )
    assert r.status_code == 200, r.reason
    data: dict[str, Any] = r.json()["data"]
    s.cookies.set("PVEAuthCookie", data["ticket"])
    return data


def test_inprocess_and_http_answer_alike() -> None:
    with Simulator("demo", clock=SimClock(frozen=True)) as sim:
        c = sim["prod"]
        http, inproc = requests.Session(), c.session()
        _login(http, c.url)
        _login(inproc, c.inprocess_url)
        for path in ("/cluster/resources", "/nodes/pve1/status", "/nodes/pve2/qemu", "/version"):
            a = http.get(c.url + API + path)
            b = inproc.get(c.inprocess_url + API + path)
            assert (a.status_code, a.json()) == (b.status_code, b.json()), path
            assert {k: b.headers[k] for k in ("Server", "Content-Type", "Cache-Control")} == {
                k: a.headers[k] for k in ("Server", "Content-Type", "Cache-Control")
            }
        bad = inproc.get(c.inprocess_url + API + "/cluster/resources", params={"type": "vms"})
        assert bad.status_code == 400 and "type" in bad.json()["errors"]
        assert inproc.get(c.inprocess_url + API + "/nope").status_code == 501
        denied = requests.Session()
        denied.mount(c.inprocess_url + "/", SimTransport(c))
        r = denied.get(c.inprocess_url + API + "/version")
        assert (r.status_code, r.reason) == (401, "No ticket")
        # both fronts write one request log
        paths = [(r.path, r.status) for r in c.requests]
        assert paths.count(("/nodes/pve1/status", 200)) == 2 and ("/version", 401) in paths


def _sim_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("pvekit-sim")]


def test_no_socket_or_thread_and_state_is_shared() -> None:
    sim = Simulator("demo", inprocess=True, clock=SimClock(frozen=True))
    with sim:
        c = sim["prod"]
        assert not c.running and c.url == c.inprocess_url and c.url.endswith(".invalid:8006")
        cluster = pvekit.connect(**c.connect_kwargs("token"), cache=False)
        vmid = next(g.vmid for g in c.state.guests.values() if not g.running and not g.template)
        task = cluster.guest(vmid).start()
        sim.clock.advance(30)
        assert task.wait(timeout=5).ok
        assert c.state.guests[vmid].running
        assert _sim_threads() == []  # no server thread: the caller's thread serves
        assert all(r.headers.get("Authorization", "").endswith("=***") for r in c.requests)
        with pytest.raises(ValueError, match="in-process"):
            c.env()


def test_faults_apply_in_process() -> None:
    sim = Simulator("demo", inprocess=True)
    c = sim["prod"]
    cluster = pvekit.connect(**c.connect_kwargs("root"), cache=False, backoff=0.01)
    c.clear_requests()
    c.faults.errors(1.0, statuses=(503,), methods=("GET",), times=2)
    assert len(cluster.nodes()) == 3  # retried through two 503s
    statuses = [r.status for r in c.requests]
    assert statuses.count(503) == 2 and statuses[-1] == 200
    c.faults.drop(1.0, pattern="/version")
    with pytest.raises(requests.ConnectionError, match="dropped"):
        c.session().get(c.inprocess_url + API + "/version")
    with pytest.raises(PVEError):
        pvekit.connect(**c.connect_kwargs("root"), cache=False, retries=0).get("/version")


def test_header_names_and_json_bodies_in_process() -> None:
    c = Simulator("demo", inprocess=True)["prod"]
    s = c.session()
    data = _login(s, c.url)
    vmid = next(g.vmid for g in c.state.guests.values() if g.type == "lxc" and not g.lock)
    node = c.state.guests[vmid].node
    r = s.put(
        f"{c.url}{API}/nodes/{node}/lxc/{vmid}/config",
        json={"description": "via a JSON body"},
        headers={"csrfpreventiontoken": data["CSRFPreventionToken"]},
    )
    assert r.status_code == 200, r.reason
    cfg = s.get(f"{c.url}{API}/nodes/{node}/lxc/{vmid}/config").json()["data"]
    assert cfg["description"] == "via a JSON body"
