"""LeanPool.get_many (pvekit/_lean.py): many GETs, one thread, non-blocking keep-alive sockets.

Its contract is get()'s: one entry per item, in order, each the ``requests.Response`` that
``get`` returns or the ``requests`` exception it raises, same type and message. So most tests
send the same items both ways, to two pools on the same server, and compare.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import ssl
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from _pveserver import make_self_signed

from pvekit._lean import LeanPool, _Answer, _Batch
from pvekit._transport import ResponseTooLargeError, time_limit
from pvekit.sim import SimClock, Simulator

SECRET = "tok-b4tch-s3cret-value"
CAP = 1000  # max_bytes of the fault server's pools
JSON = b'{"data": {"cores": 4, "name": "vm"}}'


def _head(status: str = "200 OK", *fields: str, body: bytes = JSON, length: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", *fields]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _chunked(*pieces: bytes, trailer: bytes = b"X-Trailer: 1\r\n") -> bytes:
    out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    for i, piece in enumerate(pieces):
        out += b"%x%s\r\n" % (len(piece), b";ext=1" if i == 1 else b"") + piece + b"\r\n"
    return out + b"0\r\n" + trailer + b"\r\n"


_GZ = gzip.compress(JSON)
_DEFLATE = zlib.compress(JSON)
_RAW_DEFLATE = zlib.compress(JSON)[2:-4]
_BOMB = gzip.compress(b"0" * 2_000_000)

# path -> the bytes answered, the connection kept open afterwards
STATIC: dict[str, bytes] = {
    "/ok": _head(),
    "/error": _head("500 Internal Server Error", body=b'{"data": null, "message": "boom"}'),
    "/chunked": _chunked(JSON[:5], JSON[5:20], JSON[20:]),
    "/gzip": _head("200 OK", "Content-Encoding: gzip", body=_GZ),
    "/deflate": _head("200 OK", "Content-Encoding: deflate", body=_DEFLATE),
    "/rawdeflate": _head("200 OK", "Content-Encoding: deflate", body=_RAW_DEFLATE),
    "/badgzip": _head("200 OK", "Content-Encoding: gzip", body=b"not a gzip stream"),
    "/baddeflate": _head("200 OK", "Content-Encoding: deflate", body=b"not deflate"),
    "/brotli": _head("200 OK", "Content-Encoding: br"),
    "/bomb": _head("200 OK", "Content-Encoding: gzip", body=_BOMB),
    "/big": _head(body=b"x" * (CAP + 1)),
    "/bigchunked": _chunked(b"x" * 600, b"y" * 600),
    "/headers": _head("200 OK", *(f"X-H{i}: {i}" for i in range(101))),
    "/longline": _head("200 OK", "X-Long: " + "a" * 70_000),
    "/badstatus": b"HTTP/1.1 abc OK\r\n\r\n",
    "/nothttp": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "/continue": b"HTTP/1.1 100 Continue\r\nX-Info: 1\r\n\r\n" + _head(),
    "/nocontent": b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
    "/folded": _head("200 OK", "X-Folded: a", "  b"),
    "/badlength": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n" + JSON,
    "/negative": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "/lf": _head().replace(b"\r\n", b"\n"),
    "/malformed": b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    "/badchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "/extra": _head() + b"JUNK",  # more than framed: the connection must not be reused
    "/http10": _head().replace(b"HTTP/1.1", b"HTTP/1.0", 1),
}
CLOSING: dict[str, bytes] = {
    "/connclose": _head("200 OK", "Connection: close"),
    "/toclose": _head(length=False),
    "/bigclose": _head(length=False, body=b"z" * (CAP + 500)),
    "/closemid": _head(body=b"x" * 100)[:-90],
    "/chunkmid": _chunked(JSON)[:-30],  # inside the chunk
    "/headmid": _head()[:40],
}


class FaultServer:
    """HTTP/1.1 keep-alive server on loopback (TLS optional) answering by path, counting
    requests per path, connections, and the most requests it was answering at once."""

    def __init__(self, *, tls: bool = False) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.context: ssl.SSLContext | None = None
        self.fingerprint: str | None = None
        if tls:
            cert, key, self.fingerprint = make_self_signed()
            self._dir = tempfile.TemporaryDirectory(prefix="lean-batch-")
            cert_file = os.path.join(self._dir.name, "c.pem")
            key_file = os.path.join(self._dir.name, "k.pem")
            with open(cert_file, "wb") as fh:
                fh.write(cert)
            with open(key_file, "wb") as fh:
                fh.write(key)
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(cert_file, key_file)
        self.hits: Counter[str] = Counter()
        self.authorization: list[str] = []
        self.connections = 0
        self.active = 0
        self.peak = 0
        self.stale = False  # each connection answers one request and drops the next unanswered
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Any) -> None:
        conn.settimeout(10)
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            served = 0
            buf = bytearray()
            while not self._stop.is_set():
                while (end := buf.find(b"\r\n\r\n", max(0, len(buf) - 65536 - 3))) < 0:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = bytes(buf[:end]), buf[end + 4 :]
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split()[1].split("?")[0].removeprefix("/api2/json")
                auth = [v for k, _, v in (x.partition(": ") for x in lines) if k == "Authorization"]
                with self._lock:
                    self.hits[path] += 1
                    self.authorization += auth
                if self.stale and served:
                    return
                with self._lock:
                    self.active += 1
                    self.peak = max(self.peak, self.active)
                try:
                    keep = self._answer(conn, path)
                finally:
                    with self._lock:
                        self.active -= 1
                served += 1
                if not keep:
                    return
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def _answer(self, conn: Any, path: str) -> bool:
        if path in STATIC:
            conn.sendall(STATIC[path])
            return True
        if path in CLOSING:
            conn.sendall(CLOSING[path])
            return False
        if path == "/drop":
            return False
        if path.startswith("/delay/"):
            time.sleep(int(path.rsplit("/", 1)[1]) / 1000)
            conn.sendall(STATIC["/ok"])
            return True
        if path == "/slow":
            time.sleep(1.0)
            conn.sendall(STATIC["/ok"])
            return True
        if path == "/trickle":  # never silent for long, never done in time
            started = time.monotonic()
            for byte in STATIC["/ok"]:
                if time.monotonic() - started > 4:
                    break
                conn.sendall(bytes([byte]))
                time.sleep(0.1)
            return False
        conn.sendall(_head("404 Not Found", body=b"{}"))
        return True


def _headers(host: str) -> dict[str, str]:
    return {
        "Host": host,
        "Accept-Encoding": "gzip, deflate",
        "Authorization": f"PVEAPIToken=root@pam!pvekit={SECRET}",
    }


def _items(base: str, paths: list[str]) -> list[tuple[str, requests.PreparedRequest]]:
    out = []
    for path in paths:
        req = requests.PreparedRequest()
        req.method = "GET"
        req.url = base + path
        out.append((path, req))
    return out


def _pool(srv: FaultServer, **kw: Any) -> LeanPool:
    args: dict[str, Any] = {
        "verify": srv.fingerprint is not None,
        "fingerprint": srv.fingerprint,
        "timeout": (1.0, 0.4),  # connect, read: a total budget of 1.4 s per request
        "max_bytes": CAP,
    }
    args.update(kw)
    return LeanPool(srv.url, **args)


def _many(pool: LeanPool, items: Any, headers: Any, *, in_flight: int) -> list[Any]:
    return pool.get_many(items, headers, in_flight=in_flight)  # entries checked by the tests


def _sequential(pool: LeanPool, items: Any, headers: Any) -> list[Any]:
    out: list[Any] = []
    for target, request in items:
        try:
            out.append(pool.get(target, headers, request))
        except requests.RequestException as exc:
            out.append(exc)
    return out


def _assert_same(one: Any, other: Any) -> None:
    """``other`` (get_many's entry) is what ``one`` (get's) is."""
    assert type(other) is type(one), (one, other)
    if isinstance(one, requests.RequestException):
        assert str(other) == str(one)
        assert other.request is one.request
        return
    assert (other.status_code, other.reason, other.url) == (one.status_code, one.reason, one.url)
    assert other.request is one.request
    skip = {"date", "expires"}  # wall-clock stamps: the second may turn between reads
    assert {k.lower(): v for k, v in other.headers.items() if k.lower() not in skip} == {
        k.lower(): v for k, v in one.headers.items() if k.lower() not in skip
    }
    assert other.content == one.content
    assert other.encoding == one.encoding


@pytest.fixture(params=["http", "https"])
def srv(request: pytest.FixtureRequest) -> Iterator[FaultServer]:
    with FaultServer(tls=request.param == "https") as s:
        yield s


# -- against the simulator: the same answers both ways -------------------------------------------


@pytest.fixture(scope="module", params=["http", "https"])
def sim(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    with Simulator("demo", https=request.param == "https", clock=SimClock(frozen=True)) as s:
        yield s


def test_answers_equal_gets_against_the_simulator(sim: Simulator) -> None:
    cluster = next(iter(sim.clusters.values()))
    kw = cluster.connect_kwargs("token")
    headers = {
        "Host": cluster.host,
        "Accept-Encoding": "gzip, deflate",
        "Authorization": f"PVEAPIToken={kw['token_name']}={kw['token_value']}",
    }
    paths = []
    for g in cluster.state.guests.values():
        base = f"/api2/json/nodes/{g.node}/{g.type}/{g.vmid}"
        paths += [f"{base}/config", f"{base}/status/current"]
    paths += ["/api2/json/nodes/pve1/qemu/999999/config", "/api2/json/nodes/nope/qemu/1/config"]
    pins = {"fingerprint": str(cluster.fingerprint)} if sim.https else {"fingerprint": None}
    pools = [
        LeanPool(cluster.url, verify=True, timeout=10, max_bytes=2**24, **pins) for _ in (0, 1)
    ]
    items = _items(pools[0].origin, paths)
    try:
        expected = _sequential(pools[0], items, headers)
        got = _many(pools[1], items, headers, in_flight=8)
        assert len(got) == len(items)
        for one, other in zip(expected, got, strict=True):
            _assert_same(one, other)
        assert {r.status_code for r in got if isinstance(r, requests.Response)} >= {200, 500}
        assert pools[1].opened <= 8 and pools[1].idle == pools[1].opened
        # The batch's connections serve later get() calls: blocking again, nothing left over.
        opened = pools[1].opened
        for target, request in items[:20]:
            assert pools[1].get(target, headers, request).status_code == 200
        assert pools[1].opened == opened
    finally:
        for pool in pools:
            pool.close()


def test_pin_mismatch_sends_nothing() -> None:
    with Simulator("demo", https=True) as sim:
        cluster = next(iter(sim.clusters.values()))
        wrong = "ab" * 32
        pools = [
            LeanPool(cluster.url, verify=True, fingerprint=wrong, timeout=5, max_bytes=2**20)
            for _ in (0, 1)
        ]
        items = _items(pools[0].origin, ["/api2/json/version", "/api2/json/nodes"])
        headers = _headers(cluster.host)
        expected = _sequential(pools[0], items, headers)
        before = len(cluster.requests)
        got = _many(pools[1], items, headers, in_flight=4)
        for one, other in zip(expected, got, strict=True):
            _assert_same(one, other)
            assert isinstance(other, requests.exceptions.SSLError)
            assert "Fingerprints did not match" in str(other) and wrong in str(other)
        assert len(cluster.requests) == before == 0  # no token went out, either way
        assert pools[1].idle == 0


# -- every fault, both ways ----------------------------------------------------------------------

FAULTS = [
    "/ok",
    "/error",
    "/chunked",
    "/gzip",
    "/deflate",
    "/rawdeflate",
    "/badgzip",
    "/baddeflate",
    "/brotli",
    "/bomb",
    "/big",
    "/bigchunked",
    "/bigclose",
    "/headers",
    "/longline",
    "/badstatus",
    "/nothttp",
    "/continue",
    "/nocontent",
    "/folded",
    "/badlength",
    "/negative",
    "/lf",
    "/malformed",
    "/badchunk",
    "/extra",
    "/http10",
    "/connclose",
    "/toclose",
    "/closemid",
    "/chunkmid",
    "/headmid",
    "/drop",
    "/slow",
    "/trickle",
    "/nowhere",
]


def test_every_fault_gives_gets_entry(srv: FaultServer) -> None:
    headers = _headers(f"127.0.0.1:{srv.port}")
    one, other = _pool(srv), _pool(srv)
    items = _items(one.origin, [*FAULTS, "/ok"])
    try:
        expected = _sequential(one, items, headers)
        got = _many(other, items, headers, in_flight=6)
    finally:
        one.close()
        other.close()
    by_path = dict(zip([*FAULTS, "/ok2"], got, strict=True))
    for a, b in zip(expected, got, strict=True):
        _assert_same(a, b)
        if isinstance(b, BaseException):
            assert SECRET not in str(b) and SECRET not in repr(b)
    # What each fault is, so that "the same as get" is not "the same wrong thing".
    assert by_path["/chunked"].json() == json.loads(JSON)
    for path in ("/gzip", "/deflate", "/rawdeflate", "/continue", "/lf", "/extra", "/http10"):
        assert by_path[path].content == JSON, path
    assert by_path["/folded"].headers["X-Folded"] == "a b"
    assert by_path["/nocontent"].status_code == 204 and by_path["/nocontent"].content == b""
    assert by_path["/toclose"].content == JSON
    for path in ("/bomb", "/big", "/bigchunked", "/bigclose"):
        assert isinstance(by_path[path], ResponseTooLargeError), path
    for path in ("/badgzip", "/baddeflate", "/brotli"):
        assert isinstance(by_path[path], requests.exceptions.ContentDecodingError), path
    assert "got more than 100 headers" in str(by_path["/headers"])
    assert "LineTooLong" in str(by_path["/longline"])
    assert "BadStatusLine" in str(by_path["/badstatus"])
    assert "IncompleteRead(10 bytes read, 90 more expected)" in str(by_path["/closemid"])
    assert "RemoteDisconnected" in str(by_path["/drop"])
    assert "closed inside the answer's head" in str(by_path["/headmid"])
    assert "IncompleteRead" in str(by_path["/chunkmid"])
    assert str(by_path["/slow"]) == "read timed out (read timeout=0.4)"
    assert isinstance(by_path["/slow"], requests.exceptions.ReadTimeout)
    assert (
        str(by_path["/trickle"]) == "no complete answer within 1.4 s (the request's total deadline)"
    )
    assert srv.authorization and all(SECRET in a for a in srv.authorization)


def test_connections_kept_only_when_clean(srv: FaultServer) -> None:
    """A connection goes back to the pool only after a framed answer with nothing past it;
    the next get() on it reads its own answer."""
    headers = _headers(f"127.0.0.1:{srv.port}")
    pool = _pool(srv)
    try:
        for path, kept in (
            ("/ok", 1),
            ("/chunked", 1),
            ("/nocontent", 1),
            ("/continue", 1),
            ("/extra", 0),
            ("/http10", 0),
            ("/connclose", 0),
            ("/toclose", 0),
            ("/big", 0),
            ("/badgzip", 0),
        ):
            got = _many(pool, _items(pool.origin, [path]), headers, in_flight=1)
            assert pool.idle == kept, (path, got)
            assert pool.get("/ok", headers, requests.PreparedRequest()).content == JSON
            pool.close()
            pool = _pool(srv)
    finally:
        pool.close()


def test_stale_keep_alive_is_retried_once_on_a_new_connection(srv: FaultServer) -> None:
    headers = _headers(f"127.0.0.1:{srv.port}")
    pools = [_pool(srv), _pool(srv)]
    try:
        for pool in pools:
            pool.get("/ok", headers, requests.PreparedRequest())  # one idle connection
        srv.stale = True  # each connection now answers one request, then hangs up unanswered
        items = _items(pools[0].origin, ["/delay/1"] * 6)
        expected = _sequential(pools[0], items, headers)
        srv.hits.clear()
        got = _many(pools[1], items, headers, in_flight=3)
        for one, other in zip(expected, got, strict=True):
            _assert_same(one, other)
            assert other.status_code == 200
        # Each reused connection failed once and its request went again, once, on a new one:
        # the warm one (item 1), then the three the batch had put back (items 4-6).
        assert srv.hits["/delay/1"] == 6 + 4
        srv.hits.clear()
        got = _many(pools[1], _items(pools[0].origin, ["/drop"]), headers, in_flight=1)
        assert isinstance(got[0], requests.exceptions.ConnectionError)
        assert srv.hits["/drop"] == 2  # reused, dropped, tried once more, dropped: no more
    finally:
        for pool in pools:
            pool.close()


# -- timeouts, refusals, limits ------------------------------------------------------------------


def test_connect_refused_and_handshake_timeout() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = LeanPool(
        f"http://127.0.0.1:{port}", verify=True, fingerprint=None, timeout=1, max_bytes=CAP
    )
    items = _items(refused.origin, ["/ok", "/ok"])
    expected = _sequential(refused, items, {})
    got = _many(refused, items, {}, in_flight=2)
    for one, other in zip(expected, got, strict=True):
        _assert_same(one, other)
        assert "ConnectionRefusedError" in str(other)
    # A TLS server that never answers the handshake: the connect timeout.
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        silent.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except TimeoutError:
                continue

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        url = f"https://127.0.0.1:{silent.getsockname()[1]}"
        pool = LeanPool(url, verify=False, fingerprint="ab" * 32, timeout=(0.3, 5), max_bytes=CAP)
        items = _items(pool.origin, ["/ok"] * 3)
        expected = _sequential(pool, items, {})
        got = _many(pool, items, {}, in_flight=3)
        for one, other in zip(expected, got, strict=True):
            _assert_same(one, other)
            assert isinstance(other, requests.exceptions.ConnectTimeout)
    finally:
        stop.set()
        holder.join(2)
        silent.close()
        for s in held:
            s.close()


def test_the_threads_time_limit_bounds_the_batch(srv: FaultServer) -> None:
    headers = _headers(f"127.0.0.1:{srv.port}")
    pool = _pool(srv, timeout=(5, 5))
    items = _items(pool.origin, ["/trickle", "/ok", "/trickle"])
    try:
        with time_limit(time.monotonic() + 0.5):
            got = _many(pool, items, headers, in_flight=3)
        assert got[1].status_code == 200
        for late in (got[0], got[2]):
            assert isinstance(late, requests.exceptions.ReadTimeout)
            assert "(the request's total deadline)" in str(late)
        with time_limit(time.monotonic() - 1):
            got = _many(pool, items, headers, in_flight=3)
        assert all("nothing was sent" in str(e) for e in got)
    finally:
        pool.close()


def test_in_flight_is_a_ceiling_and_connections_are_reused(srv: FaultServer) -> None:
    headers = _headers(f"127.0.0.1:{srv.port}")
    pool = _pool(srv)
    paths = [f"/delay/{20 + i % 3}" for i in range(30)]
    items = _items(pool.origin, paths)
    try:
        got = _many(pool, items, headers, in_flight=4)
        assert [r.url for r in got] == [pool.origin + p for p in paths]  # in item order
        assert 2 <= srv.peak <= 4  # requests at once, as the server saw them: never more than 4
        assert pool.opened == 4 == srv.connections and pool.idle == 4
        for target, request in items[:8]:
            assert pool.get(target, headers, request).status_code == 200
        assert pool.opened == 4 == srv.connections  # get() took the batch's connections
        _many(pool, items, headers, in_flight=2)
        assert pool.opened == 4 and srv.peak <= 4
    finally:
        pool.close()


def test_a_head_larger_than_the_socket_buffers_is_sent_in_parts(
    srv: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {**_headers(f"127.0.0.1:{srv.port}"), "X-Big": "b" * 8_000_000}
    one, other = _pool(srv, timeout=(5, 5)), _pool(srv, timeout=(5, 5))
    items = _items(one.origin, ["/ok", "/chunked", "/ok"])
    sends = Counter[str]()
    send = _Batch._send

    def counted(self: _Batch, slot: Any, now: float) -> None:
        sends["send"] += 1
        send(self, slot, now)

    monkeypatch.setattr(_Batch, "_send", counted)
    try:
        expected = _sequential(one, items, headers)
        got = _many(other, items, headers, in_flight=2)
    finally:
        one.close()
        other.close()
    for a, b in zip(expected, got, strict=True):
        _assert_same(a, b)
        assert b.status_code == 200
    assert srv.hits["/ok"] == 4
    assert sends["send"] > len(items)  # partial writes, resumed when writable


def test_no_thread_is_started(srv: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = _headers(f"127.0.0.1:{srv.port}")
    pool = _pool(srv, timeout=(1, 1))
    caller = threading.current_thread()
    start = threading.Thread.start
    started: list[threading.Thread] = []

    def watched(self: threading.Thread) -> None:
        if threading.current_thread() is caller:  # the server's own threads may start
            started.append(self)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", watched)
    try:
        got = _many(pool, _items(pool.origin, ["/delay/5"] * 12), headers, in_flight=5)
    finally:
        monkeypatch.undo()
        pool.close()
    assert [r.status_code for r in got] == [200] * 12
    assert started == []


def test_closed_pool_and_invalid_header_send_nothing(srv: FaultServer) -> None:
    pool = _pool(srv)
    items = _items(pool.origin, ["/ok", "/ok"])
    bad = {**_headers("h"), "X-Evil": f"{SECRET}\r\nInjected: 1"}
    expected = _sequential(pool, items, bad)
    got = _many(pool, items, bad, in_flight=2)
    for one, other in zip(expected, got, strict=True):
        _assert_same(one, other)
        assert isinstance(other, requests.exceptions.InvalidHeader)
        assert SECRET not in str(other) and "Injected" not in str(other)
    assert pool.opened == 0
    assert _many(pool, [], bad, in_flight=2) == []
    pool.close()
    expected = _sequential(pool, items, _headers("h"))
    got = _many(pool, items, _headers("h"), in_flight=2)
    for one, other in zip(expected, got, strict=True):
        assert type(other) is type(one) is requests.exceptions.ConnectionError
        assert str(other) == str(one) == "the connection pool is closed"
    assert srv.hits == Counter() and pool.opened == 0


def test_an_interrupt_closes_what_the_batch_holds(
    srv: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = _headers(f"127.0.0.1:{srv.port}")
    pool = _pool(srv)
    conns: list[Any] = []
    new = pool._new_connection

    def tracked() -> Any:
        conns.append(new())
        return conns[-1]

    monkeypatch.setattr(pool, "_new_connection", tracked)
    feed: Callable[[_Answer, bytes], bool] = _Answer.feed
    calls = Counter[str]()

    def interrupted(self: _Answer, data: bytes) -> bool:
        calls["feed"] += 1
        if calls["feed"] == 3:
            raise KeyboardInterrupt
        return feed(self, data)

    monkeypatch.setattr(_Answer, "feed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _many(pool, _items(pool.origin, ["/delay/30"] * 8), headers, in_flight=4)
    monkeypatch.undo()
    assert len(conns) == 4
    idle = set(map(id, pool._idle))
    closed = [c for c in conns if id(c) not in idle]
    assert closed and all(c.sock is None for c in closed)  # what was mid-answer: closed
    for _ in idle:  # what went back had been read cleanly, and serves get()
        assert pool.get("/ok", headers, requests.PreparedRequest()).content == JSON
    assert pool.opened == 4
    pool.close()
    assert all(c.sock is None for c in conns)
