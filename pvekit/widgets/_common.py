"""Shared machinery of the panels: the data source adapter, permissions, the background runner.

Nothing here builds a URL except the one read the panels need that no inventory call covers,
``GET /access/permissions`` (the identity's effective privileges), which goes through the
cluster's own :class:`~pvekit._api.ApiClient`.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .._errors import InvalidInputError, PVEError
from .._source import Inventory, Members

if TYPE_CHECKING:  # pragma: no cover
    import ipywidgets as w
    import pandas as pd

    from .._cluster import Cluster
    from .._guest import Guest

log = logging.getLogger("pvekit.widgets")

P = ParamSpec("P")
R = TypeVar("R")

# Stable CSS hooks: browser tests and user style sheets find the parts by these classes.
CSS = """
<style>
.pvekit-guest-list select, .pvekit-mono, .pvekit-list-header {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
  font-size: 12px; white-space: pre;
}
.pvekit-list-header { color: #666; padding-left: 4px; overflow: hidden; }
.pvekit-message-error, .pvekit-task-error { color: #D55E00; }
.pvekit-confirm-box { border: 2px solid #D55E00; padding: 6px; margin: 4px 0; }
.pvekit-dialog { border: 1px solid #999; padding: 6px; margin: 4px 0; }
.pvekit-task-log pre { margin: 0; font-size: 11px; max-height: 6em; overflow: auto; }
.pvekit-status-table td, .pvekit-status-table th { padding: 2px 8px; text-align: left; }
</style>
"""


def esc(value: Any) -> str:
    """HTML-escape any value for an HTML widget."""
    return html.escape("" if value is None else str(value))


class Source:
    """One way to read a :class:`~pvekit.Cluster`, a :class:`~pvekit.Group` or a
    :class:`~pvekit.FailoverGroup`: anything that satisfies :class:`pvekit._source.Inventory`.

    All three answer the same inventory calls; this adapter adds what the panels need on top:
    the list of profiles, the per-profile client (for ``/access/permissions``), fresh reads
    and guest handles addressed by ``(profile, vmid)``.
    """

    def __init__(self, obj: Inventory) -> None:
        if not isinstance(obj, Inventory):
            raise InvalidInputError(f"expected a pvekit Cluster or Group, got {type(obj).__name__}")
        self.obj = obj
        self.is_group = isinstance(obj, Members)

    # -- topology -------------------------------------------------------------------------
    def clients(self) -> dict[str, Cluster]:
        """Profile name -> the Cluster of that profile (a Cluster: itself)."""
        return {str(k): v for k, v in self.obj.clusters.items()}

    @property
    def profiles(self) -> list[str]:
        return list(self.clients())

    def insecure_profiles(self) -> list[str]:
        """Profiles whose server identity is not verified (``verify_ssl=False``)."""
        return [
            p
            for p, c in self.clients().items()
            if getattr(getattr(c, "settings", None), "insecure", False)
        ]

    def insecure_banner(self) -> str:
        """HTML warning naming the insecure profiles, or ``""`` when every one is verified."""
        names = self.insecure_profiles()
        if not names:
            return ""
        listed = ", ".join(esc(n) for n in names)
        return (
            '<div class="pvekit-insecure" style="color:#b45309;font-weight:600">'
            f"⚠ INSECURE: TLS certificate not verified for {listed}; anyone on the path "
            "could read the credentials. Use ca_file= or fingerprint=.</div>"
        )

    # -- reads ----------------------------------------------------------------------------
    def _read(self, method: str, fresh: bool, **kwargs: Any) -> pd.DataFrame:
        fn = getattr(self.obj, method)
        if _accepts(fn, "progress"):
            # tqdm bars inside a panel's background refresh would litter the cell output.
            kwargs["progress"] = False
        if fresh:
            # Every read of a Cluster and a Group takes fresh=: the client's cache decides.
            kwargs["fresh"] = True
        return fn(**kwargs)

    def guests(self, fresh: bool = False) -> pd.DataFrame:
        return self._read("guests", fresh)

    def nodes(self, fresh: bool = False) -> pd.DataFrame:
        return self._read("nodes", fresh)

    def storage(self, fresh: bool = False) -> pd.DataFrame:
        return self._read("storage", fresh)

    def status(self) -> pd.DataFrame | None:
        """The group's connection status frame, or ``None`` for a single cluster."""
        return self.obj.status() if isinstance(self.obj, Members) else None

    def guest(self, profile: str, vmid: int) -> Guest:
        return self.obj.guest(vmid, profile=profile)

    def permissions(self) -> dict[str, Permissions]:
        """Effective privileges of the connected identity, per profile.

        A profile whose permissions cannot be read gets an empty :class:`Permissions` carrying
        the error, so every action on it stays disabled with a reason.
        """
        out: dict[str, Permissions] = {}
        for profile, client in self.clients().items():
            try:
                tree = client.get("/access/permissions", fresh=True)
            except PVEError as exc:
                out[profile] = Permissions({}, error=str(exc))
            else:
                out[profile] = Permissions(tree if isinstance(tree, Mapping) else {})
        return out


@functools.cache
def _accepts_cached(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _accepts(fn: Any, name: str) -> bool:
    target = getattr(fn, "__func__", fn)
    try:
        return _accepts_cached(target, name)
    except TypeError:  # unhashable callable
        return _accepts_cached.__wrapped__(target, name)


class Permissions:
    """The effective privileges of one identity on one cluster (``GET /access/permissions``).

    Proxmox answers a map ``path -> {privilege: propagate}`` with privileges already resolved
    per listed path. A privilege applies to a path when it is listed on that exact path, or
    when the nearest listed ancestor has it with ``propagate`` set. Pool membership adds the
    pool's propagated privileges (``/pool/{pool}``).
    """

    def __init__(self, tree: Mapping[str, Mapping[str, Any]], *, error: str | None = None) -> None:
        self.tree = {str(k): dict(v) for k, v in tree.items() if isinstance(v, Mapping)}
        self.error = error

    def __repr__(self) -> str:
        return f"Permissions(paths={len(self.tree)}, error={self.error!r})"

    @staticmethod
    def _ancestors(path: str) -> Iterator[str]:
        parts = [p for p in path.split("/") if p]
        for i in range(len(parts), -1, -1):
            yield "/" + "/".join(parts[:i])

    def _on_path(self, privilege: str, path: str) -> bool:
        for i, candidate in enumerate(self._ancestors(path)):
            privs = self.tree.get(candidate)
            if privs is None:
                continue
            if i == 0:
                return privilege in privs
            return bool(privs.get(privilege))
        return False

    def allows(self, privilege: str, path: str, *, pool: str | None = None) -> bool:
        """True if ``privilege`` applies on ``path`` (e.g. ``"/vms/101"``)."""
        if self._on_path(privilege, path):
            return True
        return bool(pool) and self._on_path(privilege, f"/pool/{pool}")

    def allows_any(
        self, privileges: tuple[str, ...], path: str, *, pool: str | None = None
    ) -> bool:
        return any(self.allows(p, path, pool=pool) for p in privileges)


class Runner:
    """A small thread pool that knows when it is idle.

    Panels run every request in here so the kernel stays responsive. A job may submit
    follow-up jobs (a refresh after a batch of tasks); it does so before it ends, so
    :meth:`wait_idle` never sees a gap between the two.
    """

    def __init__(self, name: str, max_workers: int = 4) -> None:
        self._name = name
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._cond = threading.Condition()
        self._pending = 0
        self._closed = False

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._pending > 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        with self._cond:
            if self._closed:
                raise InvalidInputError("this panel was closed; create a new one")
            self._pending += 1
        try:
            return self._pool.submit(self._run, fn, args)
        except BaseException:
            self._done()
            raise

    def _done(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        try:
            return fn(*args)
        except Exception:
            # Jobs handle the errors they expect; anything reaching here is a bug.
            log.exception("background job %s failed", getattr(fn, "__name__", fn))
            return None
        finally:
            self._done()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is pending or running; False if ``timeout`` ran out first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout=timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, wait: bool = True) -> None:
        """Refuse new jobs, drop queued ones and (by default) let running ones finish."""
        with self._cond:
            self._closed = True
        # A worker cannot wait for itself (close() may run from a job, or from __del__ there).
        inside = threading.current_thread().name.startswith(self._name + "_")
        self._pool.shutdown(wait=wait and not inside, cancel_futures=True)


def submit_exclusive(
    gate: threading.Lock, button: w.Button, runner: Runner, fn: Callable[..., Any], *args: Any
) -> bool:
    """Run ``fn`` in ``runner`` unless ``gate`` is held; False (nothing started) when it is.

    ``button`` stays disabled while the job runs; the job releases ``gate`` and re-enables
    ``button`` when it ends. If the job cannot even be queued both are restored here.
    """
    if not gate.acquire(blocking=False):
        return False
    button.disabled = True
    try:
        runner.submit(fn, *args)
    except BaseException:
        gate.release()
        button.disabled = False
        raise
    return True


def guarded(method: Callable[P, R]) -> Callable[P, R | None]:
    """Wrap a widget callback so an error reaches the panel instead of a swallowed log line.

    ipywidgets only logs exceptions raised in ``on_click`` handlers. Here a pvekit error is
    shown in the panel (``self.show_error``); anything else is logged at ERROR level (tests
    fail on it) and shown as an internal error.
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        owner: Any = args[0]
        try:
            return method(*args, **kwargs)
        except PVEError as exc:
            owner.show_error(str(exc))
        except Exception as exc:
            log.exception("widget callback %s failed", method.__name__)
            owner.show_error(f"internal error in {method.__name__}: {exc!r}")
        return None

    return wrapper


def confirm_row(
    on_confirm: Callable[[Any], None], on_cancel: Callable[[Any], None]
) -> tuple[Any, Any, Any, Any]:
    """The confirmation row every panel shows before it acts: (text, Confirm, Cancel, box),
    the box hidden until a panel fills the text and shows it."""
    import ipywidgets as w

    text = w.HTML()
    text.add_class("pvekit-confirm-text")
    confirm = w.Button(description="Confirm", button_style="danger", icon="check")
    confirm.add_class("pvekit-confirm")
    confirm.on_click(on_confirm)
    cancel = w.Button(description="Cancel", icon="times")
    cancel.add_class("pvekit-cancel")
    cancel.on_click(on_cancel)
    box = w.VBox([text, w.HBox([confirm, cancel])], layout=w.Layout(display="none"))
    box.add_class("pvekit-confirm-box")
    return text, confirm, cancel, box
