"""A client nobody here wrote (proxmoxer) drives the simulator over real HTTPS."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from proxmoxer import ProxmoxAPI
from proxmoxer.core import AuthenticationError, ResourceException

from pvekit.sim import SimCluster, Simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator("demo", https=True, seed=3) as s:
        yield s


@pytest.fixture(scope="module")
def prod(sim: Simulator) -> SimCluster:
    return sim["prod"]


def _api(c: SimCluster, identity: str = "root") -> ProxmoxAPI:
    kw = c.connect_kwargs(identity)
    assert c.ca_file is not None
    if identity == "token":
        user, _, name = kw["token_name"].partition("!")
        return ProxmoxAPI(
            c.host, user=user, token_name=name, token_value=kw["token_value"], verify_ssl=c.ca_file
        )
    return ProxmoxAPI(
        c.host, user=kw["user"], password=kw["password"], otp=kw.get("otp"), verify_ssl=c.ca_file
    )


def _wait(px: ProxmoxAPI, node: str, upid: str, timeout: float = 15.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = px.nodes(node).tasks(upid).status.get()
        if status["status"] == "stopped":
            return dict(status)
        time.sleep(0.1)
    raise AssertionError(f"task {upid} did not finish")


def test_password_login_lists_nodes_and_resources(prod: SimCluster) -> None:
    px = _api(prod)
    nodes = px.nodes.get()
    assert sorted(n["node"] for n in nodes) == ["pve1", "pve2", "pve3"]
    assert all(n["ssl_fingerprint"] == prod.fingerprint for n in nodes)
    resources = px.cluster.resources.get()
    kinds = {r["type"] for r in resources}
    assert {"qemu", "lxc", "node", "storage"} <= kinds
    vms = px.cluster.resources.get(type="vm")
    assert {r["type"] for r in vms} == {"qemu", "lxc"}
    assert 55 <= len(vms) <= 70


def test_token_login(prod: SimCluster) -> None:
    px = _api(prod, "token")
    assert px.version.get()["release"] == "9.1"
    assert [
        r
        for r in prod.requests
        if r.headers.get("Authorization", "").startswith("PVEAPIToken=root@pam!pvekit=***")
    ]
    assert all(prod.auth.token_secret not in str(r) for r in prod.requests)


def test_two_factor_login(prod: SimCluster) -> None:
    px = _api(prod, "tfa")
    assert px.access.permissions.get()["/"]["VM.PowerMgmt"] == 1


def test_wrong_password_is_refused(prod: SimCluster) -> None:
    with pytest.raises(AuthenticationError):
        ProxmoxAPI(prod.host, user="root@pam", password="wrong", verify_ssl=prod.ca_file)


def test_start_vm_and_follow_task(sim: Simulator, prod: SimCluster) -> None:
    px = _api(prod)
    node = "pve2"
    stopped = [
        g
        for g in px.nodes(node).qemu.get()
        if g["status"] == "stopped" and not g.get("template") and not g.get("lock")
    ]
    vmid = stopped[0]["vmid"]
    upid = px.nodes(node).qemu(vmid).status.start.post()
    assert upid.startswith(f"UPID:{node}:") and f":qmstart:{vmid}:root@pam:" in upid
    running = px.nodes(node).tasks.get(source="active")
    assert upid in [t["upid"] for t in running]
    status = _wait(px, node, upid)
    assert status["exitstatus"] == "OK"
    log = px.nodes(node).tasks(upid).log.get()
    assert log[-1]["t"] == "TASK OK"
    assert px.nodes(node).qemu(vmid).status.current.get()["status"] == "running"
    with pytest.raises(ResourceException) as exc:
        px.nodes(node).qemu(vmid).status.start.post()
    assert exc.value.status_code == 500
    assert f"VM {vmid} already running" in str(exc.value)


def test_bad_parameters_give_400(prod: SimCluster) -> None:
    px = _api(prod)
    with pytest.raises(ResourceException) as exc:
        px.nodes("pve1").qemu(100).status.start.post(bogus=1)
    assert exc.value.status_code == 400
    assert "bogus" in exc.value.errors
    with pytest.raises(ResourceException) as exc:
        px.cluster.resources.get(type="vms")
    assert exc.value.status_code == 400
    assert "enumeration" in exc.value.errors["type"]


def test_auditor_gets_403(prod: SimCluster) -> None:
    px = _api(prod, "auditor")
    assert px.cluster.resources.get(type="vm")  # reading is allowed
    with pytest.raises(ResourceException) as exc:
        px.nodes("pve1").qemu(100).status.stop.post()
    assert exc.value.status_code == 403
    assert "Permission check failed (/vms/100, VM.PowerMgmt)" in str(exc.value)
    perms = px.access.permissions.get()
    assert perms["/"].get("VM.Audit") == 1 and "VM.PowerMgmt" not in perms["/"]
