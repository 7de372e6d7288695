"""Group benchmark: five clusters read as one :class:`pvekit.Group` vs the same clusters one by
one (pvekit, then proxmoxer's documented loop), for the basic and the detailed guest table."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from _harness import ClusterInfo, SimServer, Stats, measure
from bench_inventory import prox_guests, proxmoxer_client, pvekit_client


def _group(infos: list[ClusterInfo]) -> Any:
    from pvekit import Group

    return Group([pvekit_client(i) for i in infos])


def group_vs_sequential(
    server: SimServer, latency: float, repeats: int, *, details: bool
) -> dict[str, Stats]:
    """Stats for ``group``, ``sequential`` (pvekit cluster after cluster) and ``proxmoxer``
    (its loop, cluster after cluster); every repeat starts with empty caches."""
    infos = server.clusters
    server.set_latency(latency)
    kwargs: dict[str, Any] = {"details": details, "progress": False}

    def timed(setup: Callable[[], Any], call: Callable[[Any], Any], close: bool = True) -> Stats:
        st = Stats()
        for _ in range(repeats):
            subject = setup()
            try:
                st.add(measure(partial(call, subject), server))
            finally:
                if close:
                    for c in subject if isinstance(subject, list) else [subject]:
                        c.close()
        return st

    out = {
        "group": timed(lambda: _group(infos), lambda g: g.guests(**kwargs)),
        "sequential": timed(
            lambda: [pvekit_client(i) for i in infos],
            lambda cs: [c.guests(**kwargs) for c in cs],
        ),
        "proxmoxer": timed(
            lambda: [proxmoxer_client(i) for i in infos],
            lambda ps: [prox_guests(p, details=details) for p in ps],
            close=False,
        ),
    }
    return out
