"""One simulated cluster's state and the actions that change it.

Everything here runs under :attr:`ClusterState.lock` (the HTTP handler takes it for each
request). Tasks progress lazily: every read calls :meth:`ClusterState.tick`, which finishes the
tasks whose time has come on the simulator clock and applies their effect (a migrated guest
changes node only when its migration task ends), so no background thread is needed and
``clock.advance()`` moves everything consistently.
"""

from __future__ import annotations

import functools
import math
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .._format import parse_bool
from .._parse import InvalidSizeError, parse_size
from ._clock import SimClock
from ._errors import SimHTTPError, param_error
from ._model import (
    DAY,
    GIB,
    Disk,
    Guest,
    Load,
    Node,
    Snapshot,
    StorageDef,
    StorageUse,
    Task,
    Volume,
    format_size,
    stable_key,
)

__all__ = ["MAX_TASKS", "ClusterState", "TaskPolicy"]

MAX_TASKS = 20_000

# Default task durations in seconds (real time on the default clock): short enough for tests
# and demos, long enough that "running" is observable.
DEFAULT_DURATIONS: dict[str, float] = {
    "qmstart": 1.0,
    "vzstart": 1.0,
    "qmstop": 0.8,
    "vzstop": 0.8,
    "qmshutdown": 1.5,
    "vzshutdown": 1.5,
    "qmreboot": 2.0,
    "vzreboot": 2.0,
    "qmreset": 0.5,
    "qmsuspend": 0.8,
    "vzsuspend": 0.8,
    "qmresume": 0.6,
    "vzresume": 0.6,
    "qmigrate": 2.5,
    "vzmigrate": 2.5,
    "qmclone": 2.0,
    "vzclone": 2.0,
    "qmdestroy": 1.0,
    "vzdestroy": 1.0,
    "qmsnapshot": 1.0,
    "vzsnapshot": 1.0,
    "qmdelsnapshot": 1.0,
    "vzdelsnapshot": 1.0,
    "qmrollback": 1.2,
    "vzrollback": 1.2,
    "vzdump": 3.0,
    "qmrestore": 2.5,
    "vzrestore": 2.5,
    "qmconfig": 0.5,
    "resize": 0.5,
    "vncproxy": 60.0,
    "vncshell": 60.0,
}


@dataclass
class TaskPolicy:
    """How long tasks take and how they end.

    ``durations`` maps a task type (``qmstart``) or ``"*"`` to seconds on the simulator clock;
    ``math.inf`` makes a task that never ends on its own. ``outcomes`` maps a type or ``"*"``
    to the exit status to force (``"WARNINGS: 1"`` or an error message).
    """

    durations: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    scale: float = 1.0
    # Set through Faults.slow_tasks()/fail_tasks(); they win over the scenario's settings.
    fault_durations: dict[str, float] = field(default_factory=dict)
    fault_outcomes: dict[str, str] = field(default_factory=dict)

    def duration(self, task_type: str) -> float:
        for table in (self.fault_durations, self.durations):
            if task_type in table:
                return table[task_type]
            if "*" in table:
                return table["*"]
        return DEFAULT_DURATIONS.get(task_type, 1.0) * self.scale

    def outcome(self, task_type: str) -> str | None:
        for table in (self.fault_outcomes, self.outcomes):
            found = table.get(task_type, table.get("*"))
            if found is not None:
                return found
        return None


_POWER_ACTIONS = frozenset({"start", "stop", "shutdown", "reboot", "reset", "suspend", "resume"})


class ClusterState:
    """Nodes, guests, storages, pools, tasks and users of one cluster."""

    def __init__(
        self,
        name: str,
        *,
        clock: SimClock,
        pve_version: str = "9.1",
        seed: int = 0,
        policy: TaskPolicy | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self.pve_version = pve_version
        self.major = int(pve_version.split(".")[0])
        self.seed = seed
        self.policy = policy or TaskPolicy()
        self.lock = threading.RLock()
        self.nodes: dict[str, Node] = {}
        self.guests: dict[int, Guest] = {}
        self.storage_defs: dict[str, StorageDef] = {}
        # (node, storage) -> usage; a shared storage maps every node to one StorageUse.
        self.storage_use: dict[tuple[str, str], StorageUse] = {}
        self.volumes: list[Volume] = []
        self.pools: dict[str, str] = {}  # poolid -> comment
        # HA placement rules in PVE 9 form (rule, type, resources, nodes, strict, affinity,
        # disable); 8.x serves the node-affinity ones as groups
        self.ha_rules: list[dict[str, Any]] = []
        self.tasks: list[Task] = []
        self.generation = 0  # bumped on every change: caches of serialized answers key on it
        self._rng = random.Random(stable_key("tasks", name, seed))
        self._pid = 100_000 + self._rng.randrange(100_000)
        self._exec_pid = 1000
        self.created = clock.now()

    # -- bookkeeping ------------------------------------------------------------------------

    def changed(self) -> None:
        self.generation += 1

    def now(self) -> float:
        return self.clock.now()

    def tick(self) -> None:
        """Finish the tasks whose end time has passed, in the order they end."""
        now = self.clock.now()
        # t.endtime is None is Task.running, spelled out: this runs on every request.
        due = [t for t in self.tasks if t.endtime is None and t.started_at + t.duration <= now]
        for task in sorted(due, key=lambda t: t.started_at + t.duration):
            self._finish(task, task.started_at + task.duration)

    def _finish(self, task: Task, end: float) -> None:
        outcome = task.outcome
        if outcome == "OK" or outcome.startswith("WARNINGS"):
            err = task.on_done(task) if task.on_done else None
            if err:
                outcome = err
        if not (outcome == "OK" or outcome.startswith("WARNINGS")) and task.on_fail:
            task.on_fail(task)
        task.outcome = outcome
        if outcome == "OK":
            task.log.append("TASK OK")
        elif outcome.startswith("WARNINGS"):
            task.log.append(f"TASK {outcome}")
        else:
            task.log.append(f"TASK ERROR: {outcome}")
        task.endtime = max(task.starttime, int(end))
        self.changed()

    # -- lookups ----------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        node = self.nodes.get(name)
        if node is None:
            # PVE: unknown node names fail in the proxy/route layer with this message.
            raise SimHTTPError(
                500,
                f"hostname lookup '{name}' failed - failed to get address info for: "
                f"{name}: Name or service not known",
            )
        return node

    def guest(self, node: str, vmid: int | str, gtype: str) -> Guest:
        vid = int(vmid)
        g = self.guests.get(vid)
        if g is None or g.type != gtype:
            conf = "qemu-server" if gtype == "qemu" else "lxc"
            raise SimHTTPError(
                500, f"Configuration file 'nodes/{node}/{conf}/{vid}.conf' does not exist"
            )
        if g.node != node:
            # PVE only finds a guest's config on the node that owns it.
            conf = "qemu-server" if gtype == "qemu" else "lxc"
            raise SimHTTPError(
                500, f"Configuration file 'nodes/{node}/{conf}/{vid}.conf' does not exist"
            )
        return g

    def storage(self, node: str, storage: str) -> tuple[StorageDef, StorageUse]:
        sdef = self.storage_defs.get(storage)
        use = self.storage_use.get((node, storage))
        if sdef is None or use is None:
            raise SimHTTPError(500, f"storage '{storage}' does not exist")
        return sdef, use

    def next_vmid(self) -> int:
        vmid = 100
        while vmid in self.guests:
            vmid += 1
        return vmid

    # -- tasks ------------------------------------------------------------------------------

    def start_task(
        self,
        node: str,
        task_type: str,
        task_id: str,
        user: str,
        *,
        log: list[str] | None = None,
        on_done: Callable[[Task], str | None] | None = None,
        on_fail: Callable[[Task], None] | None = None,
        outcome: str = "OK",
    ) -> Task:
        """Create a running task and return it; its UPID is what the API call answers."""
        now = self.clock.now()
        self._pid += self._rng.randrange(3, 400)
        pid = self._pid
        n = self.nodes.get(node)
        boot = n.boot_time if n else self.created - 86400
        pstart = int((now - boot) * 100) & 0xFFFFFFFF  # jiffies since boot, as PVE does
        start = int(now)
        upid = f"UPID:{node}:{pid:08X}:{pstart:08X}:{start:08X}:{task_type}:{task_id}:{user}:"
        forced = self.policy.outcome(task_type)
        task = Task(
            upid=upid,
            node=node,
            type=task_type,
            id=task_id,
            user=user,
            starttime=start,
            pid=pid,
            pstart=pstart,
            duration=self.policy.duration(task_type),
            outcome=forced or outcome,
            log=list(log or []),
            started_at=now,
            on_done=on_done,
            on_fail=on_fail,
        )
        self.tasks.append(task)
        if len(self.tasks) > MAX_TASKS:
            # Like PVE's task archive rotation: forget the oldest finished tasks.
            finished = [t for t in self.tasks if not t.running]
            drop = {id(t) for t in finished[: len(self.tasks) - MAX_TASKS]}
            self.tasks = [t for t in self.tasks if id(t) not in drop]
        self.changed()
        if task.duration <= 0:
            self._finish(task, now)
        return task

    def add_finished_task(
        self,
        node: str,
        task_type: str,
        task_id: str,
        user: str,
        start: float,
        duration: float,
        outcome: str,
        log: list[str],
    ) -> Task:
        """Record a task that ran in the past (scenario history); no effect is applied."""
        self._pid += self._rng.randrange(3, 400)
        n = self.nodes[node]
        pstart = int(max(0.0, start - n.boot_time) * 100) & 0xFFFFFFFF
        upid = (
            f"UPID:{node}:{self._pid:08X}:{pstart:08X}:{int(start):08X}:{task_type}:"
            f"{task_id}:{user}:"
        )
        task = Task(
            upid=upid,
            node=node,
            type=task_type,
            id=task_id,
            user=user,
            starttime=int(start),
            pid=self._pid,
            pstart=pstart,
            duration=duration,
            outcome=outcome,
            log=list(log),
            started_at=start,
        )
        self.tasks.append(task)
        self._finish(task, start + duration)
        return task

    def find_task(self, upid: str) -> Task | None:
        for task in reversed(self.tasks):
            if task.upid == upid:
                return task
        return None

    def stop_task(self, task: Task) -> None:
        if task.running:
            task.outcome = "unexpected status"
            task.on_done = None
            task.log.append("received interrupt")
            self._finish(task, self.clock.now())

    # -- guard helpers ----------------------------------------------------------------------

    @staticmethod
    def check_lock(g: Guest, skiplock: bool = False) -> None:
        if g.lock and not skiplock:
            raise SimHTTPError(500, f"{g.kind} is locked ({g.lock})")

    def _config_flock(self, g: Guest, action: str, params: Mapping[str, Any]) -> None:
        """A running power task holds the guest's config file lock (``lock_config``), so a
        second one fails to get it, as on PVE; ``stop`` with ``overrule-shutdown`` aborts a
        pending shutdown instead."""
        prefix = "qm" if g.type == "qemu" else "vz"
        for t in self.tasks:
            if not (t.running and t.id == str(g.vmid) and t.type.startswith(prefix)):
                continue
            if t.type[len(prefix) :] not in _POWER_ACTIONS:
                continue
            overrule = _truthy(params.get("overrule-shutdown"))
            if action == "stop" and t.type.endswith("shutdown") and overrule:
                self.stop_task(t)
                continue
            path = (
                f"/var/lock/qemu-server/lock-{g.vmid}.conf"
                if g.type == "qemu"
                else f"/run/lock/lxc/pve-config-{g.vmid}.lock"
            )
            raise SimHTTPError(500, f"can't lock file '{path}' - got timeout")

    def check_node_online(self, node: str) -> None:
        n = self.node(node)
        if not n.online:
            raise SimHTTPError(595, f"Connection refused - no route to host {n.ip}:8006")

    def _guest_task(self, g: Guest, action: str, user: str, **kwargs: Any) -> str:
        """Start the guest's ``qm<action>`` or ``vz<action>`` task on its node; its UPID."""
        prefix = "qm" if g.type == "qemu" else "vz"
        return self.start_task(g.node, f"{prefix}{action}", str(g.vmid), user, **kwargs).upid

    def _unlock_on_fail(self, g: Guest) -> Callable[[Task], None]:
        """An ``on_fail`` callback that releases the lock the guest's task took."""

        def failed(task: Task) -> None:
            g.lock = None
            self.changed()

        return failed

    # -- lifecycle --------------------------------------------------------------------------

    def power(self, g: Guest, action: str, user: str, params: Mapping[str, Any]) -> str:
        """start/stop/shutdown/reboot/reset/suspend/resume; returns the task UPID."""
        skiplock = _truthy(params.get("skiplock"))
        self.check_lock(g, skiplock)
        self._config_flock(g, action, params)
        label = f"{g.kind} {g.vmid}"
        if action == "start":
            if g.template:
                raise SimHTTPError(500, "you can't start a vm if it's a template")
            if g.running:
                raise SimHTTPError(500, f"{label} already running")
        elif action == "resume":
            if not g.running:
                raise SimHTTPError(500, f"{label} not running")
            if not g.paused:
                raise SimHTTPError(
                    500, f"{label} not paused" if g.type == "qemu" else f"{label} is not frozen"
                )
        elif action in ("stop", "shutdown", "reboot", "reset", "suspend") and not g.running:
            raise SimHTTPError(500, f"{label} not running")
        if action == "reset" and g.type != "qemu":
            raise SimHTTPError(
                501, f"Method 'POST /nodes/{g.node}/lxc/{g.vmid}/status/reset' not implemented"
            )

        def done(task: Task) -> str | None:
            now = self.clock.now()
            if action == "start":
                g.status, g.paused, g.started_at = "running", False, now
                g.pid = 1000 + stable_key(g.vmid, now) % 4_000_000
                if g.ha_state is not None:
                    g.ha_state = "started"
            elif action in ("stop", "shutdown"):
                g.status, g.paused, g.started_at, g.pid = "stopped", False, None, 0
                if g.ha_state is not None:
                    g.ha_state = "stopped"
            elif action == "reboot":
                g.started_at, g.paused = now, False
            elif action == "reset":
                g.started_at = now
            elif action == "suspend":
                g.paused = True
            elif action == "resume":
                g.paused = False
            self.changed()
            return None

        log: list[str] = []
        if action == "start" and g.type == "qemu":
            log = [f"starting VM {g.vmid}"] if self.major >= 9 else []
        if action == "shutdown":
            log = [f"shutting down {label}"]
        return self._guest_task(g, action, user, log=log, on_done=done)

    def migrate(self, g: Guest, user: str, params: Mapping[str, Any]) -> str:
        target = str(params.get("target", ""))
        online = _truthy(params.get("online"))
        restart = _truthy(params.get("restart"))
        self.check_lock(g)
        if target == g.node:
            raise SimHTTPError(500, f"target is local node.")  # noqa: F541
        if target not in self.nodes:
            raise param_error({"target": f"no such cluster node '{target}'"})
        if not self.nodes[target].online:
            raise SimHTTPError(500, f"target node '{target}' is not online")
        if g.running:
            if g.type == "qemu" and not online:
                raise SimHTTPError(500, "can't migrate running VM without --online")
            if g.type == "lxc" and not restart:
                raise SimHTTPError(
                    500, "lxc live migration is currently not implemented - use 'restart' mode"
                )
        devices = sorted(k for k in g.config if re.match(r"^(?:hostpci|usb)\d+$", k))
        devices = [k for k in devices if "mapping=" not in str(g.config[k])]
        if g.type == "qemu" and devices and not _truthy(params.get("force")):
            # PVE refuses unless root passes force=1 (the device must exist on the target);
            # a mapped device is resolved on the target by its mapping.
            raise SimHTTPError(
                500, f"can't migrate VM which uses local devices: {', '.join(devices)}"
            )
        local_disks = False
        for disk in g.disks.values():
            sdef = self.storage_defs.get(disk.storage)
            if sdef and not sdef.shared and (target, disk.storage) not in self.storage_use:
                raise SimHTTPError(
                    500, f"storage '{disk.storage}' is not available on node '{target}'"
                )
            local_disks = local_disks or bool(sdef and not sdef.shared)
        if (
            g.type == "qemu"
            and g.running
            and local_disks
            and not _truthy(params.get("with-local-disks"))
        ):
            raise SimHTTPError(
                500, "can't live migrate attached local disks without with-local-disks option"
            )
        source = g.node
        g.lock = "migrate"
        self.changed()
        kind = "VM" if g.type == "qemu" else "CT"
        log = [
            f"{_stamp(self.clock.now())} starting migration of {kind} {g.vmid} to node "
            f"'{target}' ({self.nodes[target].ip})",
        ]
        if params.get("migration_network"):
            log.append(
                f"{_stamp(self.clock.now())} using migration network {params['migration_network']}"
            )
        if g.running and g.type == "qemu":
            log += [
                f"{_stamp(self.clock.now())} starting VM {g.vmid} on remote node '{target}'",
                f"{_stamp(self.clock.now())} start remote tunnel",
                f"{_stamp(self.clock.now())} migration active, transferred "
                f"{format_size(g.mem(self.clock.now()) // 2 // (1024**2) * 1024**2)} of "
                f"{format_size(g.maxmem)} VM-state",
                f"{_stamp(self.clock.now())} migration status: completed",
            ]
        was_running = g.running

        def done(task: Task) -> str | None:
            if not self.nodes[target].online:
                task.log.append(
                    f"{_stamp(self.clock.now())} ERROR: migration aborted: target node "
                    f"'{target}' went offline"
                )
                return f"migration aborted: target node '{target}' is not online"
            g.node = target
            g.lock = None
            if g.type == "lxc" and was_running:
                g.started_at = self.clock.now()
            task.log.append(
                f"{_stamp(self.clock.now())} migration finished successfully "
                f"(duration {_hms(task.duration)})"
            )
            self.changed()
            return None

        return self.start_task(
            source,
            "qmigrate" if g.type == "qemu" else "vzmigrate",
            str(g.vmid),
            user,
            log=log,
            on_done=done,
            on_fail=self._unlock_on_fail(g),
        ).upid

    def clone(self, g: Guest, user: str, params: Mapping[str, Any]) -> str:
        newid = int(params["newid"])
        if newid in self.guests:
            raise SimHTTPError(
                500, f"unable to create {g.kind} {newid}: config file already exists"
            )
        full = _truthy(params.get("full")) or not g.template
        target = str(params.get("target") or g.node)
        if target not in self.nodes:
            raise param_error({"target": f"no such cluster node '{target}'"})
        self.check_lock(g)
        if g.running and g.type == "lxc":
            raise SimHTTPError(500, "CT is running - clone not possible unless it is a snapshot")
        name = str(params.get("name") or params.get("hostname") or f"Copy-of-{g.name}")
        storage = params.get("storage")
        disks: dict[str, Disk] = {}
        for i, (key, d) in enumerate(g.disks.items()):
            st = str(storage) if storage else d.storage
            kind = "subvol" if d.volname.startswith(("subvol-", "basevol-")) else "vm"
            vol = f"{kind}-{newid}-disk-{i}"
            if not full:
                # a linked clone's volume lives on top of the template's base volume
                vol = f"{d.volname}/{vol}"
            disks[key] = Disk(key, st, vol, d.size, dict(d.options), d.fmt, d.mountpoint)
        clone = Guest(
            vmid=newid,
            type=g.type,
            name=name,
            node=target,
            status="stopped",
            cores=g.cores,
            memory_mb=g.memory_mb,
            disks=disks,
            nets=dict(g.nets),
            load=Load(
                stable_key("clone", newid), g.load.base, t0=self.clock.now(), phase=g.load.phase
            ),
            mem_frac=g.mem_frac,
            disk_frac=g.disk_frac,
            sockets=g.sockets,
            balloon_mb=g.balloon_mb,
            swap_mb=g.swap_mb,
            tags=list(g.tags),
            pool=str(params["pool"]) if params.get("pool") else None,
            config=dict(g.config),
            agent=g.agent,
            ostype=g.ostype,
            lock="clone",
            ip=None,
            mac=_mac(newid),
        )
        clone.nets = {k: _replace_mac(v, clone.mac) for k, v in clone.nets.items()}
        if params.get("description"):
            clone.config["description"] = str(params["description"])
        self.guests[newid] = clone
        g.lock = g.lock or ("clone" if g.type == "qemu" and not g.template else None)
        self.changed()
        src_lock = g.lock

        def done(task: Task) -> str | None:
            clone.lock = None
            if src_lock == "clone":
                g.lock = None
            self.changed()
            return None

        def failed(task: Task) -> None:
            self.guests.pop(newid, None)
            if src_lock == "clone":
                g.lock = None
            self.changed()

        log = [
            f"create {'full' if full else 'linked'} clone of drive {k} ({d.volid})"
            for k, d in g.disks.items()
        ]
        return self._guest_task(g, "clone", user, log=log, on_done=done, on_fail=failed)

    def destroy(self, g: Guest, user: str, params: Mapping[str, Any]) -> str:
        self.check_lock(g, _truthy(params.get("skiplock")))
        if g.running:
            raise SimHTTPError(
                500, f"{g.kind if g.type == 'lxc' else 'VM'} {g.vmid} is running - destroy failed"
            )
        if g.ha_state is not None and not _truthy(params.get("purge")):
            raise SimHTTPError(
                500,
                f"unable to remove {g.kind} {g.vmid} - used in HA "
                "resources and purge parameter not set.",
            )
        g.lock = "destroyed"
        self.changed()

        def done(task: Task) -> str | None:
            self.guests.pop(g.vmid, None)
            if _truthy(params.get("purge")):
                self.volumes = [
                    v for v in self.volumes if v.vmid != g.vmid or v.content != "backup"
                ]
            self.changed()
            return None

        log = [f"Removing image: 100% complete...done." for _ in g.disks]  # noqa: F541
        return self._guest_task(g, "destroy", user, log=log, on_done=done)

    # -- configuration ----------------------------------------------------------------------

    def config(self, g: Guest, *, current: bool = False) -> dict[str, Any]:
        """The guest config as ``GET .../config`` answers (digest included)."""
        out: dict[str, Any] = {}
        if g.type == "qemu":
            out.update(
                {
                    "name": g.name,
                    "cores": g.cores,
                    "sockets": g.sockets,
                    "memory": str(g.memory_mb) if self.major >= 8 else g.memory_mb,
                    "ostype": g.ostype,
                    "boot": g.config.get("boot", f"order={next(iter(g.disks), 'scsi0')};net0"),
                    "scsihw": g.config.get("scsihw", "virtio-scsi-single"),
                    "vmgenid": g.config.get("vmgenid", _uuid(g.vmid, "gen")),
                    "smbios1": f"uuid={_uuid(g.vmid, 'smbios')}",
                    "numa": 0,
                    "ide2": g.config.get("ide2", "none,media=cdrom"),
                }
            )
            if g.agent:
                out["agent"] = "1"
            if g.balloon_mb is not None:
                out["balloon"] = g.balloon_mb
            cpu = g.config.get("cpu", "x86-64-v2-AES")
            out["cpu"] = cpu
        else:
            out.update(
                {
                    "hostname": g.name,
                    "cores": g.cores,
                    "memory": g.memory_mb,
                    "swap": g.swap_mb,
                    "ostype": g.ostype,
                    "arch": "amd64",
                    "unprivileged": 1,
                    "features": g.config.get("features", "nesting=1"),
                }
            )
        for key, d in g.disks.items():
            out[key] = d.config_string()
        out.update(g.nets)
        for key, value in g.config.items():
            if key in ("boot", "cpu", "features", "scsihw", "vmgenid", "ide2"):
                continue
            out[key] = value
        if g.tags:
            out["tags"] = ";".join(g.tags)
        if g.lock:
            out["lock"] = g.lock
        if g.template:
            out["template"] = 1
        if g.parent_snapshot and not current:
            out["parent"] = g.parent_snapshot
        out["digest"] = _digest(out)
        return out

    def update_config(
        self, g: Guest, user: str, params: Mapping[str, Any], *, is_async: bool
    ) -> str | None:
        """PUT/POST config: apply keys, ``delete`` and ``digest`` like PVE."""
        self.check_lock(g, _truthy(params.get("skiplock")))
        digest = params.get("digest")
        if digest and digest != self.config(g)["digest"]:
            raise SimHTTPError(
                500, "detected modified configuration - file changed by other user? Try again."
            )
        skip = {
            "node",
            "vmid",
            "digest",
            "delete",
            "revert",
            "skiplock",
            "background_delay",
            "force",
        }
        deletes = [d for d in str(params.get("delete") or "").replace(";", ",").split(",") if d]
        for key in deletes:
            if key in g.nets:
                del g.nets[key]
            elif key in g.disks and key not in ("rootfs",):
                d = g.disks.pop(key)
                g.config[f"unused{sum(k.startswith('unused') for k in g.config)}"] = d.volid
            elif key == "tags":
                g.tags = []
            elif key in ("balloon",):
                g.balloon_mb = None
            else:
                g.config.pop(key, None)
        for key, raw in params.items():
            if key in skip:
                continue
            value = raw[-1] if isinstance(raw, list) else raw
            sval = str(value)
            if key == "name" or key == "hostname":
                g.name = sval
            elif key == "cores":
                g.cores = int(sval)
            elif key == "sockets":
                g.sockets = int(sval)
            elif key == "memory":
                mem = sval.split(",")[0].replace("current=", "")
                g.memory_mb = int(mem)
            elif key == "balloon":
                g.balloon_mb = int(sval)
            elif key == "swap":
                g.swap_mb = int(sval)
            elif key == "tags":
                g.tags = [t for t in sval.replace(",", ";").replace(" ", ";").split(";") if t]
            elif key == "agent":
                g.agent = sval.split(",")[0] in ("1", "enabled=1")
            elif key == "ostype":
                g.ostype = sval
            elif key.startswith("net") and key[3:].isdigit():
                g.nets[key] = sval
            elif key in g.disks:
                # options of an existing drive; its size only changes through resize
                d = g.disks[key]
                d.options.update(
                    dict(
                        p.split("=", 1)
                        for p in sval.split(",")[1:]
                        if "=" in p and not p.startswith(("size=", "mp="))
                    )
                )
            elif _is_disk_key(key, g.type):
                storage, _, rest = sval.partition(":")
                size_txt = rest.split(",")[0]
                size = _size_or_none(size_txt + ("G" if size_txt.isdigit() else ""))
                vol = f"vm-{g.vmid}-disk-{len(g.disks)}"
                g.disks[key] = Disk(key, storage, vol, size or GIB)
            else:
                g.config[key] = self._typed(g, key, sval)
        self.changed()
        if not is_async:
            return None
        return self.start_task(g.node, "qmconfig", str(g.vmid), user).upid

    def _typed(self, g: Guest, key: str, value: str) -> Any:
        """A config value as GET config returns it: integers and 0/1 booleans as numbers,
        everything else (``number`` types like ``cpulimit`` included) as strings (QUIRKS 1)."""
        from ._schema import load_schema

        ep = load_schema(self.pve_version).endpoints.get(
            (f"/nodes/{{node}}/{g.type}/{{vmid}}/config", "PUT")
        )
        spec = ep.param_spec(key) if ep else None
        typ = spec.get("t") if spec else None
        if typ == "boolean":
            return 1 if parse_bool(value) else 0
        if typ == "integer":
            return int(value)
        return value

    def resize(self, g: Guest, user: str, params: Mapping[str, Any]) -> str:
        self.check_lock(g, _truthy(params.get("skiplock")))
        key = str(params["disk"])
        d = g.disks.get(key)
        if d is None:
            raise SimHTTPError(
                500,
                f"disk '{key}' does not exist"
                if g.type == "qemu"
                else f"unable to parse volume ID '{key}'",
            )
        text = str(params["size"])
        grow = text.startswith("+")
        size = _size_or_none(text.lstrip("+"))
        if size is None:
            raise param_error({"size": "value does not match the regex pattern"})
        new = d.size + size if grow else size
        if new < d.size:
            raise SimHTTPError(500, "shrinking disks is not supported")
        old = d.size

        def done(task: Task) -> str | None:
            d.size = new
            self.changed()
            return None

        log = [f"Image resized. {format_size(old)} -> {format_size(new)}"]
        return self.start_task(g.node, "resize", str(g.vmid), user, log=log, on_done=done).upid

    # -- snapshots --------------------------------------------------------------------------

    def snapshot_list(self, g: Guest) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for s in g.snapshots:
            row: dict[str, Any] = {
                "name": s.name,
                "description": s.description,
                "snaptime": s.snaptime,
            }
            if s.parent:
                row["parent"] = s.parent
            if s.vmstate:
                row["vmstate"] = 1
            out.append(row)
        current: dict[str, Any] = {
            "name": "current",
            "description": "You are here!",
            "digest": self.config(g)["digest"],
        }
        if g.parent_snapshot:
            current["parent"] = g.parent_snapshot
        if g.running:
            current["running"] = 1
        out.append(current)
        return out

    def snapshot(self, g: Guest, user: str, params: Mapping[str, Any]) -> str:
        name = str(params["snapname"])
        self.check_lock(g)
        if name == "current" or any(s.name == name for s in g.snapshots):
            raise SimHTTPError(500, f"snapshot name '{name}' already used")
        vmstate = _truthy(params.get("vmstate")) and g.running and g.type == "qemu"
        g.lock = "snapshot"
        self.changed()

        def done(task: Task) -> str | None:
            g.snapshots.append(
                Snapshot(
                    name,
                    str(params.get("description") or ""),
                    int(self.clock.now()),
                    g.parent_snapshot,
                    vmstate,
                )
            )
            g.parent_snapshot = name
            g.lock = None
            self.changed()
            return None

        log = [
            f"{'saving VM state and RAM' if vmstate else 'snapshotting'} '{k}' ({d.volid})"
            for k, d in g.disks.items()
        ]
        return self._guest_task(
            g, "snapshot", user, log=log, on_done=done, on_fail=self._unlock_on_fail(g)
        )

    def _snap(self, g: Guest, name: str) -> Snapshot:
        for s in g.snapshots:
            if s.name == name:
                return s
        raise SimHTTPError(500, f"snapshot '{name}' does not exist")

    def delete_snapshot(self, g: Guest, user: str, name: str, force: bool) -> str:
        snap = self._snap(g, name)
        if not force:
            self.check_lock(g)
        g.lock = "snapshot-delete"
        self.changed()

        def done(task: Task) -> str | None:
            for other in g.snapshots:
                if other.parent == snap.name:
                    other.parent = snap.parent
            if g.parent_snapshot == snap.name:
                g.parent_snapshot = snap.parent
            g.snapshots = [s for s in g.snapshots if s.name != snap.name]
            g.lock = None
            self.changed()
            return None

        return self._guest_task(
            g, "delsnapshot", user, on_done=done, on_fail=self._unlock_on_fail(g)
        )

    def rollback(self, g: Guest, user: str, name: str, start: bool) -> str:
        snap = self._snap(g, name)
        self.check_lock(g)
        g.lock = "rollback"
        self.changed()

        def done(task: Task) -> str | None:
            g.parent_snapshot = snap.name
            g.lock = None
            now = self.clock.now()
            if snap.vmstate or start:
                g.status, g.started_at = "running", now
            else:
                g.status, g.started_at = "stopped", None
            self.changed()
            return None

        return self._guest_task(g, "rollback", user, on_done=done, on_fail=self._unlock_on_fail(g))

    # -- backups ----------------------------------------------------------------------------

    def vzdump(self, node: str, user: str, params: Mapping[str, Any]) -> str:
        vmids = [
            int(v) for v in str(params.get("vmid") or "").replace(";", ",").split(",") if v.strip()
        ]
        if _truthy(params.get("all")):
            vmids = [g.vmid for g in self.guests.values() if g.node == node and not g.template]
        if not vmids:
            raise param_error({"vmid": "property is missing and it is not optional"})
        storage = str(params.get("storage") or self._default_backup_storage(node))
        if (node, storage) not in self.storage_use:
            raise SimHTTPError(500, f"storage '{storage}' does not exist")
        if "backup" not in self.storage_defs[storage].content:
            raise SimHTTPError(500, f"storage '{storage}' does not support backups")
        guests: list[Guest] = []
        for vmid in vmids:
            g = self.guests.get(vmid)
            if g is None:
                raise SimHTTPError(500, f"unable to find VM {vmid}")
            if g.node != node:
                raise SimHTTPError(500, f"guest {vmid} is not on node '{node}'")
            self.check_lock(g)
            guests.append(g)
        mode = str(params.get("mode") or "snapshot")
        compress = str(params.get("compress") or "zstd")
        ext = {"zstd": ".zst", "gzip": ".gz", "lzo": ".lzo", "0": "", "1": ".lzo"}.get(
            compress, ".zst"
        )
        notes = params.get("notes-template")
        for g in guests:
            g.lock = "backup"
        self.changed()
        now = self.clock.now()
        log = [
            f"INFO: starting new backup job: vzdump {' '.join(map(str, vmids))} "
            f"--mode {mode} --storage {storage} --compress {compress}"
            + (
                f" --notification-mode {params['notification-mode']}"
                if params.get("notification-mode")
                else ""
            )
        ]
        for g in guests:
            log += [
                f"INFO: Starting Backup of VM {g.vmid} ({g.type})",
                f"INFO: Backup started at {_stamp(now)}",
                f"INFO: status = {g.status}",
                f"INFO: backup mode: {mode}",
            ]

        def done(task: Task) -> str | None:
            end = self.clock.now()
            stamp = datetime.fromtimestamp(end, tz=UTC).strftime("%Y_%m_%d-%H_%M_%S")
            shared = self.storage_defs[storage].shared
            for g in guests:
                g.lock = None
                fmt = "vma" if g.type == "qemu" else "tar"
                volid = f"{storage}:backup/vzdump-{g.type}-{g.vmid}-{stamp}.{fmt}{ext}"
                size = int(sum(d.size for d in g.disks.values()) * 0.18) + g.vmid * 4096
                self.volumes.append(
                    Volume(
                        volid=volid,
                        storage=storage,
                        content="backup",
                        fmt=f"{fmt}{'.' + ext.lstrip('.') if ext else ''}",
                        size=size,
                        ctime=int(end),
                        node=None if shared else node,
                        vmid=g.vmid,
                        notes=_notes(notes, g) if notes else None,
                        subtype=g.type,
                    )
                )
                self.storage_use[(node, storage)].extra_used += size
                task.log.append(f"INFO: archive file size: {format_size(size // GIB * GIB or GIB)}")
                task.log.append(f"INFO: Finished Backup of VM {g.vmid} ({_hms(task.duration)})")
            task.log.append("INFO: Backup job finished successfully")
            self.changed()
            return None

        def failed(task: Task) -> None:
            for g in guests:
                g.lock = None
                task.log.append(f"ERROR: Backup of VM {g.vmid} failed - {task.outcome}")
            self.changed()

        task_id = str(vmids[0]) if len(vmids) == 1 else ""
        return self.start_task(
            node, "vzdump", task_id, user, log=log, on_done=done, on_fail=failed
        ).upid

    def _default_backup_storage(self, node: str) -> str:
        for (n, st), _ in self.storage_use.items():
            if n == node and "backup" in self.storage_defs[st].content:
                return st
        return "local"

    def restore(self, node: str, gtype: str, user: str, params: Mapping[str, Any]) -> str:
        vmid = int(params["vmid"])
        archive = str(params.get("archive") or params.get("ostemplate") or "")
        vol = next((v for v in self.volumes if v.volid == archive), None)
        if vol is None:
            raise SimHTTPError(500, f"volume '{archive}' does not exist")
        if vol.content == "backup" and vol.subtype and vol.subtype != gtype:
            raise SimHTTPError(
                500, f"unable to restore {gtype} guest from {vol.subtype} backup '{archive}'"
            )
        existing = self.guests.get(vmid)
        if existing is not None and existing.type != gtype:
            raise SimHTTPError(
                500,
                f"unable to restore {vmid} - {existing.kind} "
                f"{vmid} already exists and is of another type",
            )
        if existing is not None:
            if not _truthy(params.get("force")):
                raise SimHTTPError(
                    500,
                    f"unable to restore {existing.kind} {vmid} - VM already exists"
                    if gtype == "qemu"
                    else f"unable to restore CT {vmid} - CT already exists",
                )
            if existing.running:
                raise SimHTTPError(500, f"unable to restore VM {vmid} - VM is running")
            self.check_lock(existing)
        src = self.guests.get(vol.vmid) if vol.vmid is not None else None
        storage = str(
            params.get("storage")
            or (next(iter(src.disks.values())).storage if src and src.disks else "local-lvm")
        )
        template: Guest | None = src if src is not None else existing
        rng = random.Random(stable_key("restore", vmid))
        disks = {
            k: Disk(k, storage, f"vm-{vmid}-disk-{i}", d.size, dict(d.options), d.fmt, d.mountpoint)
            for i, (k, d) in enumerate((template.disks if template else {}).items())
        } or (
            {"rootfs": Disk("rootfs", storage, f"vm-{vmid}-disk-0", 8 * GIB)}
            if gtype == "lxc"
            else {"scsi0": Disk("scsi0", storage, f"vm-{vmid}-disk-0", 32 * GIB)}
        )
        g = Guest(
            vmid=vmid,
            type=gtype,
            name=(template.name if template else f"restored-{vmid}"),
            node=node,
            status="stopped",
            cores=template.cores if template else 2,
            memory_mb=template.memory_mb if template else 2048,
            disks=disks,
            nets=dict(template.nets) if template else {"net0": f"virtio={_mac(vmid)},bridge=vmbr0"},
            load=Load(stable_key("restored", vmid), rng.uniform(0.05, 0.3), t0=self.clock.now()),
            mem_frac=rng.uniform(0.3, 0.7),
            disk_frac=rng.uniform(0.2, 0.6),
            agent=template.agent if template else False,
            lock="create",
            ostype=template.ostype if template else ("l26" if gtype == "qemu" else "debian"),
            tags=list(template.tags) if template else [],
            mac=_mac(vmid),
            pool=str(params["pool"]) if params.get("pool") else None,
        )
        self.guests[vmid] = g
        self.changed()

        def done(task: Task) -> str | None:
            g.lock = None
            if _truthy(params.get("start")):
                g.status, g.started_at = "running", self.clock.now()
            self.changed()
            return None

        def failed(task: Task) -> None:
            if existing is not None:
                self.guests[vmid] = existing
            else:
                self.guests.pop(vmid, None)
            self.changed()

        log = [
            f"restore vma archive: {archive}"
            if gtype == "qemu"
            else f"recovering backed-up configuration from '{archive}'"
        ]
        return self.start_task(
            node,
            "qmrestore" if gtype == "qemu" else "vzrestore",
            str(vmid),
            user,
            log=log,
            on_done=done,
            on_fail=failed,
        ).upid

    def delete_volume(self, node: str, storage: str, volid: str, user: str) -> str:
        vol = next((v for v in self.volumes if v.volid == volid), None)
        if vol is None:
            raise SimHTTPError(500, f"volume '{volid}' does not exist")
        if vol.protected:
            raise SimHTTPError(500, "cannot delete protected backup")

        def done(task: Task) -> str | None:
            if vol in self.volumes:
                self.volumes.remove(vol)
                use = self.storage_use.get((node, storage))
                if use is not None and vol.content == "backup":
                    use.extra_used = max(0, use.extra_used - vol.size)
            self.changed()
            return None

        return self.start_task(node, "imgdel", volid, user, on_done=done).upid

    # -- guest agent ------------------------------------------------------------------------

    def agent_check(self, g: Guest) -> None:
        if not g.agent:
            raise SimHTTPError(500, "No QEMU guest agent configured")
        if not g.running:
            raise SimHTTPError(500, f"VM {g.vmid} is not running")
        if g.paused:
            raise SimHTTPError(500, f"VM {g.vmid} qmp command 'guest-ping' failed - got timeout")

    def agent_exec(self, g: Guest, command: list[str], input_data: str | None) -> int:
        self.agent_check(g)
        self._exec_pid += 17
        pid = self._exec_pid
        now = self.clock.now()
        prog = command[0] if command else ""
        args = command[1:]
        out, err, code, duration = "", "", 0, 0.0
        if prog in ("hostname", "/bin/hostname"):
            out = g.name + "\n"
        elif prog in ("echo", "/bin/echo"):
            out = " ".join(args) + "\n"
        elif prog in ("cat", "/bin/cat") and not args and input_data is not None:
            out = input_data
        elif prog in ("uname", "/bin/uname"):
            out = ("Linux " + g.name + " 6.8.12-4-pve x86_64\n") if "-a" in args else "Linux\n"
        elif prog in ("true", "/bin/true"):
            pass
        elif prog in ("false", "/bin/false"):
            code = 1
        elif prog in ("sleep", "/bin/sleep"):
            try:
                duration = float(args[0]) if args else 0.0
            except ValueError:
                code, err = 1, f"sleep: invalid time interval '{args[0]}'\n"
        elif prog in ("df", "/bin/df"):
            out = "Filesystem     1K-blocks    Used Available Use% Mounted on\n"
            for fs in self.agent_fsinfo(g):
                if "total-bytes" in fs:
                    tot, used = fs["total-bytes"] // 1024, fs["used-bytes"] // 1024
                    out += (
                        f"{fs['name']:<14} {tot:>9} {used:>7} {tot - used:>9} "
                        f"{used * 100 // max(tot, 1):>3}% {fs['mountpoint']}\n"
                    )
        else:
            code, err = 127, f"bash: line 1: {prog}: command not found\n"
        g.exec_jobs[pid] = {
            "start": now,
            "duration": duration,
            "out": out,
            "err": err,
            "code": code,
        }
        if len(g.exec_jobs) > 64:  # bounded like the agent's own table
            g.exec_jobs.pop(min(g.exec_jobs))
        return pid

    def agent_exec_status(self, g: Guest, pid: int) -> dict[str, Any]:
        self.agent_check(g)
        job = g.exec_jobs.get(pid)
        if job is None:
            raise SimHTTPError(500, f"Agent error: Invalid parameter 'pid'")  # noqa: F541
        if self.clock.now() < job["start"] + job["duration"]:
            return {"exited": 0}
        out: dict[str, Any] = {"exited": 1, "exitcode": job["code"]}
        if job["out"]:
            out["out-data"] = job["out"]
        if job["err"]:
            out["err-data"] = job["err"]
        return out

    def agent_interfaces(self, g: Guest) -> list[dict[str, Any]]:
        self.agent_check(g)
        lo = {
            "name": "lo",
            "hardware-address": "00:00:00:00:00:00",
            "ip-addresses": [
                {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8},
                {"ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128},
            ],
            "statistics": _if_stats(g, self.clock.now(), 0.01),
        }
        win = g.ostype.startswith("win")
        eth: dict[str, Any] = {
            "name": "Ethernet" if win else "eth0",
            "hardware-address": g.mac.lower(),
            "ip-addresses": [],
            "statistics": _if_stats(g, self.clock.now(), 1.0),
        }
        if g.ip:
            eth["ip-addresses"].append(
                {"ip-address": g.ip, "ip-address-type": "ipv4", "prefix": 24}
            )
        eth["ip-addresses"].append(
            {"ip-address": _link_local(g.mac), "ip-address-type": "ipv6", "prefix": 64}
        )
        return [eth] if win else [lo, eth]

    def agent_fsinfo(self, g: Guest) -> list[dict[str, Any]]:
        self.agent_check(g)
        now = self.clock.now()
        win = g.ostype.startswith("win")
        out: list[dict[str, Any]] = []
        for i, (key, d) in enumerate(g.disks.items()):
            if key.startswith(("ide", "efidisk", "tpmstate")):
                continue
            total = int(d.size * 0.97)
            frac = min(
                0.97,
                g.disk_frac
                * (1 + g.load.growth * 0.5 * (now - g.load.t0) / (30 * DAY))
                * (1 if i == 0 else 0.6),
            )
            dev = [
                {
                    "bus-type": "scsi",
                    "bus": 0,
                    "target": 0,
                    "unit": i,
                    "serial": f"drive-{key}",
                    "dev": f"/dev/sd{chr(97 + i)}" if not win else f"\\\\.\\PhysicalDrive{i}",
                    # the virtio-scsi controller's PCI address, as qemu-guest-agent reports it
                    "pci-controller": {"domain": 0, "bus": 9, "slot": 1 + i, "function": 0},
                }
            ]
            if win:
                letter = chr(ord("C") + i)
                out.append(
                    {
                        "name": f"\\\\?\\Volume{{{_uuid(g.vmid, key)}}}\\",
                        "mountpoint": f"{letter}:\\",
                        "type": "NTFS",
                        "total-bytes": total,
                        "used-bytes": int(total * frac),
                        "disk": dev,
                    }
                )
            else:
                out.append(
                    {
                        "name": f"sd{chr(97 + i)}1",
                        "mountpoint": "/" if i == 0 else f"/srv/data{i}",
                        "type": "ext4",
                        "total-bytes": total,
                        "used-bytes": int(total * frac),
                        "disk": dev,
                    }
                )
        if win:
            # Real Windows agents report the reserved partition without sizes.
            out.append(
                {
                    "name": f"\\\\?\\Volume{{{_uuid(g.vmid, 'sysres')}}}\\",
                    "mountpoint": "System Reserved",
                    "type": "NTFS",
                    "disk": [],
                }
            )
        return out

    # -- reads shared by several endpoints --------------------------------------------------

    def visible_volumes(self, node: str, storage: str) -> list[Volume]:
        return [
            v for v in self.volumes if v.storage == storage and (v.node is None or v.node == node)
        ]


# -- small helpers ------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    if isinstance(value, list):
        value = value[-1] if value else None
    return parse_bool(value) is True


def _size_or_none(text: str) -> int | None:
    """PVE disk notation to bytes (exact, through the client's parser); None when unreadable."""
    try:
        return parse_size(text)
    except InvalidSizeError:
        return None


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _hms(seconds: float) -> str:
    s = int(seconds) if math.isfinite(seconds) else 0
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _digest(cfg: Mapping[str, Any]) -> str:
    import hashlib

    text = "\n".join([f"{k}: {v}" for k, v in sorted(cfg.items())])
    return hashlib.sha1(text.encode()).hexdigest()


@functools.lru_cache(maxsize=65_536, typed=True)
def _uuid(vmid: int, salt: str) -> str:
    # A pure function of its arguments, asked twice per config read.
    import uuid

    return str(uuid.UUID(int=stable_key("uuid", vmid, salt) << 65 | stable_key(salt, vmid)))


def _mac(vmid: int) -> str:
    k = stable_key("mac", vmid)
    octets = [0xBC, 0x24, 0x11, (k >> 16) & 0xFF, (k >> 8) & 0xFF, k & 0xFF]
    return ":".join(f"{o:02X}" for o in octets)


def _replace_mac(net: str, mac: str) -> str:
    parts = net.split(",")
    first = parts[0]
    if "=" in first and ":" in first.split("=", 1)[1]:
        parts[0] = first.split("=", 1)[0] + "=" + mac
    parts = [f"hwaddr={mac}" if p.startswith("hwaddr=") else p for p in parts]
    return ",".join(parts)


def _link_local(mac: str) -> str:
    o = [int(x, 16) for x in mac.split(":")]
    o[0] ^= 0x02
    return f"fe80::{o[0]:02x}{o[1]:02x}:{o[2]:02x}ff:fe{o[3]:02x}:{o[4]:02x}{o[5]:02x}"


def _if_stats(g: Guest, now: float, scale: float) -> dict[str, int]:
    netin, netout, _, _ = g.counters(now)
    return {
        "rx-bytes": int(netin * scale),
        "tx-bytes": int(netout * scale),
        "rx-packets": int(netin * scale / 900),
        "tx-packets": int(netout * scale / 700),
        "rx-errs": 0,
        "tx-errs": 0,
        "rx-dropped": 0,
        "tx-dropped": 0,
    }


def _notes(template: Any, g: Guest) -> str:
    text = str(template)
    return (
        text.replace("{{guestname}}", g.name)
        .replace("{{vmid}}", str(g.vmid))
        .replace("{{node}}", g.node)
        .replace("{{cluster}}", "")
    )


def _is_disk_key(key: str, gtype: str) -> bool:
    import re

    if gtype == "lxc":
        return bool(re.fullmatch(r"mp\d+", key))
    return bool(re.fullmatch(r"(scsi|virtio|sata|ide)\d+", key))
