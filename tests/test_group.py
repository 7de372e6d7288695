"""Group fan-out across simulated clusters: partial frames, warnings, status, ambiguity."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

import pvekit
from pvekit import AmbiguousGuestError, Group, InvalidInputError, NotFoundError, frames
from pvekit._group import PartialResultWarning

if TYPE_CHECKING:
    from pvekit import Cluster
    from pvekit.sim import Simulator


@pytest.fixture
def fresh_sim() -> Iterator[Simulator]:
    """A demo simulator of its own over loopback HTTP, not in-process (see conftest):
    a cluster is taken off the network (SimCluster.stop/start) and comes back."""
    from pvekit.sim import Simulator as _Simulator

    with _Simulator("demo") as s:
        yield s


def at(df: pd.DataFrame, row: Any, col: str) -> Any:
    """One cell, typed loosely (pandas-stubs type ``.loc`` cells as a union of scalars)."""
    return df.at[row, col]


def _connect(sim: Simulator, name: str) -> Cluster:
    kw = dict(sim[name].connect_kwargs(identity="root"))
    kw.pop("profile", None)
    return pvekit.connect(name, **kw, cache=False, retries=0)


@pytest.fixture
def group(fresh_sim: Simulator) -> Iterator[Group]:
    g = Group([_connect(fresh_sim, n) for n in fresh_sim.clusters])
    yield g
    g.close()


def test_group_frames_concatenate_with_profile(fresh_sim: Simulator, group: Group) -> None:
    assert group.profiles == ["prod", "lab"]
    assert len(group) == 2 and "lab" in group and group["lab"].profile == "lab"
    guests = group.guests()
    for col in frames.COLUMNS["guests"]:
        assert str(guests[col.name].dtype) == col.dtype
    counts = guests.groupby("profile", observed=True).size().to_dict()
    assert counts == {n: len(c.state.guests) for n, c in fresh_sim.clusters.items()}
    # VMIDs repeat across clusters: (profile, vmid) is the key
    assert not guests["vmid"].is_unique
    assert not guests.duplicated(["profile", "vmid"]).any()
    summary = group.summary()
    assert summary["profile"].tolist() == ["prod", "lab"]
    assert str(summary["quorate"].dtype) == "boolean"
    status = group.status()
    assert status["state"].astype(str).tolist() == ["connected", "connected"]
    assert status["connected"].all() and status["error"].isna().all()


def test_every_read_works_on_a_group(group: Group) -> None:
    for name, df in {
        "nodes": group.nodes(progress=False),
        "storage": group.storage(unique=True, progress=False),
        "tasks": group.tasks(limit=5, progress=False),
        "backups": group.backups(progress=False),
        "snapshots": group.snapshots(progress=False),
        "metrics": group.metrics("node", timeframe="hour", progress=False),
    }.items():
        assert set(df["profile"]) == {"prod", "lab"}, name
        for col in frames.COLUMNS[name]:
            assert str(df[col.name].dtype) == col.dtype, (name, col.name)
    tasks = group.tasks(limit=5, progress=False)
    assert tasks["starttime"].is_monotonic_decreasing
    assert tasks.groupby("profile", observed=True).size().max() <= 5


def test_one_cluster_down_gives_partial_frames_and_warning(
    fresh_sim: Simulator, group: Group
) -> None:
    fresh_sim["lab"].faults.drop(1.0)
    with pytest.warns(PartialResultWarning, match="'lab'") as record:
        guests = group.guests()
    assert fresh_sim["lab"].host in str(record[0].message)
    assert set(guests["profile"]) == {"prod"}
    assert len(guests) == len(fresh_sim["prod"].state.guests)
    status = group.status().set_index("profile")
    assert at(status, "lab", "state") == "failed" and not at(status, "lab", "connected")
    assert "lab" in at(status, "lab", "error") or "reach" in at(status, "lab", "error")
    assert at(status, "prod", "state") == "connected"
    assert pd.notna(at(status, "lab", "checked_at"))
    with pytest.warns(PartialResultWarning):
        summary = group.summary()
    assert summary["profile"].tolist() == ["prod"]

    # the cluster comes back: reconnect() retries only the failed profile
    fresh_sim["lab"].faults.clear()
    fresh_sim["prod"].clear_requests()
    status = group.reconnect().set_index("profile")
    assert at(status, "lab", "state") == "connected" and pd.isna(at(status, "lab", "error"))
    assert fresh_sim["prod"].requests == []
    assert set(group.guests()["profile"]) == {"prod", "lab"}


def test_reconnect_while_still_down_stays_failed(fresh_sim: Simulator, group: Group) -> None:
    fresh_sim["lab"].faults.drop(1.0)
    with pytest.warns(PartialResultWarning):
        group.nodes(progress=False)
    status = group.reconnect().set_index("profile")
    assert at(status, "lab", "state") == "failed" and at(status, "lab", "error")


def test_all_clusters_down_gives_empty_typed_frame(fresh_sim: Simulator, group: Group) -> None:
    for c in fresh_sim.clusters.values():
        c.faults.drop(1.0)
    with pytest.warns(PartialResultWarning):
        df = group.guests(details=True)
    assert df.empty
    assert list(df.columns) == frames.columns("guests", details=True)


def test_map_returns_results_and_errors(fresh_sim: Simulator, group: Group) -> None:
    fresh_sim["lab"].faults.errors(1.0, statuses=(500,), pattern="/version")
    out = group.map(lambda c: c.get("/version")["version"])
    assert out["prod"].startswith("9.")
    assert isinstance(out["lab"], pvekit.ServerError)
    # an API error on one call does not mark the cluster down
    status = group.status().set_index("profile")
    assert at(status, "lab", "state") == "connected" and "500" in at(status, "lab", "error")
    assert group.map(lambda c: c.profile, profiles=["lab"]) == {"lab": "lab"}
    with pytest.raises(InvalidInputError, match="nope"):
        group.map(lambda c: 1, profiles=["nope"])


def test_gateway_errors_after_retries_mark_the_cluster_failed(
    fresh_sim: Simulator, group: Group
) -> None:
    # 503 on every call (retries=0 in this fixture, so the first one is final): the cluster
    # is unavailable, unlike a 500 about one call (test above), and reconnect() retries it.
    fresh_sim["lab"].faults.errors(1.0, statuses=(503,))
    with pytest.warns(PartialResultWarning, match="'lab'"):
        group.nodes(progress=False)
    status = group.status().set_index("profile")
    assert at(status, "lab", "state") == "failed" and not at(status, "lab", "connected")
    assert "503" in at(status, "lab", "error")
    assert at(status, "prod", "state") == "connected"
    fresh_sim["lab"].faults.clear()
    status = group.reconnect().set_index("profile")
    assert at(status, "lab", "state") == "connected"


def test_guest_lookup_and_ambiguity(fresh_sim: Simulator, group: Group) -> None:
    prod_ids = set(fresh_sim["prod"].state.guests)
    lab_ids = set(fresh_sim["lab"].state.guests)
    both = min(prod_ids & lab_ids)
    with pytest.raises(AmbiguousGuestError) as info:
        group.guest(both)
    assert info.value.profiles == ["lab", "prod"]
    assert "lab" in str(info.value) and "prod" in str(info.value)
    handle: Any = group.guest(both, profile="lab")
    assert handle.cluster is group["lab"] and handle.vmid == both
    only_prod = min(prod_ids - lab_ids)
    unique: Any = group.guest(only_prod)
    assert unique.cluster is group["prod"] and unique.vmid == only_prod
    fresh_sim["prod"].clear_requests()
    assert unique.node == fresh_sim["prod"].state.guests[only_prod].node
    assert fresh_sim["prod"].requests == []  # node came from the guest table
    with pytest.raises(NotFoundError):
        group.guest(987654)
    with pytest.raises(InvalidInputError, match="not in this group"):
        group.guest(both, profile="staging")


def test_close_marks_profiles_closed(fresh_sim: Simulator) -> None:
    g = Group([_connect(fresh_sim, n) for n in fresh_sim.clusters])
    g.close()
    assert g.status()["state"].astype(str).tolist() == ["closed", "closed"]
    assert g.map(lambda c: c.profile) == {}


def test_group_rejects_duplicate_profiles(fresh_sim: Simulator) -> None:
    a = _connect(fresh_sim, "prod")
    b = _connect(fresh_sim, "prod")
    with pytest.raises(InvalidInputError, match="twice"):
        Group([a, b])
    a.close()
    b.close()


def test_demo_group() -> None:
    g = pvekit.demo()
    try:
        assert g.profiles == ["prod", "lab"]
        assert set(g.guests()["profile"]) == {"prod", "lab"}
    finally:
        g.close()


def test_group_from_mapping_and_validation(fresh_sim: Simulator) -> None:
    prod = _connect(fresh_sim, "prod")
    g = Group({"prod": prod}, max_workers=1)
    assert g.profiles == ["prod"] and g.clusters == {"prod": prod}
    assert "prod=pending" in repr(g)
    assert g.map(lambda c: c.profile) == {"prod": "prod"}
    assert "prod=connected" in repr(g)
    with pytest.raises(InvalidInputError, match="differs"):
        Group({"primary": prod})
    with pytest.raises(InvalidInputError, match="max_workers"):
        Group([prod], max_workers=0)
    with pytest.raises(InvalidInputError, match="not in this group"):
        g["nope"]
    g.close()
