"""pvekit.history: inventory snapshots in a Parquet store, read back as the live frames.

Proxmox keeps usage history (rrddata) but not what was *allocated*; a collector that stores a
snapshot every hour or day gives capacity planning its history::

    from pvekit import history
    store = history.Store("s3://bucket/pvekit")     # or a local folder
    store.collect(pvekit.connect_group("all"))      # one snapshot, committed atomically
    guests = store.read("guests", since="2026-01-01")
    capacity.growth(guests, by=("profile",), period="month")

Needs the ``history`` extra (pyarrow, fsspec; s3fs for ``s3://``). See ``docs/history.md``.
"""

from __future__ import annotations

from ._schema import KINDS, SCHEMA_VERSION, column_dtypes
from ._store import HistoryError, Store, StoreFormatError, snapshot_id

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "HistoryError",
    "Store",
    "StoreFormatError",
    "collect",
    "column_dtypes",
    "snapshot_id",
]


def collect(
    source: object, location: str, *, details: bool = True, **storage_options: object
) -> str:
    """Store one snapshot of ``source`` (a Cluster or Group) in the store at ``location``."""
    return Store(location, **storage_options).collect(source, details=details)
