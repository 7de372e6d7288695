"""Where a per-guest read's client CPU goes, layer by layer, and what it costs per request.

One cluster of the simulator (HTTPS, pinned self-signed certificate, API token), served by a
child process. The same config reads (``GET /nodes/{n}/qemu/{vmid}/config``, ``fresh=True`` so
each one is sent) run sequentially in this process through:

* pvekit's lean path (the default for per-guest GETs),
* pvekit's requests path (the same client with the lean path switched off, as before),
* proxmoxer, as its documentation shows (``prox.nodes(n).qemu(vmid).config.get()``),

first under a CPU-time clock (no profiler) for the CPU per request, then under ``cProfile``
with a process-CPU timer, its own time per function grouped into layers (requests' session
machinery, urllib3, TLS, http.client, JSON decoding, pvekit's bookkeeping...). The profiler
slows everything down evenly, so its figures are scaled to the unprofiled CPU per request.
Run: ``python benchmarks/bench_layers.py [--requests 1000]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import ClusterInfo, ClusterSpec, SimServer, md_table
from bench_inventory import proxmoxer_client, pvekit_client

LAYERS = (
    "TLS (ssl read/write)",
    "http.client + email header parsing",
    "urllib3 (pool, retries, timeouts, response)",
    "requests (session merge, hooks, cookies, prepare, adapter)",
    "JSON decoding",
    "pvekit transport (DeadlineAdapter: watchdog, chunked read, cap)",
    "pvekit lean pool (_lean.py)",
    "pvekit API bookkeeping (_api.py, _auth.py: path check, retry loop, memo, log)",
    "proxmoxer",
    "other (profiler entry, unattributed)",
)


def _layer(filename: str, func: str) -> str:
    f = filename.replace("\\", "/")
    if "_ssl._SSLSocket" in func or f.endswith("/ssl.py"):
        return LAYERS[0]
    if "json" in f:
        return LAYERS[4]
    if "/http/client.py" in f or "/email/" in f or f.endswith("/socket.py"):
        return LAYERS[1]
    if "/urllib3/" in f:
        return LAYERS[2]
    if "/requests/" in f:
        if func == "json":
            return LAYERS[4]
        return LAYERS[3]
    if "pvekit/_transport.py" in f:
        return LAYERS[5]
    if "pvekit/_lean.py" in f:
        return LAYERS[6]
    if "/pvekit/" in f:
        return LAYERS[7]
    if "/proxmoxer/" in f:
        return LAYERS[8]
    return LAYERS[9]


def _own(filename: str, func: str) -> bool:
    """Whether a function is a layer of its own (else its time goes to its callers)."""
    f = filename.replace("\\", "/")
    if filename == "~":
        return "_ssl._SSLSocket" in func
    if "/site-packages/" in f or "/pvekit/" in f:
        return True
    return any(k in f for k in ("/http/client.py", "/email/", "/ssl.py", "/socket.py", "/json/"))


def _profile(fn: Callable[[], Any]) -> dict[str, float]:
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    fn()
    prof.disable()
    raw: Any = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    memo: dict[Any, dict[str, float]] = {}

    def shares(key: Any, depth: int = 0) -> dict[str, float]:
        # The layers a function's own time belongs to: its own, or (a builtin or plain
        # stdlib helper) its callers', in proportion to the time each caller spent in it.
        if key in memo:
            return memo[key]
        filename, _line, func = key
        if _own(filename, func) or depth > 8 or key not in raw:
            result = {_layer(filename if filename != "~" else func, func): 1.0}
        else:
            callers = raw[key][4]
            total = sum(v[3] for v in callers.values()) or 0.0
            result = {}
            if not total:
                result = {LAYERS[-1]: 1.0}
            for caller, v in callers.items():
                for layer, w in shares(caller, depth + 1).items():
                    result[layer] = result.get(layer, 0.0) + w * (v[3] / total if total else 0)
        memo[key] = result
        return result

    out: dict[str, float] = dict.fromkeys(LAYERS, 0.0)
    for key, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        for layer, w in shares(key).items():
            out[layer] += tottime * w
    return out


def _paths(info: ClusterInfo, count: int) -> list[tuple[str, str, int]]:
    probe = pvekit_client(info)
    try:
        rows = probe.resources()
    finally:
        probe.close()
    guests = [
        (str(r["node"]), str(r["type"]), int(r["vmid"]))
        for r in rows
        if r.get("type") in ("qemu", "lxc")
    ]
    return (guests * (count // max(1, len(guests)) + 1))[:count]


def contenders(info: ClusterInfo) -> dict[str, tuple[Callable[[str, str, int], Any], Any]]:
    """name -> (read one config, the client to close)."""
    lean = pvekit_client(info)
    legacy = pvekit_client(info)
    legacy.api._lean = None  # the requests path, as before the lean path (the pool is the client's)
    prox = proxmoxer_client(info)

    def pv(client: Any) -> Callable[[str, str, int], Any]:
        return lambda n, t, v: client.get(f"/nodes/{n}/{t}/{v}/config", fresh=True)

    def px(n: str, t: str, v: int) -> Any:
        return getattr(prox.nodes(n), t)(v).config.get()

    return {
        "pvekit lean path": (pv(lean), lean),
        "pvekit requests path (before)": (pv(legacy), legacy),
        "proxmoxer": (px, None),
    }


def measure_layers(info: ClusterInfo, count: int) -> dict[str, dict[str, float]]:
    """name -> {"cpu": seconds per request, layer: seconds per request}."""
    paths = _paths(info, count)
    out: dict[str, dict[str, float]] = {}
    for name, (read, client) in contenders(info).items():
        try:
            for p in paths[:20]:
                read(*p)  # connect, warm up
            c0 = time.process_time()
            for p in paths:
                read(*p)
            cpu = (time.process_time() - c0) / len(paths)
            layers = _profile(lambda read=read: [read(*p) for p in paths])  # type: ignore[misc]
            total = sum(layers.values()) or 1.0
            out[name] = {"cpu": cpu, **{k: cpu * v / total for k, v in layers.items()}}
        finally:
            if client is not None:
                client.close()
    return out


def layers_table(result: dict[str, dict[str, float]]) -> str:
    names = list(result)
    rows = []
    for layer in LAYERS:
        if all(result[n][layer] < 1e-6 for n in names):
            continue
        rows.append([layer, *(f"{result[n][layer] * 1e6:.0f}" for n in names)])
    totals = (f"**{result[n]['cpu'] * 1e6:.0f}**" for n in names)
    rows.append(["**total CPU per request**", *totals])
    return md_table(["layer (us of client CPU per config read)", *names], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    args = ap.parse_args(argv)
    with SimServer([ClusterSpec("layers", "large", {"nodes": 3, "guests": 300})]) as server:
        result = measure_layers(server.clusters[0], args.requests)
    print(layers_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
