"""Names every part of the report shares: timeframes, plotly.js modes, the export error."""

from __future__ import annotations

from collections.abc import Callable

# The export error lives in the one tree (_errors); the report names it as before.
from .._errors import ExportError

__all__ = ["ExportError"]

TIMEFRAMES = ("hour", "day", "week", "month", "year")
# how the page gets plotly.js: embedded (opens with no network), from the plotly CDN, or from a
# plotly.min.js written beside the page (many reports in one folder share one copy)
PLOTLYJS = ("inline", "cdn", "directory")
PLOTLYJS_FILE = "plotly.min.js"
Progress = Callable[[str], None]
