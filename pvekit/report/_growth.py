"""The growth section: allocation over time from a history store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import capacity as cap
from ._tables import _BYTES_COLS, _CHART_TEXT, _table

if TYPE_CHECKING:  # pragma: no cover
    from ._report import Report

__all__ = ["add_growth"]


_GROWTH_TEXT = (
    "Allocation over time",
    "vCPUs, memory and disk allocated to guests (templates excluded) at every snapshot of "
    "the history store, per cluster. The table behind it is month over month: the value at "
    "the end of each month and its change since the previous month.",
)
_CHART_TEXT["growth"] = _GROWTH_TEXT
_GROWTH_COLS = [
    "profile",
    "period",
    "snapshots",
    "guests",
    "guests_change",
    "vcpus",
    "vcpus_change",
    "mem_alloc",
    "mem_alloc_change",
    "disk_provisioned",
    "disk_provisioned_change",
    "storage_used",
    "storage_used_change",
    "created",
    "removed",
]
_BYTES_COLS.update(
    {
        "mem_alloc",
        "mem_alloc_change",
        "disk_provisioned",
        "disk_provisioned_change",
        "storage_used_change",
    }
)


def add_growth(rep: Report, history: Any, *, since: Any = None) -> Report:
    """Add the growth section to ``rep`` from a history store (or its location).

    Sets ``rep.figures["growth"]`` (:func:`pvekit.charts.allocation_history`),
    ``rep.frames["growth"]`` (:func:`pvekit.capacity.growth` by cluster and month),
    ``rep.frames["allocation"]`` and ``rep.frames["guest_changes"]``. Only the columns the
    section needs are read.
    """
    from .. import charts
    from ..history import Store

    store = history if isinstance(history, Store) else Store(history)
    cols = [*cap.GROWTH_COLUMNS, "name"]
    guests = store.read("guests", since=since, columns=cols)
    summary = store.read(
        "summary", since=since, columns=["profile", "storage_used", "collected_at"]
    )
    alloc = cap.allocation(guests)
    rep.frames["growth"] = cap.growth({"guests": guests, "summary": summary}, period="month")
    rep.frames["allocation"] = alloc
    rep.frames["guest_changes"] = cap.guest_changes(guests)
    rep.figures["growth"] = charts.allocation_history(alloc)
    return rep


def _growth_tables(rep: Report) -> dict[str, str]:
    growth = rep.frames.get("growth")
    if growth is None:
        return {}
    g = growth.assign(period=growth["period"].dt.strftime("%Y-%m")) if len(growth) else growth
    return {"growth": _table(g, _GROWTH_COLS)}


def _growth_parts(rep: Report) -> list[str]:
    changes = rep.frames.get("guest_changes")
    if changes is None:
        return []
    created = int((changes["change"] == "created").sum()) if len(changes) else 0
    removed = int((changes["change"] == "removed").sum()) if len(changes) else 0
    return [
        f'<h2 id="guest_changes">Guests created and removed</h2><p class="hint">{created} '
        f"created and {removed} removed over the history (first or last snapshot each guest "
        "was seen in).</p>",
        _table(changes, ["when", "profile", "vmid", "name", "change", "cores", "mem_alloc"]),
    ]
