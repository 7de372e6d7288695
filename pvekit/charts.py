"""Plotly charts of capacity frames.

Every chart takes frames (the output of :mod:`pvekit.capacity` or the inventory frames), never
a cluster, so users can filter first::

    usage = capacity.node_usage(nodes, guests, storage)
    charts.node_utilisation(usage[usage.profile == "prod"]).show()

The charts share one template, ``"pvekit"``, registered with plotly once (on first use):
transparent backgrounds, grey grid and text, and a colour-blind-safe palette, so a figure reads
in light and dark notebook themes alike. ``set_theme("dark")`` switches later figures to the
``"pvekit_dark"`` variant (light text) for dark-only pages. Hover texts format bytes with
:func:`pvekit.format_bytes` and fractions as percentages. Charts work for one cluster or a
group: when a frame holds more than one profile, labels read ``profile/node``.

The values on the axes are the frame's own numbers (bytes stay bytes: axis ticks are labelled in
binary units), so ``fig.data[i].y`` equals the column it was drawn from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from ._errors import InvalidInputError
from .capacity._common import _by_metric, _finite, _fmt_bytes, _require, pool_name
from .capacity._forecast import _USED_TOTAL

__all__ = [
    "COLORS",
    "TEMPLATE",
    "capacity_remaining",
    "guests_treemap",
    "headroom",
    "maintenance",
    "metrics_history",
    "node_utilisation",
    "overcommit",
    "overview",
    "reclaimable",
    "register_template",
    "set_theme",
    "storage_pools",
    "time_remaining",
]

TEMPLATE = "pvekit"
_DARK = "pvekit_dark"

# Okabe-Ito: distinguishable with colour-blindness and on white or near-black backgrounds.
COLORS: dict[str, str] = {
    "used": "#0072B2",
    "allocated": "#E69F00",
    "capacity": "#999999",
    "all": "#CC79A7",
    "free": "#56B4E9",
    "bad": "#D55E00",
    "good": "#009E73",
    "forecast": "#E69F00",
    "threshold": "#D55E00",
}
_COLORWAY = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
_BYTE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB", "EB")  # 1024-based, as format_bytes names them

_theme = {"name": TEMPLATE}


def register_template() -> str:
    """Register the ``pvekit`` and ``pvekit_dark`` plotly templates (once) and return the
    name charts currently use. Safe to call many times."""
    if TEMPLATE not in pio.templates:
        pio.templates[TEMPLATE] = _make_template("#6b7280")
        pio.templates[_DARK] = _make_template("#d1d5db")
    return _theme["name"]


def set_theme(theme: str) -> None:
    """Use ``"light"`` (default: readable on both) or ``"dark"`` text for later charts."""
    if theme not in ("light", "dark"):
        raise InvalidInputError(f"theme must be 'light' or 'dark', got {theme!r}")
    register_template()
    _theme["name"] = TEMPLATE if theme == "light" else _DARK


def _make_template(text: str) -> go.layout.Template:
    grid = "rgba(128,128,128,0.25)"
    # Text colours are set once, on layout.font: axes, legend, titles and annotations inherit
    # it, so one relayout of "font.color" re-themes a whole figure (the report does that).
    axis = dict(gridcolor=grid, linecolor=grid, zerolinecolor=grid, tickcolor=grid, automargin=True)
    return go.layout.Template(
        layout=go.Layout(
            font=dict(
                family="system-ui, -apple-system, 'Segoe UI', sans-serif", color=text, size=12
            ),
            paper_bgcolor="rgba(0,0,0,0)",
            plot_bgcolor="rgba(0,0,0,0)",
            colorway=_COLORWAY,
            xaxis=axis,
            yaxis=axis,
            # top right, above the subplot titles, clear of the figure title on the left
            legend=dict(
                bgcolor="rgba(0,0,0,0)",
                orientation="h",
                yanchor="bottom",
                y=1.1,
                xanchor="right",
                x=1,
            ),
            hoverlabel=dict(font=dict(family="system-ui, sans-serif")),
            margin=dict(l=60, r=20, t=90, b=50),
            title=dict(font=dict(size=15), x=0, xanchor="left"),
            bargap=0.25,
        )
    )


def _layout(fig: go.Figure, title: str, height: int | None = None) -> go.Figure:
    fig.update_layout(template=register_template(), title=title)
    if height:
        fig.update_layout(height=height)
    return fig


# --------------------------------------------------------------------------------------------
# formatting helpers


_fmt = _fmt_bytes


def _pct(v: Any) -> str:
    f = _finite(v)
    return "-" if f is None else f"{f * 100:.1f} %"


def _num(s: pd.Series) -> list[float | None]:
    """Plain floats with None for missing: what plotly stores and tests compare against."""
    out: list[float | None] = []
    for v in pd.to_numeric(s, errors="coerce").astype("float64"):
        out.append(None if math.isnan(v) else float(v))
    return out


def _labels(df: pd.DataFrame, col: str = "node") -> list[str]:
    """``node`` for one cluster, ``profile/node`` when the frame spans several."""
    many = "profile" in df and df["profile"].nunique() > 1
    return [f"{p}/{n}" if many else str(n) for p, n in zip(df["profile"], df[col], strict=True)]


def _bytes_ticks(max_value: float) -> tuple[list[float], list[str]]:
    """Round binary-unit ticks (0, 16 GB, 32 GB...) up to ``max_value``."""
    if not max_value or math.isnan(max_value) or max_value <= 0:
        return [0.0], ["0 B"]
    exp = min(int(math.log(max_value, 1024)), len(_BYTE_UNITS) - 1)
    unit = 1024.0**exp
    span = max_value / unit
    step = next(
        s
        for s in (
            0.25,
            0.5,
            1,
            2,
            4,
            5,
            8,
            10,
            16,
            20,
            25,
            32,
            50,
            64,
            100,
            128,
            200,
            250,
            256,
            500,
            512,
            1000,
            1024,
        )
        if span / s <= 6
    )
    ticks = [i * step for i in range(int(span / step) + 2)]
    return [t * unit for t in ticks], [f"{t:g} {_BYTE_UNITS[exp]}" if t else "0" for t in ticks]


def _bytes_axis(
    fig: go.Figure,
    values: Sequence[float | None],
    *,
    axis: str = "y",
    row: int | None = None,
    col: int | None = None,
) -> None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    tickvals, ticktext = _bytes_ticks(max(vals, default=0.0))
    update = fig.update_yaxes if axis == "y" else fig.update_xaxes
    update(tickmode="array", tickvals=tickvals, ticktext=ticktext, row=row, col=col)


# --------------------------------------------------------------------------------------------
# charts


def node_utilisation(node_usage: pd.DataFrame, *, title: str = "Node utilisation") -> go.Figure:
    """Per node, side by side: used, allocated (running guests) and physical capacity.

    Left: CPU in cores (``cpu_used``, ``vcpus_running``, ``cores``); right: memory in bytes
    (``mem_used``, ``mem_alloc_running``, ``mem_total``). Input: :func:`capacity.node_usage`.
    """
    _require(
        node_usage,
        "node usage",
        [
            "profile",
            "node",
            "cpu_used",
            "vcpus_running",
            "cores",
            "mem_used",
            "mem_alloc_running",
            "mem_total",
        ],
    )
    x = _labels(node_usage)
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("CPU (cores)", "Memory"), horizontal_spacing=0.12
    )
    cpu = [("used", "cpu_used"), ("allocated", "vcpus_running"), ("capacity", "cores")]
    mem = [("used", "mem_used"), ("allocated", "mem_alloc_running"), ("capacity", "mem_total")]
    for name, col in cpu:
        y = _num(node_usage[col])
        fig.add_trace(
            go.Bar(
                x=x,
                y=y,
                name=name,
                legendgroup=name,
                marker_color=COLORS[name],
                customdata=[f"{v:.1f}" if v is not None else "-" for v in y],
                hovertemplate=f"%{{x}}<br>CPU {name}: %{{customdata}} cores<extra></extra>",
            ),
            row=1,
            col=1,
        )
    for name, col in mem:
        y = _num(node_usage[col])
        frac = node_usage[col].astype("float64") / node_usage["mem_total"].astype("float64")
        fig.add_trace(
            go.Bar(
                x=x,
                y=y,
                name=name,
                legendgroup=name,
                marker_color=COLORS[name],
                showlegend=False,
                customdata=[[_fmt(v), _pct(f)] for v, f in zip(y, frac, strict=True)],
                hovertemplate=(
                    f"%{{x}}<br>memory {name}: %{{customdata[0]}} "
                    "(%{customdata[1]} of physical)<extra></extra>"
                ),
            ),
            row=1,
            col=2,
        )
    fig.update_layout(barmode="group")
    _bytes_axis(
        fig, _num(node_usage["mem_total"]) + _num(node_usage["mem_alloc_running"]), row=1, col=2
    )
    return _layout(fig, title, 420)


def overview(cluster_usage: pd.DataFrame, *, title: str = "Clusters at a glance") -> go.Figure:
    """Per cluster (and the group total, if the frame holds a ``(all)`` row): used and
    allocated fractions of physical CPU, memory and storage.

    Input: :func:`capacity.cluster_usage`, optionally concatenated with
    :func:`capacity.group_usage`. Left: used (``cpu``, ``mem_fraction``,
    ``storage_fraction``); right: allocated for running guests (``cpu_overcommit_running``,
    ``mem_overcommit_running``, ``provisioned_ratio``); 100 % marks physical capacity.
    """
    _require(
        cluster_usage,
        "cluster usage",
        [
            "profile",
            "cpu",
            "mem_fraction",
            "storage_fraction",
            "cpu_overcommit_running",
            "mem_overcommit_running",
            "provisioned_ratio",
        ],
    )
    y = [str(p) for p in cluster_usage["profile"]]
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.06,
        subplot_titles=("Used of physical", "Allocated to running guests"),
    )
    used = [
        ("CPU", "cpu", ("cpu_used", "cores")),
        ("memory", "mem_fraction", ("mem_used", "mem_total")),
        ("storage", "storage_fraction", ("storage_used", "storage_total")),
    ]
    for i, (name, col, (a, b)) in enumerate(used):
        x = _num(cluster_usage[col])
        detail = [
            _detail(name, ua, tb)
            for ua, tb in zip(
                cluster_usage.get(a, pd.Series([None] * len(y))),
                cluster_usage.get(b, pd.Series([None] * len(y))),
                strict=True,
            )
        ]
        fig.add_trace(
            go.Bar(
                x=x,
                y=y,
                orientation="h",
                name=name,
                legendgroup=name,
                marker_color=_COLORWAY[i],
                customdata=[[_pct(v), d] for v, d in zip(x, detail, strict=True)],
                hovertemplate=f"%{{y}} {name} used: %{{customdata[0]}} %{{customdata[1]}}"
                "<extra></extra>",
            ),
            row=1,
            col=1,
        )
    alloc = [
        ("CPU", "cpu_overcommit_running", "vCPUs per core"),
        ("memory", "mem_overcommit_running", "of physical memory"),
        ("storage", "provisioned_ratio", "of pool size provisioned"),
    ]
    for i, (name, col, what) in enumerate(alloc):
        x = _num(cluster_usage[col])
        fig.add_trace(
            go.Bar(
                x=x,
                y=y,
                orientation="h",
                name=name,
                legendgroup=name,
                showlegend=False,
                marker_color=_COLORWAY[i],
                customdata=[
                    _pct(v) if name != "CPU" else (f"{v:.2f}" if v is not None else "-") for v in x
                ],
                hovertemplate=f"%{{y}} {name}: %{{customdata}} {what}<extra></extra>",
            ),
            row=1,
            col=2,
        )
    fig.update_layout(barmode="group")
    fig.update_xaxes(tickformat=".0%", row=1, col=1)
    fig.update_xaxes(tickformat=".0%", row=1, col=2)
    fig.add_vline(x=1.0, line_dash="dot", line_color=COLORS["threshold"], row=1, col=2)
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, max(260, 110 + 70 * len(y)))


def _detail(name: str, used: Any, total: Any) -> str:
    if name == "CPU":
        try:
            return f"({float(used):.1f} of {float(total):.0f} cores)"
        except (TypeError, ValueError):
            return ""
    return f"({_fmt(used)} of {_fmt(total)})"


def storage_pools(pools: pd.DataFrame, *, title: str = "Storage pools") -> go.Figure:
    """Per pool (shared pools once): used and free, with disk provisioned to guests marked.

    Input: :func:`capacity.storage_pools` (filter ``pools[pools.counted]`` to hide inactive
    ones). Bars are stacked used + ``avail``; the diamond is ``provisioned`` (thin
    provisioning: beyond the bar end means more promised than exists).
    """
    _require(pools, "storage pools", ["pool", "used", "avail", "total", "used_fraction"])
    # the pool's one name (capacity.pool_name); "shared" goes in the hover, not the name
    y = [str(p) for p in pools["pool"]]
    shared = pools.get("shared", pd.Series([False] * len(pools), index=pools.index))
    seen_by = pools.get("nodes", pd.Series([1] * len(pools), index=pools.index))
    where = [
        f"shared by {int(n)} nodes" if bool(sh) else "local"
        for sh, n in zip(shared, seen_by, strict=True)
    ]
    used, avail, total = _num(pools["used"]), _num(pools["avail"]), _num(pools["total"])
    frac = _num(pools["used_fraction"])
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=y,
            x=used,
            orientation="h",
            name="used",
            marker_color=COLORS["used"],
            customdata=[
                [_fmt(u), _fmt(t), _pct(f), w]
                for u, t, f, w in zip(used, total, frac, where, strict=True)
            ],
            hovertemplate="%{y} (%{customdata[3]})<br>used %{customdata[0]} of "
            "%{customdata[1]} (%{customdata[2]})<extra></extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            y=y,
            x=avail,
            orientation="h",
            name="free",
            marker_color=COLORS["free"],
            opacity=0.45,
            # the used share at the end of each bar: small pools stay readable
            text=[_pct(f) for f in frac],
            textposition="outside",
            cliponaxis=False,
            customdata=[_fmt(a) for a in avail],
            hovertemplate="%{y}<br>free %{customdata}<extra></extra>",
        )
    )
    if "provisioned" in pools and (pools["provisioned"].fillna(0) > 0).any():
        # a marker only where guests have disks: backup and ISO pools have none
        prov = [p if p else None for p in _num(pools["provisioned"])]
        ratio = (
            _num(pools["provisioned_ratio"]) if "provisioned_ratio" in pools else [None] * len(y)
        )
        fig.add_trace(
            go.Scatter(
                y=y,
                x=prov,
                mode="markers",
                name="provisioned",
                marker=dict(
                    symbol="diamond",
                    size=11,
                    color=COLORS["allocated"],
                    line=dict(width=1, color="rgba(128,128,128,0.8)"),
                ),
                customdata=[
                    [_fmt(p), f"{r:.2f}" if r is not None else "-"]
                    for p, r in zip(prov, ratio, strict=True)
                ],
                hovertemplate="%{y}<br>provisioned to guests %{customdata[0]} "
                "(%{customdata[1]}x the pool)<extra></extra>",
            )
        )
    else:
        prov = []
    fig.update_layout(barmode="stack", legend_traceorder="normal")
    fig.update_yaxes(autorange="reversed")
    _bytes_axis(fig, total + [p for p in prov if p is not None], axis="x")
    return _layout(fig, title, max(260, 120 + 32 * len(y)))


def guests_treemap(guests: pd.DataFrame, *, title: str = "Guests by memory") -> go.Figure:
    """Treemap profile -> node -> guest, sized by configured memory, coloured by CPU use.

    Input: the ``guests()`` frame (any filter of it). Leaf ``values`` are the guests'
    ``mem_total`` and leaf colours their ``cpu`` (0..1); node and cluster tiles are coloured by
    the memory-weighted CPU of their guests.
    """
    _require(guests, "guests", ["profile", "vmid", "node", "mem_total", "cpu"])
    g = guests.reset_index(drop=True)
    mem = [v or 0.0 for v in _num(g["mem_total"])]
    cpu = [v or 0.0 for v in _num(g["cpu"])]
    names = g["name"] if "name" in g else pd.Series([""] * len(g))
    status = g["status"].astype("string") if "status" in g else pd.Series([""] * len(g))
    ids, labels, parents, values, colors, custom = [], [], [], [], [], []
    groups: dict[str, list[int]] = {}
    for i, (p, n) in enumerate(zip(g["profile"], g["node"], strict=True)):
        groups.setdefault(str(p), []).append(i)
        groups.setdefault(f"{p}/{n}", []).append(i)

    def wcpu(idx: list[int]) -> float:
        m = sum(mem[i] for i in idx)
        return sum(mem[i] * cpu[i] for i in idx) / m if m else 0.0

    for key, idx in groups.items():
        is_node = "/" in key
        ids.append(key)
        labels.append(key.split("/", 1)[1] if is_node else key)
        parents.append(key.split("/", 1)[0] if is_node else "")
        values.append(0.0)  # branchvalues="remainder": a parent is the sum of its children
        colors.append(wcpu(idx))
        custom.append([_fmt(sum(mem[i] for i in idx)), _pct(wcpu(idx)), f"{len(idx)} guests"])
    rows = zip(
        g["profile"].astype(str),
        g["node"].astype(str),
        g["vmid"].astype(str),
        names.tolist(),
        status.tolist(),
        strict=True,
    )
    for i, (p, n, v, nm, st) in enumerate(rows):
        ids.append(f"{p}/{n}/{v}")
        labels.append(f"{nm} ({v})" if isinstance(nm, str) and nm else str(v))
        parents.append(f"{p}/{n}")
        values.append(mem[i])
        colors.append(cpu[i])
        custom.append([_fmt(mem[i]), _pct(cpu[i]), str(st)])
    fig = go.Figure(
        go.Treemap(
            ids=ids,
            labels=labels,
            parents=parents,
            values=values,
            branchvalues="remainder",
            marker=dict(
                colors=colors,
                colorscale="Viridis",
                cmin=0,
                cmax=1,
                colorbar=dict(title="CPU", tickformat=".0%"),
            ),
            customdata=custom,
            hovertemplate="%{label}<br>memory %{customdata[0]}<br>CPU %{customdata[1]}"
            "<br>%{customdata[2]}<extra></extra>",
            texttemplate="%{label}<br>%{customdata[0]}",
        )
    )
    fig.update_layout(margin=dict(l=10, r=10, t=60, b=10))
    return _layout(fig, title, 520)


def _fraction_series(metrics: pd.DataFrame, kind: str) -> pd.DataFrame:
    """(profile, target, time, value = used/total) for node memory or storage."""
    m = metrics[metrics["kind"].astype("string") == kind]
    names = set(m["metric"].astype("string").unique())
    pair = next((p for p in _USED_TOTAL[kind] if p[0] in names and p[1] in names), None)
    if pair is None:
        return pd.DataFrame(columns=["profile", "target", "time", "value"])
    m = m[m["metric"].astype("string").isin(pair)]
    w = _by_metric(m, ["profile", "target", "time"])
    total = w[pair[1]].astype("float64")
    w["value"] = w[pair[0]].astype("float64") / total.where(total > 0)
    return (
        w[["profile", "target", "time", "value"]]
        .dropna()
        .sort_values(["profile", "target", "time"])
    )


def metrics_history(
    metrics: pd.DataFrame,
    forecast: pd.DataFrame | None = None,
    *,
    kind: str = "storage",
    metric: str | None = None,
    threshold: float | None = None,
    title: str | None = None,
) -> go.Figure:
    """Metrics over time, one line per target, with the forecast band ahead.

    Without ``metric``, plots the used fraction of node memory (``kind="node"``) or storage
    pools (``kind="storage"``), which is what :func:`capacity.forecast` fits; for each growing
    or flat target of ``forecast`` it adds the median trend (dashed) and the confidence band
    out to the horizon the history covers, and a line at ``threshold`` (default: the
    forecast's). With ``metric`` (e.g. ``"cpu"``, ``"netin"``) it plots that raw value.

    A storage line is named like its pool everywhere else (:func:`capacity.pool_name`:
    ``prod/ceph-vm`` for a shared pool, from the forecast's ``pool``; ``prod/pve1/local``).
    Where samples are missing (a node was down) the line breaks instead of bridging the gap.
    """
    _require(metrics, "metrics", ["profile", "kind", "target", "time", "metric", "value"])
    if kind not in ("node", "storage", "guest"):
        raise InvalidInputError(f"kind must be node, storage or guest, got {kind!r}")
    if metric is None and kind == "guest":
        raise InvalidInputError("guest history needs a metric name, e.g. metric='cpu'")
    if metric is None:
        data = _fraction_series(metrics, kind)
        what = "memory used" if kind == "node" else "storage used"
    else:
        data = metrics[
            (metrics["kind"].astype("string") == kind)
            & (metrics["metric"].astype("string") == metric)
        ]
        data = (
            data[["profile", "target", "time", "value"]]
            .dropna()
            .sort_values(["profile", "target", "time"])
        )
        what = metric
    many = data["profile"].nunique() > 1
    is_bytes = metric is not None and metric in (
        "mem",
        "maxmem",
        "memused",
        "memtotal",
        "used",
        "total",
        "disk",
        "maxdisk",
        "rootused",
    )
    traces: list[go.Scatter] = []
    fc_rows: dict[tuple[str, str], Any] = {}
    if forecast is not None:
        fc = forecast[forecast["kind"].astype("string") == kind]
        fc_rows = {(str(r.profile), str(r.target)): r for r in fc.itertuples(index=False)}
    for i, ((p, t), grp) in enumerate(data.groupby(["profile", "target"], sort=True)):
        name = _series_name(p, t, kind, many, fc_rows.get((str(p), str(t))))
        color = _COLORWAY[i % len(_COLORWAY)]
        y = _num(grp["value"])
        hover = (
            [_fmt(v) for v in y]
            if is_bytes
            else (
                [_pct(v) for v in y]
                if metric in (None, "cpu")
                else [f"{v:,.1f}" if v is not None else "-" for v in y]
            )
        )
        x, y, hover = _break_gaps(list(grp["time"]), y, hover)
        traces.append(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                connectgaps=False,
                name=name,
                legendgroup=name,
                line=dict(color=color, width=2),
                customdata=hover,
                hovertemplate=f"{name}<br>%{{x}}<br>{what}: %{{customdata}}<extra></extra>",
            )
        )
        if metric is None and (str(p), str(t)) in fc_rows:
            traces.extend(_band(fc_rows[(str(p), str(t))], grp, name, color))
    # one Figure(data=...) instead of add_trace per line: plotly re-validates on every add
    fig = go.Figure(data=traces)
    if metric is None or metric == "cpu":
        fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    if metric is None:
        th = threshold
        if th is None and forecast is not None and len(forecast):
            th = float(forecast["threshold"].iloc[0])
        if th is not None:
            fig.add_hline(
                y=th,
                line_dash="dot",
                line_color=COLORS["threshold"],
                annotation_text=f"threshold {th * 100:.0f} %",
                annotation_position="top left",
            )
    if is_bytes:
        _bytes_axis(fig, _num(data["value"]))
    default = {"node": "Node memory", "storage": "Storage pools", "guest": "Guests"}[kind]
    fig = _layout(fig, title or f"{default}: {what} and forecast", 460)
    # one legend entry per target: a column on the right scales to many pools
    fig.update_layout(
        legend=dict(orientation="v", x=1.01, xanchor="left", y=1, yanchor="top"), margin=dict(t=60)
    )
    return fig


def _series_name(profile: Any, target: Any, kind: str, many: bool, fc_row: Any) -> str:
    """A storage series is named as its pool is everywhere (capacity.pool_name; the
    forecast knows whether it is shared); a node or guest series by its target."""
    if kind != "storage":
        return f"{profile}/{target}" if many else str(target)
    pool = getattr(fc_row, "pool", None)
    if isinstance(pool, str) and pool:
        return pool
    node, _, name = str(target).rpartition("/")
    return pool_name(profile, name, node or None)


def _break_gaps(
    x: list[Any], y: list[float | None], hover: list[str]
) -> tuple[list[Any], list[float | None], list[str]]:
    """Insert a null point where samples are missing, so the line breaks instead of
    bridging the gap (a node that was down has no RRD rows for that time).

    A gap is a step more than 1.5 times the series' usual (median) step."""
    if len(x) < 3:
        return x, y, hover
    times = pd.DatetimeIndex(x)
    steps = pd.to_timedelta(np.diff(times.asi8), unit="ns")
    usual = pd.Timedelta(float(np.median(steps.asi8)), unit="ns")
    xs: list[Any] = [x[0]]
    ys: list[float | None] = [y[0]]
    hs: list[str] = [hover[0]]
    for i in range(1, len(x)):
        if steps[i - 1] > usual * 1.5:
            xs.append((times[i - 1] + steps[i - 1] / 2).floor("s"))
            ys.append(None)
            hs.append("")
        xs.append(x[i])
        ys.append(y[i])
        hs.append(hover[i])
    return xs, ys, hs


def _band(r: Any, history: pd.DataFrame, name: str, color: str) -> list[go.Scatter]:
    """The trend (dashed) and its confidence band from a forecast row, over the horizon the
    history covers (at least a week)."""
    if r.status not in ("growing", "not growing") or pd.isna(r.current):
        return []
    start = pd.Timestamp(r.last_time)
    span_days = max(7.0, (start - pd.Timestamp(history["time"].min())).total_seconds() / 86400)
    days = np.linspace(0, span_days, 8)
    # whole seconds: plotly drops nanoseconds with a warning
    times = [(start + pd.Timedelta(days=float(d))).floor("s") for d in days]
    cur = float(r.current)
    lo = np.clip(cur + float(r.slope_low) * days, 0, None)
    hi = np.clip(cur + float(r.slope_high) * days, 0, None)
    mid = np.clip(cur + float(r.slope_per_day) * days, 0, None)
    eta = "" if pd.isna(r.days_until) else f", {float(r.days_until):.0f} days to threshold"
    return [
        go.Scatter(
            x=times + times[::-1],
            y=list(hi) + list(lo[::-1]),
            fill="toself",
            mode="lines",
            line=dict(width=0, color=color),
            fillcolor=color,
            opacity=0.18,
            hoverinfo="skip",
            name=f"{name} range",
            legendgroup=name,
            showlegend=False,
        ),
        go.Scatter(
            x=times,
            y=list(mid),
            mode="lines",
            line=dict(color=color, dash="dash", width=1.5),
            name=f"{name} trend",
            legendgroup=name,
            showlegend=False,
            customdata=[_pct(v) for v in mid],
            hovertemplate=f"{name} trend<br>%{{x}}<br>%{{customdata}} ({r.status}{eta})"
            "<extra></extra>",
        ),
    ]


def overcommit(node_usage: pd.DataFrame, *, title: str = "Overcommit per node") -> go.Figure:
    """Allocated / physical per node, for running guests and for all guests.

    Left: vCPUs per core (``cpu_overcommit_running``, ``cpu_overcommit_all``); right: memory
    (``mem_overcommit_running``, ``mem_overcommit_all``). The dotted line is 1.0 (as much
    allocated as exists). Input: :func:`capacity.node_usage`.
    """
    _require(
        node_usage,
        "node usage",
        [
            "profile",
            "node",
            "cpu_overcommit_running",
            "cpu_overcommit_all",
            "mem_overcommit_running",
            "mem_overcommit_all",
        ],
    )
    x = _labels(node_usage)
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.1,
        subplot_titles=("vCPUs per core", "Memory allocated / physical"),
    )
    for col_i, prefix in ((1, "cpu"), (2, "mem")):
        for which, color in (("running", COLORS["allocated"]), ("all", COLORS["all"])):
            y = _num(node_usage[f"{prefix}_overcommit_{which}"])
            txt = [
                (f"{v:.2f}" if prefix == "cpu" else _pct(v)) if v is not None else "-" for v in y
            ]
            fig.add_trace(
                go.Bar(
                    x=x,
                    y=y,
                    name=f"{which} guests",
                    legendgroup=which,
                    marker_color=color,
                    showlegend=col_i == 1,
                    customdata=txt,
                    hovertemplate=f"%{{x}}<br>{which} guests: %{{customdata}}<extra></extra>",
                ),
                row=1,
                col=col_i,
            )
        fig.add_hline(y=1.0, line_dash="dot", line_color=COLORS["threshold"], row=1, col=col_i)
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_layout(barmode="group")
    return _layout(fig, title, 400)


def headroom(headroom: pd.DataFrame, *, title: str = "Failure headroom (N+1)") -> go.Figure:
    """If a node fails: its running guests' memory and vCPUs vs room on the other nodes.

    Input: :func:`capacity.headroom`. Bars per node: ``mem_needed`` against
    ``mem_free_elsewhere`` (left) and ``vcpus_needed`` against ``vcpu_capacity_elsewhere``
    (right); a node whose guests do not fit is drawn in the alert colour and the weakest
    link of each cluster is starred.
    """
    _require(
        headroom,
        "headroom",
        [
            "profile",
            "node",
            "mem_needed",
            "mem_free_elsewhere",
            "vcpus_needed",
            "vcpu_capacity_elsewhere",
            "fits",
            "weakest",
        ],
    )
    x = [
        lbl + (" ★" if bool(w) else "")
        for lbl, w in zip(_labels(headroom), headroom["weakest"], strict=True)
    ]
    fits = [None if pd.isna(f) else bool(f) for f in headroom["fits"]]
    need_color = [COLORS["bad"] if f is False else COLORS["allocated"] for f in fits]
    state = [
        "does not fit" if f is False else "fits" if f else "offline: not evaluated" for f in fits
    ]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=("Memory", "vCPUs"))
    need, room = _num(headroom["mem_needed"]), _num(headroom["mem_free_elsewhere"])
    fig.add_trace(
        go.Bar(
            x=x,
            y=need,
            name="needed by its running guests",
            marker_color=need_color,
            legendgroup="need",
            customdata=[[_fmt(v), s] for v, s in zip(need, state, strict=True)],
            hovertemplate="if %{x} fails<br>its guests need %{customdata[0]} (%{customdata[1]})"
            "<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=x,
            y=room,
            name="room on the other nodes",
            marker_color=COLORS["free"],
            legendgroup="room",
            customdata=[_fmt(v) for v in room],
            hovertemplate="if %{x} fails<br>free on the others: %{customdata}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    vneed, vroom = _num(headroom["vcpus_needed"]), _num(headroom["vcpu_capacity_elsewhere"])
    fig.add_trace(
        go.Bar(
            x=x,
            y=vneed,
            name="vCPUs needed",
            marker_color=need_color,
            legendgroup="need",
            showlegend=False,
            hovertemplate="if %{x} fails<br>%{y} vCPUs to restart<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Bar(
            x=x,
            y=vroom,
            name="vCPU room",
            marker_color=COLORS["free"],
            legendgroup="room",
            showlegend=False,
            hovertemplate="if %{x} fails<br>room for %{y:.0f} vCPUs<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_layout(barmode="group")
    _bytes_axis(fig, need + room, row=1, col=1)
    return _layout(fig, title, 400)


# --------------------------------------------------------------------------------------------
# planning charts (frames of pvekit.planning)

_HORIZON_DAYS = 3650.0  # ten years: anything later reads as "not soon" on the time axis


def _days_text(status: str, days: float | None) -> str:
    if status == "above threshold":
        return "now"
    if status != "growing" or days is None:
        return status
    if days > _HORIZON_DAYS:
        return "> 10 years"
    return f"{days:.0f} days" if days >= 1 else "< 1 day"


def time_remaining(
    frame: pd.DataFrame, *, title: str = "Time remaining", horizon: float = _HORIZON_DAYS
) -> go.Figure:
    """Days until each cluster's resources reach their threshold, one bar per resource.

    Input: :func:`pvekit.planning.time_remaining`, rows in its order (per cluster, the
    binding resource first, marked ★). ``x`` is ``days_until`` on a log axis from one day to
    ``horizon`` (later dates are drawn at the horizon); a resource that is ``not growing``
    (or lacks data) has no date and is drawn as a grey bar at the horizon labelled so, one
    already ``above threshold`` as a red bar labelled "now". The error bar spans
    ``days_low``..``days_high`` (the trend's confidence range).
    """
    _require(frame, "time_remaining", ["profile", "resource", "status", "days_until", "binding"])
    many = frame["profile"].nunique() > 1
    labels = [
        (f"{p} · {r}" if many else str(r)) + (" ★" if bool(b) else "")
        for p, r, b in zip(frame["profile"], frame["resource"], frame["binding"], strict=True)
    ]
    days = _num(frame["days_until"])
    low = _num(frame["days_low"]) if "days_low" in frame else [None] * len(frame)
    high = _num(frame["days_high"]) if "days_high" in frame else [None] * len(frame)
    status = [str(s) for s in frame["status"]]
    x: list[float] = []
    colors: list[str] = []
    err_plus: list[float] = []
    err_minus: list[float] = []
    for d, lo, hi, s in zip(days, low, high, status, strict=True):
        if s == "above threshold":
            value, color = 1.0, COLORS["bad"]
        elif s == "growing" and d is not None:
            value = min(max(d, 1.0), horizon)
            color = COLORS["bad"] if d < 30 else COLORS["allocated"] if d < 90 else COLORS["good"]
        else:
            value, color = horizon, COLORS["capacity"]
        x.append(value)
        colors.append(color)
        ok = s == "growing" and d is not None and d <= horizon
        err_plus.append(max(0.0, min(hi, horizon) - value) if ok and hi is not None else 0.0)
        err_minus.append(max(0.0, value - max(lo, 1.0)) if ok and lo is not None else 0.0)
    text = [_days_text(s, d) for s, d in zip(status, days, strict=True)]
    current = _num(frame["current"]) if "current" in frame else [None] * len(frame)
    threshold = _num(frame["threshold"]) if "threshold" in frame else [None] * len(frame)
    fig = go.Figure(
        go.Bar(
            x=x,
            y=labels,
            orientation="h",
            marker_color=colors,
            marker_pattern_shape=["/" if c == COLORS["capacity"] else "" for c in colors],
            text=text,
            textposition="auto",
            error_x=dict(
                type="data",
                symmetric=False,
                array=err_plus,
                arrayminus=err_minus,
                color="rgba(128,128,128,0.8)",
                thickness=1,
            ),
            customdata=[
                [t, _pct(c), _pct(th), s]
                for t, c, th, s in zip(text, current, threshold, status, strict=True)
            ],
            hovertemplate="%{y}: %{customdata[0]}<br>now %{customdata[1]} of capacity, "
            "threshold %{customdata[2]}<br>%{customdata[3]}<extra></extra>",
            name="time remaining",
            showlegend=False,
        )
    )
    ticks = [t for t in (1, 7, 30, 90, 365, 1825, 3650) if t <= horizon]
    fig.update_xaxes(
        type="log",
        range=[0, math.log10(horizon) * 1.02],
        tickvals=ticks,
        ticktext=[
            {1: "1 d", 7: "1 w", 30: "1 m", 90: "3 m", 365: "1 y", 1825: "5 y"}.get(t, "10 y")
            for t in ticks
        ],
        title_text="days until the threshold",
    )
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, max(260, 90 + 26 * len(frame)))


def capacity_remaining(frame: pd.DataFrame, *, title: str = "Capacity remaining") -> go.Figure:
    """How many more guests of a reference size fit, per cluster: at all, and keeping N+1.

    Input: the ``summary`` of :func:`pvekit.planning.what_if` / :func:`max_count`. Two bars
    per cluster and shape (``max_count``, ``max_count_n_plus_1``); the hover says what stops
    the next one (``stopped_by`` on ``stopped_node``).
    """
    _require(
        frame,
        "capacity_remaining",
        ["profile", "shape", "max_count", "max_count_n_plus_1", "stopped_by", "stopped_node"],
    )
    shapes = frame["shape"].nunique() > 1
    x = [
        f"{p} · {s}" if shapes else str(p)
        for p, s in zip(frame["profile"], frame["shape"], strict=True)
    ]
    why = [
        f"next one stopped by {b} on {n}" if isinstance(b, str) and b else ""
        for b, n in zip(frame["stopped_by"], frame["stopped_node"], strict=True)
    ]
    fig = go.Figure()
    for col, name, color in (
        ("max_count", "fit now", COLORS["used"]),
        ("max_count_n_plus_1", "fit keeping N+1 headroom", COLORS["good"]),
    ):
        y = _num(frame[col])
        fig.add_trace(
            go.Bar(
                x=x,
                y=y,
                name=name,
                marker_color=color,
                text=[None if v is None else f"{v:.0f}" for v in y],
                textposition="outside",
                customdata=why,
                hovertemplate="%{x}: %{y:.0f} more (" + name + ")<br>%{customdata}<extra></extra>",
            )
        )
    label = ", ".join(dict.fromkeys(str(s) for s in frame["shape"]))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text=f"guests of {label}", rangemode="tozero")
    return _layout(fig, title, 360)


def maintenance(frame: pd.DataFrame, *, title: str = "Maintenance readiness") -> go.Figure:
    """Per node: can it be emptied now? Stacked bars of its guests that would move, that stay
    without blocking (templates, stopped guests allowed to stay) and that block it.

    Input: the ``maintenance`` frame of the report's planning section (one
    :func:`pvekit.planning.evacuate` per node: ``moves``, ``staying``, ``blocking``,
    ``can_evacuate``, ``reason``). A node that cannot be emptied is labelled ✗.
    """
    _require(
        frame,
        "maintenance",
        ["profile", "node", "moves", "staying", "blocking", "can_evacuate", "reason"],
    )
    x = [
        f"{lbl} {'✓' if bool(ok) else '✗'}"
        for lbl, ok in zip(_labels(frame), frame["can_evacuate"], strict=True)
    ]
    reason = [str(r) if isinstance(r, str) and r else "" for r in frame["reason"]]
    fig = go.Figure()
    for col, name, color in (
        ("moves", "would move", COLORS["good"]),
        ("staying", "stay (not blocking)", COLORS["capacity"]),
        ("blocking", "block the evacuation", COLORS["bad"]),
    ):
        fig.add_trace(
            go.Bar(
                x=x,
                y=_num(frame[col]),
                name=name,
                marker_color=color,
                customdata=reason,
                hovertemplate="%{x}: %{y:.0f} guest(s) " + name + "<br>%{customdata}"
                "<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="guests", rangemode="tozero")
    return _layout(fig, title, 360)


def reclaimable(totals: pd.DataFrame, *, title: str = "Reclaimable capacity") -> go.Figure:
    """What could be given back, by kind: disk and memory (left, bytes) and vCPUs (right).

    Input: per-kind totals (columns ``profile``, ``kind``, ``items``, ``bytes``, ``memory``,
    ``vcpus``), such as the report's ``reclaimable_totals``; labels read ``profile · kind``
    when there are several clusters. Missing sizes (snapshots: Proxmox does not report them)
    are drawn as 0; the hover gives the item count.
    """
    _require(totals, "reclaimable", ["profile", "kind", "items", "bytes", "memory", "vcpus"])
    many = totals["profile"].nunique() > 1
    x = [
        f"{p} · {k}" if many else str(k)
        for p, k in zip(totals["profile"], totals["kind"], strict=True)
    ]
    items = [int(n) for n in totals["items"]]
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.14, subplot_titles=("Disk and memory", "vCPUs")
    )
    all_bytes: list[float | None] = []
    for col, name, color in (
        ("bytes", "disk", COLORS["used"]),
        ("memory", "memory", COLORS["allocated"]),
    ):
        y = [0.0 if v is None else v for v in _num(totals[col])]
        all_bytes += y
        fig.add_trace(
            go.Bar(
                x=x,
                y=y,
                name=name,
                marker_color=color,
                customdata=[[_fmt(v), n] for v, n in zip(y, items, strict=True)],
                hovertemplate="%{x}: %{customdata[0]} of "
                + name
                + " (%{customdata[1]} item(s))<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Bar(
            x=x,
            y=[0.0 if v is None else v for v in _num(totals["vcpus"])],
            name="vCPUs",
            marker_color=COLORS["all"],
            customdata=items,
            hovertemplate="%{x}: %{y:.0f} vCPUs (%{customdata} item(s))<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_layout(barmode="group")
    _bytes_axis(fig, all_bytes, row=1, col=1)
    return _layout(fig, title, 420)
# allocation over time (history store): its own module

from ._growth_charts import allocation_history  # noqa: E402

__all__ += ["allocation_history"]
