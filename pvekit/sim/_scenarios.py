"""Seeded scenarios: ``demo`` (prod + lab), ``large`` (parametrised) and ``empty``.

A scenario is a function returning the cluster states to serve. All randomness comes from
``random.Random`` seeded with (scenario, cluster, seed), so the same seed gives the same
inventory, names, metrics and history on every run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ._clock import SimClock
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
    Volume,
    stable_key,
)
from ._planning_demo import add_planning_demo
from ._state import ClusterState, TaskPolicy, _mac

__all__ = ["SCENARIOS", "build_scenario"]

TIB = 1024 * GIB

_CPU_MODELS = [
    ("AMD EPYC 7543 32-Core Processor", "2794.748"),
    ("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", "2000.000"),
    ("AMD Ryzen 9 5950X 16-Core Processor", "3400.000"),
    ("Intel(R) Core(TM) i7-6700 CPU @ 3.40GHz", "3400.000"),
]


def _kernel(major: int) -> tuple[str, str]:
    if major >= 9:
        return (
            "6.17.2-1-pve",
            "Linux 6.17.2-1-pve #1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1 (2025-10-21T11:55Z)",
        )
    return (
        "6.8.12-9-pve",
        "Linux 6.8.12-9-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-9 (2025-03-16T19:18Z)",
    )


def _node(
    state: ClusterState,
    rng: random.Random,
    name: str,
    nodeid: int,
    ip: str,
    *,
    cpus: int,
    sockets: int,
    mem_gib: int,
    root_gib: int,
    model: int,
) -> Node:
    release, kversion = _kernel(state.major)
    now = state.clock.now()
    node = Node(
        name=name,
        nodeid=nodeid,
        ip=ip,
        cpus=cpus,
        sockets=sockets,
        model=_CPU_MODELS[model][0],
        mhz=_CPU_MODELS[model][1],
        maxmem=mem_gib * GIB - rng.randrange(200, 900) * 1024 * 1024,
        rootfs_total=root_gib * GIB,
        rootfs_used=int(root_gib * GIB * rng.uniform(0.04, 0.15)),
        swap_total=8 * GIB if rng.random() < 0.5 else 0,
        boot_time=now - rng.uniform(5, 60) * DAY,
        load=Load(
            stable_key(state.name, name, "cpu"),
            rng.uniform(0.01, 0.04),
            daily=0.3,
            t0=now,
            phase=rng.uniform(-0.3, 0.3),
        ),
        mem_base=int(rng.uniform(2.5, 5.0) * GIB),
        kversion=kversion,
        kernel_release=release,
        fingerprint=":".join(f"{(stable_key(name, i, state.seed) & 0xFF):02X}" for i in range(32)),
    )
    # The last reboot took a few minutes (from a hash: the rng stream stays as it was).
    reboot = 120 + stable_key(state.name, name, "reboot") % 480
    node.outages.append((node.boot_time - reboot, node.boot_time))
    return node


def _storage(
    state: ClusterState,
    sdef: StorageDef,
    nodes: list[str],
    *,
    total: int,
    used_frac: float,
    growth: float,
    unknown_on: tuple[str, ...] = (),
) -> None:
    state.storage_defs[sdef.storage] = sdef
    now = state.clock.now()
    if sdef.shared:
        use = StorageUse(
            sdef.storage,
            total,
            int(total * used_frac),
            growth,
            stable_key(state.name, sdef.storage),
            now,
        )
        for n in nodes:
            if n in unknown_on:
                bad = StorageUse(
                    sdef.storage,
                    total,
                    int(total * used_frac),
                    growth,
                    use.key,
                    now,
                    status="unknown",
                )
                state.storage_use[(n, sdef.storage)] = bad
            else:
                state.storage_use[(n, sdef.storage)] = use
        return
    for i, n in enumerate(nodes):
        key = stable_key(state.name, sdef.storage, n)
        frac = used_frac * (0.7 + 0.6 * ((key % 1000) / 1000))
        state.storage_use[(n, sdef.storage)] = StorageUse(
            sdef.storage,
            total,
            int(total * frac),
            growth * (1.5 if i == 1 else 1.0),
            key,
            now,
            status="unknown" if n in unknown_on else "available",
        )


def _guest(
    state: ClusterState,
    rng: random.Random,
    vmid: int,
    gtype: str,
    name: str,
    node: str,
    *,
    storage: str,
    cores: int,
    mem_gib: float,
    disk_gib: int,
    running: bool,
    ip: str | None = None,
    tags: list[str] | None = None,
    pool: str | None = None,
    template: bool = False,
    ostype: str | None = None,
    agent: bool | None = None,
    growth: float | None = None,
    extra_disks: tuple[int, ...] = (),
) -> Guest:
    now = state.clock.now()
    mac = _mac(vmid + stable_key(state.name) % 1000 * 1_000_000)
    if gtype == "qemu":
        disks = {
            "scsi0": Disk(
                "scsi0",
                storage,
                f"vm-{vmid}-disk-0",
                disk_gib * GIB,
                {"iothread": "1", "discard": "on", "ssd": "1"},
            )
        }
        for i, size in enumerate(extra_disks, start=1):
            disks[f"scsi{i}"] = Disk(
                f"scsi{i}", storage, f"vm-{vmid}-disk-{i}", size * GIB, {"iothread": "1"}
            )
        if template:
            for d in disks.values():
                d.volname = d.volname.replace("vm-", "base-", 1)
        nets = {"net0": f"virtio={mac},bridge=vmbr0,firewall=1"}
        if tags and "dmz" in tags:
            nets["net0"] += ",tag=20"
    else:
        disks = {
            "rootfs": Disk(
                "rootfs",
                storage,
                f"subvol-{vmid}-disk-0" if "zfs" in storage else f"vm-{vmid}-disk-0",
                disk_gib * GIB,
            )
        }
        for i, size in enumerate(extra_disks):
            disks[f"mp{i}"] = Disk(
                f"mp{i}", storage, f"vm-{vmid}-disk-{i + 1}", size * GIB, mountpoint=f"/srv/data{i}"
            )
        ipconf = f"ip={ip}/24,gw={ip.rsplit('.', 1)[0]}.1" if ip else "ip=dhcp"
        nets = {"net0": f"name=eth0,bridge=vmbr0,firewall=1,hwaddr={mac},{ipconf},type=veth"}
    g = Guest(
        vmid=vmid,
        type=gtype,
        name=name,
        node=node,
        status="running" if running and not template else "stopped",
        cores=cores,
        memory_mb=int(mem_gib * 1024),
        disks=disks,
        nets=nets,
        load=Load(
            stable_key(state.name, vmid, "load"),
            rng.uniform(0.01, 0.45),
            daily=rng.uniform(0.1, 0.6),
            weekly=rng.uniform(0.0, 0.25),
            jitter=rng.uniform(0.05, 0.3),
            growth=growth if growth is not None else rng.choice([0.0, 0.0, 0.01, 0.02, 0.04]),
            t0=now,
            phase=rng.uniform(-0.8, 0.8),
        ),
        mem_frac=rng.uniform(0.25, 0.8),
        disk_frac=rng.uniform(0.15, 0.7),
        balloon_mb=None,
        template=template,
        tags=list(tags or []),
        pool=pool,
        ostype=ostype or ("l26" if gtype == "qemu" else "debian"),
        agent=(gtype == "qemu" and not template) if agent is None else agent,
        ip=ip,
        mac=mac,
        net_rate=rng.uniform(5e3, 4e5),
        disk_rate=rng.uniform(2e3, 2e5),
    )
    if g.running:
        g.config["onboot"] = 1
        g.started_at = now - rng.uniform(0.2, 40) * DAY
        g.pid = 1000 + rng.randrange(4_000_000)
    if gtype == "qemu" and rng.random() < 0.3 and not template:
        g.balloon_mb = int(g.memory_mb / 2)
    if template:
        g.config["description"] = f"{name} template, cloud-init ready"
    state.guests[vmid] = g
    return g


def _snapshots(g: Guest, rng: random.Random, now: float, count: int) -> None:
    parent = None
    names = ["before-upgrade", "pre-patch", "baseline", "known-good", "weekly"]
    for i in range(count):
        name = names[i % len(names)] + ("" if i < len(names) else str(i))
        t = int(now - (count - i) * rng.uniform(3, 20) * DAY)
        g.snapshots.append(
            Snapshot(
                name,
                f"{name.replace('-', ' ')} of {g.name}",
                t,
                parent,
                vmstate=g.type == "qemu" and rng.random() < 0.3,
            )
        )
        parent = name
    g.parent_snapshot = parent


def _backups(
    state: ClusterState,
    g: Guest,
    storage: str,
    node: str | None,
    rng: random.Random,
    now: float,
    count: int,
    *,
    verified: bool,
) -> None:
    for i in range(count):
        t = now - (i * 7 + rng.uniform(0.5, 1.5)) * DAY
        t = t - (t % DAY) + 2 * 3600 + rng.randrange(0, 3600)  # nightly at 02:xx
        stamp = datetime.fromtimestamp(t, tz=UTC).strftime("%Y_%m_%d-%H_%M_%S")
        fmt = "vma" if g.type == "qemu" else "tar"
        size = int(sum(d.size for d in g.disks.values()) * rng.uniform(0.08, 0.3))
        if state.storage_defs[storage].type == "pbs":
            iso = datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            volid = f"{storage}:backup/{'vm' if g.type == 'qemu' else 'ct'}/{g.vmid}/{iso}"
            vfmt = "pbs-vm" if g.type == "qemu" else "pbs-ct"
        else:
            volid = f"{storage}:backup/vzdump-{g.type}-{g.vmid}-{stamp}.{fmt}.zst"
            vfmt = f"{fmt}.zst"
        state.volumes.append(
            Volume(
                volid=volid,
                storage=storage,
                content="backup",
                fmt=vfmt,
                size=size,
                ctime=int(t),
                node=node,
                vmid=g.vmid,
                subtype=g.type,
                notes=f"{g.name}" if rng.random() < 0.7 else None,
                protected=i == count - 1 and rng.random() < 0.3,
                verified=(rng.random() < 0.9) if verified else None,
            )
        )


def _isos(state: ClusterState, storage: str, node: str | None, now: float) -> None:
    items = [
        ("iso", "iso/debian-13.1.0-amd64-netinst.iso", 754_974_720),
        ("iso", "iso/ubuntu-24.04.3-live-server-amd64.iso", 3_213_064_192),
        ("iso", "iso/virtio-win-0.1.271.iso", 754_589_696),
        ("vztmpl", "vztmpl/debian-12-standard_12.12-1_amd64.tar.zst", 129_604_391),
        ("vztmpl", "vztmpl/alpine-3.22-default_20250617_amd64.tar.xz", 3_172_860),
    ]
    for i, (content, name, size) in enumerate(items):
        state.volumes.append(
            Volume(
                volid=f"{storage}:{name}",
                storage=storage,
                content=content,
                fmt=name.rsplit(".", 1)[-1] if content == "iso" else "tzst",
                size=size,
                ctime=int(now - (40 + 9 * i) * DAY),
                node=node,
            )
        )


def _history(state: ClusterState, rng: random.Random, now: float, days: int) -> None:
    """Finished tasks of the last days: nightly backups, starts, one failure, warnings."""
    guests = [g for g in state.guests.values() if not g.template]
    if not guests or not state.nodes:
        return
    entries: list[tuple[float, str, str, str, str, str, list[str]]] = []
    for d in range(days, 0, -1):
        for node in state.nodes:
            t = now - d * DAY
            t = t - (t % DAY) + 2 * 3600
            local = [g for g in guests if g.node == node]
            if not local:
                continue
            outcome = "OK"
            if d == 2 and node == next(iter(state.nodes)):
                outcome = "WARNINGS: 1"
            if d == 4 and node == list(state.nodes)[-1]:
                outcome = "job errors"
            lines = [f"INFO: starting new backup job: vzdump --all 1 --mode snapshot"]  # noqa: F541
            for g in local[:8]:
                lines.append(f"INFO: Starting Backup of VM {g.vmid} ({g.type})")
                lines.append(
                    f"INFO: Finished Backup of VM {g.vmid} (00:0{rng.randrange(1, 9)}:"
                    f"{rng.randrange(10, 59)})"
                )
            if outcome.startswith("WARNINGS"):
                lines.append(f"WARN: VM {local[0].vmid}: guest-agent fs-freeze timed out")
            if outcome == "job errors":
                lines.append(
                    f"ERROR: Backup of VM {local[-1].vmid} failed - no space left on device"
                )
            entries.append((t, node, "vzdump", "", "root@pam", outcome, lines))
    for _ in range(min(30, len(guests))):
        g = rng.choice(guests)
        t = now - rng.uniform(0.05, days) * DAY
        kind = rng.choice(["start", "start", "shutdown", "stop", "reboot"])
        prefix = "qm" if g.type == "qemu" else "vz"
        entries.append((t, g.node, f"{prefix}{kind}", str(g.vmid), "root@pam", "OK", []))
    g = guests[len(guests) // 2]
    entries.append(
        (
            now - 0.3 * DAY,
            g.node,
            "qmigrate" if g.type == "qemu" else "vzmigrate",
            str(g.vmid),
            "admin@pve",
            "migration aborted",
            ["ERROR: migration aborted (duration 00:00:03): target node is too busy"],
        )
    )
    for t, node, ttype, tid, user, outcome, lines in sorted(entries):
        state.add_finished_task(node, ttype, tid, user, t, rng.uniform(2, 600), outcome, lines)


def _demo_prod(
    clock: SimClock, seed: int, version: str, policy: TaskPolicy, offline: tuple[str, ...]
) -> ClusterState:
    state = ClusterState("prod", clock=clock, pve_version=version, seed=seed, policy=policy)
    rng = random.Random(stable_key("demo", "prod", seed))
    now = clock.now()
    names = ["pve1", "pve2", "pve3"]
    for i, n in enumerate(names):
        state.nodes[n] = _node(
            state,
            rng,
            n,
            i + 1,
            f"10.10.10.{11 + i}",
            cpus=64,
            sockets=2,
            mem_gib=512 if i < 2 else 384,
            root_gib=100,
            model=i % 2,
        )
    # pve2 came back from a day and a half of hardware maintenance: a gap in its history
    pve2 = state.nodes["pve2"]
    pve2.outages[-1] = (pve2.boot_time - 1.5 * DAY, pve2.boot_time)
    _storage(
        state,
        StorageDef(
            "local",
            "dir",
            ["iso", "vztmpl", "backup", "snippets"],
            False,
            extra={"path": "/var/lib/vz"},
        ),
        names,
        total=94 * GIB,
        used_frac=0.18,
        growth=0.01,
    )
    _storage(
        state,
        StorageDef(
            "local-lvm",
            "lvmthin",
            ["images", "rootdir"],
            False,
            extra={"thinpool": "data", "vgname": "pve"},
        ),
        names,
        total=1600 * GIB,
        used_frac=0.35,
        growth=0.05,
    )
    _storage(
        state,
        StorageDef(
            "ceph-vm", "rbd", ["images", "rootdir"], True, extra={"pool": "ceph-vm", "krbd": 0}
        ),
        names,
        total=24 * TIB,
        used_frac=0.52,
        growth=0.06,
    )
    _storage(
        state,
        StorageDef(
            "nfs-backup",
            "nfs",
            ["backup", "iso", "vztmpl"],
            True,
            extra={
                "server": "10.10.30.5",
                "export": "/export/pve-backup",
                "path": "/mnt/pve/nfs-backup",
                "prune-backups": "keep-daily=7,keep-weekly=4",
            },
        ),
        names,
        total=40 * TIB,
        used_frac=0.61,
        growth=0.0,
    )
    _storage(
        state,
        StorageDef(
            "pbs",
            "pbs",
            ["backup"],
            True,
            extra={
                "server": "10.10.30.8",
                "datastore": "prod",
                "username": "backup@pbs",
                "fingerprint": "d1:7e:0a:...:77",
            },
        ),
        names,
        total=60 * TIB,
        used_frac=0.44,
        growth=0.03,
    )
    _storage(
        state,
        StorageDef(
            "nas-iso",
            "cifs",
            ["iso", "vztmpl"],
            True,
            extra={"server": "10.10.30.6", "share": "iso"},
        ),
        names,
        total=8 * TIB,
        used_frac=0.2,
        growth=0.0,
        unknown_on=("pve3",),
    )
    state.pools.update(
        {
            "production": "Customer-facing services",
            "infra": "Core infrastructure",
            "k8s": "Kubernetes platform",
            "dev": "Development and staging",
        }
    )
    plan: list[tuple[str, str, int, float, int, list[str], str | None, str | None]] = [
        # (type, name, cores, mem GiB, disk GiB, tags, pool, ostype)
        ("qemu", "web-01", 4, 8, 40, ["prod", "web"], "production", None),
        ("qemu", "web-02", 4, 8, 40, ["prod", "web"], "production", None),
        ("qemu", "web-03", 4, 8, 40, ["prod", "web"], "production", None),
        ("qemu", "api-01", 8, 16, 60, ["prod", "api"], "production", None),
        ("qemu", "api-02", 8, 16, 60, ["prod", "api"], "production", None),
        ("qemu", "db-primary", 16, 64, 500, ["prod", "db", "critical"], "production", None),
        ("qemu", "db-replica", 16, 64, 500, ["prod", "db"], "production", None),
        ("qemu", "redis-01", 2, 16, 20, ["prod", "cache"], "production", None),
        ("qemu", "redis-02", 2, 16, 20, ["prod", "cache"], "production", None),
        ("qemu", "mq-01", 4, 8, 80, ["prod", "queue"], "production", None),
        ("qemu", "search-01", 8, 32, 200, ["prod", "search"], "production", None),
        ("qemu", "search-02", 8, 32, 200, ["prod", "search"], "production", None),
        ("qemu", "lb-01", 2, 4, 16, ["prod", "dmz", "lb"], "infra", None),
        ("qemu", "lb-02", 2, 4, 16, ["prod", "dmz", "lb"], "infra", None),
        ("qemu", "dc-01", 4, 8, 80, ["windows", "ad"], "infra", "win2k22"),
        ("qemu", "dc-02", 4, 8, 80, ["windows", "ad"], "infra", "win2k22"),
        ("qemu", "rds-01", 8, 32, 200, ["windows", "rds"], "infra", "win2k22"),
        ("qemu", "monitoring", 4, 16, 300, ["infra", "observability"], "infra", None),
        ("qemu", "logs-01", 8, 32, 800, ["infra", "observability"], "infra", None),
        ("qemu", "vault", 2, 4, 20, ["infra", "security"], "infra", None),
        ("qemu", "gitlab", 8, 32, 400, ["infra", "devtools"], "infra", None),
        ("qemu", "ci-runner-01", 8, 16, 100, ["devtools", "ci"], "dev", None),
        ("qemu", "ci-runner-02", 8, 16, 100, ["devtools", "ci"], "dev", None),
        ("qemu", "ci-runner-03", 8, 16, 100, ["devtools", "ci"], "dev", None),
        ("qemu", "k8s-cp-01", 4, 8, 50, ["k8s", "control-plane"], "k8s", None),
        ("qemu", "k8s-cp-02", 4, 8, 50, ["k8s", "control-plane"], "k8s", None),
        ("qemu", "k8s-cp-03", 4, 8, 50, ["k8s", "control-plane"], "k8s", None),
        *[
            ("qemu", f"k8s-worker-{i:02d}", 16, 48, 150, ["k8s", "worker"], "k8s", None)
            for i in range(1, 9)
        ],
        ("qemu", "staging-web", 2, 4, 40, ["staging", "web"], "dev", None),
        ("qemu", "staging-db", 4, 16, 100, ["staging", "db"], "dev", None),
        ("qemu", "sandbox-win11", 4, 8, 64, ["windows", "sandbox"], "dev", "win11"),
        ("qemu", "old-erp", 4, 12, 250, ["legacy"], None, None),
        ("qemu", "test-upgrade", 2, 4, 32, ["test"], "dev", None),
        ("qemu", "jumpbox", 2, 2, 16, ["infra", "dmz"], "infra", None),
        ("qemu", "backup-proxy", 4, 8, 40, ["infra", "backup"], "infra", None),
        ("qemu", "vpn-gw", 2, 2, 8, ["infra", "dmz"], "infra", None),
        ("qemu", "mail-relay", 2, 4, 30, ["infra", "mail"], "infra", None),
        ("qemu", "analytics", 16, 96, 1000, ["prod", "analytics"], "production", None),
        ("qemu", "decommissioned-app", 2, 4, 50, ["legacy"], None, None),
        ("lxc", "dns-01", 1, 0.5, 8, ["infra", "dns"], "infra", "debian"),
        ("lxc", "dns-02", 1, 0.5, 8, ["infra", "dns"], "infra", "debian"),
        ("lxc", "ntp", 1, 0.25, 4, ["infra"], "infra", "alpine"),
        ("lxc", "proxy-cache", 2, 2, 50, ["infra", "web"], "infra", "debian"),
        ("lxc", "grafana", 2, 2, 16, ["infra", "observability"], "infra", "debian"),
        ("lxc", "prometheus", 4, 8, 200, ["infra", "observability"], "infra", "debian"),
        ("lxc", "syslog", 2, 2, 100, ["infra", "observability"], "infra", "debian"),
        ("lxc", "wiki", 2, 2, 20, ["infra", "docs"], "infra", "ubuntu"),
        ("lxc", "registry", 2, 4, 300, ["devtools"], "dev", "debian"),
        ("lxc", "nexus", 4, 8, 400, ["devtools"], "dev", "debian"),
        ("lxc", "dev-shell-01", 2, 4, 32, ["dev"], "dev", "ubuntu"),
        ("lxc", "dev-shell-02", 2, 4, 32, ["dev"], "dev", "ubuntu"),
        ("lxc", "status-page", 1, 1, 8, ["prod", "web"], "production", "alpine"),
        ("lxc", "cron-worker", 2, 2, 16, ["prod"], "production", "debian"),
        ("lxc", "old-php-site", 1, 1, 10, ["legacy", "web"], None, "centos"),
    ]
    stopped = {
        "staging-db",
        "sandbox-win11",
        "old-erp",
        "test-upgrade",
        "decommissioned-app",
        "dev-shell-02",
        "old-php-site",
        "ci-runner-03",
    }
    growth = {
        "db-primary": 0.08,
        "logs-01": 0.12,
        "analytics": 0.1,
        "prometheus": 0.09,
        "monitoring": 0.06,
        "search-01": 0.05,
    }
    flat = {"dns-01", "dns-02", "ntp", "lb-01", "lb-02", "vpn-gw"}
    vmid = 100
    for idx, (gtype, name, cores, mem, disk, tags, pool, ostype) in enumerate(plan):
        node = names[idx % 3]
        storage = "ceph-vm" if idx % 4 != 3 else "local-lvm"
        ip = f"10.10.20.{20 + idx}"
        g = _guest(
            state,
            rng,
            vmid,
            gtype,
            name,
            node,
            storage=storage,
            cores=cores,
            mem_gib=mem,
            disk_gib=disk,
            running=name not in stopped,
            ip=ip,
            tags=tags,
            pool=pool,
            ostype=ostype,
            growth=growth.get(name, 0.0 if name in flat else None),
            extra_disks=(200,) if name in ("db-primary", "db-replica") else (),
        )
        vmid += 1
        if "critical" in tags or name.startswith(("db-", "lb-", "dc-", "api-")):
            g.ha_state = "started" if g.running else "stopped"
    # Templates and special states.
    for i, (tname, tgtype) in enumerate(
        [("debian-13-cloud", "qemu"), ("ubuntu-2404-cloud", "qemu"), ("debian-12-ct", "lxc")]
    ):
        _guest(
            state,
            rng,
            9000 + i,
            tgtype,
            tname,
            names[i],
            storage="ceph-vm",
            cores=2,
            mem_gib=2,
            disk_gib=20 if tgtype == "qemu" else 8,
            running=False,
            tags=["template"],
            template=True,
            agent=tgtype == "qemu",
        )
    by_name = {g.name: g for g in state.guests.values()}
    by_name["backup-proxy"].lock = "backup"  # a stale lock left by an interrupted job
    by_name["test-upgrade"].lock = "snapshot"
    by_name["mq-01"].paused = True  # suspended VM: status running, qmpstatus paused
    by_name["old-erp"].agent = False
    for runner in ("ci-runner-01", "ci-runner-02", "ci-runner-03"):
        by_name[runner].config["cpulimit"] = "4"  # a string, as PVE sends it (QUIRKS 1)
    # A wedged Windows agent: it answers, but with its own errors inside HTTP 200 (QUIRKS 11).
    by_name["rds-01"].agent_errors.update(
        {
            "get-fsinfo": (
                "GenericError",
                "Failed to get volume name: The device is not ready. (Error: 15)",
            ),
            "network-get-interfaces": (
                "GenericError",
                "Guest agent command failed, error was 'GetAdaptersAddresses() failed'",
            ),
        }
    )
    by_name["vault"].agent = False
    for gname, count in [
        ("db-primary", 3),
        ("gitlab", 2),
        ("web-01", 1),
        ("test-upgrade", 2),
        ("wiki", 1),
        ("staging-db", 1),
        ("dc-01", 1),
    ]:
        _snapshots(by_name[gname], rng, now, count)
    _isos(state, "nfs-backup", None, now)
    for g in state.guests.values():
        if g.template:
            continue
        if g.pool == "production" or g.pool == "infra":
            _backups(state, g, "pbs", None, rng, now, 3, verified=True)
        if g.vmid % 3 == 0 or g.pool == "dev":
            _backups(state, g, "nfs-backup", None, rng, now, 2, verified=False)
    for n in offline:
        state.nodes[n].online = False
        state.nodes[n].outages.append((now - 3 * 3600, None))
        for g in state.guests.values():
            if g.node == n:
                g.status, g.started_at = "stopped", None
    _history(state, rng, now, 7)
    add_planning_demo(state)
    return state


def _demo_lab(clock: SimClock, seed: int, version: str, policy: TaskPolicy) -> ClusterState:
    state = ClusterState("lab", clock=clock, pve_version=version, seed=seed, policy=policy)
    rng = random.Random(stable_key("demo", "lab", seed))
    now = clock.now()
    # A fresh install names its node "pve": names (and VMIDs) repeat across clusters.
    state.nodes["pve"] = _node(
        state, rng, "pve", 1, "192.168.1.10", cpus=16, sockets=1, mem_gib=64, root_gib=100, model=2
    )
    _storage(
        state,
        StorageDef(
            "local",
            "dir",
            ["iso", "vztmpl", "backup", "import"],
            False,
            extra={"path": "/var/lib/vz"},
        ),
        ["pve"],
        total=98 * GIB,
        used_frac=0.3,
        growth=0.02,
    )
    _storage(
        state,
        StorageDef(
            "local-zfs",
            "zfspool",
            ["images", "rootdir"],
            False,
            extra={"pool": "rpool/data", "sparse": 1},
        ),
        ["pve"],
        total=1800 * GIB,
        used_frac=0.58,
        growth=0.09,
    )
    _storage(
        state,
        StorageDef(
            "usb-backup",
            "dir",
            ["backup"],
            False,
            extra={"path": "/mnt/usb-backup", "is_mountpoint": "yes"},
        ),
        ["pve"],
        total=4 * TIB,
        used_frac=0.71,
        growth=0.04,
    )
    state.pools["homelab"] = "Home services"
    plan: list[tuple[str, str, int, float, int, list[str], bool, str | None]] = [
        ("lxc", "pihole", 1, 0.5, 8, ["dns", "net"], True, "debian"),
        ("qemu", "homeassistant", 2, 4, 32, ["home"], True, None),
        ("lxc", "jellyfin", 4, 4, 32, ["media"], True, "debian"),
        ("lxc", "nextcloud", 2, 4, 64, ["cloud"], True, "debian"),
        ("qemu", "opnsense", 2, 4, 20, ["net", "fw"], True, "other"),
        ("lxc", "unifi", 2, 2, 16, ["net"], True, "ubuntu"),
        ("lxc", "paperless", 2, 2, 32, ["docs"], True, "debian"),
        ("qemu", "docker-host", 4, 12, 120, ["docker"], True, None),
        ("lxc", "gitea", 1, 1, 20, ["devtools"], True, "alpine"),
        ("qemu", "win11-gaming", 8, 16, 256, ["windows"], False, "win11"),
        ("qemu", "kali", 2, 4, 40, ["security", "test"], False, None),
        ("lxc", "wireguard", 1, 0.5, 4, ["net", "vpn"], True, "alpine"),
        ("qemu", "k3s-test", 2, 4, 32, ["test", "k8s"], False, None),
        ("lxc", "mqtt", 1, 0.5, 4, ["home"], True, "debian"),
    ]
    for i, (gtype, name, cores, mem, disk, tags, running, ostype) in enumerate(plan):
        _guest(
            state,
            rng,
            100 + i,
            gtype,
            name,
            "pve",
            storage="local-zfs",
            cores=cores,
            mem_gib=mem,
            disk_gib=disk,
            running=running,
            ip=f"192.168.1.{50 + i}",
            tags=tags,
            pool="homelab" if i % 2 == 0 else None,
            ostype=ostype,
            growth={"nextcloud": 0.1, "paperless": 0.07, "jellyfin": 0.05}.get(name),
        )
    _guest(
        state,
        rng,
        9000,
        "qemu",
        "debian-13-template",
        "pve",
        storage="local-zfs",
        cores=2,
        mem_gib=2,
        disk_gib=16,
        running=False,
        tags=["template"],
        template=True,
    )
    by_name = {g.name: g for g in state.guests.values()}
    by_name["opnsense"].agent = False
    # GPU passthrough and a host bind mount: raw lxc.* keys come back as [key, value] pairs.
    jelly = by_name["jellyfin"]
    jelly.config["mp0"] = "/mnt/media,mp=/media"
    jelly.config["lxc"] = [
        ["lxc.cgroup2.devices.allow", "c 226:0 rwm"],
        ["lxc.cgroup2.devices.allow", "c 226:128 rwm"],
        ["lxc.mount.entry", "/dev/dri dev/dri none bind,optional,create=dir"],
    ]
    for gname, count in [("homeassistant", 2), ("nextcloud", 3), ("docker-host", 1)]:
        _snapshots(by_name[gname], rng, now, count)
    _isos(state, "local", "pve", now)
    for g in state.guests.values():
        if not g.template and g.status == "running":
            _backups(state, g, "usb-backup", "pve", rng, now, 2, verified=False)
    _history(state, rng, now, 5)
    return state


def _large(
    clock: SimClock, seed: int, version: str, policy: TaskPolicy, nodes: int, guests: int
) -> ClusterState:
    state = ClusterState("large", clock=clock, pve_version=version, seed=seed, policy=policy)
    rng = random.Random(stable_key("large", seed, nodes, guests))
    names = [f"node{i:02d}" for i in range(1, nodes + 1)]
    for i, n in enumerate(names):
        state.nodes[n] = _node(
            state,
            rng,
            n,
            i + 1,
            f"10.0.{i // 200}.{10 + i % 200}",
            cpus=128,
            sockets=2,
            mem_gib=1024,
            root_gib=200,
            model=i % 2,
        )
    _storage(
        state,
        StorageDef("local", "dir", ["iso", "vztmpl", "backup"], False),
        names,
        total=180 * GIB,
        used_frac=0.1,
        growth=0.01,
    )
    _storage(
        state,
        StorageDef("local-lvm", "lvmthin", ["images", "rootdir"], False),
        names,
        total=3 * TIB,
        used_frac=0.4,
        growth=0.04,
    )
    _storage(
        state,
        StorageDef("ceph-vm", "rbd", ["images", "rootdir"], True),
        names,
        total=max(1, guests // 8) * TIB,
        used_frac=0.5,
        growth=0.05,
    )
    pools = ["alpha", "beta", "gamma", "delta"]
    for p in pools:
        state.pools[p] = f"Tenant {p}"
    roles = ["web", "app", "db", "cache", "worker", "batch", "ci", "proxy"]
    for i in range(guests):
        vmid = 100 + i
        gtype = "lxc" if i % 4 == 3 else "qemu"
        role = roles[i % len(roles)]
        _guest(
            state,
            rng,
            vmid,
            gtype,
            f"{role}-{i:05d}",
            names[i % nodes],
            storage="ceph-vm" if i % 3 else "local-lvm",
            cores=rng.choice([1, 2, 4, 8]),
            mem_gib=rng.choice([0.5, 1, 2, 4, 8, 16]),
            disk_gib=rng.choice([8, 16, 32, 64]),
            running=rng.random() < 0.8,
            ip=f"10.{100 + i // 65000}.{i // 250 % 256}.{i % 250 + 2}",
            tags=[role, pools[i % 4]],
            pool=pools[i % 4],
        )
    _storage(
        state,
        StorageDef("backup-nfs", "nfs", ["backup"], True),
        names,
        total=max(1, guests // 20) * TIB,
        used_frac=0.45,
        growth=0.02,
    )
    now = clock.now()
    every = list(state.guests.values())
    for g in every[::5]:
        _backups(state, g, "backup-nfs", None, rng, now, 1, verified=False)
    for g in every[::10]:
        _snapshots(g, rng, now, 1)
    _history(state, rng, now, 2)
    return state


def _empty(clock: SimClock, seed: int, version: str, policy: TaskPolicy) -> ClusterState:
    state = ClusterState("empty", clock=clock, pve_version=version, seed=seed, policy=policy)
    rng = random.Random(stable_key("empty", seed))
    state.nodes["pve"] = _node(
        state, rng, "pve", 1, "192.168.100.2", cpus=8, sockets=1, mem_gib=32, root_gib=100, model=3
    )
    _storage(
        state,
        StorageDef("local", "dir", ["iso", "vztmpl", "backup"], False),
        ["pve"],
        total=94 * GIB,
        used_frac=0.05,
        growth=0.0,
    )
    _storage(
        state,
        StorageDef("local-lvm", "lvmthin", ["images", "rootdir"], False),
        ["pve"],
        total=800 * GIB,
        used_frac=0.0,
        growth=0.0,
    )
    return state


def _policy(kwargs: dict[str, Any]) -> TaskPolicy:
    durations = kwargs.pop("task_durations", None) or {}
    duration = kwargs.pop("task_duration", None)
    if duration is not None:
        durations = {"*": float(duration), **durations}
    outcomes = kwargs.pop("task_outcomes", None) or {}
    return TaskPolicy(
        durations=dict(durations),
        outcomes=dict(outcomes),
        scale=float(kwargs.pop("task_scale", 1.0)),
    )


def build_scenario(
    name: str, clock: SimClock, seed: int, pve_version: str, kwargs: dict[str, Any]
) -> list[ClusterState]:
    """Build the clusters of scenario ``name``; unknown kwargs raise ``TypeError``."""
    kw = dict(kwargs)
    policy = _policy(kw)
    if name == "demo":
        offline = tuple(kw.pop("offline_nodes", ()))
        states = [
            _demo_prod(clock, seed, pve_version, policy, offline),
            _demo_lab(clock, seed, pve_version, policy),
        ]
    elif name == "large":
        states = [
            _large(
                clock,
                seed,
                pve_version,
                policy,
                int(kw.pop("nodes", 20)),
                int(kw.pop("guests", 5000)),
            )
        ]
    elif name == "empty":
        states = [_empty(clock, seed, pve_version, policy)]
    else:
        raise ValueError(
            f"unknown simulator scenario {name!r}; choose one of {', '.join(sorted(SCENARIOS))}"
        )
    if kw:
        raise TypeError(f"scenario {name!r} got unexpected options: {', '.join(sorted(kw))}")
    return states


SCENARIOS: dict[str, Callable[..., Any]] = {"demo": _demo_prod, "large": _large, "empty": _empty}
