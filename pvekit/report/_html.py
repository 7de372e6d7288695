"""The HTML page: tables, chart texts, findings, the assembly of every section."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import pandas as pd

from ._common import PLOTLYJS_FILE
from ._growth import _growth_parts, _growth_tables
from ._planning_html import _NAV_TEXT, _planning_block, _time_remaining_block
from ._tables import _CHART_TEXT, _chart_div, _metric_cell, _table

if TYPE_CHECKING:  # pragma: no cover
    from ._report import Report


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
        div = _chart_div(name, fig)
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
