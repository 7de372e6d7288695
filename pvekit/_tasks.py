"""Proxmox VE tasks: follow what an action started, wait for it, learn why it failed.

Every asynchronous Proxmox call (start, migrate, backup, ...) answers with a UPID, the id of
a worker task running on one node. :class:`Task` wraps that UPID: it parses it (node, pid,
start time, type, id, user), reads the task's status and log from the node that runs it,
and :meth:`Task.wait` polls until the task ends, with a ``tqdm`` bar in notebooks.

Exit statuses follow Proxmox: ``OK`` is a success, ``WARNINGS: n`` is a success with ``n``
warnings (the seed package treats it as a failure; pvekit does not), anything else is the
error message and :meth:`Task.wait` raises :class:`~pvekit.TaskFailedError` carrying it and
the last lines of the log. A wait that runs out of time raises
:class:`~pvekit.TaskTimeoutError`; the task keeps running and can be waited on again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from . import _progress
from ._errors import (
    InvalidInputError,
    TaskFailedError,
    TaskTimeoutError,
    TransportError,
    clean_text,
)
from ._format import UPID, parse_upid

__all__ = ["Task", "TaskStatus", "exit_state"]

#: How many log lines a task failure carries.
LOG_TAIL = 10
_LOG_PAGE = 500
#: The first pause of a wait; pauses double up to ``poll``.
_FIRST_POLL = 0.1
_WARNINGS_RE = re.compile(r"^WARNINGS:\s*(\d+)\s*$")
_PERCENT_RE = re.compile(r"(\d{1,3}(?:\.\d+)?)\s?%")


class _Client(Protocol):
    """What a Task needs from its cluster (a :class:`~pvekit.Cluster`, an
    :class:`~pvekit._api.ApiClient` or a fake)."""

    @property
    def profile(self) -> str: ...

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        fresh: bool = False,
        **kwargs: Any,
    ) -> Any: ...

    def delete(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any: ...

    def invalidate(self, *prefixes: str, exact: Iterable[str] = ()) -> None: ...


def exit_state(exitstatus: str | None) -> str:
    """Classify a Proxmox exit status: ``"ok"``, ``"warnings"`` or ``"error"``.

    ``"OK"`` is ``ok``; ``"WARNINGS: n"`` is ``warnings`` (a success); anything else,
    including a missing status of an ended task, is ``error``.
    """
    if exitstatus == "OK":
        return "ok"
    if exitstatus is not None and _WARNINGS_RE.match(exitstatus):
        return "warnings"
    return "error"


@dataclass(frozen=True)
class TaskStatus:
    """One reading of ``GET /nodes/{node}/tasks/{upid}/status``.

    ``state`` is ``"running"``, ``"ok"``, ``"warnings"`` or ``"error"`` (the values of the
    ``status`` column of the tasks frame); ``ok`` is true for an ended task whose exit status
    is ``OK`` or ``WARNINGS: n``; ``warnings`` is that ``n``. ``raw`` is Proxmox's body.
    """

    upid: str
    node: str
    running: bool
    exitstatus: str | None
    state: str
    warnings: int
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """The task ended successfully (``OK`` or ``WARNINGS: n``)."""
        return self.state in ("ok", "warnings")

    @property
    def failed(self) -> bool:
        """The task ended with an error."""
        return self.state == "error"

    @classmethod
    def from_body(cls, upid: str, node: str, body: Any) -> TaskStatus:
        """Build from a task status body; tolerates the task-list spelling of the fields."""
        raw: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
        status = str(raw.get("status") or "").strip()
        exitstatus = raw.get("exitstatus")
        exitstatus = str(exitstatus) if exitstatus not in (None, "") else None
        running = status.lower() == "running"
        if not running and exitstatus is None and status and status.lower() != "stopped":
            exitstatus = status  # the task list puts the exit text in `status`
        if running:
            state, warnings = "running", 0
        else:
            state = exit_state(exitstatus)
            match = _WARNINGS_RE.match(exitstatus or "")
            warnings = int(match.group(1)) if match else 0
        return cls(
            upid, node, running, exitstatus if not running else None, state, warnings, dict(raw)
        )


def log_percent(lines: Iterable[str]) -> float | None:
    """The last progress percentage a task log shows (``"... (25.00%)"``), capped at 100;
    ``None`` when no line has one. The progress bar and the widgets read it the same way."""
    for line in reversed(list(lines)):
        match = _PERCENT_RE.search(line)
        if match:
            return min(100.0, float(match.group(1)))
    return None


class Task:
    """A Proxmox task, identified by its UPID, on the cluster that runs it.

    Get one from any action of a :class:`~pvekit.Guest`, or rebuild one from a UPID with
    ``cluster.task(upid)``. Attributes parsed from the UPID: ``node``, ``pid``, ``pstart``,
    ``starttime`` (aware UTC datetime), ``type`` (``qmstart``, ``vzdump``...), ``id`` (often
    the VMID) and ``user``. Reads always go to the node that runs the task and are never
    served from the cache.
    """

    def __init__(
        self,
        cluster: _Client,
        upid: str | UPID,
        *,
        description: str | None = None,
        invalidate: tuple[str, ...] | list[str] = (),
        invalidate_exact: tuple[str, ...] | list[str] = (),
        on_success: Callable[[Task], None] | None = None,
    ) -> None:
        parsed = upid if isinstance(upid, UPID) else parse_upid(upid)
        self.cluster = cluster
        self.upid_info: UPID = parsed
        self.upid: str = str(parsed)
        self.description = description or f"{parsed.type} {parsed.id}".strip()
        # Reads a caller asks to drop when the task ends. pvekit's own actions pass none:
        # their client drops what the endpoint table says when it sees the task end.
        self._stale: tuple[str, ...] = tuple(invalidate)
        self._stale_exact: tuple[str, ...] = tuple(invalidate_exact)
        self._on_success: list[Callable[[Task], None]] = [on_success] if on_success else []
        self._final: TaskStatus | None = None
        self._finished_handled = False
        #: The VMID a clone or restore creates (``None`` for other tasks).
        self.newid: int | None = None

    # -- UPID fields ----------------------------------------------------------------------

    @property
    def node(self) -> str:
        """The node that runs the task (all status and log reads go there)."""
        return self.upid_info.node

    @property
    def pid(self) -> int:
        return self.upid_info.pid

    @property
    def pstart(self) -> int:
        return self.upid_info.pstart

    @property
    def starttime(self) -> datetime:
        """When the task started (aware UTC datetime)."""
        return self.upid_info.start

    @property
    def type(self) -> str:
        return self.upid_info.type

    @property
    def id(self) -> str:
        return self.upid_info.id

    @property
    def user(self) -> str:
        return self.upid_info.user

    @property
    def vmid(self) -> int | None:
        """The guest the task is about, when its id is a VMID."""
        return self.upid_info.vmid

    @property
    def profile(self) -> str:
        return str(getattr(self.cluster, "profile", ""))

    # -- reads ----------------------------------------------------------------------------

    def _path(self, leaf: str = "") -> str:
        path = f"/nodes/{self.node}/tasks/{quote(self.upid, safe='')}"
        return f"{path}/{leaf}" if leaf else path

    def status(self) -> TaskStatus:
        """Read the task's status now (one request; an ended task is not asked again)."""
        if self._final is not None:
            return self._final
        body = self.cluster.get(self._path("status"), fresh=True)
        st = TaskStatus.from_body(self.upid, self.node, body)
        if not st.running:
            self._final = st
            self._finished()
        return st

    @property
    def running(self) -> bool:
        """Whether the task is still running (reads the status)."""
        return self.status().running

    @property
    def ok(self) -> bool:
        """Whether the task ended successfully, ``OK`` or ``WARNINGS`` (reads the status).

        ``False`` while it runs and when it failed.
        """
        return self.status().ok

    @property
    def exitstatus(self) -> str | None:
        """Proxmox's exit status (``"OK"``, ``"WARNINGS: 2"``, an error text), or ``None``
        while the task runs."""
        return self.status().exitstatus

    def log(self, start: int = 0, limit: int | None = 50) -> list[str]:
        """Lines of the task log, in order, from line ``start`` (0-based).

        ``limit`` caps the number of lines (Proxmox's default is 50); ``None`` reads the whole
        log, page by page.
        """
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise InvalidInputError(f"log start must be an integer >= 0, not {start!r}")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise InvalidInputError(f"log limit must be an integer >= 1 or None, not {limit!r}")
        lines: list[str] = []
        pos = start
        while True:
            want = _LOG_PAGE if limit is None else min(_LOG_PAGE, limit - len(lines))
            page = self._log_page(pos, want)
            lines.extend(page)
            pos += len(page)
            if len(page) < want or (limit is not None and len(lines) >= limit):
                return lines

    def _log_page(self, start: int, limit: int) -> list[str]:
        body = self.cluster.get(self._path("log"), {"start": start, "limit": limit}, fresh=True)
        rows = [r for r in (body or []) if isinstance(r, Mapping)]
        # Proxmox does not promise the order of {n, t} rows.
        rows.sort(key=lambda r: int(r.get("n") or 0))
        return [str(r.get("t", "")) for r in rows]

    def log_tail(self, lines: int = LOG_TAIL) -> list[str]:
        """The last ``lines`` lines of the log (reads the whole log page by page)."""
        tail: list[str] = []
        pos = 0
        while True:
            page = self._log_page(pos, _LOG_PAGE)
            tail = (tail + page)[-lines:]
            pos += len(page)
            if len(page) < _LOG_PAGE:
                return [t for t in tail if t != "no content"]

    # -- control --------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask Proxmox to stop the task (``DELETE /nodes/{node}/tasks/{upid}``)."""
        self.cluster.delete(self._path())
        self._final = None

    def wait(
        self,
        timeout: float | None = None,
        poll: float = 1.0,
        progress: bool | None = None,
    ) -> TaskStatus:
        """Poll until the task ends and return its final :class:`TaskStatus`.

        ``timeout`` is in seconds (``None``: no limit); ``poll`` is the longest pause
        between status reads (the first pauses are shorter, 0.1 s doubling up to ``poll``, so
        a short task ends without waiting a full ``poll``). ``progress``: by default
        (``None``) a ``tqdm.auto`` bar in notebooks and on terminals (a widget in notebooks)
        with the latest log line and, where the log reports one (backups, migrations), the
        percentage; in a script or a pipe (stderr not a terminal) one INFO line per new task
        log line and one at the end, on the ``pvekit.progress`` logger, instead of bar frames.
        ``True``: a bar anyway; ``False``: neither.

        ``OK`` and ``WARNINGS: n`` return normally. Any other exit status raises
        :class:`~pvekit.TaskFailedError` with ``exitstatus`` and the last log lines.
        Running out of time raises :class:`~pvekit.TaskTimeoutError`; the task is untouched
        and ``err.task.wait()`` may be called again.
        """
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0
        ):
            raise InvalidInputError(
                f"timeout must be a number of seconds >= 0 or None, not {timeout!r}"
            )
        if isinstance(poll, bool) or not isinstance(poll, int | float) or poll <= 0:
            raise InvalidInputError(f"poll must be a number of seconds > 0, not {poll!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        step = _FIRST_POLL
        how = _progress.mode(progress)
        bar: _Progress | _LogProgress | None = (
            _Progress(self) if how == "bar" else _LogProgress(self) if how == "log" else None
        )
        try:
            while True:
                st = self._status_within(deadline, timeout)
                if bar is not None:
                    bar.update(st)
                if not st.running:
                    break
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise TaskTimeoutError(
                        f"task {self.description} on {self.node} is still running after "
                        f"{timeout:g} s; it was left running: call .wait() again or .stop() "
                        f"({self.upid})",
                        task=self,
                        profile=self.profile or None,
                    )
                pause = min(poll, step)
                step *= 2  # short tasks end after a few quick reads; long ones settle at poll
                if deadline is not None:
                    pause = max(0.0, min(pause, deadline - now))
                time.sleep(pause)
        finally:
            if bar is not None:
                bar.close()
        if st.failed:
            raise TaskFailedError(
                f"task {self.description} on {self.node} failed: "
                f"{st.exitstatus or 'no exit status'} ({self.upid})",
                exitstatus=st.exitstatus,
                log_tail=self.log_tail(),
                task=self,
                profile=self.profile or None,
            )
        return st

    # -- internals ------------------------------------------------------------------------

    def _status_within(self, deadline: float | None, timeout: float | None) -> TaskStatus:
        """:meth:`status`, its request bounded by the wait's deadline: a slow or silent
        server makes the wait end on time with TaskTimeoutError, not a transport error."""
        from ._transport import time_limit

        try:
            with time_limit(deadline):
                return self.status()
        except TransportError:
            if deadline is None or time.monotonic() < deadline - 0.05:
                raise
        raise TaskTimeoutError(
            f"task {self.description} on {self.node}: no status within {timeout:g} s (the "
            f"server did not answer in time); it may still be running: call .wait() again or "
            f".stop() ({self.upid})",
            task=self,
            profile=self.profile or None,
        )

    def _finished(self) -> None:
        """Drop the cached reads the task's effect made stale; run success callbacks once."""
        if self._finished_handled:
            return
        self._finished_handled = True
        if self._stale or self._stale_exact:
            self.cluster.invalidate(*self._stale, exact=self._stale_exact)
        if self._final is not None and self._final.ok:
            for callback in self._on_success:
                callback(self)

    def __repr__(self) -> str:
        state = self._final.state if self._final is not None else "not finished"
        return (
            f"<Task {self.type} {self.id or '-'} on {self.node} by {self.user} "
            f"started {self.starttime:%Y-%m-%d %H:%M:%S}Z: {state}>"
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Task)
            and other.upid == self.upid
            and getattr(other.cluster, "profile", None) == getattr(self.cluster, "profile", None)
        )

    def __hash__(self) -> int:
        return hash((self.upid, getattr(self.cluster, "profile", None)))


class _Progress:
    """A tqdm.auto bar for one wait: percentage when the log reports one, else elapsed."""

    def __init__(self, task: Task) -> None:
        from tqdm.auto import tqdm

        self.task = task
        self.seen = 0
        self.bar = tqdm(
            total=100,
            desc=task.description,
            unit="%",
            leave=True,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}]{postfix}",
        )

    def update(self, st: TaskStatus) -> None:
        try:
            page = self.task._log_page(self.seen, _LOG_PAGE)
        except Exception:  # the bar is decoration: a failed log read must not end the wait
            page = []
        self.seen += len(page)
        lines = [t for t in page if t.strip() and t != "no content"]
        if lines:
            last = lines[-1]
            pct = log_percent(lines)
            if pct is not None:
                self.bar.n = max(self.bar.n, pct)
            # The log is the server's text, shown on a terminal (tqdm) or in a widget.
            self.bar.set_postfix_str(clean_text(last)[-60:], refresh=False)
        if not st.running:
            if st.ok:
                self.bar.n = 100
            self.bar.set_postfix_str(clean_text(st.exitstatus or ""), refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class _LogProgress:
    """The same wait as log lines: each new line of the task log once, then the end."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.seen = 0
        self.started = time.monotonic()
        self.done = False
        self.name = f"task {task.description} on {task.node}"
        _progress.LOGGER.info("%s: waiting (%s)", self.name, task.upid)

    def update(self, st: TaskStatus) -> None:
        try:
            page = self.task._log_page(self.seen, _LOG_PAGE)
        except Exception:  # progress is decoration: a failed log read must not end the wait
            page = []
        self.seen += len(page)
        for line in page:
            if line.strip() and line != "no content":
                _progress.LOGGER.info("%s: %s", self.name, line.strip())
        if not st.running and not self.done:
            self.done = True
            _progress.LOGGER.info(
                "%s: %s after %.1f s",
                self.name,
                st.exitstatus or "ended",
                time.monotonic() - self.started,
            )

    def close(self) -> None:
        pass
