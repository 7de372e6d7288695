"""Charts of allocation over time (history store); re-exported by :mod:`pvekit.charts`."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._errors import InvalidInputError
from .capacity._common import _fmt_bytes, _require

__all__ = ["allocation_history"]

_ROWS = (
    ("vcpus", "vCPUs allocated", False),
    ("mem_alloc", "Memory allocated", True),
    ("disk_provisioned", "Disk provisioned", True),
)


def allocation_history(
    allocation: pd.DataFrame, *, title: str = "Allocation over time per cluster"
) -> go.Figure:
    """vCPUs, memory and disk allocated at every snapshot, one line per cluster.

    Input: :func:`pvekit.capacity.allocation` (``profile``, ``collected_at``, ``vcpus``,
    ``mem_alloc``, ``disk_provisioned``). ``fig.data[i].y`` are the frame's own numbers.
    """
    from .charts import _COLORWAY, _bytes_axis, _layout

    if not isinstance(allocation, pd.DataFrame):
        raise InvalidInputError(
            f"allocation_history needs capacity.allocation(...), got {type(allocation).__name__}"
        )
    _require(allocation, "allocation", ["profile", "collected_at", *(r[0] for r in _ROWS)])
    fig = make_subplots(
        rows=len(_ROWS),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=[r[1] for r in _ROWS],
    )
    for i, (profile, grp) in enumerate(allocation.groupby("profile", sort=True)):
        grp = grp.sort_values("collected_at")
        color = _COLORWAY[i % len(_COLORWAY)]
        for row, (col, label, is_bytes) in enumerate(_ROWS, start=1):
            values = pd.to_numeric(grp[col], errors="coerce").astype("float64")
            text = [_fmt_bytes(v) if is_bytes else f"{v:.0f}" for v in values]
            fig.add_trace(
                go.Scatter(
                    x=grp["collected_at"],
                    y=values,
                    mode="lines",
                    name=str(profile),
                    legendgroup=str(profile),
                    showlegend=row == 1,
                    line={"color": color},
                    text=text,
                    hovertemplate=f"{profile} %{{x|%Y-%m-%d}}: %{{text}}<extra>{label}</extra>",
                ),
                row=row,
                col=1,
            )
    for row, (col, _label, is_bytes) in enumerate(_ROWS, start=1):
        if is_bytes and len(allocation):
            values = pd.to_numeric(allocation[col], errors="coerce").astype("float64")
            _bytes_axis(fig, list(values), row=row, col=1)
    return _layout(fig, title, height=720)
