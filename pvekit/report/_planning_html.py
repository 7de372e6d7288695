"""The planning section's HTML blocks."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._tables import _b, _chart_div, _pct, _table

if TYPE_CHECKING:  # pragma: no cover
    from ._report import Report


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
