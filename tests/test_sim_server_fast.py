"""The simulator's request fast paths answer exactly like the general ones.

``_Handler.parse_request`` reads common request heads itself (not through the email
package), ``_Handler._send`` writes an answer in one go, and ``SimCluster`` remembers routing
and parameter checks. These tests send raw requests, odd ones included, once through the
fast paths and once through the standard library's parser, and compare the bytes; and they
check that what is remembered never outlives a change.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from email.utils import formatdate

import pytest

from pvekit.sim import SimClock, SimCluster, Simulator, _dispatch, _server

API = "/api2/json"


@pytest.fixture
def frozen() -> Iterator[Simulator]:
    with Simulator("demo", clock=SimClock(start=1_750_000_000, frozen=True), seed=3) as sim:
        yield sim


def _exchange(c: SimCluster, data: bytes) -> bytes:
    """Send ``data``, half-close, read to the end; Date/Expires values masked."""
    s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    except ConnectionResetError:
        out += b"<reset>"
    finally:
        s.close()
    return re.sub(rb"(Date|Expires): [^\r\n]*", rb"\1: X", out)


def _heads(c: SimCluster) -> list[bytes]:
    auth = f"Authorization: PVEAPIToken=root@pam!pvekit={c.auth.token_secret}\r\n"
    g = min(c.state.guests.values(), key=lambda g: g.vmid)
    cfg = f"{API}/nodes/{g.node}/{g.type}/{g.vmid}/config"

    def req(target: str, extra: str = "", version: str = "HTTP/1.1", method: str = "GET") -> bytes:
        return f"{method} {target} {version}\r\nHost: x\r\n{auth}{extra}\r\n".encode("latin-1")

    many = "".join(f"X-{i}: {i}\r\n" for i in range(97))
    return [
        req(cfg),
        req(cfg + "?current=1"),
        req(f"{API}/cluster/resources?type=bogus"),
        req(f"{API}/cluster/resources", "Connection: close\r\n"),
        req(f"{API}/cluster/resources", version="HTTP/1.0"),
        req(f"{API}/cluster/resources", "Connection: keep-alive\r\n", version="HTTP/1.0"),
        req(f"{API}/version", version="HTTP/2.0"),
        req(f"{API}/version", version="HTTP/1.x"),
        req(f"{API}/version", method="get"),
        req(f"{API}/version", method="FOO"),
        req(f"{API}/version", method="HEAD"),
        req("//api2/json/version"),
        req(f"{API}/version", "authorization: again\r\n"),  # duplicate (other case)
        req(f"{API}/version", "X-Fold: a\r\n  b\r\n"),
        req(f"{API}/version", "X-Latin: caf\xe9\r\n"),
        req(f"{API}/version", "no colon here\r\n"),
        req(f"{API}/version", ": no name\r\n"),
        req(f"{API}/version", "X-CR: a\rb\r\n"),
        req(f"{API}/version", "X-Tab:\tv\t\r\n"),
        req(f"{API}/version", "X-Space : v\r\n"),
        req(f"{API}/version", "Expect: 100-continue\r\n"),
        req(f"{API}/version", "X-Long: " + "a" * 70_000 + "\r\n"),  # 431 Line too long
        req(f"{API}/version", many),  # 99 fields and the blank line: the most allowed
        req(f"{API}/version", many + "X-One-More: 1\r\n"),  # 431 Too many headers
        req(f"{API}/version", "Content-Length: x\r\n"),
        b"GET " + API.encode() + b"/version\r\n\r\n",  # HTTP/0.9
        b"GET  " + API.encode() + b"/version  HTTP/1.1\r\n" + auth.encode() + b"\r\n",
        b"GET " + API.encode() + b"/version HTTP/1.1\n" + auth.encode()[:-2] + b"\n\n",
        b"\r\n",
        req(cfg) + req(f"{API}/cluster/resources") + req(cfg, "Connection: close\r\n"),
    ]


def test_fast_head_parser_answers_byte_for_byte_like_the_standard_one(
    frozen: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = frozen["prod"]
    fast = [_exchange(c, h) for h in _heads(c)]
    fast_log = [(r.method, r.path, r.params, r.headers, r.status) for r in c.requests]
    c.clear_requests()
    # A request line the fast path never matches: every head goes to the standard parser.
    monkeypatch.setattr(_server, "_FAST_REQUEST_LINE", re.compile(rb"(?!)"))
    slow = [_exchange(c, h) for h in _heads(c)]
    slow_log = [(r.method, r.path, r.params, r.headers, r.status) for r in c.requests]
    assert fast == slow
    assert fast_log == slow_log  # the request log (redacted) is the same too
    assert b"HTTP/1.1 431 Line too long" in fast[21]
    assert b"HTTP/1.1 431 Too many headers" in fast[23]
    assert fast[22].startswith(b"HTTP/1.1 200 OK")
    assert fast[-1].count(b"HTTP/1.1 200 OK") == 3


def test_the_fast_path_takes_the_common_head(frozen: Simulator) -> None:
    c = frozen["prod"]
    seen: list[type] = []
    orig = _dispatch.serve

    def spy(cluster, method, target, headers, body):  # type: ignore[no-untyped-def]
        seen.append(type(headers))
        return orig(cluster, method, target, headers, body)

    _server.serve = spy  # type: ignore[assignment]
    try:
        _exchange(c, _heads(c)[0])
    finally:
        _server.serve = orig
    # Headers built by the fast parser, not copied from an email.message.Message.
    assert seen == [_dispatch.Headers]


def test_http_date_is_formatdate() -> None:
    for _ in range(3):
        before = formatdate(usegmt=True)
        got = _dispatch.http_date()
        after = formatdate(usegmt=True)
        assert got in (before, after)
        time.sleep(0.01)


def test_a_write_shows_in_the_next_read(frozen: Simulator) -> None:
    import requests

    c = frozen["prod"]
    s = requests.Session()
    s.headers["Authorization"] = f"PVEAPIToken=root@pam!pvekit={c.auth.token_secret}"
    g = min((g for g in c.state.guests.values() if g.type == "qemu"), key=lambda g: g.vmid)
    url = f"{c.url}{API}/nodes/{g.node}/qemu/{g.vmid}/config"
    first = s.get(url, timeout=10).json()["data"]
    assert s.get(url, timeout=10).json()["data"] == first  # remembered route and check
    r = s.put(url, data={"description": "changed", "cores": "3"}, timeout=10)
    assert r.status_code == 200, r.reason
    after = s.get(url, timeout=10).json()["data"]
    assert after["description"] == "changed" and after["cores"] == 3
    assert after["digest"] != first["digest"]
    # The same parameters, now invalid for this path and method, still refused each time.
    for _ in range(2):
        assert s.get(url, params={"current": "maybe"}, timeout=10).status_code == 400
    rec = [(r.method, r.path, dict(r.params), r.status) for r in c.requests]
    assert rec[-6:] == [
        ("GET", f"/nodes/{g.node}/qemu/{g.vmid}/config", {}, 200),
        ("GET", f"/nodes/{g.node}/qemu/{g.vmid}/config", {}, 200),
        (
            "PUT",
            f"/nodes/{g.node}/qemu/{g.vmid}/config",
            {"description": "changed", "cores": "3"},
            200,
        ),
        ("GET", f"/nodes/{g.node}/qemu/{g.vmid}/config", {}, 200),
        ("GET", f"/nodes/{g.node}/qemu/{g.vmid}/config", {"current": "maybe"}, 400),
        ("GET", f"/nodes/{g.node}/qemu/{g.vmid}/config", {"current": "maybe"}, 400),
    ]
    assert all(r.headers["Authorization"].endswith("=***") for r in c.requests[-6:])


def test_remembered_routes_and_checks_are_fresh_copies(frozen: Simulator) -> None:
    c = frozen["prod"]
    found = c._resolve("/nodes/pve1/qemu/100/config")
    assert found == ("/nodes/{node}/qemu/{vmid}/config", {"node": "pve1", "vmid": "100"})
    found[1]["node"] = "mutated"
    again = c._resolve("/nodes/pve1/qemu/100/config")
    assert again == ("/nodes/{node}/qemu/{vmid}/config", {"node": "pve1", "vmid": "100"})
    assert c._resolve("/no/such/path") is None
    ep = c.schema.endpoints[("/nodes/{node}/qemu/{vmid}/config", "GET")]
    bad = {"node": "pve1", "vmid": "x"}
    errors = c._check(ep, bad)
    assert errors == c.schema.check(ep, bad) and errors
    errors.clear()
    assert c._check(ep, bad) == c.schema.check(ep, bad)
    # Writes, secrets and lists (repeated parameters) are checked afresh every time.
    login = c.schema.endpoints[("/access/ticket", "POST")]
    before = len(c._checks)
    assert c._check(login, {"username": "root@pam", "password": "x"}) == {}
    assert c._check(ep, {**bad, "value": "secret"}) == c.schema.check(
        ep, {**bad, "value": "secret"}
    )
    assert len(c._checks) == before
    assert c._check(ep, {**bad, "current": ["1", "0"]}) == c.schema.check(
        ep, {**bad, "current": ["1", "0"]}
    )


def test_a_new_schema_forgets_what_was_remembered(frozen: Simulator) -> None:
    from pvekit.sim._schema import load_schema

    c = frozen["prod"]
    ep9 = c.schema.endpoints[("/cluster/resources", "GET")]
    assert c._check(ep9, {"type": "vm"}) == {}
    c.schema = load_schema("8.4")
    assert c._memo_schema is not c.schema
    assert c._resolve("/cluster/resources") == ("/cluster/resources", {})
    assert c._memo_schema is c.schema and len(c._routes) == 1
