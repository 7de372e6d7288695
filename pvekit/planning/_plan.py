"""A plan of migrations: what moves where, what cannot, node usage before and after, and
:meth:`Plan.apply`, which carries it out through :meth:`pvekit.Guest.migrate`."""

from __future__ import annotations

import html
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .._errors import (
    InvalidInputError,
    PlanInvalidatedError,
    PVEError,
    TaskError,
    TaskTimeoutError,
)
from .._format import format_bytes
from ._model import Model, Policy, records

__all__ = [
    "APPLY_COLUMNS",
    "MOVE_COLUMNS",
    "UNPLACED_COLUMNS",
    "USAGE_COLUMNS",
    "Plan",
    "usage_frame",
]

MOVE_COLUMNS: dict[str, str] = {
    "step": "int64",
    "profile": "string",
    "vmid": "int64",
    "name": "string",
    "type": "string",
    "status": "string",
    "node": "string",
    "target": "string",
    "mode": "string",  # online | restart | offline
    "with_local_disks": "bool",
    "memory": "int64",  # configured memory of the guest
    "vcpus": "int64",
    "reason": "string",
}
UNPLACED_COLUMNS: dict[str, str] = {
    "profile": "string",
    "vmid": "int64",
    "name": "string",
    "type": "string",
    "status": "string",
    "node": "string",
    "blocking": "bool",  # True: the node cannot be emptied because of it
    "reason": "string",
}
USAGE_COLUMNS: dict[str, str] = {
    "profile": "string",
    "node": "string",
    "online": "bool",
    "guests": "int64",
    "guests_running": "int64",
    "mem_load": "float64",
    "mem_cap": "float64",
    "mem_fraction": "float64",
    "vcpus": "float64",
    "vcpu_cap": "float64",
    "cpu_used": "float64",
    "cpu_fraction": "float64",
    "above_limit": "bool",
}
APPLY_COLUMNS: dict[str, str] = {
    "step": "int64",
    "profile": "string",
    "vmid": "int64",
    "name": "string",
    "node": "string",
    "target": "string",
    "result": "string",  # done | failed | not started
    "upid": "string",
    "error": "string",
    "seconds": "float64",
}


def _typed(rows: list[dict[str, Any]], cols: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(cols))
    for c, t in cols.items():
        if t == "string":
            df[c] = df[c].astype("string")
        elif t == "bool":
            df[c] = df[c].astype(bool)
        elif t in ("int64", "float64"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(t)  # type: ignore[call-overload]
    return df


def usage_frame(model: Model) -> pd.DataFrame:
    """Per node: load and capacity as the policy counts them (columns: USAGE_COLUMNS)."""
    p = model.policy
    rows = []
    for site in model.sites.values():
        counts: dict[str, list[int]] = {n: [0, 0] for n in site.nodes}
        for g in site.guests.values():
            if g.template or g.node not in counts:
                continue
            counts[g.node][0] += 1
            counts[g.node][1] += int(g.running)
        for n in site.nodes.values():
            vcap = p.vcpu_ratio * n.cores
            rows.append(
                {
                    "profile": site.profile,
                    "node": n.name,
                    "online": n.online,
                    "guests": counts[n.name][0],
                    "guests_running": counts[n.name][1],
                    "mem_load": n.mem_load,
                    "mem_cap": n.mem_cap,
                    "mem_fraction": n.mem_load / n.mem_cap if n.mem_cap else math.nan,
                    "vcpus": n.vcpus,
                    "vcpu_cap": vcap,
                    "cpu_used": n.cpu_used,
                    "cpu_fraction": n.cpu_used / n.cores if n.cores else math.nan,
                    "above_limit": bool(
                        n.online and (n.mem_load > n.mem_cap + 1 or n.vcpus > vcap)
                    ),
                }
            )
    return _typed(rows, USAGE_COLUMNS)


@dataclass
class Plan:
    """Migrations proposed by :func:`evacuate` or :func:`rebalance`.

    - ``moves``: one row per migration in the order they are applied (columns
      :data:`MOVE_COLUMNS`: ``mode`` is ``online`` for a running VM, ``restart`` for a running
      container, ``offline`` for a stopped guest; ``memory``/``vcpus`` what moves).
    - ``unplaced``: guests the plan leaves where they are, with the reason (``blocking``: the
      node cannot be emptied because of this guest).
    - ``before`` / ``after``: node usage as the policy counts it (:data:`USAGE_COLUMNS`).
    - ``kind`` (``evacuate`` / ``rebalance``), ``nodes`` (the nodes emptied), ``by``,
      ``score_before`` / ``score_after`` (rebalance: the spread of the load fractions),
      ``can_empty`` (evacuate: every node emptied), ``notes``, ``policy``.

    In a notebook the plan shows itself as a summary and tables. :meth:`apply` carries it out.
    """

    kind: str
    moves: pd.DataFrame
    unplaced: pd.DataFrame
    before: pd.DataFrame
    after: pd.DataFrame
    policy: Policy
    source: Any = field(default=None, repr=False)
    nodes: tuple[str, ...] = ()
    by: str | None = None
    score_before: float = math.nan
    score_after: float = math.nan
    notes: list[str] = field(default_factory=list)
    _sent: set[tuple[str, int]] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def can_empty(self) -> bool:
        """Evacuations: every guest of the emptied nodes has a target (or may stay stopped)."""
        return not bool(self.unplaced["blocking"].any()) if len(self.unplaced) else True

    def summary(self) -> str:
        """One line saying what the plan does."""
        mem = int(self.moves["memory"].sum()) if len(self.moves) else 0
        head = f"{self.kind}: {len(self.moves)} move(s), {format_bytes(mem)} of guest memory"
        if self.kind == "evacuate":
            what = ", ".join(self.nodes)
            state = "can be emptied" if self.can_empty else "cannot be emptied"
            head += f"; {what} {state}"
        if not math.isnan(self.score_before):
            head += f"; spread {self.score_before:.3f} -> {self.score_after:.3f}"
        blocking = int(self.unplaced["blocking"].sum()) if len(self.unplaced) else 0
        if len(self.unplaced):
            head += f"; {len(self.unplaced)} not moved ({blocking} blocking)"
        return head

    def __repr__(self) -> str:
        return f"<Plan {self.summary()}>"

    def _repr_html_(self) -> str:
        def table(df: pd.DataFrame, cols: list[str]) -> str:
            if not len(df):
                return "<p><i>none</i></p>"
            view = df[[c for c in cols if c in df.columns]].copy()
            for c in ("memory", "mem_load", "mem_cap"):
                if c in view:
                    view[c] = [format_bytes(max(0.0, float(v))) for v in view[c]]
            for c in ("mem_fraction", "cpu_fraction"):
                if c in view:
                    view[c] = [f"{v * 100:.0f} %" if pd.notna(v) else "-" for v in view[c]]
            return view.to_html(index=False, escape=True, border=0, na_rep="-")

        ok = self.kind != "evacuate" or self.can_empty
        colour = "#2a9d5c" if ok else "#c0392b"
        usage = self.before.merge(
            self.after[["profile", "node", "mem_fraction", "vcpus", "above_limit"]],
            on=["profile", "node"],
            suffixes=("_before", "_after"),
        )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            "<div class='pvekit-plan'>"
            f"<p style='border-left:4px solid {colour};padding-left:6px'>"
            f"<b>{html.escape(self.summary())}</b></p>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "<h4>Moves</h4>"
            + table(
                self.moves,
                [
                    "step",
                    "profile",
                    "vmid",
                    "name",
                    "type",
                    "node",
                    "target",
                    "mode",
                    "with_local_disks",
                    "memory",
                    "vcpus",
                    "reason",
                ],
            )
            + "<h4>Not moved</h4>"
            + table(
                self.unplaced, ["profile", "vmid", "name", "node", "status", "blocking", "reason"]
            )
            + "<h4>Nodes before / after</h4>"
            + table(
                usage.rename(columns={"mem_fraction_before": "mem_fraction"}),
                [
                    "profile",
                    "node",
                    "mem_fraction",
                    "mem_fraction_after",
                    "vcpus_before",
                    "vcpus_after",
                    "above_limit_before",
                    "above_limit_after",
                ],
            )
            + "</div>"
        )

    # -- applying -------------------------------------------------------------------------

    def check(self, source: Any = None) -> list[str]:
        """What changed since planning that invalidates a move (empty: the plan still holds).

        Re-reads the guests (fresh) and nodes: each guest must still exist, be on the planned
        node in the planned state (running or not), carry no lock, and its target must be
        online.
        """
        src = self._source(source)
        from ._input import _clusters

        problems: list[str] = []
        clusters = _clusters(src)
        for profile, moves in self.moves.groupby("profile", sort=False):
            cluster = clusters.get(str(profile))
            if cluster is None:
                problems.append(f"profile {profile!r} is not part of the source")
                continue
            guests = cluster.guests(fresh=True)
            nodes = cluster.nodes(fresh=True)
            online = set(nodes.loc[nodes["online"].astype(bool), "node"].astype(str))
            live = {int(r["vmid"]): r for r in records(guests)}
            for m in records(moves):
                label = f"{m['name']} ({m['vmid']}) on {profile}"
                r = live.get(int(m["vmid"]))
                if r is None:
                    problems.append(f"{label} no longer exists")
                    continue
                if str(r["node"]) != m["node"]:
                    problems.append(f"{label} is now on {r['node']}, planned from {m['node']}")
                running = str(r["status"]) == "running"
                if running != (m["status"] == "running"):
                    problems.append(f"{label} is now {r['status']}, planned as {m['status']}")
                if isinstance(r.get("lock"), str) and r["lock"]:
                    problems.append(f"{label} is locked ({r['lock']})")
                if m["target"] not in online:
                    problems.append(f"target {m['target']} of {label} is not online")
        return problems

    def _source(self, source: Any) -> Any:
        src = source if source is not None else self.source
        if src is None:
            raise InvalidInputError(
                "this plan was made from frames: pass source= (the Cluster or Group to apply to)"
            )
        return src

    def apply(
        self,
        confirm: bool = False,
        *,
        source: Any = None,
        parallel: int = 1,
        timeout: float | None = 3600.0,
        poll: float = 1.0,
        progress: bool | Callable[[str], None] | None = None,
    ) -> pd.DataFrame:
        """Carry the plan out; return one row per move (columns :data:`APPLY_COLUMNS`).

        Nothing is sent unless ``confirm=True``. First the live state is re-read
        (:meth:`check`): if a move no longer holds, :class:`~pvekit.PlanInvalidatedError` is
        raised and nothing is sent. Then each move is one :meth:`pvekit.Guest.migrate`
        (``online`` for running VMs, restart mode for running containers,
        ``with_local_disks`` where the plan says so) and its task is followed to the end.
        At most ``parallel`` migrations touch any one node at a time, and a move into a node
        waits for the earlier moves out of it. The first failure (the POST refused, the task
        failed or timed out) stops the plan: running migrations are followed to their end,
        later ones are not started. ``result``: ``done``, ``failed`` or ``not started``.

        A move is sent at most once: a POST is never retried, and a plan applied a second
        time refuses the moves it already sent (plan again from the new state instead).
        ``progress``: True for a bar per task, a callable for one line per event.
        """
        if confirm is not True:
            raise InvalidInputError(
                f"nothing sent: this plan has {len(self.moves)} migration(s); review it and "
                "call apply(confirm=True) to carry it out"
            )
        if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
            raise InvalidInputError(f"parallel must be an int >= 1, got {parallel!r}")
        src = self._source(source)
        moves = records(self.moves)
        with self._lock:
            again = [m for m in moves if (str(m["profile"]), int(m["vmid"])) in self._sent]
        if again:
            raise PlanInvalidatedError(
                f"{len(again)} move(s) of this plan were sent already (e.g. "
                f"{again[0]['name']} ({again[0]['vmid']})): plan again from the live state"
            )
        problems = self.check(src) if moves else []
        if problems:
            raise PlanInvalidatedError(
                "the cluster changed since the plan was made; nothing was sent:\n- "
                + "\n- ".join(problems),
                problems=problems,
            )
        say: Callable[[str], None] = progress if callable(progress) else (lambda _msg: None)
        bars = progress is True
        results: dict[int, dict[str, Any]] = {
            i: {
                "step": m["step"],
                "profile": m["profile"],
                "vmid": m["vmid"],
                "name": m["name"],
                "node": m["node"],
                "target": m["target"],
                "result": "not started",
                "upid": None,
                "error": None,
                "seconds": math.nan,
            }
            for i, m in enumerate(moves)
        }
        busy: dict[tuple[str, str], int] = {}
        pending = list(range(len(moves)))
        running: dict[Future[str], int] = {}
        failed = False

        def key(m: dict[str, Any], node: str) -> tuple[str, str]:
            return (str(m["profile"]), node)

        def run(i: int) -> str:
            m = moves[i]
            guest = _guest(src, m)
            started = time.monotonic()
            try:
                task = guest.migrate(
                    m["target"],
                    online=True if m["mode"] == "online" else None,
                    with_local_disks=bool(m["with_local_disks"]),
                )
                results[i]["upid"] = task.upid
                say(f"{m['name']} ({m['vmid']}): {m['node']} -> {m['target']} started")
                task.wait(timeout=timeout, poll=poll, progress=bars)
                if task.type in _HA_REQUESTS:
                    # An HA-managed guest: the task only queued the request; the HA manager
                    # migrates it afterwards, so the move is done when the guest is there.
                    _follow_ha(guest, m, math.inf if timeout is None else started + timeout, poll)
            finally:
                results[i]["seconds"] = time.monotonic() - started
            return task.upid

        workers = max(1, min(len(moves), parallel * max(1, len({m["node"] for m in moves}))))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            while pending or running:
                if not failed:
                    for i in list(pending):
                        m = moves[i]
                        s, t = key(m, m["node"]), key(m, m["target"])
                        if busy.get(s, 0) >= parallel or busy.get(t, 0) >= parallel:
                            continue
                        # room on the target may depend on an earlier move out of it
                        if any(
                            j < i
                            and moves[j]["node"] == m["target"]
                            and moves[j]["profile"] == m["profile"]
                            for j in pending + list(running.values())
                        ):
                            continue
                        pending.remove(i)
                        with self._lock:
                            self._sent.add((str(m["profile"]), int(m["vmid"])))
                        busy[s] = busy.get(s, 0) + 1
                        busy[t] = busy.get(t, 0) + 1
                        running[pool.submit(run, i)] = i
                else:
                    pending.clear()
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    i = running.pop(fut)
                    m = moves[i]
                    busy[key(m, m["node"])] -= 1
                    busy[key(m, m["target"])] -= 1
                    err = fut.exception()
                    if err is None:
                        results[i]["result"] = "done"
                        say(f"{m['name']} ({m['vmid']}): on {m['target']}")
                    else:
                        if not isinstance(err, PVEError):
                            raise err
                        failed = True
                        results[i]["result"] = "failed"
                        results[i]["error"] = str(err)
                        say(f"{m['name']} ({m['vmid']}): failed: {err}; stopping the plan")
        return _typed([results[i] for i in range(len(moves))], APPLY_COLUMNS)


_HA_REQUESTS = frozenset({"hamigrate", "harelocate"})


def _follow_ha(guest: Any, m: dict[str, Any], deadline: float, poll: float) -> None:
    """Wait until the HA manager reports ``m``'s guest started on its target, per
    ``/cluster/ha/status/current`` (its service row leaves state ``migrate``)."""
    sid = f"service:{'vm' if m['type'] == 'qemu' else 'ct'}:{int(m['vmid'])}"
    while True:
        rows = guest.cluster.get("/cluster/ha/status/current", fresh=True)
        row = next((r for r in rows or [] if isinstance(r, dict) and r.get("id") == sid), None)
        if row is None:
            raise TaskError(f"HA migration of {sid}: the HA manager no longer lists it")
        state, node = str(row.get("state", "")), str(row.get("node", ""))
        if state == "error":
            raise TaskError(f"HA migration of {sid} to {m['target']}: the HA service is in error")
        if state not in ("migrate", "relocate"):
            if node == str(m["target"]):
                return
            raise TaskError(f"HA migration of {sid}: the HA manager left it on {node}")
        if time.monotonic() >= deadline:
            raise TaskTimeoutError(
                f"HA migration of {sid} to {m['target']} still running after the timeout"
            )
        time.sleep(poll)


def _guest(source: Any, m: dict[str, Any]) -> Any:
    from .._cluster import Cluster
    from .._guest import Guest

    if isinstance(source, Cluster):
        return Guest(source, int(m["vmid"]), node=str(m["node"]), type=str(m["type"]))
    cluster = source[str(m["profile"])]
    return Guest(cluster, int(m["vmid"]), node=str(m["node"]), type=str(m["type"]))
