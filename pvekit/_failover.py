"""A pvetui ``mode: cluster`` group: several profiles that reach the same Proxmox VE cluster
(one per node, say), read through one active profile at a time, failing over to the next.

Unlike :class:`~pvekit.Group` (aggregate mode: every profile at once, frames concatenated),
a :class:`FailoverGroup` sends each call to its *active* profile only. The active profile is
health-checked with ``GET /version`` (on first use, when the last check is older than
``check_interval`` seconds, and on :meth:`FailoverGroup.check`); when it stops answering, the
candidates after it are tried in order (round robin, as pvetui does) and the first that
answers ``/version`` becomes active. A read that fails because the cluster is unreachable is
repeated once on the new active profile; a write (``post``/``put``/``delete`` or a Guest
action) is never repeated, so nothing is done twice. Each failover is recorded in
``failovers`` and passed to the callbacks registered with ``on_failover``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from . import frames
from ._errors import ConnectionError, InvalidInputError, PVEError
from ._group import _cluster_down, _Members

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ._cluster import Cluster
    from ._guest import Guest
    from ._node import Node
    from ._tasks import Task

__all__ = ["FailoverEvent", "FailoverGroup"]

log = logging.getLogger("pvekit.failover")
R = TypeVar("R")
DEFAULT_CHECK_INTERVAL = 30.0  # seconds; pvetui's DefaultHealthCheckInterval
HEALTH_PATH = "/version"


@dataclass(frozen=True)
class FailoverEvent:
    """One failover: the group, the profile given up (``None`` at the first election), the
    profile now active, why, and when (epoch seconds)."""

    group: str
    previous: str | None
    current: str
    reason: str
    at: float


@dataclass
class _Candidate:
    state: str = "pending"  # pending -> active | standby | failed; closed after close()
    error: str | None = None
    checked_at: float | None = None


class FailoverGroup(_Members):
    """Candidates of one cluster, read through one active profile (pvetui's cluster mode).

    ``clusters``: :class:`~pvekit.Cluster` objects in failover order (the first is preferred).
    ``on_failover``: a callable taking a :class:`FailoverEvent`, called after each failover
    (more with :meth:`on_failover`). Reads (``nodes()``, ``guests()``, ``storage()``,
    ``tasks()``, ``backups()``, ``snapshots()``, ``metrics()``, ``summary()``) and handles
    (``guest()``, ``task()``, ``node()``) go to :attr:`active`; frames carry the active
    profile's name in ``profile``.
    """

    mode = "cluster"

    def __init__(
        self,
        clusters: Iterable[Cluster] | Mapping[str, Cluster],
        *,
        name: str | None = None,
        on_failover: Callable[[FailoverEvent], Any] | None = None,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
    ) -> None:
        items = list(clusters.values()) if isinstance(clusters, Mapping) else list(clusters)
        if not items:
            raise InvalidInputError("a failover group needs at least one candidate profile")
        self._clusters: dict[str, Cluster] = {}
        for cluster in items:
            profile = getattr(cluster, "profile", None)
            if not isinstance(profile, str) or not profile:
                raise InvalidInputError(f"a candidate needs a profile name, got {cluster!r}")
            if profile in self._clusters:
                raise InvalidInputError(f"profile {profile!r} appears twice in the group")
            self._clusters[profile] = cluster
        if isinstance(check_interval, bool) or not isinstance(check_interval, int | float):
            raise InvalidInputError(f"invalid check_interval={check_interval!r}: seconds")
        if check_interval < 0:
            raise InvalidInputError(f"invalid check_interval={check_interval!r}: negative")
        self.name = name
        self.check_interval = float(check_interval)
        self.failovers: list[FailoverEvent] = []
        self._callbacks: list[Callable[[FailoverEvent], Any]] = []
        if on_failover is not None:
            self.on_failover(on_failover)
        self._states = {p: _Candidate() for p in self._clusters}
        self._active: str | None = None
        self._last_check = 0.0
        self._lock = threading.RLock()
        self._closed = False

    # -- container protocol: _Members; unknown profiles are named as candidates ---------

    _member_kind = "candidate"

    def _not_member_text(self) -> str:
        return f"a candidate of group {self.name!r}"

    def __repr__(self) -> str:
        return (
            f"<FailoverGroup {self.name!r} active={self._active!r} "
            f"candidates={', '.join(self._clusters)}>"
        )

    def __enter__(self) -> FailoverGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the active profile -------------------------------------------------------------

    def on_failover(
        self, callback: Callable[[FailoverEvent], Any]
    ) -> Callable[[FailoverEvent], Any]:
        """Register ``callback(event)`` to run after each failover (usable as a decorator).

        A callback that raises is logged and does not stop the failover."""
        if not callable(callback):
            raise InvalidInputError(f"on_failover needs a callable, not {callback!r}")
        self._callbacks.append(callback)
        return callback

    @property
    def active_profile(self) -> str | None:
        """The profile calls go to now (``None`` before the first call or when none answers)."""
        return self._active

    @property
    def active(self) -> Cluster:
        """The active :class:`~pvekit.Cluster` (elected, health-checked, on first use)."""
        return self._ensure()

    def _healthy(self, profile: str) -> PVEError | None:
        try:
            self._clusters[profile].get(HEALTH_PATH, fresh=True)
        except PVEError as err:
            return err
        return None

    def _mark(self, profile: str, state: str, error: BaseException | None = None) -> None:
        cand = self._states[profile]
        cand.state, cand.checked_at = state, time.time()
        cand.error = None if error is None else str(error)

    def _elect(self, reason: str) -> Cluster:
        """Health-check the candidates after the active one, in order; the first that
        answers becomes active. Called with the lock held."""
        names = list(self._clusters)
        start = names.index(self._active) + 1 if self._active in names else 0
        order = names[start:] + names[:start]
        if self._active is not None:
            order = [n for n in order if n != self._active]
        previous, problems = self._active, []
        if previous is not None:
            problems.append(f"{previous}: {reason}")
        for name in order:
            error = self._healthy(name)
            if error is not None:
                self._mark(name, "failed", error)
                problems.append(f"{name}: {error.message}")
                continue
            self._active = name
            self._last_check = time.monotonic()
            self._mark(name, "active")
            for other, cand in self._states.items():
                if other != name and cand.state == "active":
                    cand.state = "standby"
            if previous is not None:
                self._notify(FailoverEvent(self.name or "", previous, name, reason, time.time()))
            return self._clusters[name]
        self._active = None
        raise ConnectionError(
            f"no candidate of group {self.name!r} answers {HEALTH_PATH}: " + "; ".join(problems)
        )

    def _notify(self, event: FailoverEvent) -> None:
        self.failovers.append(event)
        log.warning(
            "group %r: failover from %r to %r (%s)",
            event.group,
            event.previous,
            event.current,
            event.reason,
        )
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:  # a notebook callback must not break the failover
                log.exception("group %r: on_failover callback failed", event.group)

    def _ensure(self) -> Cluster:
        with self._lock:
            if self._closed:
                raise InvalidInputError(f"failover group {self.name!r} is closed")
            if self._active is None:
                return self._elect("no active profile")
            due = time.monotonic() - self._last_check >= self.check_interval
            if due:
                error = self._healthy(self._active)
                if error is not None:
                    self._mark(self._active, "failed", error)
                    return self._elect(f"health check failed: {error.message}")
                self._last_check = time.monotonic()
                self._mark(self._active, "active")
            return self._clusters[self._active]

    def _failed(self, cluster: Cluster, error: PVEError) -> Cluster:
        """The active profile failed a call: mark it and elect another one."""
        with self._lock:
            if self._active == cluster.profile:
                self._mark(cluster.profile, "failed", error)
                return self._elect(f"stopped answering: {error.message}")
            return self._ensure()  # another thread failed over already

    def check(self) -> pd.DataFrame:
        """Health-check the active profile now (``GET /version``), failing over when it does
        not answer; return :meth:`status`. Raises :class:`~pvekit.ConnectionError` when no
        candidate answers."""
        with self._lock:
            self._last_check = float("-inf")
            self._ensure()
        return self.status()

    def _read(self, fn: Callable[[Cluster], R]) -> R:
        """Run a read on the active profile; once more on the next one if it was down."""
        cluster = self._ensure()
        try:
            return fn(cluster)
        except PVEError as err:
            if not _cluster_down(err):
                raise
            return fn(self._failed(cluster, err))

    # -- reads (the same calls as a Cluster) -------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """``GET`` on the active profile (repeated on the next one if it was down)."""
        return self._read(lambda c: c.get(path, params, **kwargs))

    def post(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """``POST`` on the active profile; never repeated elsewhere."""
        return self._ensure().post(path, params, **kwargs)

    def put(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """``PUT`` on the active profile; never repeated elsewhere."""
        return self._ensure().put(path, params, **kwargs)

    def delete(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """``DELETE`` on the active profile; never repeated elsewhere."""
        return self._ensure().delete(path, params, **kwargs)

    def nodes(self, **kwargs: Any) -> pd.DataFrame:
        """See :meth:`pvekit.Cluster.nodes`."""
        return self._read(lambda c: c.nodes(**kwargs))

    def guests(self, details: bool = False, ips: bool = False, **kwargs: Any) -> pd.DataFrame:
        """See :meth:`pvekit.Cluster.guests`."""
        return self._read(lambda c: c.guests(details=details, ips=ips, **kwargs))

    def storage(self, unique: bool = False, **kwargs: Any) -> pd.DataFrame:
        """See :meth:`pvekit.Cluster.storage`."""
        return self._read(lambda c: c.storage(unique=unique, **kwargs))

    def tasks(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        """See :meth:`pvekit.Cluster.tasks`."""
        return self._read(lambda c: c.tasks(*args, **kwargs))

    def backups(self, vmid: int | str | None = None, **kwargs: Any) -> pd.DataFrame:
        """See :meth:`pvekit.Cluster.backups`."""
        return self._read(lambda c: c.backups(vmid=vmid, **kwargs))

    def snapshots(self, vmid: int | str | None = None, **kwargs: Any) -> pd.DataFrame:
        """See :meth:`pvekit.Cluster.snapshots`."""
        return self._read(lambda c: c.snapshots(vmid=vmid, **kwargs))

    def metrics(self, kind: str, *args: Any, **kwargs: Any) -> pd.DataFrame:
        """See :meth:`pvekit.Cluster.metrics`."""
        return self._read(lambda c: c.metrics(kind, *args, **kwargs))

    def summary(self, **kwargs: Any) -> pd.DataFrame:
        """See :meth:`pvekit.Cluster.summary`."""
        return self._read(lambda c: c.summary(**kwargs))

    def ha_rules(self, **kwargs: Any) -> pd.DataFrame:
        """See :meth:`pvekit.Cluster.ha_rules`."""
        return self._read(lambda c: c.ha_rules(**kwargs))

    def map(
        self, fn: Callable[[Cluster], Any], *, profiles: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """``{active profile: fn(active)}``; an exception is returned, not raised (as
        :meth:`pvekit.Group.map`). With ``profiles`` (candidates, checked), ``{}`` when the
        active profile is not among them: the frames of a FailoverGroup carry the active
        profile only, so a caller asking by the profiles of a frame gets that one."""
        wanted = None if profiles is None else [p for p in profiles]
        for name in wanted or ():
            self[name]  # a profile that is no candidate fails before any request
        try:
            cluster = self._ensure()
        except PVEError as err:
            return {self.name or "": err}
        if wanted is not None and cluster.profile not in wanted:
            return {}
        try:
            return {cluster.profile: fn(cluster)}
        except Exception as err:
            return {cluster.profile: err}

    # -- handles -------------------------------------------------------------------------

    def _pick(self, profile: str | None) -> Cluster:
        return self._ensure() if profile is None else self[profile]

    def guest(self, vmid: int | str, profile: str | None = None) -> Guest:
        """A :class:`~pvekit.Guest` on the active profile (or on candidate ``profile``)."""
        return self._pick(profile).guest(vmid)

    def task(self, upid: str, profile: str | None = None) -> Task:
        """A :class:`~pvekit.Task` handle on the active profile (or on ``profile``)."""
        return self._pick(profile).task(upid)

    def node(self, name: str, profile: str | None = None) -> Node:
        """A :class:`~pvekit.Node` handle on the active profile (or on ``profile``)."""
        return self._pick(profile).node(name)

    # -- state ---------------------------------------------------------------------------

    def status(self) -> pd.DataFrame:
        """One row per candidate (columns: ``frames.COLUMNS["group_status"]``); ``state`` is
        ``active`` for the profile calls go to, ``standby`` for one that answered before,
        ``failed``, ``pending`` (never checked) or ``closed``."""
        with self._lock:
            rows = [
                {
                    "profile": profile,
                    "host": getattr(self._clusters[profile], "host", None),
                    "connected": cand.state in ("active", "standby"),
                    "state": cand.state,
                    "error": cand.error,
                    "checked_at": cand.checked_at,
                }
                for profile, cand in self._states.items()
            ]
        return frames.group_status_frame(rows)

    def reconnect(self) -> pd.DataFrame:
        """Health-check every candidate that is not active (failed ones may be back); they
        become ``standby`` or stay ``failed``. The active profile is kept. Returns
        :meth:`status`."""
        with self._lock:
            for name in self._clusters:
                if name == self._active or self._states[name].state == "closed":
                    continue
                error = self._healthy(name)
                self._mark(name, "failed" if error else "standby", error)
        return self.status()

    def close(self) -> None:
        """Close every candidate's client."""
        with self._lock:
            self._closed = True
            self._active = None
            for name, cluster in self._clusters.items():
                try:
                    cluster.close()
                finally:
                    self._mark(name, "closed")
