"""Replay every inventory call from its cassette (record mode "none": no network at all).

Cassettes are recorded from the simulator by ``python scripts/record_cassettes.py`` with a
``cache=False`` client (vcrpy cannot go through requests-cache; see tests/vcr_support.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import yaml
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr_support import CALLS, CASSETTES, REPLAY_KWARGS, find_secrets, use_cassette

import pvekit
from pvekit import frames
from pvekit.sim import Simulator

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def interactions(name: str) -> list[dict[str, Any]]:
    return load_yaml((CASSETTES / f"{name}.yaml").read_text())["interactions"]


def recorded(name: str, suffix: str) -> list[Any]:
    """Bodies (parsed ``data``) of the cassette's GET responses whose path ends with suffix."""
    out = []
    for item in interactions(name):
        uri = item["request"]["uri"].split("?")[0]
        if item["request"]["method"] == "GET" and uri.endswith(suffix):
            out.append(json.loads(item["response"]["body"]["string"])["data"])
    return out


def new_client() -> pvekit.Cluster:
    c = pvekit.connect("prod", **REPLAY_KWARGS)
    c.max_workers = 1
    return c


@pytest.fixture
def replay() -> Iterator[pvekit.Cluster]:
    c = new_client()
    yield c
    c.close()


def play(name: str) -> tuple[Any, Any]:
    """Replay cassette ``name`` with a new client (its login is part of the cassette) and
    check that the call made every recorded request."""
    client = new_client()
    try:
        with use_cassette(name) as cass:
            result = CALLS[name](client)
            assert cass.all_played, f"{name}: some recorded requests were not made on replay"
    finally:
        client.close()
    return result, cass


def assert_frame(df: pd.DataFrame, frame: str, **spec: bool) -> None:
    specs = frames._column_specs(frame, **spec)
    assert list(df.columns) == [c.name for c in specs]
    assert [str(df[c.name].dtype) for c in specs] == [c.dtype for c in specs]
    assert (df["profile"] == "prod").all()


def test_every_call_has_a_cassette() -> None:
    # other modules keep their own cassettes here too (actions_*.yaml)
    assert set(CALLS) <= {p.stem for p in CASSETTES.glob("*.yaml")}


def test_cassettes_hold_no_secrets() -> None:
    sim = Simulator("demo", seed=0)  # not started: only its (deterministic) credentials
    known = [sim["prod"].auth.users["root@pam"].password, sim["prod"].auth.token_secret]
    for path in CASSETTES.glob("*.yaml"):
        text = path.read_text()
        assert find_secrets(text, known) == [], path.name
        for item in load_yaml(text)["interactions"]:
            headers = {k.lower(): v for k, v in item["request"]["headers"].items()}
            for name in ("cookie", "csrfpreventiontoken", "authorization"):
                assert headers.get(name, ["***"]) == ["***"], (path.name, name)
            assert "set-cookie" not in {k.lower() for k in item["response"]["headers"]}
            body = item["request"]["body"] or ""
            assert "password=" not in body or "password=%2A%2A%2A" in body


def test_find_secrets_catches_real_shapes() -> None:
    ticket = "PVE:root@pam:64E10CBA::" + "A" * 40
    csrf = "64E10CBA:" + "b" * 43
    token = "PVEAPIToken=root@pam!ci=0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
    text = f"{ticket} {csrf} {token} hunter22"
    assert len(find_secrets(text, ["hunter22"])) == 4


def test_replay_never_reaches_the_network(replay: pvekit.Cluster) -> None:
    with use_cassette("guests"), pytest.raises(CannotOverwriteExistingCassetteException):
        replay.get("/nodes/pve1/status")


def test_nodes_replay(replay: pvekit.Cluster) -> None:
    df, _ = play("nodes")
    assert_frame(df, "nodes")
    status = recorded("nodes", "/nodes/pve1/status")[0]
    assert df["node"].tolist() == ["pve1", "pve2", "pve3"]
    assert df.set_index("node").loc["pve1", "loadavg_1"] == float(status["loadavg"][0])
    assert df["ip"].notna().all()


def test_guests_replay_is_one_request(replay: pvekit.Cluster) -> None:
    df, cass = play("guests")
    assert_frame(df, "guests")
    gets = [r for r in cass.requests if r.method == "GET"]
    assert [r.path for r in gets] == ["/api2/json/cluster/resources"]
    rows = [r for r in recorded("guests", "/cluster/resources")[0] if r["type"] in ("qemu", "lxc")]
    assert sorted(df["vmid"]) == sorted(r["vmid"] for r in rows)


def test_guests_details_replay(replay: pvekit.Cluster) -> None:
    df, _ = play("guests_details")
    assert_frame(df, "guests", details=True, ips=True)
    configs = recorded("guests_details", "/config")
    assert len(configs) == len(df)
    assert df["disks"].map(len).gt(0).all()
    assert set(df["ip_source"].dropna().astype(str)) == {"agent", "lxc", "config"}
    assert df["error"].notna().any()  # the demo has a guest whose agent times out


def test_storage_replay(replay: pvekit.Cluster) -> None:
    df, _ = play("storage")
    assert_frame(df, "storage")
    with use_cassette("storage"):
        uniq = replay.storage(unique=True, progress=False)
    assert len(uniq) < len(df) and uniq[uniq.shared]["storage"].is_unique


def test_tasks_replay(replay: pvekit.Cluster) -> None:
    df, _ = play("tasks")
    assert_frame(df, "tasks")
    assert 0 < len(df) <= 50 and df["starttime"].is_monotonic_decreasing


def test_backups_replay(replay: pvekit.Cluster) -> None:
    df, _ = play("backups")
    assert_frame(df, "backups")
    volids = {v["volid"] for body in recorded("backups", "/content") for v in body}
    assert set(df["volid"]) == volids


def test_snapshots_replay(replay: pvekit.Cluster) -> None:
    df, _ = play("snapshots")
    assert_frame(df, "snapshots")
    named = [s for body in recorded("snapshots", "/snapshot") for s in body]
    assert len(df) == sum(1 for s in named if s["name"] != "current")


def test_metrics_replay(replay: pvekit.Cluster) -> None:
    nodes, _ = play("metrics_node")
    assert_frame(nodes, "metrics")
    assert set(nodes["target"]) == {"pve1", "pve2", "pve3"}
    guests, _ = play("metrics_guest")
    assert set(guests["target"]) == {"100", "146"}


def test_summary_replay(replay: pvekit.Cluster) -> None:
    df, _ = play("summary")
    assert_frame(df, "summary")
    row = df.iloc[0]
    assert row["nodes_total"] == 3 and bool(row["quorate"])
    assert row["version"] == recorded("summary", "/version")[0]["version"]
