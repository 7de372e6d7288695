"""Request counts behind the benchmarks: what each read costs, and what the cache saves.

These are the countable half of ``benchmarks/``: the basic guest table is one
``/cluster/resources`` request per cluster whatever the size, no request is repeated within
its TTL (not inside one call, not across calls), and a warm repeat of any read sends nothing.
Timings are never asserted here; see BENCHMARKS.md for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

import pvekit

if TYPE_CHECKING:
    from pvekit import Cluster, Group
    from pvekit.sim import Simulator

LOGIN = "/access/ticket"


@pytest.fixture
def fresh_sim() -> Iterator[Simulator]:
    """A demo simulator of its own over loopback HTTP, not in-process (see conftest):
    the tests count what pvekit's own cache (cache=) saves;
    an injected in-process session keeps its own caching instead."""
    from pvekit.sim import Simulator as _Simulator

    with _Simulator("demo") as s:
        yield s


def _connect(sim: Simulator, name: str, cache: bool | str = "memory") -> Cluster:
    kw = dict(sim[name].connect_kwargs(identity="token"))
    kw.pop("profile", None)
    return pvekit.connect(name, cache=cache, retries=0, **kw)


def _sent(sim: Simulator, name: str | None = None) -> list[tuple[str, str, tuple[Any, ...]]]:
    reqs = sim.requests if name is None else sim[name].requests
    return [
        (r.method, r.path, tuple(sorted((k, str(v)) for k, v in r.params.items())))
        for r in reqs
        if r.path != LOGIN
    ]


@pytest.fixture
def demo_group(fresh_sim: Simulator) -> Iterator[Group]:
    group = pvekit.Group([_connect(fresh_sim, "prod"), _connect(fresh_sim, "lab")])
    fresh_sim.clear_requests()
    yield group
    group.close()


# One entry per public read: a label and how to call it on a Cluster or a Group.
READS: list[tuple[str, Callable[[Any], Any]]] = [
    ("guests", lambda c: c.guests(progress=False)),
    ("guests details", lambda c: c.guests(details=True, progress=False)),
    ("guests ips", lambda c: c.guests(details=True, ips=True, progress=False)),
    ("nodes", lambda c: c.nodes(progress=False)),
    ("storage", lambda c: c.storage(progress=False)),
    ("storage unique", lambda c: c.storage(unique=True, progress=False)),
    ("tasks", lambda c: c.tasks(progress=False)),
    ("backups", lambda c: c.backups(progress=False)),
    ("snapshots", lambda c: c.snapshots(progress=False)),
    ("metrics node", lambda c: c.metrics("node", progress=False)),
    ("metrics guest", lambda c: c.metrics("guest", [100, 101], progress=False)),
    ("metrics storage", lambda c: c.metrics("storage", progress=False)),
    ("summary", lambda c: c.summary()),
]


def test_basic_table_is_one_resources_request_per_cluster(
    fresh_sim: Simulator, demo_group: Group
) -> None:
    df = demo_group.guests()
    assert set(df["profile"]) == {"prod", "lab"}
    for name in ("prod", "lab"):
        assert _sent(fresh_sim, name) == [("GET", "/cluster/resources", ())], name


def test_basic_table_of_a_large_cluster_is_still_one_request() -> None:
    from pvekit.sim import Simulator

    with Simulator("large", nodes=12, guests=1500) as sim:
        cluster = _connect(sim, "large", cache=False)
        try:
            sim.clear_requests()
            df = cluster.guests()
            assert len(df) == len(sim["large"].state.guests)
            assert _sent(sim) == [("GET", "/cluster/resources", ())]
            # ... and also with details: one config per guest, nothing more, nothing twice.
            sim.clear_requests()
            cluster.max_workers = 16
            cluster.guests(details=True, progress=False)
            sent = Counter(_sent(sim))
            assert sent[("GET", "/cluster/resources", ())] == 1
            configs = [k for k in sent if k[1].endswith("/config")]
            assert len(configs) == len(df)
            assert max(sent.values()) == 1
        finally:
            cluster.close()


@pytest.mark.parametrize(("label", "read"), READS, ids=[r[0] for r in READS])
def test_no_request_twice_within_ttl_and_none_on_warm_repeat(
    fresh_sim: Simulator, demo_group: Group, label: str, read: Callable[[Any], Any]
) -> None:
    first = read(demo_group)
    assert _sent(fresh_sim), f"{label}: the cold call sent nothing"
    # One request per (cluster, method, path, params): each cluster has its own port, so
    # the same path on two clusters shows up once per cluster in the simulator's log.
    for name in ("prod", "lab"):
        counts = Counter(_sent(fresh_sim, name))
        dup = {k: n for k, n in counts.items() if n > 1}
        assert not dup, f"{label}: {name} got repeated requests within their TTL: {dup}"
    # Only 200 answers are cached (documented): a read that failed (a guest agent that is
    # not running answers 500) is asked again, and nothing else may be.
    failed = {
        (r.method, r.path, tuple(sorted((k, str(v)) for k, v in r.params.items())))
        for r in fresh_sim.requests
        if r.status != 200
    }
    fresh_sim.clear_requests()
    second = read(demo_group)
    again = [k for k in _sent(fresh_sim) if k not in failed]
    assert again == [], f"{label}: a warm repeat sent requests"
    if hasattr(first, "equals"):
        assert first.equals(second), f"{label}: the warm answer differs from the cold one"


def test_reads_share_one_cached_resources_answer(fresh_sim: Simulator) -> None:
    cluster = _connect(fresh_sim, "prod")
    try:
        fresh_sim.clear_requests()
        for _, read in READS:
            read(cluster)
        sent = Counter(_sent(fresh_sim, "prod"))
        assert sent[("GET", "/cluster/resources", ())] == 1
        assert sent[("GET", "/cluster/status", ())] == 1
        dup = {k: n for k, n in sent.items() if n > 1}
        assert not dup, f"requests repeated within their TTL: {dup}"
    finally:
        cluster.close()


def test_fresh_bypasses_the_cache(fresh_sim: Simulator) -> None:
    cluster = _connect(fresh_sim, "prod")
    try:
        cluster.guests(details=True, progress=False)
        fresh_sim.clear_requests()
        cluster.guests(details=True, progress=False)
        assert _sent(fresh_sim) == []
        cluster.guests(details=True, fresh=True, progress=False)
        sent = Counter(_sent(fresh_sim))
        assert sent[("GET", "/cluster/resources", ())] == 1
        assert sum(1 for k in sent if k[1].endswith("/config")) > 50
    finally:
        cluster.close()


def test_sqlite_cache_warm_repeat_sends_nothing(fresh_sim: Simulator) -> None:
    cluster = _connect(fresh_sim, "prod", cache=True)
    try:
        cluster.invalidate()
        cluster.guests(details=True, progress=False)
        fresh_sim.clear_requests()
        cluster.guests(details=True, progress=False)
        assert _sent(fresh_sim) == []
    finally:
        cluster.close()
    # A second client of the same profile and identity (a restarted kernel) reads the
    # cluster-level answers from the file; per-guest reads live in memory only (_persisted).
    again = _connect(fresh_sim, "prod", cache=True)
    try:
        fresh_sim.clear_requests()
        again.guests(details=True, progress=False)
        sent = _sent(fresh_sim)
        assert sent and all(p.endswith("/config") for _, p, _ in sent), sent
    finally:
        again.close()


def test_a_write_drops_exactly_the_stale_reads(fresh_sim: Simulator) -> None:
    cluster = _connect(fresh_sim, "prod")
    try:
        cluster.guests(details=True, progress=False)
        fresh_sim.clear_requests()
        cluster.guest(100).update(description="benchmarked")
        fresh_sim.clear_requests()
        cluster.guests(details=True, progress=False)
        sent = _sent(fresh_sim)
        paths = {p for _, p, _ in sent}
        # The guest list and the written guest's config are read again; the other configs
        # are still fresh in the cache.
        assert "/cluster/resources" in paths
        assert any(p.endswith("/100/config") for p in paths)
        assert len([p for p in paths if p.endswith("/config")]) == 1
    finally:
        cluster.close()


@pytest.mark.parametrize(("label", "read"), READS, ids=[r[0] for r in READS])
def test_batched_reads_send_what_one_get_per_path_sends(
    fresh_sim: Simulator, label: str, read: Callable[[Any], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tables read their per-guest and per-node paths through get_many (one batch on
    the lean path): the requests are exactly those of the requests path, read one by one.
    With ``cache="memory"`` (no requests-cache) cluster- and node-level reads batch too;
    with ``cache=True`` they stay on requests-cache, which persists them in the file."""
    from pvekit._lean import LeanPool

    batched: list[str] = []
    real = LeanPool.get_many

    def spy(pool: LeanPool, items: Any, headers: Any, *, in_flight: int) -> Any:
        batched.extend(target.partition("?")[0].removeprefix("/api2/json") for target, _ in items)
        return real(pool, items, headers, in_flight=in_flight)

    monkeypatch.setattr(LeanPool, "get_many", spy)
    sent = {}
    for lean in (True, False):
        cluster = _connect(fresh_sim, "prod")
        if not lean:
            cluster.api._lean = None  # every read one by one on requests, as before batches
        try:
            fresh_sim.clear_requests()
            read(cluster)
            sent[lean] = Counter(_sent(fresh_sim, "prod"))
        finally:
            cluster.close()
    assert sent[True] == sent[False], label
    guest_paths = Counter(p for (_, p, _), n in sent[True].items() for _ in range(n) if _guest(p))
    sent_paths = Counter(p for (_, p, _), n in sent[True].items() for _ in range(n))
    if label.startswith("guests ") or label in ("snapshots", "metrics guest"):
        assert guest_paths, label
    assert Counter(p for p in batched if _guest(p)) == guest_paths, label  # each in a batch
    assert not Counter(batched) - sent_paths, label  # and nothing batched twice
    if not label.startswith("guests") and label not in ("snapshots", "metrics guest"):
        # No requests-cache to stay on: the cluster- and node-level reads batched too.
        assert batched and not any(_guest(p) for p in batched), label
    batched.clear()
    cluster = _connect(fresh_sim, "prod", cache=True)
    try:
        read(cluster)
    finally:
        cluster.close()
    assert all(_guest(p) for p in batched), label  # cluster and node reads: requests-cache


def _guest(path: str) -> bool:
    return "/qemu/" in path or "/lxc/" in path
