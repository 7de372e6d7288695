"""One Proxmox VE cluster: the API client plus inventory reads returning pandas DataFrames.

:class:`Cluster` is what :func:`pvekit.connect` returns. It adds to :class:`~pvekit._api.ApiClient`
the read methods of the inventory (``nodes()``, ``guests()``, ``storage()``, ``tasks()``,
``backups()``, ``snapshots()``, ``metrics()``, ``summary()``), each a tidy, typed DataFrame
whose columns are documented in :data:`pvekit.frames.COLUMNS`, and handles for actions:
``guest(vmid)`` and ``task(upid)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._api import ApiClient

if TYPE_CHECKING:  # pragma: no cover
    from ._guest import Guest
    from ._tasks import Task

__all__ = ["Cluster"]


class Cluster(ApiClient):
    """A connected Proxmox VE cluster with inventory reads as DataFrames.

    Build one with :func:`pvekit.connect`. Every frame has the profile name in its first
    column so frames of several clusters concatenate cleanly.
    """

    def guest(self, vmid: int | str, profile: str | None = None) -> Guest:
        """Return a :class:`~pvekit.Guest` handle for ``vmid`` on this cluster.

        ``profile`` exists for signature parity with :meth:`pvekit.Group.guest`; on a single
        cluster it must be ``None`` or this cluster's profile name.
        """
        from ._guest import Guest

        return Guest(self, vmid)

    def task(self, upid: str) -> Task:
        """Return a :class:`~pvekit.Task` handle for a UPID of this cluster."""
        from ._tasks import Task

        return Task(self, upid)
