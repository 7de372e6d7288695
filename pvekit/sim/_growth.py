"""A seeded growth model: guests created, resized and removed day by day, storage filling.

It acts on the clusters' in-memory state and moves the simulator's clock, so a collector
reading the simulator over HTTP once per simulated day sees an inventory that grows the way
real ones do (more guests, bigger guests, fuller pools), reproducibly for one seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from ._clock import SimClock
from ._model import GIB, MIB, Disk, Guest, Load, stable_key
from ._state import ClusterState, _mac, _replace_mac

__all__ = ["DAY", "GrowthEvent", "GrowthModel"]

DAY = 86400.0


@dataclass(frozen=True)
class GrowthEvent:
    """One change the model made: ``kind`` is created, resized or removed."""

    time: float
    cluster: str
    kind: str
    vmid: int
    node: str
    gtype: str
    detail: str = ""

    @property
    def config_path(self) -> str:
        return f"/nodes/{self.node}/{self.gtype}/{self.vmid}/config"


@dataclass
class GrowthModel:
    """Daily rates per cluster (expected events per day per 100 guests, Poisson-like).

    ``created``/``resized``/``removed``: guests per day per 100 existing guests;
    ``disk_fill``: fraction of a new or grown disk that is written at once.
    """

    clock: SimClock
    states: Iterable[ClusterState]
    seed: int = 0
    created: float = 1.2
    resized: float = 0.8
    removed: float = 0.5
    disk_fill: float = 0.4
    events: list[GrowthEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.states = list(self.states)
        self._rng = random.Random(stable_key("growth", self.seed))

    def _count(self, rate: float, guests: int) -> int:
        expected = rate * max(guests, 1) / 100.0
        whole = int(expected)
        return whole + (1 if self._rng.random() < expected - whole else 0)

    def step(self, days: float = 1.0) -> list[GrowthEvent]:
        """Advance the clock by ``days`` and apply that many days of changes; returns them."""
        if days <= 0:
            raise ValueError("days must be positive")
        self.clock.advance(days * DAY)
        now = self.clock.now()
        out: list[GrowthEvent] = []
        for st in self.states:
            with st.lock:
                st.tick()
                n = sum(1 for g in st.guests.values() if not g.template)
                for _ in range(self._count(self.created * days, n)):
                    ev = self._create(st, now)
                    if ev:
                        out.append(ev)
                for _ in range(self._count(self.resized * days, n)):
                    ev = self._resize(st, now)
                    if ev:
                        out.append(ev)
                for _ in range(self._count(self.removed * days, n)):
                    ev = self._remove(st, now)
                    if ev:
                        out.append(ev)
                st.changed()
        self.events.extend(out)
        return out

    # -- events ---------------------------------------------------------------------------

    def _pick(self, st: ClusterState, *, removable: bool = False) -> Guest | None:
        pool = [
            g
            for g in st.guests.values()
            if not g.template
            and g.lock is None
            and (not removable or g.ha_state is None)
            and st.nodes[g.node].online
        ]
        return self._rng.choice(sorted(pool, key=lambda g: g.vmid)) if pool else None

    def _fill(self, st: ClusterState, node: str, disk: Disk, size: int) -> None:
        use = st.storage_use.get((node, disk.storage))
        if use is not None:
            room = max(0, int(use.total * 0.97) - use.used(st.clock.now()))
            use.extra_used += min(room, int(size * self.disk_fill))

    def _create(self, st: ClusterState, now: float) -> GrowthEvent | None:
        src = self._pick(st)
        if src is None:
            return None
        # Above every VMID so far: a removed guest's VMID is not handed out again, so each
        # VMID in the history is one guest's life.
        vmid = max(st.guests, default=99) + 1
        online = sorted(n for n, node in st.nodes.items() if node.online)
        node = self._rng.choice(online)
        disks: dict[str, Disk] = {}
        for i, (key, d) in enumerate(src.disks.items()):
            if (node, d.storage) not in st.storage_use:
                continue  # a local pool of another node
            kind = "subvol" if d.volname.startswith(("subvol-", "basevol-")) else "vm"
            disks[key] = replace(d, volname=f"{kind}-{vmid}-disk-{i}", options=dict(d.options))
        if not disks:
            return None
        base = src.name.rstrip("0123456789-") or src.type
        g = replace(
            src,
            vmid=vmid,
            name=f"{base}-{vmid}",
            node=node,
            status="running",
            disks=disks,
            nets=dict(src.nets),
            load=Load(stable_key("grown", st.name, vmid), src.load.base, t0=now),
            tags=list(src.tags),
            config=dict(src.config),
            snapshots=[],
            parent_snapshot=None,
            ha_state=None,
            lock=None,
            started_at=now,
            mac=_mac(vmid),
            ip=None,
            ip6=None,
            exec_jobs={},
            agent_errors={},
        )
        g.nets = {k: _replace_mac(v, g.mac) for k, v in g.nets.items()}
        st.guests[vmid] = g
        for d in disks.values():
            self._fill(st, node, d, d.size)
        return GrowthEvent(now, st.name, "created", vmid, node, g.type, f"from {src.vmid}")

    def _resize(self, st: ClusterState, now: float) -> GrowthEvent | None:
        g = self._pick(st)
        if g is None:
            return None
        what = self._rng.choice(("memory", "cores", "disk"))
        if what == "memory" and g.memory_mb < 64 * 1024:
            g.memory_mb = min(64 * 1024, g.memory_mb * 2)
            detail = f"memory {g.memory_mb * MIB // GIB} GiB"
        elif what == "cores" and g.cores < 16:
            g.cores += 1 if g.cores < 4 else 2
            detail = f"cores {g.cores}"
        else:
            disk = next(iter(d for d in g.disks.values() if d.storage), None)
            if disk is None:
                return None
            grow = 16 * GIB
            disk.size += grow
            self._fill(st, g.node, disk, grow)
            detail = f"{disk.key} +16 GiB"
        return GrowthEvent(now, st.name, "resized", g.vmid, g.node, g.type, detail)

    def _remove(self, st: ClusterState, now: float) -> GrowthEvent | None:
        g = self._pick(st, removable=True)
        if g is None:
            return None
        del st.guests[g.vmid]
        return GrowthEvent(now, st.name, "removed", g.vmid, g.node, g.type, g.name)
