"""One Proxmox VE cluster: the API client plus inventory reads returning pandas DataFrames.

:class:`Cluster` is what :func:`pvekit.connect` returns. It holds an
:class:`~pvekit._api.ApiClient` (``cluster.api``, whose client surface it hands through) and adds
the read methods of the inventory (``nodes()``, ``guests()``, ``storage()``, ``tasks()``,
``backups()``, ``snapshots()``, ``metrics()``, ``summary()``), each a tidy, typed DataFrame
whose columns are documented in :data:`pvekit.frames.COLUMNS`, and handles for actions:
``guest(vmid)`` and ``task(upid)``.

Reads go through the client's cache (TTLs per endpoint); every method takes ``fresh=True``
to bypass it. The basic tables come from one ``/cluster/resources`` request; enrichment that
needs one request per guest or node goes through :meth:`Cluster.get_many` (one batch on the
calling thread where the lean path applies, the rest on the cluster's fan-out threads, at most
``max_workers`` in flight), shows a progress bar in notebooks, and records per-item failures
instead of failing the whole table.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from . import _progress, frames
from ._api import ApiClient, shape_problem
from ._errors import APIError, InvalidInputError, PVEError
from ._fanout import FanOut, current_share
from ._format import parse_vmid
from ._parse import parse_agent
from ._transport import current_limit, time_limit

if TYPE_CHECKING:  # pragma: no cover
    import logging

    import pandas as pd
    import requests

    from ._auth import TicketAuth, TokenAuth
    from ._config import Profile
    from ._guest import Guest
    from ._node import Node
    from ._tasks import Task

__all__ = ["Cluster", "IncompleteDataWarning"]

T = TypeVar("T")
R = TypeVar("R")

TIMEFRAMES = ("hour", "day", "week", "month", "year", "decade")
CONSOLIDATIONS = ("AVERAGE", "MAX")
METRIC_KINDS = ("node", "guest", "storage")
DEFAULT_TASK_LIMIT = 500
_FAN_LOCK = threading.Lock()  # creates a cluster's fan-out executor once


class IncompleteDataWarning(UserWarning):
    """Some rows of a frame could not be read (a node down, a request failed); the warning
    names what is missing and why.

    ``profile``, ``what`` (which read) and ``failures`` (what failed -> why) say it for
    programs; the text is for people and may change.
    """

    def __init__(
        self,
        message: str,
        *,
        profile: str | None = None,
        what: str | None = None,
        failures: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.profile = profile
        self.what = what
        self.failures = dict(failures or {})


def _path(*segments: Any) -> str:
    return "/" + "/".join(quote(str(s), safe="") for s in segments)


def _epoch(value: Any) -> int:
    """``since`` as epoch seconds: accepts int/float seconds, datetime, pandas Timestamp or an
    ISO string; naive times are taken as UTC."""
    if isinstance(value, bool):
        raise InvalidInputError(f"invalid since={value!r}: expected a time")
    if isinstance(value, int | float):
        if value < 0:
            raise InvalidInputError(f"invalid since={value!r}: negative epoch seconds")
        return int(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInputError(
                f"invalid since={value!r}: expected an ISO time like '2024-05-01T12:00'"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp())
    raise InvalidInputError(
        f"invalid since={value!r}: expected epoch seconds, a datetime or an ISO string"
    )


def check_metrics_args(kind: str, timeframe: str, cf: str) -> None:
    """Refuse an unknown metrics ``kind``, ``timeframe`` or ``cf`` before any request."""
    if kind not in METRIC_KINDS:
        raise InvalidInputError(f"invalid kind={kind!r}: expected one of {METRIC_KINDS}")
    if timeframe not in TIMEFRAMES:
        raise InvalidInputError(f"invalid timeframe={timeframe!r}: expected one of {TIMEFRAMES}")
    if cf not in CONSOLIDATIONS:
        raise InvalidInputError(f"invalid cf={cf!r}: expected one of {CONSOLIDATIONS}")


class Cluster:
    """A connected Proxmox VE cluster with inventory reads as DataFrames.

    Build one with :func:`pvekit.connect`. Every frame has the profile name in its first
    column so frames of several clusters concatenate cleanly. ``max_workers`` bounds the
    requests this cluster runs at once for per-guest or per-node enrichment.

    The HTTP layer is its own object, :attr:`api` (an :class:`~pvekit._api.ApiClient`): a
    Cluster holds it and hands the client surface through (``get/post/put/delete``,
    ``invalidate``, ``memo_token``, ``check``, ``close``, ``profile``, ``host``...), so a
    Cluster is used wherever a client is, and the client knows nothing of frames.
    """

    max_workers: int = 16

    def __init__(
        self,
        profile: Profile | ApiClient,
        *,
        session: requests.Session | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        """``Cluster(profile)`` builds its client (``session``/``logger`` as for
        :class:`~pvekit._api.ApiClient`); ``Cluster(client)`` wraps a client already built."""
        if isinstance(profile, ApiClient):
            if session is not None or logger is not None:
                raise InvalidInputError(
                    "Cluster(client) takes the client as it is: pass session= and logger= "
                    "to the ApiClient instead"
                )
            self.api: ApiClient = profile
        else:
            self.api = ApiClient(profile, session=session, logger=logger)

    # -- the client surface, delegated to self.api -------------------------------------------

    @property
    def profile(self) -> str:
        """The profile name (``"default"`` for an ad-hoc ``connect(host=...)``)."""
        return self.api.profile

    @property
    def profiles(self) -> list[str]:
        """``[profile]``: the same call as :attr:`pvekit.Group.profiles`."""
        return [self.api.profile]

    @property
    def clusters(self) -> dict[str, Cluster]:
        """``{profile: self}``: the same call as :attr:`pvekit.Group.clusters`."""
        return {self.api.profile: self}

    @property
    def host(self) -> str:
        return self.api.host

    @property
    def base_url(self) -> str:
        return self.api.base_url

    @property
    def user(self) -> str:
        return self.api.user

    @property
    def is_token(self) -> bool:
        return self.api.is_token

    @property
    def settings(self) -> Profile:
        """The :class:`~pvekit.Profile` this cluster was connected with."""
        return self.api.settings

    @property
    def session(self) -> requests.Session:
        return self.api.session

    @property
    def auth(self) -> TokenAuth | TicketAuth:
        return self.api.auth

    @property
    def log(self) -> logging.Logger:
        return self.api.log

    def post(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """POST ``path`` (see :meth:`ApiClient.post`: never retried, except after a 401)."""
        return self.api.post(path, params, **kwargs)

    def put(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """PUT ``path`` (see :meth:`ApiClient.put`)."""
        return self.api.put(path, params, **kwargs)

    def delete(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """DELETE ``path`` (see :meth:`ApiClient.delete`)."""
        return self.api.delete(path, params, **kwargs)

    def invalidate(self, *prefixes: str, exact: Iterable[str] = ()) -> None:
        """Drop cached GETs (see :meth:`ApiClient.invalidate`)."""
        self.api.invalidate(*prefixes, exact=exact)

    def memo_token(self, path: str, params: Mapping[str, Any] | None = None) -> object | None:
        """Identity of the in-memory answer to ``GET path`` (see :meth:`ApiClient.memo_token`)."""
        return self.api.memo_token(path, params)

    def check(self) -> Any:
        """Log in (password) and read ``/version`` fresh; the answer also fixes
        :attr:`pve_version`, so write validation costs no request of its own."""
        body = self.api.check()
        self._note_release(body)
        return body

    def close(self) -> None:
        """Release the HTTP connections, the cache file and the fan-out threads."""
        self._close_fan_out()
        self.api.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.api.settings
        warning = " INSECURE: server identity not verified" if s.insecure else ""
        return (
            f"<{type(self).__name__} {self.profile!r} {s.base_url} user={self.user!r} "
            f"auth={s.auth_kind} tls={s.tls}{warning}>"
        )

    @property
    def pve_version(self) -> str:
        """The server's release (``"8.4.1"``), read once from ``/version`` (at the connect
        check, else at first use) and kept for the life of this object: an upgraded server is
        seen after :meth:`pvekit.Group.reconnect` or a new :func:`pvekit.connect`."""
        known = self.__dict__.get("_release")
        if known is None:
            self._note_release(self.get("/version"))
            known = self.__dict__.get("_release", "")
        return str(known)

    def _note_release(self, body: Any) -> None:
        if isinstance(body, Mapping):
            self.__dict__["_release"] = str(body.get("version") or body.get("release") or "")

    # -- handles -------------------------------------------------------------------------------

    def guest(self, vmid: int | str, profile: str | None = None) -> Guest:
        """Return a :class:`~pvekit.Guest` handle for ``vmid`` on this cluster.

        ``profile`` exists for signature parity with :meth:`pvekit.Group.guest`; on a single
        cluster it must be ``None`` or this cluster's profile name.
        """
        if profile is not None and profile != self.profile:
            raise InvalidInputError(
                f"profile {profile!r} does not match this cluster's profile {self.profile!r}"
            )
        from ._guest import Guest

        return Guest(self, vmid)

    def task(self, upid: str) -> Task:
        """Return a :class:`~pvekit.Task` handle for a UPID of this cluster."""
        from ._tasks import Task

        return Task(self, upid)

    def next_vmid(self, vmid: int | str | None = None) -> int:
        """The next free VMID (``GET /cluster/nextid``); with ``vmid``, that VMID if it is
        free, else :class:`~pvekit.InvalidInputError` ("already in use")."""
        from ._errors import ParameterError

        if vmid is None:
            return int(self.get("/cluster/nextid", fresh=True))
        number = parse_vmid(vmid)
        try:
            return int(self.get("/cluster/nextid", {"vmid": number}, fresh=True))
        except ParameterError:
            raise InvalidInputError(
                f"VMID {number} is already in use", profile=self.profile
            ) from None

    def node(self, name: str) -> Node:
        """Return a :class:`~pvekit.Node` handle for node ``name`` of this cluster (no request
        is sent until a method of the handle is called)."""
        from ._node import Node

        return Node(self, name)

    # -- helpers -------------------------------------------------------------------------------

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        fresh: bool = False,
        **kwargs: Any,
    ) -> Any:
        """GET ``path`` (see :meth:`ApiClient.get`); an answer whose shape cannot be what
        the endpoint returns (``{"data": 5}`` for a list) raises :class:`~pvekit.APIError`
        naming the endpoint, before any table is built from it."""
        data = self.api.get(path, params, fresh=fresh, **kwargs)
        problem = shape_problem(path, data)
        if problem is not None:
            raise APIError(
                f"malformed answer: {problem}", profile=self.profile, method="GET", path=path
            )
        return data

    def resources(self, *, fresh: bool = False) -> list[dict[str, Any]]:
        """The raw rows of ``GET /cluster/resources`` (nodes, guests, storages, pools...).

        One request answers every inventory table, so the frames built from it share one
        cached answer.
        """
        data = self.get("/cluster/resources", fresh=fresh)
        rows = [row for row in data or [] if isinstance(row, dict)]
        self._note_identity(rows)
        return rows

    @property
    def identity(self) -> str | None:
        """A fingerprint of the cluster behind this profile, from its last
        ``/cluster/resources`` answer (``None`` before any read): node names with their
        CPU count and memory bytes, storage IDs, and guests' VMIDs and names. Two profiles
        with the same identity reach the same cluster; a Group reads such a cluster once."""
        value = self.__dict__.get("_identity")
        return value if isinstance(value, str) else None

    def _note_identity(self, rows: Iterable[Mapping[str, Any]]) -> None:
        import hashlib

        nodes, storages, guests = set(), set(), set()
        for r in rows:
            kind = r.get("type")
            if kind == "node":
                nodes.add((str(r.get("node")), str(r.get("maxcpu")), str(r.get("maxmem"))))
            elif kind == "storage":
                storages.add(str(r.get("storage")))
            elif kind in ("qemu", "lxc"):
                guests.add((str(r.get("vmid")), str(r.get("name"))))
        if nodes:
            text = repr((sorted(nodes), sorted(storages), sorted(guests)))
            self.__dict__["_identity"] = hashlib.sha256(text.encode()).hexdigest()

    def _fan_out(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        desc: str,
        progress: bool | None,
    ) -> list[R | PVEError]:
        """Run ``fn`` on every item with at most ``max_workers`` at once; keep order.

        A :class:`PVEError` becomes the item's result so one failure never sinks the rest;
        any other exception is a bug and propagates.
        """
        if not items:
            return []
        how = _progress.mode(progress)
        started = time.monotonic()
        from tqdm.auto import tqdm

        with tqdm(
            total=len(items),
            desc=f"{self.profile}: {desc}",
            disable=how != "bar",
            leave=False,
        ) as bar:
            results = self._run_fan(fn, items, done=lambda: bar.update(1))
        if how == "log":
            self._log_progress(desc, len(items), started, results)
        return results

    def _run_fan(
        self, fn: Callable[[T], R], items: Sequence[T], *, done: Callable[[], None] | None
    ) -> list[R | PVEError]:
        """``fn`` of every item on this cluster's fan-out (a PVEError as the item's result)."""
        limit = current_limit()  # a caller's deadline (a group's) also binds the workers

        def guarded(item: T) -> R | PVEError:
            try:
                with time_limit(limit):
                    return fn(item)
            except PVEError as err:
                return err

        workers = max(1, min(self.max_workers, len(items)))
        share = current_share()  # a group's even share of its requests in flight
        if share is not None:
            workers = max(1, min(workers, share))
        return self._fan_pool().run(
            guarded, items, limit=workers, size=max(1, self.max_workers), done=done
        )

    def _log_progress(self, desc: str, count: int, started: float, results: list[Any]) -> None:
        failed = sum(isinstance(r, PVEError) for r in results)
        _progress.LOGGER.info(
            "%s: %s: %d requests in %.1f s%s",
            self.profile,
            desc,
            count,
            time.monotonic() - started,
            f", {failed} failed" if failed else "",
        )

    def get_many(
        self,
        paths: Sequence[str],
        params: Mapping[str, Any] | None = None,
        *,
        fresh: bool = False,
    ) -> list[Any]:
        """``[get(p, params, fresh=fresh) for p in paths]`` in one batch where it can (see
        :meth:`ApiClient.get_many`), a :class:`~pvekit.PVEError` as the value of its path
        instead of raised (a malformed answer too, as :meth:`get` raises it). At most
        ``max_workers`` requests are in flight at once."""
        return self._get_many(paths, params, fresh=fresh, desc="read", progress=False)

    def _get_many(
        self,
        paths: Sequence[str],
        params: Mapping[str, Any] | None = None,
        *,
        fresh: bool,
        desc: str,
        progress: bool | None,
    ) -> list[Any]:
        """:meth:`get_many` with a progress bar (or log line) over the reads.

        The batch runs on the calling thread and costs no thread; only the reads it cannot
        carry (persisted, an injected session) or must try again use the fan-out threads.
        """
        if not paths:
            return []
        how = _progress.mode(progress)
        started = time.monotonic()
        total = len(paths)
        from tqdm.auto import tqdm

        with tqdm(
            total=total, desc=f"{self.profile}: {desc}", disable=how != "bar", leave=False
        ) as bar:

            def fan(fn: Callable[[int], Any], items: list[int]) -> list[Any]:
                bar.update(total - len(items) - bar.n)  # answered by the memory or the batch
                return self._run_fan(fn, items, done=lambda: bar.update(1))

            results = self.api.get_many(
                paths, params, fresh=fresh, in_flight=max(1, self.max_workers), fan=fan
            )
            bar.update(total - bar.n)
        for i, (path, data) in enumerate(zip(paths, results, strict=True)):
            if isinstance(data, PVEError):
                continue
            problem = shape_problem(path, data)
            if problem is not None:
                results[i] = APIError(
                    f"malformed answer: {problem}", profile=self.profile, method="GET", path=path
                )
        if how == "log":
            self._log_progress(desc, total, started, results)
        return results

    def _fan_pool(self) -> FanOut:
        """This cluster's long-lived fan-out executor, created on first use."""
        pool: FanOut | None = self.__dict__.get("_fan")
        if pool is None:
            with _FAN_LOCK:
                pool = self.__dict__.get("_fan")
                if pool is None:
                    pool = self.__dict__["_fan"] = FanOut(str(getattr(self, "profile", "")))
        return pool

    def _close_fan_out(self) -> None:
        """Stop this cluster's fan-out threads (``close()`` calls it)."""
        pool: FanOut | None = self.__dict__.get("_fan")
        if pool is not None:
            pool.close()

    def _gather(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        key: Callable[[T], str],
        desc: str,
        progress: bool | None,
        failed: dict[str, str] | None = None,
    ) -> list[tuple[T, R]]:
        """:meth:`_fan_out`, then one warning naming the failed items (by ``key``) together
        with those already in ``failed``; returns the items that answered, with their answers.
        """
        results = self._fan_out(fn, items, desc=desc, progress=progress)
        return self._answered(items, results, key=key, desc=desc, failed=failed)

    def _gather_paths(
        self,
        items: Sequence[T],
        path: Callable[[T], str],
        params: Mapping[str, Any] | None = None,
        *,
        fresh: bool,
        key: Callable[[T], str],
        desc: str,
        progress: bool | None,
        failed: dict[str, str] | None = None,
    ) -> list[tuple[T, Any]]:
        """:meth:`_gather` of ``GET path(item)`` for every item, in one :meth:`get_many`."""
        results = self._get_many(
            [path(item) for item in items], params, fresh=fresh, desc=desc, progress=progress
        )
        return self._answered(items, results, key=key, desc=desc, failed=failed)

    def _answered(
        self,
        items: Sequence[T],
        results: Sequence[Any],
        *,
        key: Callable[[T], str],
        desc: str,
        failed: dict[str, str] | None,
    ) -> list[tuple[T, Any]]:
        """The items whose result is not a PVEError, with it; one warning for the others
        (by ``key``) together with those already in ``failed``."""
        failed = {} if failed is None else failed
        answered: list[tuple[T, Any]] = []
        for item, result in zip(items, results, strict=True):
            if isinstance(result, PVEError):
                failed[key(item)] = result.message
            else:
                answered.append((item, result))
        self._warn(desc, failed)
        return answered

    def _get_all(self, paths: Sequence[str], fresh: bool) -> list[Any]:
        """GET several cluster-wide paths at once (one round trip of latency, not several);
        any failure raises, as these answers are all needed."""
        results = self._get_many(list(paths), fresh=fresh, desc="read", progress=False)
        for result in results:
            if isinstance(result, PVEError):
                raise result
        return results

    def _warn(self, what: str, failures: Mapping[str, str]) -> None:
        if not failures:
            return
        listed = "; ".join(f"{k}: {v}" for k, v in list(failures.items())[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        warnings.warn(
            IncompleteDataWarning(
                f"profile {self.profile!r}: {what} incomplete, {len(failures)} failed: "
                f"{listed}{more}",
                profile=self.profile,
                what=what,
                failures=failures,
            ),
            stacklevel=5,  # _warn <- _answered <- _gather(_paths) <- the public read <- the caller
        )

    @staticmethod
    def _online_nodes(resources: Iterable[Mapping[str, Any]]) -> list[str]:
        return sorted(
            str(r["node"])
            for r in resources
            if r.get("type") == "node" and r.get("status") == "online" and r.get("node")
        )

    # -- inventory -----------------------------------------------------------------------------

    def nodes(self, *, fresh: bool = False, progress: bool | None = None) -> pd.DataFrame:
        """Nodes as a DataFrame (columns: ``frames.COLUMNS["nodes"]``); offline nodes stay.

        Requests: ``/cluster/resources``, ``/cluster/status`` and ``/nodes/{node}/status`` of
        each online node (concurrently) for swap, load, versions and kernel.
        """
        reused = None if fresh else self.api.memo_frame(("nodes",))
        if reused is not None:
            return reused
        paths = ["/cluster/resources", "/cluster/status"]
        resources, status = self._get_all(paths, fresh)
        inputs = {p: self.memo_token(p) for p in paths}
        resources = [r for r in resources or [] if isinstance(r, dict)]
        self._note_identity(resources)
        online = self._online_nodes(resources)
        node_status = dict(
            self._gather_paths(
                online,
                lambda n: _path("nodes", n, "status"),
                fresh=fresh,
                key=str,
                desc="node status",
                progress=progress,
            )
        )
        for n in online:
            inputs[_path("nodes", n, "status")] = self.memo_token(_path("nodes", n, "status"))
        df = frames.nodes_frame(self.profile, resources, status, node_status)
        self.api.keep_frame(("nodes",), df, inputs)
        return df

    def guests(
        self,
        details: bool = False,
        ips: bool = False,
        *,
        fresh: bool = False,
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """QEMU VMs and LXC containers as a DataFrame, sorted by VMID.

        The basic table is one ``/cluster/resources`` request. ``details=True`` adds each
        guest's config (one ``.../config`` request per guest); ``ips=True`` adds addresses
        (QEMU guest agent ``network-get-interfaces`` filtered by configured MACs, LXC
        ``/interfaces``, else static ``ip=`` in the config) and agent file systems. Those
        requests run concurrently (at most ``max_workers`` at once) with a progress bar
        (``progress=None``: only when interactive). A guest whose config or agent cannot be
        read keeps its row; the ``error`` column says why.
        """
        key = ("guests", details, ips)
        reused = None if fresh or ips else self.api.memo_frame(key)
        if reused is not None:
            return reused
        resources = self.resources(fresh=fresh)
        # Taken at once: every write through this client drops /cluster/resources, so while
        # this token stays current nothing this table was built from has been written.
        inputs = {"/cluster/resources": self.memo_token("/cluster/resources")}
        if not (details or ips):
            df = frames.guests_frame(self.profile, resources)
            self.api.keep_frame(key, df, inputs)
            return df
        online = set(self._online_nodes(resources))
        guests = [
            r for r in resources if r.get("type") in ("qemu", "lxc") and r.get("vmid") is not None
        ]

        results = self._walk(
            [self._enrich(row, online, ips=ips) for row in guests],
            fresh=fresh,
            desc="guest details",
            progress=progress,
        )
        configs: dict[int, Any] = {}
        ip_data: dict[int, dict[str, Any]] = {}
        errors: dict[int, str] = {}
        for row, result in zip(guests, results, strict=True):
            vmid = frames._int(row.get("vmid"))
            if vmid is None:
                continue
            if isinstance(result, PVEError):
                errors[vmid] = result.message
                continue
            config, data, problems = result
            if config is not None:
                configs[vmid] = config
            ip_data[vmid] = data
            if problems:
                errors[vmid] = "; ".join(problems)
        df = frames.guests_frame(
            self.profile,
            resources,
            configs=configs,
            ip_data=ip_data,
            errors=errors,
            details=details,
            ips=ips,
        )
        if not ips:  # agent answers come and go; only config-based tables are kept
            for r in guests:
                if frames._int(r.get("vmid")) in configs:
                    path = _path("nodes", r.get("node"), r.get("type"), r.get("vmid"), "config")
                    inputs[path] = self.memo_token(path)
            self.api.keep_frame(key, df, inputs)
        return df

    def guests_from_nodes(
        self, *, fresh: bool = False, progress: bool | None = None
    ) -> pd.DataFrame:
        """The basic ``guests()`` table built from each online node's own lists
        (``/nodes`` then ``/nodes/{node}/qemu`` and ``/lxc``), without ``/cluster/resources``:
        the seed's recovery path when that index is degraded (500s, missing guests). Guests of
        nodes that are down are missing (a warning names them); ``pool`` and ``ha_state``
        are not in node lists."""
        import pandas as pd

        listed = self.get("/nodes", fresh=fresh)
        rows = [r for r in listed or [] if isinstance(r, dict) and r.get("node")]
        online = sorted(str(r["node"]) for r in rows if r.get("status") == "online")
        failed = {
            str(r["node"]): f"node is {r.get('status') or 'unknown'}"
            for r in rows
            if r.get("status") != "online"
        }
        answered = self._gather(
            lambda n: self.node(n).guests(fresh=fresh),
            online,
            key=str,
            desc="node guest lists",
            progress=progress,
            failed=failed,
        )
        parts = [df for _, df in answered if len(df)]
        if not parts:
            return frames.empty_frame("guests")
        df = pd.concat(parts, ignore_index=True).sort_values("vmid", kind="stable")
        return frames.apply_dtypes(df.reset_index(drop=True), "guests")

    def _walk(
        self,
        steps: list[Generator[str, Any, R]],
        *,
        fresh: bool,
        desc: str,
        progress: bool | None,
    ) -> list[R]:
        """Run per-item read sequences side by side: each generator yields the path it
        needs next and is sent its answer (a PVEError as a value); the paths all the
        sequences ask for at one step go in one :meth:`get_many`. Returns each result."""
        results: list[Any] = [None] * len(steps)
        pending: list[tuple[int, str]] = []

        def advance(i: int, answer: Any, first: bool) -> None:
            try:
                want = next(steps[i]) if first else steps[i].send(answer)
            except StopIteration as stop:
                results[i] = stop.value
            else:
                pending.append((i, want))

        for i in range(len(steps)):
            advance(i, None, True)
        phase = 0
        while pending:
            asked, pending = pending, []
            answers = self._get_many(
                [p for _, p in asked],
                fresh=fresh,
                desc=desc if phase == 0 else f"{desc} ({phase + 1})",
                progress=progress,
            )
            phase += 1
            for (i, _), answer in zip(asked, answers, strict=True):
                advance(i, answer, False)
        return results

    def _enrich(
        self, row: Mapping[str, Any], online: set[str], *, ips: bool
    ) -> Generator[str, Any, tuple[Any, dict[str, Any], list[str]]]:
        """Config and address data of one guest: (config or None, ip data, problems).

        Yields each path it reads and is sent the answer (a PVEError as a value), so the
        reads of every guest's step go in one batch (see :meth:`_walk`)."""
        node, gtype, vmid = str(row.get("node")), str(row.get("type")), row.get("vmid")
        if node not in online:
            return None, {}, [f"node {node!r} is not online"]
        base = _path("nodes", node, gtype, vmid)
        problems: list[str] = []
        config: Any = yield base + "/config"
        if isinstance(config, PVEError):
            problems.append(f"config: {config.message}")
            config = None
        data: dict[str, Any] = {}
        if not ips or row.get("status") != "running":
            return config, data, problems
        if gtype == "lxc":
            answer = yield base + "/interfaces"
            if isinstance(answer, PVEError):
                problems.append(f"interfaces: {answer.message}")
            else:
                data["lxc_interfaces"] = answer
            return config, data, problems
        try:
            agent_on = parse_agent((config or {}).get("agent")) if config is not None else True
        except InvalidInputError:
            agent_on = True  # unreadable setting: ask the agent, its answer decides
        if not agent_on:
            return config, data, problems
        answer = yield base + "/agent/network-get-interfaces"
        if isinstance(answer, PVEError):
            # A stopped or absent agent makes the fsinfo call fail the same way: skip it.
            problems.append(f"guest agent: {answer.message}")
            return config, data, problems
        data["agent_interfaces"] = answer
        answer = yield base + "/agent/get-fsinfo"
        if isinstance(answer, PVEError):
            problems.append(f"guest agent fsinfo: {answer.message}")
        else:
            data["fsinfo"] = answer
        return config, data, problems

    def storage(
        self, unique: bool = False, *, fresh: bool = False, progress: bool | None = None
    ) -> pd.DataFrame:
        """Storages as a DataFrame, one row per (node, storage).

        ``unique=True`` counts a shared storage once for this cluster (its ``node`` is null).
        Rows of status ``unknown`` (storage offline, node down) are kept. Requests:
        ``/cluster/resources`` plus ``/nodes/{node}/storage`` per online node (``active``,
        ``enabled``, ``avail``).
        """
        key = ("storage", unique)
        reused = None if fresh else self.api.memo_frame(key)
        if reused is not None:
            return reused
        resources = self.resources(fresh=fresh)
        inputs = {"/cluster/resources": self.memo_token("/cluster/resources")}
        online = self._online_nodes(resources)
        per_node = dict(
            self._gather_paths(
                online,
                lambda n: _path("nodes", n, "storage"),
                fresh=fresh,
                key=str,
                desc="storage",
                progress=progress,
            )
        )
        for n in online:
            inputs[_path("nodes", n, "storage")] = self.memo_token(_path("nodes", n, "storage"))
        df = frames.storage_frame(self.profile, resources, per_node, unique=unique)
        self.api.keep_frame(key, df, inputs)
        return df

    def tasks(
        self,
        running: bool | None = None,
        since: Any = None,
        limit: int = DEFAULT_TASK_LIMIT,
        *,
        fresh: bool = False,
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """Recent tasks of every online node, newest first, at most ``limit`` rows.

        ``running=True`` lists only active tasks, ``False`` only finished ones, ``None``
        both. ``since`` (epoch seconds, datetime, ISO string) keeps tasks started at or after
        it. Requests: ``/nodes/{node}/tasks`` per online node with ``limit``/``since``/
        ``source``.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise InvalidInputError(f"invalid limit={limit!r}: expected a positive int")
        if running not in (None, True, False):
            raise InvalidInputError(f"invalid running={running!r}: expected True, False or None")
        since_epoch = None if since is None else _epoch(since)
        resources = self.resources(fresh=fresh)
        online = self._online_nodes(resources)
        params: dict[str, Any] = {
            "limit": limit,
            "since": since_epoch,
            "source": "active" if running else "all",
        }
        answered = self._gather_paths(
            online,
            lambda n: _path("nodes", n, "tasks"),
            params,
            fresh=fresh,
            key=str,
            desc="tasks",
            progress=progress,
        )
        rows: list[Any] = []
        for _, result in answered:
            if isinstance(result, list):
                rows.extend(r for r in result if isinstance(r, dict))
        df = frames.tasks_frame(self.profile, rows)
        if running is not None:
            df = df[df["running"] == running]
        if since_epoch is not None:
            import pandas as pd

            df = df[df["starttime"] >= pd.Timestamp(since_epoch, unit="s", tz="UTC")]
        return df.head(limit).reset_index(drop=True)

    def backups(
        self, vmid: int | str | None = None, *, fresh: bool = False, progress: bool | None = None
    ) -> pd.DataFrame:
        """Backup archives (vzdump, PBS) on every available backup storage.

        A shared storage is listed once (from one online node), a local one from each node.
        ``vmid`` narrows to one guest (sent to Proxmox as ``vmid``). Requests:
        ``/cluster/resources`` plus ``/nodes/{node}/storage/{storage}/content?content=backup``.
        """
        vmid_int = None if vmid is None else parse_vmid(vmid)
        resources = self.resources(fresh=fresh)
        online = set(self._online_nodes(resources))
        targets: list[tuple[str, str]] = []
        shared_seen: set[str] = set()
        for row in sorted(
            (r for r in resources if r.get("type") == "storage"),
            key=lambda r: (str(r.get("storage")), str(r.get("node"))),
        ):
            node, name = str(row.get("node")), str(row.get("storage"))
            content = frames._content(row.get("content"))
            if "backup" not in content or row.get("status") != "available" or node not in online:
                continue
            if frames._bool(row.get("shared")):
                if name in shared_seen:
                    continue
                shared_seen.add(name)
            targets.append((node, name))

        answered = self._gather_paths(
            targets,
            lambda t: _path("nodes", t[0], "storage", t[1], "content"),
            {"content": "backup", "vmid": vmid_int},
            fresh=fresh,
            key="/".join,
            desc="backups",
            progress=progress,
        )
        volumes = [
            {**r, "node": node, "storage": name}
            for (node, name), rows in answered
            for r in rows or []
            if isinstance(r, dict)
        ]
        df = frames.backups_frame(self.profile, volumes)
        if vmid_int is not None:
            df = df[df["vmid"] == vmid_int].reset_index(drop=True)
        return df

    def snapshots(
        self, vmid: int | str | None = None, *, fresh: bool = False, progress: bool | None = None
    ) -> pd.DataFrame:
        """Snapshots of every guest (or of ``vmid``), without the ``current`` pseudo-snapshot.

        Templates are skipped (they cannot hold snapshots). A VMID not in this cluster gives
        an empty frame. Requests: ``/cluster/resources`` plus ``.../snapshot`` per guest.
        """
        vmid_int = None if vmid is None else parse_vmid(vmid)
        resources = self.resources(fresh=fresh)
        online = set(self._online_nodes(resources))
        guests = [
            r
            for r in resources
            if r.get("type") in ("qemu", "lxc")
            and not frames._bool(r.get("template"))
            and (vmid_int is None or frames._int(r.get("vmid")) == vmid_int)
        ]
        failed: dict[str, str] = {}
        reachable = []
        for row in guests:
            if str(row.get("node")) in online:
                reachable.append(row)
            else:
                failed[str(row.get("vmid"))] = f"node {row.get('node')!r} is not online"

        def where(row: Mapping[str, Any]) -> str:
            gid = frames._int(row.get("vmid"))
            return _path("nodes", str(row["node"]), str(row["type"]), gid, "snapshot")

        answered = self._gather_paths(
            reachable,
            where,
            fresh=fresh,
            key=lambda row: str(row.get("vmid")),
            desc="snapshots",
            progress=progress,
            failed=failed,
        )
        snaps = []
        for row, rows in answered:
            node, gtype, gid = str(row["node"]), str(row["type"]), frames._int(row.get("vmid"))
            extra = {"node": node, "vmid": gid, "guest_type": gtype}
            snaps += [{**r, **extra} for r in rows or [] if isinstance(r, dict)]
        return frames.snapshots_frame(self.profile, snaps)

    def metrics(
        self,
        kind: str,
        targets: Iterable[Any] | Any = None,
        timeframe: str = "day",
        cf: str = "AVERAGE",
        *,
        fresh: bool = False,
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """RRD time series as a long/tidy frame: one row per (target, time, metric).

        ``kind``: ``"node"`` (targets: node names; default every online node), ``"guest"``
        (targets: VMIDs; default every non-template guest on an online node) or
        ``"storage"`` (targets: ``"node/storage"`` or a storage name, meaning every node that
        has it; default every available storage, shared ones once). ``timeframe``: hour,
        day, week, month, year (decade on PVE 9); ``cf``: AVERAGE or MAX. Targets are
        fetched concurrently.
        """
        check_metrics_args(kind, timeframe, cf)
        wanted = self._metric_targets_arg(kind, targets)
        resources = self.resources(fresh=fresh)
        jobs = self._metric_jobs(kind, wanted, resources)
        params = {"timeframe": timeframe, "cf": cf}
        answered = self._gather_paths(
            jobs,
            lambda job: job[2],
            params,
            fresh=fresh,
            key=lambda job: job[0],
            desc=f"{kind} metrics",
            progress=progress,
        )
        series = [(target, node, result) for (target, node, _), result in answered]
        return frames.metrics_frame(self.profile, kind, series)

    @staticmethod
    def _metric_targets_arg(kind: str, targets: Any) -> list[str] | None:
        if targets is None:
            return None
        if isinstance(targets, str | int) and not isinstance(targets, bool):
            targets = [targets]
        out: list[str] = []
        for target in targets:
            if kind == "guest":
                out.append(str(parse_vmid(target)))
            elif isinstance(target, str) and target:
                out.append(target)
            else:
                raise InvalidInputError(f"invalid {kind} target {target!r}: expected a name")
        return out

    def _metric_jobs(
        self, kind: str, wanted: list[str] | None, resources: list[dict[str, Any]]
    ) -> list[tuple[str, str, str]]:
        """(target, node, path) for each RRD request; unknown targets raise NotFoundError."""
        from ._errors import NotFoundError

        online = set(self._online_nodes(resources))
        jobs: list[tuple[str, str, str]] = []
        if kind == "node":
            names = sorted(
                {str(r["node"]) for r in resources if r.get("type") == "node" and r.get("node")}
            )
            pick = names if wanted is None else wanted
            for name in pick:
                if name not in names:
                    raise NotFoundError(
                        f"node {name!r} is not in this cluster", profile=self.profile
                    )
                if wanted is None and name not in online:
                    continue
                jobs.append((name, name, _path("nodes", name, "rrddata")))
        elif kind == "guest":
            by_id = {
                str(frames._int(r.get("vmid"))): r
                for r in resources
                if r.get("type") in ("qemu", "lxc")
            }
            if wanted is None:
                pick = [
                    k
                    for k, r in sorted(by_id.items(), key=lambda kv: int(kv[0]))
                    if not frames._bool(r.get("template")) and str(r.get("node")) in online
                ]
            else:
                pick = wanted
            for gid in pick:
                row = by_id.get(gid)
                if row is None:
                    raise NotFoundError(f"guest {gid} is not in this cluster", profile=self.profile)
                node = str(row.get("node"))
                jobs.append((gid, node, _path("nodes", node, row["type"], gid, "rrddata")))
        else:
            rows = [r for r in resources if r.get("type") == "storage" and r.get("node")]
            if wanted is None:
                seen: set[str] = set()
                for r in sorted(rows, key=lambda r: (str(r.get("storage")), str(r.get("node")))):
                    name, node = str(r.get("storage")), str(r["node"])
                    if r.get("status") != "available" or node not in online:
                        continue
                    if frames._bool(r.get("shared")):
                        if name in seen:
                            continue
                        seen.add(name)
                    jobs.append(self._storage_job(node, name))
            else:
                for target in wanted:
                    node_part, _, name = target.rpartition("/")
                    matches = [
                        r
                        for r in rows
                        if str(r.get("storage")) == name
                        and (not node_part or str(r.get("node")) == node_part)
                    ]
                    if not matches:
                        raise NotFoundError(
                            f"storage {target!r} is not in this cluster", profile=self.profile
                        )
                    for r in matches:
                        jobs.append(self._storage_job(str(r["node"]), name))
        return jobs

    @staticmethod
    def _storage_job(node: str, name: str) -> tuple[str, str, str]:
        return (f"{node}/{name}", node, _path("nodes", node, "storage", name, "rrddata"))

    def summary(self, *, fresh: bool = False) -> pd.DataFrame:
        """One row of cluster totals, like Proxmox's datacenter summary.

        CPU is weighted by cores, storage counts shared storages once and skips status
        ``unknown``. Requests: ``/cluster/resources``, ``/cluster/status``, ``/version``.
        """
        reused = None if fresh else self.api.memo_frame(("summary",))
        if reused is not None:
            return reused
        paths = ["/cluster/resources", "/cluster/status", "/version"]
        resources, status, version = self._get_all(paths, fresh)
        inputs = {p: self.memo_token(p) for p in paths}
        self._note_identity(r for r in resources or [] if isinstance(r, dict))
        df = frames.summary_frame(self.profile, resources, status, version)
        self.api.keep_frame(("summary",), df, inputs)
        return df

    def ha_rules(self, *, fresh: bool = False) -> pd.DataFrame:
        """HA placement rules as a frame (columns: ``pvekit._ha.HA_RULE_COLUMNS``).

        PVE 9: ``GET /cluster/ha/rules`` (node and resource affinity). PVE 8 answers that
        path with 501: then ``GET /cluster/ha/groups`` and ``GET /cluster/ha/resources``
        (which guest is in which group) give the same rows, one per group.
        """
        from ._errors import NotImplementedByServerError
        from ._ha import ha_rules_frame

        try:
            rules = self.get("/cluster/ha/rules", fresh=fresh)
        except NotImplementedByServerError:
            groups, resources = self._get_all(
                ["/cluster/ha/groups", "/cluster/ha/resources"], fresh
            )
            return ha_rules_frame(self.profile, groups=groups or [], resources=resources or [])
        return ha_rules_frame(self.profile, rules=rules or [])
