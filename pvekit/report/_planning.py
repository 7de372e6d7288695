"""The planning section: time remaining, capacity remaining, maintenance readiness, reclaimable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import capacity as cap
from .._errors import InvalidInputError, PVEError
from .._source import Inventory

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

    from ..planning import PlanningInput

__all__ = [
    "DEFAULT_REFERENCE",
    "MAINTENANCE_COLUMNS",
    "PlanningSection",
    "maintenance_readiness",
    "parse_reference",
    "planning_section",
    "reclaimable_totals",
]


#: The guest size capacity remaining is counted in unless ``reference=`` says otherwise.
DEFAULT_REFERENCE: dict[str, Any] = {"cores": 2, "memory": "4G", "disk": "32G"}

MAINTENANCE_COLUMNS: dict[str, str] = {
    "profile": "string",
    "node": "string",
    "online": "bool",
    "guests": "int64",  # guests on the node, templates included
    "running": "int64",
    "moves": "int64",  # guests the evacuation plan moves
    "memory_moved": "int64",
    "staying": "int64",  # not moved and not blocking (templates, stopped guests that may stay)
    "blocking": "int64",  # not moved and keeping the node from being emptied
    "can_evacuate": "bool",
    "reason": "string",  # why not (the blocking guests, grouped by reason); empty when it can
}


@dataclass
class PlanningSection:
    """The planning part of a :class:`Report` (``rep.planning``), computed by
    :mod:`pvekit.planning` on the report's own frames (``input``, a
    :class:`pvekit.planning.PlanningInput`: run any planner on it to look closer).

    - ``time_remaining``: :func:`pvekit.planning.time_remaining` (per cluster and resource,
      the binding one first; ``not growing`` where there is no trend).
    - ``capacity_remaining``: :func:`pvekit.planning.max_count` of ``reference`` (a
      :func:`pvekit.planning.guest_spec` frame): how many more guests of that size fit, at
      all and keeping N+1 headroom, and what stops the next one.
    - ``maintenance``: one :func:`pvekit.planning.evacuate` per node
      (:data:`MAINTENANCE_COLUMNS`): can it be emptied now, and if not why.
    - ``reclaimable``: :func:`pvekit.planning.reclaimable`; ``reclaimable_totals`` the sums
      per cluster and kind (``items``, ``bytes``, ``memory``, ``vcpus``).
    - ``figures``: one chart for each (:mod:`pvekit.charts`); ``warnings``: a part that could
      not be computed, and why (the rest of the section is still there).
    """

    input: Any
    reference: pd.DataFrame
    time_remaining: pd.DataFrame
    capacity_remaining: pd.DataFrame
    maintenance: pd.DataFrame
    reclaimable: pd.DataFrame
    reclaimable_totals: pd.DataFrame
    figures: dict[str, go.Figure]
    warnings: list[str] = field(default_factory=list)


def _reference(reference: Any) -> pd.DataFrame:
    from .. import planning

    if reference is None:
        return planning.guest_spec(**DEFAULT_REFERENCE)
    if isinstance(reference, str):
        return parse_reference(reference)
    if isinstance(reference, dict):
        return planning.guest_spec(**reference)
    if isinstance(reference, pd.DataFrame):
        if len(reference) != 1:
            raise InvalidInputError(
                f"reference must be one guest shape (a one-row guest_spec frame), got "
                f"{len(reference)} rows"
            )
        return reference
    raise InvalidInputError(
        f"reference must be a planning.guest_spec(...) frame, a dict of its arguments or a "
        f"string like '2,4G,32G', got {type(reference).__name__}"
    )


def parse_reference(text: str) -> pd.DataFrame:
    """``"CORES,MEMORY[,DISK]"`` (``"2,4G,32G"``) as a :func:`pvekit.planning.guest_spec`."""
    from .. import planning

    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) not in (2, 3) or not parts[0].isdigit() or not all(parts):
        raise InvalidInputError(
            f"reference size must read CORES,MEMORY[,DISK] (e.g. 2,4G,32G), got {text!r}"
        )
    return planning.guest_spec(int(parts[0]), parts[1], parts[2] if len(parts) == 3 else None)


def maintenance_readiness(source: Inventory | PlanningInput, *, policy: Any = None) -> pd.DataFrame:
    """For each node of ``source`` (a Cluster, Group or :class:`~pvekit.planning.
    PlanningInput`): can it be evacuated now, and if not why (:data:`MAINTENANCE_COLUMNS`).

    :func:`pvekit.planning.readiness` with the offline nodes listed too (one evacuation plan
    per node, each on the cluster as it is now: the nodes are not emptied one after the
    other), in the report's column names."""
    from .. import planning

    r = planning.readiness(source, policy=policy, offline=True)
    return r.rename(columns={"can_empty": "can_evacuate"})[list(MAINTENANCE_COLUMNS)]


def reclaimable_totals(frame: pd.DataFrame) -> pd.DataFrame:
    """Sums of :func:`pvekit.planning.reclaimable` per cluster and kind (kinds in the
    planner's order): ``items``, ``bytes``, ``memory``, ``vcpus`` (NA where no row of the
    kind has a size, e.g. snapshots)."""
    from ..planning import RECLAIM_KINDS

    cols = ["profile", "kind", "items", "bytes", "memory", "vcpus"]
    if frame.empty:
        return pd.DataFrame(columns=cols).astype(
            {"items": "int64", "bytes": "Int64", "memory": "Int64", "vcpus": "Int64"}
        )
    order = {k: i for i, k in enumerate(RECLAIM_KINDS)}
    out = (
        frame.assign(profile=frame["profile"].astype(str), kind=frame["kind"].astype(str))
        .groupby(["profile", "kind"], sort=False)
        .agg(
            items=("kind", "size"),
            bytes=("bytes", lambda s: s.sum(min_count=1)),
            memory=("memory", lambda s: s.sum(min_count=1)),
            vcpus=("vcpus", lambda s: s.sum(min_count=1)),
        )
        .reset_index()
    )
    out["_o"] = [order.get(k, len(order)) for k in out["kind"]]
    out = out.sort_values(["profile", "_o"], kind="stable").drop(columns="_o")
    for c in ("bytes", "memory", "vcpus"):
        out[c] = pd.to_numeric(out[c], errors="coerce").round().astype("Int64")
    out["items"] = out["items"].astype("int64")
    return out.reset_index(drop=True)[cols]


def planning_section(
    source: Inventory | PlanningInput,
    *,
    reference: Any = None,
    threshold: float = 0.9,
    snapshot_days: float = 30,
    policy: Any = None,
    now: pd.Timestamp | None = None,
    analysis: cap.Analysis | None = None,
) -> PlanningSection:
    """Compute the report's planning section (:class:`PlanningSection`) for ``source``: a
    Cluster, a Group or a :class:`pvekit.planning.PlanningInput` (then nothing is read).

    Each part is computed on its own: one that fails (frames missing, a planner refusing)
    leaves an empty frame and a line in ``warnings``, never the whole report.

    ``analysis``: the :func:`pvekit.capacity.analyse` of the same frames (the report's own,
    with the same ``threshold``): its right-sizing and storage forecasts are reused instead of
    computed again."""
    from .. import charts, planning

    ref = _reference(reference)
    inp = planning.PlanningInput.of(source, metrics="month", history=True)
    notes: list[str] = []

    def part(label: str, fn: Callable[[], pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
        try:
            return fn()
        except Exception as exc:  # one part must not cost the whole report
            what = str(exc) if isinstance(exc, PVEError) else f"{type(exc).__name__}: {exc}"
            notes.append(f"{label}: not computed ({what})")
            return empty

    def empty(cols: dict[str, str]) -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()})

    # analyse() fits the forecasts without ``now`` (up to the last sample): reuse them only
    # when the section does the same
    shared_forecast = analysis.forecast if analysis is not None and now is None else None
    tr = part(
        "time remaining",
        lambda: planning.time_remaining(
            inp, threshold=threshold, now=now, policy=policy, forecast=shared_forecast
        ),
        empty(planning.TIME_COLUMNS),
    )
    cr = part(
        "capacity remaining",
        lambda: planning.max_count(inp, ref, policy=policy),
        empty(planning.WHATIF_COLUMNS),
    )
    mt = part(
        "maintenance readiness",
        lambda: maintenance_readiness(inp, policy=policy),
        empty(MAINTENANCE_COLUMNS),
    )
    rc = part(
        "reclaimable capacity",
        lambda: planning.reclaimable(
            inp,
            snapshot_days=snapshot_days,
            now=now,
            rightsizing=analysis.rightsizing if analysis is not None else None,
        ),
        empty(planning.RECLAIM_COLUMNS),
    )
    totals = reclaimable_totals(rc)
    figures = {
        "time_remaining": charts.time_remaining(tr),
        "capacity_remaining": charts.capacity_remaining(
            cr, title=f"Capacity remaining in guests of {ref['shape'].iloc[0]}"
        ),
        "maintenance": charts.maintenance(mt),
        "reclaimable": charts.reclaimable(totals),
    }
    return PlanningSection(
        input=inp,
        reference=ref,
        time_remaining=tr,
        capacity_remaining=cr,
        maintenance=mt,
        reclaimable=rc,
        reclaimable_totals=totals,
        figures=figures,
        warnings=notes,
    )


def _frames_input(
    nodes: pd.DataFrame,
    guests: pd.DataFrame,
    storage: pd.DataFrame,
    metrics: pd.DataFrame | None,
    backups: pd.DataFrame | None,
    snapshots: pd.DataFrame | None,
) -> Any:
    from ..planning import PlanningInput

    return PlanningInput(
        nodes=nodes,
        guests=guests,
        storage=storage,
        metrics=metrics,
        backups=backups,
        snapshots=snapshots,
    )


def _read_planning_input(
    source: Inventory,
    step: Callable[[str, Callable[[], pd.DataFrame], bool], pd.DataFrame | None],
    nodes: pd.DataFrame,
    guests: pd.DataFrame,
    storage: pd.DataFrame,
    metrics: pd.DataFrame | None,
    backups: pd.DataFrame | None,
    snapshots: pd.DataFrame | None,
) -> Any:
    """The planners' frames for the report: the report's own reads (nodes, guests, storage,
    metrics, backups, snapshots) plus what only planning needs (HA rules, CPU models, host
    devices and unused disks from the configs already read, the task log, guest volumes).
    When those cannot be read, the planners work on the report's frames alone."""
    from ..planning import PlanningInput

    base = _frames_input(nodes, guests, storage, metrics, backups, snapshots)
    got: dict[str, Any] = {}

    def read() -> pd.DataFrame:
        # warm reads: nodes, guests(details=True), storage and the configs are cached answers
        got["input"] = PlanningInput.read(source, history=True)
        return got["input"].nodes

    if step("planning inputs (HA rules, CPU models, tasks, volumes)", read, True) is None:
        return base.copy(source=source)
    extra = got["input"]
    # keep the report's frames where both have them, so the section describes what the rest
    # of the report shows; take the planning-only columns and frames from the read
    g = guests.merge(
        extra.guests[["profile", "vmid", "local_resources", "unused"]],
        on=["profile", "vmid"],
        how="left",
    )
    for col in ("local_resources", "unused"):
        g[col] = [v if isinstance(v, list) else [] for v in g[col]]
    n = (
        nodes  # nodes() carries the CPU model itself
        if "cpu_model" in nodes.columns
        else nodes.merge(
            extra.nodes[["profile", "node", "cpu_model"]], on=["profile", "node"], how="left"
        )
    )
    return base.copy(
        nodes=n,
        guests=g,
        ha_rules=extra.ha_rules,
        tasks=extra.tasks,
        volumes=extra.volumes,
        backups=backups if backups is not None else extra.backups,
        snapshots=snapshots if snapshots is not None else extra.snapshots,
        source=source,
    )
