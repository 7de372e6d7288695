"""``cache="memory"``: the client's memory layer is the whole cache, no requests-cache.

A requests-cache miss on its memory backend cost ~1-1.7 ms of client CPU, against ~0.2 ms on
the lean path, and held nothing the memory layer does not (nothing outlives the process
either way). So with ``"memory"`` every cached read lives in the layer only, for the endpoint
table's TTL, and every read the lean path may take goes there, cluster-level ones included.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from _pveserver import PVEServer, Reply, token_profile
from requests_cache.policy.expiration import get_url_expiration

from pvekit._api import ApiClient
from pvekit._endpoints import READS, ttl_for
from pvekit._lean import LeanPool
from pvekit._transport import drop_cached, is_cached_session, url_patterns

CLUSTER = ("/cluster/resources", "/cluster/status", "/nodes/pve1/status", "/nodes/pve1/storage")


@pytest.fixture
def srv() -> Iterator[PVEServer]:
    with PVEServer() as s:
        yield s


@pytest.fixture
def lean_sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The targets the lean pool sent, by get() and by get_many()."""
    sent: list[str] = []
    one, many = LeanPool.get, LeanPool.get_many

    def get(self: LeanPool, target: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(target)
        return one(self, target, *args, **kwargs)

    def get_many(self: LeanPool, items: Any, *args: Any, **kwargs: Any) -> Any:
        sent.extend(target for target, _ in items)
        return many(self, items, *args, **kwargs)

    monkeypatch.setattr(LeanPool, "get", get)
    monkeypatch.setattr(LeanPool, "get_many", get_many)
    return sent


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + seconds)


def test_memory_cache_has_no_requests_cache(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv, cache="memory")) as c:
        assert not is_cached_session(c.session)
        assert c._plain is c.session
        c.get("/cluster/resources")
        c.invalidate()  # the whole cache, without a requests-cache to clear
        c.get("/cluster/resources")
    assert srv.count("GET", "/cluster/resources") == 2


@pytest.mark.parametrize("path", CLUSTER)
def test_cluster_reads_take_the_lean_path_and_keep_their_ttl(
    srv: PVEServer, lean_sent: list[str], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    ttl = ttl_for(path)
    assert ttl
    with ApiClient(token_profile(srv, cache="memory")) as c:
        c.get(path)
        assert lean_sent == ["/api2/json" + path]
        c.get(path)  # warm, within the TTL: nothing sent
        assert srv.count("GET", path) == 1
        _later(monkeypatch, ttl - 1)
        c.get(path)
        assert srv.count("GET", path) == 1
        _later(monkeypatch, ttl + 1)
        c.get(path)
        assert srv.count("GET", path) == 2
        assert len(lean_sent) == 2


def test_fresh_reads_again_and_refreshes(srv: PVEServer, lean_sent: list[str]) -> None:
    with ApiClient(token_profile(srv, cache="memory")) as c:
        c.get("/cluster/resources", type="vm")
        c.get("/cluster/resources", type="vm", fresh=True)
        assert srv.count("GET", "/cluster/resources") == 2
        c.get("/cluster/resources", type="vm")  # the fresh answer is the one held
        assert srv.count("GET", "/cluster/resources") == 2
        assert lean_sent == ["/api2/json/cluster/resources?type=vm"] * 2


def test_a_write_drops_the_cluster_reads_it_made_stale(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv, cache="memory")) as c:
        c.get("/cluster/resources")
        c.get("/version")
        c.post("/nodes/pve1/qemu/100/status/start")
        c.get("/cluster/resources")
        c.get("/version")
    assert srv.count("GET", "/cluster/resources") == 2
    assert srv.count("GET", "/version") == 1


def test_a_write_of_unknown_outcome_reads_past_the_cache(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv, cache="memory", retries=0)) as c:
        c.get("/cluster/resources")
        srv.script("POST", "/nodes/pve1/qemu/100/status/start", Reply(500))
        with pytest.raises(Exception):  # noqa: B017 - any mapped server error
            c.post("/nodes/pve1/qemu/100/status/start")
        c.get("/cluster/resources")
        c.get("/cluster/resources")  # unsettled: each read goes to the server
    assert srv.count("GET", "/cluster/resources") == 3


def test_a_failed_answer_is_not_cached(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv, cache="memory", retries=0)) as c:
        srv.script("GET", "/cluster/status", Reply(500))
        with pytest.raises(Exception):  # noqa: B017
            c.get("/cluster/status")
        c.get("/cluster/status")
        c.get("/cluster/status")
    assert srv.count("GET", "/cluster/status") == 2


def test_never_cached_reads_stay_uncached(srv: PVEServer) -> None:
    path = "/nodes/pve1/tasks/UPID:pve1:1:2:3:qmstart:100:root@pam:/status"
    with ApiClient(token_profile(srv, cache="memory")) as c:
        c.get(path)
        c.get(path)
    assert srv.count("GET", path) == 2


def test_get_many_batches_cluster_reads(srv: PVEServer, lean_sent: list[str]) -> None:
    with ApiClient(token_profile(srv, cache="memory")) as c:
        out = c.get_many(list(CLUSTER))
        assert [o["path"] for o in out] == list(CLUSTER)
        assert sorted(lean_sent) == sorted("/api2/json" + p for p in CLUSTER)
        c.get_many(list(CLUSTER))  # warm: nothing sent
    assert srv.count("GET") == len(CLUSTER)


def test_sqlite_cache_keeps_requests_cache_for_persisted_reads(
    srv: PVEServer, lean_sent: list[str]
) -> None:
    with ApiClient(token_profile(srv)) as c:  # cache=True
        assert is_cached_session(c.session)
        c.get("/cluster/resources")
        c.get("/nodes/pve1/qemu/100/config")
        assert lean_sent == ["/api2/json/nodes/pve1/qemu/100/config"]
        assert len(c.session.cache.responses) == 1  # type: ignore[attr-defined]


def test_drop_cached_on_a_plain_session_is_a_no_op() -> None:
    drop_cached(requests.Session(), ["/x#key"])


def _samples() -> list[str]:
    filled = {"node": "pve1", "type": "qemu", "vmid": "100", "storage": "local", "upid": "U"}
    out = []
    for entry in READS:
        path = re.sub(r"\{([a-z_-]+)\*?\}", lambda m: filled[m.group(1)], entry.pattern)
        out += [path, path + "/x", path + "?type=vm"]
    return [*out, "/cluster/backup", "/nodes/pve1/qemu/100", "/access/users", "/"]


@pytest.mark.parametrize("path", _samples())
def test_memory_ttl_is_the_one_requests_cache_was_given(srv: PVEServer, path: str) -> None:
    """The memory layer keeps each read as long as requests-cache's ``urls_expire_after``
    (built from the same table) would: ``cache="memory"`` changed where, not how long."""
    from requests_cache import DO_NOT_CACHE

    patterns = url_patterns(token_profile(srv))
    bare = path.partition("?")[0]
    url = srv.url + "/api2/json" + path
    expected = get_url_expiration(url, patterns)
    ttl = ttl_for(bare)
    assert (DO_NOT_CACHE if ttl is None else ttl) == expected, url
