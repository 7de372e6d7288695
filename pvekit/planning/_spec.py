"""Shapes of new guests for :func:`pvekit.planning.what_if`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .._errors import InvalidInputError
from .._parse import parse_size
from ._model import records

__all__ = ["SPEC_COLUMNS", "guest_spec", "normalise_specs"]

SPEC_COLUMNS: dict[str, str] = {
    "shape": "string",
    "type": "string",
    "cores": "int64",
    "memory": "int64",
    "disk": "int64",
    "storage": "string",
    "count": "int64",
}


def _size(value: Any, what: str) -> int:
    try:
        return int(parse_size(value))
    except InvalidInputError as err:
        raise InvalidInputError(f"guest_spec {what}: {err.message}") from None


def guest_spec(
    cores: int,
    memory: int | str,
    disk: int | str | None = None,
    *,
    storage: str | None = None,
    count: int = 1,
    type: str = "qemu",
    name: str | None = None,
) -> pd.DataFrame:
    """One shape of new guest as a one-row frame (columns: :data:`SPEC_COLUMNS`).

    ``memory`` and ``disk`` take bytes or Proxmox sizes (``"8G"``, ``"512M"``); ``storage``
    names the pool the disk goes to (it must exist on the chosen node and have room);
    without it the disk is not checked. ``count`` is how many are asked for. Several shapes:
    ``pd.concat([guest_spec(...), guest_spec(...)])`` or any frame with these columns.
    ``name`` labels the shape in results (default ``"4c/8G"``).
    """
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise InvalidInputError(f"guest_spec cores must be an int >= 1, got {cores!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInputError(f"guest_spec count must be an int >= 1, got {count!r}")
    if type not in ("qemu", "lxc"):
        raise InvalidInputError(f"guest_spec type must be 'qemu' or 'lxc', got {type!r}")
    mem = _size(memory, "memory")
    if mem <= 0:
        raise InvalidInputError("guest_spec memory must be positive")
    dsk = 0 if disk is None else _size(disk, "disk")
    if storage is not None and (not isinstance(storage, str) or not storage):
        raise InvalidInputError(f"guest_spec storage must be a storage name, got {storage!r}")
    label = name or f"{cores}c/{mem / 1024**3:g}G"
    return pd.DataFrame(
        {
            "shape": pd.Series([label], dtype="string"),
            "type": pd.Series([type], dtype="string"),
            "cores": pd.Series([cores], dtype="int64"),
            "memory": pd.Series([mem], dtype="int64"),
            "disk": pd.Series([dsk], dtype="int64"),
            "storage": pd.Series([storage], dtype="string"),
            "count": pd.Series([count], dtype="int64"),
        }
    )


def normalise_specs(add: Any) -> pd.DataFrame:
    """``add`` of :func:`what_if` (a spec frame, or a dict of :func:`guest_spec` keywords)."""
    if isinstance(add, dict):
        add = guest_spec(**add)
    if not isinstance(add, pd.DataFrame):
        raise InvalidInputError(
            f"add must be a guest_spec(...) frame or a dict of its arguments, got "
            f"{type(add).__name__}"
        )
    missing = [c for c in ("cores", "memory") if c not in add.columns]
    if missing:
        raise InvalidInputError(f"add frame lacks column(s) {', '.join(missing)}")
    rows = []
    for i, r in enumerate(records(add)):
        rows.append(
            guest_spec(
                int(r["cores"]),
                r["memory"],
                None if pd.isna(r.get("disk", None)) else r.get("disk"),
                storage=None if pd.isna(r.get("storage", None)) else r.get("storage"),
                count=1 if pd.isna(r.get("count", None)) else int(r.get("count", 1)),
                type=str(r.get("type") or "qemu") if not pd.isna(r.get("type", None)) else "qemu",
                name=None if pd.isna(r.get("shape", None)) else str(r.get("shape") or f"#{i}"),
            )
        )
    if not rows:
        raise InvalidInputError("add is empty: describe at least one guest")
    return pd.concat(rows, ignore_index=True)
