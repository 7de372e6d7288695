"""Store.write_many: several snapshots in one commit, stored exactly as one write() each.

The demo history stores its days in batches (one Arrow conversion per kind for a batch of
days): the files must read back as the same frames, the batch must appear whole or not at
all, and a retried batch, or a snapshot written alone and again in a batch, is stored once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

import pvekit
from pvekit.history import KINDS, Store, _schema
from pvekit.history._collect import read_snapshot

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def snaps() -> Iterator[list[Any]]:
    """Three snapshots of the demo (two clusters) a day apart, the clusters' frames apart,
    the middle one with findings; the growth model changes the guests between them."""
    from pvekit.history._demo import _collector, past_clock
    from pvekit.sim._growth import GrowthModel

    group = pvekit.demo(clock=past_clock(3))
    sim = group.simulator
    collector = _collector(sim)
    model = GrowthModel(sim.clock, [c.state for c in sim.clusters.values()], seed=0)
    out = []
    try:
        for day in range(3):
            if day:
                model.step(1.0)
            out.append(
                read_snapshot(
                    collector,
                    analyse=day == 1,
                    collected_at=sim.clock.now(),
                    combine=False,
                )
            )
    finally:
        collector.close()
        group.close()
    yield out


def _items(snaps: list[Any]) -> list[Any]:
    return [(s.for_store(), s.collected_at, s.profiles) for s in snaps]


def _combined(snap: Any) -> dict[str, pd.DataFrame]:
    """The snapshot's frames as read_snapshot(combine=True) gives them."""
    from pvekit.history._collect import _concat

    frames = dict(snap.frames)
    for kind, dfs in snap.parts.items():
        if kind not in frames and dfs:
            frames[kind] = dfs[0] if len(dfs) == 1 else _concat(dfs)
    return frames


def test_combine_false_keeps_the_clusters_apart(snaps: list[Any]) -> None:
    plain, analysed = snaps[0], snaps[1]
    assert set(plain.frames) == {"status"}
    assert {len(v) for v in plain.parts.values()} == {2}  # two clusters
    assert {"nodes", "guests", "findings"} <= set(analysed.frames)


def test_batch_reads_back_as_one_write_each(tmp_path: Path, snaps: list[Any]) -> None:
    one, many = Store(tmp_path / "one"), Store(tmp_path / "many")
    sids = [one.write(_combined(s), collected_at=s.collected_at) for s in snaps]
    assert many.write_many(_items(snaps)) == sids
    for kind in KINDS:
        a, b = one.read(kind), many.read(kind)
        assert len(a) or kind == "findings"
        pd.testing.assert_frame_equal(a, b)
        for snap, sid in zip(snaps, sids, strict=True):
            # file by file: the same table, dictionaries in the same order...
            ta = pq.read_table(one._data_path(kind, sid))
            tb = pq.read_table(many._data_path(kind, sid))
            assert ta.schema.equals(tb.schema, check_metadata=True), kind
            assert ta.equals(tb), kind
            # ...as write() made it before batches: the frame, stamped, converted alone
            df = _combined(snap).get(kind, pd.DataFrame()).assign(collected_at=snap.collected_at)
            if kind == "status":
                df["snapshot_id"] = sid
            assert tb.equals(_schema.to_arrow(kind, df)), kind
    assert one.snapshots().equals(many.snapshots())
    # one marker for the batch
    markers = sorted(p.name for p in (tmp_path / "many" / "_commits").iterdir())
    assert len(markers) == 1 and markers[0].startswith("batch-")


def test_batch_is_committed_whole_or_not_at_all(tmp_path: Path, snaps: list[Any]) -> None:
    store = Store(tmp_path / "h")
    first = store.write_many(_items(snaps[:1]))

    class Crash(Exception):
        pass

    def crash(kind: str, path: str) -> None:
        if kind == "summary":
            raise Crash

    store._written = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        store.write_many(_items(snaps[1:]))
    del store._written
    assert list(store.snapshots()["snapshot_id"]) == first
    assert set(store.read("guests")["collected_at"]) == {snaps[0].collected_at}
    # the retried batch, and the whole history again as a batch: each snapshot once
    store.write_many(_items(snaps[1:]))
    store.write_many(_items(snaps))
    store.write(_combined(snaps[2]), collected_at=snaps[2].collected_at)
    listed = store.snapshots()
    assert len(listed) == 3 and listed["snapshot_id"].is_unique
    guests = store.read("guests")
    assert len(guests) == sum(len(_combined(s)["guests"]) for s in snaps)


def test_batch_killed_mid_write(tmp_path: Path, snaps: list[Any]) -> None:
    """A real process dies (SIGKILL) after the data files of a batch, before its marker."""
    location = tmp_path / "h"
    Store(location).write_many(_items(snaps[:1]))
    pickled = tmp_path / "items.pkl"
    pd.to_pickle(_items(snaps[1:]), pickled)
    script = textwrap.dedent(
        f"""
        import time, pandas as pd
        from pvekit.history import Store
        store = Store({str(location)!r})
        seen = []
        def slow(kind, path):
            seen.append(kind)
            if seen.count("status") == 2:  # every data file of both snapshots is written
                print("WROTE", flush=True)
                time.sleep(60)
        store._written = slow
        store.write_many(pd.read_pickle({str(pickled)!r}))
        print("COMMITTED", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "WROTE"
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    st = Store(location)
    assert len(st.snapshots()) == 1
    assert set(st.read("nodes")["collected_at"]) == {snaps[0].collected_at}
    assert len(list((location / "guests").rglob("*.parquet"))) == 3  # two unread orphans


def test_prune_inside_a_batch(tmp_path: Path, snaps: list[Any]) -> None:
    store = Store(tmp_path / "h")
    sids = store.write_many(_items(snaps))
    assert store.prune(keep_last=2) == sids[:1]
    assert list(store.snapshots()["snapshot_id"]) == sids[1:]
    assert set(store.read("guests")["collected_at"]) == {s.collected_at for s in snaps[1:]}
    assert store.prune(keep_last=1) == sids[1:2]
    assert list(store.snapshots()["snapshot_id"]) == sids[2:]
    markers = [p.name for p in (tmp_path / "h" / "_commits").iterdir()]
    assert markers == [f"{sids[2]}.json"]  # the batch's last snapshot, on its own now
    assert not list((tmp_path / "h" / "guests").rglob(f"{sids[0]}.parquet"))


def test_snapshot_profiles_from_a_batch_marker(tmp_path: Path, snaps: list[Any]) -> None:
    """Without status rows, snapshots() takes the profiles from the commit record."""
    store = Store(tmp_path / "h")
    items = [({k: v for k, v in f.items() if k != "status"}, t, p) for f, t, p in _items(snaps)]
    store.write_many(items)
    listed = store.snapshots()
    assert [sorted(p) for p in listed["profiles"]] == [sorted(s.profiles) for s in snaps]


def test_version_one_store_is_upgraded_by_a_batch(tmp_path: Path, snaps: list[Any]) -> None:
    """A version-1 reader lists single markers only: a batch marker needs version 2."""
    location = tmp_path / "h"
    store = Store(location)
    store.write_many(_items(snaps[:1]))  # one snapshot: its own marker, the old layout
    root = location / "_pvekit_history.json"
    info = json.loads(root.read_text())
    root.write_text(json.dumps({**info, "schema_version": 1}))
    old = Store(location)
    old.write_many(_items(snaps[1:2]))
    assert json.loads(root.read_text())["schema_version"] == 1  # nothing new to read
    old.write_many(_items(snaps[1:]))
    assert json.loads(root.read_text())["schema_version"] == 2
    assert len(Store(location).snapshots()) == 3


def test_batch_on_a_real_s3_server(snaps: list[Any]) -> None:
    """The same protocol on an object store (moto's server on loopback, through s3fs):
    one PUT per file, the batch marker last; prune inside the batch."""
    from moto.server import ThreadedMotoServer
    from test_history import _s3_store

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        store = _s3_store(f"http://{host}:{port}")
        sids = store.write_many(_items(snaps))
        assert list(store.snapshots()["snapshot_id"]) == sids
        back = store.read("guests")
        assert len(back) == sum(len(_combined(s)["guests"]) for s in snaps)
        assert store.write_many(_items(snaps)) == sids  # the retry: stored once
        assert len(store.read("guests")) == len(back)
        assert store.prune(keep_last=1) == sids[:2]
        assert list(Store(store._url, **store._options).snapshots()["snapshot_id"]) == sids[2:]
    finally:
        server.stop()


def test_frames_read_back_can_be_written_again(tmp_path: Path, snaps: list[Any]) -> None:
    """collected_at (and status' snapshot_id) are the store's: whatever a frame holds there
    (a store's own read-back, or junk) is replaced, never converted."""
    first, other = Store(tmp_path / "a"), Store(tmp_path / "b")
    snap = snaps[0]
    first.write(_combined(snap), collected_at=snap.collected_at)
    later = snap.collected_at + pd.Timedelta(days=1)
    back = {kind: first.read(kind) for kind in KINDS}
    back["nodes"] = back["nodes"].assign(collected_at="not a time")
    sid = other.write(back, collected_at=later)
    for kind in KINDS:
        again = other.read(kind)
        assert set(again["collected_at"]) <= {later}
        pd.testing.assert_frame_equal(
            again.drop(columns=["collected_at", "snapshot_id"], errors="ignore"),
            back[kind].drop(columns=["collected_at", "snapshot_id"], errors="ignore"),
        )
    assert set(other.read("status")["snapshot_id"]) == {sid}
