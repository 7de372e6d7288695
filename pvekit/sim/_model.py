"""The in-memory model of one simulated cluster: plain dataclasses, no HTTP.

Live numbers (cpu, memory, counters, storage use) are deterministic functions of the entity's
seeded load profile and the clock, shared with the RRD generator, so a ``status/current`` read
and the newest ``rrddata`` row agree, and capacity trends in the history are real.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from .._parse import format_size

__all__ = [
    "DAY",
    "Disk",
    "Guest",
    "Load",
    "Node",
    "Snapshot",
    "StorageDef",
    "StorageUse",
    "Task",
    "Volume",
    "noise",
]

DAY = 86400.0
WEEK = 7 * DAY
GIB = 1024**3
MIB = 1024**2


def noise(key: int, bucket: int) -> float:
    """A deterministic pseudo-random number in [0, 1) for (key, bucket).

    SplitMix64-style mixing: cheap enough for 5,000 guests x 70 RRD rows and stable across
    Python runs (unlike ``hash()``).
    """
    x = (key * 0x9E3779B97F4A7C15 + bucket * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    return (x >> 11) / float(1 << 53)


def stable_key(*parts: object) -> int:
    """A stable 63-bit integer from a tuple of values (seed derivation for entities)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass
class Load:
    """How busy an entity is: a base level, daily and weekly swings, noise and a trend.

    ``growth`` is the relative change per 30 days (0.05 = +5 % a month). ``t0`` is the
    reference time at which the level equals ``base``.
    """

    key: int
    base: float
    daily: float = 0.3
    weekly: float = 0.1
    jitter: float = 0.1
    growth: float = 0.0
    t0: float = 0.0
    phase: float = 0.0

    def level(self, t: float, bucket: float = 60.0) -> float:
        """Relative level at time ``t`` (>= 0), with noise fixed per ``bucket`` seconds."""
        day_angle = 2 * math.pi * ((t % DAY) / DAY) + self.phase
        # Busy in the (UTC) afternoon, quiet at night; weekends quieter.
        daily = 1.0 - self.daily * math.cos(day_angle - 0.6)
        weekday = int(((t // DAY) + 3) % 7)  # 0 = Monday
        weekly = 1.0 - self.weekly if weekday >= 5 else 1.0 + self.weekly * 0.3
        trend = 1.0 + self.growth * (t - self.t0) / (30 * DAY)
        jit = 1.0 + self.jitter * (noise(self.key, int(t // bucket)) * 2 - 1)
        return max(0.0, self.base * daily * weekly * max(trend, 0.05) * jit)


@dataclass
class Node:
    """A cluster member."""

    name: str
    nodeid: int
    ip: str
    cpus: int
    sockets: int
    model: str
    mhz: str
    maxmem: int
    rootfs_total: int
    rootfs_used: int
    swap_total: int
    boot_time: float
    load: Load
    mem_base: int
    online: bool = True
    kversion: str = ""
    kernel_release: str = ""
    fingerprint: str = ""
    # (down, up) periods the node was off; up None while it still is. RRD files outlive
    # reboots, so history spans them: only these periods leave null rows.
    outages: list[tuple[float, float | None]] = field(default_factory=list)

    @property
    def cores(self) -> int:
        return max(1, self.cpus // (2 * self.sockets))


@dataclass
class Disk:
    """A guest disk (QEMU drive or LXC rootfs/mount point)."""

    key: str
    storage: str
    volname: str
    size: int
    options: dict[str, str] = field(default_factory=dict)
    fmt: str = "raw"
    mountpoint: str | None = None

    @property
    def volid(self) -> str:
        return f"{self.storage}:{self.volname}"

    def config_string(self) -> str:
        parts = [self.volid]
        if self.mountpoint:
            parts.append(f"mp={self.mountpoint}")
        parts.extend(f"{k}={v}" for k, v in self.options.items())
        parts.append(f"size={format_size(self.size)}")
        return ",".join(parts)


@dataclass
class Snapshot:
    """One snapshot of a guest."""

    name: str
    description: str
    snaptime: int
    parent: str | None = None
    vmstate: bool = False


@dataclass
class Guest:
    """A QEMU VM or LXC container."""

    vmid: int
    type: str  # "qemu" | "lxc"
    name: str
    node: str
    status: str  # "running" | "stopped"
    cores: int
    memory_mb: int
    disks: dict[str, Disk]
    nets: dict[str, str]
    load: Load
    mem_frac: float
    disk_frac: float = 0.0
    sockets: int = 1
    balloon_mb: int | None = None
    swap_mb: int = 512
    template: bool = False
    tags: list[str] = field(default_factory=list)
    pool: str | None = None
    ha_state: str | None = None
    lock: str | None = None
    paused: bool = False
    started_at: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    snapshots: list[Snapshot] = field(default_factory=list)
    parent_snapshot: str | None = None
    agent: bool = False
    ip: str | None = None
    ip6: str | None = None
    mac: str = ""
    ostype: str = "l26"
    net_rate: float = 50_000.0
    disk_rate: float = 20_000.0
    pid: int = 0
    exec_jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    # agent command -> (class, desc): errors the agent itself reports inside an HTTP 200
    agent_errors: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def maxmem(self) -> int:
        return self.memory_mb * MIB

    @property
    def maxcpu(self) -> int:
        return self.cores * self.sockets if self.type == "qemu" else self.cores

    @property
    def maxdisk(self) -> int:
        """Size of the boot disk, as PVE reports in ``maxdisk``."""
        if self.type == "lxc":
            root = self.disks.get("rootfs")
            return root.size if root else 0
        boot = next(iter(self.disks.values()), None)
        return boot.size if boot else 0

    @property
    def kind(self) -> str:
        """ "VM" or "CT", as PVE's messages name guests."""
        return "VM" if self.type == "qemu" else "CT"

    def uptime(self, now: float) -> int:
        if not self.running or self.started_at is None:
            return 0
        return max(0, int(now - self.started_at))

    def cpu(self, now: float) -> float:
        if not self.running:
            return 0  # PVE sends an integer 0 for stopped guests
        if self.paused:
            return 0.0
        return min(1.0, self.load.level(now, 10.0))

    def mem(self, now: float) -> int:
        if not self.running:
            return 0
        # Memory follows the load's trend (slow growth) but not its daily swing as strongly.
        trend = 1.0 + self.load.growth * (now - self.load.t0) / (30 * DAY)
        wobble = 1.0 + 0.04 * math.sin(2 * math.pi * (now % DAY) / DAY + self.load.phase)
        frac = min(0.97, max(0.02, self.mem_frac * trend * wobble))
        return int(self.maxmem * frac)

    def disk_used(self, now: float) -> int:
        if self.type != "lxc":
            return 0  # only the guest agent knows a VM's filesystem usage
        trend = 1.0 + self.load.growth * 0.5 * (now - self.load.t0) / (30 * DAY)
        return int(self.maxdisk * min(0.98, max(0.01, self.disk_frac * trend)))

    def counters(self, now: float) -> tuple[int, int, int, int]:
        """netin, netout, diskread, diskwrite since the guest started."""
        up = self.uptime(now)
        if up == 0:
            return 0, 0, 0, 0
        base = self.load.base + 0.05
        return (
            int(up * self.net_rate * base * 1.7),
            int(up * self.net_rate * base * 0.6),
            int(up * self.disk_rate * base * 2.3),
            int(up * self.disk_rate * base * 1.1),
        )


@dataclass
class StorageDef:
    """A storage definition from ``/storage`` (datacenter level)."""

    storage: str
    type: str
    content: list[str]
    shared: bool
    nodes: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    pool: str | None = None  # the resource pool the storage is a member of


@dataclass
class StorageUse:
    """A storage as seen by one node (shared storages share one instance)."""

    storage: str
    total: int
    used_base: int
    growth: float  # relative per 30 days
    key: int
    t0: float
    status: str = "available"  # or "unknown" when the backend does not answer
    extra_used: int = 0

    def used(self, now: float) -> int:
        trend = 1.0 + self.growth * (now - self.t0) / (30 * DAY)
        wobble = 1.0 + 0.002 * (noise(self.key, int(now // 300)) - 0.5)
        return int(min(self.total * 0.995, self.used_base * max(trend, 0.05) * wobble)) + int(
            self.extra_used
        )


@dataclass
class Volume:
    """A volume listed in storage content (backups, ISO images, templates)."""

    volid: str
    storage: str
    content: str  # backup | iso | vztmpl | images | rootdir
    fmt: str
    size: int
    ctime: int
    node: str | None = None  # None: on a shared storage, visible from every node
    vmid: int | None = None
    notes: str | None = None
    protected: bool = False
    verified: bool | None = None
    subtype: str | None = None  # "qemu" | "lxc" for backups


@dataclass
class Task:
    """A worker task with a real UPID."""

    upid: str
    node: str
    type: str
    id: str
    user: str
    starttime: int
    pid: int
    pstart: int
    duration: float
    outcome: str = "OK"  # "OK", "WARNINGS: n" or an error message
    log: list[str] = field(default_factory=list)
    endtime: int | None = None
    started_at: float = 0.0
    on_done: Any = None  # callable(task) -> str | None (an error ends the task failed)
    on_fail: Any = None

    @property
    def running(self) -> bool:
        return self.endtime is None

    def exitstatus(self) -> str | None:
        return None if self.running else self.outcome

    def list_status(self) -> str:
        """``status`` as the task list shows it ("RUNNING" while active)."""
        return "RUNNING" if self.running else self.outcome
