"""Planning benchmark: CPU time of ``planning.evacuate``, ``planning.rebalance`` and
``planning.max_count`` (capacity remaining in 2 vCPU / 4 GiB guests, with N+1) on the
simulator's ``large`` scenario (20 nodes, 5,000 guests), and how the cost grows.

    python benchmarks/bench_planning.py            # 20 nodes x 5,000 guests + growth table
    python benchmarks/bench_planning.py --quick    # 10 nodes x 1,000 guests, fewer repeats

The frames (``nodes()``, ``guests(details=True)``, ``storage()``, HA rules) are read once from
the simulator through :meth:`pvekit.planning.PlanningInput.read`; the timings cover planning
alone (pure computation on those frames: building the model, placing, the plan's frames).
Growth is measured on frames scaled from the same read: guests replicated with new VMIDs
(more guests per node) or whole nodes replicated with their guests (more nodes at the same
density). Figures are process CPU time, median of the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from pvekit import planning  # noqa: E402
from pvekit.planning import PlanningInput, Policy  # noqa: E402

# The large scenario runs 5.5-6.5 vCPUs per CPU on every node: under the default policy
# (4 per CPU) no migration target exists at all. Plan as its operators would, at 8.
POLICY = Policy(vcpu_ratio=8.0)
# capacity remaining is counted in guests of the report's default reference size
REFERENCE = planning.guest_spec(cores=2, memory="4G", disk="32G")


def read_large(nodes: int, guests: int) -> PlanningInput:
    import pvekit
    from pvekit.sim import Simulator

    with Simulator("large", nodes=nodes, guests=guests) as sim:
        c = pvekit.connect(**sim["large"].connect_kwargs(identity="root"), cache="memory")
        try:
            inp = PlanningInput.read(c)
        finally:
            c.close()
    inp.source = None
    return inp


def cpu(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return statistics.median(times), out


def more_guests(inp: PlanningInput, factor: float) -> PlanningInput:
    """The same nodes with ``factor`` times the guests (copies get new VMIDs), node memory,
    CPUs and use scaled alike so the plans stay comparable."""
    g = inp.guests
    whole, part = int(factor), factor - int(factor)
    parts = [g.assign(vmid=g["vmid"] + k * 1_000_000) for k in range(whole)]
    if part:
        parts.append(g.head(int(len(g) * part)).assign(vmid=lambda d: d["vmid"] + 9_000_000))
    guests = pd.concat(parts, ignore_index=True)
    scale = max(1.0, factor)
    nodes = inp.nodes.assign(
        mem_total=inp.nodes["mem_total"] * scale,
        mem_used=inp.nodes["mem_used"] * scale,
        cores=(inp.nodes["cores"] * scale).round().astype("int64"),
    )
    return inp.copy(guests=guests, nodes=nodes)


def more_nodes(inp: PlanningInput, factor: int) -> PlanningInput:
    """``factor`` times the nodes, each copy with its own guests (same density)."""
    ns, gs, ss = [], [], []
    for k in range(factor):
        rename = {n: f"{n}-{k}" for n in inp.nodes["node"]}
        ns.append(inp.nodes.assign(node=inp.nodes["node"].map(rename)))
        gs.append(
            inp.guests.assign(
                node=inp.guests["node"].map(rename), vmid=inp.guests["vmid"] + k * 1_000_000
            )
        )
        if inp.storage is not None:
            ss.append(inp.storage.assign(node=inp.storage["node"].replace(rename)))
    return inp.copy(
        nodes=pd.concat(ns, ignore_index=True),
        guests=pd.concat(gs, ignore_index=True),
        storage=pd.concat(ss, ignore_index=True) if ss else None,
    )


def run(inp: PlanningInput, repeats: int) -> dict[str, Any]:
    node = str(inp.nodes["node"].iloc[0])
    t_ev, ev = cpu(lambda: planning.evacuate(inp, node, policy=POLICY), repeats)
    # a tight margin, so the large (already fairly even) cluster gets real work to do
    t_rb, rb = cpu(lambda: planning.rebalance(inp, margin=0.02, policy=POLICY), repeats)
    t_mc, mc = cpu(lambda: planning.max_count(inp, REFERENCE, policy=POLICY), repeats)
    return {
        "nodes": len(inp.nodes),
        "guests": len(inp.guests),
        "evacuate_s": t_ev,
        "evacuate_moves": len(ev.moves),
        "evacuate_unplaced": len(ev.unplaced),
        "rebalance_s": t_rb,
        "rebalance_moves": len(rb.moves),
        "spread": f"{rb.score_before:.3f} -> {rb.score_after:.3f}",
        "max_count_s": t_mc,
        "max_count": int(mc["max_count"].sum()),
        "max_count_n1": int(mc["max_count_n_plus_1"].sum()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    nodes, guests = (10, 1000) if args.quick else (20, 5000)
    repeats = args.repeats or (2 if args.quick else 5)
    t0 = time.perf_counter()
    base = read_large(nodes, guests)
    print(
        f"read {len(base.nodes)} nodes, {len(base.guests)} guests "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    rows = [run(base, repeats)]
    head = rows[0]
    print(
        f"\n{nodes} nodes x {guests} guests: evacuate {head['evacuate_s']:.3f} s CPU "
        f"({head['evacuate_moves']} moves), rebalance {head['rebalance_s']:.3f} s CPU "
        f"({head['rebalance_moves']} moves, spread {head['spread']}), max_count "
        f"{head['max_count_s']:.3f} s CPU ({head['max_count']} guests of 2 vCPU / 4 GiB, "
        f"{head['max_count_n1']} keeping N+1)"
    )
    growth = []
    for f in (0.5, 2.0) if args.quick else (0.25, 0.5, 2.0):
        growth.append(run(more_guests(base, f), max(1, repeats // 2)))
    for k in (2,) if args.quick else (2, 4):
        growth.append(run(more_nodes(base, k), max(1, repeats // 2)))
    table = pd.DataFrame([head, *growth]).sort_values(["nodes", "guests"])
    print("\n" + table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
