"""A handle on one node of a cluster: ``cluster.node("pve1")``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ._api import ApiClient

__all__ = ["Node"]


class Node:
    """One node of a cluster."""

    def __init__(self, cluster: ApiClient, name: str) -> None:
        self.cluster = cluster
        self.name = name

    def __repr__(self) -> str:
        return f"<Node {self.name} profile={getattr(self.cluster, 'profile', '')!r}>"

    def _unused(self) -> Any:  # placeholder until the node reads land
        return None
