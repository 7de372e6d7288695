"""The endpoint table and the client's one in-memory cache layer.

- every pattern of the table (reads, writes and the reads a write makes stale) exists in the
  official schema with that method; the documented caching tables are generated from it;
- a first write after start reads no stored answer of the SQLite file (only keys);
- a write examines only the entries it makes stale, not the whole layer;
- frames are reused while their inputs are unchanged (no request, no thread pool), handed
  out as copies, and built again after a write;
- the reads a task's effect makes stale are dropped again when the client sees it end.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _paths import ROOT, official_schema
from _pveserver import PVEServer, token_profile

import pvekit
from pvekit._api import ApiClient
from pvekit._endpoints import READS, WRITES, markdown_table, stale_scopes, write_for

if TYPE_CHECKING:
    from pvekit import Cluster
    from pvekit.sim import Simulator

SAMPLE = {
    "node": "pve1",
    "target": "pve2",
    "vmid": "100",
    "storage": "local",
    "upid": "UPID:pve1:0001",
    "snapname": "s1",
    "volume": "local:iso/x.iso",
    "action": "start",
    "command*": "ping",
}


def _routes() -> dict[str, tuple[re.Pattern[str], set[str]]]:
    routes: dict[str, tuple[re.Pattern[str], set[str]]] = {}

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            regex = re.compile(
                "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(node["path"])) + "$"
            )
            routes[node["path"]] = (regex, set(node.get("info") or {}))
            walk(node.get("children") or [])

    walk(official_schema())
    return routes


def _samples(pattern: str) -> list[str]:
    """Concrete paths of ``pattern``: ``{type}`` as qemu and lxc (unless it says which)."""
    out = []
    for gtype in ("qemu", "lxc"):
        path = pattern.replace("{type}", gtype)
        for name, value in SAMPLE.items():
            path = path.replace("{" + name + "}", value.replace("/", "%2F"))
        out.append(path.replace("/*/", "/pve1/"))
    return list(dict.fromkeys(out))


def _in_schema(path: str, method: str, routes: dict[str, Any]) -> bool:
    # pattern paths from the table are the schema's own templates when a route has them
    return any(regex.match(path) and method in methods for regex, methods in routes.values())


def test_every_pattern_of_the_table_is_in_the_official_schema() -> None:
    routes = _routes()
    missing = []
    for entry in READS:
        for path in _samples(entry.pattern):
            skip = "/qemu/" in entry.pattern and "/lxc/" in path
            if not skip and not _in_schema(path, "GET", routes):
                missing.append(f"GET {entry.pattern} ({path})")
    for write in WRITES:
        for stale in write.stale:
            if "{parent}" in stale.pattern or "{name}" in stale.pattern:
                continue  # the parent of whatever was written
            for path in _samples(stale.pattern.replace("{family}", "storage")):
                if not _in_schema(path, "GET", routes):
                    missing.append(f"stale read {stale.pattern} of {write.pattern} ({path})")
        if write.generic:
            continue
        for method in write.methods:
            # a {type} write exists for VMs or containers (PUT config: both; POST: VMs only)
            if not any(_in_schema(p, method, routes) for p in _samples(write.pattern)):
                missing.append(f"{method} {write.pattern}")
    assert missing == []


def test_first_match_wins_and_every_entry_is_reachable() -> None:
    for entry in WRITES:
        for method in entry.methods:
            for path in _samples(entry.pattern.replace("{rest*}", "x/y").replace("{family}", "f")):
                path = path.replace("{parent*}", "a/b").replace("{name}", "n")
                if "/qemu/" in entry.pattern and "/lxc/" in path:
                    continue
                found = write_for(method, path)
                assert found is not None and found[0] is entry, (method, path)


def test_a_write_of_none_drops_nothing_and_an_unknown_write_its_parent() -> None:
    assert stale_scopes("POST", "/nodes/pve1/qemu/100/vncproxy", {"websocket": 1}) == []
    scopes = {s.path for s in stale_scopes("POST", "/cluster/ha/groups", {})}
    assert scopes == {"/cluster/resources", "/cluster/tasks", "/cluster/ha"}


def test_scopes_cover_their_paths() -> None:
    from pvekit._endpoints import Scope

    assert Scope("/nodes/*/storage").covers("/nodes/pve2/storage/local/content")
    assert not Scope("/nodes/*/storage").covers("/nodes/pve2/status")
    assert Scope("/nodes/pve1/qemu", exact=True).covers("/nodes/pve1/qemu")
    assert not Scope("/nodes/pve1/qemu", exact=True).covers("/nodes/pve1/qemu/100/config")
    assert Scope("/").covers("/version")


def test_invalidate_by_prefix_exact_wildcard_and_root(srv: PVEServer) -> None:
    paths = ["/nodes/pve1/qemu", "/nodes/pve1/qemu/100/config", "/nodes/pve2/storage", "/version"]
    with ApiClient(token_profile(srv, cache="memory")) as c:
        for path in paths:
            c.get(path)
        c.invalidate(exact=["/nodes/pve1/qemu"])
        assert [p for p in paths if c.memo_token(p) is None] == ["/nodes/pve1/qemu"]
        c.invalidate("/nodes/*/storage")
        assert c.memo_token("/nodes/pve2/storage") is None
        assert c.memo_token("/nodes/pve1/qemu/100/config") is not None
        c.invalidate("/")
        assert [p for p in paths if c.memo_token(p) is not None] == []


def test_docs_caching_tables_are_generated_from_the_endpoint_table() -> None:
    text = (ROOT / "docs" / "client.md").read_text(encoding="utf-8")
    assert markdown_table() in text
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_docs.py"), "--check"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert check.returncode == 0, check.stdout + check.stderr


# -- the cache layer ------------------------------------------------------------------------


@pytest.fixture
def srv() -> Iterator[PVEServer]:
    with PVEServer() as s:
        yield s


def test_first_write_after_start_reads_keys_not_stored_answers(
    srv: PVEServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PVEKIT_CACHE_DIR", str(tmp_path))
    reads = ["/cluster/resources", "/cluster/status", "/version", "/storage", "/pools"]
    reads += [f"/nodes/pve{i}/status" for i in range(1, 31)]
    with ApiClient(token_profile(srv, cache=True)) as first:
        for path in reads:
            first.get(path)
    srv.clear()
    with ApiClient(token_profile(srv, cache=True)) as again:  # a restarted kernel
        responses = again.session.cache.responses  # type: ignore[attr-defined]
        assert len(responses) == len(reads)
        read: list[str] = []
        real = responses.deserialize
        monkeypatch.setattr(responses, "deserialize", lambda k, v: read.append(k) or real(k, v))
        again.post("/nodes/pve1/qemu/100/status/start")
        assert read == [], f"the first write read {len(read)} stored answers"
        # ... and still dropped the stale ones from the file: those are asked again.
        for path in reads:
            again.get(path)
    asked = {r.path for r in srv.requests if r.method == "GET"}
    assert asked == {"/cluster/resources", "/nodes/pve1/status"}


def test_a_write_examines_only_what_it_makes_stale(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv, cache="memory")) as c:
        c.get("/cluster/resources")
        c.get("/nodes/pve1/qemu/100/config")
        for vmid in range(1000, 6000):  # 5,000 guests' configs held, as after guests(details)
            c._layer.put(f"/nodes/pve{vmid % 20}/qemu/{vmid}/config", (), 9e9, b'{"data":{}}')
        before = c._layer.examined
        c.post("/nodes/pve1/qemu/100/config", cores=2)
        examined = c._layer.examined - before
        assert examined <= 3, examined  # resources + the written config (+ its cache key)
        assert c.memo_token("/nodes/pve1/qemu/100/config") is None
        assert c.memo_token("/cluster/resources") is None
        assert c.memo_token("/nodes/pve1/qemu/1001/config") is not None
        # A write that makes every node's storage stale reaches them through one level only.
        before = c._layer.examined
        c.delete("/nodes/pve1/storage/local/content/local%3Aiso%2Fx.iso")
        assert c._layer.examined - before == 0
        assert c.memo_token("/nodes/pve3/qemu/1003/config") is not None


# -- frames -----------------------------------------------------------------------------------


@pytest.fixture
def demo() -> Iterator[Simulator]:
    from pvekit.sim import Simulator

    with Simulator("demo", task_duration=0.2) as s:
        yield s


def _cluster(sim: Simulator) -> Cluster:
    kw = dict(sim["prod"].connect_kwargs(identity="token"))
    kw.pop("profile", None)
    return pvekit.connect("prod", cache="memory", retries=0, **kw)


def _sent(sim: Simulator) -> list[str]:
    return [r.path for r in sim.requests if r.path != "/access/ticket"]


FRAMES = {
    "nodes": lambda c: c.nodes(progress=False),
    "storage": lambda c: c.storage(progress=False),
    "storage unique": lambda c: c.storage(unique=True, progress=False),
    "guests": lambda c: c.guests(progress=False),
    "guests details": lambda c: c.guests(details=True, progress=False),
    "summary": lambda c: c.summary(),
}


@pytest.mark.parametrize("label", list(FRAMES))
def test_warm_frame_is_reused_without_requests_or_threads(
    demo: Simulator, label: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from pvekit._fanout import FanOut

    read = FRAMES[label]
    c = _cluster(demo)
    try:
        first = read(c)
        demo.clear_requests()
        # A warm frame neither fans out nor starts a thread.
        pools: list[str] = []
        real_run, real_start = FanOut.run, threading.Thread.start

        def counted_run(self: Any, *args: Any, **kwargs: Any) -> Any:
            pools.append("fan-out")
            return real_run(self, *args, **kwargs)

        def counted_start(self: threading.Thread) -> None:
            pools.append(f"thread {self.name}")
            real_start(self)

        monkeypatch.setattr(FanOut, "run", counted_run)
        monkeypatch.setattr(threading.Thread, "start", counted_start)
        second = read(c)
        monkeypatch.undo()
        assert _sent(demo) == [] and pools == []
        assert second.equals(first) and second is not first
        # A caller changing its frame does not change the next one.
        second.iloc[0, 1] = None
        second["extra"] = 1
        third = read(c)
        assert "extra" not in third and third.equals(first)
        # A write makes the next frame a new one, read again.
        c.guest(100).update(description="frame test")
        demo.clear_requests()
        read(c)
        assert "/cluster/resources" in _sent(demo)
    finally:
        c.close()


def test_frame_follows_the_write_it_was_built_after(demo: Simulator) -> None:
    c = _cluster(demo)
    try:
        before = c.guests(details=True, progress=False)
        vmid = int(before["vmid"].iloc[0])
        c.guest(vmid).update(description="changed by the test")
        after = c.guests(details=True, progress=False)
        assert after.loc[after["vmid"] == vmid, "description"].iloc[0] == "changed by the test"
    finally:
        c.close()


def test_reads_a_task_made_stale_are_dropped_again_when_it_ends(demo: Simulator) -> None:
    c = _cluster(demo)
    try:
        st = demo["prod"].state
        vmid = next(
            g.vmid
            for g in sorted(st.guests.values(), key=lambda g: g.vmid)
            if g.type == "qemu"
            and g.status == "stopped"
            and not g.template
            and not g.lock
            and st.nodes[g.node].online
        )
        task = c.guest(vmid).start()
        mid = c.guests(progress=False)  # read while the task runs: cached anew
        demo.clear_requests()
        c.guests(progress=False)
        assert _sent(demo) == []  # served from the cache while the task runs
        task.wait(timeout=20, poll=0.05, progress=False)
        demo.clear_requests()
        done = c.guests(progress=False)
        assert "/cluster/resources" in _sent(demo)
        assert done.loc[done["vmid"] == vmid, "status"].iloc[0] == "running"
        assert len(mid) == len(done)
    finally:
        c.close()
