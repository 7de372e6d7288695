"""The JSON kind of a value, as the comparisons of simulated and real bodies name it."""

from __future__ import annotations

from typing import Any


def json_kind(value: Any) -> str:
    """``null``, ``bool``, ``number`` (int and float alike: JSON has one), else the type name."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__
