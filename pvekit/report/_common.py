"""Names every part of the report shares: timeframes, plotly.js modes, the export error."""

from __future__ import annotations

from collections.abc import Callable

from .._errors import PVEError

__all__ = ["ExportError"]

TIMEFRAMES = ("hour", "day", "week", "month", "year")
# how the page gets plotly.js: embedded (opens with no network), from the plotly CDN, or from a
# plotly.min.js written beside the page (many reports in one folder share one copy)
PLOTLYJS = ("inline", "cdn", "directory")
PLOTLYJS_FILE = "plotly.min.js"
Progress = Callable[[str], None]


class ExportError(PVEError):
    """A static image export failed (kaleido or Chromium missing or broken)."""
