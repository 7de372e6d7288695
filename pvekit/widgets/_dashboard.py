"""The capacity dashboard: live plotly FigureWidgets, connection status, refresh control."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .._errors import InvalidInputError, PVEError
from ._actions import flag, text
from ._common import CSS, Runner, Source, esc, guarded, submit_exclusive

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import plotly.graph_objects as go

    from .._source import Inventory

__all__ = ["Dashboard"]

# seconds offered by the auto-refresh dropdown (0 = off)
_INTERVALS = (0, 10, 30, 60, 300)


def _chart_builders() -> dict[str, Callable[[dict[str, pd.DataFrame]], go.Figure]]:
    from .. import capacity, charts

    return {
        "overview": lambda f: charts.overview(
            capacity.cluster_usage(f["nodes"], f["guests"], f["storage"])
        ),
        "nodes": lambda f: charts.node_utilisation(
            capacity.node_usage(f["nodes"], f["guests"], f["storage"])
        ),
        "storage": lambda f: charts.storage_pools(capacity.storage_pools(f["storage"])),
        "headroom": lambda f: charts.headroom(capacity.headroom(f["nodes"], f["guests"])),
        "guests": lambda f: charts.guests_treemap(f["guests"]),
    }


CHARTS = ("overview", "nodes", "storage", "headroom", "guests")


def _interval_label(seconds: float) -> str:
    if not seconds:
        return "off"
    return f"every {seconds:g} s" if seconds < 60 else f"every {seconds / 60:g} min"


class Dashboard(w.VBox):
    """Capacity charts of a Cluster or Group as live plotly FigureWidgets.

    Shows the connection status of every profile, a refresh button and an auto-refresh
    interval (``refresh_interval`` seconds, or chosen in the dropdown). Refreshes run in the
    background and never stack: while one is in flight, the button is disabled and timer ticks
    are skipped (counted in :attr:`skipped`). Figures are updated in place, so a displayed
    dashboard changes without re-running the cell. Call :meth:`close` to stop the timer.
    """

    def __init__(
        self,
        cluster_or_group: Inventory,
        refresh_interval: float | None = None,
        *,
        charts: tuple[str, ...] = CHARTS,
    ) -> None:
        unknown = [c for c in charts if c not in CHARTS]
        if unknown:
            raise InvalidInputError(f"unknown chart(s) {unknown}; choose from {list(CHARTS)}")
        if refresh_interval is not None and refresh_interval <= 0:
            raise InvalidInputError(
                f"refresh_interval must be a positive number of seconds, got {refresh_interval!r}"
            )
        import plotly.graph_objects as go

        self._src = Source(cluster_or_group)
        self._runner = Runner("pvekit-dashboard", max_workers=1)
        self._gate = threading.Lock()  # held by the refresh in flight
        self._interval = float(refresh_interval or 0)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._timer: threading.Thread | None = None
        self._chart_names = tuple(charts)
        self.refreshes = 0  # completed refreshes
        self.skipped = 0  # timer ticks dropped because a refresh was still in flight
        self.frames: dict[str, pd.DataFrame] = {}
        self.last_error: str | None = None

        self.figures: dict[str, go.FigureWidget] = {}
        for name in self._chart_names:
            fig = go.FigureWidget()
            fig.add_class(f"pvekit-chart-{name}")
            self.figures[name] = fig
        self.status = w.HTML(self._src.insecure_banner())
        self.status.add_class("pvekit-connection-status")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.add_class("pvekit-dashboard-refresh")
        self.refresh_button.on_click(self._on_refresh)
        options = sorted({*_INTERVALS, self._interval})
        self.interval = w.Dropdown(
            options=[(_interval_label(s), s) for s in options],
            value=self._interval,
            description="Auto-refresh",
            style={"description_width": "initial"},
        )
        self.interval.add_class("pvekit-auto-refresh")
        self.interval.observe(self._on_interval, names="value")
        self.updated = w.HTML()
        self.updated.add_class("pvekit-updated")
        self.message = w.HTML()
        self.message.add_class("pvekit-message")
        super().__init__(
            [
                w.HTML(CSS),
                w.HBox([self.refresh_button, self.interval, self.updated]),
                self.status,
                self.message,
                *self.figures.values(),
            ]
        )
        self.add_class("pvekit-dashboard")
        # First refresh in the foreground, so the dashboard has content when displayed.
        self._gate.acquire()
        self._refresh_job()
        if self._interval:
            self._start_timer()

    # ------------------------------------------------------------------ public API -------
    @property
    def refresh_interval(self) -> float | None:
        """Seconds between automatic refreshes, or ``None`` when off."""
        return self._interval or None

    @refresh_interval.setter
    def refresh_interval(self, seconds: float | None) -> None:
        value = float(seconds or 0)
        if value < 0:
            raise InvalidInputError(f"refresh_interval must be positive, got {seconds!r}")
        values = {v for _, v in self.interval.options}
        if value not in values:
            self.interval.options = [(_interval_label(s), s) for s in sorted(values | {value})]
        self.interval.value = value

    @property
    def in_flight(self) -> bool:
        """True while a refresh runs."""
        return self._gate.locked()

    def refresh(self, *, wait: bool = False, timeout: float = 60.0) -> bool:
        """Start a refresh in the background; False (and nothing sent) if one is in flight."""
        if not submit_exclusive(self._gate, self.refresh_button, self._runner, self._refresh_job):
            return False
        if wait:
            self.wait_idle(timeout)
        return True

    def wait_idle(self, timeout: float | None = 60.0) -> bool:
        """Wait until no refresh is in flight; False if ``timeout`` passed first."""
        return self._runner.wait_idle(timeout)

    def close(self) -> None:
        """Stop auto-refresh and the worker, and close the widgets."""
        # Tolerates a half-built object: ipywidgets calls close() from __del__.
        stopped = getattr(self, "_stopped", None)
        if stopped is not None:
            stopped.set()
            self._wake.set()
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.close(wait=True)
        for fig in getattr(self, "figures", {}).values():
            fig.close()
        super().close()

    def show_error(self, message: str) -> None:
        self.message.value = f'<span class="pvekit-message-error">{esc(message)}</span>'

    # ------------------------------------------------------------------ refresh ----------
    def _read(self) -> tuple[dict[str, pd.DataFrame], list[dict[Any, Any]], list[str]]:
        errors: list[str] = []
        frames: dict[str, pd.DataFrame] = {}
        first = self.refreshes == 0
        for name in ("nodes", "guests", "storage"):
            frames[name] = getattr(self._src, name)(fresh=not first)
        status_frame = self._src.status()
        if status_frame is not None:
            rows: list[dict[Any, Any]] = [dict(r) for r in status_frame.to_dict("records")]
        else:
            client: Any = self._src.obj
            rows = [
                {
                    "profile": str(client.profile),
                    "host": str(getattr(client, "host", "")),
                    "connected": True,
                    "state": "ok",
                    "error": "",
                    "checked_at": datetime.now(UTC),
                }
            ]
        return frames, rows, errors

    def _refresh_job(self) -> None:
        """One refresh; the caller holds the gate, released here whatever happens."""
        try:
            try:
                frames, status_rows, _ = self._read()
            except PVEError as exc:
                self.last_error = str(exc)
                self.show_error(f"refresh failed: {exc}")
                self._show_status_failure(str(exc))
                return
            self.frames = frames
            self._show_status(status_rows)
            builders = _chart_builders()
            problems: list[str] = []
            for name, widget in self.figures.items():
                try:
                    fig = builders[name](frames)
                except PVEError as exc:
                    problems.append(f"{name}: {exc}")
                    continue
                self._update_figure(widget, fig)
            self.refreshes += 1
            self.last_error = "; ".join(problems) or None
            self.message.value = (
                f'<span class="pvekit-message-error">{esc(self.last_error)}</span>'
                if self.last_error
                else ""
            )
            self.updated.value = f"updated {datetime.now().strftime('%H:%M:%S')}"
        finally:
            self.refresh_button.disabled = False
            self._gate.release()

    @staticmethod
    def _update_figure(widget: go.FigureWidget, fig: go.Figure) -> None:
        """Replace traces and layout of a displayed FigureWidget in place."""
        widget.data = ()
        widget.layout = fig.layout
        if fig.data:
            widget.add_traces(list(fig.data))
        # The edits above reach views that exist now. A front-end that builds its view later
        # (a Voila page, a reloaded notebook, a FigureWidget inside a box, which never gets
        # plotly's own _repr_mimebundle_ sync) reads these two synced traits instead.
        widget._widget_data = copy.deepcopy(widget._data)
        widget._widget_layout = copy.deepcopy(widget._layout_obj._props)

    def _show_status(self, rows: Sequence[Mapping[Any, Any]]) -> None:
        cells = []
        for r in rows:
            ok = flag(r.get("connected"))
            dot = "🟢" if ok else "🔴"
            when = r.get("checked_at")
            when_text = when.strftime("%H:%M:%S") if isinstance(when, datetime) else text(when)
            cells.append(
                f'<tr class="pvekit-status-{"ok" if ok else "down"}"><td>{dot}</td>'
                f"<td><b>{esc(text(r.get('profile')))}</b></td><td>{esc(text(r.get('host')))}</td>"
                f"<td>{esc(text(r.get('state')))}</td><td>{esc(text(r.get('error')))}</td>"
                f"<td>{esc(when_text)}</td></tr>"
            )
        self.status.value = (
            self._src.insecure_banner()
            + '<table class="pvekit-status-table"><tr><th></th><th>profile</th><th>host</th>'
            "<th>state</th><th>error</th><th>checked</th></tr>" + "".join(cells) + "</table>"
        )

    def _show_status_failure(self, error: str) -> None:
        client: Any = self._src.obj
        if self._src.is_group:
            return
        self._show_status(
            [
                {
                    "profile": str(client.profile),
                    "host": str(getattr(client, "host", "")),
                    "connected": False,
                    "state": "error",
                    "error": error,
                    "checked_at": datetime.now(UTC),
                }
            ]
        )

    # ------------------------------------------------------------------ timer ------------
    @guarded
    def _on_refresh(self, _button: w.Button) -> None:
        self.refresh()

    def _on_interval(self, change: Mapping[str, Any]) -> None:
        self._interval = float(change["new"] or 0)
        if self._interval and self._timer is None:
            self._start_timer()
        self._wake.set()  # the timer re-reads the interval

    def _start_timer(self) -> None:
        self._timer = threading.Thread(
            target=self._timer_loop, name="pvekit-dashboard-timer", daemon=True
        )
        self._timer.start()

    def _timer_loop(self) -> None:
        while not self._stopped.is_set():
            interval = self._interval
            woke = self._wake.wait(interval if interval else None)
            if self._stopped.is_set():
                return
            if woke:
                self._wake.clear()
                continue
            self.tick()

    def tick(self) -> bool:
        """One timer tick: start a refresh unless one is in flight (then count it skipped)."""
        started = self.refresh()
        if not started:
            self.skipped += 1
        return started
