"""A group of Proxmox VE clusters answering the same calls as one :class:`~pvekit.Cluster`.

A :class:`Group` fans every read out to its clusters concurrently and concatenates the frames
(each row keeps its ``profile``). A cluster that is down or refuses the call does not sink the
others: its rows are missing, a :class:`PartialResultWarning` names the profile and the
reason, and :meth:`Group.status` shows each profile's connection state and last error.
Across clusters the key of a guest is ``(profile, vmid)``: VMIDs repeat between clusters.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import frames
from ._errors import (
    AmbiguousGuestError,
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PVEError,
    ServerError,
    TransportError,
)
from ._errors import TimeoutError as PVETimeoutError
from ._fanout import GROUP_IN_FLIGHT, in_flight_share
from ._format import parse_vmid
from ._transport import time_limit, timeout_budget

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ._cluster import Cluster
    from ._guest import Guest
    from ._tasks import Task

__all__ = ["Group", "PartialResultWarning"]


class PartialResultWarning(UserWarning):
    """Some clusters of a group did not answer; the frame holds the others' rows only.

    ``profile`` (the cluster missing), ``frame`` (which read) and ``reason`` (why, without the
    request context) say it for programs; the text is for people and may change.
    """

    def __init__(
        self,
        message: str,
        *,
        profile: str | None = None,
        frame: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.profile = profile
        self.frame = frame
        self.reason = reason


# Errors that say the cluster itself is unusable (not just this one call).
_CONNECTION_ERRORS = (TransportError, AuthenticationError)
#: Shortest default per-cluster deadline (seconds) of a group read.
MIN_CLUSTER_TIMEOUT = 60.0
# Gateway statuses that reach us only once the read retries gave up: whatever sits in front
# of pveproxy (or pveproxy itself) says the cluster is unavailable, not that this call was wrong.
_UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


def _cluster_down(error: BaseException) -> bool:
    if isinstance(error, _CONNECTION_ERRORS):
        return True
    return isinstance(error, ServerError) and error.status in _UNAVAILABLE_STATUSES


@dataclass
class _ProfileState:
    state: str = "pending"  # pending -> connected | failed; closed after close()
    error: str | None = None
    checked_at: float | None = None


class _Members:
    """The container protocol of a group of profiles (``Group``, ``FailoverGroup``): index by
    profile, iterate over clusters in order, ``len``, ``in``."""

    _clusters: dict[str, Cluster]
    _member_kind = "profile"  # how an unknown-profile error names the members

    @property
    def profiles(self) -> list[str]:
        """Profile names, in group order."""
        return list(self._clusters)

    @property
    def clusters(self) -> dict[str, Cluster]:
        """Profile -> Cluster (a copy)."""
        return dict(self._clusters)

    def __getitem__(self, profile: str) -> Cluster:
        try:
            return self._clusters[profile]
        except KeyError:
            raise InvalidInputError(
                f"profile {profile!r} is not {self._not_member_text()} "
                f"({self._member_kind}s: {', '.join(self._clusters)})"
            ) from None

    def _not_member_text(self) -> str:
        return "in this group"

    def __iter__(self) -> Iterator[Cluster]:
        return iter(list(self._clusters.values()))

    def __len__(self) -> int:
        return len(self._clusters)

    def __contains__(self, profile: object) -> bool:
        return profile in self._clusters


class Group(_Members):
    """Several clusters, read as one: every frame is the concatenation of each cluster's.

    ``clusters`` is an iterable of :class:`~pvekit.Cluster` (profile names must be unique) or
    a mapping profile -> Cluster. Build one with :func:`pvekit.connect_group` or
    :func:`pvekit.demo`. Reads: ``nodes()``, ``guests()``, ``storage()``, ``tasks()``,
    ``backups()``, ``snapshots()``, ``metrics()``, ``summary()`` with the same arguments as
    on a Cluster; ``guest(vmid, profile=None)``, ``map(fn)``, ``status()``, ``reconnect()``,
    ``close()``. Index by profile: ``group["prod"]``.

    ``cluster_timeout`` is the per-cluster deadline of every fan-out, in seconds: a cluster
    still busy past it (one that accepts connections and never answers) is reported failed,
    in the partial result and in :meth:`status`, and the group returns without it. By default
    it is twice the longest member ``timeout``, and at least 60 s; it can be set later
    (``group.cluster_timeout = 20``).
    """

    def __init__(
        self,
        clusters: Iterable[Cluster] | Mapping[str, Cluster],
        *,
        max_workers: int | None = None,
        cluster_timeout: float | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name  # the configured group's name (None for an ad-hoc Group)
        items = (
            list(clusters.items())
            if isinstance(clusters, Mapping)
            else [(getattr(c, "profile", None), c) for c in clusters]
        )
        self._clusters: dict[str, Cluster] = {}
        for name, cluster in items:
            if not isinstance(name, str) or not name:
                raise InvalidInputError(f"a group member needs a profile name, got {cluster!r}")
            own = getattr(cluster, "profile", name)
            if own != name:
                # Frames carry the cluster's own profile name: a different key would make
                # rows and status disagree about which cluster is which.
                raise InvalidInputError(
                    f"group key {name!r} differs from the cluster's profile {own!r}"
                )
            if name in self._clusters:
                raise InvalidInputError(
                    f"profile {name!r} appears twice in the group: profile names must be "
                    "unique (name ad-hoc clusters with connect(host=..., name=...))"
                )
            self._clusters[name] = cluster
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise InvalidInputError(f"invalid max_workers={max_workers!r}: expected an int >= 1")
        self.max_workers = max_workers
        self.cluster_timeout = cluster_timeout
        self._lock = threading.Lock()
        self._states: dict[str, _ProfileState] = {p: _ProfileState() for p in self._clusters}
        #: profile -> the profile it duplicates (same cluster, see ``Cluster.identity``);
        #: the rows of such a profile are left out of every frame.
        self.duplicates: dict[str, str] = {}

    @property
    def cluster_timeout(self) -> float:
        """Seconds each cluster has to answer one fan-out (see the class docs)."""
        if self._cluster_timeout is not None:
            return self._cluster_timeout
        budgets = [
            timeout_budget(getattr(getattr(c, "settings", None), "timeout", None)) or 0.0
            for c in self._clusters.values()
        ]
        return max([MIN_CLUSTER_TIMEOUT, *(2 * b for b in budgets)])

    @cluster_timeout.setter
    def cluster_timeout(self, value: float | None) -> None:
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise InvalidInputError(
                f"invalid cluster_timeout={value!r}: expected seconds > 0 (finite) or None"
            )
        self._cluster_timeout = None if value is None else float(value)

    def __repr__(self) -> str:
        parts = ", ".join(f"{p}={s.state}" for p, s in self._states.items())
        return f"<{type(self).__name__} {len(self)} clusters: {parts}>"

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fan-out ------------------------------------------------------------------------------

    def _record(self, profile: str, error: BaseException | None) -> None:
        with self._lock:
            state = self._states[profile]
            if state.state == "closed":
                return
            state.checked_at = time.time()
            if error is None:
                state.state, state.error = "connected", None
            else:
                state.error = str(error)
                if _cluster_down(error):
                    state.state = "failed"
                elif state.state == "pending":
                    # The cluster answered (with an error about this call): it is reachable.
                    state.state = "connected"

    def map(
        self, fn: Callable[[Cluster], Any], *, profiles: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Run ``fn(cluster)`` on every cluster concurrently; return profile -> result.

        A cluster whose call raised maps to the exception object instead (nothing is
        raised), so callers can tell partial from complete results. Closed profiles are
        skipped. The outcome updates :meth:`status`.
        """
        names = list(self._clusters) if profiles is None else [p for p in profiles]
        for name in names:
            self[name]  # validate before any request
        names = [n for n in names if self._states[n].state != "closed"]
        if not names:
            return {}

        timeout = self.cluster_timeout
        limit = time.monotonic() + timeout
        gate = threading.Lock()  # orders a late outcome against its abandonment
        abandoned: set[str] = set()

        def late(name: str) -> PVETimeoutError:
            return PVETimeoutError(
                f"no answer within {timeout:g} s (the group's per-cluster deadline, "
                "cluster_timeout)",
                profile=name,
            )

        # All clusters' requests share one interpreter's CPU: past GROUP_IN_FLIGHT requests
        # in flight, more threads only add switching and TLS connections.
        share = max(1, GROUP_IN_FLIGHT // len(names))

        def run(name: str) -> Any:
            outcome: Any
            # Every request of this cluster's call (and of its own fan-out) ends by the limit.
            with time_limit(limit), in_flight_share(share):
                try:
                    outcome = fn(self._clusters[name])
                except Exception as err:
                    outcome = err
            if isinstance(outcome, TransportError) and time.monotonic() >= limit - 0.05:
                outcome = late(name)  # cut short by the group's limit: say so, as below
            with gate:
                if name not in abandoned:
                    self._record(name, outcome if isinstance(outcome, Exception) else None)
            return outcome

        workers = self.max_workers or len(names)
        pool = ThreadPoolExecutor(max_workers=min(workers, len(names)))
        try:
            futures = [pool.submit(run, name) for name in names]
            wait_futures(futures, timeout=max(0.0, limit - time.monotonic()))
        finally:
            # A cluster past its deadline is left to finish on its own (its requests are
            # bounded by the same limit); the group does not wait for it.
            pool.shutdown(wait=False, cancel_futures=True)
        results: dict[str, Any] = {}
        for name, future in zip(names, futures, strict=True):
            with gate:
                if not future.done() or future.cancelled():
                    abandoned.add(name)
                    err = late(name)
                    self._record(name, err)
                    results[name] = err
                    continue
            results[name] = future.result()
        return results

    def _dedupe(self, results: dict[str, Any]) -> dict[str, Any]:
        """Drop the answers of profiles that reach a cluster an earlier profile of the group
        already answered for (same :attr:`Cluster.identity`); remember them in
        :attr:`duplicates`."""
        seen: dict[str, str] = {}
        kept: dict[str, Any] = {}
        for profile, result in results.items():
            ident = getattr(self._clusters[profile], "identity", None)
            if isinstance(result, BaseException) or not isinstance(ident, str):
                kept[profile] = result
                continue
            if ident in seen:
                self.duplicates[profile] = seen[ident]
                continue
            seen[ident] = profile
            self.duplicates.pop(profile, None)
            kept[profile] = result
        return kept

    def _gather(
        self,
        frame: str,
        call: Callable[[Cluster], pd.DataFrame],
        placeholder: bool = False,
        **spec: bool,
    ) -> Any:
        import pandas as pd

        results = self._dedupe(self.map(call))
        rejected = [r for r in results.values() if isinstance(r, InvalidInputError)]
        if rejected and len(rejected) == len(results):
            # Every cluster refused the arguments: the input is wrong, not a cluster.
            raise rejected[0]
        good: list[pd.DataFrame] = []
        for profile, result in results.items():
            if isinstance(result, BaseException):
                if not isinstance(result, PVEError):
                    raise result
                host = getattr(self._clusters[profile], "host", "?")
                warnings.warn(
                    PartialResultWarning(
                        f"profile {profile!r} ({host}) is missing from this {frame} frame: "
                        f"{result}",
                        profile=profile,
                        frame=frame,
                        reason=result.message,
                    ),
                    stacklevel=3,
                )
                if placeholder:
                    # One row saying "this profile is out", so an outage shows in the frame.
                    good.append(
                        frames.apply_dtypes(
                            pd.DataFrame(
                                [{"profile": profile, "status": "unknown", "online": False}],
                                columns=frames.columns(frame),
                            ),
                            frame,
                        )
                    )
            elif len(result):
                good.append(result)
        if not good:
            return frames.empty_frame(frame, **spec)
        df = pd.concat(good, ignore_index=True)
        return frames.apply_dtypes(df, frame)

    # -- reads --------------------------------------------------------------------------------

    def nodes(self, **kwargs: Any) -> pd.DataFrame:
        """Nodes of every cluster (see :meth:`pvekit.Cluster.nodes`); a profile whose read
        failed keeps one placeholder row (``node`` null, ``status`` unknown, ``online``
        False), so an outage shows in the frame too."""
        return self._gather("nodes", lambda c: c.nodes(**kwargs), placeholder=True)

    def guests(self, details: bool = False, ips: bool = False, **kwargs: Any) -> pd.DataFrame:
        """Guests of every cluster (see :meth:`pvekit.Cluster.guests`); key (profile, vmid)."""
        return self._gather(
            "guests",
            lambda c: c.guests(details=details, ips=ips, **kwargs),
            details=details,
            ips=ips,
        )

    def storage(self, unique: bool = False, **kwargs: Any) -> pd.DataFrame:
        """Storages of every cluster; ``unique=True`` dedups shared storage per cluster only."""
        return self._gather("storage", lambda c: c.storage(unique=unique, **kwargs))

    def tasks(
        self, running: bool | None = None, since: Any = None, limit: int = 500, **kwargs: Any
    ) -> pd.DataFrame:
        """Recent tasks of every cluster, newest first (``limit`` applies per cluster)."""
        df = self._gather(
            "tasks", lambda c: c.tasks(running=running, since=since, limit=limit, **kwargs)
        )
        return df.sort_values("starttime", ascending=False, kind="stable").reset_index(drop=True)

    def backups(self, vmid: int | str | None = None, **kwargs: Any) -> pd.DataFrame:
        """Backups of every cluster (a VMID matches in each cluster that has it)."""
        if vmid is not None:
            parse_vmid(vmid)
        return self._gather("backups", lambda c: c.backups(vmid=vmid, **kwargs))

    def snapshots(self, vmid: int | str | None = None, **kwargs: Any) -> pd.DataFrame:
        """Snapshots of every cluster (a VMID matches in each cluster that has it)."""
        if vmid is not None:
            parse_vmid(vmid)
        return self._gather("snapshots", lambda c: c.snapshots(vmid=vmid, **kwargs))

    def metrics(
        self,
        kind: str,
        targets: Any = None,
        timeframe: str = "day",
        cf: str = "AVERAGE",
        **kwargs: Any,
    ) -> pd.DataFrame:
        """RRD metrics of every cluster; explicit ``targets`` must exist in each cluster."""
        from ._cluster import check_metrics_args

        check_metrics_args(kind, timeframe, cf)
        return self._gather(
            "metrics",
            lambda c: c.metrics(kind, targets=targets, timeframe=timeframe, cf=cf, **kwargs),
        )

    def summary(self, **kwargs: Any) -> pd.DataFrame:
        """One summary row per cluster that answered."""
        return self._gather("summary", lambda c: c.summary(**kwargs))

    def ha_rules(self, **kwargs: Any) -> pd.DataFrame:
        """HA rules of every cluster (see :meth:`pvekit.Cluster.ha_rules`)."""
        import pandas as pd

        from ._ha import HA_RULE_COLUMNS, ha_rules_frame

        good = []
        for profile, result in self.map(lambda c: c.ha_rules(**kwargs)).items():
            if isinstance(result, BaseException):
                if not isinstance(result, PVEError):
                    raise result
                warnings.warn(
                    PartialResultWarning(
                        f"profile {profile!r} is missing from this ha_rules frame: {result}",
                        profile=profile,
                        frame="ha_rules",
                        reason=result.message,
                    ),
                    stacklevel=2,
                )
            elif len(result):
                good.append(result)
        if not good:
            return ha_rules_frame("")
        return pd.concat(good, ignore_index=True)[list(HA_RULE_COLUMNS)]

    # -- handles ------------------------------------------------------------------------------

    def guest(self, vmid: int | str, profile: str | None = None) -> Guest:
        """A :class:`~pvekit.Guest` handle; ``profile`` picks the cluster.

        Without ``profile`` the VMID is looked up in every cluster: none raises
        :class:`~pvekit.NotFoundError`, several raise :class:`~pvekit.AmbiguousGuestError`
        naming the profiles (pass ``profile=`` to choose).
        """
        number = parse_vmid(vmid)
        if profile is not None:
            return self[profile].guest(number)
        guests = self.guests()
        hits = sorted(set(guests.loc[guests["vmid"] == number, "profile"].astype(str)))
        if not hits:
            raise NotFoundError(
                f"guest {number} is in none of the clusters that answered "
                f"({', '.join(self._answered()) or 'none'})"
            )
        if len(hits) > 1:
            raise AmbiguousGuestError(
                f"guest {number} exists in several clusters: {', '.join(hits)}; "
                "pass profile= to choose",
                profiles=hits,
            )
        from ._guest import Guest

        row = guests[(guests["vmid"] == number) & (guests["profile"] == hits[0])].iloc[0]
        # The table already says where the guest is: spare the handle a lookup request.
        return Guest(self._clusters[hits[0]], number, node=str(row["node"]), type=str(row["type"]))

    def task(self, upid: str, profile: str) -> Task:
        """A :class:`~pvekit.Task` handle for a UPID of cluster ``profile`` (node names
        repeat across clusters, so the profile is required)."""
        return self[profile].task(upid)

    def _answered(self) -> list[str]:
        return [p for p, s in self._states.items() if s.state == "connected"]

    # -- connection state ---------------------------------------------------------------------

    def status(self) -> pd.DataFrame:
        """One row per profile: host, connected, state (pending, connected, failed, closed),
        last error and when it was checked (columns: ``frames.COLUMNS["group_status"]``)."""
        with self._lock:
            rows = [
                {
                    "profile": profile,
                    "host": getattr(self._clusters[profile], "host", None),
                    "connected": state.state == "connected",
                    "state": state.state,
                    "error": state.error,
                    "checked_at": state.checked_at,
                }
                for profile, state in self._states.items()
            ]
        return frames.group_status_frame(rows)

    def reconnect(self, *, all: bool = False) -> pd.DataFrame:
        """Retry the failed (and never-checked) profiles with a fresh client; return
        :meth:`status`. ``all=True`` rebuilds every open profile."""
        from ._cluster import Cluster

        names = [
            p
            for p, s in self._states.items()
            if s.state != "closed" and (all or s.state in ("failed", "pending"))
        ]

        def redo(name: str) -> Cluster:
            old = self._clusters[name]
            new = Cluster(old.settings, logger=old.log)
            try:
                new.check()
            except BaseException:
                new.close()
                raise
            return new

        def attempt(name: str) -> None:
            try:
                new = redo(name)
            except PVEError as err:
                self._record(name, err)
                with self._lock:
                    # A failed retry means the cluster is down whatever the error class.
                    self._states[name].state = "failed"
                return
            old = self._clusters[name]
            self._clusters[name] = new
            old.close()
            self._record(name, None)

        if names:
            with ThreadPoolExecutor(max_workers=len(names)) as pool:
                list(pool.map(attempt, names))
        return self.status()

    def close(self) -> None:
        """Close every cluster's client; later reads skip them."""
        for name, cluster in self._clusters.items():
            try:
                cluster.close()
            finally:
                with self._lock:
                    state = self._states[name]
                    state.state, state.checked_at = "closed", time.time()
