"""The lean read path: bulk GETs on pooled ``http.client`` connections.

A per-guest read (config, status, agent) through ``requests`` costs ~1.4-2 ms of client CPU,
of which the exchange itself (TLS, http.client) is ~0.3 ms: the rest is requests' session
machinery (settings merge, hooks, cookie jar, request preparation) and urllib3's pool,
retry and timeout objects, measured with cProfile (BENCHMARKS.md, "Where a read's CPU goes").
On a table of 1,000 guests that, not the network, sets the pace.

:class:`LeanPool` sends the GETs of one profile on keep-alive connections it keeps itself,
with the profile's TLS settings (CA validation against ``ca_file`` or requests' bundle, or the
pinned SHA-256 fingerprint, checked right after the handshake and before a byte of the request
is written), its timeout (per socket operation, plus the call's total deadline: for ``get``
enforced by the same watchdog as :class:`~pvekit._transport.DeadlineAdapter`, for ``get_many``
by its event loop) and its size cap on the decompressed answer. Failures are raised as the
``requests`` exceptions the requests path raises, so the API client maps them to pvekit errors
in one place.

Only GETs take this path, only on the sessions pvekit builds itself (an injected session is
always used as given), only without a proxy, and only while the adapter pvekit mounted is
still the one serving the profile's URL (see :meth:`ApiClient._lean_ok`).

The answer is read by the small incremental parser below (:class:`_Answer`, fed the bytes
as they arrive), not by a library, because the measured alternatives cost more CPU than the
lean path can give up (docs/robustness.md, "Which parser reads the answer"): per sequential
config read over HTTPS, this parser 358-411 us, http.client's own ``HTTPResponse`` 519 us, h11
0.16 582-591 us; the parser alone on one 777-byte answer, 19-35 us, 65-84 us and 118-156 us
(2026-12-03, shared 2-core machine, load average ~1). h11 passed this module's tests but added
~0.2 ms per read. It is the only parser of the module: :meth:`LeanPool.get` feeds it from a
blocking socket, :meth:`LeanPool.get_many` from non-blocking ones. Fed from ``recv`` rather
than read through a ``makefile`` buffer, it holds every byte received, so an answer followed
by bytes it did not frame costs its connection instead of corrupting the next read. Whole
parser, in memory, on a ~1 kB config-sized answer with 8 header fields: 6.4-6.5 us against
6.9 us for the line-reader pair it replaced (``_read_head``/``_read_body`` on a ``makefile``).
``get`` per read, before/after, one interleaved run: within the run-to-run noise (HTTP 0 ms
66-69 us before, 72 us after; HTTPS 0 ms 73-75 and 75-76 us; HTTP 20 ms 163 and 143 us; HTTPS
20 ms 257 and 259 us; load average 1-1.8).

:meth:`LeanPool.get_many` is the per-guest fan-out without threads: the calling thread drives
up to ``in_flight`` non-blocking keep-alive connections with a selector (non-blocking connect
and TLS handshake, the pin checked before a byte is written), each request with ``get``'s
limits (connect timeout, read timeout as the longest silence, total budget and the thread's
``time_limit``, checked by the loop itself: no watchdog) and ``get``'s answer, or its
exception, per item. A connection that read a clean answer goes straight on with the next
item. Client CPU per config read, 300 reads (``benchmarks/bench_lean_batch.py``, 5 rounds,
simulator in a child process, shared 2-core machine, load average 0.6-2.5, 2026-12-04),
sequential ``get`` / one ``get_many(in_flight=16)`` opening 15 of its 16 connections / the
same on 16 already open:

- HTTP, 0 ms: 81 / 73 / 72 us; 20 ms: 271 / 114 / 110 us
- HTTPS with the pinned certificate, 0 ms: 97 / 109 / 81 us; 20 ms: 336 / 168 / 131 us

(the 16-thread fan-out over ``get`` measured 0.56 ms at 0 ms and 0.66-0.73 ms at 20 ms per
read through the API client, BENCHMARKS.md; these figures are the pool's alone).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import http.client
import os
import re
import select
import selectors
import socket
import ssl
import threading
import time
import zlib
from collections import deque
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


def _request_line(target: str) -> bytes | None:
    """``GET target HTTP/1.1``, or ``None`` when the target is not sendable."""
    if _BAD_TARGET.search(target):
        return None
    try:
        return f"GET {target} HTTP/1.1\r\n".encode("latin-1")
    except UnicodeEncodeError:
        return None


def _header_block(headers: Mapping[str, str]) -> bytes | None:
    """The header lines and the blank line ending them, or ``None`` when one is not sendable."""
    lines = []
    for name, value in headers.items():
        if not name or _BAD_NAME.search(name) or _BAD_VALUE.search(value):
            return None
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        return None


def _request_head(target: str, headers: Mapping[str, str]) -> bytes | None:
    """The GET's request line and headers, or ``None`` when a part is not sendable."""
    line = _request_line(target)
    block = _header_block(headers)
    return None if line is None or block is None else line + block


_BLANK = (b"\r\n", b"\n", b"")
# What to read per recv: a whole small answer, or one TLS record's worth, in one call.
_RECV = 65536
# Parser states: the status line, header lines, then the body by length, by chunks (size
# line, data with its CRLF, trailer lines) or up to the end of the connection.
_STATUS, _FIELDS, _LENGTH, _SIZE, _CHUNK, _TRAILER, _TO_CLOSE, _DONE = range(8)


_NO_HEADERS: CaseInsensitiveDict[str] = CaseInsensitiveDict()


class _Answer:
    """One HTTP/1.1 answer, parsed from the bytes as they arrive (:meth:`feed`).

    The lean path's only parser: :meth:`LeanPool.get` feeds it from a blocking socket and
    :meth:`LeanPool.get_many` from non-blocking ones, so both read by the same rules and
    limits (http.client's: 65,536-byte lines, 100 header fields). http.client parses headers
    with the email package (about a third of a small read's CPU, measured): an answer's head
    is simple enough to read here. Nothing is buffered outside this object, so bytes the
    server sent past the answer are seen (:attr:`leftover`) and the connection dropped.
    """

    __slots__ = (
        "_buf",
        "_chunk",
        "_eof",
        "_got",
        "_limit",
        "_need",
        "_parts",
        "_pos",
        "_request",
        "_size",
        "_state",
        "_want",
        "fields",
        "headers",
        "reason",
        "reusable",
        "started",
        "status",
        "version",
    )

    def __init__(self, limit: int, request: requests.PreparedRequest) -> None:
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._state = _STATUS
        self._limit = limit
        self._request = request
        self._want = self._got = self._need = self._size = 0
        self._parts: list[bytes] = []
        self._chunk: list[bytes] = []
        #: a byte of the answer arrived (a reused connection that failed before is retried)
        self.started = False
        self.version = ""
        self.status = 0
        self.reason = ""
        self.fields: list[tuple[str, str]] = []
        self.headers = _NO_HEADERS  # replaced once the head is read
        #: the body ended by its framing and the connection may carry another request
        self.reusable = False

    def feed(self, data: bytes) -> bool:
        """Take the bytes received (``b""``: the connection ended); ``True`` once complete."""
        if data:
            self.started = True
            if self._pos < len(self._buf):
                self._buf = self._buf[self._pos :] + data
            else:
                self._buf = data
            self._pos = 0
        else:
            self._eof = True
        return self._run()

    @property
    def leftover(self) -> bool:
        """Bytes arrived past the answer (a server sending more than it framed)."""
        return self._pos < len(self._buf)

    def body(self) -> bytes:
        return b"".join(self._parts)

    def _run(self) -> bool:
        while True:
            state = self._state
            if state == _DONE:
                return True
            if state in (_LENGTH, _CHUNK, _TO_CLOSE):
                if not self._take():
                    return False
                continue
            if state == _STATUS and self._whole_head():
                continue
            line = self._line()
            if line is None:
                return False
            if state == _FIELDS:
                self._field(line)
            elif state == _STATUS:
                if not line:
                    raise http.client.RemoteDisconnected(
                        "Remote end closed connection without response"
                    )
                self._status_line(line.decode("iso-8859-1"))
            elif state == _SIZE:
                self._size_line(line)
            elif line in _BLANK:  # the end of the trailer fields (not used)
                self._done(True)

    def _line(self) -> bytes | None:
        """The next line with its ending; ``None`` until it is complete; at the end of the
        connection what is left (``b""`` once nothing is)."""
        buf, pos = self._buf, self._pos
        end = buf.find(b"\n", pos, pos + _MAX_LINE)
        if end >= 0:
            self._pos = end + 1
            return buf[pos : end + 1]
        if len(buf) - pos > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        if not self._eof:
            return None
        self._pos = len(buf)
        rest = buf[pos:]
        if self._state == _FIELDS or (rest and self._state == _STATUS):
            # http.client would take what came as the whole head (and read a body to the
            # end of the connection): a head cut short, by the server or by the deadline's
            # shutdown, is an error, not a truncated answer.
            raise http.client.HTTPException("the connection closed inside the answer's head")
        return rest

    def _whole_head(self) -> bool:
        """Read a head that is all in the buffer in one pass (the usual case: a small answer
        arrives in one recv); ``False`` leaves it to the line-by-line path. Only heads that
        path would read the same way take this one: CRLF line endings, too short for a line
        over the limit, within the header count; the fields go through the same rules."""
        buf, pos = self._buf, self._pos
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0 or end - pos > _MAX_LINE - 2:
            return False
        text = buf[pos:end].decode("iso-8859-1")
        lines = text.split("\r\n")
        if len(lines) > _MAX_HEADERS + 1 or text.count("\n") != len(lines) - 1:
            return False
        self._status_line(lines[0] + "\r\n")
        for line in lines[1:]:
            self._add_field(line)
        self._pos = end + 4
        self._head_done()
        return True

    def _status_line(self, text: str) -> None:
        parts = text.rstrip("\r\n").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise http.client.BadStatusLine(text[:80])
        try:
            status = int(parts[1])
        except ValueError:
            raise http.client.BadStatusLine(text[:80]) from None
        if not 100 <= status <= 999:
            raise http.client.BadStatusLine(text[:80])
        self.version = parts[0]
        self.status = status
        self.reason = parts[2] if len(parts) > 2 else ""
        self.fields = []
        self._state = _FIELDS

    def _field(self, line: bytes) -> None:
        if line in _BLANK:
            self._head_done()
            return
        if len(self.fields) >= _MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
        self._add_field(line.decode("iso-8859-1"))

    def _add_field(self, text: str) -> None:
        fields = self.fields
        text = text.rstrip("\r\n")
        if text[:1] in (" ", "\t") and fields:  # an obsolete folded line
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {text.strip()}")
            return
        name, sep, value = text.partition(":")
        if not sep or not name.strip():
            raise http.client.HTTPException("malformed header line in the answer")
        fields.append((name.strip(), value.strip()))

    def _head_done(self) -> None:
        if self.status < 200:
            self._state = _STATUS  # 100 Continue and other informational answers: skipped
            return
        headers = self.headers = CaseInsensitiveDict(self.fields)
        if self.status in (204, 304):
            self._done(True)
        elif "chunked" in headers.get("Transfer-Encoding", "").lower():
            self._state = _SIZE
        elif (length := headers.get("Content-Length")) is not None:
            try:
                want = int(length.strip())
            except ValueError:
                raise http.client.HTTPException(f"invalid Content-Length {length[:40]!r}") from None
            if want < 0:
                raise http.client.HTTPException(f"invalid Content-Length {length[:40]!r}")
            if want > self._limit:
                raise ResponseTooLargeError(self._limit, request=self._request)
            self._want = want
            if want:
                self._state = _LENGTH
            else:
                self._done(True)
        else:
            self._state = _TO_CLOSE  # no length: the answer ends with the connection

    def _size_line(self, line: bytes) -> None:
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise http.client.IncompleteRead(self.body()) from None
        if size < 0:
            raise http.client.IncompleteRead(self.body())
        if size == 0:
            self._state = _TRAILER
            return
        if self._got + size > self._limit:
            raise ResponseTooLargeError(self._limit, request=self._request)
        self._size = size
        self._need = size + 2  # the chunk and its CRLF
        self._chunk = []
        self._state = _CHUNK

    def _take(self) -> bool:
        """Move buffered bytes into the body; ``False`` while more must arrive."""
        buf, pos = self._buf, self._pos
        state = self._state
        if state == _TO_CLOSE:
            if pos < len(buf):
                self._parts.append(buf[pos:])
                self._got += len(buf) - pos
                self._buf, self._pos = b"", 0
                if self._got > self._limit:
                    raise ResponseTooLargeError(self._limit, request=self._request)
            if self._eof:
                self._done(False)
                return True
            return False
        need = self._want - self._got if state == _LENGTH else self._need
        piece = buf[pos : pos + need]
        end = pos + len(piece)
        if end == len(buf):
            self._buf, self._pos = b"", 0
        else:
            self._pos = end
        if state == _LENGTH:
            if piece:
                self._parts.append(piece)
                self._got += len(piece)
            if self._got == self._want:
                self._done(True)
                return True
            if self._eof:
                raise http.client.IncompleteRead(self.body(), self._want - self._got)
            return False
        if piece:
            self._chunk.append(piece)
            self._need -= len(piece)
        if not self._need:
            self._parts.append(b"".join(self._chunk)[: self._size])
            self._got += self._size
            self._chunk = []
            self._state = _SIZE
            return True
        if self._eof:
            raise http.client.IncompleteRead(self.body() + b"".join(self._chunk))
        return False

    def _done(self, reusable: bool) -> None:
        self._state = _DONE
        self.reusable = reusable and not self._eof


def _discard(conn: http.client.HTTPConnection) -> None:
    with contextlib.suppress(OSError):
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

    def _warn_insecure(self) -> None:
        import warnings

        from urllib3.exceptions import InsecureRequestWarning

        warnings.warn(
            f"Unverified HTTPS request is being made to host '{self.hostname}': the "
            "profile turned certificate checks off (verify_ssl=False)",
            InsecureRequestWarning,
            stacklevel=3,
        )

    def _pin_error(self, sock: Any) -> requests.RequestException | None:
        """The error when the peer's certificate is not the pinned one (``None``: it is)."""
        if self.fingerprint is None:
            return None
        der = sock.getpeercert(binary_form=True) or b""
        got = hashlib.sha256(der).hexdigest()
        if hmac.compare_digest(got, self.fingerprint):
            return None
        return requests.exceptions.SSLError(
            f"Fingerprints did not match. Expected {self.fingerprint!r}, got {got!r}"
        )

    def _connect(self, conn: http.client.HTTPConnection) -> None:
        if self._insecure:
            self._warn_insecure()
        conn.connect()
        pin = self._pin_error(conn.sock)
        if pin is not None:
            _discard(conn)
            raise pin
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _checkout(self, *, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection still open (``True``: reused), or a new one (always if ``fresh``)."""
        while not fresh:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
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
        return self._new_connection(), False

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.maxsize:
                self._idle.append(conn)
                return
        _discard(conn)

    @staticmethod
    def _keep(answer: _Answer, sock: Any) -> bool:
        """Whether the connection that carried ``answer`` may carry another request."""
        if not answer.reusable or answer.leftover:
            return False
        connection = answer.headers.get("Connection", "").lower()
        if "close" in connection or (
            answer.version == "HTTP/1.0" and "keep-alive" not in connection
        ):
            return False
        # Decrypted bytes waiting in the TLS layer would not show to the idle check's select.
        pending = getattr(sock, "pending", None)
        return not (pending is not None and pending())

    @property
    def idle(self) -> int:
        """Connections held open and idle right now."""
        return len(self._idle)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            _discard(conn)

    # -- one GET ------------------------------------------------------------------------------

    def _when(self, now: float) -> float | None:
        """The monotonic time a request started at ``now`` must be answered by, if any."""
        budget = self.budget
        when = now + budget if budget is not None else None
        limit = current_limit()
        if limit is not None:
            when = limit if when is None else min(when, limit)
        return when

    @staticmethod
    def _no_time(request: requests.PreparedRequest) -> requests.RequestException:
        return requests.exceptions.ReadTimeout(
            "no time left for this request (its deadline has passed); nothing was sent",
            request=request,
        )

    @staticmethod
    def _invalid(request: requests.PreparedRequest) -> requests.RequestException:
        # http.client would quote the offending value (it may be a credential): say less.
        return requests.exceptions.InvalidHeader(
            "a request header was rejected as invalid", request=request
        )

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
        when = self._when(now)
        if when is not None and when <= now:
            raise self._no_time(request)
        head = _request_head(target, headers)
        if head is None:
            raise self._invalid(request)
        deadline = _Deadline(when) if when is not None else None
        if deadline is not None:
            _WATCHDOG.arm(deadline)
        try:
            for attempt in (0, 1):
                conn, reused = self._checkout(fresh=attempt == 1)
                answer = _Answer(self.max_bytes, request)
                try:
                    return self._exchange(conn, reused, head, target, request, answer, deadline)
                except _RETRYABLE_ON_REUSE as exc:
                    _discard(conn)
                    fired = deadline is not None and deadline.fired
                    # A kept-alive connection the server had just closed: nothing came back,
                    # so the GET goes once more, on a new connection.
                    if reused and attempt == 0 and not answer.started and not fired:
                        continue
                    raise self._mapped(exc, request, fired, when, now) from None
                except (OSError, http.client.HTTPException, ssl.CertificateError) as exc:
                    _discard(conn)
                    fired = deadline is not None and deadline.fired
                    raise self._mapped(exc, request, fired, when, now) from None
                except BaseException:
                    _discard(conn)
                    raise
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            if deadline is not None:
                deadline.cancel()

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        reused: bool,
        head: bytes,
        target: str,
        request: requests.PreparedRequest,
        answer: _Answer,
        deadline: _Deadline | None,
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
        sock: Any = conn.sock
        if self.read_timeout is not None:
            when = deadline.when if deadline is not None else None
            left = None if when is None else max(0.001, when - time.monotonic())
            read = self.read_timeout
            sock.settimeout(read if left is None else min(read, left))
        sock.sendall(head)
        recv = sock.recv
        feed = answer.feed
        while not feed(recv(_RECV)):
            pass
        if deadline is not None and deadline.fired:
            # The watchdog's shutdown ends the connection: an answer read to its end may be
            # one it cut.
            raise requests.exceptions.ReadTimeout("the total deadline passed", request=request)
        response = self._response(answer, target, request)
        if self._keep(answer, sock):
            self._checkin(conn)
        else:
            _discard(conn)
        return response

    def _response(
        self, answer: _Answer, target: str, request: requests.PreparedRequest
    ) -> requests.Response:
        received = answer.headers
        response = requests.Response()
        response._content = self._decoded(answer.body(), received.get("Content-Encoding"), request)
        response.status_code = answer.status
        response.reason = answer.reason
        response.headers = received
        response.url = self.origin + target
        response.request = request
        response.encoding = "utf-8"
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
        fired: bool,
        when: float | None,
        started: float,
    ) -> requests.RequestException:
        """The ``requests`` exception for ``exc`` (``fired``: the total deadline passed)."""
        if isinstance(exc, requests.RequestException):
            if fired and not isinstance(exc, requests.exceptions.SSLError | ResponseTooLargeError):
                return self._late(request, when, started)
            return exc
        if fired:
            return self._late(request, when, started)
        if isinstance(exc, TimeoutError):
            return self._read_timeout(request)
        if isinstance(exc, ssl.SSLError | ssl.CertificateError):
            return requests.exceptions.SSLError(str(exc), request=request)
        return requests.exceptions.ConnectionError(f"{type(exc).__name__}: {exc}", request=request)

    def _read_timeout(self, request: requests.PreparedRequest) -> requests.RequestException:
        return requests.exceptions.ReadTimeout(
            f"read timed out (read timeout={self.read_timeout})", request=request
        )

    def _connect_timeout(self, request: requests.PreparedRequest) -> requests.RequestException:
        return requests.exceptions.ConnectTimeout(
            f"connect timeout ({self.connect_timeout} s)", request=request
        )

    @staticmethod
    def _late(
        request: requests.PreparedRequest, when: float | None, started: float
    ) -> requests.RequestException:
        span = (when - started) if when is not None else 0.0
        return requests.exceptions.ReadTimeout(
            f"no complete answer within {span:.3g} s (the request's total deadline)",
            request=request,
        )

    # -- many GETs, one thread ----------------------------------------------------------------

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

        One thread (the caller's) drives up to ``in_flight`` non-blocking keep-alive
        connections with a selector: no worker threads, no watchdog. Each request's limits
        are :meth:`get`'s (connect timeout while connecting and in the TLS handshake, the
        read timeout as the longest silence, the total budget and the thread's
        :func:`~pvekit._transport.time_limit` from the moment the request starts), and the
        answer is read by the same parser. Clean connections go back to the pool, blocking
        again, for later :meth:`get` calls.
        """
        out: list[requests.Response | requests.RequestException | None] = [None] * len(items)
        if self._closed:
            return [
                requests.exceptions.ConnectionError("the connection pool is closed") for _ in items
            ]
        batch = _Batch(self, items, headers, out)
        batch.run(max(1, in_flight))
        return out  # type: ignore[return-value]  # every entry is filled by run()


# Where a slot of the batch is: connecting, in the TLS handshake, sending, or reading.
_CONNECTING, _HANDSHAKE, _SENDING, _READING = range(4)
_WAITING = (BlockingIOError, InterruptedError)


class _Slot:
    """One request of a batch on its connection."""

    __slots__ = (
        "addrs",
        "answer",
        "attempt",
        "conn",
        "errors",
        "events",
        "head",
        "index",
        "limit",
        "phase",
        "request",
        "reused",
        "sent",
        "sock",
        "started",
        "target",
        "when",
    )

    def __init__(
        self, index: int, target: str, request: requests.PreparedRequest, head: bytes
    ) -> None:
        self.index = index
        self.target = target
        self.request = request
        self.head = head
        self.started = 0.0
        self.when: float | None = None  # the total deadline
        self.limit: float | None = None  # the phase's: connect timeout, or longest silence
        self.conn: http.client.HTTPConnection | None = None
        self.sock: Any = None
        self.reused = False
        self.attempt = 0
        self.phase = _CONNECTING
        self.events = 0
        self.sent = 0
        self.addrs: list[Any] = []
        self.errors: list[OSError] = []
        self.answer: _Answer | None = None


class _Batch:
    """The event loop of one :meth:`LeanPool.get_many` call."""

    def __init__(
        self,
        pool: LeanPool,
        items: Sequence[tuple[str, requests.PreparedRequest]],
        headers: Mapping[str, str],
        out: list[requests.Response | requests.RequestException | None],
    ) -> None:
        self.pool = pool
        self.items = items
        self.headers = headers
        self.out = out
        self.block = _header_block(headers)  # the same for every item: checked once
        self.queue = deque(range(len(items)))
        self.selector = selectors.DefaultSelector()
        self.slots: set[_Slot] = set()

    def run(self, width: int) -> None:
        slots, selector, queue = self.slots, self.selector, self.queue
        try:
            while queue or slots:
                while queue and len(slots) < width:
                    self._start()
                if not slots:
                    continue
                now = time.monotonic()
                soonest = None
                for slot in slots:
                    for t in (slot.when, slot.limit):
                        if t is not None and (soonest is None or t < soonest):
                            soonest = t
                timeout = None if soonest is None else max(0.0, soonest - now)
                for key, _ in selector.select(timeout):
                    slot = key.data
                    if slot in slots:
                        self._guarded(slot)
                if soonest is not None and soonest <= time.monotonic():
                    now = time.monotonic()
                    for slot in [s for s in slots if self._expired(s, now)]:
                        self._expire(slot, now)
        except BaseException:
            # A bug or an interrupt, not a transport error: nothing half-read goes back.
            for slot in slots:
                self._drop(slot)
            slots.clear()
            raise
        finally:
            selector.close()

    # -- starting a request -------------------------------------------------------------------

    def _start(self, after: _Slot | None = None) -> bool:
        """Start the next item of the queue (``False``: none left to start). ``after``: a
        slot whose connection just read a clean answer, which goes on with this item."""
        pool = self.pool
        while self.queue:
            index = self.queue.popleft()
            target, request = self.items[index]
            now = time.monotonic()
            when = pool._when(now)
            if when is not None and when <= now:
                self.out[index] = pool._no_time(request)
                continue
            line = _request_line(target)
            if line is None or self.block is None:
                self.out[index] = pool._invalid(request)
                continue
            slot = _Slot(index, target, request, line + self.block)
            slot.started, slot.when = now, when
            self.slots.add(slot)
            if after is None:
                conn, reused = pool._checkout()
                self._begin(slot, conn, reused, now)
            else:
                # Kept within the batch: still non-blocking and registered, just read to its
                # end; a server that closed it meanwhile fails the send or the first read,
                # and the request goes once more on a new connection, as for any reused one.
                slot.sock, slot.events = after.sock, after.events
                if slot.events:
                    self.selector.modify(slot.sock, slot.events, slot)
                assert after.conn is not None
                self._begin(slot, after.conn, True, now, hot=True)
            return True
        return False

    def _begin(
        self,
        slot: _Slot,
        conn: http.client.HTTPConnection,
        reused: bool,
        now: float,
        *,
        hot: bool = False,
    ) -> None:
        slot.conn, slot.reused = conn, reused
        slot.answer = _Answer(self.pool.max_bytes, slot.request)
        slot.sent = 0
        try:
            if reused:
                if not hot:
                    slot.sock = conn.sock
                    slot.sock.setblocking(False)
                self._sending(slot, now)
            else:
                if self.pool._insecure:
                    self.pool._warn_insecure()
                slot.addrs = socket.getaddrinfo(
                    self.pool.hostname, self.pool.port, 0, socket.SOCK_STREAM
                )
                slot.errors = []
                self._dial(slot, now)
        except (OSError, http.client.HTTPException, ssl.CertificateError) as exc:
            self._failed(slot, exc)

    def _dial(self, slot: _Slot, now: float) -> None:
        """Start a non-blocking connect to the next address (as socket.create_connection
        tries them in order, and reports the last failure)."""
        while slot.addrs:
            family, kind, proto, _, address = slot.addrs.pop(0)
            sock = socket.socket(family, kind, proto)
            assert slot.conn is not None
            slot.conn.sock = sock  # from here _discard closes it
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex(address)
            if err in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EINTR):
                slot.sock = sock
                slot.phase = _CONNECTING
                slot.limit = self._connect_limit(now)
                self._want(slot, selectors.EVENT_WRITE)
                return
            self._unregister(slot)
            sock.close()
            slot.conn.sock = None
            slot.errors = [OSError(err, os.strerror(err))]
        raise slot.errors[-1] if slot.errors else OSError("getaddrinfo returns an empty list")

    def _connect_limit(self, now: float) -> float | None:
        t = self.pool.connect_timeout
        return None if t is None else now + t

    def _read_limit(self, now: float) -> float | None:
        t = self.pool.read_timeout
        return None if t is None else now + t

    # -- progress -----------------------------------------------------------------------------

    def _guarded(self, slot: _Slot) -> None:
        try:
            self._step(slot, time.monotonic())
        except (OSError, http.client.HTTPException, ssl.CertificateError) as exc:
            self._failed(slot, exc)

    def _step(self, slot: _Slot, now: float) -> None:
        phase = slot.phase
        if phase == _READING:
            self._receive(slot, now)
        elif phase == _SENDING:
            self._send(slot, now)
        elif phase == _CONNECTING:
            err = slot.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._unregister(slot)
                assert slot.conn is not None
                _discard(slot.conn)
                slot.errors.append(OSError(err, os.strerror(err)))
                self._dial(slot, now)
                return
            pool = self.pool
            if pool._context is None:
                self._sending(slot, now)
                return
            self._unregister(slot)  # the TLS socket takes the descriptor over
            slot.sock = pool._context.wrap_socket(
                slot.sock, server_hostname=pool.hostname, do_handshake_on_connect=False
            )
            assert slot.conn is not None
            slot.conn.sock = slot.sock
            slot.phase = _HANDSHAKE
            self._handshake(slot, now)
        else:
            self._handshake(slot, now)

    def _handshake(self, slot: _Slot, now: float) -> None:
        slot.limit = self._connect_limit(now)  # per operation, as the socket timeout is
        try:
            slot.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(slot, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._want(slot, selectors.EVENT_WRITE)
            return
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise requests.exceptions.SSLError(str(exc), request=slot.request) from None
        pin = self.pool._pin_error(slot.sock)  # before a byte of the request is written
        if pin is not None:
            raise pin
        self._sending(slot, now)

    def _sending(self, slot: _Slot, now: float) -> None:
        slot.phase = _SENDING
        slot.limit = self._read_limit(now)
        self._send(slot, now)

    def _send(self, slot: _Slot, now: float) -> None:
        try:
            slot.sent += slot.sock.send(memoryview(slot.head)[slot.sent :])
        except (*_WAITING, ssl.SSLWantWriteError):
            self._want(slot, selectors.EVENT_WRITE)
            return
        except ssl.SSLWantReadError:
            self._want(slot, selectors.EVENT_READ)
            return
        slot.limit = self._read_limit(now)
        if slot.sent < len(slot.head):
            self._want(slot, selectors.EVENT_WRITE)
            return
        slot.phase = _READING
        self._want(slot, selectors.EVENT_READ)

    def _receive(self, slot: _Slot, now: float) -> None:
        sock, answer = slot.sock, slot.answer
        assert answer is not None
        while True:
            try:
                data = sock.recv(_RECV)
            except (*_WAITING, ssl.SSLWantReadError):
                return
            except ssl.SSLWantWriteError:
                self._want(slot, selectors.EVENT_WRITE)
                return
            slot.limit = self._read_limit(now)
            if answer.feed(data):
                self._complete(slot)
                return
            # Plain sockets: the selector says when more came. TLS may hold decrypted bytes
            # the selector cannot see.
            if not data or not getattr(sock, "pending", None) or not sock.pending():
                if self.pool._context is not None and slot.events != selectors.EVENT_READ:
                    self._want(slot, selectors.EVENT_READ)
                return

    def _complete(self, slot: _Slot) -> None:
        pool = self.pool
        answer, conn = slot.answer, slot.conn
        assert answer is not None and conn is not None
        response = pool._response(answer, slot.target, slot.request)
        self.slots.discard(slot)
        self.out[slot.index] = response
        if not pool._keep(answer, slot.sock):
            self._drop(slot)
        elif not self._start(after=slot):
            self._unregister(slot)
            slot.sock.settimeout(pool.connect_timeout)  # blocking again, as http.client made it
            pool._checkin(conn)

    # -- failures -----------------------------------------------------------------------------

    def _expired(self, slot: _Slot, now: float) -> bool:
        return (slot.when is not None and slot.when <= now) or (
            slot.limit is not None and slot.limit <= now
        )

    def _expire(self, slot: _Slot, now: float) -> None:
        pool, request = self.pool, slot.request
        self._drop(slot)
        self.slots.discard(slot)
        if (
            slot.when is not None
            and slot.when <= now
            and (slot.limit is None or slot.when <= slot.limit)
        ):
            self.out[slot.index] = pool._late(request, slot.when, slot.started)
        elif slot.phase in (_CONNECTING, _HANDSHAKE):
            self.out[slot.index] = pool._connect_timeout(request)
        else:
            self.out[slot.index] = pool._read_timeout(request)

    def _failed(self, slot: _Slot, exc: BaseException) -> None:
        pool = self.pool
        self._drop(slot)
        now = time.monotonic()
        fired = slot.when is not None and slot.when <= now
        answer = slot.answer
        if (
            isinstance(exc, _RETRYABLE_ON_REUSE)
            and slot.reused
            and slot.attempt == 0
            and not (answer is not None and answer.started)
            and not fired
        ):
            # A kept-alive connection the server had just closed: nothing came back, so the
            # GET goes once more, on a new connection (as get() does).
            slot.attempt = 1
            self._begin(slot, pool._checkout(fresh=True)[0], False, now)
            return
        self.slots.discard(slot)
        self.out[slot.index] = pool._mapped(exc, slot.request, fired, slot.when, slot.started)

    # -- the selector -------------------------------------------------------------------------

    def _want(self, slot: _Slot, events: int) -> None:
        if slot.events == events:
            return
        if slot.events:
            self.selector.modify(slot.sock, events, slot)
        else:
            self.selector.register(slot.sock, events, slot)
        slot.events = events

    def _unregister(self, slot: _Slot) -> None:
        if slot.events:
            slot.events = 0
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(slot.sock)

    def _drop(self, slot: _Slot) -> None:
        self._unregister(slot)
        if slot.conn is not None:
            _discard(slot.conn)
