"""What the demo's ``prod`` cluster carries so capacity planning has something to show.

Applied after the rest of the scenario is built and without drawing from its random
generator, so every other seeded value stays as it was:

- HA rules (PVE 9; 8.x serves the node-affinity ones as groups): the domain controllers may
  run only on ``pve1``/``pve3`` (strict, ``pve1`` preferred), the two databases and the two
  load balancers are kept apart (negative resource affinity), the API servers prefer
  ``pve1``/``pve2`` (non-strict).
- Tags: ``anti-affinity-redis`` on the two Redis VMs.
- ``analytics`` runs with CPU type ``host`` (it may only move to the same CPU model).
- ``search-02`` passes a PCI device through (``hostpci0``): ``pve3`` cannot be emptied.
- ``nvme-pve3``: a local pool only ``pve3`` has; ``old-erp``'s disk lives there.
- ``old-erp`` has a detached disk (``unused0``), and an orphaned volume sits on ``local-lvm``
  of ``pve1``; ``staging-web`` is a linked clone of the ``debian-13-cloud`` template.
- Long-stopped guests: ``decommissioned-app`` and ``old-erp`` were shut down months ago.
"""

from __future__ import annotations

from ._model import DAY, GIB, Guest, StorageDef, StorageUse, Volume, stable_key
from ._state import ClusterState

__all__ = ["add_planning_demo"]


def _sid(g: Guest) -> str:
    return f"{'vm' if g.type == 'qemu' else 'ct'}:{g.vmid}"


def add_planning_demo(state: ClusterState) -> None:
    now = state.clock.now()
    by_name = {g.name: g for g in state.guests.values()}

    def sids(*names: str) -> str:
        return ",".join(_sid(by_name[n]) for n in names)

    state.ha_rules = [
        {
            "rule": "dc-nodes",
            "type": "node-affinity",
            "resources": sids("dc-01", "dc-02"),
            "nodes": "pve1:2,pve3:1",
            "strict": 1,
            "comment": "Windows licensing: domain controllers on pve1/pve3 only",
        },
        {
            "rule": "api-prefer",
            "type": "node-affinity",
            "resources": sids("api-01", "api-02"),
            "nodes": "pve1,pve2",
            "strict": 0,
        },
        {
            "rule": "db-apart",
            "type": "resource-affinity",
            "resources": sids("db-primary", "db-replica"),
            "affinity": "negative",
        },
        {
            "rule": "lb-apart",
            "type": "resource-affinity",
            "resources": sids("lb-01", "lb-02"),
            "affinity": "negative",
        },
    ]
    for name in ("redis-01", "redis-02"):
        by_name[name].tags.append("anti-affinity-redis")
    by_name["analytics"].config["cpu"] = "host"
    by_name["search-02"].config["hostpci0"] = "0000:41:00.0,pcie=1"

    sdef = StorageDef("nvme-pve3", "lvmthin", ["images", "rootdir"], False, nodes=["pve3"])
    sdef.extra = {"thinpool": "nvme", "vgname": "nvme"}
    state.storage_defs[sdef.storage] = sdef
    state.storage_use[("pve3", sdef.storage)] = StorageUse(
        sdef.storage, 2048 * GIB, 410 * GIB, 0.02, stable_key(state.name, sdef.storage), now
    )
    scratch = by_name["old-erp"]  # stopped, on pve3
    for disk in scratch.disks.values():
        disk.storage = "nvme-pve3"

    erp = by_name["old-erp"]
    erp.config["unused0"] = f"ceph-vm:vm-{erp.vmid}-disk-1"
    state.volumes.append(
        Volume(
            f"ceph-vm:vm-{erp.vmid}-disk-1",
            "ceph-vm",
            "images",
            "raw",
            120 * GIB,
            int(now - 400 * DAY),
            vmid=erp.vmid,
        )
    )
    state.volumes.append(
        Volume(
            "local-lvm:vm-199-disk-0",
            "local-lvm",
            "images",
            "raw",
            32 * GIB,
            int(now - 300 * DAY),
            node="pve1",
            vmid=199,
        )
    )
    template = next(g for g in state.guests.values() if g.template and g.name == "debian-13-cloud")
    clone = by_name["staging-web"]
    base = next(iter(template.disks.values()))
    boot = next(iter(clone.disks.values()))
    boot.storage = base.storage
    boot.volname = f"{base.volname}/vm-{clone.vmid}-disk-0"

    for name, days, kind in (("decommissioned-app", 120, "qmshutdown"), ("old-erp", 75, "qmstop")):
        g = by_name[name]
        state.add_finished_task(
            g.node, kind, str(g.vmid), "root@pam", now - days * DAY, 12.0, "OK", []
        )
