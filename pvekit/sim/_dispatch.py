"""One request, transport-free: what both fronts of the simulator call.

The loopback HTTP(S) server (``_server.py``) and the in-process requests adapter
(``_inprocess.py``) both hand the raw request (method, target with query string, headers,
body bytes) to :func:`serve` and write back the :class:`SimResponse` it returns, so routing,
validation, authentication, faults, state and the request log are the same code whichever
way a client arrives.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:  # pragma: no cover
    from ._server import SimCluster

__all__ = ["API_PREFIX", "MAX_BODY", "Headers", "SimResponse", "http_date", "serve"]

API_PREFIX = "/api2/json"
# Characters in a request target that make urlsplit do more than split at "?".
_URL_ODD = re.compile("[#\t\r\n]")
MAX_BODY = 16 * 1024 * 1024


class Headers(MutableMapping[str, str]):
    """Request headers with case-insensitive names (RFC 9110 section 5.1), as PVE reads them.

    Iteration keeps the spelling the client sent, so the request log shows what arrived.
    """

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._d: dict[str, tuple[str, str]] = {}
        for k, v in (items or {}).items():
            self[k] = v

    def __getitem__(self, key: str) -> str:
        return self._d[key.lower()][1]

    def get(self, key: str, default: Any = None) -> Any:
        # Mapping.get, without its __getitem__ call and KeyError: every request reads a few.
        item = self._d.get(key.lower())
        return default if item is None else item[1]

    def __setitem__(self, key: str, value: str) -> None:
        self._d[key.lower()] = (key, value)

    def __delitem__(self, key: str) -> None:
        del self._d[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (k for k, _v in self._d.values())

    def __len__(self) -> int:
        return len(self._d)

    def __repr__(self) -> str:
        return f"Headers({len(self)} names)"  # values may be secrets

    @classmethod
    def _of(cls, fields: dict[str, tuple[str, str]]) -> Headers:
        """Headers over ``{lower-case name: (name as sent, value)}`` (taken, not copied)."""
        out = cls()
        out._d = fields
        return out


def _is_headers(obj: object) -> TypeGuard[Headers]:
    """``isinstance(obj, Headers)``, the exact type first: Headers is an ABC (MutableMapping),
    whose isinstance goes through ABCMeta.__instancecheck__."""
    return type(obj) is Headers or isinstance(obj, Headers)


@dataclass
class SimResponse:
    """What to send back. ``drop`` means: close the connection without an answer."""

    status: int
    reason: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


def _parse_params(raw: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not raw:
        return out
    for k, values in parse_qs(raw, keep_blank_values=True).items():
        out[k] = values[0] if len(values) == 1 else values
    return out


def _json_params(decoded: dict[str, Any]) -> dict[str, Any]:
    # PVE's JSON body reader turns booleans into 0/1 and everything scalar into a string.
    out: dict[str, Any] = {}
    for k, v in decoded.items():
        if v is None:
            continue
        out[k] = "1" if v is True else "0" if v is False else v if isinstance(v, list) else str(v)
    return out


# What json.dumps(payload, separators=(",", ":")) builds on every call, built once (the
# encoder keeps no state between calls).
_ENCODER = json.JSONEncoder(separators=(",", ":"))
_DATE: tuple[int, str] = (-1, "")


def http_date() -> str:
    """``email.utils.formatdate(usegmt=True)`` for now, formatted once per second.

    formatdate rounds to the microsecond, so the last microsecond of a second may print as
    the next one: that instant is formatted afresh rather than taken from the cache.
    """
    global _DATE
    now = time.time()
    sec = int(now)
    if now - sec >= 0.999999:
        return formatdate(now, usegmt=True)
    cached = _DATE
    if cached[0] == sec:
        return cached[1]
    text = formatdate(now, usegmt=True)
    _DATE = (sec, text)
    return text


def response(status: int, reason: str, payload: Any) -> SimResponse:
    """A JSON answer with the headers ``pve-api-daemon`` sends."""
    from ._handlers import RawJSON

    body = payload.body if isinstance(payload, RawJSON) else _ENCODER.encode(payload).encode()
    # The reason phrase carries PVE's message: one latin-1 line.
    phrase = (
        reason
        if reason == "OK"
        else " ".join(reason.split()).encode("latin-1", "replace").decode("latin-1")[:500]
    )
    return SimResponse(
        status,
        phrase or "OK",
        body,
        {
            "Server": "pve-api-daemon/3.0",
            "Content-Type": "application/json;charset=UTF-8",
            "Cache-Control": "max-age=0",
            "Pragma": "no-cache",
            "Expires": http_date(),
            "Content-Length": str(len(body)),
        },
    )


def serve(
    cluster: SimCluster, method: str, target: str, headers: Mapping[str, str], body: bytes
) -> SimResponse:
    """Answer one raw request to ``cluster`` (``target`` is the path with its query)."""
    method = method.upper()
    hdrs = headers if _is_headers(headers) else Headers(headers)
    if method == "HEAD":
        return response(501, "Method 'HEAD' not implemented", {"data": None})
    if target[:1] == "/" and target[:2] != "//" and _URL_ODD.search(target) is None:
        # An origin-form target: what urlsplit answers, without its work (no scheme, no
        # netloc, no fragment, nothing it would strip).
        path, _, query = target.partition("?")
    else:
        split = urlsplit(target)
        path, query = split.path, split.query
    params = _parse_params(query)
    if len(body) > MAX_BODY:
        return response(413, "Request Entity Too Large", {"data": None})
    if body:
        text = body.decode("utf-8", "replace")
        if "application/json" in (hdrs.get("Content-Type") or "").lower():
            try:
                decoded = json.loads(text or "{}")
            except ValueError:
                return response(
                    400,
                    "Parameter verification failed.",
                    {"errors": {"body": "invalid JSON"}, "data": None},
                )
            if isinstance(decoded, dict):
                params.update(_json_params(decoded))
        else:
            params.update(_parse_params(text))
    api_path = path[len(API_PREFIX) :] if path.startswith(API_PREFIX + "/") else None
    if api_path is None:
        cluster.record(method, path, params, hdrs, 404)
        return response(404, "Not Found", {"data": None})
    decision = cluster.faults.decide(method, api_path)
    if decision.delay:
        # Before the handler, as a slow daemon is: a client that times out meanwhile still
        # sees the action applied later.
        time.sleep(decision.delay)
    if decision.drop:
        cluster.record(method, api_path, params, hdrs, 0)
        return SimResponse(0, "", drop=True)
    if decision.status is not None:
        status, reason, payload = decision.status, decision.reason, {"data": None}
    else:
        status, reason, payload = cluster.handle(method, api_path, params, hdrs)
    # Recorded before answering, so a client that got its answer sees its request logged.
    cluster.record(method, api_path, params, hdrs, status)
    return response(status, reason, payload)
