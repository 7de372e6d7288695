"""Cluster inventory reads against the live simulator: shapes, request counts, cache, faults."""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from _paths import ENDPOINTS_91

import pvekit
from pvekit import InvalidInputError, InvalidVMIDError, NotFoundError, frames
from pvekit._cluster import IncompleteDataWarning

if TYPE_CHECKING:
    from pvekit import Cluster
    from pvekit.sim import Simulator

SCHEMA = ENDPOINTS_91


@pytest.fixture
def fresh_sim() -> Iterator[Simulator]:
    """A demo simulator of its own over loopback HTTP, not in-process (see conftest):
    the tests count what pvekit's own cache (cache=) saves;
    an injected in-process session keeps its own caching instead."""
    from pvekit.sim import Simulator as _Simulator

    with _Simulator("demo") as s:
        yield s


def at(df: pd.DataFrame, row: Any, col: str) -> Any:
    """One cell, typed loosely (pandas-stubs type ``.loc`` cells as a union of scalars)."""
    return df.at[row, col]


def _schema() -> list[tuple[re.Pattern[str], str, set[str]]]:
    out = []
    with SCHEMA.open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(row["path"]))
            params = {p.rstrip("*") for p in (row["parameters"] or "").split(",") if p}
            out.append((re.compile(f"^{regex}$"), row["method"], params))
    return out


SCHEMA_ROWS = _schema()


def assert_in_schema(requests: list[Any]) -> None:
    """Every request's method, path and parameter names exist in the official 9.1 schema."""
    for req in requests:
        matches = [
            params
            for regex, method, params in SCHEMA_ROWS
            if method == req.method and regex.match(req.path)
        ]
        assert matches, f"{req.method} {req.path} is not in the PVE API schema"
        extra = set(req.params) - set().union(*matches)
        assert not extra, f"{req.method} {req.path}: parameters {extra} not in the schema"


def connect(sim: Simulator, name: str = "prod", **kwargs: Any) -> Cluster:
    kw = dict(sim[name].connect_kwargs(identity="root"))
    kw.pop("profile", None)
    kw.update(kwargs)
    kw.setdefault("cache", False)
    kw.setdefault("retries", 0)
    return pvekit.connect(name, **kw)


@pytest.fixture(scope="module")
def prod(sim: Simulator) -> Iterator[Cluster]:
    """A connected, uncached Cluster on the module's read-only demo ``prod``."""
    c = connect(sim)
    yield c
    c.close()


def requests_of(sim: Simulator, name: str = "prod") -> list[Any]:
    return [r for r in sim[name].requests if r.path != "/access/ticket"]


# --------------------------------------------------------------------------- guests


def test_basic_guest_table_is_one_request(sim: Simulator, prod: Cluster) -> None:
    sim["prod"].clear_requests()
    df = prod.guests()
    reqs = requests_of(sim)
    assert [(r.method, r.path) for r in reqs] == [("GET", "/cluster/resources")]
    assert_in_schema(reqs)
    state = sim["prod"].state
    assert sorted(df["vmid"].tolist()) == sorted(state.guests)
    assert (df["profile"] == "prod").all()
    for col in frames.COLUMNS["guests"]:
        assert str(df[col.name].dtype) == col.dtype
    row = df.set_index("vmid").loc[100]
    g = state.guests[100]
    assert row["name"] == g.name and row["node"] == g.node and row["type"] == g.type
    assert row["tags"] == g.tags and row["pool"] == g.pool
    assert row["cores"] == g.maxcpu and row["mem_total"] == g.maxmem
    assert set(df["type"].astype(str)) == {"qemu", "lxc"}
    assert df["template"].sum() == sum(1 for x in state.guests.values() if x.template)


def test_details_and_ips(sim: Simulator, prod: Cluster) -> None:
    sim["prod"].clear_requests()
    df = prod.guests(details=True, ips=True, progress=False)
    reqs = requests_of(sim)
    assert_in_schema(reqs)
    configs = [r for r in reqs if r.path.endswith("/config")]
    assert len(configs) == len(df)  # every node is online: one config per guest
    assert sum(r.path == "/cluster/resources" for r in reqs) == 1
    # agent calls only for running QEMU guests with the agent enabled
    agent_paths = {r.path for r in reqs if "/agent/" in r.path}
    running_agent = df[(df.type == "qemu") & (df.status == "running") & (df.agent == True)]  # noqa: E712
    assert {int(p.split("/")[4]) for p in agent_paths} == set(running_agent["vmid"])
    assert not any("/agent/" in r.path for r in reqs if "/lxc/" in r.path)

    state = sim["prod"].state
    d = df.set_index("vmid")
    g = state.guests[100]
    assert at(d, 100, "memory") == g.memory_mb * 1024 * 1024
    disks = {disk["key"]: disk for disk in at(d, 100, "disks")}
    assert disks["scsi0"]["size"] == g.disks["scsi0"].size
    assert disks["scsi0"]["storage"] == g.disks["scsi0"].storage
    assert at(d, 100, "networks")[0]["mac"] == g.mac
    assert at(d, 100, "ip") == g.ip and at(d, 100, "ip_source") == "agent"
    assert at(d, 100, "filesystems") and at(d, 100, "filesystems")[0]["mountpoint"] == "/"
    lxc_running = df[(df.type == "lxc") & (df.status == "running")]
    assert (lxc_running["ip_source"] == "lxc").all()
    lxc_stopped = df[(df.type == "lxc") & (df.status == "stopped") & ~df.template]
    for vmid in lxc_stopped["vmid"]:
        if state.guests[int(vmid)].ip:
            assert at(d, vmid, "ip_source") == "config"
    # guests whose agent does not answer keep their row and say why
    failing = running_agent[running_agent["ip"].isna()]
    assert (failing["error"].str.contains("agent")).all()
    ok = running_agent[running_agent["ip"].notna()]
    assert ok["error"].isna().all()


def test_agent_failure_595_and_offline_node_recorded(fresh_sim: Simulator) -> None:
    c = connect(fresh_sim)
    fresh_sim["prod"].faults.errors(1.0, statuses=(595,), pattern="/nodes/pve1/qemu/*/agent/**")
    fresh_sim["prod"].set_node_online("pve2", False)
    df = c.guests(details=True, ips=True, progress=False)
    on_pve1 = df[(df.node == "pve1") & (df.type == "qemu") & (df.status == "running")]
    assert len(on_pve1) and on_pve1["error"].str.contains("595").all()
    on_pve2 = df[df.node == "pve2"]
    assert len(on_pve2) and on_pve2["error"].str.contains("not online").all()
    assert on_pve2["disks"].isna().all()
    others = df[(df.node == "pve3") & (df.status == "running") & (df.type == "lxc")]
    assert others["error"].isna().all() and others["ip"].notna().all()
    # no request went to the node that is down
    assert not any("/nodes/pve2/" in r.path for r in fresh_sim["prod"].requests)
    c.close()


# --------------------------------------------------------------------------- nodes, storage


def test_nodes(sim: Simulator, prod: Cluster) -> None:
    sim["prod"].clear_requests()
    df = prod.nodes(progress=False)
    assert_in_schema(requests_of(sim))
    assert df["node"].tolist() == sorted(sim["prod"].state.nodes)
    assert df["online"].all() and df["pve_version"].notna().all()
    assert df["kernel"].notna().all() and df["ip"].notna().all()
    assert ((df["cpu"] >= 0) & (df["cpu"] <= 1)).all()
    assert (df["mem_used"] <= df["mem_total"]).all()


def test_offline_node_stays_and_warns_on_failed_status(fresh_sim: Simulator) -> None:
    c = connect(fresh_sim)
    fresh_sim["prod"].set_node_online("pve3", False)
    fresh_sim["prod"].faults.errors(1.0, statuses=(500,), pattern="/nodes/pve1/status")
    with pytest.warns(IncompleteDataWarning, match="pve1") as seen:
        df = c.nodes(progress=False)
    # The warning names the caller's line, not pvekit's internals.
    assert [w.filename for w in seen if w.category is IncompleteDataWarning] == [__file__]
    d = df.set_index("node")
    assert at(d, "pve3", "status") == "offline" and not at(d, "pve3", "online")
    assert pd.isna(at(d, "pve3", "cpu"))
    assert pd.isna(at(d, "pve1", "loadavg_1")) and at(d, "pve1", "cores") > 0
    assert pd.notna(at(d, "pve2", "loadavg_1"))
    c.close()


def test_storage_unique_counts_shared_once(sim: Simulator, prod: Cluster) -> None:
    sim["prod"].clear_requests()
    df = prod.storage(progress=False)
    assert_in_schema(requests_of(sim))
    uniq = prod.storage(unique=True, progress=False)
    shared = df[df.shared]
    assert len(shared) > 0
    assert len(uniq) == len(df[~df.shared]) + shared["storage"].nunique()
    assert uniq[uniq.shared]["node"].isna().all()
    assert (df["enabled"].notna()).all()
    ok = df[df.status == "available"]
    assert ((ok["used_fraction"] >= 0) & (ok["used_fraction"] <= 1)).all()


def test_summary_matches_frames(sim: Simulator, prod: Cluster) -> None:
    sim["prod"].clear_requests()
    s = prod.summary().iloc[0]
    assert_in_schema(requests_of(sim))
    nodes = prod.nodes(progress=False)
    assert s["nodes_total"] == len(nodes) and s["nodes_online"] == nodes["online"].sum()
    assert s["cores"] == nodes["cores"].sum()
    expected_cpu = (nodes["cpu"] * nodes["cores"]).sum() / nodes["cores"].sum()
    assert s["cpu"] == pytest.approx(expected_cpu, rel=0.05)
    uniq = prod.storage(unique=True, progress=False)
    avail = uniq[uniq.status == "available"]
    assert s["storage_total"] == avail["total"].sum()
    assert bool(s["quorate"]) and s["version"].startswith("9.")
    guests = prod.guests()
    real = guests[~guests.template]
    assert s["guests_total"] == len(real)
    assert s["guests_running"] == (real.status == "running").sum()


def test_summary_skips_unknown_storage(fresh_sim: Simulator) -> None:
    c = connect(fresh_sim)
    before = c.summary().iloc[0]
    fresh_sim["prod"].set_node_online("pve2", False)
    after = c.summary().iloc[0]
    assert after["nodes_online"] == before["nodes_online"] - 1
    assert after["nodes_total"] == before["nodes_total"]
    st = c.storage(progress=False)
    assert (st[st.node == "pve2"]["status"] == "unknown").all()
    assert after["storage_total"] < before["storage_total"]  # pve2's local storage is out
    c.close()


# --------------------------------------------------------------------------- tasks, backups...


def test_tasks_filters(sim: Simulator, prod: Cluster) -> None:
    sim["prod"].clear_requests()
    df = prod.tasks(progress=False)
    reqs = requests_of(sim)
    assert_in_schema(reqs)
    assert {r.params.get("source") for r in reqs if r.path.endswith("/tasks")} == {"all"}
    assert len(df) > 0 and df["starttime"].is_monotonic_decreasing
    assert set(df["status"].astype(str)) <= {"running", "ok", "warnings", "error"}
    assert (df["running"] == (df["status"] == "running")).all()
    finished = df[~df.running]
    assert (finished["duration"] >= 0).all()
    assert len(prod.tasks(limit=3, progress=False)) == 3
    cutoff = df["starttime"].iloc[len(df) // 2]
    recent = prod.tasks(since=cutoff.to_pydatetime(), progress=False)
    assert len(recent) and (recent["starttime"] >= cutoff).all()
    assert not prod.tasks(running=False, progress=False)["running"].any()


def test_running_tasks_use_active_source(fresh_sim: Simulator) -> None:
    c = connect(fresh_sim)
    fresh_sim["prod"].faults.slow_tasks(600.0, task_type="vzdump")
    upid = c.post("/nodes/pve1/vzdump", {"vmid": 100, "storage": "pbs", "mode": "snapshot"})
    fresh_sim["prod"].clear_requests()
    df = c.tasks(running=True, progress=False)
    assert upid in set(df["upid"]) and df["running"].all()
    assert {
        r.params.get("source") for r in fresh_sim["prod"].requests if r.path.endswith("/tasks")
    } == {"active"}
    c.close()


def test_backups(sim: Simulator, prod: Cluster) -> None:
    sim["prod"].clear_requests()
    df = prod.backups(progress=False)
    reqs = requests_of(sim)
    assert_in_schema(reqs)
    assert len(df) > 0 and df["volid"].is_unique
    assert set(df["guest_type"].dropna().astype(str)) <= {"qemu", "lxc"}
    # a shared storage is listed from one node only
    listed = [(r.path.split("/")[2], r.path.split("/")[4]) for r in reqs if "/content" in r.path]
    per_storage: dict[str, int] = {}
    for _node, storage in listed:
        per_storage[storage] = per_storage.get(storage, 0) + 1
    shared = set(prod.storage(progress=False).query("shared")["storage"])
    assert all(per_storage[s] == 1 for s in per_storage if s in shared)
    vmid = int(df["vmid"].iloc[0])
    one = prod.backups(vmid, progress=False)
    assert len(one) and (one["vmid"] == vmid).all()
    assert all(
        r.params.get("vmid") in (vmid, str(vmid))
        for r in requests_of(sim)[len(reqs) :]
        if "/content" in r.path
    )


def test_snapshots(sim: Simulator, prod: Cluster) -> None:
    sim["prod"].clear_requests()
    df = prod.snapshots(progress=False)
    assert_in_schema(requests_of(sim))
    assert "current" not in set(df["name"])
    state = sim["prod"].state
    expected = sum(len(g.snapshots) for g in state.guests.values() if not g.template)
    assert len(df) == expected
    one = prod.snapshots(105, progress=False)
    assert set(one["vmid"]) == {105} and len(one) == len(state.guests[105].snapshots)
    assert prod.snapshots(987654, progress=False).empty


def test_metrics_kinds(sim: Simulator, prod: Cluster) -> None:
    sim["prod"].clear_requests()
    nodes = prod.metrics("node", timeframe="hour", progress=False)
    reqs = requests_of(sim)
    assert_in_schema(reqs)
    assert {r.params.get("timeframe") for r in reqs if "rrddata" in r.path} == {"hour"}
    assert set(nodes["target"]) == set(sim["prod"].state.nodes)
    assert {"cpu", "memused", "memtotal", "loadavg"} <= set(nodes["metric"].astype(str))
    assert str(nodes["time"].dtype) == "datetime64[ns, UTC]"
    guests = prod.metrics("guest", targets=[100, "101"], cf="MAX", progress=False)
    assert set(guests["target"]) == {"100", "101"} and (guests["kind"] == "guest").all()
    storage = prod.metrics("storage", targets="local", progress=False)
    assert set(storage["target"]) == {f"{n}/local" for n in sim["prod"].state.nodes}
    with pytest.raises(NotFoundError, match="987654"):
        prod.metrics("guest", targets=[987654])


def test_bad_input_is_rejected_before_any_request(sim: Simulator, prod: Cluster) -> None:
    sim["prod"].clear_requests()
    with pytest.raises(InvalidInputError, match="kind"):
        prod.metrics("vm")
    with pytest.raises(InvalidInputError, match="timeframe"):
        prod.metrics("node", timeframe="fortnight")
    with pytest.raises(InvalidInputError, match="cf"):
        prod.metrics("node", cf="MIN")
    with pytest.raises(InvalidVMIDError):
        prod.metrics("guest", targets=["abc"])
    with pytest.raises(InvalidInputError, match="limit"):
        prod.tasks(limit=0)
    with pytest.raises(InvalidInputError, match="since"):
        prod.tasks(since="yesterday-ish")
    with pytest.raises(InvalidVMIDError):
        prod.backups(vmid=-1)
    with pytest.raises(InvalidVMIDError):
        prod.snapshots(vmid="x")
    with pytest.raises(InvalidInputError, match="profile"):
        prod.guest(100, profile="other")
    assert requests_of(sim) == []


# --------------------------------------------------------------------------- cache


def test_repeated_calls_within_ttl_send_nothing_and_fresh_does(fresh_sim: Simulator) -> None:
    c = connect(fresh_sim, cache="memory")
    c.guests()
    c.nodes(progress=False)
    c.storage(progress=False)
    fresh_sim["prod"].clear_requests()
    again = c.guests()
    c.nodes(progress=False)
    c.storage(progress=False)
    assert requests_of(fresh_sim) == []
    assert len(again) == len(fresh_sim["prod"].state.guests)
    c.guests(fresh=True)
    assert [(r.method, r.path) for r in requests_of(fresh_sim)] == [("GET", "/cluster/resources")]
    fresh_sim["prod"].clear_requests()
    c.nodes(fresh=True, progress=False)
    paths = [r.path for r in requests_of(fresh_sim)]
    assert "/cluster/resources" in paths and "/cluster/status" in paths
    assert sum(p.endswith("/status") and p.startswith("/nodes/") for p in paths) == 3
    c.close()


CACHED_READS = {
    "nodes": lambda c, fresh: c.nodes(fresh=fresh, progress=False),
    "guests": lambda c, fresh: c.guests(fresh=fresh),
    "guests_ips": lambda c, fresh: c.guests(ips=True, fresh=fresh, progress=False),
    "storage": lambda c, fresh: c.storage(unique=True, fresh=fresh, progress=False),
    "backups": lambda c, fresh: c.backups(fresh=fresh, progress=False),
    "snapshots": lambda c, fresh: c.snapshots(fresh=fresh, progress=False),
    "metrics": lambda c, fresh: c.metrics("storage", fresh=fresh, progress=False),
    "summary": lambda c, fresh: c.summary(fresh=fresh),
}


@pytest.mark.parametrize("name", sorted(CACHED_READS))
def test_every_read_is_served_from_cache_within_ttl(sim: Simulator, name: str) -> None:
    # tasks() is left out on purpose: its TTL is 5 s, too short to assert on a loaded machine.
    c = connect(sim, cache="memory")
    read = CACHED_READS[name]
    first = read(c, False)
    sim["prod"].clear_requests()
    again = read(c, False)
    # Only failed answers (an agent that times out) are asked again: errors are never cached.
    assert [r.path for r in requests_of(sim) if r.status == 200] == [], name
    assert list(again.columns) == list(first.columns) and len(again) == len(first)
    read(c, True)
    assert len(requests_of(sim)) > 0, f"{name}: fresh=True sent nothing"
    c.close()


def test_details_cached_then_refreshed(fresh_sim: Simulator) -> None:
    c = connect(fresh_sim, cache="memory")
    first = c.guests(details=True, progress=False)
    fresh_sim["prod"].clear_requests()
    second = c.guests(details=True, progress=False)
    assert requests_of(fresh_sim) == []
    pd.testing.assert_frame_equal(
        first.drop(columns=["cpu", "mem_used"]), second.drop(columns=["cpu", "mem_used"])
    )
    c.guests(details=True, fresh=True, progress=False)
    configs = [r for r in requests_of(fresh_sim) if r.path.endswith("/config")]
    assert len(configs) == len(first)
    c.close()


def test_fan_out_is_bounded_and_progress_off_outside_notebooks(
    fresh_sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    c = connect(fresh_sim)
    c.max_workers = 1  # sequential still gives the same table
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = c.guests(details=True)
    assert len(df) == len(fresh_sim["prod"].state.guests)
    assert "guest details" not in capsys.readouterr().err
    c.close()


@pytest.mark.slow
def test_ten_thousand_guests_cost_one_request() -> None:
    from pvekit.sim import Simulator

    with Simulator("large", nodes=20, guests=10000) as big:
        c = connect(big, "large")
        big["large"].clear_requests()
        df = c.guests()
        assert [(r.method, r.path) for r in requests_of(big, "large")] == [
            ("GET", "/cluster/resources")
        ]
        assert len(df) == 10000 and df["vmid"].is_unique
        assert df["node"].nunique() == 20
        c.close()


def test_warm_table_is_reused_until_an_input_changes(fresh_sim: Simulator) -> None:
    c = connect(fresh_sim, cache="memory")
    try:
        cold = c.guests(details=True, progress=False)
        fresh_sim["prod"].clear_requests()
        warm = c.guests(details=True, progress=False)
        assert requests_of(fresh_sim) == []
        pd.testing.assert_frame_equal(warm, cold)
        warm.loc[0, "name"] = "scribbled"  # a caller's copy: the kept frame is untouched
        assert c.guests(details=True, progress=False).loc[0, "name"] == cold.loc[0, "name"]
        # A write drops what it made stale, and the next table shows the change.
        vmid = int(cold[cold.type == "qemu"].vmid.iloc[0])
        c.guest(vmid).update(description="changed from the test")
        after = c.guests(details=True, progress=False)
        assert after.set_index("vmid").loc[vmid, "description"] == "changed from the test"
        # fresh=True reads again.
        fresh_sim["prod"].clear_requests()
        c.guests(details=True, fresh=True, progress=False)
        assert len(requests_of(fresh_sim)) == len(cold) + 1
    finally:
        c.close()


def test_fan_out_logs_a_line_per_step_when_not_interactive(
    cluster, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import tqdm.auto

    import pvekit._progress as progress

    shown: list[bool] = []
    real = tqdm.auto.tqdm

    def spy(*args: Any, **kwargs: Any) -> Any:
        shown.append(not kwargs.get("disable", False))
        return real(*args, **{**kwargs, "disable": True})

    monkeypatch.setattr(tqdm.auto, "tqdm", spy)
    monkeypatch.setattr(progress, "interactive", lambda: False)  # a script piped to a file
    with caplog.at_level("INFO", logger="pvekit.progress"):
        guests = cluster.guests(details=True)
    assert shown and not any(shown)  # the bar stays off
    lines = [r.getMessage() for r in caplog.records if r.name == "pvekit.progress"]
    assert len(lines) == 1, lines  # one line for the whole fan-out, not one per request
    assert re.fullmatch(rf"{cluster.profile}: guest details: \d+ requests in [\d.]+ s", lines[0])
    assert len(guests)
    monkeypatch.setattr(progress, "interactive", lambda: True)
    caplog.clear()
    with caplog.at_level("INFO", logger="pvekit.progress"):
        cluster.guests(details=True, fresh=True)
    assert shown[-1] and not caplog.records  # a terminal: the bar, no log line
