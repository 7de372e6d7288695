"""Every HTTP call of the public API surface exists in the official Proxmox VE API schema.

The whole surface runs against the simulator (every read of Cluster and Group with their
options, every Guest action and agent call, every Task call); each recorded request's
method, path template and parameter names are then looked up in the official schema:
the copy of ``pve-api-schema-9.1.json`` kept in ``tests/data/pve-api`` (the compact copy shipped in
``pvekit/_data/schema.json.gz`` is derived from it and could share its mistakes). The test fails
listing every offending call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _paths import OFFICIAL_SCHEMA, official_schema

import pvekit
from pvekit import PVEError

if TYPE_CHECKING:
    from pvekit import Cluster, Group, Guest
    from pvekit.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Route:
    template: str
    regex: re.Pattern[str]
    methods: dict[str, set[str]] = field(default_factory=dict)  # method -> parameter names


def _param_ok(name: str, allowed: set[str]) -> bool:
    """``net0`` is allowed by ``net[n]``; ``tfa-challenge`` by itself."""
    if name in allowed:
        return True
    return any(
        a.endswith("[n]") and re.fullmatch(re.escape(a[:-3]) + r"\d+", name) for a in allowed
    )


def _regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def load_routes() -> tuple[str, list[Route]]:
    """(source, routes) from the official schema tree."""
    routes: list[Route] = []

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            route = Route(node["path"], _regex(node["path"]))
            for method, info in (node.get("info") or {}).items():
                props = ((info.get("parameters") or {}).get("properties")) or {}
                route.methods[method] = set(props)
            routes.append(route)
            walk(node.get("children") or [])

    walk(official_schema())
    return OFFICIAL_SCHEMA.name, routes


def offending(requests: list[Any], routes: list[Route]) -> list[str]:
    """Human-readable problems: unknown path, method or parameter names."""
    problems: set[str] = set()
    for req in requests:
        matches = [r for r in routes if r.regex.match(req.path)]
        # The most specific template wins (fewest placeholders), like PVE's router.
        matches.sort(key=lambda r: r.template.count("{"))
        if not matches:
            problems.add(f"{req.method} {req.path}: no such path in the schema")
            continue
        route = matches[0]
        if req.method not in route.methods:
            problems.add(f"{req.method} {route.template}: method not in the schema")
            continue
        unknown = sorted(p for p in req.params if not _param_ok(p, route.methods[req.method]))
        if unknown:
            problems.add(f"{req.method} {route.template}: unknown parameters {unknown}")
    return sorted(problems)


def test_schema_loader_and_checker_catch_bad_calls() -> None:
    """The checker itself: it must flag what does not exist."""
    from types import SimpleNamespace as NS

    _, routes = load_routes()
    assert len(routes) > 300
    bad = [
        NS(method="GET", path="/cluster/resourcez", params={}),
        NS(method="PATCH", path="/nodes/pve1/status", params={}),
        NS(method="GET", path="/cluster/resources", params={"kind": "vm"}),
    ]
    good = [
        NS(method="GET", path="/cluster/resources", params={"type": "vm"}),
        NS(method="POST", path="/nodes/pve1/qemu/100/config", params={"net0": "x", "cores": 2}),
        NS(method="POST", path="/access/ticket", params={"username": "u", "password": "***"}),
    ]
    assert len(offending(bad, routes)) == 3
    assert offending(good, routes) == []


# ------------------------------------------------------------------------------ the surface


@pytest.fixture(scope="module")
def tls_sim() -> Iterator[Simulator]:
    from pvekit.sim import Simulator

    with Simulator("demo", task_duration=0.05) as s:
        yield s


def _connect(sim: Simulator, name: str, identity: str = "root") -> Cluster:
    kw = dict(sim[name].connect_kwargs(identity=identity))
    kw.pop("profile", None)
    return pvekit.connect(name, cache="memory", retries=0, **kw)


def _pick(sim: Simulator, gtype: str, status: str) -> int:
    st = sim["prod"].state
    for g in sorted(st.guests.values(), key=lambda g: g.vmid):
        usable = not g.template and not g.lock and st.nodes[g.node].online
        if g.type == gtype and g.status == status and usable:
            return g.vmid
    raise AssertionError(f"no {status} {gtype}")


def _reads(group: Group) -> list[Callable[[], Any]]:
    prod = group["prod"]
    return [
        lambda: group.nodes(progress=False),
        lambda: group.guests(details=True, ips=True, progress=False),
        lambda: group.storage(unique=True, progress=False),
        lambda: group.tasks(running=True, progress=False),
        lambda: group.tasks(running=False, since="2020-01-01", limit=20, progress=False),
        lambda: group.backups(progress=False),
        lambda: group.backups(vmid=100, progress=False),
        lambda: group.snapshots(progress=False),
        lambda: group.snapshots(vmid=100, progress=False),
        lambda: group.metrics("node", timeframe="hour", progress=False),
        lambda: group.metrics("guest", timeframe="week", cf="MAX", progress=False),
        lambda: group.metrics("storage", timeframe="month", progress=False),
        lambda: prod.metrics("storage", ["local"], timeframe="year", progress=False),
        lambda: group.summary(),
        lambda: group.ha_rules(),
        lambda: prod.ha_rules(fresh=True),
        lambda: group.status(),
        lambda: group.map(lambda c: c.get("/version")),
        lambda: group.reconnect(all=True),
    ]


def _actions(sim: Simulator, prod: Cluster) -> list[Callable[[], Any]]:
    def done(task: Any) -> Any:
        return task.wait(timeout=20, poll=0.05, progress=False) if task is not None else None

    running_vm = prod.guest(_pick(sim, "qemu", "running"))
    stopped_vm = prod.guest(_pick(sim, "qemu", "stopped"))
    running_ct = prod.guest(_pick(sim, "lxc", "running"))
    stopped_ct = prod.guest(_pick(sim, "lxc", "stopped"))
    other = {"pve1": "pve2", "pve2": "pve1", "pve3": "pve1"}
    state: dict[str, Any] = {}

    def clone() -> None:
        task = stopped_vm.clone(name="schema-clone")
        done(task)
        assert task.newid is not None
        state["clone"] = prod.guest(task.newid)

    def backup_restore() -> None:
        done(stopped_ct.backup(mode="stop", compress="zstd", notes="{{guestname}}"))
        vols = stopped_ct.backups()
        volid = str(vols["volid"].iloc[0])
        done(stopped_ct.restore(volid, force=True))
        done(stopped_ct.delete_backup(volid))

    def task_calls() -> None:
        task = stopped_vm.start()
        task.status()
        task.log(start=0, limit=10)
        task.log_tail(5)
        done(task)
        t2 = stopped_vm.shutdown(timeout=10, force_stop=True)
        t2.stop()

    guests: list[Guest] = [running_vm, stopped_vm, running_ct, stopped_ct]
    calls: list[Callable[[], Any]] = [
        lambda: [g.resolve() for g in guests],
        lambda: [g.exists() for g in guests],
        lambda: [g.status() for g in guests],
        lambda: [g.config(fresh=True) for g in guests],
        lambda: [g.raw_config(current=True) for g in guests],
        lambda: [g.snapshots() for g in guests],
        lambda: [g.backups() for g in guests],
        lambda: running_vm.agent.ping(),
        lambda: running_vm.agent.interfaces(),
        lambda: running_vm.agent.filesystems(),
        lambda: running_vm.agent.exec(["uname", "-a"], timeout=10),
        lambda: running_vm.agent.exec_status(running_vm.agent.exec_start("uptime")),
        lambda: running_ct.interfaces(),
        lambda: [g.refresh() for g in guests],
        lambda: done(
            stopped_ct.backup(mode="stop", notification_mode="notification-system", remove=False)
        ),
        lambda: running_vm.console_url(),
        lambda: running_vm.shell_url(),
        lambda: running_vm.vnc_proxy(),
        lambda: running_ct.vnc_proxy(),
        lambda: done(running_vm.update(description="schema", tags=["a", "b"], onboot=True)),
        lambda: done(running_ct.update(description="schema", cores=2, memory="1G")),
        lambda: done(running_vm.update(delete=["description"])),
        lambda: done(running_vm.resize("scsi0", "+1G")),
        lambda: done(running_ct.resize("rootfs", "+1G")),
        lambda: done(running_vm.snapshot("schema1", description="d", vmstate=False)),
        lambda: done(running_vm.rollback("schema1")),
        lambda: done(running_vm.delete_snapshot("schema1", force=True)),
        lambda: done(running_ct.snapshot("schema2")),
        lambda: done(running_ct.rollback("schema2", start=True)),
        lambda: done(running_ct.delete_snapshot("schema2")),
        lambda: done(running_vm.suspend()),
        lambda: done(running_vm.resume()),
        lambda: done(running_vm.reboot()),
        lambda: done(running_vm.reset()),
        lambda: done(running_ct.reboot()),
        lambda: done(running_ct.suspend()),
        lambda: done(running_ct.resume()),
        lambda: done(running_vm.shutdown(timeout=30)),
        lambda: done(running_vm.start()),
        lambda: done(running_vm.stop()),
        lambda: done(running_vm.start()),
        lambda: done(running_vm.backup(mode="snapshot")),
        lambda: done(
            running_vm.migrate(
                other[running_vm.node],
                online=True,
                force=True,
                migration_network="10.10.10.0/24",
            )
        ),
        lambda: done(running_ct.migrate(other[running_ct.node], online=True)),
        lambda: done(stopped_ct.migrate(other[stopped_ct.node])),
        task_calls,
        clone,
        backup_restore,
        lambda: (
            done(state["clone"].delete(purge=True, confirm=state["clone"].vmid, skiplock=True))
            if "clone" in state
            else None
        ),
    ]
    return calls


def _node_calls(prod: Cluster) -> list[Callable[[], Any]]:
    """The Node handle, guest creation and the node-list recovery path (issue 14)."""
    from pvekit.sim._handlers_nodes import simulated_checksum

    def done(task: Any) -> Any:
        return task.wait(timeout=20, poll=0.05, progress=False) if task is not None else None

    node = prod.node("pve1")
    url = "https://example.org/x.iso"
    made: dict[str, int] = {}

    def create() -> None:
        t1 = node.create_vm("schema-vm", iso="local:iso/debian-13.1.0-amd64-netinst.iso")
        done(t1)
        t2 = node.create_container("schema-ct", "local:vztmpl/x.tar.zst", password="secret1")
        done(t2)
        made["vm"], made["ct"] = int(t1.newid or 0), int(t2.newid or 0)

    def cleanup() -> None:
        for vmid in made.values():
            done(prod.guest(vmid).delete(confirm=vmid))

    return [
        lambda: node.status(),
        lambda: node.config(),
        lambda: node.disks(include_partitions=True, skipsmart=True),
        lambda: node.smart("/dev/sda", health_only=True),
        lambda: node.updates(),
        lambda: done(node.refresh_updates()),
        lambda: node.guests(),
        lambda: prod.guests_from_nodes(progress=False),
        lambda: node.content("local", content="iso", vmid=None),
        lambda: node.appliances(),
        lambda: done(
            node.download_url(
                "local",
                url,
                "x.iso",
                checksum=simulated_checksum(url, "sha256"),
                checksum_algorithm="sha256",
                verify_certificates=False,
            )
        ),
        lambda: done(node.delete_volume("local:iso/x.iso", delay=5)),
        lambda: done(node.pull_oci("local", "docker.io/library/nginx:1.29", filename="ng")),
        lambda: done(node.download_appliance("local", str(node.appliances()["template"][0]))),
        lambda: prod.next_vmid(),
        lambda: prod.next_vmid(90000),
        create,
        cleanup,
        lambda: node.refresh(),
    ]


def test_every_public_call_is_in_the_official_schema(tls_sim: Simulator) -> None:
    source, routes = load_routes()
    prod = _connect(tls_sim, "prod")
    lab = _connect(tls_sim, "lab")
    group = pvekit.Group([prod, lab])
    failed: list[str] = []
    try:
        tls_sim.clear_requests()
        reads = _reads(group)
        for i, call in enumerate(reads):
            try:
                call()
            except PVEError as err:
                failed.append(f"read {i}: {type(err).__name__}: {err}")
        # reconnect(all=True) replaced the clients: act through the group's current one.
        actions = _actions(tls_sim, group["prod"])
        for i, call in enumerate(actions):
            try:
                call()
            except PVEError as err:
                failed.append(f"action {i}: {type(err).__name__}: {err}")
        nodes = _node_calls(group["prod"])
        for i, call in enumerate(nodes):
            try:
                call()
            except PVEError as err:
                failed.append(f"node call {i}: {type(err).__name__}: {err}")
        calls = reads + actions + nodes
        # Also the token identity (no login), which takes other paths through the client.
        token = _connect(tls_sim, "prod", identity="token")
        token.guests(details=True, progress=False)
        token.close()
    finally:
        group.close()
    requests = tls_sim.requests
    assert len(requests) > 300
    # Proxmox's own refusals (state, locks) are fine; parameter or routing errors are not.
    assert len(failed) <= len(calls) // 5, failed
    assert not [f for f in failed if "ParameterError" in f or "NotImplemented" in f], failed
    problems = offending(requests, routes)
    assert problems == [], f"calls not in {source}:\n" + "\n".join(problems)
    # Every write sent has a rule of its own in the endpoint table (the reads it makes stale,
    # or an explicit none), not a generic fall-back.
    from urllib.parse import quote

    from pvekit._endpoints import write_for

    unruled = set()
    for r in requests:
        if r.method != "GET":
            path = "/".join(quote(s, safe=":@") for s in r.path.split("/"))
            found = write_for(r.method, path) or write_for(r.method, r.path)
            if found is None or found[0].generic:
                unruled.add(f"{r.method} {r.path}")
    assert not unruled, f"writes without a rule in pvekit/_endpoints.py: {sorted(unruled)}"
