"""One task in a panel: a progress bar, its state and the tail of its log."""

from __future__ import annotations

import time
from collections.abc import Sequence

import ipywidgets as w

from ._common import esc

__all__ = ["TaskView"]


class TaskView(w.VBox):
    """One task in the panel: what it is, a progress bar, its state and the tail of its log."""

    def __init__(self, title: str) -> None:
        self.title = w.HTML(f"<b>{esc(title)}</b>", layout=w.Layout(width="auto"))
        self.title.add_class("pvekit-task-title")
        self.bar = w.FloatProgress(
            value=0.0, min=0.0, max=1.0, bar_style="info", layout=w.Layout(width="220px")
        )
        self.bar.add_class("pvekit-task-progress")
        self.state = w.HTML("starting")
        self.state.add_class("pvekit-task-state")
        self.tail = w.HTML("")
        self.tail.add_class("pvekit-task-log")
        self.started = time.monotonic()
        self.done = False
        self.ok: bool | None = None
        self.error: str | None = None
        super().__init__([w.HBox([self.bar, self.title, self.state]), self.tail])
        self.add_class("pvekit-task")

    def progress(self, fraction: float | None, state: str, lines: Sequence[str]) -> None:
        if fraction is not None:
            self.bar.value = max(self.bar.value, min(max(fraction, 0.0), 1.0))
        self.state.value = esc(state)
        self.show_log(lines)

    def show_log(self, lines: Sequence[str]) -> None:
        if lines:
            self.tail.value = "<pre>" + esc("\n".join(lines)) + "</pre>"

    def finish(self, ok: bool, message: str, lines: Sequence[str] = ()) -> None:
        self.done = True
        self.ok = ok
        self.bar.value = 1.0
        self.bar.bar_style = "success" if ok else "danger"
        elapsed = time.monotonic() - self.started
        if ok:
            self.state.value = f"{esc(message)} ({elapsed:.1f} s)"
        else:
            self.error = message
            self.state.value = f'<span class="pvekit-task-error">{esc(message)}</span>'
            self.add_class("pvekit-task-failed")
        self.show_log(lines)
