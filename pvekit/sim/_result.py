"""Result attributes: keys PVE puts beside ``data`` in the answer envelope."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["WithAttribs"]


@dataclass
class WithAttribs:
    """A handler result plus envelope keys, like ``$rpcenv->set_result_attrib('total', n)``
    in PVE: ``{"data": data, "total": n}``."""

    data: Any
    attribs: dict[str, Any] = field(default_factory=dict)
