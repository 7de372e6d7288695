"""Building a report: from frames, or by reading a cluster or a group."""

from __future__ import annotations

import functools
import time
import warnings as _warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import capacity as cap
from .._errors import InvalidInputError, PVEError
from .._source import Inventory, Members
from ._common import TIMEFRAMES, Progress
from ._growth import add_growth
from ._planning import _frames_input, _read_planning_input, _reference, planning_section
from ._report import Report

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

__all__ = ["capacity", "from_frames"]


def from_frames(
    nodes: pd.DataFrame,
    guests: pd.DataFrame,
    storage: pd.DataFrame,
    *,
    backups: pd.DataFrame | None = None,
    snapshots: pd.DataFrame | None = None,
    metrics: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
    status: pd.DataFrame | None = None,
    timeframe: str = "month",
    title: str | None = None,
    threshold: float = 0.9,
    backup_days: float = 7,
    snapshot_days: float = 30,
    max_vcpu_ratio: float = 4.0,
    now: pd.Timestamp | None = None,
    warnings: Iterable[str] = (),
    planning: bool = True,
    reference: Any = None,
    planning_input: Any = None,
) -> Report:
    """Build a :class:`Report` from inventory frames (no Proxmox access).

    ``metrics`` may combine node, storage and guest rows (``pd.concat`` of several
    ``metrics()`` calls). ``status`` is a Group's ``status()`` frame, shown as a connection
    table. See :func:`pvekit.capacity.analyse` for the analysis parameters.

    ``planning`` adds the planning section (:func:`planning_section`) computed on these
    frames, or on ``planning_input`` (a :class:`pvekit.planning.PlanningInput`, which may
    carry HA rules, CPU models and task history the inventory frames lack); ``reference``
    is the guest size capacity remaining is counted in (:data:`DEFAULT_REFERENCE`).
    """
    from .. import charts

    analysis = cap.analyse(
        nodes,
        guests,
        storage,
        backups=backups,
        snapshots=snapshots,
        metrics=metrics,
        summary=summary,
        threshold=threshold,
        backup_days=backup_days,
        snapshot_days=snapshot_days,
        max_vcpu_ratio=max_vcpu_ratio,
        now=now,
    )
    cu = analysis.cluster_usage
    overview_frame = pd.concat([cu, analysis.group_usage], ignore_index=True) if len(cu) > 1 else cu
    figures: dict[str, go.Figure] = {
        "overview": charts.overview(
            overview_frame,
            title="Clusters at a glance" if len(cu) > 1 else "Cluster at a glance",
        ),
        "node_utilisation": charts.node_utilisation(analysis.node_usage),
        "overcommit": charts.overcommit(analysis.node_usage),
        "headroom": charts.headroom(analysis.headroom),
        "storage_pools": charts.storage_pools(analysis.storage_pools),
    }
    m = (
        metrics
        if metrics is not None
        else pd.DataFrame(columns=["profile", "kind", "target", "node", "time", "metric", "value"])
    )
    storage_shared = analysis.storage_pools[analysis.storage_pools["shared"]]
    # a shared pool appears in every node's rrddata: draw it once, like the forecast does
    fc_targets = set(
        zip(
            analysis.forecast["profile"].astype(str),
            analysis.forecast["target"].astype(str),
            strict=True,
        )
    )
    sm = m[m["kind"].astype("string") == "storage"] if len(m) else m
    if len(sm) and len(storage_shared):
        shared_names = {
            (str(p), str(s))
            for p, s in zip(storage_shared["profile"], storage_shared["storage"], strict=True)
        }
        keep = [
            (str(p), str(t)) in fc_targets or (str(p), str(t).split("/", 1)[-1]) not in shared_names
            for p, t in zip(sm["profile"], sm["target"], strict=True)
        ]
        sm = sm[keep]
    figures["storage_forecast"] = charts.metrics_history(
        sm,
        analysis.forecast,
        kind="storage",
        threshold=threshold,
        title=f"Storage pools: used over the last {timeframe} and forecast",
    )
    figures["memory_forecast"] = charts.metrics_history(
        m,
        analysis.forecast,
        kind="node",
        threshold=threshold,
        title=f"Node memory: used over the last {timeframe} and forecast",
    )
    figures["guests"] = charts.guests_treemap(guests)
    frames = {
        "nodes": nodes,
        "guests": guests,
        "storage": storage,
        "backups": backups if backups is not None else pd.DataFrame(),
        "snapshots": snapshots if snapshots is not None else pd.DataFrame(),
        "metrics": m,
        "summary": summary if summary is not None else pd.DataFrame(),
        "status": status if status is not None else pd.DataFrame(),
    }
    profiles = [str(p) for p in cu["profile"]]
    section = None
    if planning:
        section = planning_section(
            planning_input
            if planning_input is not None
            else _frames_input(nodes, guests, storage, metrics, backups, snapshots),
            reference=reference,
            threshold=threshold,
            snapshot_days=snapshot_days,
            now=now,
            analysis=analysis,
        )
    return Report(
        title=title or f"Capacity report: {', '.join(profiles) or 'no clusters'}",
        timeframe=timeframe,
        generated=pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now),
        frames=frames,
        analysis=analysis,
        figures=figures,
        warnings=list(warnings),
        planning=section,
    )


def capacity(
    source: Inventory,
    timeframe: str = "month",
    *,
    threshold: float = 0.9,
    backup_days: float = 7,
    snapshot_days: float = 30,
    max_vcpu_ratio: float = 4.0,
    details: bool = True,
    guest_metrics: bool = True,
    title: str | None = None,
    progress: Progress | None = None,
    planning: bool = True,
    reference: Any = None,
    history: Any = None,
) -> Report:
    """Read a :class:`~pvekit.Cluster` or :class:`~pvekit.Group` and build its report.

    ``timeframe`` is the ``rrddata`` window for trends and right-sizing (``month`` or ``year``
    for forecasts). ``details`` reads guest configs for thin-provisioning figures (one request
    per guest); ``guest_metrics`` reads every running guest's ``rrddata`` for right-sizing
    (one request each; turn off for very large clusters: current values are used instead).
    ``progress`` receives one line per step (the CLI prints them).

    Nodes, guests and storage must be readable; backups, snapshots, metrics and summary are
    optional: if one fails the report is built without it and says so in ``warnings``.

    ``planning`` adds the planning section (``rep.planning``, :class:`PlanningSection`);
    ``reference`` is the guest size capacity remaining is counted in: a
    :func:`pvekit.planning.guest_spec` frame, a dict of its arguments or ``"2,4G,32G"``
    (default :data:`DEFAULT_REFERENCE`). It reads a little more: the HA rules, each node's
    CPU model, the task log and the guest volumes of each storage.
    ``history`` (a :class:`pvekit.history.Store` or its location) adds the growth section:
    allocation over time per cluster, month over month, guests created and removed
    (see :func:`add_growth`).
    """
    if timeframe not in TIMEFRAMES:
        raise InvalidInputError(
            f"timeframe must be one of {', '.join(TIMEFRAMES)}, got {timeframe!r}"
        )
    if not isinstance(source, Inventory):
        raise InvalidInputError(
            f"capacity() needs a pvekit Cluster or Group, got {type(source).__name__}"
        )
    from .._cluster import IncompleteDataWarning
    from .._group import PartialResultWarning

    say = progress or (lambda _msg: None)
    warnings: list[str] = []
    # (label, profile, reason) of each read a cluster is missing from, for _condense
    missing: list[tuple[str, str, str]] = []
    t0 = time.monotonic()

    def step(label: str, fn: Callable[[], pd.DataFrame], optional: bool) -> pd.DataFrame | None:
        start = time.monotonic()
        say(f"reading {label} ...")
        try:
            # A group answers with what it could get and warns about the rest: those
            # warnings belong in the report, not only on the console.
            with _warnings.catch_warnings(record=True) as caught:
                _warnings.simplefilter("always")
                df = fn()
        except PVEError as exc:
            if not optional:
                raise
            warnings.append(f"{label}: not read ({exc})")
            say(f"  {label}: skipped: {exc}")
            return None
        for w in caught:
            msg = w.message
            if isinstance(msg, PartialResultWarning) and msg.profile is not None:
                missing.append((label, msg.profile, msg.reason or str(msg)))
                say(f"  {label}: warning: {msg}")
            elif isinstance(msg, PartialResultWarning | IncompleteDataWarning):
                warnings.append(f"{label}: {msg}")
                say(f"  {label}: warning: {msg}")
            else:
                _warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        say(f"  {label}: {len(df)} rows in {time.monotonic() - start:.1f} s")
        return df

    nodes = step("nodes", source.nodes, False)
    guests = step(
        "guests", (lambda: source.guests(details=True)) if details else source.guests, False
    )
    storage = step("storage", source.storage, False)
    assert nodes is not None and guests is not None and storage is not None
    backups = step("backups", source.backups, True)
    snapshots = step("snapshots", source.snapshots, True)
    summary = step("summary", source.summary, True)
    parts: list[pd.DataFrame] = []
    for kind in ("node", "storage"):
        df = step(
            f"{kind} metrics ({timeframe})",
            functools.partial(source.metrics, kind, timeframe=timeframe),
            True,
        )
        if df is not None:
            parts.append(df)
    if guest_metrics and len(guests):
        running = guests[guests["status"].astype("string") == "running"]
        if len(running):
            df = step(
                f"guest metrics ({timeframe}, {len(running)} running guests)",
                functools.partial(_guest_metrics, source, running, timeframe, warnings),
                True,
            )
            if df is not None:
                parts.append(df)
    parts = [p for p in parts if len(p)]
    metrics = pd.concat(parts, ignore_index=True) if parts else None
    status = None
    if isinstance(source, Members):
        status = step("connection status", source.status, True)
        if status is not None and "connected" in status:
            for r in status[~status["connected"].astype("boolean").fillna(False)].itertuples():
                warnings.append(
                    f"cluster {r.profile} is not connected: "
                    f"{getattr(r, 'error', '') or getattr(r, 'state', '')}"
                )
    ref = _reference(reference) if planning else None  # a bad size fails before any drawing
    planning_input = None
    if planning:
        planning_input = _read_planning_input(
            source, step, nodes, guests, storage, metrics, backups, snapshots
        )
    warnings = _condense(warnings, missing)
    say("analysing and drawing ...")
    rep = from_frames(
        nodes,
        guests,
        storage,
        backups=backups,
        snapshots=snapshots,
        metrics=metrics,
        summary=summary,
        status=status,
        timeframe=timeframe,
        title=title,
        threshold=threshold,
        backup_days=backup_days,
        snapshot_days=snapshot_days,
        max_vcpu_ratio=max_vcpu_ratio,
        warnings=warnings,
        planning=planning,
        reference=ref,
        planning_input=planning_input,
    )
    if history is not None:
        say("reading the history store ...")
        add_growth(rep, history)
    say(f"report built in {time.monotonic() - t0:.1f} s: {len(rep.findings)} findings")
    return rep


def _condense(warnings: list[str], missing: list[tuple[str, str, str]]) -> list[str]:
    """One line per unreachable cluster instead of one per frame it is missing from, first."""
    labels: dict[tuple[str, str], list[str]] = {}
    for label, profile, reason in missing:
        labels.setdefault((profile, reason), []).append(label)
    lines = [
        f"cluster {profile} is missing from {', '.join(names)}: {reason}"
        for (profile, reason), names in labels.items()
    ]
    return lines[::-1] + warnings


def _guest_metrics(
    source: Inventory, running: pd.DataFrame, timeframe: str, warnings: list[str]
) -> pd.DataFrame:
    """rrddata of the running guests only (stopped ones have nothing to right-size).

    VMIDs are unique only within a cluster, so a group is asked cluster by cluster, each for
    its own guests."""
    by_profile = {
        str(p): sorted({int(v) for v in grp["vmid"].dropna()})
        for p, grp in running.groupby(running["profile"].astype(str))
    }
    if not isinstance(source, Members):
        vmids = sorted({v for vs in by_profile.values() for v in vs})
        return pd.DataFrame(source.metrics("guest", targets=vmids, timeframe=timeframe))
    results = source.map(
        lambda c: c.metrics("guest", targets=by_profile[c.profile], timeframe=timeframe),
        profiles=list(by_profile),
    )
    got = []
    for profile, res in results.items():
        if isinstance(res, BaseException):
            warnings.append(f"guest metrics of {profile}: not read ({res})")
        else:
            got.append(res)
    return pd.concat(got, ignore_index=True) if got else pd.DataFrame()
