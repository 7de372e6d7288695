"""The lean read path (pvekit/_lean.py): per-guest GETs on pooled http.client connections.

It must keep every promise of the requests path: the profile's TLS check (CA, pin, or
none, loudly), the size cap, the total deadline, the error mapping and redaction, and an
injected session must still carry every request.
"""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from _pveserver import TOKEN_SECRET, PVEServer, Reply, token_profile
from test_hardening import _BODY, _HEAD, RawServer, _gzip_bomb, _raw_profile, _trickle, bounded

import pvekit
from pvekit import APIError, TLSError
from pvekit._api import ApiClient
from pvekit._lean import LeanPool

GUEST = "/nodes/pve1/qemu/100/config"


@pytest.fixture(autouse=True, params=["get", "get_many"])
def lean_call(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: the pool's reads by get(), then by get_many() (one item a call),
    which must keep each promise get() keeps (tests/test_lean_batch.py compares the two)."""
    if request.param == "get_many":
        batch = LeanPool.get_many

        def via_batch(
            self: LeanPool, target: str, headers: Any, req: requests.PreparedRequest
        ) -> requests.Response:
            (entry,) = batch(self, [(target, req)], headers, in_flight=1)
            if isinstance(entry, BaseException):
                raise entry
            return entry

        monkeypatch.setattr(LeanPool, "get", via_batch)
    return str(request.param)


@pytest.fixture
def srv() -> Iterator[PVEServer]:
    with PVEServer() as s:
        yield s


@pytest.fixture(scope="module")
def tls_srv() -> Iterator[PVEServer]:
    with PVEServer(https=True) as s:
        yield s


class CountingAdapter(requests.adapters.HTTPAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(str(request.url))
        return super().send(request, **kwargs)


def test_per_guest_reads_take_the_lean_path_on_one_connection(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv, cache="memory")) as c:
        assert c._lean is not None
        for vmid in range(100, 110):
            assert c.get(f"/nodes/pve1/qemu/{vmid}/config")["path"].endswith(f"/{vmid}/config")
        assert c._lean.opened == 1  # kept alive and reused
        c.get("/cluster/resources")  # cluster-level reads stay on requests-cache
        assert c._lean.opened == 1 and c._lean.idle == 1
        assert c.get(GUEST, params={"current": True})["query"] == {"current": "1"}
    recorded = [r for r in srv.requests if r.path == GUEST]
    assert recorded and all(
        r.headers["authorization"] == f"PVEAPIToken=root@pam!pvekit={TOKEN_SECRET}"
        for r in recorded
    )
    assert srv.count("GET", GUEST) == 2  # the second read of the same path came from the cache
    assert c._lean.idle == 0  # close() released the pool


def test_password_identity_sends_the_ticket_cookie_without_csrf(srv: PVEServer) -> None:
    from _pveserver import password_profile

    with ApiClient(password_profile(srv, cache="memory")) as c:
        c.get(GUEST)
        assert c._lean is not None and c._lean.opened == 1
    rec = next(r for r in srv.requests if r.path == GUEST)
    assert rec.headers["cookie"].startswith("PVEAuthCookie=")
    assert "csrfpreventiontoken" not in rec.headers


class CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(str(request.url))
        return super().send(request, **kwargs)


def test_an_injected_session_carries_every_request(srv: PVEServer) -> None:
    session = CountingSession()
    with ApiClient(token_profile(srv, cache="memory"), session=session) as c:
        assert c._lean is None
        for vmid in (100, 101, 102):
            c.get(f"/nodes/pve1/qemu/{vmid}/config")
        c.get("/cluster/resources")
    assert len([u for u in session.sent if u.endswith("/config")]) == 3
    assert len(session.sent) == 4 == len(srv.requests)


def test_an_adapter_mounted_later_takes_over(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv, cache="memory")) as c:
        counting = CountingAdapter()
        c._plain.mount(f"{srv.url}/", counting)
        c.get(GUEST)
        assert c._lean is not None and c._lean.opened == 0
    assert counting.sent == [f"{srv.url}/api2/json{GUEST}"]


def test_without_cache_the_requests_path_stays(srv: PVEServer) -> None:
    # cache=False is the recordable mode (vcrpy patches requests' stack, not this pool).
    with ApiClient(token_profile(srv, cache=False)) as c:
        assert c._lean is None
        c.get(GUEST)


# -- TLS ---------------------------------------------------------------------------------------


def test_pin_checked_before_anything_is_sent(tls_srv: PVEServer) -> None:
    with ApiClient(token_profile(tls_srv, cache="memory")) as c:
        assert c.get(GUEST)["path"] == GUEST
        assert c._lean is not None and c._lean.opened == 1
    tls_srv.clear()
    wrong = ":".join(["AB"] * 32)
    with (
        ApiClient(token_profile(tls_srv, fingerprint=wrong, cache="memory", retries=3)) as c,
        pytest.raises(TLSError) as info,
    ):
        c.get(GUEST)
    assert "pinned SHA-256 fingerprint" in str(info.value) and wrong in str(info.value)
    assert tls_srv.requests == []  # no token went out, and a TLS failure is not retried


def test_ca_file_and_default_verification(tls_srv: PVEServer) -> None:
    profile = token_profile(tls_srv, fingerprint=None, ca_file=tls_srv.ca_file, cache="memory")
    with ApiClient(profile) as c:
        assert c.get(GUEST)["path"] == GUEST
        assert c._lean is not None and c._lean.opened == 1
    tls_srv.clear()
    with (
        ApiClient(token_profile(tls_srv, fingerprint=None, cache="memory", retries=2)) as c,
        pytest.raises(TLSError, match="TLS check of"),
    ):
        c.get(GUEST)  # self-signed, not in the default bundle
    assert tls_srv.requests == []


def test_insecure_warns_like_the_requests_path(tls_srv: PVEServer) -> None:
    profile = token_profile(tls_srv, fingerprint=None, verify_ssl=False, cache="memory")
    with ApiClient(profile) as c, pytest.warns(Warning, match="Unverified HTTPS request"):
        assert c.get(GUEST)["path"] == GUEST


# -- size cap, deadline, encodings ---------------------------------------------------------------


def test_size_cap_applies(srv: PVEServer) -> None:
    srv.script("GET", GUEST, Reply(200, {"pad": "x" * 300_000}))
    with (
        ApiClient(token_profile(srv, cache="memory", max_response_bytes=100_000)) as c,
        pytest.raises(APIError, match="larger than 100000 bytes"),
    ):
        c.get(GUEST)
    assert srv.count("GET", GUEST) == 1  # refused, not retried


def test_gzip_answer_is_decoded_and_a_gzip_bomb_refused() -> None:
    body = gzip.compress(json.dumps({"data": {"memory": 2048}}).encode())
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )

    def serve(conn: socket.socket) -> None:
        conn.sendall(head + body)

    with RawServer(serve, connections=1) as raw:
        c = ApiClient(_raw_profile(raw.url, cache="memory"))
        try:
            assert c.get(GUEST) == {"memory": 2048}
            assert c._lean is not None and c._lean.opened == 1
        finally:
            c.close()
    bomb = _gzip_bomb(64)
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % len(bomb)
    )

    def serve_bomb(conn: socket.socket) -> None:
        conn.sendall(head + bomb)

    with RawServer(serve_bomb, connections=2) as raw:
        c = ApiClient(_raw_profile(raw.url, cache="memory", max_response_bytes=2**20, retries=2))
        try:
            with pytest.raises(APIError, match="max_response_bytes"):
                bounded(lambda: c.get(GUEST), 30)
        finally:
            c.close()
        assert raw.accepted == 1


@pytest.mark.parametrize("phase", ["body", "headers"])
def test_trickling_server_cannot_hold_a_lean_read(phase: str) -> None:
    payload = _HEAD + _BODY
    serve = _trickle(payload) if phase == "headers" else None

    def body_trickle(conn: socket.socket) -> None:
        conn.sendall(_HEAD)
        _trickle(_BODY)(conn)

    with RawServer(serve or body_trickle, connections=2) as raw:
        c = ApiClient(_raw_profile(raw.url, cache="memory", timeout=1, retries=0))
        try:
            with pytest.raises(pvekit.TimeoutError) as info:
                bounded(lambda: c.get(GUEST), 8)
            assert c._lean is not None and c._lean.opened == 1
        finally:
            c.close()
        assert raw.accepted == 1
    assert f"GET {GUEST}" in str(info.value)


def test_dropped_connection_is_retried_for_a_read_and_redacted(srv: PVEServer) -> None:
    srv.script("GET", GUEST, Reply(drop=True), Reply(drop=True))
    with ApiClient(token_profile(srv, cache="memory", retries=1)) as c:
        with pytest.raises(pvekit.ConnectionError) as info:
            c.get(GUEST)
        assert srv.count("GET", GUEST) == 2  # the read was tried twice
        assert TOKEN_SECRET not in str(info.value) and TOKEN_SECRET not in repr(info.value)
        assert c.get(GUEST)["path"] == GUEST  # the pool recovers


def test_server_closing_an_idle_connection_costs_no_error(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv, cache="memory", retries=0)) as c:
        c.get("/nodes/pve1/qemu/100/config")
        assert c._lean is not None
        for conn in list(c._lean._idle):
            assert conn.sock is not None
            conn.sock.shutdown(socket.SHUT_RDWR)  # dead while idle, as after a keep-alive timeout
        assert c.get("/nodes/pve1/qemu/101/config")["path"].endswith("/101/config")
        assert c._lean.opened == 2


def test_chunked_answer_and_an_answer_ending_with_the_connection() -> None:
    payload = json.dumps({"data": {"cores": 4}}).encode()
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % 5
        + payload[:5]
        + b"\r\n"
        + b"%x;ext=1\r\n" % (len(payload) - 5)
        + payload[5:]
        + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    until_close = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + payload

    for answer, kept in ((chunked, 1), (until_close, 0)):

        def serve(conn: socket.socket, answer: bytes = answer) -> None:
            conn.sendall(answer)
            if answer is until_close:
                conn.shutdown(socket.SHUT_WR)

        with RawServer(serve, connections=1) as raw:
            c = ApiClient(_raw_profile(raw.url, cache="memory"))
            try:
                assert c.get(GUEST) == {"cores": 4}
                assert c._lean is not None and c._lean.idle == kept
            finally:
                c.close()


def test_header_injection_is_refused_without_quoting_the_value(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv, cache="memory")) as c:
        c._plain.headers["X-Evil"] = "a\r\nInjected: 1"
        with pytest.raises(pvekit.ConnectionError) as info:
            c.get(GUEST)
        assert "Injected" not in str(info.value)
    assert srv.count("GET", GUEST) == 0
