"""The lean read path: bulk GETs on pooled ``http.client`` connections.

A per-guest read (config, status, agent) through ``requests`` costs ~1.4-2 ms of client CPU,
of which the exchange itself (TLS, http.client) is ~0.3 ms: the rest is requests' session
machinery (settings merge, hooks, cookie jar, request preparation) and urllib3's pool,
retry and timeout objects, measured with cProfile (BENCHMARKS.md, "Where a read's CPU goes").
On a table of 1,000 guests that, not the network, sets the pace.

:class:`LeanPool` sends the GETs of one profile on keep-alive connections it keeps itself,
with the profile's TLS settings (CA validation against ``ca_file`` or requests' bundle, or the
pinned SHA-256 fingerprint, checked right after the handshake and before a byte of the request
is written), its timeout (per socket operation, plus the call's total deadline enforced by the
same watchdog as :class:`~pvekit._transport.DeadlineAdapter`) and its size cap on the
decompressed answer. Failures are raised as the ``requests`` exceptions the requests path
raises, so the API client maps them to pvekit errors in one place.

Only GETs take this path, only on the sessions pvekit builds itself (an injected session is
always used as given), only without a proxy, and only while the adapter pvekit mounted is
still the one serving the profile's URL (see :meth:`ApiClient._lean_ok`).

The answer is read by the small parser below (``_read_head``, ``_read_body``, ``_line``), not by
a library, because the measured alternatives cost more CPU than the lean path can give up
(docs/robustness.md, "Which parser reads the answer"): per sequential config read over
HTTPS, this parser 358-411 us, http.client's own ``HTTPResponse`` 519 us, h11 0.16 582-591 us;
the parser alone on one 777-byte answer, 19-35 us, 65-84 us and 118-156 us (2026-12-03, shared
2-core machine, load average ~1). h11 passed this module's tests but added ~0.2 ms per read.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import re
import select
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from ._transport import (
    _WATCHDOG,
    ResponseTooLargeError,
    _Deadline,
    _owner_lock,
    current_limit,
    timeout_budget,
)

__all__ = ["LeanPool"]

_RETRYABLE_ON_REUSE = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)


def _split_timeout(timeout: Any) -> tuple[float | None, float | None]:
    if isinstance(timeout, tuple | list) and len(timeout) == 2:
        return timeout[0], timeout[1]
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        return float(timeout), float(timeout)
    return None, None


def _tls_context(verify: bool | str, pinned: bool) -> ssl.SSLContext:
    if pinned or verify is False:
        # The pin, not a CA, is the check (or the profile turned checks off, loudly).
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    import os

    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    bundle = DEFAULT_CA_BUNDLE_PATH if verify is True else verify
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


# What http.client refuses in a request target and in header values (CR/LF injection).
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_BAD_NAME = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
# http.client's limits on what a server may send before the body.
_MAX_LINE = 65536
_MAX_HEADERS = 100


def _request_head(target: str, headers: Mapping[str, str]) -> bytes | None:
    """The GET's request line and headers, or ``None`` when a header is not sendable."""
    if _BAD_TARGET.search(target):
        return None
    lines = [f"GET {target} HTTP/1.1"]
    for name, value in headers.items():
        if not name or _BAD_NAME.search(name) or _BAD_VALUE.search(value):
            return None
        lines.append(f"{name}: {value}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        return None


def _line(fp: Any) -> bytes:
    line: bytes = fp.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise http.client.LineTooLong("header line")
    return line


def _read_head(fp: Any) -> tuple[str, int, str, list[tuple[str, str]]]:
    """(version, status, reason, header fields) of the next final answer (1xx skipped).

    http.client parses headers with the email package (about a third of a small read's
    CPU, measured): an answer's head is simple enough to read here, within its limits.
    """
    while True:
        line = _line(fp)
        if not line:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        parts = line.decode("iso-8859-1").rstrip("\r\n").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise http.client.BadStatusLine(line.decode("iso-8859-1")[:80])
        try:
            status = int(parts[1])
        except ValueError:
            raise http.client.BadStatusLine(line.decode("iso-8859-1")[:80]) from None
        if not 100 <= status <= 999:
            raise http.client.BadStatusLine(line.decode("iso-8859-1")[:80])
        fields: list[tuple[str, str]] = []
        while True:
            raw = _line(fp)
            if raw in (b"\r\n", b"\n", b""):
                break
            if len(fields) >= _MAX_HEADERS:
                raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
            text = raw.decode("iso-8859-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and fields:  # an obsolete folded line
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {text.strip()}")
                continue
            name, sep, value = text.partition(":")
            if not sep or not name.strip():
                raise http.client.HTTPException("malformed header line in the answer")
            fields.append((name.strip(), value.strip()))
        if 100 <= status < 200:
            continue  # 100 Continue and other informational answers precede the real one
        return parts[0], status, parts[2] if len(parts) > 2 else "", fields


def _read_body(
    fp: Any,
    status: int,
    headers: CaseInsensitiveDict[str],
    limit: int,
    request: requests.PreparedRequest,
) -> tuple[bytes, bool]:
    """(body as sent, connection reusable), refusing more than ``limit`` bytes."""
    if status in (204, 304):
        return b"", True
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        body = bytearray()
        while True:
            size_line = _line(fp).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise http.client.IncompleteRead(bytes(body)) from None
            if size == 0:
                while _line(fp) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields: not used
                return bytes(body), True
            if len(body) + size > limit:
                raise ResponseTooLargeError(limit, request=request)
            chunk = fp.read(size + 2)
            if len(chunk) < size + 2:
                raise http.client.IncompleteRead(bytes(body) + chunk)
            body += chunk[:size]
    length = headers.get("Content-Length")
    if length is not None:
        try:
            want = int(length.strip())
        except ValueError:
            raise http.client.HTTPException(f"invalid Content-Length {length[:40]!r}") from None
        if want < 0:
            raise http.client.HTTPException(f"invalid Content-Length {length[:40]!r}")
        if want > limit:
            raise ResponseTooLargeError(limit, request=request)
        data: bytes = fp.read(want)
        if len(data) < want:
            raise http.client.IncompleteRead(data, want - len(data))
        return data, True
    data = fp.read(limit + 1)  # no length: the answer ends with the connection
    if len(data) > limit:
        raise ResponseTooLargeError(limit, request=request)
    return data, False


def _discard(conn: http.client.HTTPConnection) -> None:
    """Close a connection and the reader made from its socket (which holds the fd too)."""
    fp = getattr(conn, "_pvekit_fp", None)
    if fp is not None:
        conn._pvekit_fp = None  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            fp.close()
    conn.close()


class LeanPool:
    """Keep-alive connections to one ``scheme://host:port`` for the profile's GETs."""

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool | str,
        fingerprint: str | None,
        timeout: Any,
        max_bytes: int,
        maxsize: int = 32,
    ) -> None:
        parts = urlsplit(base_url)
        self.scheme = parts.scheme
        self.hostname = parts.hostname or ""
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.fingerprint = fingerprint.replace(":", "").lower() if fingerprint else None
        self.connect_timeout, self.read_timeout = _split_timeout(timeout)
        self.budget = timeout_budget(timeout)
        self.max_bytes = max_bytes
        self.maxsize = maxsize
        self._context = (
            _tls_context(verify, self.fingerprint is not None) if self.scheme == "https" else None
        )
        # Unchecked TLS warns as urllib3 does on the requests path (the profile asked for it).
        self._insecure = self.scheme == "https" and verify is False and self.fingerprint is None
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False
        #: connections opened so far (tests and benchmarks count on it)
        self.opened = 0

    # -- connections --------------------------------------------------------------------------

    def _new_connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self._context is not None:
            conn = http.client.HTTPSConnection(
                self.hostname, self.port, timeout=self.connect_timeout, context=self._context
            )
        else:
            conn = http.client.HTTPConnection(
                self.hostname, self.port, timeout=self.connect_timeout
            )
        self.opened += 1
        return conn

    def _connect(self, conn: http.client.HTTPConnection) -> None:
        if self._insecure:
            import warnings

            from urllib3.exceptions import InsecureRequestWarning

            warnings.warn(
                f"Unverified HTTPS request is being made to host '{self.hostname}': the "
                "profile turned certificate checks off (verify_ssl=False)",
                InsecureRequestWarning,
                stacklevel=2,
            )
        conn.connect()
        if self.fingerprint is not None:
            sock: Any = conn.sock
            der = sock.getpeercert(binary_form=True) or b""
            got = hashlib.sha256(der).hexdigest()
            if not hmac.compare_digest(got, self.fingerprint):
                _discard(conn)
                raise requests.exceptions.SSLError(
                    f"Fingerprints did not match. Expected {self.fingerprint!r}, got {got!r}"
                )
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _checkout(self) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection still open (``True``: reused), or a new one."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._new_connection(), False
            sock = conn.sock
            if sock is None:
                continue
            try:
                # Readable while idle means the server closed it (or sent junk): drop it.
                readable, _, _ = select.select([sock], [], [], 0)
            except (OSError, ValueError):
                readable = [sock]
            if readable:
                _discard(conn)
                continue
            return conn, True

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.maxsize:
                self._idle.append(conn)
                return
        _discard(conn)

    @property
    def idle(self) -> int:
        """Connections held open and idle right now."""
        return len(self._idle)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(OSError):
                _discard(conn)

    # -- one GET ------------------------------------------------------------------------------

    def get(
        self, target: str, headers: Mapping[str, str], request: requests.PreparedRequest
    ) -> requests.Response:
        """GET ``target`` (path and query, below the origin); the answer read and capped.

        ``request`` is the prepared request the answer will point back to (its headers, with
        the auth applied, are what was sent).
        """
        if self._closed:
            raise requests.exceptions.ConnectionError("the connection pool is closed")
        now = time.monotonic()
        budget = self.budget
        when = now + budget if budget is not None else None
        limit = current_limit()
        if limit is not None:
            when = limit if when is None else min(when, limit)
        if when is not None and when <= now:
            raise requests.exceptions.ReadTimeout(
                "no time left for this request (its deadline has passed); nothing was sent",
                request=request,
            )
        deadline = _Deadline(when) if when is not None else None
        if deadline is not None:
            _WATCHDOG.arm(deadline)
        try:
            for attempt in (0, 1):
                conn, reused = self._checkout()
                try:
                    return self._exchange(conn, reused, target, headers, request, deadline, when)
                except _RETRYABLE_ON_REUSE as exc:
                    _discard(conn)
                    # A kept-alive connection the server had just closed: nothing reached it,
                    # so the GET goes once more on a new connection.
                    if reused and attempt == 0 and not (deadline and deadline.fired):
                        continue
                    raise self._mapped(exc, request, deadline, when, now) from None
                except (OSError, http.client.HTTPException, ssl.CertificateError) as exc:
                    _discard(conn)
                    raise self._mapped(exc, request, deadline, when, now) from None
                except BaseException:
                    _discard(conn)
                    raise
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            if deadline is not None:
                deadline.cancel()

    def get_many(
        self,
        items: Sequence[tuple[str, requests.PreparedRequest]],
        headers: Mapping[str, str],
        *,
        in_flight: int,
    ) -> list[requests.Response | requests.RequestException]:
        """GET each ``(target, request)`` of ``items`` with the same ``headers``, at most
        ``in_flight`` at once; one entry per item, in order: the answer as :meth:`get`
        returns it, or the ``requests`` exception :meth:`get` would have raised.

        (Sequential for now: the interface the batch read path is built against.)
        """
        out: list[requests.Response | requests.RequestException] = []
        for target, request in items:
            try:
                out.append(self.get(target, headers, request))
            except requests.RequestException as exc:
                out.append(exc)
        return out

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        reused: bool,
        target: str,
        headers: Mapping[str, str],
        request: requests.PreparedRequest,
        deadline: _Deadline | None,
        when: float | None,
    ) -> requests.Response:
        if deadline is not None:
            with _owner_lock:
                deadline.conn = conn
                conn._pvekit_deadline = deadline  # type: ignore[attr-defined]
        if not reused:
            try:
                self._connect(conn)
            except TimeoutError as exc:
                raise requests.exceptions.ConnectTimeout(
                    f"connect timeout ({self.connect_timeout} s)", request=request
                ) from exc
            except (ssl.SSLError, ssl.CertificateError) as exc:
                raise requests.exceptions.SSLError(str(exc), request=request) from None
        if deadline is not None and deadline.fired:
            raise requests.exceptions.ReadTimeout(
                "no complete answer within the request's total deadline", request=request
            )
        if conn.sock is not None and self.read_timeout is not None:
            left = None if when is None else max(0.001, when - time.monotonic())
            read = self.read_timeout
            conn.sock.settimeout(read if left is None else min(read, left))
        head = _request_head(target, headers)
        if head is None:
            # http.client would quote the offending value (it may be a credential): say less.
            raise requests.exceptions.InvalidHeader(
                "a request header was rejected as invalid", request=request
            )
        sock: Any = conn.sock
        sock.sendall(head)
        fp = getattr(conn, "_pvekit_fp", None)
        if fp is None:
            fp = conn._pvekit_fp = sock.makefile("rb")  # type: ignore[attr-defined]
        version, status, reason, fields = _read_head(fp)
        received: CaseInsensitiveDict[str] = CaseInsensitiveDict(fields)
        limit = self.max_bytes
        raw, reusable = _read_body(fp, status, received, limit, request)
        body = self._decoded(raw, received.get("Content-Encoding"), request)
        response = requests.Response()
        response.status_code = status
        response.reason = reason
        response.headers = received
        response._content = body
        response.url = self.origin + target
        response.request = request
        response.encoding = "utf-8"
        connection = received.get("Connection", "").lower()
        if (
            not reusable
            or "close" in connection
            or (version == "HTTP/1.0" and "keep-alive" not in connection)
        ):
            _discard(conn)
        else:
            self._checkin(conn)
        return response

    def _decoded(
        self, raw: bytes, encoding: str | None, request: requests.PreparedRequest
    ) -> bytes:
        if not encoding or encoding.strip().lower() == "identity":
            return raw
        kind = encoding.strip().lower()
        if kind not in ("gzip", "x-gzip", "deflate"):
            raise requests.exceptions.ContentDecodingError(
                f"unsupported Content-Encoding {kind!r}", request=request
            )
        wbits = 16 + zlib.MAX_WBITS if kind != "deflate" else zlib.MAX_WBITS
        try:
            inflater = zlib.decompressobj(wbits)
            out = inflater.decompress(raw, self.max_bytes + 1)
        except zlib.error:
            if kind != "deflate":
                raise requests.exceptions.ContentDecodingError(
                    "the answer's gzip stream is damaged", request=request
                ) from None
            try:  # raw deflate, as some servers send
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                out = inflater.decompress(raw, self.max_bytes + 1)
            except zlib.error:
                raise requests.exceptions.ContentDecodingError(
                    "the answer's deflate stream is damaged", request=request
                ) from None
        if len(out) > self.max_bytes or inflater.unconsumed_tail:
            raise ResponseTooLargeError(self.max_bytes, request=request)
        return out

    def _mapped(
        self,
        exc: BaseException,
        request: requests.PreparedRequest,
        deadline: _Deadline | None,
        when: float | None,
        started: float,
    ) -> requests.RequestException:
        if isinstance(exc, requests.RequestException):
            if (
                deadline is not None
                and deadline.fired
                and not isinstance(exc, requests.exceptions.SSLError | ResponseTooLargeError)
            ):
                return self._late(request, when, started)
            return exc
        if deadline is not None and deadline.fired:
            return self._late(request, when, started)
        if isinstance(exc, TimeoutError):
            return requests.exceptions.ReadTimeout(
                f"read timed out (read timeout={self.read_timeout})", request=request
            )
        if isinstance(exc, ssl.SSLError | ssl.CertificateError):
            return requests.exceptions.SSLError(str(exc), request=request)
        return requests.exceptions.ConnectionError(f"{type(exc).__name__}: {exc}", request=request)

    @staticmethod
    def _late(
        request: requests.PreparedRequest, when: float | None, started: float
    ) -> requests.RequestException:
        span = (when - started) if when is not None else 0.0
        return requests.exceptions.ReadTimeout(
            f"no complete answer within {span:.3g} s (the request's total deadline)",
            request=request,
        )
