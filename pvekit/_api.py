"""The low-level Proxmox VE API client every higher call goes through.

:class:`ApiClient` sends ``get``/``post``/``put``/``delete`` to ``/api2/json``, unwraps the
``{"data": ...}`` envelope, maps HTTP errors to the pvekit exception tree, retries idempotent
reads, recovers from an expired ticket, logs each request with its timing at DEBUG (redacted)
and drops the cached reads a write made stale.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import UTC
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import requests
from requests.auth import AuthBase
from requests.utils import requote_uri

from . import _errors as errors
from ._auth import TicketAuth, TokenAuth
from ._cache import MemoryLayer, Query
from ._config import Profile, Secret
from ._endpoints import Scope, stale_scopes, ttl_for
from ._endpoints import persisted as _persisted
from ._errors import InvalidInputError, error_for_status, redact
from ._format import unwrap_envelope
from ._lean import LeanPool
from ._transport import (
    RETRY_STATUSES,
    DeadlineAdapter,
    ResponseTooLargeError,
    build_session,
    drop_cached,
    is_cached_session,
    request_options,
    retry_delay,
    tighten_cache_files,
    time_limit,
    timeout_budget,
)

__all__ = ["ApiClient", "Fan", "shape_problem"]

#: How :meth:`ApiClient.get_many` runs the reads it cannot batch: ``fan(fn, items)`` returns
#: ``[fn(i) for i in items]`` in order (a cluster runs them on its fan-out threads).
Fan = Callable[[Callable[[int], Any], list[int]], list[Any]]


def _release(response: requests.Response) -> None:
    """Give a retried answer's connection back; a lean answer holds none (it is read)."""
    if response.raw is not None:
        response.close()


def _in_turn(fn: Callable[[int], Any], items: list[int]) -> list[Any]:
    return [fn(i) for i in items]


_READ = "GET"
# What an API path must not hold: a query string, a fragment, white space, an empty segment.
_BAD_PATH = re.compile(r"[?#\s]|//")
# Seconds during which the reads a write of unknown outcome may have changed skip the cache.
_UNSETTLED_FOR = 60.0


def _companion(session: requests.Session, base_url: str) -> requests.Session:
    """A plain session sharing ``session``'s connection pool, TLS adapter and headers."""
    plain = requests.Session()
    plain.headers.clear()
    plain.headers.update(session.headers)
    plain.cookies.set_policy(session.cookies.get_policy())
    plain.trust_env = session.trust_env
    parts = urlsplit(base_url)
    plain.mount(f"{parts.scheme}://{parts.netloc}/", session.get_adapter(base_url))
    return plain


def _revealed(form: Mapping[str, str | Secret]) -> dict[str, str]:
    return {k: v.reveal() if isinstance(v, Secret) else v for k, v in form.items()}


class _NoAuth(AuthBase):
    """Overrides any session-level auth for the login request itself."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


def _clean_params(params: Mapping[str, Any] | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for source in (params or {}, extra):
        for key, value in source.items():
            if value is None:
                continue
            if not isinstance(key, str) or not key:
                raise InvalidInputError(f"parameter names must be non-empty strings, not {key!r}")
            if isinstance(value, bool):
                value = 1 if value else 0
            elif isinstance(value, list | tuple):
                value = [1 if v is True else 0 if v is False else v for v in value]
            merged[key] = value
    return merged


# The shape of what the endpoints pvekit builds tables from answer (per the API schema):
# lists of objects, or one object. ``null`` is accepted (Proxmox sends it for empty answers).
_LIST_OF_OBJECTS = re.compile(
    r"/cluster/(?:resources|tasks|ha/resources|ha/groups|backup)"
    r"|/nodes"
    r"|/nodes/[^/]+/(?:storage|tasks|qemu|lxc|network|rrddata)"
    r"|/nodes/[^/]+/storage/[^/]+/(?:content|rrddata)"
    r"|/nodes/[^/]+/(?:qemu|lxc)/\d+/(?:snapshot|rrddata|interfaces)"
    r"|/pools|/storage",
    re.ASCII,
)
_OBJECT = re.compile(
    r"/version|/cluster/options"
    r"|/nodes/[^/]+/(?:status|version|dns|tasks/[^/]+/status)"
    r"|/nodes/[^/]+/(?:qemu|lxc)/\d+/(?:config|status/current)",
    re.ASCII,
)


def shape_problem(path: str, data: Any) -> str | None:
    """Why ``data`` cannot be the answer of ``GET path``, or ``None`` when it fits."""
    if data is None:
        return None
    if _LIST_OF_OBJECTS.fullmatch(path):
        if not isinstance(data, list):
            return f"expected a list of objects, got {type(data).__name__}"
        for item in data:
            if not isinstance(item, Mapping):
                return f"expected a list of objects, found an item of type {type(item).__name__}"
    elif _OBJECT.fullmatch(path) and not isinstance(data, Mapping):
        return f"expected an object, got {type(data).__name__}"
    return None


def _data_of(body: Any) -> Any:
    """The payload of Proxmox's ``{"data": ...}`` envelope (or the body when unwrapped)."""
    return unwrap_envelope(body, http=True)


def _outcome_unknown(exc: errors.PVEError) -> bool:
    """Whether a failed write may have run: sent, but no answer saying it was refused."""
    if isinstance(exc, errors.TLSError):
        return False  # the pin or CA check failed before a byte of the request was sent
    return isinstance(exc, errors.TransportError | errors.ServerError)


def _transient(exc: errors.PVEError) -> bool:
    if isinstance(exc, errors.TLSError):
        return False
    if isinstance(exc, errors.TransportError):
        return True
    return isinstance(exc, errors.ServerError) and exc.status in RETRY_STATUSES


class ApiClient:
    """One cluster, one identity: the low-level Proxmox VE API.

    ``get/post/put/delete(path, params=None, **params)`` return the unwrapped ``data``. ``path``
    is relative to ``/api2/json`` and starts with ``/``; segments such as UPIDs and volids are
    quoted by the caller. Parameter names go out exactly as given; ``None`` values are dropped
    and ``True``/``False`` become ``1``/``0``. GET parameters travel in the query string, POST
    and PUT parameters as a form, DELETE parameters in the query string (as Proxmox expects).

    Reads are cached per the TTL table (``fresh=True`` bypasses and refreshes the cache) and
    retried on connection errors, timeouts and 502/503/504. With ``cache=True`` the persisted
    reads go through requests-cache (``session`` is its ``CachedSession``, on the SQLite file)
    and the rest, per guest, through the memory layer; with ``cache="memory"`` ``session`` is
    a plain ``requests.Session`` and the memory layer alone holds every cached read (no
    requests-cache: it kept nothing more and cost ~1-1.7 ms of CPU per miss). Writes are never
    retried, except once after a 401 when the ticket is renewed (the server did not run the
    refused call).
    """

    def __init__(
        self,
        profile: Profile,
        *,
        session: requests.Session | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if not isinstance(profile, Profile):
            raise InvalidInputError(
                f"ApiClient needs a pvekit.Profile, not {type(profile).__name__}"
            )
        self.settings = profile
        self.profile: str = profile.name
        self.host: str = profile.host
        self.base_url: str = profile.base_url
        self.user: str = profile.identity
        self.is_token: bool = profile.is_token
        self.log = logger or logging.getLogger("pvekit.api")
        self._own_session = session is None
        self.session = build_session(profile, session)
        self._options = request_options(profile)
        # requests-cache only behind cache=True (the SQLite file) or an injected CachedSession;
        # cache="memory" is a plain session with the memory layer alone in front of it.
        self._http_cache = is_cached_session(self.session)
        self._cached = self._http_cache or (self._own_session and profile.cache == "memory")
        # Writes, logins, never-cached and per-guest reads skip requests-cache (_persisted).
        self._plain = (
            _companion(self.session, self.base_url)
            if self._http_cache and self._own_session
            else self.session
        )
        self._lean, self._lean_adapter, self._lean_prefix = self._lean_pool(profile)
        # The token's header, checked by TokenAuth on the first lean read, then reused.
        self._lean_token: Secret | None = None
        # The one in-memory cache of this client (answers, cache keys, frames, tasks), in
        # front of requests-cache: see pvekit/_cache.py.
        self._layer = MemoryLayer()
        self._unsettled_lock = threading.Lock()
        # Whether the requests-cache keys stored before this client existed are in the layer
        # (without requests-cache there are none to load).
        self._keys_loaded = not self._http_cache
        # (until, scopes) of writes whose outcome is unknown: see _unsettle
        self._unsettled: list[tuple[float, list[Scope]]] = []
        self._closed = False
        self.auth: TokenAuth | TicketAuth
        if profile.is_token:
            assert profile.token_id is not None and profile.token_value is not None
            self.auth = TokenAuth(profile.token_id, Secret.of(profile.token_value))
        else:
            assert profile.password is not None
            otp = Secret.of(profile.otp) if isinstance(profile.otp, str) else profile.otp
            self.auth = TicketAuth(
                profile.user,
                Secret.of(profile.password),
                self._post_login,
                otp=otp,
                logger=logging.getLogger("pvekit.auth") if logger is None else logger,
                profile=profile.name,
            )

    # -- public API ---------------------------------------------------------------------------

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        fresh: bool = False,
        **kwargs: Any,
    ) -> Any:
        """GET ``path``; cached per the TTL table unless ``fresh=True``."""
        return self._call("GET", path, _clean_params(params, kwargs), fresh=fresh)

    def get_many(
        self,
        paths: Sequence[str],
        params: Mapping[str, Any] | None = None,
        *,
        fresh: bool = False,
        in_flight: int = 16,
        fan: Fan | None = None,
    ) -> list[Any]:
        """``[get(p, params, fresh=fresh) for p in paths]``, one entry per path in order,
        with a :class:`~pvekit.PVEError` as the value of its path instead of raised.

        Answers held in memory come from it (the same rules as :meth:`get`). The reads that
        take the lean path (per-guest reads on a session pvekit built) are sent in one batch
        on the calling thread, at most ``in_flight`` at once, with the auth applied once.
        The others, and every read the batch must try again (a retryable status or
        transport error, a refused ticket), go on one by one through ``fan``
        (``fan(fn, items)`` returns ``[fn(i) for i in items]``, e.g. on a cluster's
        fan-out threads; by default in turn) with the tries, backoff, ``Retry-After`` and
        deadline of :meth:`get`, the batched try counting as the first.
        """
        count = len(paths)
        try:
            query = _clean_params(params, {})
        except errors.PVEError as exc:
            return [exc] * count
        out: list[Any] = [None] * count
        fresh_of: dict[int, bool] = {}
        batch: list[int] = []
        later: list[int] = []  # each from the start, as get() would: after the batch
        queued: set[str] = set()
        for i, path in enumerate(paths):
            try:
                self._check_path(_READ, path)
            except errors.PVEError as exc:
                out[i] = exc
                continue
            now_fresh = fresh or bool(self._cached and self._unsettled and self._is_unsettled(path))
            if self._cached and not now_fresh:
                started = time.perf_counter()
                body = self._memo_get(path, query)
                if body is not None:
                    out[i] = _data_of(json.loads(body))
                    self._log_request(_READ, path, query, None, started, " (cache)", hit=True)
                    continue
            if path not in queued and self._lean_ok(_READ, path):
                # A path twice goes once in the batch; its repeat, later, finds the answer
                # in memory, as the second of two get() calls would.
                queued.add(path)
                fresh_of[i] = now_fresh
                batch.append(i)
            else:
                later.append(i)
        resume: dict[int, tuple[requests.Response | errors.PVEError, str]] = {}
        if batch:
            self._batch(paths, batch, query, in_flight, out, resume)

        def one(i: int) -> Any:
            try:
                if i in resume:
                    outcome, why = resume[i]
                    return self._resume(paths[i], query, fresh_of[i], outcome, why)
                return self._call(_READ, paths[i], dict(query), fresh=fresh)
            except errors.PVEError as exc:
                return exc

        rest = sorted(resume) + later
        if rest:
            answers = (fan or _in_turn)(one, rest)
            for i, value in zip(rest, answers, strict=True):
                out[i] = value
        return out

    def post(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """POST ``path`` (never retried, except once after a ticket renewal on 401)."""
        return self._call("POST", path, _clean_params(params, kwargs))

    def put(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """PUT ``path`` (never retried, except once after a ticket renewal on 401)."""
        return self._call("PUT", path, _clean_params(params, kwargs))

    def delete(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """DELETE ``path`` (never retried, except once after a ticket renewal on 401)."""
        return self._call("DELETE", path, _clean_params(params, kwargs))

    def invalidate(self, *prefixes: str, exact: Iterable[str] = ()) -> None:
        """Drop cached GETs whose path (relative to /api2/json) starts with any prefix.

        ``exact`` paths drop only that path's answers, not what lies below it (a node's guest
        list, but not every guest's config). A ``*`` segment matches any one segment
        (``/nodes/*/storage``). With neither, the whole cache is dropped.
        """
        if not self._cached:
            return
        exact = list(exact)
        if not prefixes and not exact:
            if self._http_cache:
                self.session.cache.clear()  # type: ignore[attr-defined]
                if self._own_session and self.settings.cache is True:
                    # clear() may re-create a damaged file: keep it private.
                    tighten_cache_files(self.settings)
            self._layer.clear()
            self._keys_loaded = True
            return
        self._drop([Scope(p) for p in prefixes] + [Scope(p, exact=True) for p in exact])

    def memo_token(self, path: str, params: Mapping[str, Any] | None = None) -> object | None:
        """Identity of the in-memory answer to ``GET path`` (``None``: none held, or expired).

        The same token twice means the very same answer, so a caller may reuse what it built
        from it; an invalidation, an expiry or a fresh read changes it.
        """
        return self._layer.answer(path, _query(_clean_params(params, {})))

    def memo_frame(self, key: Hashable) -> Any | None:
        """A copy of the frame kept under ``key`` by :meth:`keep_frame`, while every answer
        it was built from is still the same (``None``: none kept, or an input changed)."""
        return self._layer.frame(key)

    def keep_frame(self, key: Hashable, frame: Any, inputs: Mapping[str, object | None]) -> None:
        """Keep (a copy of) ``frame``, built from the answers of ``inputs`` (path -> the
        :meth:`memo_token` taken when it was read); kept only if every token is set."""
        self._layer.keep_frame(key, frame, {(p, ()): t for p, t in inputs.items()})

    def check(self) -> Any:
        """Make sure the credentials work: log in (password) and read ``/version`` fresh."""
        if isinstance(self.auth, TicketAuth):
            self.auth.credentials()
        return self.get("/version", fresh=True)

    def close(self) -> None:
        """Release the HTTP connections and the cache file (an injected session is kept)."""
        if self._closed:
            return
        self._closed = True
        if self._lean is not None:
            self._lean.close()
        if self._own_session:
            self.session.close()
            if self._plain is not self.session:
                self._plain.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.settings
        warning = " INSECURE: server identity not verified" if s.insecure else ""
        return (
            f"<{type(self).__name__} {self.profile!r} {s.base_url} user={self.user!r} "
            f"auth={s.auth_kind} tls={s.tls}{warning}>"
        )

    # -- internals ----------------------------------------------------------------------------

    def _check_path(self, method: str, path: str) -> None:
        if not isinstance(path, str) or not path.startswith("/"):
            raise InvalidInputError(
                f"API path must be a string starting with '/', got {path!r}",
                profile=self.profile,
                method=method,
            )
        if _BAD_PATH.search(path):
            raise InvalidInputError(
                f"API path {path!r} must not contain a query string, spaces or '//': "
                "pass parameters separately and quote path segments",
                profile=self.profile,
                method=method,
            )
        if self._closed:
            raise errors.ConnectionError(
                "this client is closed", profile=self.profile, method=method, path=path
            )

    def _transport_error(
        self, exc: requests.RequestException, method: str, path: str
    ) -> errors.TransportError:
        # requests quotes offending header values (credentials) in InvalidHeader messages.
        if isinstance(exc, requests.exceptions.InvalidHeader):
            detail = "a request header was rejected as invalid"
        else:
            detail = redact(str(exc))[:300]
        ctx: dict[str, Any] = {"profile": self.profile, "method": method, "path": path}
        if isinstance(exc, requests.exceptions.SSLError):
            text = detail
            if "Fingerprints did not match" in detail or "fingerprint" in detail.lower():
                text = (
                    "the server's certificate does not have the pinned SHA-256 fingerprint "
                    f"{self.settings.fingerprint}; nothing was sent"
                )
            return errors.TLSError(f"TLS check of {self.host} failed: {text}", **ctx)
        if isinstance(exc, requests.exceptions.Timeout):
            if "deadline" in detail:
                return errors.TimeoutError(f"{self.host}: {detail}", **ctx)
            kind = "connect" if isinstance(exc, requests.exceptions.ConnectTimeout) else "read"
            return errors.TimeoutError(
                f"{kind} timeout talking to {self.host} (timeout {self.settings.timeout} s)",
                **ctx,
            )
        return errors.ConnectionError(f"cannot reach {self.host}: {detail}", **ctx)

    def _lean_pool(self, profile: Profile) -> tuple[LeanPool | None, Any, str]:
        """The lean path of this client's per-guest GETs, where it may take one.

        Only on a session pvekit built itself (an injected one is always used as given), with
        a cache (``cache=False`` stays on requests, which vcrpy records), without a proxy, and
        with pvekit's own adapter mounted for the profile's URL. With ``cache=True`` the
        persisted reads stay on requests-cache (:meth:`_persists`); with ``"memory"`` every
        read may take it.
        """
        prefix = f"{profile.scheme}://{profile.host}/"
        adapter = self._plain.adapters.get(prefix)
        if (
            not self._own_session
            or not self._cached
            or self._options.get("proxies")
            or not isinstance(adapter, DeadlineAdapter)
        ):
            return None, None, prefix
        pool = LeanPool(
            self.base_url,
            verify=self._options["verify"],
            fingerprint=profile.fingerprint if profile.scheme == "https" else None,
            timeout=self._options["timeout"],
            max_bytes=adapter.max_bytes,
        )
        return pool, adapter, prefix

    def _persists(self, path: str) -> bool:
        """Whether ``GET path`` goes through requests-cache: only with one (``cache=True``,
        or an injected CachedSession) and for a read the endpoint table persists."""
        return self._http_cache and _persisted(_READ, path)

    def _lean_ok(self, method: str, path: str) -> bool:
        # The adapter check keeps a transport mounted later (a test's, a recorder's) in charge.
        return (
            self._lean is not None
            and method == _READ
            and not self._persists(path)
            and self._plain.adapters.get(self._lean_prefix) is self._lean_adapter
        )

    def _lean_headers(self) -> requests.structures.CaseInsensitiveDict[str]:
        """The headers of a lean GET before auth: the session's, plus Host and encodings."""
        headers: requests.structures.CaseInsensitiveDict[str] = (
            requests.structures.CaseInsensitiveDict(self._plain.headers)  # type: ignore[arg-type]
        )
        headers["Host"] = self.settings.host
        headers["Accept-Encoding"] = "gzip, deflate"
        return headers

    def _lean_target(self, path: str, query: str) -> str:
        return requote_uri(self.settings.api_path + path + query)

    def _lean_auth(self, request: requests.PreparedRequest, auth: AuthBase) -> None:
        """Apply ``auth`` to ``request``'s headers; the token's header is built once and
        reused (TokenAuth checks the secret on the first read)."""
        token = self._lean_token
        if token is not None and auth is self.auth:
            request.headers["Authorization"] = token.reveal()
        else:
            auth(request)
            if isinstance(auth, TokenAuth) and auth is self.auth:
                self._lean_token = Secret.of(request.headers["Authorization"])

    def _send_lean(self, path: str, params: dict[str, Any], auth: AuthBase) -> requests.Response:
        assert self._lean is not None
        request = requests.PreparedRequest()
        request.method = _READ
        target = self._lean_target(path, "?" + urlencode(params, doseq=True) if params else "")
        request.url = self._lean.origin + target
        request.headers = self._lean_headers()
        self._lean_auth(request, auth)
        return self._lean.get(target, request.headers, request)

    def _send(
        self, method: str, path: str, params: dict[str, Any], *, fresh: bool, auth: AuthBase
    ) -> requests.Response:
        if self._lean_ok(method, path):
            return self._send_lean(path, params, auth)
        kwargs: dict[str, Any] = dict(self._options)
        if method in ("GET", "DELETE"):
            kwargs["params"] = params or None
        else:
            kwargs["data"] = params
        session = self.session
        if not _persisted(method, path):
            session = self._plain
        elif self._http_cache and fresh:
            kwargs["force_refresh"] = True
        return session.request(method, self.base_url + path, auth=auth, **kwargs)

    def _log_request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        response: requests.Response | None,
        started: float,
        note: str = "",
        *,
        hit: bool = False,
    ) -> None:
        if not self.log.isEnabledFor(logging.DEBUG):
            return
        elapsed = (time.perf_counter() - started) * 1000
        status = response.status_code if response is not None else (200 if hit else "-")
        cached = (
            " (cache)" if response is not None and getattr(response, "from_cache", False) else ""
        )
        if path == "/access/ticket":
            shown = ""
        elif method == _READ:
            shown = redact(" ".join(f"{k}={v}" for k, v in params.items()))
        else:
            shown = ", ".join(params)  # names only: values of writes may be sensitive
        self.log.debug(
            "[%s] %s %s%s -> %s in %.1f ms%s%s",
            self.profile,
            method,
            path,
            f" [{shown}]" if shown else "",
            status,
            elapsed,
            cached,
            note,
        )

    def _post_login(self, form: Mapping[str, str | Secret]) -> Any:
        """The raw login POST used by TicketAuth: no auth, no retry, no cache.

        Secret values are revealed inside the call expression only: no local of this frame
        holds them (see :data:`pvekit._auth.LoginPoster`).
        """
        path = "/access/ticket"
        started = time.perf_counter()
        try:
            response = self._plain.request(
                "POST", self.base_url + path, data=_revealed(form), auth=_NoAuth(), **self._options
            )
        except ResponseTooLargeError as exc:
            raise self._too_large(exc, "POST", path) from None
        except requests.RequestException as exc:
            self._log_request("POST", path, {}, None, started, f" ({type(exc).__name__})")
            raise self._transport_error(exc, "POST", path) from None
        self._log_request("POST", path, {}, response, started)
        return self._unwrap("POST", path, response)

    def _too_large(self, exc: ResponseTooLargeError, method: str, path: str) -> errors.APIError:
        return errors.APIError(
            f"the answer is larger than {exc.limit} bytes once decompressed: refused (raise "
            "the profile's max_response_bytes if this answer is genuine)",
            profile=self.profile,
            method=method,
            path=path,
        )

    def _call_deadline(self, retries: int) -> float:
        """Monotonic time by which a call and all its retries must be done.

        Each try may use the whole timeout, and so may a login and a renewal after a 401
        inside the call (two more); the waits between tries their largest backoff. A
        ``Retry-After`` that would end past it is not waited for.
        """
        budget = timeout_budget(self.settings.timeout) or 0.0
        backoff = sum(min(30.0, self.settings.backoff * 2**n) for n in range(retries))
        return time.monotonic() + budget * (retries + 3) + backoff

    def _unwrap(self, method: str, path: str, response: requests.Response) -> Any:
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        except RecursionError:
            # A hostile or broken server's 100,000-deep JSON: refused, whatever the status.
            raise errors.APIError(
                "the answer is JSON nested too deeply to read: refused",
                profile=self.profile,
                method=method,
                path=path,
                status=response.status_code,
            ) from None
        if 300 <= response.status_code < 400:
            response.close()
            target = urlsplit(response.headers.get("Location") or "")
            where = f" to {target.scheme}://{target.netloc}" if target.netloc else ""
            raise errors.APIError(
                f"the server answered {response.status_code} (a redirect{where}); the Proxmox "
                "API never redirects, so pvekit refuses to follow: nothing was re-sent "
                "(check the host and port, or a proxy in front of pveproxy)",
                profile=self.profile,
                method=method,
                path=path,
                status=response.status_code,
            )
        if response.status_code >= 400:
            raise error_for_status(
                response.status_code,
                response.reason or "",
                body=body,
                profile=self.profile,
                method=method,
                path=path,
            )
        if body is None and response.content.strip():
            raise errors.APIError(
                f"answer is not JSON (Content-Type {response.headers.get('Content-Type')!r})",
                profile=self.profile,
                method=method,
                path=path,
                status=response.status_code,
            )
        return _data_of(body)

    def _call(self, method: str, path: str, params: dict[str, Any], *, fresh: bool = False) -> Any:
        self._check_path(method, path)
        if method != _READ:
            try:
                return self._attempts(method, path, params, fresh=False)
            except errors.PVEError as exc:
                if _outcome_unknown(exc):
                    self._unsettle(method, path, params)
                raise
        if self._cached and not fresh and self._unsettled and self._is_unsettled(path):
            fresh = True
        return self._attempts(method, path, params, fresh=fresh)

    def _unsettle(self, method: str, path: str, params: Mapping[str, Any]) -> None:
        """A write may have run although no answer said so: treat it as done.

        Drops what a success would have dropped and, for a while, reads those paths past the
        cache, since the server may apply the write after the client gave up on it (a timed
        out POST keeps running): a read right after the error must not be cached as the truth.
        """
        scopes = stale_scopes(method, path, params)
        self._drop(scopes)
        with self._unsettled_lock:
            self._unsettled.append((time.monotonic() + _UNSETTLED_FOR, scopes))

    def _is_unsettled(self, path: str) -> bool:
        now = time.monotonic()
        with self._unsettled_lock:
            self._unsettled = [u for u in self._unsettled if u[0] > now]
            return any(s.covers(path) for _, scopes in self._unsettled for s in scopes)

    def _attempts(self, method: str, path: str, params: dict[str, Any], *, fresh: bool) -> Any:
        if method == _READ and self._cached and not fresh:
            started = time.perf_counter()
            body = self._memo_get(path, params)
            if body is not None:
                data = _data_of(json.loads(body))
                self._log_request(method, path, params, None, started, " (cache)", hit=True)
                return data
        retries = self.settings.retries if method == _READ else 0
        with time_limit(self._call_deadline(retries)):
            return self._tries(method, path, params, fresh=fresh, retries=retries)

    def _tries(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        *,
        fresh: bool,
        retries: int,
        attempt: int = 0,
        reauthenticated: bool = False,
    ) -> Any:
        """Send until an answer is final; ``attempt``/``reauthenticated`` say where a read
        that began in a batch (:meth:`get_many`) goes on."""
        while True:
            started = time.perf_counter()
            try:
                response = self._send(method, path, params, fresh=fresh, auth=self.auth)
            except errors.PVEError as exc:
                # The login inside the auth hook failed. A login changes nothing on the server,
                # so a read may try again when the failure was transient.
                if attempt < retries and _transient(exc):
                    delay = retry_delay(attempt, self.settings.backoff)
                    if self._wait_to_retry(method, path, f"login: {exc.message}", attempt, delay):
                        attempt += 1
                        continue
                raise
            except ResponseTooLargeError as exc:
                self._log_request(method, path, params, None, started, " (too large)")
                raise self._too_large(exc, method, path) from None
            except requests.RequestException as exc:
                self._log_request(method, path, params, None, started, f" ({type(exc).__name__})")
                error = self._transport_error(exc, method, path)
                if attempt < retries and not isinstance(error, errors.TLSError):
                    delay = retry_delay(attempt, self.settings.backoff)
                    if self._wait_to_retry(method, path, str(error), attempt, delay):
                        attempt += 1
                        continue
                raise error from None
            self._log_request(method, path, params, response, started)
            status = response.status_code
            if status == 401 and isinstance(self.auth, TicketAuth) and not reauthenticated:
                reauthenticated = True
                self.auth.refresh_after_401(response.request.headers.get("Cookie"))
                continue  # the server refused before running anything: safe to repeat once
            if method == _READ and status in RETRY_STATUSES and attempt < retries:
                delay = retry_delay(attempt, self.settings.backoff, response.headers)
                if self._wait_to_retry(method, path, f"HTTP {status}", attempt, delay):
                    _release(response)
                    attempt += 1
                    continue
            if method == _READ:
                return self._settle(path, params, response)
            data = self._unwrap(method, path, response)
            self._written(method, path, params, data)
            return data

    def _settle(self, path: str, params: dict[str, Any], response: requests.Response) -> Any:
        """The data of a read's final answer (a mapped error raised), filed in the cache."""
        data = self._unwrap(_READ, path, response)
        self._remember(path, response)
        self._memo_put(path, params, response)
        return data

    # -- many reads in one batch (get_many) ---------------------------------------------------

    def _batch(
        self,
        paths: Sequence[str],
        batch: list[int],
        params: dict[str, Any],
        in_flight: int,
        out: list[Any],
        resume: dict[int, tuple[requests.Response | errors.PVEError, str]],
    ) -> None:
        """Send the reads ``batch`` (indices into ``paths``) in one lean batch: attempt 0
        of each. A final outcome goes to ``out``; one that :meth:`_tries` would try again
        (a retryable status or transport error, a refused ticket) to ``resume``."""
        pool = self._lean
        assert pool is not None
        retries = self.settings.retries
        query = "?" + urlencode(params, doseq=True) if params else ""
        headers = self._lean_headers()
        first = requests.PreparedRequest()
        first.method = _READ
        first.url = pool.origin + self._lean_target(paths[batch[0]], query)
        first.headers = headers
        try:
            # Once for the batch: a ticket login or renewal, or the token's header.
            self._lean_auth(first, self.auth)
        except errors.PVEError as exc:
            # The login inside the auth hook failed: attempt 0 of every read failed so.
            for i in batch:
                if retries and _transient(exc):
                    resume[i] = (exc, f"login: {exc.message}")
                else:
                    out[i] = exc
            return
        items: list[tuple[str, requests.PreparedRequest]] = []
        for i in batch:
            target = self._lean_target(paths[i], query)
            request = requests.PreparedRequest()
            request.method = _READ
            request.url = pool.origin + target
            request.headers = headers  # what was sent: the same for every read
            items.append((target, request))
        ticket = isinstance(self.auth, TicketAuth)
        note = f" (batch of {len(items)})"
        started = time.perf_counter()
        answers = pool.get_many(items, headers, in_flight=max(1, in_flight))
        for i, answer in zip(batch, answers, strict=True):
            path = paths[i]
            if isinstance(answer, ResponseTooLargeError):
                self._log_request(_READ, path, params, None, started, " (too large)" + note)
                out[i] = self._too_large(answer, _READ, path)
                continue
            if isinstance(answer, requests.RequestException):
                why = f" ({type(answer).__name__}){note}"
                self._log_request(_READ, path, params, None, started, why)
                error = self._transport_error(answer, _READ, path)
                if retries and not isinstance(error, errors.TLSError):
                    resume[i] = (error, str(error))
                else:
                    out[i] = error
                continue
            self._log_request(_READ, path, params, answer, started, note)
            status = answer.status_code
            if (status == 401 and ticket) or (status in RETRY_STATUSES and retries):
                resume[i] = (answer, f"HTTP {status}")
                continue
            try:
                out[i] = self._settle(path, params, answer)
            except errors.PVEError as exc:
                out[i] = exc

    def _resume(
        self,
        path: str,
        params: dict[str, Any],
        fresh: bool,
        outcome: requests.Response | errors.PVEError,
        why: str,
    ) -> Any:
        """Go on with a read whose attempt 0 was sent in a batch, as :meth:`_tries` would
        have after that answer: re-log in once on 401, else wait and go on from attempt 1.

        The call's deadline is the one :meth:`get` gives a read, less the one try the batch
        already spent (the batch itself is bounded per request and by the caller's limit).
        """
        retries = self.settings.retries
        spent = timeout_budget(self.settings.timeout) or 0.0
        with time_limit(self._call_deadline(retries) - spent):
            if isinstance(outcome, errors.PVEError):
                delay = retry_delay(0, self.settings.backoff)
                if self._wait_to_retry(_READ, path, why, 0, delay):
                    return self._tries(_READ, path, params, fresh=fresh, retries=retries, attempt=1)
                raise outcome
            if outcome.status_code == 401 and isinstance(self.auth, TicketAuth):
                self.auth.refresh_after_401(outcome.request.headers.get("Cookie"))
                return self._tries(
                    _READ, path, params, fresh=fresh, retries=retries, reauthenticated=True
                )
            delay = retry_delay(0, self.settings.backoff, outcome.headers)
            if self._wait_to_retry(_READ, path, why, 0, delay):
                _release(outcome)
                return self._tries(_READ, path, params, fresh=fresh, retries=retries, attempt=1)
            return self._settle(path, params, outcome)  # raises the status's error

    def _wait_to_retry(self, method: str, path: str, why: str, attempt: int, delay: float) -> bool:
        """Sleep ``delay`` before retry ``attempt + 1``; ``False`` when it cannot fit in the
        call's deadline (a long ``Retry-After``): then the caller gives up at once."""
        from ._transport import current_limit

        retries = self.settings.retries
        limit = current_limit()
        if limit is not None and time.monotonic() + delay >= limit:
            self.log.info(
                "[%s] %s %s: %s; no retry: waiting %.1f s would pass the call's deadline",
                self.profile,
                method,
                path,
                why,
                delay,
            )
            return False
        self._retry_note(method, path, why, attempt, retries, delay)
        time.sleep(delay)
        return True

    def _retry_note(
        self, method: str, path: str, why: str, attempt: int, retries: int, delay: float
    ) -> None:
        self.log.info(
            "[%s] %s %s: %s; retry %d/%d in %.2f s",
            self.profile,
            method,
            path,
            why,
            attempt + 1,
            retries,
            delay,
        )

    # -- the cache layer: what is held, and what a write makes stale --------------------------

    def _relative(self, url: str) -> str | None:
        parts = urlsplit(url)
        api = self.settings.api_path
        if not parts.path.startswith(api):
            return None
        return parts.path[len(api) :] or "/"

    def _remember(self, path: str, response: requests.Response) -> None:
        """File the requests-cache key of a stored answer under its path."""
        key = getattr(response, "cache_key", None)
        if self._cached and key:
            self._layer.add_key(path, key)

    def _load_keys(self) -> None:
        """File the keys of answers stored before this client existed (a persistent cache).

        pvekit's own sessions put the URL path in every key (:func:`~pvekit._transport.
        cache_key`), so this reads the keys only, never a stored answer; only a key of
        another shape (an injected session's, an older file's) costs reading its answer.
        """
        self._keys_loaded = True
        cache = self.session.cache  # type: ignore[attr-defined]
        api = self.settings.api_path
        try:
            keys = list(cache.responses.keys())
        except Exception as exc:  # an unreadable cache must not break a write
            self.log.debug("[%s] cannot list the cache: %s", self.profile, type(exc).__name__)
            return
        for key in keys:
            url_path, sep, _ = key.partition("#")
            if sep and url_path.startswith(api):
                self._layer.add_key(url_path[len(api) :] or "/", key)
                continue
            try:
                url = getattr(cache.responses[key], "url", None)
            except Exception:  # unreadable or gone: nothing to drop
                continue
            rel = self._relative(url) if isinstance(url, str) else None
            if rel is not None:
                self._layer.add_key(rel, key)

    def _memo_get(self, path: str, params: Mapping[str, Any]) -> bytes | None:
        entry = self._layer.answer(path, _query(params))
        return None if entry is None else entry[1]

    def _memo_put(self, path: str, params: Mapping[str, Any], response: requests.Response) -> None:
        if self._layer.pending_tasks() and path.endswith("/status") and "/tasks/" in path:
            self._task_status(path, response)
        # A persisted answer is kept until requests-cache's own expiry (so the endpoint table
        # and its never-cache rules stay the single source of truth); an answer that skipped
        # requests-cache (per guest, or any with cache="memory") for its TTL from the same table.
        if not self._cached or response.status_code != 200:
            return
        expires = getattr(response, "expires", None)
        if expires is not None:
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
            stamp = expires.timestamp()
        elif not self._persists(path) and (ttl := ttl_for(path)):
            stamp = time.time() + ttl
        else:
            return
        self._layer.put(path, _query(params), stamp, response.content)

    def _written(self, method: str, path: str, params: Mapping[str, Any], data: Any) -> None:
        """A write succeeded: drop what it made stale (per the endpoint table) now and, when
        it answered with a task, again when that task is seen to end."""
        if not self._cached:
            return
        scopes = stale_scopes(method, path, params)
        self._drop(scopes)
        if scopes and isinstance(data, str) and data.startswith("UPID:"):
            self._layer.note_task(data, scopes)

    def _task_status(self, path: str, response: requests.Response) -> None:
        """A task status read: once the task has stopped, its effect has landed."""
        segments = path.split("/")
        if len(segments) != 6 or response.status_code != 200:
            return
        try:
            data = _data_of(response.json())
        except ValueError:
            return
        if isinstance(data, Mapping) and data.get("status") == "stopped":
            self._drop(self._layer.task_ended(unquote(segments[4])))

    def _drop(self, scopes: list[Scope]) -> None:
        if not self._cached or not scopes:
            return
        if not self._keys_loaded:
            self._load_keys()
        keys, hit = self._layer.drop(scopes)
        if keys and self._http_cache:
            drop_cached(self.session, keys)
            self.log.debug(
                "[%s] dropped %d cached answer(s) under %s",
                self.profile,
                len(keys),
                ", ".join(hit[:5]) + (" ..." if len(hit) > 5 else ""),
            )


def _query(params: Mapping[str, Any]) -> Query:
    return tuple(sorted((k, str(v)) for k, v in params.items()))
