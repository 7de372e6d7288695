"""The report object: frames, analysis, figures; HTML and PNG export."""

from __future__ import annotations

import html
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .. import capacity as cap
from .._errors import InvalidInputError
from ..capacity._common import _rows
from ..capacity._findings import _forecast_pool
from ._common import PLOTLYJS, PLOTLYJS_FILE, ExportError
from ._html import _render
from ._planning import PlanningSection
from ._tables import _b, _f1, _f2, _i, _pct

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

__all__ = ["Report", "export_png"]


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
