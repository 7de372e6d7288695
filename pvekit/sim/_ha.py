"""The HA manager's part: HA-managed migrations and the HA status endpoints.

On PVE, migrating an HA-managed guest through the API does not migrate it: the API starts
an ``hamigrate`` task that only queues the request with the cluster resource manager (CRM).
The CRM sets the service to ``migrate``; the local resource manager (LRM) of the source node
then runs the real ``qmigrate``/``vzmigrate`` task as ``root@pam`` (online for a running VM,
restart mode for a running container), and the service is ``started`` (or ``stopped``) on
the target afterwards. ``/cluster/ha/status/current`` and ``.../manager_status`` show the same
service states from the same model.

The HA *configuration* (resources, groups, rules) is modelled elsewhere; this module only
owns what the HA manager does and reports.
"""

from __future__ import annotations

import time as _time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import SimHTTPError, param_error
from ._handlers import Ctx, route
from ._model import stable_key

if TYPE_CHECKING:  # pragma: no cover
    from ._model import Guest
    from ._state import ClusterState, Task

__all__ = ["HAManager", "ha_manager", "is_ha_managed", "status_current"]


@dataclass
class _Migration:
    target: str
    request_upid: str
    task_upid: str | None = None  # the LRM's qmigrate/vzmigrate, once started


class HAManager:
    """HA service states of one cluster beyond the configured ``ha_state``."""

    def __init__(self, state: ClusterState) -> None:
        self._state = weakref.ref(state)
        self.migrations: dict[int, _Migration] = {}
        self.errors: dict[int, str] = {}

    @property
    def state(self) -> ClusterState:
        st = self._state()
        assert st is not None
        return st

    @property
    def master(self) -> str:
        """The CRM master: the first online node (PVE elects one; any stable choice does)."""
        st = self.state
        return next((n.name for n in st.nodes.values() if n.online), next(iter(st.nodes)))

    def service(self, g: Guest) -> dict[str, Any]:
        """``state``, ``node`` and, while migrating, ``target`` of ``g``'s HA service."""
        m = self.migrations.get(g.vmid)
        out: dict[str, Any] = {"node": g.node, "state": g.ha_state or "started"}
        if m is not None:
            out.update(state="migrate", target=m.target)
        elif g.vmid in self.errors:
            out["state"] = "error"
        return out

    # -- the API's part: queue the request --------------------------------------------------

    def request_migration(self, g: Guest, user: str, params: Mapping[str, Any]) -> str:
        st = self.state
        target = str(params.get("target", ""))
        if target == g.node:
            raise SimHTTPError(500, "target is local node.")
        if target not in st.nodes:
            raise param_error({"target": f"no such cluster node '{target}'"})
        kind = "VM" if g.type == "qemu" else "CT"

        def queued(task: Task) -> str | None:
            if g.vmid not in self.migrations:
                self.migrations[g.vmid] = _Migration(target, task.upid)
                self.errors.pop(g.vmid, None)
                self._run(g)
            return None

        task = st.start_task(
            g.node,
            "hamigrate",
            str(g.vmid),
            user,
            log=[f"Requesting HA migration for {kind} {g.vmid} to node {target}"],
            on_done=queued,
        )
        return task.upid

    # -- the LRM's part: run the migration --------------------------------------------------

    def _run(self, g: Guest) -> None:
        st = self.state
        m = self.migrations[g.vmid]
        params: dict[str, Any] = {"target": m.target}
        if g.running:
            params["online" if g.type == "qemu" else "restart"] = 1
        try:
            upid = st.migrate(g, "root@pam", params)
        except SimHTTPError as exc:
            # The LRM could not migrate (locked guest, target offline...): PVE's service
            # goes back to its state on the source node and the CRM logs the error.
            del self.migrations[g.vmid]
            self.errors[g.vmid] = exc.message
            st.changed()
            return
        m.task_upid = upid
        task = st.find_task(upid)
        assert task is not None
        inner_done, inner_fail = task.on_done, task.on_fail

        def done(t: Task) -> str | None:
            err = inner_done(t) if inner_done else None
            self.migrations.pop(g.vmid, None)
            if err:
                self.errors[g.vmid] = err
            return err

        def failed(t: Task) -> None:
            if inner_fail:
                inner_fail(t)
            self.migrations.pop(g.vmid, None)

        task.on_done, task.on_fail = done, failed


_MANAGERS: weakref.WeakKeyDictionary[ClusterState, HAManager] = weakref.WeakKeyDictionary()


def ha_manager(state: ClusterState) -> HAManager:
    """The HA manager of ``state`` (created on first use)."""
    mgr = _MANAGERS.get(state)
    if mgr is None:
        mgr = _MANAGERS[state] = HAManager(state)
    return mgr


def is_ha_managed(g: Guest) -> bool:
    return bool(g.ha_state) and g.ha_state != "ignored"


def _sid(g: Guest) -> str:
    return f"{'vm' if g.type == 'qemu' else 'ct'}:{g.vmid}"


def _ctime(t: int) -> str:
    return _time.strftime("%a %b %d %H:%M:%S %Y", _time.gmtime(t))


def status_current(st: ClusterState) -> list[dict[str, Any]]:
    """``GET /cluster/ha/status/current``."""
    mgr = ha_manager(st)
    master = mgr.master
    now = int(st.clock.now())
    rows: list[dict[str, Any]] = [
        {"id": "quorum", "type": "quorum", "node": master, "quorate": 1, "status": "OK"},
        {
            "id": "master",
            "type": "master",
            "node": master,
            "status": f"{master} (active, {_ctime(now)})",
            "timestamp": now,
        },
    ]
    for n in st.nodes.values():
        rows.append(
            {
                "id": f"lrm:{n.name}",
                "type": "lrm",
                "node": n.name,
                "status": f"{n.name} ({'active' if n.online else 'old timestamp - dead?'}"
                f", {_ctime(now)})",
                "timestamp": now,
            }
        )
    for g in st.guests.values():
        if not g.ha_state:
            continue
        sid = _sid(g)
        svc = mgr.service(g)
        rows.append(
            {
                "id": f"service:{sid}",
                "sid": sid,
                "type": "service",
                "node": svc["node"],
                "state": svc["state"],
                "crm_state": svc["state"],
                "request_state": g.ha_state,
                "max_restart": 1,
                "max_relocate": 1,
                "status": f"{sid} ({svc['node']}, {svc['state']})",
            }
        )
    return rows


@route("GET", "/cluster/ha/status/manager_status")
def manager_status(ctx: Ctx) -> Any:
    st = ctx.state
    mgr = ha_manager(st)
    now = int(st.clock.now())
    services: dict[str, Any] = {}
    for g in st.guests.values():
        if not g.ha_state:
            continue
        svc = mgr.service(g)
        entry: dict[str, Any] = {
            "node": svc["node"],
            "state": svc["state"],
            "uid": f"{stable_key('ha-uid', g.vmid, svc['state'], svc['node']):016x}",
        }
        if "target" in svc:
            entry["target"] = svc["target"]
        if svc["state"] == "started":
            entry["running"] = int(g.running)
        services[_sid(g)] = entry
    return {
        "manager_status": {
            "master_node": mgr.master,
            "node_status": {n.name: "online" if n.online else "unknown" for n in st.nodes.values()},
            "service_status": services,
            "timestamp": now,
        },
        "quorum": {"node": mgr.master, "quorate": "1"},
        "lrm_status": {
            n.name: {
                "mode": "active",
                "results": {},
                "state": "active" if n.online else "lost_agent_lock",
                "timestamp": now if n.online else int(n.boot_time),
            }
            for n in st.nodes.values()
        },
    }
