"""HTTP sessions for one profile: cache, TLS checks, timeouts and the retry schedule.

One session per profile and identity. With ``cache=True`` it is a requests-cache
``CachedSession`` on a SQLite file of its own under the user cache directory (``PVEKIT_CACHE_DIR``
overrides), created with mode 0600: requests-cache leaves ``Authorization`` out of its keys, so
two identities must never share a cache. ``cache="memory"`` keeps it in memory; ``cache=False``
uses a plain ``requests.Session`` (which vcrpy can record).

Only GET answers with status 200 are stored, for the time :data:`TTL_TABLE` gives their endpoint
family; ``cache_control`` is off because Proxmox sends ``max-age=0`` on everything. Login, task
status and log, and every POST/PUT/DELETE are never cached. Stored requests keep no cookie,
ticket, CSRF token or token secret (those headers are redacted before storage).

TLS: verified by default; ``ca_file`` trusts a CA bundle; ``fingerprint`` pins the server
certificate's SHA-256 fingerprint, checked by urllib3 right after the TLS handshake, before a
single byte of the request (and so any credential) is sent. ``verify=`` is passed on every
request (see :func:`request_options`) because ``REQUESTS_CA_BUNDLE`` would otherwise override a
session-level setting.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import random
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

if TYPE_CHECKING:  # pragma: no cover
    from ._config import Profile

__all__ = [
    "DEFAULT_TTL",
    "NEVER",
    "REDACTED_HEADERS",
    "RETRY_STATUSES",
    "TTL_TABLE",
    "FingerprintAdapter",
    "build_session",
    "cache_dir",
    "cache_file",
    "drop_cached",
    "is_cached_session",
    "request_options",
    "retry_delay",
    "tighten_cache_files",
    "ttl_for",
    "url_patterns",
]

#: TTL value meaning "never store this answer".
NEVER: int | None = None
#: Seconds an answer of an endpoint not listed in :data:`TTL_TABLE` stays fresh.
DEFAULT_TTL = 30

# Placeholders for path segments in the TTL table.
_SEG = {
    "{node}": r"[^/?]+",
    "{type}": r"(?:qemu|lxc)",
    "{vmid}": r"\d+",
    "{storage}": r"[^/?]+",
    "{upid}": r"[^/?]+",
}

#: (path under /api2/json, seconds or NEVER, match) from specific to general: the first match
#: wins. ``match`` is ``"prefix"`` (the path and everything below it) or ``"exact"`` (the path
#: itself with any query string).
TTL_TABLE: tuple[tuple[str, int | None, str], ...] = (
    ("/access/ticket", NEVER, "prefix"),
    ("/nodes/{node}/tasks/{upid}/status", NEVER, "prefix"),
    ("/nodes/{node}/tasks/{upid}/log", NEVER, "prefix"),
    ("/nodes/{node}/qemu/{vmid}/agent/exec-status", NEVER, "prefix"),
    ("/nodes/{node}/tasks", 5, "exact"),
    ("/cluster/tasks", 5, "prefix"),
    ("/nodes/{node}/{type}/{vmid}/status/current", 10, "prefix"),
    ("/nodes/{node}/{type}/{vmid}/rrddata", 60, "prefix"),
    ("/nodes/{node}/qemu/{vmid}/agent", 30, "prefix"),
    ("/nodes/{node}/lxc/{vmid}/interfaces", 30, "prefix"),
    ("/nodes/{node}/{type}/{vmid}/snapshot", 60, "prefix"),
    ("/nodes/{node}/{type}/{vmid}/config", 300, "prefix"),
    ("/nodes/{node}/{type}/{vmid}/pending", 300, "prefix"),
    ("/nodes/{node}/{type}", 10, "exact"),
    ("/nodes/{node}/storage/{storage}/content", 300, "prefix"),
    ("/nodes/{node}/storage/{storage}/rrddata", 60, "prefix"),
    ("/nodes/{node}/storage", 30, "prefix"),
    ("/nodes/{node}/rrddata", 60, "prefix"),
    ("/nodes/{node}/status", 10, "prefix"),
    ("/nodes/{node}/version", 3600, "prefix"),
    ("/nodes/{node}/network", 300, "prefix"),
    ("/nodes/{node}/dns", 300, "prefix"),
    ("/nodes/{node}/hosts", 300, "prefix"),
    ("/nodes", 10, "exact"),
    ("/cluster/resources", 10, "prefix"),
    ("/cluster/status", 10, "prefix"),
    ("/cluster/ha", 30, "prefix"),
    ("/cluster/options", 300, "prefix"),
    ("/cluster/config", 300, "prefix"),
    ("/storage", 300, "prefix"),
    ("/pools", 60, "prefix"),
    ("/version", 3600, "prefix"),
)

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


def _path_regex(template: str, match: str) -> str:
    out = re.escape(template)
    for placeholder, pattern in _SEG.items():
        out = out.replace(re.escape(placeholder), pattern)
    tail = r"(?:[/?]|$)" if match == "prefix" else r"(?:\?|$)"
    return out + tail


_COMPILED_TABLE = tuple((re.compile("^" + _path_regex(t, m)), ttl, t) for t, ttl, m in TTL_TABLE)


def ttl_for(path: str) -> int | None:
    """Seconds a GET of ``path`` (relative to /api2/json) is cached; ``None``: never."""
    for regex, ttl, _template in _COMPILED_TABLE:
        if regex.match(path):
            return ttl
    return DEFAULT_TTL


def url_patterns(profile: Profile) -> dict[Any, Any]:
    """requests-cache ``urls_expire_after`` for one profile, specific to general."""
    from requests_cache import DO_NOT_CACHE

    prefix = r"^https?://" + re.escape(profile.host + profile.api_path)
    patterns: dict[Any, Any] = {}
    for template, ttl, match in TTL_TABLE:
        patterns[re.compile(prefix + _path_regex(template, match))] = (
            DO_NOT_CACHE if ttl is None else ttl
        )
    patterns[re.compile(prefix + r"(?:[/?]|$)")] = DEFAULT_TTL
    return patterns


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


def _private_file(path: Path) -> None:
    """Create ``path`` (and its directory) readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)  # an existing file may have had wider rights


def tighten_cache_files(profile: Profile) -> None:
    """Make the profile's cache file and its SQLite companions owner-only again."""
    path = cache_file(profile)
    for candidate in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        if candidate.exists():
            os.chmod(candidate, 0o600)


# --------------------------------------------------------------------------------------------
# TLS


def _pinned_context() -> Any:
    """A TLS context without CA validation, for connections checked by fingerprint."""
    import ssl

    from urllib3.util.ssl_ import create_urllib3_context

    return create_urllib3_context(cert_reqs=ssl.CERT_NONE)


class FingerprintAdapter(HTTPAdapter):
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

    __attrs__ = [*HTTPAdapter.__attrs__, "fingerprint"]  # keep the pin when pickled


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
    return {"verify": verify, "timeout": timeout, "proxies": proxies}


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
    """The session for ``profile``: a new (cached or plain) one, or ``session`` prepared.

    An injected session is used as given (its own caching, if any, is kept); pvekit only mounts
    its adapter for this profile's ``scheme://host/`` prefix, unless the session already has
    an adapter there that is not an ``HTTPAdapter`` (a transport that opens no connection).
    """
    if session is None:
        session = requests.Session() if profile.cache is False else _cached_session(profile)
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
    adapter: HTTPAdapter
    if profile.scheme == "https" and profile.fingerprint:
        adapter = FingerprintAdapter(profile.fingerprint, pool_maxsize=32)
    else:
        adapter = HTTPAdapter(pool_maxsize=32)
    session.mount(prefix, adapter)
    return session


def _version() -> str:
    from . import __version__

    return __version__


def _cached_session(profile: Profile) -> requests.Session:
    from requests_cache import CachedSession, SQLiteCache

    backend: Any
    if profile.cache == "memory":
        backend = "memory"
    else:
        path = cache_file(profile)
        _private_file(path)
        # A cache needs no durability: skip fsync per write (fast_save) and let readers and
        # writers of many threads proceed side by side (WAL).
        backend = SQLiteCache(db_path=str(path), fast_save=True, wal=True)
        # The file outlives the process: start by removing answers whose TTL has passed.
        backend.delete(expired=True, vacuum=False)
    return CachedSession(
        backend=backend,
        expire_after=DEFAULT_TTL,
        urls_expire_after=url_patterns(profile),
        allowable_methods=("GET",),
        allowable_codes=(200,),
        cache_control=False,
        stale_if_error=False,
        match_headers=False,
        ignored_parameters=list(REDACTED_HEADERS),
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
    """Delete cached answers by key (SQLite: one statement, no VACUUM)."""
    from requests_cache import SQLiteCache

    cache = session.cache  # type: ignore[attr-defined]
    if isinstance(cache, SQLiteCache):
        cache.delete(*keys, vacuum=False)
    else:
        cache.delete(*keys)
