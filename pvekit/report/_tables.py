"""Table cells, chart divs and chart captions the sections of the page share."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..capacity._common import _finite, _fmt_bytes
from ..capacity._common import _pct as _cap_pct

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go


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
