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

from ._build import capacity, from_frames
from ._cli import add_arguments, run
from ._common import ExportError
from ._growth import add_growth
from ._planning import (
    DEFAULT_REFERENCE,
    MAINTENANCE_COLUMNS,
    PlanningSection,
    maintenance_readiness,
    parse_reference,
    planning_section,
    reclaimable_totals,
)
from ._report import Report, export_png

__all__ = [
    "DEFAULT_REFERENCE",
    "MAINTENANCE_COLUMNS",
    "ExportError",
    "PlanningSection",
    "Report",
    "add_arguments",
    "add_growth",
    "capacity",
    "export_png",
    "from_frames",
    "maintenance_readiness",
    "parse_reference",
    "planning_section",
    "reclaimable_totals",
    "run",
]
