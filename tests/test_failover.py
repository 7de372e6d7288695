"""pvetui ``mode: cluster`` groups: one active profile among candidates of the same cluster,
health-checked with ``GET /version``, failing over when the active one stops answering."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _relay import Relay

import pvekit
from pvekit import FailoverEvent, FailoverGroup, InvalidInputError

if TYPE_CHECKING:
    from pvekit.sim import Simulator


@pytest.fixture
def relay(http_sim: Simulator) -> Iterator[Relay]:
    host, port = http_sim["prod"].host.rsplit(":", 1)
    r = Relay(host, int(port))
    yield r
    r.stop()


def _tui_config(sim: Simulator, relay: Relay, mode: str | None = "cluster") -> None:
    pw = sim["prod"].auth.users["root@pam"].password
    settings = f"group_settings:\n  ha:\n    mode: {mode}\n" if mode else ""
    Path(os.environ["PVEKIT_PVETUI_CONFIG"]).parent.mkdir(parents=True, exist_ok=True)
    Path(os.environ["PVEKIT_PVETUI_CONFIG"]).write_text(
        "profiles:\n"
        f"  node1: {{addr: '{relay.url}', user: root, password: '{pw}', groups: [ha]}}\n"
        f"  node2: {{addr: '{sim['prod'].url}', user: root, password: '{pw}', groups: [ha]}}\n"
        + settings
    )


def test_pvetui_cluster_mode_group_is_not_an_aggregate(http_sim: Simulator, relay: Relay) -> None:
    _tui_config(http_sim, relay)
    cfg = pvekit.load_config()
    assert cfg.group_modes["ha"] == "cluster"
    with pvekit.connect_group("ha") as g:
        assert isinstance(g, FailoverGroup) and g.mode == "cluster"
        assert g.name == "ha"
        nodes = g.nodes(progress=False)
        # one cluster of three nodes, read through one profile: three rows, not six
        assert len(nodes) == len(http_sim["prod"].state.nodes)
        assert set(nodes["profile"]) == {"node1"}
        assert g.active_profile == "node1"


def test_aggregate_is_still_the_default_mode(http_sim: Simulator, relay: Relay) -> None:
    _tui_config(http_sim, relay, mode=None)
    assert pvekit.load_config().group_modes.get("ha", "aggregate") == "aggregate"
    with pvekit.connect_group("ha") as g:
        assert type(g).__name__ == "Group" and g.name == "ha"


def test_unknown_mode_is_a_config_error(http_sim: Simulator, relay: Relay) -> None:
    _tui_config(http_sim, relay, mode="mirror")
    with pytest.raises(pvekit.ConfigError, match=r"mode.*'mirror'.*aggregate, cluster"):
        pvekit.connect_group("ha")


def _candidates(sim: Simulator, relay: Relay) -> list[pvekit.Cluster]:
    kw = dict(sim["prod"].connect_kwargs(identity="root"))
    kw.pop("host")
    return [
        pvekit.connect("node1", host=relay.url, cache=False, retries=0, check=False, **kw),
        pvekit.connect("node2", host=sim["prod"].url, cache=False, retries=0, check=False, **kw),
    ]


def test_failover_when_the_active_profile_stops_answering(
    http_sim: Simulator, relay: Relay
) -> None:
    events: list[FailoverEvent] = []
    g = FailoverGroup(_candidates(http_sim, relay), name="ha", on_failover=events.append)
    try:
        assert g.active_profile is None  # elected on first use
        assert g.active.profile == "node1" and g.active_profile == "node1"
        before = g.guests()
        relay.stop()  # node1's pveproxy is gone
        http_sim["prod"].clear_requests()
        after = g.guests()
        # the same cluster, now read through node2, with no gap for the caller
        assert len(after) == len(before)
        assert set(after["profile"]) == {"node2"}
        assert g.active_profile == "node2" and g.active.profile == "node2"
        assert [(e.previous, e.current) for e in events] == [("node1", "node2")]
        assert events[0].group == "ha" and "stopped answering" in events[0].reason
        # node2 was health-checked with /version before it took over
        paths = [r.path for r in http_sim["prod"].requests]
        assert paths.index("/version") < paths.index("/cluster/resources")
        status = g.status().set_index("profile")
        assert status.at["node1", "state"] == "failed" and not status.at["node1", "connected"]
        assert status.at["node2", "state"] == "active" and status.at["node2", "connected"]
        assert g.failovers == events
    finally:
        g.close()


def test_health_check_fails_over_before_any_read(http_sim: Simulator, relay: Relay) -> None:
    seen: list[tuple[str | None, str]] = []
    g = FailoverGroup(_candidates(http_sim, relay), name="ha")
    g.on_failover(lambda e: seen.append((e.previous, e.current)))
    try:
        g.check()
        assert g.active_profile == "node1"
        relay.stop()
        status = g.check()
        assert g.active_profile == "node2" and seen == [("node1", "node2")]
        assert status.set_index("profile").at["node1", "state"] == "failed"
    finally:
        g.close()


def test_no_candidate_answers(http_sim: Simulator, relay: Relay) -> None:
    g = FailoverGroup(_candidates(http_sim, relay)[:1], name="ha")
    relay.stop()
    try:
        with pytest.raises(pvekit.ConnectionError, match=r"no candidate of group 'ha'.*node1"):
            g.nodes(progress=False)
        assert g.active_profile is None
    finally:
        g.close()


def test_actions_go_to_the_active_profile(http_sim: Simulator, relay: Relay) -> None:
    g = FailoverGroup(_candidates(http_sim, relay), name="ha")
    try:
        vmid = min(http_sim["prod"].state.guests)
        relay.stop()
        guest = g.guest(vmid)
        assert guest.profile == "node2"
        with pytest.raises(InvalidInputError, match="not a candidate"):
            g.guest(vmid, profile="elsewhere")
    finally:
        g.close()


def test_a_failover_group_needs_candidates() -> None:
    with pytest.raises(InvalidInputError, match="at least one"):
        FailoverGroup([], name="ha")


def test_pvekit_config_group_settings(http_sim: Simulator, relay: Relay) -> None:
    kw = http_sim["prod"].connect_kwargs()
    cfg = Path(os.environ["PVEKIT_CONFIG"])
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(
        "profiles:\n"
        f"  a: {{host: '{relay.url}', user: root@pam, password: '{kw['password']}'}}\n"
        f"  b: {{host: '{http_sim['prod'].url}', user: root@pam, password: '{kw['password']}'}}\n"
        "groups:\n  pair: [a, b]\n"
        "group_settings:\n  pair: {mode: cluster}\n"
    )
    with pvekit.connect_group("pair", check=True) as g:
        assert isinstance(g, FailoverGroup) and g.active_profile == "a"
        relay.stop()
        assert g.summary()["profile"].tolist() == ["b"]
    cfg.write_text(cfg.read_text().replace("  pair: {mode: cluster}", "  other: {mode: cluster}"))
    with pytest.raises(pvekit.ConfigError, match="'other' does not match any group"):
        pvekit.load_config()
