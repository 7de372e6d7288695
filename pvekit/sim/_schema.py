"""The API schema lives in the neutral :mod:`pvekit._schema` (the client validates writes with
it too, and must not import the simulator); this name stays for the simulator's modules and
older imports."""

from __future__ import annotations

from .._schema import (
    KNOWN_RELEASES,
    Endpoint,
    Schema,
    _raw,
    load_schema,
    nearest_release,
    return_type,
    version_major,
)

__all__ = [
    "KNOWN_RELEASES",
    "Endpoint",
    "Schema",
    "_raw",
    "load_schema",
    "nearest_release",
    "return_type",
    "version_major",
]
