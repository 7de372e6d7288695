"""Transport: retries (reads only), timeouts, the cache (TTLs, fresh, isolation, hygiene), TLS."""

from __future__ import annotations

import os
import random
import sqlite3
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from _pveserver import (
    ROOT_PW,
    TOKEN_SECRET,
    PVEServer,
    Reply,
    make_self_signed,
    password_profile,
    token_profile,
)

from pvekit import ConnectionError, NodeUnreachableError, ServerError, TimeoutError, TLSError
from pvekit._api import ApiClient
from pvekit._endpoints import READS, read_for
from pvekit._transport import (
    DEFAULT_TTL,
    cache_dir,
    cache_file,
    parse_retry_after,
    retry_delay,
    ttl_for,
)


@pytest.fixture
def srv() -> Iterator[PVEServer]:
    with PVEServer() as s:
        yield s


@pytest.fixture(scope="module")
def tls_srv() -> Iterator[PVEServer]:
    with PVEServer(https=True) as s:
        yield s


# -- retries ----------------------------------------------------------------------------------


def test_read_retried_on_503_502_504_then_succeeds(srv: PVEServer) -> None:
    srv.script(
        "GET",
        "/cluster/resources",
        Reply(503, reason="Service Unavailable", headers={"Retry-After": "0"}),
        Reply(502, reason="Bad Gateway"),
        Reply(504, reason="Gateway Timeout"),
    )
    with ApiClient(password_profile(srv, cache=False, retries=3)) as c:
        assert c.get("/cluster/resources")["path"] == "/cluster/resources"
    assert srv.count("GET", "/cluster/resources") == 4


def test_read_retries_exhausted(srv: PVEServer) -> None:
    srv.script("GET", "/nodes", *[Reply(503, reason="proxy overloaded")] * 3)
    with (
        ApiClient(password_profile(srv, cache=False, retries=2)) as c,
        pytest.raises(ServerError) as info,
    ):
        c.get("/nodes")
    assert info.value.status == 503 and "proxy overloaded" in str(info.value)
    assert "GET /nodes" in str(info.value) and "profile 'default'" in str(info.value)
    assert srv.count("GET", "/nodes") == 3


def test_read_retried_after_dropped_connection(srv: PVEServer) -> None:
    srv.script("GET", "/nodes", Reply(drop=True), Reply(drop=True))
    with ApiClient(token_profile(srv, cache=False, retries=3)) as c:
        assert c.get("/nodes")["path"] == "/nodes"
    assert srv.count("GET", "/nodes") == 3


def test_write_never_retried_on_503_or_dropped_connection(srv: PVEServer) -> None:
    srv.script("POST", "/nodes/pve1/qemu/100/status/start", Reply(503, reason="busy"))
    srv.script("POST", "/nodes/pve1/qemu/101/status/start", Reply(drop=True))
    srv.script("DELETE", "/nodes/pve1/qemu/102", Reply(502, reason="Bad Gateway"))
    with ApiClient(token_profile(srv, cache=False, retries=5)) as c:
        with pytest.raises(ServerError):
            c.post("/nodes/pve1/qemu/100/status/start")
        with pytest.raises(ConnectionError) as info:
            c.post("/nodes/pve1/qemu/101/status/start")
        assert "POST /nodes/pve1/qemu/101/status/start" in str(info.value)
        with pytest.raises(ServerError):
            c.delete("/nodes/pve1/qemu/102")
    assert srv.count("POST", "/nodes/pve1/qemu/100/status/start") == 1
    assert srv.count("POST", "/nodes/pve1/qemu/101/status/start") == 1
    assert srv.count("DELETE", "/nodes/pve1/qemu/102") == 1


def test_read_timeout_retried_and_reported(srv: PVEServer) -> None:
    srv.script("GET", "/nodes", Reply(200, {"slow": 1}, delay=1.0))
    with ApiClient(token_profile(srv, cache=False, retries=1, timeout=(2, 0.3))) as c:
        assert c.get("/nodes")["path"] == "/nodes"  # the second try is fast
        srv.script("GET", "/version", *[Reply(200, {}, delay=1.0)] * 2)
        with pytest.raises(TimeoutError) as info:
            c.get("/version")
    assert "read timeout" in str(info.value) and "GET /version" in str(info.value)
    assert isinstance(info.value, ConnectionError.__mro__[2])  # a TransportError
    assert srv.count("GET", "/version") == 2


def test_connection_refused_is_connection_error() -> None:
    with PVEServer() as s:
        profile = token_profile(s, cache=False, retries=1)
    # the server is gone: nothing listens on that port
    with ApiClient(profile) as c, pytest.raises(ConnectionError) as info:
        c.get("/version")
    assert f"cannot reach {profile.host}" in str(info.value)
    assert TOKEN_SECRET not in str(info.value)


def test_retry_delay_schedule() -> None:
    rng = random.Random(1)
    for attempt in range(5):
        base = 0.5 * 2**attempt
        for _ in range(20):
            d = retry_delay(attempt, 0.5, rng=rng)
            assert base / 2 <= d <= min(base, 30)
    assert retry_delay(10, 1.0) == 30  # capped
    assert retry_delay(0, 1.0, {"Retry-After": "7"}) == 7
    assert retry_delay(0, 1.0, {"Retry-After": "3600"}) == 30
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    assert 15 < retry_delay(0, 1.0, {"Retry-After": later}) <= 20
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# -- cache ------------------------------------------------------------------------------------


def test_ttl_table() -> None:
    assert ttl_for("/cluster/resources") == 10
    assert ttl_for("/cluster/resources?type=vm") == 10
    assert ttl_for("/nodes/pve1/tasks/UPID%3Apve1%3A0001/status") is None
    assert ttl_for("/nodes/pve1/tasks/UPID%3Apve1%3A0001/log") is None
    assert ttl_for("/access/ticket") is None
    assert ttl_for("/nodes/pve1/qemu/100/agent/exec-status") is None
    assert ttl_for("/nodes/pve1/qemu/100/config") == 300
    assert ttl_for("/nodes/pve1/lxc/200/status/current") == 10
    assert ttl_for("/nodes/pve1/qemu") == 10
    assert ttl_for("/nodes/pve1/storage/local/content") == 300
    assert ttl_for("/nodes/pve1/storage") == 30
    assert ttl_for("/version") == 3600
    assert ttl_for("/nodes") == 10
    assert ttl_for("/something/else") == DEFAULT_TTL
    # order: every entry is reachable (no earlier entry shadows it)
    seen = []
    for entry in READS:
        template, ttl = entry.pattern, entry.ttl
        concrete = (
            template.replace("{node}", "n1")
            .replace("{type}", "qemu")
            .replace("{vmid}", "100")
            .replace("{storage}", "local")
            .replace("{upid}", "UPID%3Ax")
        )
        concrete += "/x" if entry.match == "below" else ""
        assert ttl_for(concrete) == ttl and read_for(concrete) is entry, template
        seen.append(concrete)
    assert len(seen) == len(READS)


def test_cache_hits_and_fresh(srv: PVEServer) -> None:
    with ApiClient(password_profile(srv)) as c:
        first = c.get("/cluster/resources", type="vm")
        second = c.get("/cluster/resources", type="vm")
        assert first == second
        assert srv.count("GET", "/cluster/resources") == 1
        other_params = c.get("/cluster/resources", type="storage")
        assert other_params["n"] != first["n"]
        assert srv.count("GET", "/cluster/resources") == 2
        refreshed = c.get("/cluster/resources", fresh=True, type="vm")
        assert refreshed["n"] != first["n"]
        assert c.get("/cluster/resources", type="vm") == refreshed  # fresh refreshed the cache
        assert srv.count("GET", "/cluster/resources") == 3


def test_never_cached_endpoints_and_writes(srv: PVEServer) -> None:
    upid = "UPID%3Apve1%3A000B1A2F%3A0165D3A1%3A6650C0DE%3Aqmstart%3A100%3Aroot%40pam%3A"
    with ApiClient(password_profile(srv)) as c:
        for _ in range(2):
            c.get(f"/nodes/pve1/tasks/{upid}/status")
            c.get(f"/nodes/pve1/tasks/{upid}/log")
            c.post("/nodes/pve1/qemu/100/status/start")
            c.put("/nodes/pve1/lxc/200/config", cores=1)
    assert srv.count("GET", f"/nodes/pve1/tasks/{upid}/status") == 2
    assert srv.count("GET", f"/nodes/pve1/tasks/{upid}/log") == 2
    assert srv.count("POST", "/nodes/pve1/qemu/100/status/start") == 2
    assert srv.count("PUT", "/nodes/pve1/lxc/200/config") == 2
    assert srv.count("POST", "/access/ticket") == 1


def test_error_answers_are_not_cached(srv: PVEServer) -> None:
    srv.script("GET", "/nodes/pve9/status", Reply(595, reason="no route to host"))
    with ApiClient(token_profile(srv)) as c:
        with pytest.raises(NodeUnreachableError, match="no route to host"):
            c.get("/nodes/pve9/status")
        assert c.get("/nodes/pve9/status")["path"] == "/nodes/pve9/status"
    assert srv.count("GET", "/nodes/pve9/status") == 2


def test_write_drops_the_reads_it_made_stale(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv)) as c:
        reads = [
            "/cluster/resources",
            "/nodes/pve1/qemu",
            "/nodes/pve1/qemu/100/config",
            "/nodes/pve1/qemu/101/config",
            "/nodes/pve1/storage/local/content",
            "/version",
        ]
        for path in reads:
            c.get(path)
        srv.clear()
        c.post("/nodes/pve1/qemu/100/config", cores=4)
        for path in reads:
            c.get(path)
        refetched = {r.path for r in srv.requests if r.method == "GET"}
    assert refetched == {
        "/cluster/resources",
        "/nodes/pve1/qemu",
        "/nodes/pve1/qemu/100/config",
        "/nodes/pve1/storage/local/content",
    }


def test_invalidate_prefixes_and_all(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv)) as c:
        for path in ("/nodes/pve1/status", "/nodes/pve2/status", "/version"):
            c.get(path)
        srv.clear()
        c.invalidate("/nodes/pve1")
        for path in ("/nodes/pve1/status", "/nodes/pve2/status", "/version"):
            c.get(path)
        assert [r.path for r in srv.requests] == ["/nodes/pve1/status"]
        srv.clear()
        c.invalidate()
        c.get("/version")
        assert srv.count("GET", "/version") == 1


def test_persistent_cache_is_reused_and_invalidated_across_clients(srv: PVEServer) -> None:
    profile = token_profile(srv)
    with ApiClient(profile) as a:
        a.get("/cluster/resources")
    with ApiClient(profile) as b:
        b.get("/cluster/resources")  # served from the SQLite file written by `a`
        assert srv.count("GET", "/cluster/resources") == 1
    with ApiClient(profile) as c:
        c.post("/nodes/pve1/qemu/100/status/start")  # must drop what `a` stored
        c.get("/cluster/resources")
    assert srv.count("GET", "/cluster/resources") == 2


def test_cache_isolation_between_identities(srv: PVEServer) -> None:
    pw = password_profile(srv)
    tok = token_profile(srv)
    assert cache_file(pw) != cache_file(tok)
    with ApiClient(pw) as a, ApiClient(tok) as b:
        a.get("/nodes")
        b.get("/nodes")
        a.get("/nodes")
        b.get("/nodes")
    gets = [r for r in srv.requests if r.path == "/nodes"]
    assert len(gets) == 2  # one per identity, never an answer fetched by the other
    assert {("cookie" in r.headers, "authorization" in r.headers) for r in gets} == {
        (True, False),
        (False, True),
    }


def test_cache_file_private_and_free_of_secrets(srv: PVEServer) -> None:
    with ApiClient(password_profile(srv)) as a, ApiClient(token_profile(srv)) as b:
        for c in (a, b):
            c.post("/nodes/pve1/qemu/100/status/start")
            c.get("/nodes")
            c.get("/cluster/resources", type="vm")
            c.get("/nodes/pve1/storage")  # per-guest reads stay in memory: see _persisted
        ticket, csrf = a.auth.credentials()  # type: ignore[union-attr]
        files = [cache_file(a.settings), cache_file(b.settings)]
    directory = cache_dir()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    names = sorted(p.name for p in directory.iterdir())
    assert names and all(n.endswith((".sqlite", "-journal", "-wal", "-shm")) for n in names)
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for f in files:
        raw = f.read_bytes()
        for secret in (ROOT_PW, ticket, csrf, TOKEN_SECRET, "PVEAuthCookie", "PVEAPIToken"):
            assert secret.encode() not in raw, (f, secret)
        with sqlite3.connect(f) as db:
            rows = db.execute("SELECT count(*) FROM responses").fetchone()[0]
        assert rows >= 3  # the reads were stored (so the check above looked at real entries)


def test_existing_cache_file_is_tightened(srv: PVEServer) -> None:
    profile = token_profile(srv)
    path = cache_file(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.chmod(path, 0o644)
    with ApiClient(profile) as c:
        c.get("/nodes")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_memory_and_disabled_cache_write_no_file(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv, cache="memory")) as m:
        m.get("/nodes")
        m.get("/nodes")
        assert srv.count("GET", "/nodes") == 1
    with ApiClient(token_profile(srv, cache=False)) as off:
        off.get("/nodes")
        off.get("/nodes")
    assert srv.count("GET", "/nodes") == 3
    assert not cache_dir().exists() or not any(cache_dir().iterdir())


# -- TLS --------------------------------------------------------------------------------------


def test_tls_verified_by_default_rejects_self_signed(tls_srv: PVEServer) -> None:
    tls_srv.clear()
    profile = password_profile(tls_srv, fingerprint=None, cache=False, retries=2)
    with ApiClient(profile) as c, pytest.raises(TLSError) as info:
        c.get("/nodes")
    assert "TLS check of" in str(info.value)
    assert tls_srv.requests == []  # not even the login went out
    assert tls_srv.logins == 0


def test_tls_ca_file(tls_srv: PVEServer) -> None:
    profile = password_profile(tls_srv, fingerprint=None, ca_file=tls_srv.ca_file, cache=False)
    assert profile.tls == "ca-file"
    with ApiClient(profile) as c:
        assert c.get("/nodes")["path"] == "/nodes"


def test_tls_fingerprint_pin_good(
    tls_srv: PVEServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A CA bundle in the environment must not override the per-request choice.
    other_cert, _key, _fp = make_self_signed("someone-else")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(other_cert)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    profile = password_profile(tls_srv, cache=False)
    assert profile.tls == "pinned"
    with ApiClient(profile) as c:
        assert c.get("/nodes")["path"] == "/nodes"
        assert c.post("/nodes/pve1/qemu/100/status/start")["path"].endswith("/start")


def test_tls_fingerprint_pin_bad_sends_nothing(
    tls_srv: PVEServer, recwarn: pytest.WarningsRecorder
) -> None:
    tls_srv.clear()
    logins_before = tls_srv.logins
    wrong = ":".join(["AB"] * 32)
    with (
        ApiClient(password_profile(tls_srv, fingerprint=wrong, cache=False, retries=3)) as c,
        pytest.raises(TLSError) as info,
    ):
        c.get("/nodes")
    assert "pinned SHA-256 fingerprint" in str(info.value) and wrong in str(info.value)
    assert tls_srv.requests == [] and tls_srv.logins == logins_before  # no credential sent
    with (
        ApiClient(token_profile(tls_srv, fingerprint=wrong, cache=False)) as t,
        pytest.raises(TLSError),
    ):
        t.get("/nodes")
    assert tls_srv.requests == []
    assert not [w for w in recwarn if "Unverified HTTPS" in str(w.message)]


def test_tls_insecure_works_and_is_marked(
    tls_srv: PVEServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other_cert, _key, _fp = make_self_signed("someone-else")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(other_cert)
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))  # must not re-enable verification
    profile = token_profile(tls_srv, fingerprint=None, verify_ssl=False, cache=False)
    with ApiClient(profile) as c:
        assert "INSECURE" in repr(c)
        with pytest.warns(Warning, match="Unverified HTTPS request"):
            c.get("/nodes")


def test_cached_session_shared_by_many_threads(srv: PVEServer) -> None:
    import threading

    errors: list[BaseException] = []
    with ApiClient(password_profile(srv)) as c:

        def work(i: int) -> None:
            try:
                for j in range(5):
                    c.get(f"/nodes/pve{(i + j) % 4}/status")
                    if j == 2:
                        c.post(f"/nodes/pve{i % 4}/qemu/{100 + i}/status/start")
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []
    assert srv.logins == 1
    assert srv.count("POST") == 16 + 1  # each write once, plus the login


def test_read_retries_a_login_that_failed_transiently(srv: PVEServer) -> None:
    srv.script("POST", "/access/ticket", Reply(503, reason="starting up"), Reply(drop=True))
    with ApiClient(password_profile(srv, cache=False, retries=3)) as c:
        assert c.get("/nodes")["path"] == "/nodes"
    assert srv.count("POST", "/access/ticket") == 3
    srv.script("POST", "/access/ticket", Reply(503, reason="starting up"))
    with (
        ApiClient(password_profile(srv, cache=False, retries=3)) as w,
        pytest.raises(ServerError, match="starting up"),
    ):
        w.post("/nodes/pve1/qemu/100/status/start")  # writes are not retried
    assert srv.count("POST", "/nodes/pve1/qemu/100/status/start") == 0


def test_memory_front_follows_ttl_and_hands_out_copies(
    srv: PVEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pvekit._api as api_module

    with ApiClient(token_profile(srv)) as c:
        first = c.get("/cluster/resources", type="vm")
        first["mutated"] = True  # a caller changing its answer must not change the cache
        assert "mutated" not in c.get("/cluster/resources", type="vm")
        assert srv.count("GET", "/cluster/resources") == 1
        now = time.time()
        assert c._memo_get("/cluster/resources", {"type": "vm"}) is not None
        # /cluster/resources lives 10 s: 11 s later the hot copy has expired with the stored one.
        monkeypatch.setattr(api_module.time, "time", lambda: now + 11)
        assert c._memo_get("/cluster/resources", {"type": "vm"}) is None
