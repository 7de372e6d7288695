"""What keeps the demo history quick, locked: the collector's request counts per simulated day,
the cheaper concat and Arrow conversion giving exactly what they gave, and worker processes
that work from a script without a main guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_frames_columnwise import assert_same

import pvekit
from pvekit import history
from pvekit.history import _collect, _schema
from pvekit.history._demo import _STARTUP_DAYS, _chunks, _cost, build_demo_history, past_clock

ROOT = Path(__file__).resolve().parent.parent
DAYS = 6


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    group = pvekit.demo(clock=past_clock(DAYS))
    group.simulator.clear_requests()  # the demo group's own login and checks
    store = history.Store(tmp_path_factory.mktemp("h") / "store")
    info = build_demo_history(group, store, DAYS, workers=1)
    yield group, store, info
    group.close()


def test_collector_requests_per_day(built: Any) -> None:
    """Per simulated day each cluster's resources, node status and node storage are read
    once; /version and /cluster/status only when their cache entry expired (never every
    day); a guest's config once, and again only after the growth model resized it. The
    collector's API token never logs in (a ticket would expire between simulated days)."""
    group, store, info = built
    sim = group.simulator
    reqs = [r for r in sim.requests if r.method == "GET"]
    assert not [r for r in sim.requests if r.path == "/access/ticket"]
    by_path = Counter(r.path for r in reqs)
    clusters = sim.clusters
    assert by_path["/cluster/resources"] == DAYS * len(clusters)
    for c in clusters.values():
        for node, state in c.state.nodes.items():
            if state.online:
                assert by_path[f"/nodes/{node}/status"] >= DAYS
                assert by_path[f"/nodes/{node}/storage"] == DAYS
    # read at connect, then from the cache (TTL in real time: a slow build re-reads some)
    assert by_path["/version"] < DAYS * len(clusters)
    assert by_path["/cluster/status"] < DAYS * len(clusters)
    configs = [r for r in reqs if r.path.endswith("/config")]
    seen = store.read("guests", columns=["profile", "vmid"]).drop_duplicates()
    resized = [e for e in group.simulator_growth.events if e.kind == "resized"]
    assert len(seen) <= len(configs) <= len(seen) + len(resized)
    assert info["workers"] == 1 and info["cpu_seconds"] > 0


def test_resized_guest_config_is_read_again(built: Any) -> None:
    group, store, _ = built
    events = [e for e in group.simulator_growth.events if e.kind == "resized"]
    assert events, "the growth model resized nothing in the test's days"
    ev = events[0]
    reads = [r for r in group.simulator.requests if r.path == ev.config_path]
    assert len(reads) >= 2  # before and after the resize
    g = store.read("guests", profiles=ev.cluster)
    sizes = g[g["vmid"] == ev.vmid][["collected_at", "mem_total", "cores", "disks"]]
    assert len(sizes) >= 2


def test_day_split_between_processes() -> None:
    for days in (1, 2, 13, 60, 61, 180, 365):
        for workers in range(1, 5):
            if workers > days:
                continue
            chunks = _chunks(days, workers)
            assert chunks[0][0] == 0 and chunks[-1][1] == days
            assert all(a < b for a, b in chunks)
            assert all(chunks[i][1] == chunks[i + 1][0] for i in range(len(chunks) - 1))
    # a worker starts later (interpreter, imports): it gets less of the work, measured in
    # the cost of its days (later days cost more: more guests), not in their number
    (w0, w1), (m0, m1) = _chunks(180, 2)
    worker, main = _cost(w1) - _cost(w0), _cost(m1) - _cost(m0)
    assert worker < main
    one_day = _cost(w1 + 1) - _cost(w1)  # the cut is between whole days
    assert abs(main - worker - _STARTUP_DAYS) <= 2 * one_day
    assert _cost(1) - _cost(0) < _cost(180) - _cost(179)


def test_workers_from_a_script_without_main_guard(tmp_path: Path) -> None:
    """multiprocessing's spawn re-imports the caller's __main__: a script without
    ``if __name__ == "__main__"`` used to fail (RuntimeError) or run itself again."""
    script = tmp_path / "build.py"
    store = tmp_path / "store"
    script.write_text(
        "import json, pvekit\n"
        "from pvekit.history import Store\n"
        "from pvekit.history._demo import build_demo_history, past_clock\n"
        "g = pvekit.demo(clock=past_clock(4))\n"
        f"info = build_demo_history(g, Store({str(store)!r}), 4, workers=2)\n"
        "g.close()\n"
        "print('RESULT', json.dumps(info))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert len(results) == 1  # the script ran once
    info = json.loads(results[0].split(" ", 1)[1])
    assert info["workers"] == 2
    assert len(history.Store(store).snapshots()) == 4


def test_worker_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pvekit.history import _demo

    monkeypatch.setattr(_demo, "_WORKER_BOOT", "import sys; sys.exit('boom in the worker')")
    group = pvekit.demo(clock=past_clock(3))
    try:
        with pytest.raises(history.HistoryError, match=r"days 1\.\.1 failed: boom in the worker"):
            build_demo_history(group, history.Store(tmp_path / "s"), 3, workers=2)
    finally:
        group.close()


# --------------------------------------------------------------------------- concat


def _old_concat(dfs: list[pd.DataFrame]) -> pd.DataFrame:
    """_collect._concat as it was (the oracle)."""
    df = pd.concat(dfs, ignore_index=True)
    for name, dtype in dfs[0].dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype) and not isinstance(
            df[name].dtype, pd.CategoricalDtype
        ):
            col = df[name].astype("category")
            df[name] = col.cat.reorder_categories(sorted(col.cat.categories))
    return df


def test_concat_equals_the_old_concat(built: Any) -> None:
    group = built[0]
    parts = {
        "nodes": [c.nodes() for c in group],
        "guests": [c.guests(details=True) for c in group],
        "storage": [c.storage() for c in group],
        "summary": [c.summary() for c in group],
    }
    # storage types differ between the clusters: the re-coding path is taken
    assert list(parts["storage"][0]["type"].cat.categories) != list(
        parts["storage"][1]["type"].cat.categories
    )
    for dfs in parts.values():
        assert_same(_collect._concat(dfs), _old_concat(dfs))
    g = parts["guests"][0]
    nulls = g.assign(status=pd.Series([None] * len(g), dtype="object").astype("category"))
    for dfs in (
        [g, nulls],
        [nulls, nulls],
        [g.head(0), g],
        [g[g["type"] == "lxc"], g[g["type"] == "qemu"], g],
        [g.iloc[::-1].reset_index(drop=True), g.head(3)],
    ):
        assert_same(_collect._concat(dfs), _old_concat(dfs))


# --------------------------------------------------------------------------- to_arrow


def _old_to_arrow(kind: str, df: pd.DataFrame) -> Any:
    """_schema.to_arrow as it was (the oracle)."""
    import pyarrow as pa

    schema = _schema.arrow_schema(kind)
    n = len(df)
    plain = [
        f
        for f in schema
        if f.name in df.columns
        and not (pa.types.is_list(f.type) or pa.types.is_dictionary(f.type))
        and _schema._plain(pd, df[f.name].dtype, f.type)
    ]
    fast: dict[str, Any] = {}
    if plain:
        sub = pa.Table.from_pandas(
            df[[f.name for f in plain]], schema=pa.schema(plain), preserve_index=False
        )
        fast = {name: sub.column(name) for name in sub.column_names}
    arrays = []
    for field in schema:
        name = field.name
        if name in fast:
            arrays.append(fast[name])
            continue
        if name not in df.columns:
            arrays.append(pa.nulls(n, field.type))
            continue
        col = df[name]
        if name in _schema._STRUCT_FIELDS:
            arrays.append(pa.array(_schema._with_absent(name, col), type=field.type))
        elif pa.types.is_list(field.type):
            arrays.append(pa.array(_schema._string_list(col), type=field.type))
        elif pa.types.is_dictionary(field.type):
            text = col if isinstance(col.dtype, pd.StringDtype) else col.astype("string")
            arrays.append(
                pa.array(text, type=pa.string(), from_pandas=True)
                .dictionary_encode()
                .cast(field.type)
            )
        elif pa.types.is_timestamp(field.type):
            times = (
                col
                if str(col.dtype) == _schema._TIME
                else pd.to_datetime(col, utc=True).astype(_schema._TIME)
            )
            arrays.append(pa.array(times, type=field.type))
        elif pa.types.is_string(field.type):
            text = col if isinstance(col.dtype, pd.StringDtype) else col.astype("string")
            arrays.append(pa.array(text, type=field.type, from_pandas=True))
        elif pa.types.is_boolean(field.type):
            flags = col if str(col.dtype) == "boolean" else col.astype("boolean")
            arrays.append(pa.array(flags, type=field.type))
        elif pa.types.is_integer(field.type):
            ints = col if str(col.dtype) == "Int64" else col.astype("Int64")
            arrays.append(pa.array(ints, type=field.type))
        else:
            arrays.append(pa.array(col.astype("float64"), type=field.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def test_to_arrow_equals_the_old_conversion(built: Any) -> None:
    group = built[0]
    snap = _collect.read_snapshot(group, details=True, analyse=True)
    when = snap.collected_at
    for kind, df in snap.frames.items():
        df = df.assign(collected_at=when)
        if kind == "status":
            df["snapshot_id"] = "x"
        variants = [df, df.head(0), df.iloc[::-1].reset_index(drop=True)]
        loose = df.copy()
        for name in loose.columns:  # everything as loose objects: the cast paths
            if str(loose[name].dtype) not in ("object", "category"):
                loose[name] = loose[name].astype(object)
        variants.append(loose)
        variants.append(df.drop(columns=[c for c in df.columns[1:4] if c != "collected_at"]))
        for v in variants:
            new, old = _schema.to_arrow(kind, v), _old_to_arrow(kind, v)
            assert new.schema.equals(old.schema, check_metadata=True), kind
            assert new.equals(old), kind
