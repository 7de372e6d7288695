"""HTTP sessions for one profile: cache, TLS checks, timeouts and the retry schedule.

One session per profile and identity. With ``cache=True`` it is a requests-cache
``CachedSession`` on a SQLite file of its own under the user cache directory (``PVEKIT_CACHE_DIR``
overrides), created with mode 0600: requests-cache leaves ``Authorization`` out of its keys, so
two identities must never share a cache. ``cache="memory"`` and ``cache=False`` use a plain
``requests.Session`` (which vcrpy can record): with ``"memory"`` the API client's own memory
layer (:mod:`pvekit._cache`) is the whole cache, for the same TTLs (:func:`ttl_for`), since a
requests-cache memory backend kept nothing the layer does not and cost ~1-1.7 ms of CPU per miss.

Only GET answers with status 200 are stored, for the time the endpoint table
(:data:`pvekit._endpoints.READS`) gives their endpoint family; ``cache_control`` is off because
Proxmox sends ``max-age=0`` on everything. Login, task status and log, and every
POST/PUT/DELETE are never cached. Stored requests keep no cookie, ticket, CSRF token or token
secret (those headers are redacted before storage).

TLS: verified by default; ``ca_file`` trusts a CA bundle; ``fingerprint`` pins the server
certificate's SHA-256 fingerprint, checked by urllib3 right after the TLS handshake, before a
single byte of the request (and so any credential) is sent. ``verify=`` is passed on every
request (see :func:`request_options`) because ``REQUESTS_CA_BUNDLE`` would otherwise override a
session-level setting.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import heapq
import os
import random
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ._endpoints import DEFAULT_TTL, READS, read_regex, ttl_for

if TYPE_CHECKING:  # pragma: no cover
    from ._config import Profile

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TTL",
    "REDACTED_HEADERS",
    "RETRY_STATUSES",
    "DeadlineAdapter",
    "FingerprintAdapter",
    "ResponseTooLargeError",
    "build_session",
    "cache_dir",
    "cache_file",
    "cache_key",
    "drop_cached",
    "is_cached_session",
    "request_options",
    "retry_delay",
    "tighten_cache_files",
    "time_limit",
    "timeout_budget",
    "ttl_for",
    "url_patterns",
]

#: Headers that carry secrets; they are never part of a cache key nor of a stored request.
REDACTED_HEADERS = (
    "Authorization",
    "authorization",
    "Cookie",
    "cookie",
    "CSRFPreventionToken",
    "csrfpreventiontoken",
)

#: Statuses after which an idempotent read is retried.
RETRY_STATUSES = frozenset({502, 503, 504})
_MAX_DELAY = 30.0


def url_patterns(profile: Profile) -> dict[Any, Any]:
    """requests-cache ``urls_expire_after`` for one profile, from the endpoint table
    (:data:`pvekit._endpoints.READS`), specific to general."""
    from requests_cache import DO_NOT_CACHE

    prefix = r"^https?://" + re.escape(profile.host + profile.api_path)
    patterns: dict[Any, Any] = {}
    for entry in READS:
        patterns[re.compile(prefix + read_regex(entry))] = (
            DO_NOT_CACHE if entry.ttl is None else entry.ttl
        )
    patterns[re.compile(prefix + r"(?:[/?]|$)")] = DEFAULT_TTL
    return patterns


def cache_key(request: Any, **kwargs: Any) -> str:
    """requests-cache's key of ``request``, after the URL path and a ``#``.

    With the path in the key, the client finds which stored answers a write made stale by
    reading the keys alone, never the stored answers (see ``ApiClient._load_keys``). The
    path carries no secret (credentials travel in headers, which are not part of keys).
    """
    from requests_cache import create_key

    return f"{urlsplit(str(request.url)).path}#{create_key(request, **kwargs)}"


# --------------------------------------------------------------------------------------------
# Cache location


def cache_dir() -> Path:
    """Directory of pvekit's cache files (``PVEKIT_CACHE_DIR`` overrides)."""
    override = os.environ.get("PVEKIT_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("pvekit"))


def cache_file(profile: Profile) -> Path:
    """The SQLite file of one profile and identity (never shared between users)."""
    identity = f"{profile.base_url}|{profile.identity}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", profile.name)[:40] or "profile"
    return cache_dir() / f"{safe_name}-{digest}.sqlite"


def _private_dir(directory: Path) -> None:
    """Create the cache directory owner-only, or make an existing one so.

    A directory others may write to would let them swap the cache file for a link or plant
    answers; one that belongs to someone else is refused outright.
    """
    from ._errors import ConfigError

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = directory.stat()
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise ConfigError(
            f"cache directory {str(directory)!r} belongs to another user (uid {info.st_uid}): "
            "refused; set PVEKIT_CACHE_DIR to a directory of your own, or use cache='memory'"
        )
    if info.st_mode & 0o077:
        os.chmod(directory, 0o700)


def _private_file(path: Path) -> None:
    """Create ``path`` (and its directory) readable by the owner only; refuse a symlink."""
    from ._errors import ConfigError

    _private_dir(path.parent)
    for candidate in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        if candidate.is_symlink():
            raise ConfigError(
                f"the cache file {str(candidate)!r} is a symbolic link: refused (pvekit would "
                "write through it); remove it, or use cache='memory'"
            )
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot open the cache file {str(path)!r}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # an existing file may have had wider rights
    finally:
        os.close(fd)


_warned_damaged: set[str] = set()


def _move_aside(path: Path, exc: Exception) -> None:
    """Rename a damaged cache file (and its WAL) out of the way and warn once per file."""
    import logging
    import warnings

    stamp = time.strftime("%Y%m%dT%H%M%S")
    moved = path.with_name(f"{path.name}.damaged-{stamp}-{os.getpid()}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            with contextlib.suppress(OSError):
                os.replace(source, moved.with_name(moved.name + suffix))
    if str(path) not in _warned_damaged:
        _warned_damaged.add(str(path))
        message = (
            f"the pvekit cache file {str(path)!r} was damaged ({type(exc).__name__}: {exc}); "
            f"moved aside to {moved.name!r}, starting a fresh cache"
        )
        logging.getLogger("pvekit.cache").warning(message)
        warnings.warn(message, UserWarning, stacklevel=5)


def _open_sqlite(path: Path) -> Any:
    """The SQLite backend on ``path``, expired answers removed; a damaged file is replaced."""
    import sqlite3

    from requests_cache import SQLiteCache

    for attempt in (0, 1):
        _private_file(path)
        backend: Any = None
        try:
            # A cache needs no durability: skip fsync per write (fast_save) and let readers
            # and writers of many threads proceed side by side (WAL).
            backend = SQLiteCache(db_path=str(path), fast_save=True, wal=True)
            # A truncated file opens fine and fails on the first page read: check them all.
            with sqlite3.connect(path) as db:
                verdict = db.execute("PRAGMA quick_check(1)").fetchone()
            if verdict and verdict[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {verdict[0]}")
            # The file outlives the process: start by removing answers whose TTL has passed.
            backend.delete(expired=True, vacuum=False)
            return backend
        except sqlite3.DatabaseError as exc:
            if backend is not None:
                with contextlib.suppress(Exception):
                    backend.close()
            if attempt:
                raise
            _move_aside(path, exc)
    raise AssertionError("unreachable")  # pragma: no cover


def tighten_cache_files(profile: Profile) -> None:
    """Make the profile's cache file and its SQLite companions owner-only again."""
    path = cache_file(profile)
    for candidate in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        if candidate.exists():
            os.chmod(candidate, 0o600)


# --------------------------------------------------------------------------------------------
# Deadlines and the size cap
#
# ``timeout`` in requests bounds each socket operation, not the request: a server that sends a
# byte every few seconds holds a call forever. Every request through pvekit's adapters gets a
# total deadline (the whole timeout budget, connect plus read); when it passes, one watchdog
# thread shuts the connection's socket down, which wakes the blocked read at once.

#: Largest decompressed answer accepted by default (the largest real answers, the cluster
#: resources of 10,000 guests, are a few MB).
DEFAULT_MAX_RESPONSE_BYTES = 64 * 2**20
_CHUNK = 64 * 1024

_local = threading.local()
_owner_lock = threading.Lock()


class ResponseTooLargeError(requests.exceptions.RequestException):
    """The decompressed answer grew past the profile's ``max_response_bytes``."""

    def __init__(self, limit: int, **kwargs: Any) -> None:
        self.limit = limit
        super().__init__(f"answer larger than {limit} bytes", **kwargs)


class _Deadline:
    __slots__ = ("conn", "done", "fired", "when")

    def __init__(self, when: float) -> None:
        self.when = when
        self.conn: Any = None
        self.done = False
        self.fired = False

    def __lt__(self, other: _Deadline) -> bool:
        return self.when < other.when

    def expire(self) -> None:
        with _owner_lock:
            if self.done:
                return
            self.fired = True
            conn = self.conn
            # The connection may be back in the pool and serving another request by now.
            if conn is None or getattr(conn, "_pvekit_deadline", None) is not self:
                return
            sock = getattr(conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                # The plain socket's shutdown, also under TLS: it wakes a blocked recv without
                # touching the SSL object another thread is reading through.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        with _owner_lock:
            self.done = True
            self.conn = None


class _Watchdog:
    """One daemon thread expiring deadlines in time order (cheap: no thread per request)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[_Deadline] = []
        self._thread: threading.Thread | None = None

    def arm(self, deadline: _Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, deadline)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="pvekit-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0] is deadline:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait(5.0)
                    if not self._heap:
                        self._thread = None
                        return
                    continue
                wait = self._heap[0].when - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                due = heapq.heappop(self._heap)
            due.expire()


_WATCHDOG = _Watchdog()


@contextlib.contextmanager
def time_limit(when: float | None) -> Iterator[None]:
    """Bound every request this thread sends inside the block by ``when`` (monotonic).

    Nested limits keep the earliest. Used for a call's retries, ``Task.wait(timeout=)`` and
    a group's per-cluster deadline.
    """
    previous = getattr(_local, "limit", None)
    if when is not None and previous is not None:
        when = min(when, previous)
    _local.limit = when if when is not None else previous
    try:
        yield
    finally:
        _local.limit = previous


def current_limit() -> float | None:
    """The monotonic time limit set by :func:`time_limit` in this thread, if any."""
    limit: float | None = getattr(_local, "limit", None)
    return limit


def timeout_budget(timeout: Any) -> float | None:
    """Seconds one request may take in all: the timeout, or connect + read of a pair."""
    if isinstance(timeout, tuple | list):
        parts = [t for t in timeout if isinstance(t, int | float)]
        return float(sum(parts)) if len(parts) == len(timeout) else None
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        return float(timeout)
    return None


class _DeadlinePool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        conn: Any = super()._get_conn(timeout)
        deadline = getattr(_local, "deadline", None)
        with _owner_lock:
            conn._pvekit_deadline = deadline
            if deadline is not None:
                deadline.conn = conn
        return conn


class _DeadlineHTTPSPool(HTTPSConnectionPool, _DeadlinePool):
    pass


class DeadlineAdapter(HTTPAdapter):
    """An adapter giving every request a total deadline and a cap on the answer's size.

    The deadline is ``timeout`` taken as a total (connect + read for a pair), or the
    thread's :func:`time_limit` if earlier; past it the request fails with ``ReadTimeout``
    however slowly the server trickles bytes. The body is read here, decompressed chunk by
    chunk, and refused with :class:`ResponseTooLargeError` once it exceeds ``max_bytes``
    (a gzip bomb costs at most one chunk beyond the cap, never the inflated whole).
    """

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES, **kwargs: Any) -> None:
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    __attrs__ = [*HTTPAdapter.__attrs__, "max_bytes"]

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _DeadlinePool,
            "https": _DeadlineHTTPSPool,
        }

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        **kwargs: Any,
    ) -> requests.Response:
        now = time.monotonic()
        budget = timeout_budget(timeout)
        when = now + budget if budget is not None else None
        limit = current_limit()
        if limit is not None:
            when = limit if when is None else min(when, limit)
        if when is None:
            response = super().send(request, stream=stream, timeout=timeout, **kwargs)
            return response if stream else self._read_body(response)
        if when <= now:
            raise requests.exceptions.ReadTimeout(
                "no time left for this request (its deadline has passed); nothing was sent",
                request=request,
            )
        if isinstance(timeout, int | float) and not isinstance(timeout, bool):
            timeout = min(float(timeout), when - now)  # connect no longer than the time left
        deadline = _Deadline(when)
        _local.deadline = deadline
        _WATCHDOG.arm(deadline)
        try:
            response = super().send(request, stream=stream, timeout=timeout, **kwargs)
            return response if stream else self._read_body(response)
        except requests.RequestException as exc:
            if deadline.fired:
                raise requests.exceptions.ReadTimeout(
                    f"no complete answer within {when - now:.3g} s (the request's total deadline)",
                    request=request,
                ) from exc
            raise
        finally:
            _local.deadline = None
            deadline.cancel()

    def _read_body(self, response: requests.Response) -> requests.Response:
        limit = self.max_bytes
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            response.close()
            raise ResponseTooLargeError(limit, response=response, request=response.request)
        body = bytearray()
        for chunk in response.iter_content(_CHUNK):
            body += chunk
            if len(body) > limit:
                response.close()
                raise ResponseTooLargeError(limit, response=response, request=response.request)
        response._content = bytes(body)
        return response


# --------------------------------------------------------------------------------------------
# TLS


def _pinned_context() -> Any:
    """A TLS context without CA validation, for connections checked by fingerprint."""
    import ssl

    from urllib3.util.ssl_ import create_urllib3_context

    return create_urllib3_context(cert_reqs=ssl.CERT_NONE)


class FingerprintAdapter(DeadlineAdapter):
    """Accept exactly the certificate whose SHA-256 fingerprint is pinned.

    urllib3 compares the fingerprint right after the handshake and before the request is
    written, so a wrong certificate never sees a password, ticket or token. Requests through
    this adapter must use ``verify=False`` (the pin replaces CA validation, as for Proxmox's
    self-signed certificates); urllib3 still counts such connections as verified.
    """

    def __init__(self, fingerprint: str, **kwargs: Any) -> None:
        self.fingerprint = fingerprint.replace(":", "").lower()
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["assert_fingerprint"] = self.fingerprint
        # One prepared context: without it urllib3 loads the system CA store (~10-90 ms of
        # CPU) for every new connection, although the pin, not the store, is the check.
        pool_kwargs.setdefault("ssl_context", _pinned_context())
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["assert_fingerprint"] = self.fingerprint
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    __attrs__ = [*DeadlineAdapter.__attrs__, "fingerprint"]  # keep the pin when pickled


def request_options(profile: Profile) -> dict[str, Any]:
    """``verify`` and ``timeout`` to pass on every request of this profile."""
    verify: bool | str
    if profile.scheme == "http":
        verify = True
    elif profile.fingerprint:
        verify = False  # the pinned fingerprint is the check (FingerprintAdapter)
    elif not profile.verify_ssl:
        verify = False
    else:
        # What requests would take from the environment, read once: pvekit's own sessions
        # do not trust the environment per request (scanning os.environ for proxies and CA
        # bundles cost ~1 ms of CPU on every request, measured).
        verify = (
            profile.ca_file
            or os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or True
        )
    timeout = profile.timeout
    proxies = requests.utils.get_environ_proxies(profile.base_url)
    # Proxmox's API never redirects: following one would re-post a password or carry a
    # ticket and CSRF token to a host whose certificate nobody checked (the pin and the CA
    # apply to this host only). A 3xx is refused by the API layer instead.
    return {"verify": verify, "timeout": timeout, "proxies": proxies, "allow_redirects": False}


# --------------------------------------------------------------------------------------------
# Sessions


def is_cached_session(session: requests.Session) -> bool:
    """True for a requests-cache session (has ``.cache`` and understands ``force_refresh``)."""
    return hasattr(session, "cache") and hasattr(session, "settings")


def _deny_all_cookies(session: requests.Session) -> None:
    # Proxmox authenticates by header; a jar would be copied into every cached request.
    from http.cookiejar import DefaultCookiePolicy

    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))


def build_session(profile: Profile, session: requests.Session | None = None) -> requests.Session:
    """The session for ``profile``: a new one (a CachedSession on the SQLite file with
    ``cache=True``, else plain), or ``session`` prepared.

    An injected session is used as given (its own caching, if any, is kept); pvekit only mounts
    its adapter for this profile's ``scheme://host/`` prefix, unless the session already has
    an adapter there that is not an ``HTTPAdapter`` (a transport that opens no connection).
    """
    if session is None:
        session = _cached_session(profile) if profile.cache is True else requests.Session()
        session.trust_env = False  # proxies and CA bundle come from request_options, once
        _deny_all_cookies(session)
        session.headers["Accept"] = "application/json"
        session.headers["User-Agent"] = f"pvekit/{_version()} {requests.utils.default_user_agent()}"
    prefix = f"{profile.scheme}://{profile.host}/"
    mounted = session.adapters.get(prefix)
    if mounted is not None and not isinstance(mounted, HTTPAdapter):
        # A transport of its own (no socket, so no TLS to pin), such as the simulator's
        # in-process adapter: replacing it would send the requests to the network.
        return session
    adapter: DeadlineAdapter
    cap = profile.max_response_bytes
    if profile.scheme == "https" and profile.fingerprint:
        adapter = FingerprintAdapter(profile.fingerprint, max_bytes=cap, pool_maxsize=32)
    else:
        adapter = DeadlineAdapter(max_bytes=cap, pool_maxsize=32)
    session.mount(prefix, adapter)
    return session


def _version() -> str:
    from . import __version__

    return __version__


def _cached_session(profile: Profile) -> requests.Session:
    """The requests-cache session on the profile's SQLite file (``cache=True`` only)."""
    from requests_cache import CachedSession

    return CachedSession(
        backend=_open_sqlite(cache_file(profile)),
        expire_after=DEFAULT_TTL,
        urls_expire_after=url_patterns(profile),
        allowable_methods=("GET",),
        allowable_codes=(200,),
        cache_control=False,
        stale_if_error=False,
        match_headers=False,
        ignored_parameters=list(REDACTED_HEADERS),
        key_fn=cache_key,
    )


# --------------------------------------------------------------------------------------------
# Retry schedule


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), else ``None``."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_delay(
    attempt: int,
    backoff: float,
    headers: Mapping[str, str] | None = None,
    *,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based).

    Exponential backoff (``backoff * 2**attempt``) with jitter (a random half of it), unless
    the server sent ``Retry-After``; never more than 30 seconds.
    """
    retry_after = parse_retry_after((headers or {}).get("Retry-After"))
    if retry_after is not None:
        return min(_MAX_DELAY, retry_after)
    base = backoff * (2**attempt)
    r = rng or random
    return min(_MAX_DELAY, base / 2 + r.uniform(0, base / 2))


def drop_cached(session: requests.Session, keys: list[str]) -> None:
    """Delete cached answers by key (SQLite: one statement, no VACUUM); a session without
    requests-cache holds none."""
    from requests_cache import SQLiteCache

    cache = getattr(session, "cache", None)
    if cache is None or not keys:
        return
    if isinstance(cache, SQLiteCache):
        cache.delete(*keys, vacuum=False)
    else:
        cache.delete(*keys)
