"""Keys real servers send that the scenario builders leave out, added after a scenario is built.

The captured bodies in ``tests/data/pve-fixtures`` (and bodies third-party clients were tested
with) carry config and storage keys that exist only where an admin or an older PVE set them:
``bios`` on UEFI guests, ``bootdisk`` on guests created before PVE 6's ``boot: order=``,
``cmode``/``console`` on containers, ``nodes``/``shared`` on a node-restricted storage, a ZFS
pool's ``mountpoint``, storage members of a pool. Adding them here, to a deterministic subset,
keeps those keys in the simulator's answers without touching the scenario inventory (guest
counts, names, sizes). ``tests/test_sim_fixture_keys.py`` checks the coverage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ._state import ClusterState

__all__ = ["add_real_keys"]

# Which storage joins which pool, per cluster (PVE pools hold storages as well as guests).
_POOL_STORAGE = {("prod", "nfs-backup"): "infra", ("lab", "usb-backup"): "homelab"}


def add_real_keys(state: ClusterState) -> None:
    for g in state.guests.values():
        if g.type == "qemu":
            if g.ostype.startswith("win"):
                g.config.setdefault("bios", "ovmf")
            if g.vmid % 4 == 0 and g.disks:
                g.config.setdefault("bootdisk", next(iter(g.disks)))
        elif g.vmid % 3 == 0:
            g.config.setdefault("cmode", "shell")
            g.config.setdefault("console", 1)
    for name, sdef in state.storage_defs.items():
        pool = _POOL_STORAGE.get((state.name, name))
        if pool is not None and pool in state.pools:
            sdef.pool = pool
        if sdef.type == "zfspool" and "pool" in sdef.extra:
            sdef.extra.setdefault("mountpoint", "/" + str(sdef.extra["pool"]))
        if state.name == "lab" and name == "usb-backup":
            # a USB disk lives on one node: storage.cfg says so explicitly
            sdef.nodes = sdef.nodes or sorted(state.nodes)
            sdef.extra.setdefault("shared", 0)
