"""pvekit.history: the snapshot store on a local folder and on a real S3-compatible server.

The S3 tests run moto's server mode on loopback (a real HTTP endpoint speaking the S3 API)
through s3fs, the same path a user's ``s3://`` URL takes; nothing is mocked in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import pvekit
from pvekit import frames, history
from pvekit.history import Store, StoreFormatError
from pvekit.history._collect import read_snapshot

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _s3_store(endpoint: str) -> Store:
    import s3fs

    bucket = f"pvekit-{uuid.uuid4().hex[:12]}"
    opts: dict[str, Any] = {
        "key": "testing",
        "secret": "testing-secret-value",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "eu-west-1"},
    }
    s3fs.S3FileSystem(**opts).mkdir(bucket)
    return Store(f"s3://{bucket}/history", **opts)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return Store(tmp_path / "history")
    return _s3_store(request.getfixturevalue("moto_endpoint"))


@pytest.fixture(scope="module")
def demo_group() -> Iterator[Any]:
    group = pvekit.demo()
    yield group
    group.close()


@pytest.fixture(scope="module")
def snapshot(demo_group: Any) -> Any:
    return read_snapshot(demo_group)


def _live(kind: str, snap: Any) -> pd.DataFrame:
    return snap.frames[kind].reset_index(drop=True)


def _back(store: Store, kind: str) -> pd.DataFrame:
    df = store.read(kind)
    assert str(df["collected_at"].dtype) == "datetime64[ns, UTC]"
    return df.drop(columns="collected_at")


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("kind", ["nodes", "guests", "storage", "summary", "findings"])
def test_round_trip_every_kind(store: Store, snapshot: Any, kind: str) -> None:
    store.write(snapshot.frames, collected_at=snapshot.collected_at)
    live = _live(kind, snapshot)
    assert len(live) > 0
    back = _back(store, kind)
    pd.testing.assert_frame_equal(back, live, check_exact=True)
    if kind == "guests":  # the frame planning.time_remaining(history=) consumes
        cols = frames.columns("guests", details=True)
        assert list(store.read("guests").columns) == [*cols, "collected_at"]


def test_round_trip_status_with_counts(store: Store, snapshot: Any) -> None:
    sid = store.write(snapshot.frames, collected_at=snapshot.collected_at)
    back = store.read("status")
    live = _live("status", snapshot)
    pd.testing.assert_frame_equal(back[list(live.columns)], live, check_exact=True)
    assert set(back["snapshot_id"]) == {sid}
    prod = back[back["profile"] == "prod"].iloc[0]
    assert prod["guests"] == (snapshot.frames["guests"]["profile"] == "prod").sum()


def _edge_guests(snap: Any) -> pd.DataFrame:
    """Nulls of every kind, empty and missing lists, unparsed disk and network entries."""
    g = snap.frames["guests"].head(4).copy().reset_index(drop=True)
    g["tags"] = pd.Series([[], None, ["a", "b;c"], ["ü"]], dtype="object")
    g.loc[0, "cpu"] = float("nan")
    g["mem_used"] = pd.array([None, 1, 2**62, 0], dtype="Int64")
    g["template"] = pd.array([None, True, False, None], dtype="boolean")
    g.loc[1, "name"] = None
    g["disks"] = pd.Series(
        [
            [{"key": "scsi0", "error": "bad size", **dict.fromkeys(("storage", "size"))}],
            None,
            [],
            list(g["disks"][3]),
        ],
        dtype="object",
    )
    g.loc[0, "networks"] = [{"key": "net1", "model": None, "error": "no NIC model"}]
    return frames.apply_dtypes(g, "guests")  # categories: the values present, as live frames


def test_round_trip_nulls_lists_and_partial_dicts(store: Store, snapshot: Any) -> None:
    g = _edge_guests(snapshot)
    status = _live("status", snapshot)
    store.write({"guests": g, "status": status}, collected_at=snapshot.collected_at)
    back = _back(store, "guests")
    pd.testing.assert_frame_equal(back, g, check_exact=True)
    assert back["disks"][0] == [
        {"key": "scsi0", "error": "bad size", "storage": None, "size": None}
    ]
    assert "name" not in back["networks"][0][0]  # keys come back as written, no more
    assert back["tags"][0] == [] and back["tags"][1] is None


def test_tz_aware_times_round_trip(store: Store, snapshot: Any) -> None:
    status = _live("status", snapshot)
    status.loc[0, "checked_at"] = pd.NaT
    when = pd.Timestamp("2026-03-29 01:30:00", tz="Europe/Berlin")  # DST change day
    store.write({"status": status}, collected_at=when)
    back = store.read("status")
    assert back["collected_at"].iloc[0] == when
    assert str(back["collected_at"].dt.tz) == "UTC"
    pd.testing.assert_series_equal(back["checked_at"], status["checked_at"], check_exact=True)


# --------------------------------------------------------------------------- atomicity


class _Crash(Exception):
    pass


def test_failure_between_files_leaves_previous_snapshots_only(store: Store, snapshot: Any) -> None:
    t0 = snapshot.collected_at
    first = store.write(snapshot.frames, collected_at=t0)
    calls: list[str] = []

    def crash(kind: str, path: str) -> None:
        calls.append(kind)
        if kind == "guests":
            raise _Crash("disk full")

    store._written = crash  # type: ignore[method-assign]
    with pytest.raises(_Crash):
        store.write(snapshot.frames, collected_at=t0 + pd.Timedelta(hours=1))
    assert calls == ["nodes", "guests"]  # files were written, the marker was not
    del store._written
    assert list(store.snapshots()["snapshot_id"]) == [first]
    for kind in ("nodes", "guests"):
        assert set(store.read(kind)["collected_at"]) == {t0}
    # the retry of that same snapshot completes it, once
    second = store.write(snapshot.frames, collected_at=t0 + pd.Timedelta(hours=1))
    assert list(store.snapshots()["snapshot_id"]) == [first, second]
    assert len(store.read("nodes")) == 2 * len(snapshot.frames["nodes"])


def test_same_snapshot_twice_is_stored_once(store: Store, snapshot: Any) -> None:
    a = store.write(snapshot.frames, collected_at=snapshot.collected_at)
    b = store.write(snapshot.frames, collected_at=snapshot.collected_at)
    assert a == b
    assert len(store.snapshots()) == 1
    assert len(store.read("guests")) == len(snapshot.frames["guests"])


def test_collector_killed_mid_write(tmp_path: Path, snapshot: Any) -> None:
    """A real process dies (SIGKILL) between two data files of its second snapshot."""
    location = tmp_path / "h"
    Store(location).write(snapshot.frames, collected_at=snapshot.collected_at)
    pickled = tmp_path / "frames.pkl"
    pd.to_pickle(snapshot.frames, pickled)
    script = textwrap.dedent(
        f"""
        import sys, time, pandas as pd
        from pvekit.history import Store
        store = Store({str(location)!r})
        def slow(kind, path):
            if kind == "guests":
                print("WROTE", kind, flush=True)
                time.sleep(60)
        store._written = slow
        store.write(pd.read_pickle({str(pickled)!r}),
                    collected_at=pd.Timestamp("2030-01-01", tz="UTC"))
        print("COMMITTED", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "WROTE guests"
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    st = Store(location)
    assert len(st.snapshots()) == 1
    assert set(st.read("guests")["collected_at"]) == {snapshot.collected_at}
    orphans = list((location / "guests").rglob("*2030*.parquet"))
    assert orphans  # the dead process's file is there, unread
    st.prune(keep_last=10)  # within the grace period: it may be a collector still writing
    assert list((location / "guests").rglob("*2030*.parquet")) == orphans
    st.prune(keep_last=10, orphan_grace=0)
    assert not list((location / "guests").rglob("*2030*.parquet"))
    assert len(st.snapshots()) == 1


# --------------------------------------------------------------------------- reading


def _three(store: Store, snapshot: Any) -> list[pd.Timestamp]:
    times = [snapshot.collected_at - pd.Timedelta(days=d) for d in (20, 10, 0)]
    for t in times:
        store.write(snapshot.frames, collected_at=t)
    return times


def test_read_filters_time_profiles_and_columns(store: Store, snapshot: Any) -> None:
    times = _three(store, snapshot)
    g = store.read("guests", since=times[1])
    assert set(g["collected_at"]) == set(times[1:])
    g = store.read("guests", until=times[1] - pd.Timedelta(seconds=1))
    assert set(g["collected_at"]) == {times[0]}
    lab = store.read("guests", profiles="lab", columns=["vmid", "mem_total", "collected_at"])
    assert list(lab.columns) == ["vmid", "mem_total", "collected_at"]
    assert len(lab) == 3 * (snapshot.frames["guests"]["profile"] == "lab").sum()
    assert str(lab["mem_total"].dtype) == "Int64"
    empty = store.read("nodes", since=times[-1] + pd.Timedelta(days=1))
    assert list(empty.columns) == list(history.column_dtypes("nodes"))
    assert empty.empty


def test_disk_provisioned_computed_from_disks(store: Store, snapshot: Any) -> None:
    store.write(snapshot.frames, collected_at=snapshot.collected_at)
    got = store.read("guests", columns=["vmid", "disk_provisioned"])
    expected = [
        sum(d["size"] for d in disks if d.get("storage") and (d.get("size") or 0) > 0)
        for disks in snapshot.frames["guests"]["disks"]
    ]
    assert list(got["disk_provisioned"]) == expected


def test_at_and_snapshots(store: Store, snapshot: Any) -> None:
    times = _three(store, snapshot)
    snaps = store.snapshots()
    assert list(snaps["collected_at"]) == times
    assert list(snaps["clusters_ok"]) == [2, 2, 2]
    then = store.at(times[1] + pd.Timedelta(days=1))
    assert set(then["guests"]["collected_at"]) == {times[1]}
    with pytest.raises(history.HistoryError, match="no snapshot"):
        store.at(times[0] - pd.Timedelta(days=1))


def test_prune_by_age_and_count(store: Store, snapshot: Any) -> None:
    times = _three(store, snapshot)
    dropped = store.prune(keep="15D")
    assert len(dropped) == 1
    assert list(store.snapshots()["collected_at"]) == times[1:]
    store.prune(keep_last=1)
    assert list(store.snapshots()["collected_at"]) == times[2:]
    with pytest.raises(pvekit.InvalidInputError):
        store.prune()


def test_bad_input_is_named(store: Store, snapshot: Any) -> None:
    with pytest.raises(pvekit.InvalidInputError, match="unknown history kind 'vms'"):
        store.read("vms")
    with pytest.raises(pvekit.InvalidInputError, match="no column"):
        store.read("guests", columns=["vmid", "colour"])
    with pytest.raises(pvekit.InvalidInputError, match="no column"):
        store.read("nodes", columns=["disk_provisioned"])
    with pytest.raises(pvekit.InvalidInputError, match="collected_at"):
        store.write(snapshot.frames, collected_at="not a time")


# --------------------------------------------------------------------------- versions


def test_newer_store_format_is_refused(tmp_path: Path, snapshot: Any) -> None:
    st = Store(tmp_path / "h")
    st.write(snapshot.frames, collected_at=snapshot.collected_at)
    root = tmp_path / "h" / "_pvekit_history.json"
    info = json.loads(root.read_text())
    assert info["schema_version"] == history.SCHEMA_VERSION
    root.write_text(json.dumps({**info, "schema_version": history.SCHEMA_VERSION + 1}))
    with pytest.raises(StoreFormatError, match="newer than this pvekit"):
        Store(tmp_path / "h").read("guests")
    root.write_text("{}")
    with pytest.raises(StoreFormatError, match="not a pvekit history store"):
        Store(tmp_path / "h").read("guests")


def test_older_file_without_a_column_reads_null(tmp_path: Path, snapshot: Any) -> None:
    import pyarrow.parquet as pq

    st = Store(tmp_path / "h")
    st.write(snapshot.frames, collected_at=snapshot.collected_at)
    (path,) = (tmp_path / "h" / "nodes").rglob("*.parquet")
    pq.write_table(pq.read_table(path).drop_columns(["cgroup_mode"]), path)
    back = st.read("nodes")
    assert back["cgroup_mode"].isna().all() and str(back["cgroup_mode"].dtype) == "Int64"
    pd.testing.assert_frame_equal(
        back.drop(columns=["cgroup_mode", "collected_at"]),
        _live("nodes", snapshot).drop(columns="cgroup_mode"),
    )


# --------------------------------------------------------------------------- collecting


def test_down_cluster_is_recorded_and_others_collected(tmp_path: Path) -> None:
    group = pvekit.demo()
    try:
        group.simulator["lab"].stop()
        st = Store(tmp_path / "h")
        st.collect(group)
        status = st.read("status").set_index("profile")
        assert status.loc["lab", "state"] == "failed"
        assert status.loc["lab", "error"]
        assert pd.isna(status.loc["lab", "guests"])
        assert status.loc["prod", "state"] == "connected"
        assert set(st.read("guests")["profile"]) == {"prod"}
        snaps = st.snapshots()
        assert list(snaps["clusters_failed"]) == [1] and list(snaps["clusters_ok"]) == [1]
    finally:
        group.close()


def test_single_cluster_collect(tmp_path: Path, sim: Any) -> None:
    cluster = pvekit.connect(**sim["lab"].connect_kwargs())
    try:
        st = Store(tmp_path / "h")
        st.collect(cluster, details=False, analyse=False)
        g = st.read("guests")
        assert set(g["profile"]) == {cluster.profile}
        assert g["disks"].isna().all()  # no details read: null, not empty lists
        assert st.read("findings").empty
        assert list(st.read("status")["state"]) == ["connected"]
    finally:
        cluster.close()


def test_credentials_never_shown(tmp_path: Path) -> None:
    st = Store("memory://bucket/x", key="AKIA-test", secret="s3cr3t-value")
    assert "s3cr3t" not in repr(st) and "AKIA" not in repr(st)
    url = Store("s3://AKIAXX:s3cr3t-value@bucket/p", anon=True)
    assert "s3cr3t" not in repr(url) and "s3cr3t" not in url.location


def test_import_pvekit_and_history_stay_light() -> None:
    code = (
        "import sys, pvekit, pvekit.history, pvekit.cli; "
        "print(sorted(m for m in ('pyarrow', 'fsspec', 's3fs', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_pyarrow_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from pvekit import history\n"
        "try:\n"
        f"    history.Store({str(tmp_path)!r})\n"
        "except history.HistoryError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert "pyarrow" in out.stdout and "pip install 'pvekit[history]'" in out.stdout


def test_snapshots_without_status_rows_are_listed(store: Store, snapshot: Any) -> None:
    frames_only = {k: v for k, v in snapshot.frames.items() if k != "status"}
    store.write(frames_only, collected_at=snapshot.collected_at)
    snaps = store.snapshots()
    assert len(snaps) == 1
    assert snaps["profiles"][0] == ["lab", "prod"]
    assert snaps["guests"].isna().all()
