"""Batched reads (``ApiClient.get_many``, ``Cluster.get_many``): the semantics of one
``get`` per path, a batch on the calling thread where the lean path applies.

What is asserted is countable: the requests the server saw (per path, in flight at once),
the logins, the fan-out threads started and the ``in_flight`` handed to the transport;
never timings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from _inflight import InFlight
from _pveserver import ROOT_PW, TOKEN_SECRET, PVEServer, Reply, password_profile, token_profile

import pvekit
from pvekit import APIError, AuthenticationError, PVEError, ServerError, TLSError
from pvekit._api import ApiClient
from pvekit._cluster import Cluster
from pvekit._lean import LeanPool
from pvekit.sim import Simulator

CONFIGS = [f"/nodes/pve1/qemu/{vmid}/config" for vmid in range(100, 106)]


@pytest.fixture
def srv() -> Iterator[PVEServer]:
    with PVEServer() as s:
        yield s


@pytest.fixture
def http_sim() -> Iterator[Simulator]:
    """The demo simulator over loopback HTTP: the lean path (and so the batch) applies."""
    with Simulator("demo") as s:
        yield s


def _connect(sim: Simulator, name: str = "prod", **kwargs: Any) -> Cluster:
    kw = dict(sim[name].connect_kwargs(identity="token"))
    kw.pop("profile", None)
    kw.setdefault("cache", "memory")
    kw.update(kwargs)
    return pvekit.connect(name, **kw)


def _sent(sim: Simulator, name: str = "prod") -> Counter[str]:
    return Counter(r.path for r in sim[name].requests if r.path != "/access/ticket")


class Batches:
    """Records every ``LeanPool.get_many`` call: its size and ``in_flight``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[int, int]] = []
        real = LeanPool.get_many
        lock = threading.Lock()

        def spy(pool: LeanPool, items: Any, headers: Any, *, in_flight: int) -> Any:
            with lock:
                self.calls.append((len(items), in_flight))
            return real(pool, items, headers, in_flight=in_flight)

        monkeypatch.setattr(LeanPool, "get_many", spy)


def _guest_paths(cluster: Cluster) -> dict[str, list[str]]:
    rows = [r for r in cluster.resources() if r.get("type") in ("qemu", "lxc")]
    base = [f"/nodes/{r['node']}/{r['type']}/{r['vmid']}" for r in rows]
    vms = [f"/nodes/{r['node']}/qemu/{r['vmid']}" for r in rows if r["type"] == "qemu"]
    node = rows[0]["node"]
    return {
        "config": [b + "/config" for b in base] + [f"/nodes/{node}/qemu/99999/config"],
        "status": [b + "/status/current" for b in base],
        "agent": [v + "/agent/network-get-interfaces" for v in vms],
    }


def _stable(kind: str, answer: Any) -> Any:
    if isinstance(answer, PVEError):
        return answer
    if kind == "status":
        return answer["status"], answer["vmid"]
    result = answer.get("result")
    if not isinstance(result, list):  # an error the agent reports itself
        return answer
    return [{k: v for k, v in i.items() if k != "statistics"} for i in result]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, PVEError) or isinstance(b, PVEError):
        return type(a) is type(b) and str(a) == str(b)
    return bool(a == b)


# -- the semantics of get, path by path ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["config", "status", "agent"])
def test_get_many_answers_as_get_does_path_by_path(http_sim: Simulator, kind: str) -> None:
    one, many = _connect(http_sim), _connect(http_sim)
    try:
        paths = _guest_paths(one)[kind]
        expected = []
        for p in paths:
            try:
                expected.append(one.get(p))
            except PVEError as exc:
                expected.append(exc)
        got = many.get_many(paths)
        assert len(got) == len(paths)
        # Counters move between the two reads: compare what is stable.
        if kind in ("status", "agent"):
            got = [_stable(kind, g) for g in got]
            expected = [_stable(kind, e) for e in expected]
        mismatched = [p for p, e, g in zip(paths, expected, got, strict=True) if not _same(e, g)]
        assert not mismatched
        if kind == "config":
            assert isinstance(got[-1], PVEError)  # the guest that does not exist
        if kind == "agent":
            assert any(isinstance(g, PVEError) for g in got)  # stopped VMs: agent not running
            assert any(not isinstance(g, PVEError) for g in got)
    finally:
        one.close()
        many.close()


def test_reads_go_in_one_batch_on_the_calling_thread(
    http_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = Batches(monkeypatch)
    cluster = _connect(http_sim)
    try:
        paths = _guest_paths(cluster)["config"][:-1]
        http_sim["prod"].clear_requests()
        before = {t.name for t in threading.enumerate()}
        cluster.get_many(paths)
        assert batches.calls == [(len(paths), cluster.max_workers)]
        assert cluster._fan_pool().threads_started == 0
        assert not any(
            t.name.startswith("pvekit-") and t.name != "pvekit-deadlines"
            for t in threading.enumerate()
            if t.name not in before
        )
        assert _sent(http_sim) == Counter(paths)
    finally:
        cluster.close()


def test_memory_hits_fresh_and_repeats(
    http_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = Batches(monkeypatch)
    cluster = _connect(http_sim)
    try:
        paths = _guest_paths(cluster)["config"][:4]
        http_sim["prod"].clear_requests()
        first = cluster.get_many(paths)
        assert cluster.get_many(paths) == first  # within the TTL: from memory
        assert _sent(http_sim) == Counter(paths)
        assert len(batches.calls) == 1  # the warm call sent no batch at all
        cluster.get_many(paths, fresh=True)
        assert _sent(http_sim) == Counter(paths * 2)
        # A path twice in one call is read once, as the second of two get() calls finds
        # the first's answer in memory; with fresh=True each of them reads.
        http_sim["prod"].clear_requests()
        cluster.invalidate(exact=[paths[0]])
        twice = cluster.get_many([paths[0], paths[0]])
        assert twice[0] == twice[1] and _sent(http_sim) == Counter([paths[0]])
        cluster.get_many([paths[0], paths[0]], fresh=True)
        assert _sent(http_sim) == Counter([paths[0]] * 3)
        # Invalidation drops the memory: the next call reads again.
        http_sim["prod"].clear_requests()
        cluster.invalidate(paths[1])
        cluster.get_many(paths)
        assert _sent(http_sim) == Counter([paths[1]])
    finally:
        cluster.close()


def test_an_unsettled_write_makes_its_reads_skip_the_memory(http_sim: Simulator) -> None:
    cluster = _connect(http_sim)
    try:
        paths = _guest_paths(cluster)["config"][:3]
        cluster.get_many(paths)
        http_sim["prod"].clear_requests()
        # A write to the first guest timed out: its outcome is unknown for a while.
        guest = paths[0].rsplit("/", 1)[0]
        cluster.api._unsettle("POST", guest + "/config", {})
        cluster.get_many(paths)
        assert _sent(http_sim) == Counter([paths[0]])
        cluster.get(paths[0])  # get() does the same
        assert _sent(http_sim) == Counter([paths[0]] * 2)
    finally:
        cluster.close()


def test_invalid_paths_and_a_closed_client_are_values() -> None:
    from pvekit._config import Profile

    c = ApiClient(Profile(host="127.0.0.1:9", token_name="a@pam!t", token_value="x"))
    got = c.get_many(["no-slash", "/a?b=1", "/a b"])
    assert [type(g).__name__ for g in got] == ["InvalidInputError"] * 3
    bad = c.get_many(CONFIGS[:2], {"": 1})  # a parameter get() refuses: every path's value
    assert all(isinstance(g, pvekit.InvalidInputError) for g in bad)
    c.close()
    assert all(isinstance(g, pvekit.ConnectionError) for g in c.get_many(CONFIGS[:2]))


# -- tries, backoff, Retry-After, deadline --------------------------------------------------


@pytest.mark.parametrize(
    ("retries", "status", "sent", "outcome"),
    [(2, 503, 2, None), (0, 503, 1, ServerError), (2, 500, 1, ServerError), (2, 502, 2, None)],
)
def test_a_fault_on_the_batched_try_is_retried_like_get(
    http_sim: Simulator, retries: int, status: int, sent: int, outcome: type | None
) -> None:
    cluster = _connect(http_sim, retries=retries, backoff=0.01)
    try:
        paths = _guest_paths(cluster)["config"][:5]
        http_sim["prod"].clear_requests()
        http_sim["prod"].faults.errors(1.0, (status,), pattern=paths[2], times=1)
        got = cluster.get_many(paths)
        assert _sent(http_sim) == Counter(paths) + Counter({paths[2]: sent - 1})
        if outcome is None:
            assert isinstance(got[2], dict)
        else:
            assert isinstance(got[2], outcome) and got[2].status == status
        assert all(isinstance(g, dict) for i, g in enumerate(got) if i != 2)
    finally:
        cluster.close()


def test_a_retryable_status_on_a_lean_get_is_retried(srv: PVEServer) -> None:
    # Found here: the lean answer holds no raw stream, so releasing it before the retry
    # raised AttributeError out of get() instead of retrying.
    srv.script("GET", CONFIGS[0], Reply(503, reason="busy"))
    with ApiClient(token_profile(srv, cache="memory", retries=2)) as c:
        assert c._lean is not None
        assert c.get(CONFIGS[0])["path"] == CONFIGS[0]
    assert srv.count("GET", CONFIGS[0]) == 2


def test_a_lasting_fault_gets_the_tries_of_get(http_sim: Simulator) -> None:
    cluster = _connect(http_sim, retries=2, backoff=0.01)
    try:
        paths = _guest_paths(cluster)["config"][:3]
        http_sim["prod"].clear_requests()
        http_sim["prod"].faults.errors(1.0, (503,), pattern=paths[1])
        got = cluster.get_many(paths)
        assert isinstance(got[1], ServerError)
        assert _sent(http_sim)[paths[1]] == 3  # the batched try and the two retries
    finally:
        cluster.close()


def test_dropped_connection_and_timeout_on_the_batched_try(http_sim: Simulator) -> None:
    cluster = _connect(http_sim, retries=1, backoff=0.01, timeout=0.5)
    try:
        paths = _guest_paths(cluster)["config"][:4]
        http_sim["prod"].clear_requests()
        http_sim["prod"].faults.drop(1.0, pattern=paths[0], times=1)
        http_sim["prod"].faults.latency(1.5, pattern=paths[3], times=1)
        got = cluster.get_many(paths)
        assert all(isinstance(g, dict) for g in got), got
        deadline = time.monotonic() + 5  # a delayed request is logged once answered
        while _sent(http_sim)[paths[3]] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # A dropped keep-alive connection may be re-sent once by the pool itself (nothing
        # reached the server): the simulator counts what reached it.
        assert _sent(http_sim)[paths[3]] == 2
        assert 2 <= _sent(http_sim)[paths[0]] <= 3
    finally:
        cluster.close()


def test_retry_after_is_honoured_and_capped_by_the_deadline(srv: PVEServer) -> None:
    srv.script("GET", CONFIGS[0], Reply(503, reason="busy", headers={"Retry-After": "0"}))
    srv.script("GET", CONFIGS[1], *[Reply(503, reason="busy", headers={"Retry-After": "100"})] * 4)
    with ApiClient(token_profile(srv, cache="memory", timeout=1, retries=3)) as c:
        got = c.get_many(CONFIGS[:3])
    assert isinstance(got[0], dict) and isinstance(got[2], dict)
    assert srv.count("GET", CONFIGS[0]) == 2
    # Waiting 100 s cannot fit in the call's deadline: no sleep, no retry, as with get().
    assert isinstance(got[1], ServerError) and srv.count("GET", CONFIGS[1]) == 1


def test_a_tls_failure_is_final(tmp_path: Any) -> None:
    with PVEServer(https=True) as tls:
        profile = token_profile(tls, cache="memory", retries=3, fingerprint="ab" * 32)
        with ApiClient(profile) as c:
            got = c.get_many(CONFIGS[:3])
        assert all(isinstance(g, TLSError) for g in got)
        assert tls.count() == 0  # the pin is checked before a byte is sent; nothing retried


# -- auth ---------------------------------------------------------------------------------


def test_an_expired_ticket_in_the_batch_logs_in_once(srv: PVEServer) -> None:
    with ApiClient(password_profile(srv, cache="memory")) as c:
        c.get("/version")
        assert srv.logins == 1
        srv.expire_tickets()
        srv.clear()
        got = c.get_many(CONFIGS)
        assert all(isinstance(g, dict) for g in got)
        assert srv.logins == 2  # one re-login for the whole batch
        # each path: the refused try and one more, as get() does after a 401
        assert all(srv.count("GET", p) == 2 for p in CONFIGS)


def test_a_refused_login_is_every_paths_value_after_one_attempt(srv: PVEServer) -> None:
    with ApiClient(password_profile(srv, cache="memory", password="wrong")) as c:
        got = c.get_many(CONFIGS)
    assert all(isinstance(g, AuthenticationError) for g in got)
    assert srv.logins == 1  # the batch logs in once, not once per path
    assert srv.count("GET") == 0


def test_the_token_header_is_built_once_and_sent_on_every_read(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv, cache="memory")) as c:
        c.get_many(CONFIGS)
        c.get_many(CONFIGS, fresh=True)
    recorded = [r for r in srv.requests if r.path in CONFIGS]
    assert len(recorded) == 2 * len(CONFIGS)
    assert {r.headers["authorization"] for r in recorded} == {
        f"PVEAPIToken=root@pam!pvekit={TOKEN_SECRET}"
    }


def test_secrets_never_in_logs_or_errors(srv: PVEServer, caplog: pytest.LogCaptureFixture) -> None:
    srv.route("GET", CONFIGS[0], lambda rec: Reply(drop=True))
    srv.route("GET", CONFIGS[1], lambda rec: Reply(500, reason="boom"))
    caplog.set_level(logging.DEBUG, logger="pvekit")
    texts: list[str] = []
    for profile in (
        token_profile(srv, cache="memory", retries=1),
        password_profile(srv, cache="memory", retries=1),
    ):
        with ApiClient(profile) as c:
            got = c.get_many(CONFIGS[:3])
            texts += [str(g) + repr(g) for g in got]
            assert isinstance(got[0], pvekit.ConnectionError) and isinstance(got[1], ServerError)
    blob = caplog.text + "".join(texts)
    assert "batch of 3" in caplog.text  # the batch's reads are logged too
    assert srv.tickets  # the password client logged in: its ticket must not show either
    for secret in (TOKEN_SECRET, ROOT_PW, *srv.tickets):
        assert secret not in blob


# -- a cluster: shape checks, tables, threads, in flight ---------------------------------------


def test_a_malformed_answer_is_the_paths_value(srv: PVEServer) -> None:
    srv.script("GET", CONFIGS[0], Reply(200, [1, 2]))
    with Cluster(ApiClient(token_profile(srv, cache="memory"))) as c:
        got = c.get_many(CONFIGS[:2])
        assert isinstance(got[0], APIError) and "malformed answer" in str(got[0])
        assert isinstance(got[1], dict)


def test_the_detailed_table_starts_no_fan_out_thread(
    http_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server far away: the thread fan-out would start helpers here (it did before).
    probe = InFlight(http_sim["prod"], delay=0.02)
    batches = Batches(monkeypatch)
    cluster = _connect(http_sim)
    try:
        df = cluster.guests(details=True, progress=False)
        assert df["error"].isna().all()
        assert probe.handled == len(df)
        assert cluster._fan_pool().threads_started == 0
        assert probe.peak <= cluster.max_workers
        assert [n for n, _ in batches.calls] == [len(df)]
        assert {f for _, f in batches.calls} == {cluster.max_workers}
    finally:
        cluster.close()


def test_in_flight_is_the_clusters_max_workers(
    http_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = InFlight(http_sim["prod"], delay=0.01)
    batches = Batches(monkeypatch)
    cluster = _connect(http_sim)
    cluster.max_workers = 2
    try:
        cluster.guests(details=True, progress=False)
        assert {f for _, f in batches.calls} == {2}
        assert 1 <= probe.peak <= 2
    finally:
        cluster.close()


def test_a_groups_detailed_table_starts_no_fan_out_thread(
    http_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pvekit._group as group_module

    # The group-wide share bounds fan-out threads only: each cluster's batch keeps its
    # own server-politeness bound (the clusters are different servers).
    monkeypatch.setattr(group_module, "GROUP_IN_FLIGHT", 4)
    probes = {n: InFlight(http_sim[n], delay=0.02) for n in ("prod", "lab")}
    batches = Batches(monkeypatch)
    clusters = [_connect(http_sim, n) for n in ("prod", "lab")]
    group = pvekit.Group(clusters)
    try:
        df = group.guests(details=True, progress=False)
        assert df["error"].isna().all()
        for c in clusters:
            assert c._fan_pool().threads_started == 0, c.profile
            assert probes[c.profile].peak <= c.max_workers
        assert sum(p.handled for p in probes.values()) == len(df)
        assert len(batches.calls) == 2
        assert {f for _, f in batches.calls} == {16}
    finally:
        group.close()


def test_a_200_guest_detailed_table_is_one_batch_and_one_request_per_guest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batches = Batches(monkeypatch)
    with Simulator("large", nodes=4, guests=200) as sim:
        name = next(iter(sim.clusters))
        kw = dict(sim[name].connect_kwargs(identity="token"))
        kw.pop("profile", None)
        cluster = pvekit.connect(name, cache="memory", **kw)
        try:
            probe = InFlight(sim[name], delay=0.005)
            sim[name].clear_requests()
            df = cluster.guests(details=True, progress=False)
            sent = Counter(r.path for r in sim[name].requests if r.path != "/access/ticket")
            online = df["error"].isna().sum()
            configs = sum(n for p, n in sent.items() if p.endswith("/config"))
            assert sent["/cluster/resources"] == 1
            assert configs == online == probe.handled >= 150
            assert sum(sent.values()) == 1 + configs
            assert cluster._fan_pool().threads_started == 0
            assert [n for n, _ in batches.calls] == [configs]
            assert probe.peak <= cluster.max_workers
        finally:
            cluster.close()


def test_a_detailed_table_under_a_503_burst_and_a_ticket_expiry(http_sim: Simulator) -> None:
    """The fault matrix's read cases on the batch path (the matrix itself runs cache=False,
    so per path): a burst of 503 on configs is retried, an expired ticket re-logged once."""
    kw = dict(http_sim["prod"].connect_kwargs(identity="root"))
    kw.pop("profile", None)
    cluster = pvekit.connect("prod", cache="memory", retries=2, backoff=0.01, **kw)
    try:
        baseline = cluster.guests(details=True, progress=False)
        online = int(baseline["error"].isna().sum())
        http_sim["prod"].clear_requests()
        http_sim["prod"].faults.errors(1.0, (503,), pattern="/nodes/*/qemu/*/config", times=3)
        df = cluster.guests(details=True, progress=False, fresh=True)
        assert int(df["error"].isna().sum()) == online
        configs = sum(n for p, n in _sent(http_sim).items() if p.endswith("/config"))
        assert configs == online + 3
        http_sim["prod"].faults.clear()
        logins = sum(1 for r in http_sim["prod"].requests if r.path == "/access/ticket")
        http_sim["prod"].expire_tickets()
        df = cluster.guests(details=True, progress=False, fresh=True)
        assert int(df["error"].isna().sum()) == online
        after = sum(1 for r in http_sim["prod"].requests if r.path == "/access/ticket")
        assert after == logins + 1
    finally:
        cluster.close()
