"""Inventory benchmarks: pvekit against proxmoxer used the way its documentation shows.

proxmoxer has no inventory layer: its documented way to list guests is to loop over nodes
(``prox.nodes.get()``), then ask each node for its guests (``prox.nodes(node).qemu.get()``,
``.lxc.get()``) and, for details, each guest for its config
(``prox.nodes(node).qemu(vmid).config.get()``), one request after the other. The loops
below do exactly that and end, like pvekit, with a pandas DataFrame, so both sides deliver
the same thing: a table of guests (with their configs for the detailed table).

Each function takes a running :class:`~benchmarks._harness.SimServer` and returns a
:class:`Case` with pvekit's and proxmoxer's :class:`~benchmarks._harness.Stats`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from _harness import ClusterInfo, SimServer, Stats, measure, peak_memory, repeat

# Configs are read with at most this many requests in flight (pvekit's default pool size).
PVEKIT_WORKERS = 8


@dataclass
class Case:
    """One benchmark case: what was measured and its statistics per contender."""

    name: str
    guests: int
    nodes: int
    latency: float
    pvekit: Stats
    proxmoxer: Stats | None = None
    warm: Stats | None = None
    warm_sqlite: Stats | None = None
    cold_sqlite: Stats | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------ clients


def pvekit_client(
    info: ClusterInfo, cache: bool | str = "memory", workers: int | None = None
) -> Any:
    """A fresh pvekit Cluster (empty cache), connected lazily: no request yet.

    ``workers`` overrides ``Cluster.max_workers`` (the per-cluster enrichment pool)."""
    import pvekit

    client = pvekit.connect(info.profile, cache=cache, check=False, **info.pvekit_kwargs())
    if workers is not None:
        client.max_workers = workers
    return client


def proxmoxer_client(info: ClusterInfo) -> Any:
    """A ProxmoxAPI as its README shows, with the API token and the cluster's CA file."""
    from proxmoxer import ProxmoxAPI

    user, _, name = info.token_name.partition("!")
    return ProxmoxAPI(
        info.host,
        user=user,
        token_name=name,
        token_value=info.token_value,
        verify_ssl=info.ca_file,
        timeout=120,
    )


# ------------------------------------------------------------------------------ proxmoxer loops


def prox_guests(prox: Any, details: bool = False) -> Any:
    """Guest table the proxmoxer way: nodes, then guests per node, then config per guest."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for node in prox.nodes.get():
        name = node["node"]
        if node.get("status") != "online":
            continue
        for kind in ("qemu", "lxc"):
            endpoint = getattr(prox.nodes(name), kind)
            for guest in endpoint.get():
                row = {**guest, "node": name, "type": kind}
                if details:
                    row["config"] = endpoint(guest["vmid"]).config.get()
                rows.append(row)
    return pd.DataFrame(rows)


def prox_nodes(prox: Any) -> Any:
    """Node table the proxmoxer way: ``nodes.get()`` then ``status`` of each online node."""
    import pandas as pd

    rows = []
    for node in prox.nodes.get():
        row = dict(node)
        if node.get("status") == "online":
            row["status_detail"] = prox.nodes(node["node"]).status.get()
        rows.append(row)
    return pd.DataFrame(rows)


def prox_storage(prox: Any) -> Any:
    """Storage table the proxmoxer way: ``storage.get()`` of each online node."""
    import pandas as pd

    rows = []
    for node in prox.nodes.get():
        if node.get("status") != "online":
            continue
        for st in prox.nodes(node["node"]).storage.get():
            rows.append({**st, "node": node["node"]})
    return pd.DataFrame(rows)


def prox_metrics(prox: Any, vmids: set[int], timeframe: str = "day") -> Any:
    """RRD rows of the wanted guests, found by looping over nodes and their guests."""
    import pandas as pd

    frames = []
    for node in prox.nodes.get():
        if node.get("status") != "online":
            continue
        for kind in ("qemu", "lxc"):
            endpoint = getattr(prox.nodes(node["node"]), kind)
            for guest in endpoint.get():
                if int(guest["vmid"]) in vmids:
                    rrd = endpoint(guest["vmid"]).rrddata.get(timeframe=timeframe)
                    df = pd.DataFrame(rrd)
                    df["vmid"] = guest["vmid"]
                    frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ------------------------------------------------------------------------------ cases


def _contest(
    server: SimServer,
    info: ClusterInfo,
    *,
    name: str,
    latency: float,
    repeats: int,
    pvekit_call: Callable[[Any], Any],
    prox_call: Callable[[Any], Any] | None,
    warm: bool = False,
    sqlite: bool = False,
    memory: bool = False,
    prox_repeats: int | None = None,
    workers: int | None = None,
) -> Case:
    """Time ``pvekit_call(cluster)`` on a fresh client per repeat (cold cache), the same on
    the warm client right after (``warm``), and ``prox_call(prox)`` on a fresh ProxmoxAPI."""
    server.set_latency(latency)
    cold = Stats()
    warm_stats = Stats() if warm else None
    for _ in range(repeats):
        client = pvekit_client(info, workers=workers)
        try:
            cold.add(measure(partial(pvekit_call, client), server))
            if warm_stats is not None:
                warm_stats.add(measure(partial(pvekit_call, client), server))
        finally:
            client.close()
    cold_sqlite = warm_sqlite = None
    if sqlite:
        # The on-disk cache: first call fills the SQLite file, the repeat reads from it.
        cold_sqlite, warm_sqlite = Stats(), Stats()
        for _ in range(repeats):
            client = pvekit_client(info, cache=True)
            try:
                client.invalidate()
                cold_sqlite.add(measure(partial(pvekit_call, client), server))
                warm_sqlite.add(measure(partial(pvekit_call, client), server))
            finally:
                client.close()
    prox_stats = None
    if prox_call is not None and prox_repeats != 0:
        prox_stats = repeat(
            lambda: prox_call(proxmoxer_client(info)),
            prox_repeats if prox_repeats is not None else repeats,
            server,
        )
    if memory:
        server.set_latency(0)

        def pv_once() -> None:
            client = pvekit_client(info)
            try:
                pvekit_call(client)
            finally:
                client.close()

        cold.peak_bytes = peak_memory(pv_once)
        if prox_stats is not None and prox_call is not None:
            prox_stats.peak_bytes = peak_memory(lambda: prox_call(proxmoxer_client(info)))
    return Case(
        name=name,
        guests=info.guests,
        nodes=info.nodes,
        latency=latency,
        pvekit=cold,
        proxmoxer=prox_stats,
        warm=warm_stats,
        cold_sqlite=cold_sqlite,
        warm_sqlite=warm_sqlite,
    )


def guests_basic(
    server: SimServer, info: ClusterInfo, latency: float, repeats: int, *, memory: bool = False
) -> Case:
    """``cluster.guests()`` (one ``/cluster/resources``) vs the proxmoxer node/guest loop."""
    return _contest(
        server,
        info,
        name="guests basic",
        latency=latency,
        repeats=repeats,
        pvekit_call=lambda c: c.guests(progress=False),
        prox_call=lambda p: prox_guests(p, details=False),
        warm=True,
        memory=memory,
    )


def guests_detailed(
    server: SimServer,
    info: ClusterInfo,
    latency: float,
    repeats: int,
    *,
    memory: bool = False,
    sqlite: bool = False,
    prox_repeats: int | None = None,
    workers: int | None = None,
) -> Case:
    """``cluster.guests(details=True)`` vs the loop with ``config.get()`` per guest."""
    return _contest(
        server,
        info,
        name="guests detailed",
        latency=latency,
        repeats=repeats,
        pvekit_call=lambda c: c.guests(details=True, progress=False),
        prox_call=lambda p: prox_guests(p, details=True),
        warm=True,
        sqlite=sqlite,
        memory=memory,
        prox_repeats=prox_repeats,
        workers=workers,
    )


def nodes_frame(server: SimServer, info: ClusterInfo, latency: float, repeats: int) -> Case:
    """``cluster.nodes()`` vs ``nodes.get()`` + ``status.get()`` per node."""
    return _contest(
        server,
        info,
        name="nodes",
        latency=latency,
        repeats=repeats,
        pvekit_call=lambda c: c.nodes(progress=False),
        prox_call=prox_nodes,
        warm=True,
    )


def storage_frame(server: SimServer, info: ClusterInfo, latency: float, repeats: int) -> Case:
    """``cluster.storage()`` vs ``storage.get()`` per node."""
    return _contest(
        server,
        info,
        name="storage",
        latency=latency,
        repeats=repeats,
        pvekit_call=lambda c: c.storage(progress=False),
        prox_call=prox_storage,
        warm=True,
    )


def guest_metrics(
    server: SimServer, info: ClusterInfo, latency: float, repeats: int, count: int = 50
) -> Case:
    """``cluster.metrics("guest", targets=<count vmids>)`` vs the loop with ``rrddata``."""
    probe = pvekit_client(info)
    try:
        server.set_latency(0)
        table = probe.guests(progress=False)
        vmids = [int(v) for v in table.loc[~table["template"].fillna(False), "vmid"].head(count)]
    finally:
        probe.close()
    wanted = set(vmids)
    case = _contest(
        server,
        info,
        name=f"metrics {len(vmids)} guests",
        latency=latency,
        repeats=repeats,
        pvekit_call=lambda c: c.metrics("guest", vmids, timeframe="day", progress=False),
        prox_call=lambda p: prox_metrics(p, wanted),
        warm=True,
    )
    case.extra["targets"] = len(vmids)
    return case
