"""Write validation follows the connected server's release, not always the newest schema.

The shipped schema holds PVE 9.1 and the 8.4 differences (version markers). A parameter only
9.x knows (``allow-ksm`` on a QEMU config) must be refused before sending to an 8.4 server,
and one only 8.4 knows (``vzdump notification-policy``) must not be refused there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import pvekit
from pvekit import InvalidInputError
from pvekit._guest import _schema_check
from pvekit._schema import KNOWN_RELEASES, load_schema, nearest_release
from pvekit.sim import Simulator

VZDUMP_84 = {"vmid": 100, "storage": "local", "notification-policy": "always"}


def _writes(c: Any) -> list[Any]:
    return [r for r in c.requests if r.method != "GET"]


@pytest.fixture(scope="module")
def sim84() -> Iterator[Simulator]:
    s = Simulator("demo", https=False, seed=0, pve_version="8.4", inprocess=True)
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def sim91() -> Iterator[Simulator]:
    s = Simulator("demo", https=False, seed=0, pve_version="9.1", inprocess=True)
    s.start()
    yield s
    s.stop()


def _connect(s: Simulator, **kwargs: Any) -> pvekit.Cluster:
    return pvekit.connect(**s["prod"].connect_kwargs(identity="root"), cache=False, **kwargs)


def test_a_9x_only_option_is_refused_before_sending_to_an_84_server(sim84: Simulator) -> None:
    with _connect(sim84) as c:
        vm = c.guest(109)
        _ = vm.node
        sim84["prod"].clear_requests()
        with pytest.raises(InvalidInputError, match="allow-ksm") as info:
            vm.update(**{"allow-ksm": 1})
        assert "refused by Proxmox" in str(info.value)
        assert _writes(sim84["prod"]) == []


def test_the_same_option_goes_out_to_a_91_server(sim91: Simulator) -> None:
    with _connect(sim91) as c:
        vm = c.guest(109)
        _ = vm.node
        sim91["prod"].clear_requests()
        vm.update(**{"allow-ksm": 0})
        assert [r.params.get("allow-ksm") for r in _writes(sim91["prod"])] == ["0"]


def test_an_84_only_vzdump_option_is_accepted_on_84_and_refused_on_91(
    sim84: Simulator, sim91: Simulator
) -> None:
    with _connect(sim84) as old:
        _schema_check("POST", "/nodes/pve1/vzdump", VZDUMP_84, old)  # no error
    with _connect(sim91) as new, pytest.raises(InvalidInputError, match="notification-policy"):
        _schema_check("POST", "/nodes/pve1/vzdump", VZDUMP_84, new)


def test_the_release_is_read_once_from_the_connect_check(sim84: Simulator) -> None:
    prod = sim84["prod"]
    prod.clear_requests()
    with _connect(sim84) as c:
        assert c.pve_version.startswith("8.4")
        for _ in range(3):
            _schema_check("POST", "/nodes/pve1/vzdump", VZDUMP_84, c)
    assert [r.path for r in prod.requests].count("/version") == 1


def test_without_the_connect_check_the_first_write_reads_version_once(sim84: Simulator) -> None:
    prod = sim84["prod"]
    with _connect(sim84, check=False) as c:
        prod.clear_requests()
        for _ in range(3):
            _schema_check("POST", "/nodes/pve1/vzdump", VZDUMP_84, c)
    assert [r.path for r in prod.requests].count("/version") == 1


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("8.4", "8.4"),
        ("8.4.14", "8.4"),
        ("8.2", "8.4"),
        ("8.0.3", "8.4"),
        ("7.4", "8.4"),  # older than anything shipped: the oldest known
        ("9.0", "9.1"),
        ("9.1", "9.1"),
        ("9.1.2", "9.1"),
        ("10.0", "9.1"),  # newer than anything shipped: the newest known
        ("", "9.1"),  # unknown: the newest
        ("pve-manager/x", "9.1"),
    ],
)
def test_nearest_release(release: str, expected: str) -> None:
    assert nearest_release(release) == expected
    assert expected in KNOWN_RELEASES


def test_the_schema_of_a_release_is_that_of_its_nearest() -> None:
    assert load_schema("8.2") is load_schema("8.4")
    assert load_schema("9.1.2") is load_schema("9.1")
    ep84 = load_schema("8.2").match("POST", "/nodes/pve1/vzdump")
    ep91 = load_schema("9.0").match("POST", "/nodes/pve1/vzdump")
    assert ep84 is not None and ep91 is not None
    assert "notification-policy" in ep84.params and "notification-policy" not in ep91.params
