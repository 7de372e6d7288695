"""HA placement rules as one frame: PVE 9 ``/cluster/ha/rules`` and PVE 8 ``/cluster/ha/groups``.

Pure: JSON in, DataFrame out (the reads live in :meth:`pvekit.Cluster.ha_rules`). PVE 9
replaced HA groups by rules (``node-affinity``: where resources may or should run;
``resource-affinity``: resources kept together or apart). An 8.x group is the same thing as a
node-affinity rule whose resources are the HA resources naming the group, so both versions end
up in the same columns:

| column | meaning |
|---|---|
| ``profile``, ``rule`` | cluster and rule (or group) name |
| ``type`` | ``node-affinity`` or ``resource-affinity`` |
| ``affinity`` | ``positive`` (together) / ``negative`` (apart); NA for node affinity |
| ``vmids`` | the guests the rule covers (list of int; ``vm:100`` / ``ct:101`` / ``100``) |
| ``nodes`` | node -> priority (dict; higher is preferred, 0 when not given) |
| ``strict`` | node affinity: only these nodes (8.x ``restricted``); else only preferred |
| ``enabled`` | False for a rule with ``disable`` set |
| ``origin`` | ``rule`` (PVE 9) or ``group`` (PVE 8) |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ._format import parse_bool

__all__ = ["HA_RULE_COLUMNS", "ha_rules_frame", "parse_ha_nodes", "parse_sids"]

HA_RULE_COLUMNS: dict[str, str] = {
    "profile": "string",
    "rule": "string",
    "type": "string",
    "affinity": "string",
    "vmids": "object",
    "nodes": "object",
    "strict": "bool",
    "enabled": "bool",
    "origin": "string",
}


def parse_sids(value: Any) -> list[int]:
    """``"vm:100,ct:101,102"`` -> ``[100, 101, 102]``; unreadable entries are skipped."""
    out: list[int] = []
    items = value if isinstance(value, list) else str(value or "").split(",")
    for item in items:
        text = str(item).strip().rsplit(":", 1)[-1]
        if text.isdigit():
            out.append(int(text))
    return out


def parse_ha_nodes(value: Any) -> dict[str, int]:
    """``"pve1:2,pve2"`` -> ``{"pve1": 2, "pve2": 0}`` (Proxmox's node-priority list)."""
    out: dict[str, int] = {}
    for item in str(value or "").split(","):
        name, _, prio = item.strip().partition(":")
        if not name:
            continue
        out[name] = int(prio) if prio.strip().lstrip("-").isdigit() else 0
    return out


def _flag(value: Any) -> bool:
    return parse_bool(value) is True


def ha_rules_frame(
    profile: str,
    rules: Iterable[Mapping[str, Any]] | None = None,
    groups: Iterable[Mapping[str, Any]] | None = None,
    resources: Iterable[Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per rule (PVE 9 ``rules``) or group (PVE 8 ``groups`` + ``resources``)."""
    rows: list[dict[str, Any]] = []
    for r in rules or []:
        if not isinstance(r, Mapping):
            continue
        rtype = str(r.get("type") or "")
        if rtype not in ("node-affinity", "resource-affinity"):
            continue
        rows.append(
            {
                "profile": profile,
                "rule": str(r.get("rule") or ""),
                "type": rtype,
                "affinity": str(r["affinity"]) if r.get("affinity") else pd.NA,
                "vmids": parse_sids(r.get("resources")),
                "nodes": parse_ha_nodes(r.get("nodes")),
                # PVE 9 node affinity is non-strict by default; resource affinity is always
                # enforced by the HA manager.
                "strict": _flag(r.get("strict")) or rtype == "resource-affinity",
                "enabled": not _flag(r.get("disable")),
                "origin": "rule",
            }
        )
    members: dict[str, list[int]] = {}
    for res in resources or []:
        if isinstance(res, Mapping) and res.get("group"):
            members.setdefault(str(res["group"]), []).extend(parse_sids(res.get("sid")))
    for g in groups or []:
        if not isinstance(g, Mapping) or not g.get("group"):
            continue
        name = str(g["group"])
        rows.append(
            {
                "profile": profile,
                "rule": name,
                "type": "node-affinity",
                "affinity": pd.NA,
                "vmids": members.get(name, []),
                "nodes": parse_ha_nodes(g.get("nodes")),
                "strict": _flag(g.get("restricted")),
                "enabled": True,
                "origin": "group",
            }
        )
    df = pd.DataFrame(rows, columns=list(HA_RULE_COLUMNS))
    for c, t in HA_RULE_COLUMNS.items():
        if t != "object":
            df[c] = df[c].astype(t)  # type: ignore[call-overload]  # dtype names from a table
    return df
