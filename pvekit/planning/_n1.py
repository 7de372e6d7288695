"""N+1 failure headroom of one cluster with extra guests, without rebuilding frames.

:func:`pvekit.capacity.headroom` answers for frames; a capacity count asks the same question
for many counts of new guests on the same cluster. :class:`N1Model` reads the frames once
(the columns ``headroom`` reads through ``capacity.node_usage``) and then answers "does every online
node's failure still fit?" for a list of added guests in plain Python. It follows
``headroom`` step by step (greedy largest-first placement on the survivor with the most free
memory, ties to the first node in frame order; vCPUs within the ratio and the biggest guest
no wider than the widest survivor), so its answer is the one ``headroom(...)["fits"]`` gives
on the frames with those guests added (tests/test_planning_fast.py checks it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from ..capacity._common import _bool, _guest_flags

__all__ = ["N1Model"]


def _nz(v: object) -> float:
    try:
        f = float(v)  # type: ignore[arg-type]  # cells of any type; bad ones count as 0
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if f != f else f


@dataclass
class N1Model:
    """One cluster's failure-headroom inputs: per online node (frame order) its memory total
    and used, cores, running vCPUs, and the memory and vCPUs of its running guests."""

    order: list[str]
    mem_total: dict[str, float]
    mem_used: dict[str, float]
    cores: dict[str, float]
    vcpus_running: dict[str, float]
    guest_mems: dict[str, list[float]]
    guest_vcpus: dict[str, list[float]]
    ratio: float

    @classmethod
    def build(
        cls, nodes: pd.DataFrame, guests: pd.DataFrame, profile: str, *, max_vcpu_ratio: float
    ) -> N1Model:
        """The model of cluster ``profile`` in these frames (``capacity.headroom`` inputs)."""
        nodes = nodes[nodes["profile"].astype(str) == profile]
        if len(guests):
            guests = guests[guests["profile"].astype(str) == profile]
        else:
            cols = ["profile", "vmid", "node", "status", "template", "cores", "mem_total"]
            guests = pd.DataFrame(columns=[*cols, "mem_used"])
        # the columns headroom reads from capacity.node_usage, taken from the frames directly
        # (node_usage computes much more, and costs more than the whole count)
        online = (
            _bool(nodes["online"])
            if "online" in nodes
            else nodes["status"].astype("string").fillna("") == "online"
        )
        up = nodes[online.to_numpy()]
        g = guests.copy()
        g["node"] = g["node"].astype("string")
        _, running = _guest_flags(g)
        g = g[running]
        mem = pd.to_numeric(g["mem_total"], errors="coerce").astype("float64").fillna(0)
        cores = pd.to_numeric(g["cores"], errors="coerce").astype("float64").fillna(0)
        order = [str(n) for n in up["node"].astype("string")]
        guest_mems: dict[str, list[float]] = {n: [] for n in order}
        guest_vcpus: dict[str, list[float]] = {n: [] for n in order}
        for node, m, c in zip(g["node"], mem, cores, strict=True):
            if pd.notna(node) and str(node) in guest_mems:
                guest_mems[str(node)].append(float(m))
                guest_vcpus[str(node)].append(float(c))

        def col(name: str) -> dict[str, float]:
            return {n: _nz(v) for n, v in zip(order, up[name], strict=True)}

        return cls(
            order=order,
            mem_total=col("mem_total"),
            mem_used=col("mem_used"),
            cores=col("cores"),
            vcpus_running={n: sum(guest_vcpus[n]) for n in order},
            guest_mems=guest_mems,
            guest_vcpus=guest_vcpus,
            ratio=float(max_vcpu_ratio),
        )

    def fits(self, added: Iterable[tuple[str, float, float]] = ()) -> bool:
        """Whether every online node's failure fits with ``added`` running guests
        ((node, memory, vCPUs) each) placed on the cluster."""
        add_mem: dict[str, float] = {}
        add_cpu: dict[str, float] = {}
        new_mems: dict[str, list[float]] = {}
        new_cpus: dict[str, list[float]] = {}
        for node, m, c in added:
            # headroom adds the new guests to the node's reported mem_used, and counts them
            # among its running guests (their vCPUs, and their memory if that node fails)
            add_mem[node] = add_mem.get(node, 0.0) + m
            add_cpu[node] = add_cpu.get(node, 0.0) + c
            new_mems.setdefault(node, []).append(m)
            new_cpus.setdefault(node, []).append(c)
        free = {n: self.mem_total[n] - (self.mem_used[n] + add_mem.get(n, 0.0)) for n in self.order}
        vcap = {
            n: self.cores[n] * self.ratio - (self.vcpus_running[n] + add_cpu.get(n, 0.0))
            for n in self.order
        }
        for node in self.order:
            mems = sorted(self.guest_mems[node] + new_mems.get(node, []), reverse=True)
            vcpus = self.guest_vcpus[node] + new_cpus.get(node, [])
            others = [n for n in self.order if n != node]
            left = {n: free[n] for n in others}
            for m in mems:
                target = max(left, key=lambda n: left[n], default=None)
                if target is None or left[target] < m:
                    return False
                left[target] -= m
            vcap_else = sum(vcap[n] for n in others)
            max_cores = max((self.cores[n] for n in others), default=0.0)
            # as headroom: even a node without guests fails when the others are overcommitted
            if sum(vcpus) > vcap_else or (vcpus and max(vcpus) > max_cores):
                return False
        return True
