"""Column names, severities and the small frame helpers every capacity step uses."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pandas as pd

from .._errors import InvalidInputError
from .._format import format_bytes

__all__ = ["FINDING_COLUMNS", "SEVERITIES", "pool_name"]

SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")
FINDING_COLUMNS: tuple[str, ...] = (
    "severity",
    "profile",
    "category",
    "object",
    "message",
    "metric",
)
GROUP_PROFILE = "(all)"

_GIB = 1024**3
_MIB = 1024**2
_DAY = 86400.0


def _require(df: pd.DataFrame, name: str, columns: Iterable[str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidInputError(f"{name} frame lacks column(s) {', '.join(missing)}")


def _f(s: pd.Series | Any) -> pd.Series:
    """Float64 view with NaN for anything missing or non-numeric (Int64 NA, None, strings)."""
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _bool(s: pd.Series) -> pd.Series:
    return s.astype("boolean").fillna(False).astype(bool)


def _div(a: pd.Series | float, b: pd.Series | float) -> Any:
    """a / b with NaN (not inf) where b is 0 or missing."""
    if isinstance(b, pd.Series):
        b = b.where(b != 0)
    elif b == 0 or b is None or (isinstance(b, float) and math.isnan(b)):
        return float("nan")
    return a / b


def _int64(s: pd.Series) -> pd.Series:
    return _f(s).round().astype("Int64")


def _finite(value: Any) -> float | None:
    """``value`` as a float for display; None when it is missing, NaN or not a number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _by_metric(m: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """Long metrics rows to one row per ``index`` key, one column per metric (mean of repeats)."""
    return m.pivot_table(
        index=index, columns="metric", values="value", aggfunc="mean", observed=True
    ).reset_index()


def _fmt_bytes(value: Any) -> str:
    """Human bytes through the seed-compatible ``format_bytes``; "-" when missing."""
    v = _finite(value)
    if v is None:
        return "-"
    # format_bytes knows no negative sizes; a shortfall is shown with a sign
    return ("-" if v < 0 else "") + format_bytes(abs(v))


def _pct(value: Any) -> str:
    v = _finite(value)
    return "-" if v is None else f"{v * 100:.0f} %"


def _guest_flags(guests: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(is_template, is_running) as plain bool Series."""
    template = _bool(guests["template"]) if "template" in guests else pd.Series(False, guests.index)
    running = guests["status"].astype("string").fillna("") == "running"
    return template, running & ~template


def _rows(df: pd.DataFrame) -> Iterator[Any]:
    """Rows as namedtuples; typed loosely because cells are of any type."""
    return iter(df.itertuples(index=False))


def pool_name(profile: Any, storage: Any, node: Any = None, *, shared: bool = False) -> str:
    """The one name of a storage pool in every frame, chart, table and finding.

    A shared pool is one pool whichever node reports it: ``profile/storage`` (``prod/ceph-vm``).
    A node's local pool is ``profile/node/storage`` (``prod/pve1/local-lvm``): ``local`` exists
    on every node and VMIDs, node and pool names repeat across clusters.
    """
    if shared or node is None or (not isinstance(node, str) and pd.isna(node)):
        return f"{profile}/{storage}"
    return f"{profile}/{node}/{storage}"


def _empty(columns: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
