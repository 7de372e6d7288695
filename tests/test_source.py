"""One interface for a Cluster, a Group and a FailoverGroup (``pvekit._source.Inventory``).

Runtime half here (``isinstance`` against the ``runtime_checkable`` Protocol, on real objects
connected to the simulator); the static half is ``_conforms`` in ``pvekit/_source.py``, which
the CI ``mypy`` run checks, and the assignments below, which mypy checks when run on this
file (``test_mypy_accepts_the_three_as_inventory``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pvekit
from pvekit import Cluster, FailoverGroup, Group, InvalidInputError
from pvekit._source import Inventory, Members
from pvekit.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent


def _static(c: Cluster, g: Group, f: FailoverGroup) -> list[Inventory]:
    """mypy: each of the three is an Inventory; the groups are Members too."""
    groups: list[Members] = [g, f]
    return [c, *groups]


@pytest.fixture
def three(sim: Simulator) -> Iterator[tuple[Cluster, Group, FailoverGroup]]:
    def conn(cluster: str, name: str) -> Cluster:
        kwargs = {**sim[cluster].connect_kwargs(identity="root"), "name": name}
        kwargs.pop("profile", None)
        return pvekit.connect(**kwargs, cache=False)

    prod, lab, standby = conn("prod", "prod"), conn("lab", "lab"), conn("prod", "prod-b")
    group = Group([prod, lab])
    failover = FailoverGroup([prod, standby])
    yield prod, group, failover
    for c in (prod, lab, standby):
        c.close()


def test_cluster_group_and_failover_group_are_inventories(
    three: tuple[Cluster, Group, FailoverGroup],
) -> None:
    cluster, group, failover = three
    for obj in three:
        assert isinstance(obj, Inventory), type(obj).__name__
    assert not isinstance(cluster, Members)
    assert isinstance(group, Members) and isinstance(failover, Members)
    assert _static(*three) == [cluster, group, failover]


def test_the_interface_answers_alike(three: tuple[Cluster, Group, FailoverGroup]) -> None:
    cluster, group, failover = three
    assert cluster.profiles == ["prod"] and dict(cluster.clusters) == {"prod": cluster}
    assert group.profiles == ["prod", "lab"] and group.clusters["lab"].profile == "lab"
    assert failover.profiles == ["prod", "prod-b"]
    for obj in three:
        src: Inventory = obj
        # the same call with the same keywords everywhere; rows say which profile they are of
        assert set(src.nodes(fresh=True, progress=False)["profile"].astype(str)) <= {
            "prod",
            "lab",
        }
        assert len(src.ha_rules(fresh=False).columns) > 0
        assert src.guest(100, profile="prod").vmid == 100


def test_the_demo_group_is_an_inventory() -> None:
    with pvekit.demo() as g:
        assert isinstance(g, Inventory) and isinstance(g, Members)


@pytest.mark.parametrize("obj", [object(), "prod", {"nodes": 1}, pvekit.Profile])
def test_other_things_are_not(obj: Any) -> None:
    assert not isinstance(obj, Inventory)


def test_widgets_refuse_what_is_not_an_inventory() -> None:
    from pvekit.widgets._common import Source

    with pytest.raises(InvalidInputError, match="Cluster or Group"):
        Source(object())  # type: ignore[arg-type]


def test_mypy_accepts_the_three_as_inventory(tmp_path: Path) -> None:
    """The static check, on this file and on a file that must fail (so it proves something)."""
    bad = tmp_path / "not_an_inventory.py"
    bad.write_text(
        "from pvekit._source import Inventory\n"
        "class Half:\n"
        "    def nodes(self) -> None: ...\n"
        "x: Inventory = Half()\n"
    )
    cmd = [sys.executable, "-m", "mypy", "--no-error-summary", "--follow-imports=silent"]
    good = subprocess.run(
        [*cmd, str(Path(__file__))], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert good.returncode == 0, good.stdout + good.stderr
    refused = subprocess.run(
        [*cmd, str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert refused.returncode == 1 and "Inventory" in refused.stdout, refused.stdout


def test_members_map_by_profiles(three: tuple[Cluster, Group, FailoverGroup]) -> None:
    _, group, failover = three
    assert list(group.map(lambda c: c.profile, profiles=["lab"])) == ["lab"]
    active = failover.map(lambda c: c.profile, profiles=["prod", "prod-b"])
    assert list(active.values()) == [failover.active_profile]
    other = "prod-b" if failover.active_profile == "prod" else "prod"
    assert failover.map(lambda c: c.profile, profiles=[other]) == {}
    with pytest.raises(InvalidInputError, match="nope"):
        failover.map(lambda c: c.profile, profiles=["nope"])


def test_the_report_reads_every_kind_of_inventory(
    three: tuple[Cluster, Group, FailoverGroup],
) -> None:
    """Guest metrics are read by profile through ``map`` on a group: a FailoverGroup's map
    refused ``profiles=`` (TypeError) before it satisfied ``Members``."""
    from pvekit import report

    cluster, group, failover = three
    expected: dict[Any, Any] = {cluster: {"prod"}, group: {"prod", "lab"}, failover: None}
    for obj, profiles in expected.items():
        rep = report.capacity(obj, planning=False, details=False)
        profiles = profiles or {failover.active_profile}  # elected by the first read
        metrics = rep.frames["metrics"]
        guest_rows = metrics[metrics["kind"].astype(str) == "guest"]
        # guest metrics were read, and only from the profiles the frames came from
        assert set(guest_rows["profile"].astype(str)) == profiles, type(obj).__name__
