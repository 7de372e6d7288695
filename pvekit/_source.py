"""The one interface a :class:`~pvekit.Cluster`, a :class:`~pvekit.Group` and a
:class:`~pvekit.FailoverGroup` all satisfy: what the frame-consuming layers (widgets, the report,
planning, history) may call on "a cluster or a group".

``Inventory`` is the frame reads plus the guest handle and the clusters behind it;
``Members`` adds what only a group of clusters has (a connection status frame, ``map``). Both are
``typing.Protocol`` classes, ``runtime_checkable`` so a caller can refuse anything else at the
door with a clear error instead of failing deep inside on a missing attribute::

    from pvekit._source import Inventory
    if not isinstance(source, Inventory):
        raise InvalidInputError(f"expected a Cluster or Group, got {type(source).__name__}")

Keyword arguments are spelled as :class:`~pvekit.Cluster` spells them; a Group accepts them
through ``**kwargs`` and passes them on, which a structural type checker accepts. ``task()``
is not part of it: a Group needs the profile (node names repeat across clusters), a Cluster
does not take one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ._cluster import Cluster
    from ._guest import Guest

__all__ = ["Inventory", "Members"]


@runtime_checkable
class Inventory(Protocol):
    """A Cluster, a Group or a FailoverGroup, as the layers above the client see it."""

    @property
    def profiles(self) -> list[str]:
        """The profile names whose rows the frames carry (``[profile]`` for a Cluster)."""
        ...

    @property
    def clusters(self) -> Mapping[str, Cluster]:
        """Profile -> its :class:`~pvekit.Cluster` (``{profile: self}`` for a Cluster)."""
        ...

    def nodes(self, *, fresh: bool = False, progress: bool | None = None) -> pd.DataFrame: ...

    def guests(
        self,
        details: bool = False,
        ips: bool = False,
        *,
        fresh: bool = False,
        progress: bool | None = None,
    ) -> pd.DataFrame: ...

    def storage(
        self, unique: bool = False, *, fresh: bool = False, progress: bool | None = None
    ) -> pd.DataFrame: ...

    def tasks(
        self,
        running: bool | None = None,
        since: Any = None,
        limit: int = 500,
        *,
        fresh: bool = False,
        progress: bool | None = None,
    ) -> pd.DataFrame: ...

    def backups(
        self, vmid: int | str | None = None, *, fresh: bool = False, progress: bool | None = None
    ) -> pd.DataFrame: ...

    def snapshots(
        self, vmid: int | str | None = None, *, fresh: bool = False, progress: bool | None = None
    ) -> pd.DataFrame: ...

    def metrics(
        self,
        kind: str,
        targets: Any = None,
        timeframe: str = "day",
        cf: str = "AVERAGE",
        *,
        fresh: bool = False,
        progress: bool | None = None,
    ) -> pd.DataFrame: ...

    def summary(self, *, fresh: bool = False) -> pd.DataFrame: ...

    def ha_rules(self, *, fresh: bool = False) -> pd.DataFrame: ...

    def guest(self, vmid: int | str, profile: str | None = None) -> Guest: ...

    def close(self) -> None: ...


@runtime_checkable
class Members(Inventory, Protocol):
    """An :class:`Inventory` of several profiles (a Group, a FailoverGroup): it also reports
    how each profile answered. A Cluster is not one (``isinstance(cluster, Members)`` is
    False), which is how callers tell "one cluster" from "a group" without duck typing."""

    def status(self) -> pd.DataFrame:
        """One row per profile (``frames.COLUMNS["group_status"]``)."""
        ...

    def map(
        self, fn: Callable[[Cluster], Any], *, profiles: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """``fn`` on each answering cluster (of ``profiles``): profile -> result, or the
        exception it raised (never raised)."""
        ...


if TYPE_CHECKING:  # pragma: no cover
    # The static half of the conformance check (the runtime half is tests/test_source.py):
    # mypy fails here the day one of the three stops satisfying the interface.
    from ._failover import FailoverGroup
    from ._group import Group

    def _conforms(c: Cluster, g: Group, f: FailoverGroup) -> list[Inventory]:
        members: list[Members] = [g, f]
        return [c, *members]
