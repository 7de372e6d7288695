"""capacity.growth / growth_trend on a demo history built by the real collector; the
``pvekit collect`` command and its loop; the report's growth section."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import pvekit
from pvekit import capacity, history, report
from pvekit.history._cli import parse_every, run_loop

ROOT = Path(__file__).resolve().parent.parent
DAYS = 21


@pytest.fixture(scope="module")
def demo_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    location = tmp_path_factory.mktemp("history") / "store"
    group = pvekit.demo(history_days=DAYS, history=str(location))
    yield group
    group.close()


@pytest.fixture(scope="module")
def guests(demo_history: Any) -> pd.DataFrame:
    return demo_history.history.read("guests")


def test_demo_history_is_one_snapshot_a_day(demo_history: Any) -> None:
    snaps = demo_history.history.snapshots()
    assert len(snaps) == DAYS
    gaps = snaps["collected_at"].diff().dropna().dt.total_seconds()
    assert ((gaps > 86400 - 60) & (gaps < 86400 + 60)).all()
    # the last snapshot is "now" on the simulator's clock
    assert (
        abs(snaps["collected_at"].iloc[-1].timestamp() - demo_history.simulator.clock.now()) < 120
    )
    # the growth model did change the inventory between snapshots
    counts = snaps.set_index("collected_at")["guests"]
    assert counts.nunique() > 1


def test_demo_history_went_over_http(demo_history: Any) -> None:
    reqs = demo_history.simulator.requests
    resources = [r for r in reqs if r.path == "/cluster/resources"]
    assert len(resources) >= DAYS * len(demo_history.simulator.clusters)
    configs = {r.path for r in reqs if r.path.endswith("/config")}
    assert len(configs) >= len(
        demo_history.history.read("guests", columns=["vmid"]).drop_duplicates()
    )


def test_history_guests_is_the_live_frame_plus_collected_at(demo_history: Any) -> None:
    live = demo_history.guests(details=True)
    back = demo_history.history.read("guests")
    assert list(back.columns) == [*live.columns, "collected_at"]
    assert dict(back.drop(columns="collected_at").dtypes.map(str)) == {
        c: str(t) for c, t in live.dtypes.items() if not isinstance(t, pd.CategoricalDtype)
    } | {c: "category" for c, t in live.dtypes.items() if isinstance(t, pd.CategoricalDtype)}


def _expected(guests: pd.DataFrame) -> pd.DataFrame:
    g = guests[~guests["template"].astype(bool)]
    return g.groupby(["profile", "collected_at"]).agg(
        guests=("vmid", "size"), vcpus=("cores", "sum"), mem_alloc=("mem_total", "sum")
    )


def test_growth_per_month_matches_the_snapshots(guests: pd.DataFrame) -> None:
    out = capacity.growth(guests, period="month")
    exp = _expected(guests)
    for r in out.itertuples():
        end = exp.loc[(r.profile, r.last_at)]
        assert (r.guests, r.vcpus, r.mem_alloc) == (end.guests, end.vcpus, end.mem_alloc)
        prof = exp.loc[r.profile]
        before = prof[prof.index < r.period]
        base = before.iloc[-1] if len(before) else prof[prof.index >= r.period].iloc[0]
        assert r.guests_change == end.guests - base.guests
        assert r.mem_alloc_change == end.mem_alloc - base.mem_alloc


def test_growth_created_and_removed_match_the_growth_model(
    demo_history: Any, guests: pd.DataFrame
) -> None:
    out = capacity.growth(guests, period="week")
    first = guests["collected_at"].min()
    # the model's events after the first snapshot, of guests some snapshot saw (one created
    # and removed between two snapshots is in none)
    seen = set(zip(guests["profile"], guests["vmid"], strict=True))
    events = [
        e
        for e in demo_history.simulator_growth.events
        if first.timestamp() < e.time and (e.cluster, e.vmid) in seen
    ]
    created = sum(1 for e in events if e.kind == "created")
    removed = sum(1 for e in events if e.kind == "removed")
    templates = guests[guests["template"].astype(bool)]
    assert not set(zip(templates["profile"], templates["vmid"], strict=True)) & {
        (e.cluster, e.vmid) for e in events
    }
    assert out["created"].sum() == created
    assert out["removed"].sum() == removed
    assert created > 0 and removed > 0


def test_growth_by_pool_and_tag_add_up(guests: pd.DataFrame) -> None:
    by_profile = capacity.growth(guests)
    by_pool = capacity.growth(guests, by=("profile", "pool"))
    sums = by_pool.groupby(["profile", "period"])[["guests", "vcpus", "mem_alloc"]].sum()
    mine = by_profile.set_index(["profile", "period"])[["guests", "vcpus", "mem_alloc"]]
    pd.testing.assert_frame_equal(sums.sort_index(), mine.sort_index(), check_dtype=False)
    by_tag = capacity.growth(guests, by="tag")
    assert {"profile", "tag"} <= set(by_tag.columns)
    assert (by_tag.groupby(["profile", "period"])["guests"].sum() >= mine["guests"]).all()


def test_growth_from_store_columns_equals_full_frame(
    demo_history: Any, guests: pd.DataFrame
) -> None:
    fast = demo_history.history.read("guests", columns=list(capacity.GROWTH_COLUMNS))
    pd.testing.assert_frame_equal(capacity.growth(fast), capacity.growth(guests))


def test_storage_used_comes_from_the_summary_history(
    demo_history: Any, guests: pd.DataFrame
) -> None:
    summary = demo_history.history.read("summary")
    out = capacity.growth({"guests": guests, "summary": summary})
    for r in out.itertuples():
        s = summary[(summary["profile"] == r.profile) & (summary["collected_at"] == r.last_at)]
        assert r.storage_used == s["storage_used"].iloc[0]
    assert out["storage_used_change"].sum() > 0  # the pools fill up


def test_growth_trend_uses_the_forecast_fit(
    guests: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = capacity.theil_sen

    def spy(x: Any, y: Any, confidence: float = 0.95) -> Any:
        calls.append(len(x))
        return real(x, y, confidence)

    monkeypatch.setattr(capacity, "theil_sen", spy)
    out = capacity.growth_trend(guests, metrics=("mem_alloc",))
    assert calls == [DAYS] * 2  # one fit per cluster, on every snapshot
    exp = _expected(guests).loc["prod"]
    x = ((exp.index - exp.index[-1]).total_seconds() / 86400).to_numpy()
    slope, intercept, lo, hi = real(x, exp["mem_alloc"].to_numpy("float64"))
    row = out[out["profile"] == "prod"].iloc[0]
    assert np.isclose(row.slope_per_day, slope) and np.isclose(row.current, intercept)
    assert np.isclose(row.slope_low, lo) and np.isclose(row.slope_high, hi)
    assert np.isclose(row.per_month, slope * 30)


def test_growth_bad_input() -> None:
    with pytest.raises(pvekit.InvalidInputError, match="period"):
        capacity.growth(pd.DataFrame(), period="year")
    with pytest.raises(pvekit.InvalidInputError, match="collected_at"):
        capacity.growth(pd.DataFrame({"profile": [], "vmid": [], "cores": [], "mem_total": []}))


def test_report_growth_section(demo_history: Any) -> None:
    rep = report.capacity(demo_history, guest_metrics=False, history=demo_history.history)
    assert "growth" in rep.figures
    fig = rep.figures["growth"]
    alloc = rep.frames["allocation"]
    prod = alloc[alloc["profile"] == "prod"].sort_values("collected_at")
    trace = next(t for t in fig.data if t.name == "prod" and t.yaxis == "y")
    assert list(trace.y) == list(prod["vcpus"].astype(float))
    text = rep.to_html()
    assert "Allocation over time" in text and "Guests created and removed" in text
    changes = rep.frames["guest_changes"]
    assert set(changes["change"]) == {"created", "removed"}


# --------------------------------------------------------------------------- CLI


def test_parse_every() -> None:
    assert parse_every("1h") == 3600 and parse_every("30m") == 1800 and parse_every("90") == 90
    assert parse_every("0.5d") == 43200
    for bad in ("", "0s", "1w", "-1h", "soon"):
        with pytest.raises(pvekit.InvalidInputError, match="--every"):
            parse_every(bad)


def test_a_failed_run_does_not_end_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []

    def once() -> str:
        runs.append(len(runs))
        if len(runs) in (2, 3):
            raise pvekit.ConnectionError("cluster unreachable")
        if len(runs) == 4:
            raise KeyError("a bug")
        return f"snapshot {len(runs)}"

    stop = threading.Event()
    with caplog.at_level("INFO", logger="pvekit.collect"):
        failures = run_loop(once, 0.0, stop, max_runs=6)
    assert len(runs) == 6 and failures == 3
    text = caplog.text
    assert "run 2 failed: cluster unreachable" in text and "run 6: snapshot 6" in text
    assert "KeyError" in text


def test_collect_loop_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    location = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pvekit.cli",
            "collect",
            "--demo",
            "--store",
            str(location),
            "--every",
            "1s",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        # Two different snapshots: ids are to the second, and the first run's imports can
        # push its time into the second of the next run (which then replaces it).
        sids: set[str] = set()
        while len(sids) < 2 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            sids.update(re.findall(r"snapshot (\S+) stored", line))
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
        lines.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines)
    assert proc.returncode == 0, text
    assert "SIGTERM received" in text and "stopped (0 failed run(s))" in text
    assert "Traceback" not in text
    assert len(history.Store(location).snapshots()) >= 2


def test_collect_days_needs_demo(tmp_path: Path) -> None:
    from pvekit.cli import main

    assert main(["collect", "--store", str(tmp_path), "--days", "3"]) == 1


def test_parallel_demo_build_gives_the_same_history(tmp_path: Path) -> None:
    """Worker processes replay the seeded model: the same guests, sizes and disks per day."""
    from pvekit.history._demo import build_demo_history, past_clock

    def build(workers: int) -> pd.DataFrame:
        group = pvekit.demo(clock=past_clock(6))
        try:
            store = history.Store(tmp_path / f"w{workers}")
            info = build_demo_history(group, store, 6, workers=workers)
            assert info["workers"] == workers
        finally:
            group.close()
        cols = ["profile", "vmid", "name", "cores", "mem_total", "disk_provisioned"]
        g = store.read("guests", columns=[*cols, "collected_at"])
        day = g["collected_at"].rank(method="dense").astype(int)
        return g.assign(day=day).drop(columns="collected_at").sort_values(["day", *cols[:2]])

    one, two = build(1), build(2)
    assert one["day"].max() == 6
    pd.testing.assert_frame_equal(one.reset_index(drop=True), two.reset_index(drop=True))


def test_report_command_with_history(demo_history: Any, tmp_path: Path) -> None:
    from pvekit.cli import main

    out = tmp_path / "report.html"
    location = str(demo_history.history._url)
    args = ["report", "--demo", "--no-guest-metrics", "--history", location, "-o", str(out), "-q"]
    assert main(args) == 0
    text = out.read_text()
    assert 'id="growth"' in text and "Guests created and removed" in text
