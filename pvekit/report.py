"""The HTML capacity report, and the ``pvekit report`` command.

:func:`capacity` reads one cluster or a group (inventory, backups, snapshots and ``rrddata``
metrics), runs :func:`pvekit.capacity.analyse` and draws every chart of :mod:`pvekit.charts`::

    rep = pvekit.report.capacity(pvekit.demo(), timeframe="month")
    rep.findings                # the prioritised findings frame
    rep.to_html("report.html")  # one self-contained file: plotly.js embedded once, no network
    rep                         # in Jupyter: the whole report inline

:func:`from_frames` builds the same report from frames you already have (filtered, from a
cache, hand-made). ``Report.write_png(dir)`` renders static images through kaleido and the
system Chromium.

The command::

    pvekit report [--profile P | --group G | --demo] [--timeframe month] --output report.html
                  [--png DIR]

prints its progress on stderr.
"""

from __future__ import annotations

import argparse
import functools
import html
import math
import os
import shutil
import sys
import time
import warnings as _warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import capacity as cap
from ._errors import InvalidInputError, PVEError
from .capacity._common import _finite, _fmt_bytes, _rows
from .capacity._common import _pct as _cap_pct
from .capacity._findings import _forecast_pool

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

__all__ = [
    "DEFAULT_REFERENCE",
    "MAINTENANCE_COLUMNS",
    "ExportError",
    "PlanningSection",
    "Report",
    "add_arguments",
    "capacity",
    "export_png",
    "from_frames",
    "maintenance_readiness",
    "parse_reference",
    "planning_section",
    "reclaimable_totals",
    "run",
]

TIMEFRAMES = ("hour", "day", "week", "month", "year")
# how the page gets plotly.js: embedded (opens with no network), from the plotly CDN, or from a
# plotly.min.js written beside the page (many reports in one folder share one copy)
PLOTLYJS = ("inline", "cdn", "directory")
PLOTLYJS_FILE = "plotly.min.js"
Progress = Callable[[str], None]


class ExportError(PVEError):
    """A static image export failed (kaleido or Chromium missing or broken)."""


# --------------------------------------------------------------------------------------------
# the report object


@dataclass
class Report:
    """A built capacity report: the frames, the analysis, the figures.

    ``frames`` holds the inventory read (nodes, guests, storage, backups, snapshots, metrics,
    summary and, for a group, status); ``analysis`` every :mod:`pvekit.capacity` frame;
    ``figures`` the plotly figures by name, in report order. ``warnings`` lists what could not
    be read (a cluster down, no permission for backups...): the report is then partial, and
    says so. ``planning`` is the planning section (:class:`PlanningSection`: time remaining,
    capacity remaining, maintenance readiness, reclaimable capacity), None when left out.
    """

    title: str
    timeframe: str
    generated: pd.Timestamp
    frames: dict[str, pd.DataFrame]
    analysis: cap.Analysis
    figures: dict[str, go.Figure]
    warnings: list[str] = field(default_factory=list)
    planning: PlanningSection | None = None

    @property
    def findings(self) -> pd.DataFrame:
        """The prioritised findings (severity, profile, category, object, message, metric)."""
        return self.analysis.findings

    @property
    def grouped_findings(self) -> pd.DataFrame:
        """The findings as the page lists them: repeated findings of one kind in one cluster
        folded into one row with a count and the list behind it (``items``); see
        :func:`pvekit.capacity.group_findings`."""
        return cap.group_findings(self.analysis.findings)

    @property
    def profiles(self) -> list[str]:
        """The clusters the report covers."""
        return [str(p) for p in self.analysis.cluster_usage["profile"]]

    def summary(self) -> pd.DataFrame:
        """The headline numbers as a one-column frame (name -> formatted value)."""
        return pd.DataFrame(
            {"value": [v for _, v, _ in self._headlines()]},
            index=pd.Index([k for k, _, _ in self._headlines()], name="metric"),
        )

    def _headlines(self) -> list[tuple[str, str, str]]:
        """(label, value, hint) for the summary cards."""
        g = self.analysis.group_usage.iloc[0]
        f = self.analysis.findings
        counts = f["severity"].value_counts()
        out = [
            ("clusters", str(len(self.profiles)), ", ".join(self.profiles)),
            ("nodes online", f"{_i(g['nodes_online'])} / {_i(g['nodes_total'])}", ""),
            (
                "guests running",
                f"{_i(g['guests_running'])} / {_i(g['guests_total'])}",
                "templates excluded",
            ),
            ("CPU used", _pct(g["cpu"]), f"{_f1(g['cpu_used'])} of {_i(g['cores'])} cores"),
            (
                "memory used",
                _pct(g["mem_fraction"]),
                f"{_b(g['mem_used'])} of {_b(g['mem_total'])}",
            ),
            (
                "storage used",
                _pct(g["storage_fraction"]),
                f"{_b(g['storage_used'])} of {_b(g['storage_total'])}, shared pools once",
            ),
            (
                "vCPUs per core",
                _f2(g["cpu_overcommit_running"]),
                f"running guests; all guests {_f2(g['cpu_overcommit_all'])}",
            ),
            (
                "memory allocated",
                _pct(g["mem_overcommit_running"]),
                f"of physical, running guests; all guests {_pct(g['mem_overcommit_all'])}",
            ),
            (
                "findings",
                str(len(f)),
                f"{counts.get('critical', 0)} critical, {counts.get('warning', 0)} warning, "
                f"{counts.get('info', 0)} info",
            ),
        ]
        weak = cap.weakest_link(self.analysis.headroom)
        if len(weak):
            parts = []
            for r in _rows(weak):
                fits = not pd.isna(r.fits) and bool(r.fits)
                state = f"{_b(r.mem_headroom)} spare" if fits else "does not fit"
                parts.append(f"{r.profile}/{r.node} ({state})")
            names = [
                f"{r.profile}/{r.node}" if len(weak) > 1 else str(r.node)
                for r in weak.itertuples(index=False)
            ]
            value = ", ".join(names) if len(names) <= 2 else f"{len(names)} nodes"
            out.append(("weakest link", value, "; ".join(parts)))
        fc = self.analysis.forecast
        growing = fc[fc["status"] == "growing"].sort_values("days_until")
        if len(growing):
            first = growing.iloc[0]
            # a pool by its one name (a shared pool is no node's view); a node as profile/node
            what = (
                _forecast_pool(first)
                if first["kind"] == "storage"
                else f"{first['profile']}/{first['target']}"
            )
            out.append(
                (
                    "first to fill",
                    f"{float(first['days_until']):.0f} days",
                    f"{first['resource']} {what} reaches {_pct(first['threshold'])}",
                )
            )
        return out

    # ---------------------------------------------------------------------------- output

    def to_html(
        self, path: str | os.PathLike[str] | None = None, *, plotlyjs: str = "inline"
    ) -> str:
        """The report as one HTML page; written to ``path`` when given.

        ``plotlyjs``: ``"inline"`` (default) embeds plotly.js once and every figure draws from
        it: the file opens with no network (no CDN, no external script or style), about 5 MB.
        ``"cdn"`` loads it from cdn.plot.ly (small file; needs the network to draw).
        ``"directory"`` loads ``plotly.min.js`` from the page's folder and writes it there
        beside ``path`` (needs ``path``): reports published together share one copy.
        """
        if plotlyjs not in PLOTLYJS:
            raise InvalidInputError(
                f"plotlyjs must be one of {', '.join(PLOTLYJS)}, got {plotlyjs!r}"
            )
        if plotlyjs == "directory" and path is None:
            raise InvalidInputError(
                "plotlyjs='directory' writes plotly.min.js beside the report: give a path"
            )
        page = _render(self, plotlyjs)
        if path is not None:
            p = Path(path)
            if p.parent and not p.parent.exists():
                raise InvalidInputError(f"cannot write {p}: directory {p.parent} does not exist")
            p.write_text(page, encoding="utf-8")
            if plotlyjs == "directory":
                from plotly.offline import get_plotlyjs

                js = p.parent / PLOTLYJS_FILE
                # the same version is already there when several reports share the folder
                content = get_plotlyjs()
                if not js.exists() or js.read_text(encoding="utf-8") != content:
                    js.write_text(content, encoding="utf-8")
        return page

    def _repr_html_(self) -> str:
        # An iframe keeps the report's scripts and styles apart from the notebook's (classic
        # Jupyter's requirejs would otherwise capture plotly.js); srcdoc keeps it offline.
        doc = html.escape(self.to_html(), quote=True)
        return (
            f'<iframe srcdoc="{doc}" title="{html.escape(self.title)}" '
            'style="width:100%;height:900px;border:0" sandbox="allow-scripts"></iframe>'
        )

    def write_png(
        self,
        directory: str | os.PathLike[str],
        *,
        width: int = 1200,
        scale: float = 1.0,
        browser: str | None = None,
    ) -> list[Path]:
        """Write every figure as ``<name>.png`` into ``directory`` (created if needed).

        Uses kaleido 1.x, which drives a local Chrome/Chromium: ``browser`` or the
        ``BROWSER_PATH`` environment variable, else ``/usr/bin/chromium`` or whatever
        ``chromium``/``google-chrome`` is on PATH. Raises :class:`ExportError` naming what is
        missing when it cannot work.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        figures = {**self.figures, **(self.planning.figures if self.planning else {})}
        paths = [out / f"{name}.png" for name in figures]
        export_png(list(figures.values()), paths, width=width, scale=scale, browser=browser)
        return paths

    def __repr__(self) -> str:
        counts = self.findings["severity"].value_counts()
        return (
            f"<Report {self.title!r}: {len(self.profiles)} cluster(s), "
            f"{len(self.figures)} charts, {len(self.findings)} findings "
            f"({counts.get('critical', 0)} critical)>"
        )


def export_png(
    figures: list[go.Figure],
    paths: list[Path],
    *,
    width: int = 1200,
    scale: float = 1.0,
    browser: str | None = None,
) -> None:
    """Render figures to PNG files with kaleido and a system Chromium (see Report.write_png)."""
    try:
        import kaleido  # noqa: F401  # only to fail early with a clear message
    except ImportError:
        raise ExportError("PNG export needs kaleido>=1.0: pip install 'pvekit[png]'") from None
    exe = browser or os.environ.get("BROWSER_PATH") or _find_browser()
    if not exe or not (Path(exe).exists() or shutil.which(exe)):
        raise ExportError(
            "PNG export needs Chrome or Chromium (e.g. apt-get install chromium); "
            "set BROWSER_PATH to its executable" + (f" (not found: {exe})" if exe else "")
        )
    import plotly.graph_objects as go
    import plotly.io as pio

    old = os.environ.get("BROWSER_PATH")
    os.environ["BROWSER_PATH"] = exe  # choreographer (kaleido's browser driver) reads it
    try:
        heights = [int(f.layout.height or 450) for f in figures]
        # an image leaves the page it was made for: give it a white background of its own
        # (copies, so the report's figures stay transparent)
        opaque = [go.Figure(f).update_layout(paper_bgcolor="white") for f in figures]
        if hasattr(pio, "write_images"):  # plotly >= 6.1: one browser session for all
            pio.write_images(opaque, paths, format="png", width=width, height=heights, scale=scale)
        else:
            for fig, path, height in zip(opaque, paths, heights, strict=True):
                pio.write_image(fig, path, format="png", width=width, height=height, scale=scale)
    except Exception as exc:  # kaleido/choreographer raise their own zoo of errors
        raise ExportError(f"PNG export through {exe} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if old is None:
            os.environ.pop("BROWSER_PATH", None)
        else:
            os.environ["BROWSER_PATH"] = old


def _find_browser() -> str | None:
    for name in (
        "/usr/bin/chromium",
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
        "chrome",
    ):
        found = name if Path(name).is_file() else shutil.which(name)
        if found:
            return found
    return None


# --------------------------------------------------------------------------------------------
# building


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
    from . import charts

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
    source: Any,
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
    for name in ("nodes", "guests", "storage"):
        if not callable(getattr(source, name, None)):
            raise InvalidInputError(
                f"capacity() needs a pvekit Cluster or Group, got {type(source).__name__}"
            )
    from ._cluster import IncompleteDataWarning
    from ._group import PartialResultWarning

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
    if callable(getattr(source, "status", None)):
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
    source: Any, running: pd.DataFrame, timeframe: str, warnings: list[str]
) -> pd.DataFrame:
    """rrddata of the running guests only (stopped ones have nothing to right-size).

    VMIDs are unique only within a cluster, so a group is asked cluster by cluster, each for
    its own guests."""
    by_profile = {
        str(p): sorted({int(v) for v in grp["vmid"].dropna()})
        for p, grp in running.groupby(running["profile"].astype(str))
    }
    if not (callable(getattr(source, "map", None)) and hasattr(source, "profiles")):
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


# --------------------------------------------------------------------------------------------
# HTML


def _i(v: Any) -> str:
    try:
        return str(int(v))
    except (TypeError, ValueError):
        return "-"


def _f1(v: Any) -> str:
    f = _finite(v)
    return "-" if f is None else f"{f:.1f}"


def _f2(v: Any) -> str:
    f = _finite(v)
    return "-" if f is None else f"{f:.2f}"


_pct = _cap_pct
_b = _fmt_bytes


# column name patterns -> formatter, for the tables
_BYTES_COLS = {
    "mem_used",
    "mem_total",
    "disk_used",
    "disk_total",
    "swap_used",
    "swap_total",
    "storage_used",
    "storage_total",
    "mem_alloc_running",
    "mem_alloc_all",
    "used",
    "total",
    "avail",
    "provisioned",
    "mem_needed",
    "mem_free_elsewhere",
    "mem_headroom",
    "size",
    "suggested_mem",
    "capacity_bytes",
    "netin",
    "netout",
    "diskread",
    "diskwrite",
}
_PCT_COLS = {
    "cpu",
    "mem_fraction",
    "storage_fraction",
    "used_fraction",
    "mem_overcommit_running",
    "mem_overcommit_all",
    "current",
    "threshold",
    "cpu_median",
    "cpu_peak",
    "mem_median",
    "mem_peak",
}
_RATIO_COLS = {"cpu_overcommit_running", "cpu_overcommit_all", "provisioned_ratio", "cpu_used"}


def _cell(col: str, v: Any) -> str:
    if isinstance(v, list | tuple | dict):
        return ", ".join(str(x) for x in v) if isinstance(v, list | tuple) else str(v)
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    if col in _BYTES_COLS:
        return _b(v)
    if col in _PCT_COLS:
        return _pct(v)
    if col in _RATIO_COLS:
        return _f2(v)
    if col in ("slope_per_day", "slope_low", "slope_high"):
        return f"{float(v) * 100:+.2f} %/day"
    if col in ("days_until", "days_low", "days_high", "age_days"):
        return "never" if math.isinf(float(v)) else f"{float(v):.0f}"
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _metric_cell(v: Any, unit: Any) -> str:
    """A finding's metric in its unit."""
    if v is None or pd.isna(v):
        return ""
    f = float(v)
    return {
        "fraction": _pct(f),
        "ratio": f"{f:.2f}x",
        "days": f"{f:.0f} days",
        "bytes": _b(f),
    }.get(str(unit), f"{f:.3g}")


def _table(df: pd.DataFrame, columns: list[str] | None = None, *, cls: str = "") -> str:
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    if df.empty:
        return '<p class="empty">nothing to show</p>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for idx, row in zip(df.index, df[cols].itertuples(index=False, name=None), strict=True):
        cells = []
        for c, v in zip(cols, row, strict=True):
            attr = f' class="sev-{html.escape(str(v))}"' if c == "severity" else ""
            num = "" if attr else (' class="num"' if isinstance(v, int | float) else "")
            if c == "metric" and "unit" in df.columns:
                text = _metric_cell(v, df.at[idx, "unit"])
            else:
                text = _cell(c, v)
            cells.append(f"<td{attr or num}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="table-wrap"><table class="{cls}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


_CSS = """
:root { --bg: #ffffff; --fg: #1f2937; --muted: #6b7280; --card: #f3f4f6; --line: #e5e7eb;
        --crit: #b91c1c; --warn: #b45309; --info: #1d4ed8; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #111827; --fg: #e5e7eb; --muted: #9ca3af; --card: #1f2937; --line: #374151;
          --crit: #f87171; --warn: #fbbf24; --info: #93c5fd; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; }
.meta, .empty, .hint { color: var(--muted); }
.warn-box { border-left: 4px solid var(--warn); background: var(--card); padding: 8px 12px;
            margin: 12px 0; }
.top { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 560px), 1fr));
       gap: 0 24px; align-items: start; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
         gap: 10px; margin: 8px 0 16px; }
.card { background: var(--card); border-radius: 8px; padding: 10px 12px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; }
.card .value { font-size: 22px; font-weight: 600; }
.card .hint { font-size: 12px; }
.table-wrap { overflow-x: auto; max-height: 480px; overflow-y: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
         white-space: nowrap; }
th { position: sticky; top: 0; background: var(--card); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.sev-critical { color: var(--crit); font-weight: 600; }
td.sev-warning { color: var(--warn); font-weight: 600; }
td.sev-info { color: var(--info); }
section.chart { margin: 24px 0; }
details { margin: 6px 0 0; } summary { cursor: pointer; color: var(--muted); }
.table-wrap.findings-wrap { max-height: none; }  /* folded: short; opened rows must not scroll */
table.findings td { vertical-align: top; }
table.findings td.msg { white-space: normal; min-width: 360px; }
details.group { margin: 0; } details.group summary { color: var(--fg); }
details.group ul { margin: 4px 0 2px; padding-left: 18px; color: var(--muted); }
nav a { color: var(--info); margin-right: 12px; }
"""

# Re-theme figures for dark pages: the pvekit template keeps every text colour on
# layout.font, so one relayout per figure is enough.
_DARK_JS = """
(function () {
  if (!window.matchMedia || !window.Plotly) return;
  var dark = window.matchMedia('(prefers-color-scheme: dark)');
  var divs = Array.prototype.slice.call(document.querySelectorAll('.plotly-graph-div'));
  var light = divs.map(function (d) { return d._fullLayout && d._fullLayout.font.color; });
  function apply() {
    divs.forEach(function (div, i) {
      window.Plotly.relayout(div, {'font.color': dark.matches ? '#d1d5db' : light[i]});
    });
  }
  if (dark.matches) apply();
  // follow the system theme when it changes while the page is open
  if (dark.addEventListener) dark.addEventListener('change', apply);
})();
"""

_CHART_TEXT: dict[str, tuple[str, str]] = {
    "overview": (
        "Overview",
        "Used and allocated share of physical CPU, memory and storage per cluster "
        "(and for the whole group). Above 100 % on the right means overcommitted.",
    ),
    "node_utilisation": (
        "Node utilisation",
        "Per node: what is used, what running guests are allocated, and what physically exists.",
    ),
    "overcommit": (
        "Overcommit",
        "Allocated vCPUs per physical core and allocated memory per physical "
        "memory, for running guests and for all guests.",
    ),
    "headroom": (
        "Failure headroom (N+1)",
        "If a node fails, its running guests must restart on the others. Red: they "
        "would not fit; the star marks each cluster's weakest link.",
    ),
    "storage_pools": (
        "Storage pools",
        "Used and free per pool, shared pools counted once; the diamond is disk "
        "provisioned to guests (thin provisioning).",
    ),
    "storage_forecast": (
        "Storage forecast",
        "Used fraction over the period with a robust (Theil-Sen) trend and "
        "its 95 % confidence band, projected ahead.",
    ),
    "memory_forecast": (
        "Node memory forecast",
        "Node memory used over the period with trend and confidence band.",
    ),
    "guests": (
        "Guests",
        "Every guest sized by configured memory and coloured by CPU use, grouped by "
        "cluster and node. Click a tile to zoom.",
    ),
}


def _chart_tables(rep: Report) -> dict[str, str]:
    a = rep.analysis
    fc_cols = [
        "profile",
        "target",
        "resource",
        "points",
        "current",
        "slope_per_day",
        "status",
        "days_until",
        "days_low",
        "days_high",
        "eta",
    ]
    guest_cols = [
        "profile",
        "vmid",
        "name",
        "type",
        "node",
        "status",
        "cores",
        "cpu",
        "mem_used",
        "mem_total",
        "disk_total",
        "tags",
        "lock",
    ]
    overview = (
        pd.concat([a.cluster_usage, a.group_usage], ignore_index=True)
        if len(a.cluster_usage) > 1
        else a.cluster_usage
    )
    return {
        "overview": _table(overview),
        "node_utilisation": _table(
            a.node_usage,
            [
                "profile",
                "node",
                "online",
                "cores",
                "cpu_used",
                "vcpus_running",
                "mem_used",
                "mem_alloc_running",
                "mem_total",
                "mem_fraction",
                "storage_used",
                "storage_total",
                "guests_running",
                "guests_total",
            ],
        ),
        "overcommit": _table(
            a.node_usage,
            [
                "profile",
                "node",
                "vcpus_running",
                "vcpus_all",
                "cores",
                "cpu_overcommit_running",
                "cpu_overcommit_all",
                "mem_alloc_running",
                "mem_alloc_all",
                "mem_total",
                "mem_overcommit_running",
                "mem_overcommit_all",
            ],
        ),
        "headroom": _table(a.headroom),
        "storage_pools": _table(a.storage_pools),
        # a pool by its one name (capacity.pool_name), not the node whose rrddata was read
        "storage_forecast": _table(
            a.forecast[a.forecast["kind"] == "storage"],
            ["pool" if c == "target" else c for c in fc_cols],
        ),
        "memory_forecast": _table(a.forecast[a.forecast["kind"] == "node"], fc_cols),
        "guests": _table(rep.frames["guests"], guest_cols),
        **_growth_tables(rep),
    }


def _top_blocks(rep: Report) -> list[str]:
    """The blocks of the report's top row, side by side on a wide screen (stacked on a narrow
    one): the summary cards first. A section that belongs beside the summary (such as time
    remaining per cluster and resource) is one more ``<section class="top-block">`` here."""
    e = html.escape
    cards = "".join(
        f'<div class="card"><div class="label">{e(label)}</div>'
        f'<div class="value">{e(value)}</div><div class="hint">{e(hint)}</div></div>'
        for label, value, hint in rep._headlines()
    )
    return [
        '<section class="top-block" id="summary"><h2>Summary</h2>'
        f'<div class="cards">{cards}</div></section>'
    ] + ([_time_remaining_block(rep)] if rep.planning is not None else [])


def _findings_block(rep: Report) -> str:
    """The findings, repeated ones folded: a row with a count, the list behind it in a
    ``<details>``."""
    e = html.escape
    grouped = rep.grouped_findings
    total = len(rep.findings)
    folded = int((grouped["count"] > 1).sum()) if len(grouped) else 0
    intro = (
        '<h2 id="findings">Findings</h2><p class="hint">Most urgent first; within a severity, '
        "findings that stand alone before repeated ones. The metric is the number behind "
        "each finding: a fraction, a ratio, days or bytes."
        + (
            f" {total} findings in {len(grouped)} rows: {folded} rows fold repeated findings "
            "of one kind in one cluster (open one for the list)."
            if folded
            else ""
        )
        + "</p>"
    )
    if grouped.empty:
        return intro + '<p class="empty">nothing to show</p>'
    cols = ["severity", "profile", "category", "object", "message", "metric"]
    body = []
    for _, r in grouped.iterrows():
        sev = e(str(r["severity"]))
        count = int(r["count"])
        if count > 1:
            listed: pd.DataFrame = r["items"]
            # each message already says its number: no metric column inside the list
            items = "".join(f"<li>{e(str(msg))}</li>" for msg in listed["message"])
            message = (
                f'<details class="group"><summary>{e(str(r["message"]))}</summary>'
                f"<ul>{items}</ul></details>"
            )
        else:
            message = e(str(r["message"]))
        cells = [
            f'<td class="sev-{sev}">{sev}</td>',
            f"<td>{e(str(r['profile']))}</td>",
            f"<td>{e(str(r['category']))}</td>",
            f"<td>{e(str(r['object']))}</td>",
            f'<td class="msg">{message}</td>',
            f'<td class="num">{e(_metric_cell(r["metric"], r["unit"]))}</td>',
        ]
        body.append(f'<tr data-count="{count}">' + "".join(cells) + "</tr>")
    head = "".join(f"<th>{c}</th>" for c in cols)
    return (
        f'{intro}<div class="table-wrap findings-wrap"><table class="findings">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _plotlyjs_tag(mode: str) -> str:
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    if mode == "cdn":
        url = f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"
        return f"<script src='{url}' charset='utf-8'></script>"
    if mode == "directory":
        return f"<script src='{PLOTLYJS_FILE}' charset='utf-8'></script>"
    # once, inline: the page must open with no network
    return f"<script type='text/javascript'>{get_plotlyjs()}</script>"


def _render(rep: Report, plotlyjs: str = "inline") -> str:
    import plotly.io as pio

    e = html.escape
    parts: list[str] = []
    profiles = ", ".join(rep.profiles) or "none"
    parts.append(
        f"<header><h1>{e(rep.title)}</h1><p class='meta'>Clusters: {e(profiles)} · "
        f"metrics: last {e(rep.timeframe)} · generated "
        f"{e(rep.generated.strftime('%Y-%m-%d %H:%M UTC'))} by pvekit</p></header>"
    )
    nav = ["summary", "findings", *rep.figures, "rightsizing", "hygiene"]
    if rep.planning is not None:
        nav[1:1] = ["time-remaining"]
        nav[3:3] = ["planning"]
    parts.append(
        "<nav>"
        + "".join(
            f'<a href="#{n}">{e(_CHART_TEXT.get(n, (_NAV_TEXT.get(n, n), ""))[0])}</a>' for n in nav
        )
        + "</nav>"
    )
    for w in rep.warnings:
        parts.append(f'<div class="warn-box">Partial report: {e(w)}</div>')
    parts.append('<div class="top">' + "".join(_top_blocks(rep)) + "</div>")
    parts.append(_findings_block(rep))
    parts.append(_planning_block(rep))
    tables = _chart_tables(rep)
    for i, (name, fig) in enumerate(rep.figures.items()):
        heading, text = _CHART_TEXT.get(name, (name, ""))
        div = pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=False,
            div_id=f"chart-{name}",
            config={"displaylogo": False, "responsive": True},
            default_width="100%",
        )
        parts.append(
            f'<section class="chart" id="{e(name)}"><h2>{e(heading)}</h2>'
            f'<p class="hint">{e(text)}</p>{div}'
            f"<details{' open' if i == 0 else ''}><summary>Table behind this chart"
            f"</summary>{tables.get(name, '')}</details></section>"
        )
    a = rep.analysis
    parts.append(
        '<h2 id="rightsizing">Right-sizing</h2><p class="hint">Guests far below or '
        "pinned at their allocation (peak = 95th percentile over the period), stopped "
        "guests holding disk, templates.</p>"
    )
    parts.append(
        _table(
            a.rightsizing,
            [
                "profile",
                "vmid",
                "name",
                "node",
                "category",
                "basis",
                "cores",
                "cpu_peak",
                "mem_total",
                "mem_peak",
                "disk_total",
                "suggested_cores",
                "suggested_mem",
                "message",
            ],
        )
    )
    parts.append(
        '<h2 id="hygiene">Hygiene</h2><p class="hint">Backups, old snapshots and locks.</p>'
    )
    parts.append(
        _table(
            a.hygiene,
            [
                "profile",
                "vmid",
                "name",
                "node",
                "category",
                "detail",
                "when",
                "age_days",
                "message",
            ],
        )
    )
    parts.extend(_growth_parts(rep))
    status = rep.frames.get("status")
    if status is not None and len(status):
        parts.append("<h2>Connections</h2>" + _table(status))
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{e(rep.title)}</title><style>{_CSS}</style>"
        f"{_plotlyjs_tag(plotlyjs)}"
        f"</head><body><main>{body}</main><script>{_DARK_JS}</script></body></html>\n"
    )


# --------------------------------------------------------------------------------------------
# growth section (history store)

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
    from . import charts
    from .history import Store

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


# --------------------------------------------------------------------------------------------
# CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pvekit report`` (called by :mod:`pvekit.cli`)."""
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--profile", "-p", help="a configured profile (default: the default one)")
    src.add_argument("--group", "-g", help="a configured group of clusters")
    src.add_argument(
        "--demo", action="store_true", help="report on the embedded simulator's demo clusters"
    )
    parser.add_argument(
        "--timeframe",
        "-t",
        default="month",
        choices=TIMEFRAMES,
        help="metrics window for trends and right-sizing (default: month)",
    )
    parser.add_argument("--output", "-o", required=True, help="HTML file to write")
    parser.add_argument(
        "--png", metavar="DIR", help="also write every chart as PNG into DIR (kaleido + Chromium)"
    )
    parser.add_argument(
        "--plotlyjs",
        default="inline",
        choices=PLOTLYJS,
        help="inline: plotly.js embedded, the file opens with no network (default, ~5 MB); "
        "cdn: loaded from cdn.plot.ly; directory: plotly.min.js written beside the report",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.9,
        help="forecast threshold as a fraction (default: 0.9)",
    )
    parser.add_argument(
        "--no-guest-metrics",
        action="store_true",
        help="skip per-guest rrddata (faster on large clusters)",
    )
    parser.add_argument(
        "--reference",
        default=",".join(str(v) for v in DEFAULT_REFERENCE.values()),
        metavar="CORES,MEMORY[,DISK]",
        help="guest size that capacity remaining is counted in (default: 2,4G,32G)",
    )
    parser.add_argument(
        "--no-planning",
        action="store_true",
        help="leave out the planning section (time remaining, capacity remaining, "
        "maintenance readiness, reclaimable capacity)",
    )
    parser.add_argument(
        "--history",
        metavar="LOCATION",
        help="add the growth section from a history store (folder or fsspec URL)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    """Run ``pvekit report``: build the report, write the HTML (and PNGs)."""
    out = Path(args.output)
    if out.parent and not out.parent.exists():
        raise InvalidInputError(f"cannot write {out}: directory {out.parent} does not exist")
    if not 0 < args.threshold <= 1:
        raise InvalidInputError(f"--threshold must be a fraction in (0, 1], got {args.threshold}")
    planning = not getattr(args, "no_planning", False)
    reference = parse_reference(args.reference) if planning else None

    def say(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    import pvekit

    if args.demo:
        say("starting the demo simulator ...")
        source: Any = pvekit.demo()
    elif args.group:
        say(f"connecting to group {args.group} ...")
        source = pvekit.connect_group(args.group)
    else:
        say(f"connecting to profile {args.profile or '(default)'} ...")
        source = pvekit.connect(args.profile)
    try:
        rep = capacity(
            source,
            args.timeframe,
            threshold=args.threshold,
            guest_metrics=not args.no_guest_metrics,
            progress=say,
            planning=planning,
            reference=reference,
            history=getattr(args, "history", None),
        )
    finally:
        source.close()
    plotlyjs = getattr(args, "plotlyjs", "inline")
    rep.to_html(out, plotlyjs=plotlyjs)
    say(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)"
        + (f" and {out.parent / PLOTLYJS_FILE}" if plotlyjs == "directory" else "")
    )
    if args.png:
        say(f"rendering {len(rep.figures)} PNG files into {args.png} ...")
        paths = rep.write_png(args.png)
        say(f"wrote {len(paths)} PNG files")
    counts = rep.findings["severity"].value_counts()
    say(
        f"{counts.get('critical', 0)} critical, {counts.get('warning', 0)} warning, "
        f"{counts.get('info', 0)} info findings"
    )
    return 0


# --------------------------------------------------------------------------------------------
# planning section: time remaining, capacity remaining, maintenance readiness, reclaimable

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
    from . import planning

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
    from . import planning

    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) not in (2, 3) or not parts[0].isdigit() or not all(parts):
        raise InvalidInputError(
            f"reference size must read CORES,MEMORY[,DISK] (e.g. 2,4G,32G), got {text!r}"
        )
    return planning.guest_spec(int(parts[0]), parts[1], parts[2] if len(parts) == 3 else None)


def maintenance_readiness(source: Any, *, policy: Any = None) -> pd.DataFrame:
    """For each node of ``source`` (a Cluster, Group or :class:`~pvekit.planning.
    PlanningInput`): can it be evacuated now, and if not why (:data:`MAINTENANCE_COLUMNS`).

    :func:`pvekit.planning.readiness` with the offline nodes listed too (one evacuation plan
    per node, each on the cluster as it is now: the nodes are not emptied one after the
    other), in the report's column names."""
    from . import planning

    r = planning.readiness(source, policy=policy, offline=True)
    return r.rename(columns={"can_empty": "can_evacuate"})[list(MAINTENANCE_COLUMNS)]


def reclaimable_totals(frame: pd.DataFrame) -> pd.DataFrame:
    """Sums of :func:`pvekit.planning.reclaimable` per cluster and kind (kinds in the
    planner's order): ``items``, ``bytes``, ``memory``, ``vcpus`` (NA where no row of the
    kind has a size, e.g. snapshots)."""
    from .planning import RECLAIM_KINDS

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
    source: Any,
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
    from . import charts, planning

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


_PLANNING_TEXT: dict[str, tuple[str, str]] = {
    "time_remaining": (
        "Time remaining",
        "Days until each cluster's CPU, memory and storage pools reach the threshold at the "
        "current trend, the binding resource (★) first. Not growing: no trend, no date.",
    ),
    "capacity_remaining": (
        "Capacity remaining",
        "How many more guests of the reference size fit, on the nodes as they are now: at "
        "all, and while keeping room to restart a failed node's guests (N+1).",
    ),
    "maintenance": (
        "Maintenance readiness",
        "For each node: could it be emptied for maintenance now (✓), and if not, which "
        "guests keep it from being emptied and why.",
    ),
    "reclaimable": (
        "Reclaimable capacity",
        "What could be given back, by kind: oversized and idle guests, long-stopped guests "
        "and their disks, old snapshots, backups beyond retention, unused disks and "
        "templates. Each row of the table behind it carries its evidence.",
    ),
}


def _days_cell(status: Any, days: Any) -> str:
    s = str(status)
    if s == "above threshold":
        return "now"
    if s != "growing" or days is None or pd.isna(days):
        return s
    return f"{float(days):.0f}"


def _chart_div(name: str, fig: go.Figure) -> str:
    import plotly.io as pio

    return str(
        pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=False,
            div_id=f"chart-{name}",
            config={"displaylogo": False, "responsive": True},
            default_width="100%",
        )
    )


def _time_remaining_table(tr: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "profile": tr["profile"].astype(str),
            "resource": [
                f"{r} ★" if bool(b) else str(r)
                for r, b in zip(tr["resource"], tr["binding"], strict=True)
            ],
            "used now": [_pct(v) for v in tr["current"]],
            # the confidence range beside the days, so the table fits beside the summary
            "days left": [
                _days_cell(s, d)
                + (
                    f" ({lo:.0f}-{hi:.0f})"
                    if str(s) == "growing" and pd.notna(lo) and pd.notna(hi)
                    else ""
                )
                for s, d, lo, hi in zip(
                    tr["status"], tr["days_until"], tr["days_low"], tr["days_high"], strict=True
                )
            ],
            "date": [
                t.strftime("%Y-%m-%d") if isinstance(t, pd.Timestamp) and pd.notna(t) else ""
                for t in tr["eta"]
            ],
        }
    )


def _time_remaining_block(rep: Report) -> str:
    """The top-row block beside the summary: time remaining per cluster and resource."""
    sec = rep.planning
    if sec is None:
        return ""
    e = html.escape
    heading, text = _PLANNING_TEXT["time_remaining"]
    tr = sec.time_remaining
    th = tr["threshold"].dropna()
    text += f" Threshold: {_pct(th.iloc[0])}." if len(th) else ""
    return (
        f'<section class="top-block" id="time-remaining"><h2>{e(heading)}</h2>'
        f'<p class="hint">{e(text)}</p>'
        + _table(_time_remaining_table(tr), cls="time-remaining")
        + _chart_div("time_remaining", sec.figures["time_remaining"])
        + "</section>"
    )


def _planning_block(rep: Report) -> str:
    """The planning section below the findings: capacity remaining, maintenance readiness,
    reclaimable capacity, each a chart with its table."""
    sec = rep.planning
    if sec is None:
        return ""
    e = html.escape
    ref = sec.reference.iloc[0]
    ref_text = f"{int(ref['cores'])} vCPU / {_b(ref['memory'])}" + (
        f" / {_b(ref['disk'])} disk" if int(ref["disk"]) else ""
    )
    cr = sec.capacity_remaining
    mt = sec.maintenance
    totals = sec.reclaimable_totals
    tables = {
        "capacity_remaining": _table(
            pd.DataFrame(
                {
                    "profile": cr["profile"].astype(str),
                    "reference": cr["shape"].astype(str),
                    "fit now": cr["max_count"],
                    "keeping N+1": cr["max_count_n_plus_1"],
                    "next one stopped by": [
                        f"{b} on {n}" if isinstance(b, str) and b else ""
                        for b, n in zip(cr["stopped_by"], cr["stopped_node"], strict=True)
                    ],
                    "why": cr["stopped_reason"].astype(str),
                }
            )
        ),
        "maintenance": _table(
            pd.DataFrame(
                {
                    "profile": mt["profile"].astype(str),
                    "node": mt["node"].astype(str),
                    "can evacuate": ["yes" if ok else "no" for ok in mt["can_evacuate"]],
                    "guests": mt["guests"],
                    "moves": mt["moves"],
                    "memory moved": [_b(v) for v in mt["memory_moved"]],
                    "stay": mt["staying"],
                    "blocking": mt["blocking"],
                    "why not": mt["reason"].astype(str),
                }
            ),
            cls="maintenance",
        ),
        "reclaimable": _table(
            pd.DataFrame(
                {
                    "profile": totals["profile"],
                    "kind": totals["kind"],
                    "items": totals["items"],
                    "disk": ["unknown" if pd.isna(v) else _b(v) for v in totals["bytes"]],
                    "memory": ["" if pd.isna(v) else _b(v) for v in totals["memory"]],
                    "vCPUs": ["" if pd.isna(v) else str(int(v)) for v in totals["vcpus"]],
                }
            )
        )
        + "<details><summary>Every reclaimable item, with its evidence</summary>"
        + _table(
            sec.reclaimable,
            [
                "profile",
                "kind",
                "vmid",
                "name",
                "node",
                "storage",
                "bytes",
                "memory",
                "vcpus",
                "age_days",
                "evidence",
            ],
        )
        + "</details>",
    }
    parts = [
        '<h2 id="planning">Planning</h2><p class="hint">What the planners of pvekit.planning '
        f"answer on these frames. Reference size for capacity remaining: {e(ref_text)}.</p>"
    ]
    for w in sec.warnings:
        parts.append(f'<div class="warn-box">Planning: {e(w)}</div>')
    for name in ("capacity_remaining", "maintenance", "reclaimable"):
        heading, text = _PLANNING_TEXT[name]
        parts.append(
            f'<section class="chart planning" id="{name.replace("_", "-")}"><h3>{e(heading)}'
            f'</h3><p class="hint">{e(text)}</p>{_chart_div(name, sec.figures[name])}'
            f"<details open><summary>Table behind this chart</summary>{tables[name]}</details>"
            "</section>"
        )
    return "".join(parts)


_NAV_TEXT = {"time-remaining": "Time remaining", "planning": "Planning"}


def _frames_input(
    nodes: pd.DataFrame,
    guests: pd.DataFrame,
    storage: pd.DataFrame,
    metrics: pd.DataFrame | None,
    backups: pd.DataFrame | None,
    snapshots: pd.DataFrame | None,
) -> Any:
    from .planning import PlanningInput

    return PlanningInput(
        nodes=nodes,
        guests=guests,
        storage=storage,
        metrics=metrics,
        backups=backups,
        snapshots=snapshots,
    )


def _read_planning_input(
    source: Any,
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
    from .planning import PlanningInput

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
