"""What planners read: a bundle of frames, from a Cluster, a Group or built by hand."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._errors import InvalidInputError, PVEError
from .._ha import ha_rules_frame
from ._model import records

if TYPE_CHECKING:  # pragma: no cover
    from .._cluster import Cluster
    from .._source import Inventory


__all__ = ["PlanningInput", "as_input", "local_resources"]

# Devices that tie a VM to its host. A resource mapping (mapping=...) exists on several
# nodes and migrates; a raw host device does not.
_LOCAL_DEVICE = re.compile(r"^(hostpci|usb)\d+$")
_UNUSED = re.compile(r"^unused\d+$")


def local_resources(config: Mapping[str, Any] | None) -> list[str]:
    """Config keys of raw host devices (``hostpci0``, ``usb1``) that block a migration."""
    out = []
    for key, value in (config or {}).items():
        if _LOCAL_DEVICE.match(str(key)):
            text = str(value)
            if "mapping=" in text or text.startswith("spice"):
                continue
            out.append(str(key))
    return sorted(out)


def unused_volumes(config: Mapping[str, Any] | None) -> list[str]:
    """Volume ids of the detached ``unusedN`` disks in a guest config."""
    return [
        str(v).split(",", 1)[0]
        for k, v in sorted((config or {}).items())
        if _UNUSED.match(str(k)) and v
    ]


@dataclass
class PlanningInput:
    """The frames planners work on. Edit them to ask "what if" (e.g. more memory on a node).

    - ``nodes``: ``nodes()`` (plus ``cpu_model`` when read from a cluster).
    - ``guests``: ``guests(details=True)`` (plus ``local_resources`` and ``unused``, lists
      from each config). Without ``disks`` a guest's disks are unknown and it is not moved.
    - ``storage``: ``storage()``; ``ha_rules``: :meth:`pvekit.Cluster.ha_rules`.
    - optional, for :func:`reclaimable` and :func:`time_remaining`: ``metrics`` (node, storage
      and guest ``rrddata`` rows), ``backups``, ``snapshots``, ``tasks``, ``volumes``
      (storage content with ``volid``, ``size``, ``vmid``).

    ``source`` is the Cluster or Group the frames came from (``None`` when built by hand); a
    :class:`Plan` applies through it.
    """

    nodes: pd.DataFrame
    guests: pd.DataFrame
    storage: pd.DataFrame | None = None
    ha_rules: pd.DataFrame | None = None
    metrics: pd.DataFrame | None = None
    backups: pd.DataFrame | None = None
    snapshots: pd.DataFrame | None = None
    tasks: pd.DataFrame | None = None
    volumes: pd.DataFrame | None = None
    source: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("nodes", "guests"):
            if not isinstance(getattr(self, name), pd.DataFrame):
                raise InvalidInputError(
                    f"PlanningInput.{name} must be a DataFrame, got "
                    f"{type(getattr(self, name)).__name__}"
                )
        for name in ("storage", "ha_rules", "metrics", "backups", "snapshots", "tasks", "volumes"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, pd.DataFrame):
                raise InvalidInputError(
                    f"PlanningInput.{name} must be a DataFrame or None, got {type(value).__name__}"
                )

    def copy(self, **changes: Any) -> PlanningInput:
        """A copy with deep-copied frames (and ``changes`` applied), safe to edit."""
        fields = {
            k: (v.copy() if isinstance(v, pd.DataFrame) else v) for k, v in self.__dict__.items()
        }
        fields.update(changes)
        return replace(self, **fields)

    def with_node(self, node: str, profile: str | None = None, **values: Any) -> PlanningInput:
        """A copy where node ``node`` has other values, e.g. ``mem_total=512 * 2**30``.

        Sizes may be given as Proxmox sizes (``mem_total="512G"``).
        """
        from .._parse import parse_size

        out = self.copy()
        mask = out.nodes["node"].astype("string") == node
        if profile is not None:
            mask &= out.nodes["profile"].astype("string") == profile
        if not mask.any():
            raise InvalidInputError(f"no node {node!r} in the nodes frame")
        for col, value in values.items():
            if col not in out.nodes.columns:
                raise InvalidInputError(f"nodes frame has no column {col!r}")
            if col.startswith("mem_") and isinstance(value, str):
                value = parse_size(value)
            out.nodes.loc[mask, col] = value
        return out

    @classmethod
    def of(cls, source: Any, **read: Any) -> PlanningInput:
        """``source`` as a PlanningInput: itself, built from a dict of its frames, or read
        from a Cluster/Group (``read`` goes to :meth:`read`, e.g. ``history=True``). What every
        planner does with its ``source``."""
        return as_input(source, **read)

    @classmethod
    def read(
        cls,
        source: Inventory,
        *,
        metrics: str | None = None,
        guest_metrics: bool = False,
        history: bool = False,
        fresh: bool = False,
    ) -> PlanningInput:
        """Read the frames from a Cluster or Group.

        Always: ``nodes()``, ``guests(details=True)`` (+ the HA rules and each node's CPU
        model, both from cached reads when warm), ``storage()``. ``metrics="month"`` adds node
        and storage ``rrddata`` of that timeframe (and guest ``rrddata`` with
        ``guest_metrics=True``); ``history=True`` adds backups, snapshots, tasks and storage
        content (what :func:`reclaimable` looks at).
        """
        clusters = _clusters(source)
        nodes = source.nodes(fresh=fresh)
        guests = source.guests(details=True, fresh=fresh)
        storage = source.storage(fresh=fresh)
        rules: list[pd.DataFrame] = []
        unread: list[str] = []
        models: dict[tuple[str, str], str | None] = {}
        extras: dict[tuple[str, int], tuple[list[str], list[str]]] = {}
        need_models = "cpu_model" not in nodes.columns
        for profile, cluster in clusters.items():
            try:
                rules.append(cluster.ha_rules(fresh=fresh))
            except PVEError:
                unread.append(profile)  # no HA rules readable: plans say they were not checked
            # nodes() carries the CPU model already; older frames (or edited ones) may not
            for r in records(nodes[nodes["profile"] == profile]) if need_models else []:
                if not bool(r.get("online")):
                    continue
                try:
                    st = cluster.get(f"/nodes/{r['node']}/status", fresh=False)
                except PVEError:
                    continue
                info = st.get("cpuinfo") if isinstance(st, Mapping) else None
                models[(profile, str(r["node"]))] = (
                    str(info.get("model")) if isinstance(info, Mapping) else None
                )
            mine = guests[guests["profile"] == profile]
            for r in records(mine[["node", "type", "vmid"]]):
                path = f"/nodes/{r['node']}/{r['type']}/{r['vmid']}/config"
                try:
                    # guests(details=True) just read every config: this is its cached answer
                    config = cluster.get(path)
                except PVEError:
                    continue
                extras[(profile, int(r["vmid"]))] = (
                    local_resources(config),
                    unused_volumes(config),
                )
        nodes = nodes.copy()
        if need_models:
            nodes["cpu_model"] = [
                models.get((str(p), str(n)))
                for p, n in zip(nodes["profile"], nodes["node"], strict=True)
            ]
        guests = guests.copy()
        keys = list(zip(guests["profile"].astype(str), guests["vmid"].astype(int), strict=True))
        guests["local_resources"] = [extras.get(k, ([], []))[0] for k in keys]
        guests["unused"] = [extras.get(k, ([], []))[1] for k in keys]
        ha: pd.DataFrame | None = (
            pd.concat(rules, ignore_index=True) if rules else ha_rules_frame("")
        )
        if unread and not rules:
            ha = None
        out = cls(nodes=nodes, guests=guests, storage=storage, ha_rules=ha, source=source)
        if metrics:
            parts = [
                source.metrics("node", timeframe=metrics),
                source.metrics("storage", timeframe=metrics),
            ]
            if guest_metrics:
                parts.append(source.metrics("guest", timeframe=metrics))
            out.metrics = (
                pd.concat([p for p in parts if len(p)], ignore_index=True)
                if any(len(p) for p in parts)
                else parts[0]
            )
        if history:
            out.backups = source.backups()
            out.snapshots = source.snapshots()
            out.tasks = source.tasks()
            out.volumes = _volumes(clusters, storage)
        return out


def _clusters(source: Any) -> dict[str, Cluster]:
    from .._cluster import Cluster
    from .._group import Group

    if isinstance(source, Group):
        return source.clusters
    if isinstance(source, Cluster):
        return {source.profile: source}
    raise InvalidInputError(
        f"source must be a Cluster, a Group, a PlanningInput or a dict of frames, got "
        f"{type(source).__name__}"
    )


def _volumes(clusters: Mapping[str, Cluster], storage: pd.DataFrame) -> pd.DataFrame:
    """Guest volumes (``images``/``rootdir`` content) of every pool, shared pools once."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for r in records(storage):
        content = r.get("content") or []
        if not ({"images", "rootdir"} & set(content)) or str(r.get("status")) != "available":
            continue
        profile, node, name = str(r["profile"]), str(r["node"]), str(r["storage"])
        shared = bool(r.get("shared")) if not pd.isna(r.get("shared")) else False
        if shared and (profile, name) in seen:
            continue
        seen.add((profile, name))
        try:
            items = clusters[profile].get(f"/nodes/{node}/storage/{name}/content")
        except PVEError:
            continue
        for v in items or []:
            if isinstance(v, Mapping) and v.get("content") in ("images", "rootdir"):
                rows.append(
                    {
                        "profile": profile,
                        "node": None if shared else node,
                        "storage": name,
                        "volid": str(v.get("volid")),
                        "vmid": v.get("vmid"),
                        "size": v.get("size"),
                    }
                )
    cols = ["profile", "node", "storage", "volid", "vmid", "size"]
    return pd.DataFrame(rows, columns=cols)


def as_input(source: Any, **read: Any) -> PlanningInput:
    """``source`` as a :class:`PlanningInput`: passed through, built from a dict of frames, or
    read from a Cluster/Group (``read`` goes to :meth:`PlanningInput.read`)."""
    if isinstance(source, PlanningInput):
        return source
    if isinstance(source, Mapping):
        try:
            return PlanningInput(**dict(source))
        except TypeError as err:
            raise InvalidInputError(f"bad frames for planning: {err}") from None
    return PlanningInput.read(_clusters_checked(source), **read)


def _clusters_checked(source: Any) -> Any:
    _clusters(source)  # raises a clear error for anything else
    return source
