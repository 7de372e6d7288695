"""The ``pvekit report`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._errors import InvalidInputError
from ._build import capacity
from ._common import PLOTLYJS, PLOTLYJS_FILE, TIMEFRAMES
from ._planning import DEFAULT_REFERENCE, parse_reference

__all__ = ["add_arguments", "run"]


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
