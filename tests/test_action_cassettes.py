"""The common action flows replayed from cassettes (record mode "none": no network at all).

Flows: start a VM and wait for the task, take a snapshot, migrate a running VM. The cassettes
``cassettes/actions_*.yaml`` were recorded from the simulator with a ``cache=False`` client
(vcrpy cannot go through requests-cache) and scrubbed by ``tests/vcr_support.py``. Replays
must make exactly the recorded requests, in order: each task status poll gets the next
recorded answer, so a replay also proves how many times the status was polled and that the
action itself was sent once.

Re-record (after changing a flow) with::

    python tests/test_action_cassettes.py --record
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from vcr.errors import CannotOverwriteExistingCassetteException

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vcr_support import CASSETTES, REPLAY_KWARGS, find_secrets, make_vcr

import pvekit
from pvekit._guest import Guest
from pvekit.sim import Simulator

POLL = 0.01


def flow_start_wait(c: pvekit.Cluster) -> dict[str, Any]:
    g = c.guest(123)  # ci-runner-03: a stopped VM on pve3
    t = g.start()
    st = t.wait(poll=POLL, progress=False)
    return {"task": t, "status": st, "running": g.status()["status"], "node": g.node}


def flow_snapshot(c: pvekit.Cluster) -> dict[str, Any]:
    g = c.guest(136)  # staging-db
    t = g.snapshot("nightly", description="from a cassette")
    st = t.wait(poll=POLL, progress=False)
    return {"task": t, "status": st, "snapshots": g.snapshots()}


def flow_migrate(c: pvekit.Cluster) -> dict[str, Any]:
    g = c.guest(100)  # web-01, running on pve1
    source = g.node
    t = g.migrate("pve2")
    st = t.wait(poll=POLL, progress=False)
    return {
        "task": t,
        "status": st,
        "source": source,
        "node": g.node,
        "resolved": g.resolve()["node"],
    }


FLOWS: dict[str, Callable[[pvekit.Cluster], dict[str, Any]]] = {
    "actions_start_wait": flow_start_wait,
    "actions_snapshot": flow_snapshot,
    "actions_migrate": flow_migrate,
}


def record() -> None:
    """Record every flow from a fresh simulator (seed 0); tasks take long enough to poll."""
    for name, flow in FLOWS.items():
        path = CASSETTES / f"{name}.yaml"
        path.unlink(missing_ok=True)
        with Simulator("demo", seed=0, task_scale=0.1) as sim:
            kwargs = {**REPLAY_KWARGS, **sim["prod"].connect_kwargs(identity="root")}
            client = pvekit.connect(**kwargs)
            try:
                with make_vcr("all").use_cassette(path.name):
                    flow(client)
            finally:
                client.close()
        print(f"recorded {path}")


def play(name: str) -> tuple[dict[str, Any], Any]:
    client = pvekit.connect(**REPLAY_KWARGS)
    try:
        # Repeats are off: each status poll must get the next recorded answer.
        with make_vcr("none").use_cassette(f"{name}.yaml", allow_playback_repeats=False) as cass:
            result = FLOWS[name](client)
            assert cass.all_played, f"{name}: recorded requests were not all made"
    finally:
        client.close()
    return result, cass


def requests_of(name: str) -> list[tuple[str, str]]:
    data = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())
    return [
        (i["request"]["method"], i["request"]["uri"].split("/api2/json", 1)[1])
        for i in data["interactions"]
    ]


def polls(name: str) -> int:
    return sum(
        1 for m, u in requests_of(name) if m == "GET" and "/tasks/" in u and u.endswith("/status")
    )


def test_start_and_wait_replays() -> None:
    result, cass = play("actions_start_wait")
    assert result["status"].ok and result["status"].exitstatus == "OK"
    assert result["task"].type == "qmstart" and result["task"].node == "pve3"
    assert result["running"] == "running"
    sent = requests_of("actions_start_wait")
    assert sent.count(("POST", "/nodes/pve3/qemu/123/status/start")) == 1
    # connect(check=False): the release writes are validated against is read once, before
    # the first write
    assert sent.count(("GET", "/version")) == 1
    assert sent.index(("GET", "/version")) < sent.index(
        ("POST", "/nodes/pve3/qemu/123/status/start")
    )
    assert polls("actions_start_wait") >= 2  # seen running, then stopped OK
    assert cass.play_count == len(sent)


def test_snapshot_replays() -> None:
    result, _ = play("actions_snapshot")
    assert result["status"].ok and result["task"].type == "qmsnapshot"
    snaps = result["snapshots"]
    row = snaps[snaps["name"] == "nightly"]
    assert len(row) == 1 and row["description"].iloc[0] == "from a cassette"
    assert row["profile"].iloc[0] == "127.0.0.1"  # connect(host=...) is named after the host
    sent = requests_of("actions_snapshot")
    assert [u for m, u in sent if m == "POST" and "snapshot" in u] == [
        "/nodes/pve1/qemu/136/snapshot"
    ]


def test_migrate_replays() -> None:
    result, _ = play("actions_migrate")
    assert result["status"].ok and result["task"].type == "qmigrate"
    assert (result["source"], result["node"], result["resolved"]) == ("pve1", "pve2", "pve2")
    sent = requests_of("actions_migrate")
    assert sent.count(("POST", "/nodes/pve1/qemu/100/migrate")) == 1
    assert ("GET", "/nodes") in sent  # the target was checked before sending
    # Status polls went to the node running the task (the source).
    assert all(u.startswith("/nodes/pve1/tasks/") for m, u in sent if "/tasks/" in u)


def test_replay_cannot_reach_the_network() -> None:
    client = pvekit.connect(**REPLAY_KWARGS)
    try:
        with (
            make_vcr("none").use_cassette("actions_snapshot.yaml", allow_playback_repeats=False),
            pytest.raises(CannotOverwriteExistingCassetteException),
        ):
            Guest(client, 999, node="pve1", type="qemu").start()
    finally:
        client.close()


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_action_cassettes_hold_no_secrets(name: str) -> None:
    sim = Simulator("demo", seed=0)  # not started: only its deterministic credentials
    known = [sim["prod"].auth.users["root@pam"].password, sim["prod"].auth.token_secret]
    text = (CASSETTES / f"{name}.yaml").read_text()
    assert find_secrets(text, known) == []
    for item in yaml.safe_load(text)["interactions"]:
        headers = {k.lower(): v for k, v in item["request"]["headers"].items()}
        for secret in ("cookie", "csrfpreventiontoken", "authorization"):
            assert headers.get(secret, ["***"]) == ["***"]


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        raise SystemExit("usage: python tests/test_action_cassettes.py --record")
    record()
