"""The plan panel: pick nodes for maintenance (or a rebalance), review the plan, apply it."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .._errors import InvalidInputError, PVEError
from .._tasks import log_percent
from ._actions import text
from ._common import (
    CSS,
    Permissions,
    Runner,
    Source,
    confirm_row,
    esc,
    guarded,
    submit_exclusive,
)
from ._taskview import TaskView

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .._source import Inventory
    from ..planning import Plan, Policy

__all__ = ["PlanPanel"]

Key = tuple[str, int]  # (profile, vmid)
_MIGRATE_TASKS = ("qmigrate", "vzmigrate")
_CONFIRM_LISTED = 20  # moves named one by one in the confirmation; the rest are counted
_STARTED = re.compile(r" -> (?P<target>\S+) started$")


@dataclass
class _Pending:
    """A confirmation waiting for its button: valid for exactly ``plan`` (the one shown)."""

    plan: Plan


def _rows(frame: Any) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def _move_text(m: Mapping[str, Any]) -> str:
    kind = "container" if text(m.get("type")) == "lxc" else "VM"
    local = ", with local disks" if bool(m.get("with_local_disks")) else ""
    return (
        f"{kind} {m['vmid']} ({text(m.get('name'))}) on {m['profile']}: {m['node']} → "
        f"{m['target']} ({m['mode']}{local})"
    )


class PlanPanel(w.VBox):
    """Plan a maintenance evacuation or a rebalance of a Cluster or Group, review it, apply it.

    Choose **Maintenance** (the nodes to empty) or **Rebalance** (by memory, CPU or both, and
    at most how many moves), press **Plan**: the plan (:mod:`pvekit.planning`) shows its moves,
    the guests it cannot move with the reason, and node usage before and after. **Apply…**
    asks for a confirmation that names every move; the confirmation is bound to the plan on
    screen: changing a choice or planning again drops it, and nothing is sent without it.
    Applying goes through :meth:`pvekit.planning.Plan.apply` (which re-reads the live state and
    refuses a plan the cluster no longer matches, and never sends a move twice); each move
    gets a progress bar fed by its migration task, and the result frame shows what was done,
    what failed and what was not started.

    Apply is enabled only when the identity holds ``VM.Migrate`` on every guest the plan moves
    (``GET /access/permissions``, as :class:`GuestPanel` reads it): an auditor sees plans but
    cannot apply them; ``read_only=True`` builds no Apply button at all.

    Drive it from code: set ``mode.value``, :meth:`select_nodes`, ``by.value``,
    ``plan_button.click()``, ``apply_button.click()``, ``confirm_button.click()``,
    :meth:`wait_idle`; read :attr:`plan`, :attr:`result`, :attr:`task_views`.
    """

    def __init__(
        self,
        cluster_or_group: Inventory,
        read_only: bool = False,
        *,
        policy: Policy | None = None,
        parallel: int = 1,
        poll: float = 0.5,
        timeout: float = 3600.0,
        log_lines: int = 6,
    ) -> None:
        if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
            raise InvalidInputError(f"parallel must be an int >= 1, got {parallel!r}")
        self._src = Source(cluster_or_group)
        self.read_only = bool(read_only)
        self._policy = policy
        self._parallel = parallel
        self._poll = float(poll)
        self._timeout = float(timeout)
        self._log_lines = int(log_lines)
        self._runner = Runner("pvekit-plan")
        self._gate = threading.Lock()  # one plan or apply at a time
        self._lock = threading.RLock()
        self._generation = 0  # bumped by every change of a choice: a late plan is dropped
        self._perms: dict[str, Permissions] = {}
        self._pools: dict[Key, str | None] = {}
        self._nodes: list[dict[str, Any]] = []
        self._pending: _Pending | None = None
        self._applying = False
        self._applied: set[int] = set()  # id() of plans already applied
        self.plan: Plan | None = None
        self.result: pd.DataFrame | None = None
        self.task_views: dict[Key, TaskView] = {}

        style = {"description_width": "initial"}
        self.mode = w.ToggleButtons(
            options=[("Maintenance", "evacuate"), ("Rebalance", "rebalance")],
            value="evacuate",
            tooltips=["empty nodes for maintenance", "even out the load of the nodes"],
        )
        self.mode.add_class("pvekit-plan-mode")
        self.profile = w.Dropdown(options=self._src.profiles, description="Profile", style=style)
        self.profile.add_class("pvekit-plan-profile")
        self.nodes = w.SelectMultiple(options=[], rows=4, description="Nodes", style=style)
        self.nodes.add_class("pvekit-plan-nodes")
        self.by = w.Dropdown(
            options=[("memory", "memory"), ("CPU", "cpu"), ("both", "both")],
            value="memory",
            description="Balance by",
            style=style,
        )
        self.by.add_class("pvekit-plan-by")
        self.max_moves = w.BoundedIntText(
            value=0, min=0, max=100_000, description="Max moves (0: no limit)", style=style
        )
        self.max_moves.add_class("pvekit-plan-max-moves")
        self.plan_button = w.Button(description="Plan", icon="calculator", button_style="info")
        self.plan_button.add_class("pvekit-plan-button")
        self.plan_button.on_click(self._on_plan)
        self.title = w.HTML()
        self.title.add_class("pvekit-panel-title")
        self.plan_view = w.HTML()
        self.plan_view.add_class("pvekit-plan-view")
        self.apply_button = w.Button(
            description="Apply…", icon="play", button_style="danger", disabled=True
        )
        self.apply_button.add_class("pvekit-plan-apply")
        self.apply_button.on_click(self._on_apply)
        self.confirm_text, self.confirm_button, self.cancel_button, self.confirm_box = confirm_row(
            self._on_confirm, self._on_cancel
        )
        self.message = w.HTML()
        self.message.add_class("pvekit-message")
        self.tasks_box = w.VBox()
        self.tasks_box.add_class("pvekit-tasks")
        self.result_view = w.HTML()
        self.result_view.add_class("pvekit-plan-result")

        for control in (self.mode, self.profile, self.nodes, self.by, self.max_moves):
            control.observe(self._on_choice, names="value")
        self.profile.observe(self._on_profile, names="value")
        self.mode.observe(self._on_mode, names="value")
        self._choices = w.VBox([self.profile, self.nodes, self.by, self.max_moves])
        children: list[w.Widget] = [
            w.HTML(CSS),
            self.title,
            w.HTML(self._src.insecure_banner()),
            self.mode,
            self._choices,
            self.plan_button,
            self.plan_view,
        ]
        if not self.read_only:
            children += [self.apply_button, self.confirm_box]
        children += [self.message, self.tasks_box, self.result_view]
        super().__init__(children)
        self.add_class("pvekit-plan-panel")
        if self.read_only:
            self.add_class("pvekit-read-only")
        self._load()
        self._on_mode({"new": self.mode.value})

    # ------------------------------------------------------------------ public API -------
    @property
    def permissions(self) -> dict[str, Permissions]:
        """The identity's effective privileges per profile (``GET /access/permissions``)."""
        return dict(self._perms)

    @property
    def busy(self) -> bool:
        """True while a plan is computed or applied in the background."""
        return self._runner.busy

    def select_nodes(self, *nodes: str, profile: str | None = None) -> None:
        """Choose the nodes to empty (maintenance), in ``profile`` (needed in a group)."""
        if profile is not None:
            if profile not in self._src.profiles:
                raise InvalidInputError(
                    f"profile {profile!r} is not one of {', '.join(self._src.profiles)}"
                )
            self.profile.value = profile
        known = list(self.nodes.options)
        missing = [n for n in nodes if n not in known]
        if missing:
            raise InvalidInputError(
                f"node(s) {', '.join(missing)} not in profile {self.profile.value!r} "
                f"(nodes: {', '.join(known) or 'none'})"
            )
        self.nodes.value = tuple(nodes)

    def apply_reason(self) -> str | None:
        """Why the plan on screen cannot be applied (``None`` when Apply is enabled)."""
        with self._lock:
            return self._apply_reason()

    def confirm(self) -> None:
        """Press the confirmation button (same as clicking it)."""
        self.confirm_button.click()

    def wait_idle(self, timeout: float | None = 120.0) -> bool:
        """Wait until no planning or applying is left; False if ``timeout`` ran out first."""
        return self._runner.wait_idle(timeout)

    def close(self) -> None:
        """Stop the background workers and close the widgets."""
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.close(wait=True)
        super().close()

    def show_error(self, message: str) -> None:
        self.message.value = f'<span class="pvekit-message-error">{esc(message)}</span>'

    def show_info(self, message: str) -> None:
        self.message.value = esc(message)

    # ------------------------------------------------------------------ data -------------
    def _load(self) -> None:
        try:
            nodes = self._src.nodes()
        except PVEError as exc:
            self.show_error(f"could not read nodes: {exc}")
            nodes = None
        perms = self._src.permissions() if not self.read_only else {}
        with self._lock:
            self._nodes = _rows(nodes) if nodes is not None else []
            self._perms = perms
        self._fill_nodes()
        kind = "group" if self._src.is_group else "cluster"
        self.title.value = (
            f"<b>Plan a maintenance or a rebalance</b> · {kind} "
            f"{esc(', '.join(self._src.profiles))}"
        )

    def _fill_nodes(self) -> None:
        profile = self.profile.value
        names = [
            str(r["node"]) for r in self._nodes if text(r.get("profile")) == profile and r["node"]
        ]
        self.nodes.options = names
        self.nodes.value = ()

    # ------------------------------------------------------------------ choices ----------
    def _on_profile(self, _change: Any) -> None:
        self._fill_nodes()

    def _on_mode(self, change: Mapping[str, Any]) -> None:
        evacuate = change["new"] == "evacuate"
        self.nodes.layout.display = None if evacuate else "none"
        self.by.layout.display = "none" if evacuate else None
        self.max_moves.layout.display = "none" if evacuate else None

    def _on_choice(self, _change: Any) -> None:
        # A plan or confirmation belongs to the choices it was made for.
        with self._lock:
            self._generation += 1
            had = self.plan is not None
            self._drop_pending()
            if not self._applying:
                self.plan = None
                if had:
                    self.plan_view.value = '<p class="pvekit-hint">choices changed: plan again</p>'
            self._update_apply()

    # ------------------------------------------------------------------ planning ---------
    @guarded
    def _on_plan(self, _button: w.Button) -> None:
        with self._lock:
            if self._applying:
                raise InvalidInputError("a plan is being applied; wait for it to end")
            mode, profile = str(self.mode.value), str(self.profile.value)
            nodes = tuple(self.nodes.value)
            if mode == "evacuate" and not nodes:
                raise InvalidInputError("choose the node(s) to empty first")
            by, limit = str(self.by.value), int(self.max_moves.value) or None
            args = (self._generation, mode, profile, nodes, by, limit)
            self._drop_pending()
        if not submit_exclusive(self._gate, self.plan_button, self._runner, self._plan_job, *args):
            self.show_info("busy: a plan is being made or applied")
            return
        self.show_info("planning …")

    def _plan_job(
        self,
        generation: int,
        mode: str,
        profile: str,
        nodes: tuple[str, ...],
        by: str,
        max_moves: int | None,
    ) -> None:
        from .. import planning

        try:
            try:
                if mode == "evacuate":
                    plan = planning.evacuate(
                        self._src.obj, list(nodes), profile=profile, policy=self._policy
                    )
                else:
                    plan = planning.rebalance(
                        self._src.obj,
                        by=by,
                        max_moves=max_moves,
                        profile=profile,
                        policy=self._policy,
                    )
                pools = self._read_pools()
            except PVEError as exc:
                self.show_error(f"could not plan: {exc}")
                return
            with self._lock:
                if generation != self._generation:
                    self.show_info("choices changed while planning: plan again")
                    return
                self.plan = plan
                self.result = None
                self._pools = pools
                self.plan_view.value = plan._repr_html_()
                self.result_view.value = ""
                self.show_info(plan.summary())
                self._update_apply()
        finally:
            self.plan_button.disabled = False
            self._gate.release()

    def _read_pools(self) -> dict[Key, str | None]:
        """(profile, vmid) -> resource pool: a pool can grant VM.Migrate too."""
        guests = self._src.guests()
        pools = guests["pool"] if "pool" in guests else [None] * len(guests)
        return {
            (text(p), int(v)): (text(pool) or None)
            for p, v, pool in zip(guests["profile"], guests["vmid"], pools, strict=True)
        }

    # ------------------------------------------------------------------ applying ---------
    def _apply_reason(self) -> str | None:
        if self.read_only:
            return "the panel is read-only"
        if self._applying:
            return "the plan is being applied"
        plan = self.plan
        if plan is None:
            return "make a plan first"
        if id(plan) in self._applied:
            return "this plan was applied: plan again from the new state"
        if not len(plan.moves):
            return "the plan moves nothing"
        missing: list[str] = []
        for profile, vmid in zip(plan.moves["profile"], plan.moves["vmid"], strict=True):
            perms = self._perms.get(str(profile))
            if perms is None or perms.error:
                why = perms.error if perms is not None else "not read"
                return f"permissions of profile {profile} could not be read: {why}"
            pool = self._pools.get((str(profile), int(vmid)))
            if not perms.allows("VM.Migrate", f"/vms/{int(vmid)}", pool=pool):
                missing.append(f"/vms/{int(vmid)}")
        if missing:
            listed = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
            return (
                f"no VM.Migrate privilege on {len(missing)} of the {len(plan.moves)} guests "
                f"this plan moves ({listed})"
            )
        return None

    def _update_apply(self) -> None:
        reason = self._apply_reason()
        self.apply_button.disabled = reason is not None
        self.apply_button.tooltip = reason or "apply this plan (asks for a confirmation)"

    def _drop_pending(self) -> None:
        self._pending = None
        self.confirm_box.layout.display = "none"
        self.confirm_text.value = ""

    @guarded
    def _on_apply(self, _button: w.Button) -> None:
        with self._lock:
            reason = self._apply_reason()
            if reason is not None:
                raise InvalidInputError(f"cannot apply: {reason}")
            plan = self.plan
            assert plan is not None
            moves = _rows(plan.moves)
            listed = "".join(f"<li>{esc(_move_text(m))}</li>" for m in moves[:_CONFIRM_LISTED])
            more = len(moves) - _CONFIRM_LISTED
            extra = f"<li>and {more} more</li>" if more > 0 else ""
            warn = ""
            if plan.kind == "evacuate" and not plan.can_empty:
                warn = (
                    f"<p><b>{esc(', '.join(plan.nodes))} cannot be emptied</b>: the guests "
                    "listed under “Not moved” stay.</p>"
                )
            self.confirm_text.value = (
                f"<b>Apply this plan? {len(moves)} migration(s) will be sent:</b>"
                f"<ul>{listed}{extra}</ul>{warn}"
            )
            self._pending = _Pending(plan)
            self.confirm_box.layout.display = None

    @guarded
    def _on_cancel(self, _button: w.Button) -> None:
        with self._lock:
            self._drop_pending()
        self.show_info("cancelled: nothing was sent")

    @guarded
    def _on_confirm(self, _button: w.Button) -> None:
        with self._lock:
            pending = self._pending
            self._drop_pending()
            if pending is None:
                raise InvalidInputError("nothing to confirm (the confirmation was withdrawn)")
            if pending.plan is not self.plan:
                raise InvalidInputError(
                    "the plan on screen changed since the confirmation was asked; nothing was "
                    "sent: press Apply again"
                )
            reason = self._apply_reason()
            if reason is not None:
                raise InvalidInputError(f"cannot apply: {reason}")
            plan = pending.plan
            if not self._gate.acquire(blocking=False):
                raise InvalidInputError("busy: a plan is being made or applied")
            self._applying = True
            self._applied.add(id(plan))
            self.plan_button.disabled = True
            self._update_apply()
            views: dict[Key, TaskView] = {}
            for m in _rows(plan.moves):
                view = TaskView(f"{m['step']} · {_move_text(m)}")
                view.state.value = "waiting"
                views[(str(m["profile"]), int(m["vmid"]))] = view
            self.task_views = views
            self.tasks_box.children = tuple(views.values())
            self.result_view.value = ""
        try:
            self._runner.submit(self._apply_job, plan)
        except BaseException:
            with self._lock:
                self._applying = False
                self.plan_button.disabled = False
                self._gate.release()
            raise
        self.show_info(f"applying {len(plan.moves)} move(s) …")

    def _apply_job(self, plan: Plan) -> None:
        moves = _rows(plan.moves)
        started_at = time.time()

        def move_of(message: str) -> dict[str, Any] | None:
            for m in moves:
                if message.startswith(f"{m['name']} ({m['vmid']}): "):
                    return m
            return None

        def event(message: str) -> None:
            m = move_of(message)
            if m is None:
                return
            view = self.task_views.get((str(m["profile"]), int(m["vmid"])))
            if view is None or view.done:
                return
            rest = message.split(": ", 1)[1]
            hit = _STARTED.search(message)
            if hit and hit["target"] == str(m["target"]):
                view.started = time.monotonic()
                view.progress(None, "migrating", [])
                self._runner.submit(self._watch, m, view, started_at)
            elif rest == f"on {m['target']}":
                view.finish(True, rest)
            elif rest.startswith("failed: "):
                view.finish(
                    False, rest.removeprefix("failed: ").removesuffix("; stopping the plan")
                )

        try:
            try:
                result = plan.apply(
                    confirm=True,
                    parallel=self._parallel,
                    timeout=self._timeout,
                    poll=self._poll,
                    progress=event,
                )
            except PVEError as exc:
                for view in self.task_views.values():
                    if not view.done:
                        view.finish(False, "not started")
                self.show_error(f"nothing was applied: {exc}")
                return
            self.result = result
            failed = []
            for r in _rows(result):
                shown = self.task_views.get((str(r["profile"]), int(r["vmid"])))
                if r["result"] == "failed":
                    failed.append(f"{r['name']} ({r['vmid']}): {text(r.get('error'))}")
                if shown is None or shown.done:
                    continue
                if r["result"] == "done":
                    shown.finish(True, f"on {r['target']}")
                else:
                    shown.finish(False, text(r.get("error")) or str(r["result"]))
            self.result_view.value = "<h4>Result</h4>" + result.to_html(
                index=False, escape=True, border=0, na_rep="-"
            )
            done = int((result["result"] == "done").sum())
            if failed:
                self.show_error(
                    f"stopped at the first failure: {done} done, {failed[0]}; "
                    f"{int((result['result'] == 'not started').sum())} not started"
                )
            else:
                self.show_info(f"{done} of {len(result)} move(s) done")
        finally:
            try:
                self._load_nodes_fresh()
            finally:
                with self._lock:
                    self._applying = False
                    self.plan_button.disabled = False
                    self._update_apply()
                self._gate.release()

    def _load_nodes_fresh(self) -> None:
        try:
            nodes = self._src.nodes(fresh=True)
        except PVEError:
            return  # the node list only feeds the choices; the next Plan reads it again
        with self._lock:
            self._nodes = _rows(nodes)

    # ------------------------------------------------------------------ task progress ----
    def _watch(self, m: Mapping[str, Any], view: TaskView, since: float) -> None:
        """Follow one move's migration task: find it in the node's task list, then poll it.

        A quick migration may end before its task is found: the search goes on a few rounds
        after the move is reported done, so the view still gets the task's log."""
        cluster = self._src.clients().get(str(m["profile"]))
        if cluster is None:
            return
        task = None
        rounds_after_done = 0
        while task is None and not self._runner.closed and rounds_after_done < 3:
            if view.done:
                rounds_after_done += 1
            try:
                listed = cluster.tasks(since=int(since) - 5, fresh=True)
            except PVEError:
                listed = None
            if listed is not None and len(listed):
                hit = listed[
                    (listed["id"].astype(str) == str(m["vmid"]))
                    & listed["type"].astype(str).isin(_MIGRATE_TASKS)
                    & (listed["node"].astype(str) == str(m["node"]))
                ]
                if len(hit):
                    task = cluster.task(str(hit.iloc[0]["upid"]))
                    break
            time.sleep(self._poll)
        while task is not None and not self._runner.closed:
            if not self._poll_task(task, view):
                return
            time.sleep(self._poll)

    def _poll_task(self, task: Any, view: TaskView) -> bool:
        try:
            status = task.status()
            lines = self._tail(task)
        except PVEError:
            return not view.done  # the apply job reports the outcome; keep trying till then
        if status.running:
            pct = log_percent(lines)
            fraction = None if pct is None else pct / 100.0
            if not view.done:
                view.progress(fraction, f"migrating {time.monotonic() - view.started:.0f} s", lines)
            return True
        view.show_log(lines)
        return False

    def _tail(self, task: Any) -> Sequence[str]:
        tail = getattr(task, "log_tail", None)
        lines = tail(self._log_lines) if callable(tail) else task.log()[-self._log_lines :]
        return [text(line.get("t")) if isinstance(line, Mapping) else str(line) for line in lines]
