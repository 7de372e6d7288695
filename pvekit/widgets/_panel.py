"""The guest panel: a filterable guest list with guarded, backgrounded actions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .._errors import InvalidInputError, PVEError
from .._tasks import log_percent
from . import _dialogs
from ._actions import ACTIONS, flag, selection_reason, text
from ._common import (
    CSS,
    Permissions,
    Runner,
    Source,
    confirm_row,
    esc,
    guarded,
    log,
    submit_exclusive,
)
from ._rows import (
    _COLUMNS,
    _PROBE_LIMIT,
    ALL,
    Identity,
    Key,
    _Dialog,
    _line,
    _Pending,
    _records,
    _state,
    _tags,
    describe,
    row_label,
)
from ._taskview import TaskView

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .._source import Inventory

__all__ = ["GuestPanel"]


class GuestPanel(w.VBox):
    """A filterable guest list of a Cluster or Group with action buttons and task progress.

    Select one or several guests (filters: profile, node, status, type, tag, text search);
    buttons are enabled only where the action suits every selected guest (type, state, lock)
    and the identity holds the privilege (``GET /access/permissions``); the button's tooltip
    says why one is disabled. Stop and reset, and a snapshot rollback or delete, first ask for
    a confirmation naming each guest with its profile and node; the confirmation is dropped as
    soon as the selection changes. Actions run on background threads: each task shows a
    progress bar and the tail of its log, failures show Proxmox's message, and the list is
    re-read fresh when the tasks end.

    ``read_only=True`` shows the list and its filters only. Drive it from code with
    :meth:`select`, ``panel.buttons[name].click()``, :meth:`confirm` and :meth:`wait_idle`.
    """

    def __init__(
        self,
        cluster_or_group: Inventory,
        read_only: bool = False,
        *,
        rows: int = 16,
        poll: float = 0.5,
        log_lines: int = 6,
        max_tasks: int = 12,
    ) -> None:
        self._src = Source(cluster_or_group)
        self.read_only = bool(read_only)
        self._poll = float(poll)
        self._log_lines = int(log_lines)
        self._max_tasks = int(max_tasks)
        self._runner = Runner("pvekit-panel")
        self._refreshing = threading.Lock()  # held by the manual refresh in flight
        self._lock = threading.RLock()
        self._updating = False
        self._guests: list[dict[str, Any]] = []
        self._columns: list[str] = []  # of the guests frame, so empty selections keep them
        self._by_key: dict[Key, dict[str, Any]] = {}
        self._nodes: list[dict[str, Any]] = []
        self._storage: list[dict[str, Any]] = []
        self._perms: dict[str, Permissions] = {}
        self._busy: set[Key] = set()
        self._qmp: dict[Key, str] = {}  # QMP status of probed running VMs ("" = unknown)
        self._probing: set[Key] = set()
        # (profile, node) -> number of other online nodes; rebuilt after each read
        self._targets: dict[tuple[str, str], int] | None = None
        self._pending: _Pending | None = None
        self._dialog: _Dialog | None = None
        self.task_views: list[TaskView] = []
        self.loaded_at: float | None = None

        style = {"description_width": "initial"}
        self.filters: dict[str, w.Widget] = {
            name: w.Dropdown(
                options=[(f"all {label}", ALL)],
                value=ALL,
                description=label.capitalize() if name == "profile" else "",
                layout=w.Layout(width="auto"),
                style=style,
            )
            for name, label in (
                ("profile", "profiles"),
                ("node", "nodes"),
                ("status", "states"),
                ("type", "types"),
                ("tag", "tags"),
            )
        }
        self.filters["search"] = w.Text(
            placeholder="search name, vmid, tag…",
            continuous_update=True,
            layout=w.Layout(width="200px"),
        )
        for name, widget in self.filters.items():
            widget.add_class(f"pvekit-filter-{name}")
            widget.observe(self._on_filter, names="value")
        self.refresh_button = w.Button(
            description="Refresh", icon="refresh", tooltip="re-read guests, nodes and permissions"
        )
        self.refresh_button.add_class("pvekit-refresh")
        self.refresh_button.on_click(self._on_refresh)

        self.title = w.HTML()
        self.title.add_class("pvekit-panel-title")
        self.header = w.HTML(
            '<div class="pvekit-list-header">'
            + esc(_line([h for h, _ in _COLUMNS])).replace(" ", "&nbsp;")
            + "</div>"
        )
        self.guest_list = w.SelectMultiple(options=[], rows=rows, layout=w.Layout(width="100%"))
        self.guest_list.add_class("pvekit-guest-list")
        self.guest_list.observe(self._on_selection, names="value")
        self.summary = w.HTML()
        self.summary.add_class("pvekit-selection")
        self.message = w.HTML()
        self.message.add_class("pvekit-message")

        self.buttons: dict[str, w.Button] = {}
        self.confirm_text, self.confirm_button, self.cancel_button, self.confirm_box = confirm_row(
            self._on_confirm, self._on_cancel
        )
        self.dialog_box = w.VBox()
        self.dialog_box.add_class("pvekit-dialog-area")
        self.tasks_box = w.VBox()
        self.tasks_box.add_class("pvekit-tasks")

        children: list[w.Widget] = [
            w.HTML(CSS),
            self.title,
            w.HTML(self._src.insecure_banner()),
            w.HBox(
                [*self.filters.values(), self.refresh_button], layout=w.Layout(flex_flow="row wrap")
            ),
            self.header,
            self.guest_list,
            self.summary,
        ]
        if not self.read_only:
            for name, spec in ACTIONS.items():
                button = w.Button(
                    description=spec.label,
                    icon=spec.icon,
                    disabled=True,
                    button_style="danger" if spec.destructive else "",
                    layout=w.Layout(width="auto"),
                )
                button.add_class("pvekit-action")
                button.add_class(f"pvekit-action-{name}")
                button.on_click(self._action_handler(name))
                self.buttons[name] = button
            children += [
                w.HBox(list(self.buttons.values()), layout=w.Layout(flex_flow="row wrap")),
                self.confirm_box,
                self.dialog_box,
            ]
        children += [self.message, self.tasks_box]
        super().__init__(children)
        self.add_class("pvekit-guest-panel")
        if self.read_only:
            self.add_class("pvekit-read-only")
        # First read in the foreground so the panel shows data as soon as it is displayed.
        self._load(fresh=False, permissions=True)

    # ------------------------------------------------------------------ public API -------
    @property
    def frame(self) -> pd.DataFrame:
        """All guests as last read (the ``guests()`` frame)."""
        import pandas as pd

        with self._lock:
            return pd.DataFrame(self._guests, columns=self._columns or None)

    @property
    def visible(self) -> pd.DataFrame:
        """The guests the filters let through, in list order."""
        import pandas as pd

        with self._lock:
            rows = [self._by_key[k] for k in self._visible_keys()]
            return pd.DataFrame(rows, columns=self._columns or None)

    @property
    def selection(self) -> pd.DataFrame:
        """The selected guests."""
        import pandas as pd

        rows = [{c: r.get(c) for c in self._columns} for r in self._selected_rows()]
        return pd.DataFrame(rows, columns=self._columns or None)

    @property
    def permissions(self) -> dict[str, Permissions]:
        """The identity's effective privileges per profile (``GET /access/permissions``)."""
        return dict(self._perms)

    @property
    def busy(self) -> bool:
        """True while a task, a refresh or a dialog read runs in the background."""
        return self._runner.busy

    def select(self, *guests: int | str | tuple[str, int]) -> None:
        """Select guests by VMID (or ``(profile, vmid)`` in a group); replaces the selection.

        Only guests the filters show can be selected: what is acted on is what is seen.
        """
        keys: list[str] = []
        with self._lock:
            visible = self._visible_keys()
            for g in guests:
                if isinstance(g, tuple):
                    profile, vmid = str(g[0]), int(g[1])
                    matches = [k for k in visible if k == (profile, vmid)]
                else:
                    vmid = int(g)
                    matches = [k for k in visible if k[1] == vmid]
                if not matches:
                    raise InvalidInputError(f"guest {g!r} is not in the (filtered) list")
                if len(matches) > 1:
                    raise InvalidInputError(
                        f"VMID {g!r} exists in profiles {[k[0] for k in matches]}; "
                        "pass (profile, vmid)"
                    )
                keys.append(self._value(matches[0]))
        self.guest_list.value = tuple(keys)

    def reason(self, action: str) -> str | None:
        """Why ``action`` is disabled for the current selection (``None`` when enabled)."""
        if action not in ACTIONS:
            raise InvalidInputError(f"unknown action {action!r}; one of {sorted(ACTIONS)}")
        if self.read_only:
            return "the panel is read-only"
        with self._lock:
            return selection_reason(
                action,
                self._selected_rows(),
                self._perms,
                busy=frozenset(self._busy),
                other_online_nodes=self._other_online_nodes(),
            )

    def confirm(self) -> None:
        """Press the confirmation button (same as clicking it)."""
        self.confirm_button.click()

    def refresh(self, *, wait: bool = False, timeout: float = 60.0) -> bool:
        """Re-read guests, nodes, storage and permissions fresh, in the background.

        Returns False (and sends nothing) while a refresh is already in flight.
        """
        if not submit_exclusive(
            self._refreshing, self.refresh_button, self._runner, self._refresh_job, True
        ):
            return False
        if wait:
            self.wait_idle(timeout)
        return True

    def wait_idle(self, timeout: float | None = 60.0) -> bool:
        """Wait until no background work (tasks, refreshes, dialog reads) is left.

        Returns True when idle; False if ``timeout`` seconds passed first.
        """
        return self._runner.wait_idle(timeout)

    def close(self) -> None:
        """Stop the background workers and close the widgets."""
        # Tolerates a half-built object: ipywidgets calls close() from __del__.
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.close(wait=True)  # polling loops see the runner closed and end
        super().close()

    def show_error(self, message: str) -> None:
        """Show an error line in the panel."""
        self.message.value = f'<span class="pvekit-message-error">{esc(message)}</span>'

    def show_info(self, message: str) -> None:
        self.message.value = esc(message)

    # ------------------------------------------------------------------ data -------------
    def _load(self, *, fresh: bool, permissions: bool) -> None:
        """Read the inventory (and the permissions) and redraw; errors go to the panel."""
        errors: list[str] = []
        try:
            guest_frame = self._src.guests(fresh=fresh)
            guests = _records(guest_frame)
        except PVEError as exc:
            self.show_error(f"could not read guests: {exc}")
            return
        try:
            nodes = _records(self._src.nodes(fresh=fresh))
        except PVEError as exc:
            nodes = []
            errors.append(f"nodes: {exc}")
        storage: list[dict[str, Any]] | None = None
        if not self.read_only:
            try:
                storage = _records(self._src.storage(fresh=fresh))
            except PVEError as exc:
                storage = []
                errors.append(f"storage: {exc}")
        perms = self._src.permissions() if permissions and not self.read_only else None
        status = self._src.status()  # a group's per-profile state: no request
        if status is not None:
            for r in status.to_dict("records"):
                if not flag(r.get("connected")) and text(r.get("state")) == "failed":
                    errors.append(
                        f"profile {text(r.get('profile'))} unreachable: {text(r.get('error'))}"
                    )
        with self._lock:
            self._guests = guests
            self._columns = [str(c) for c in getattr(guest_frame, "columns", [])]
            self._by_key = {(text(r.get("profile")), int(r["vmid"])): r for r in guests}
            self._nodes = nodes
            self._targets = None
            self._qmp.clear()
            if storage is not None:
                self._storage = storage
            if perms is not None:
                self._perms = perms
            self.loaded_at = time.time()
            self._render()
        if errors:
            self.show_error("partial data: " + "; ".join(errors))

    def _refresh_job(self, permissions: bool) -> None:
        try:
            self._load(fresh=True, permissions=permissions)
        finally:
            self.refresh_button.disabled = False
            self._refreshing.release()

    # ------------------------------------------------------------------ rendering --------
    @staticmethod
    def _value(key: Key) -> str:
        return f"{key[0]}/{key[1]}"

    def _key_of(self, value: str) -> Key:
        profile, _, vmid = value.rpartition("/")
        return profile, int(vmid)

    def _matches(
        self, row: Mapping[str, Any], filters: Mapping[str, str], words: list[str]
    ) -> bool:
        for name in ("profile", "node", "status", "type"):
            wanted = filters[name]
            if wanted != ALL and text(row.get(name)) != wanted:
                return False
        tags = _tags(row.get("tags"))
        if filters["tag"] != ALL and filters["tag"] not in tags:
            return False
        if words:
            hay = " ".join(
                [text(row.get(c)) for c in ("vmid", "name", "node", "profile", "pool", "status")]
                + tags
            ).lower()
            return all(word in hay for word in words)
        return True

    def _visible_keys(self) -> list[Key]:
        filters = {
            n: str(self.filters[n].value or ALL)
            for n in ("profile", "node", "status", "type", "tag")
        }
        words = str(self.filters["search"].value or "").lower().split()
        keys = [k for k, row in self._by_key.items() if self._matches(row, filters, words)]
        return sorted(keys)

    def _set_options(self, name: str, label: str, values: Iterable[str]) -> None:
        dropdown = self.filters[name]
        current = dropdown.value
        options = [(f"all {label}", ALL)] + [(v, v) for v in sorted(set(values)) if v]
        if list(dropdown.options) != options:
            dropdown.options = options
        dropdown.value = current if current in {v for _, v in options} else ALL

    def _render(self) -> None:
        """Rebuild filter choices and the list, keeping the selection where still visible."""
        with self._lock:
            self._updating = True
            try:
                rows = self._guests
                self._set_options("profile", "profiles", (text(r.get("profile")) for r in rows))
                self._set_options("node", "nodes", (text(r.get("node")) for r in rows))
                self._set_options("status", "states", (text(r.get("status")) for r in rows))
                self._set_options("type", "types", (text(r.get("type")) for r in rows))
                self._set_options("tag", "tags", (t for r in rows for t in _tags(r.get("tags"))))
                keys = self._visible_keys()
                before = set(self.guest_list.value)
                options = [(row_label(self._by_key[k]), self._value(k)) for k in keys]
                if list(self.guest_list.options) != options:
                    self.guest_list.options = options
                kept = tuple(v for _, v in options if v in before)
                if tuple(self.guest_list.value) != kept:
                    self.guest_list.value = kept
                self.title.value = f"<b>Guests</b>: {len(keys)} shown of {len(rows)}" + (
                    " (read-only)" if self.read_only else ""
                )
            finally:
                self._updating = False
            self._selection_changed()

    # ------------------------------------------------------------------ selection --------
    def _selected_rows(self) -> list[dict[str, Any]]:
        with self._lock:
            out = []
            for value in self.guest_list.value:
                key = self._key_of(value)
                row = self._by_key.get(key)
                if row is not None:
                    if self._qmp.get(key):
                        row = {**row, "qmpstatus": self._qmp[key]}
                    out.append(row)
            return out

    def _probe_qmp(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Learn whether selected running VMs are paused (``/cluster/resources`` may only say
        "running"), in the background, then re-evaluate the buttons."""
        if self.read_only or len(rows) > _PROBE_LIMIT:
            return
        keys = [
            (text(r.get("profile")), int(r["vmid"]))
            for r in rows
            if text(r.get("type")) == "qemu" and text(r.get("status")) == "running"
        ]
        keys = [k for k in keys if k not in self._qmp and k not in self._probing]
        if not keys or self._runner.closed:
            return
        self._probing.update(keys)
        self._runner.submit(self._probe_job, keys)

    def _probe_job(self, keys: list[Key]) -> None:
        for key in keys:
            try:
                current = self._src.guest(*key).status()
                qmp = text(current.get("qmpstatus") or current.get("status"))
            except PVEError as exc:
                log.info("status of %s/%s unavailable: %s", key[0], key[1], exc)
                qmp = ""
            with self._lock:
                self._qmp[key] = qmp
                self._probing.discard(key)
        with self._lock:
            self._selection_changed()

    def _identity(self, rows: Sequence[Mapping[str, Any]] | None = None) -> Identity:
        rows = self._selected_rows() if rows is None else rows
        return tuple(
            sorted((text(r.get("profile")), int(r["vmid"]), text(r.get("node"))) for r in rows)
        )

    def _other_online_nodes(self) -> dict[tuple[str, str], int]:
        if self._targets is not None:
            return self._targets
        online: dict[str, set[str]] = {}
        for n in self._nodes:
            if self._node_online(n):
                online.setdefault(text(n.get("profile")), set()).add(text(n.get("node")))
        out: dict[tuple[str, str], int] = {}
        for r in self._guests:
            p, node = text(r.get("profile")), text(r.get("node"))
            out[(p, node)] = len(online.get(p, set()) - {node})
        self._targets = out
        return out

    @staticmethod
    def _node_online(n: Mapping[str, Any]) -> bool:
        if "online" in n and text(n.get("online")):
            return flag(n.get("online"))
        return text(n.get("status")) == "online"

    def _on_filter(self, change: Mapping[str, Any]) -> None:
        if not self._updating:
            self._render()

    def _on_selection(self, change: Mapping[str, Any]) -> None:
        if not self._updating:
            self._selection_changed()

    def _selection_changed(self) -> None:
        """Drop a confirmation or dialog made for another selection; update buttons/summary."""
        with self._lock:
            rows = self._selected_rows()
            identity = self._identity(rows)
            if self._pending is not None and self._pending.identity != identity:
                self._cancel_pending("selection changed: confirmation cancelled")
            if self._dialog is not None and self._dialog.identity != identity:
                self._close_dialog()
            self._probe_qmp(rows)
            if rows:
                names = ", ".join(
                    f"{text(r.get('vmid'))} {text(r.get('name'))} ({_state(r)})" for r in rows[:8]
                )
                more = f" and {len(rows) - 8} more" if len(rows) > 8 else ""
                self.summary.value = f"<b>Selected</b> ({len(rows)}): {esc(names)}{more}"
            else:
                self.summary.value = "<i>Select one or more guests (Ctrl/Shift-click).</i>"
            for name, button in self.buttons.items():
                why = self.reason(name)
                button.disabled = why is not None
                button.tooltip = why or f"{ACTIONS[name].label} the selected guests"

    # ------------------------------------------------------------------ confirmation -----
    def _ask(
        self,
        action: str,
        rows: Sequence[Mapping[str, Any]],
        what: str,
        run: Callable[[], Any],
        scope: str = "panel",
    ) -> None:
        items = "".join(f"<li>{esc(describe(r))}</li>" for r in rows)
        self.confirm_text.value = f"<b>{esc(what)}?</b><ul>{items}</ul>"
        self.confirm_button.description = (
            f"Confirm {ACTIONS[action].label.lower()}" if action in ACTIONS else "Confirm"
        )
        self._pending = _Pending(self._identity(rows), action, run, scope)
        self.confirm_box.layout.display = "flex"

    def _cancel_pending(self, note: str | None = None) -> None:
        self._pending = None
        self.confirm_box.layout.display = "none"
        self.confirm_text.value = ""
        if note:
            self.show_info(note)

    @guarded
    def _on_confirm(self, _button: w.Button) -> None:
        with self._lock:
            pending = self._pending
            if pending is None:
                self.show_error("nothing to confirm")
                return
            if pending.identity != self._identity():
                self._cancel_pending()
                self.show_error("the selection changed; confirmation cancelled")
                return
            # The list may have been re-read since the question: the action must still fit.
            why = self.reason(pending.action) if pending.action in ACTIONS else None
            self._cancel_pending()
            if why is not None:
                self.show_error(f"{ACTIONS[pending.action].label} no longer possible: {why}")
                return
        pending.run()

    @guarded
    def _on_cancel(self, _button: w.Button) -> None:
        self._cancel_pending("cancelled")

    # ------------------------------------------------------------------ actions ----------
    def _action_handler(self, name: str) -> Callable[[w.Button], None]:
        def handler(_button: w.Button) -> None:
            self._on_action(name)

        handler.__name__ = f"on_{name}"
        return handler

    @guarded
    def _on_action(self, name: str) -> None:
        spec = ACTIONS[name]
        with self._lock:
            why = self.reason(name)
            if why is not None:
                # A Python click() reaches here even on a disabled button.
                self.show_error(f"{spec.label}: {why}")
                return
            rows = [dict(r) for r in self._selected_rows()]
            self._cancel_pending()
            self.message.value = ""
            if spec.dialog:
                self._open_dialog(spec.dialog, rows)
            elif spec.destructive:
                self._ask(
                    name,
                    rows,
                    f"Really {spec.verb} {len(rows)} guest(s)",
                    lambda: self._start(name, rows),
                )
            else:
                self._start(name, rows)

    def _start(
        self,
        action: str,
        rows: Sequence[Mapping[str, Any]],
        kwargs: Mapping[str, Any] | None = None,
        *,
        method: str | None = None,
        title: str | None = None,
        after: Callable[[], None] | None = None,
    ) -> list[TaskView]:
        """Start ``action`` on each guest in the background; one TaskView per guest."""
        method = method or action
        jobs: list[tuple[Mapping[str, Any], TaskView]] = []
        with self._lock:
            for row in rows:
                view = TaskView(f"{title or action} · {describe(row)}")
                jobs.append((row, view))
                self._busy.add((text(row.get("profile")), int(row["vmid"])))
            self.task_views = [v for _, v in jobs] + self.task_views
            # Keep running tasks, drop the oldest finished ones beyond max_tasks.
            keep = [v for v in self.task_views if not v.done]
            keep += [v for v in self.task_views if v.done][: max(self._max_tasks - len(keep), 0)]
            self.task_views = [v for v in self.task_views if v in keep]
            self.tasks_box.children = tuple(self.task_views)
            self._selection_changed()
        self._runner.submit(self._run_batch, method, jobs, dict(kwargs or {}), after)
        return [v for _, v in jobs]

    def _run_batch(
        self,
        method: str,
        jobs: list[tuple[Mapping[str, Any], TaskView]],
        kwargs: dict[str, Any],
        after: Callable[[], None] | None,
    ) -> None:
        active: list[tuple[Any, TaskView]] = []
        try:
            for row, view in jobs:
                try:
                    guest = self._src.guest(text(row.get("profile")), int(row["vmid"]))
                    task = getattr(guest, method)(**kwargs)
                except PVEError as exc:
                    view.finish(False, str(exc))
                    log.info("%s failed to start: %s", method, exc)
                    continue
                if task is None or not hasattr(task, "status"):
                    view.finish(True, "done")
                    continue
                view.progress(None, "running", [])
                active.append((task, view))
            while active and not self._runner.closed:
                time.sleep(self._poll)
                still: list[tuple[Any, TaskView]] = []
                for task, view in active:
                    if self._poll_task(task, view):
                        still.append((task, view))
                active = still
        finally:
            with self._lock:
                for row, _ in jobs:
                    self._busy.discard((text(row.get("profile")), int(row["vmid"])))
        if self._runner.closed:
            return
        failed = [v.error for _, v in jobs if v.ok is False and v.error]
        self._load(fresh=True, permissions=False)
        if failed:
            self.show_error(f"{len(failed)} of {len(jobs)} failed: {failed[0]}")
        if after is not None:
            after()

    def _tail(self, task: Any) -> list[str]:
        tail = getattr(task, "log_tail", None)
        lines = tail(self._log_lines) if callable(tail) else task.log()[-self._log_lines :]
        return [text(line.get("t")) if isinstance(line, Mapping) else str(line) for line in lines]

    def _poll_task(self, task: Any, view: TaskView) -> bool:
        """Update ``view`` from the task; True while it still runs."""
        try:
            status = task.status()
            lines = self._tail(task)
        except PVEError as exc:
            view.finish(False, f"lost track of the task: {exc}")
            return False
        if status.running:
            pct = log_percent(lines)
            fraction = None if pct is None else pct / 100.0
            view.progress(fraction, f"running {time.monotonic() - view.started:.0f} s", lines)
            return True
        exitstatus = text(status.exitstatus)
        view.finish(bool(status.ok), exitstatus or ("OK" if status.ok else "failed"), lines)
        return False

    @guarded
    def _on_refresh(self, _button: w.Button) -> None:
        self.refresh()

    # ------------------------------------------------------------------ dialogs ----------
    # (in _dialogs.py)
    def _close_dialog(self) -> None:
        _dialogs.close_dialog(self)

    def _dialog_frame(
        self,
        kind: str,
        rows: Sequence[Mapping[str, Any]],
        title: str,
        body: list[w.Widget],
    ) -> _Dialog:
        return _dialogs.dialog_frame(self, kind, rows, title, body)

    def _open_dialog(self, kind: str, rows: list[dict[str, Any]]) -> None:
        _dialogs.open_dialog(self, kind, rows)

    def migration_targets(self, profile: str, source: str) -> list[tuple[str, str]]:
        """(label, node) of the online nodes of ``profile`` other than ``source``, most free
        memory first; the label shows the free memory."""
        return _dialogs.migration_targets(self, profile, source)

    def _migrate_dialog(self, rows: list[dict[str, Any]]) -> None:
        _dialogs.migrate_dialog(self, rows)

    def backup_storages(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
        """(label, storage) usable for backups of all ``rows``: content ``backup``, enabled,
        active on every node hosting one of them, and ``Datastore.AllocateSpace`` allowed."""
        return _dialogs.backup_storages(self, rows)

    def _backup_dialog(self, rows: list[dict[str, Any]]) -> None:
        _dialogs.backup_dialog(self, rows)

    def _snapshot_dialog(self, row: dict[str, Any]) -> None:
        _dialogs.snapshot_dialog(self, row)
