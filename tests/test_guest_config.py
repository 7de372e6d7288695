"""Guest config: parsed reads, updates (POST for QEMU, PUT for LXC) and disk resize."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pvekit
from pvekit import InvalidInputError
from pvekit._guest import Guest, _parse_size_arg, _size_text
from pvekit.frames import guest_details
from pvekit.sim import Simulator
from pvekit.sim._schema import load_schema

GIB = 1024**3
POLL = 0.02


def writes(prod: Any) -> list[Any]:
    return [r for r in prod.requests if r.method != "GET"]


# -- pure helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+10G", (True, 10 * GIB)),
        ("50G", (False, 50 * GIB)),
        ("512M", (False, 512 * 1024**2)),
        ("+1.5G", (True, 1536 * 1024**2)),
        ("1T", (False, 1024**4)),
        (" +2 GiB ", (True, 2 * GIB)),
        (4096, (False, 4096)),
    ],
)
def test_resize_sizes(text: Any, expected: tuple[bool, int]) -> None:
    assert _parse_size_arg(text) == expected


@pytest.mark.parametrize("bad", ["", "-10G", "+0", "10X", "ten", "0G", 0, -1, True, None, 1.5])
def test_bad_resize_sizes(bad: Any) -> None:
    with pytest.raises(InvalidInputError):
        _parse_size_arg(bad)


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [
        (10 * GIB, "10G"),
        (1536 * 1024**2, "1536M"),
        (1024**4, "1T"),
        (1025, "1025"),
        (3 * 1024**5, "3072T"),
    ],
)
def test_size_text_matches_the_resize_pattern(nbytes: int, text: str) -> None:
    assert _size_text(nbytes) == text
    assert _parse_size_arg(text) == (False, nbytes)


@given(st.integers(min_value=1, max_value=2**52), st.booleans())
def test_sent_sizes_always_match_the_official_pattern(nbytes: int, relative: bool) -> None:
    schema = load_schema().match("PUT", "/nodes/pve1/qemu/100/resize")
    assert schema is not None
    pattern = schema.params["size"]["re"]
    text = ("+" if relative else "") + _size_text(nbytes)
    assert re.fullmatch(pattern, text)
    assert _parse_size_arg(text) == (relative, nbytes)


# -- config --------------------------------------------------------------------------------------


def test_config_is_parsed_like_the_inventory(root: pvekit.Cluster) -> None:
    g = root.guest(105)  # db-primary: two disks
    cfg = g.config()
    raw = cfg["raw"]
    details = guest_details(raw, "qemu")
    assert {k: cfg[k] for k in details} == details
    assert cfg["vmid"] == 105 and cfg["type"] == "qemu" and cfg["node"] == g.node
    assert cfg["name"] == "db-primary" == raw["name"]
    assert [d["key"] for d in cfg["disks"] if d["media"] == "disk"] == ["scsi0", "scsi1"]
    assert all(isinstance(d["size"], int) for d in cfg["disks"] if d["media"] == "disk")
    assert cfg["memory"] == int(raw["memory"]) * 1024**2
    assert cfg["cores"] == raw["cores"] and isinstance(cfg["tags"], list)
    assert cfg["digest"] == raw["digest"]


def test_container_config(root: pvekit.Cluster) -> None:
    cfg = root.guest(146).config()
    assert cfg["type"] == "lxc" and cfg["name"] == cfg["raw"]["hostname"]
    assert cfg["disks"][0]["key"] == "rootfs" and cfg["disks"][0]["mountpoint"] == "/"
    assert cfg["swap"] == cfg["raw"]["swap"] * 1024**2
    assert cfg["sockets"] is None and cfg["agent"] is None


# -- update ---------------------------------------------------------------------------------------


def test_update_qemu_posts_and_waits(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    g = root.guest(107)
    t = g.update(
        cores=3,
        sockets=2,
        memory="6G",
        description="cache node",
        onboot=True,
        tags=["cache", "prod"],
        name="redis-one",
    )
    assert t is not None and t.ok and t.type == "qmconfig"
    (sent,) = writes(prod)
    assert sent.method == "POST" and sent.path == f"{g.path}/config"
    assert sent.params == {
        "cores": "3",
        "sockets": "2",
        "memory": "6144",
        "description": "cache node",
        "onboot": "1",
        "tags": "cache;prod",
        "name": "redis-one",
    }
    cfg = g.config()
    assert (cfg["cores"], cfg["sockets"], cfg["memory"]) == (3, 2, 6 * GIB)
    assert cfg["tags"] == ["cache", "prod"] and cfg["name"] == "redis-one"
    assert cfg["onboot"] is True and cfg["description"] == "cache node"


def test_update_qemu_without_waiting(root: pvekit.Cluster) -> None:
    t = root.guest(108).update(memory=2048, wait=False)
    assert t is not None
    assert t.wait(poll=POLL, progress=False).ok


def test_update_lxc_puts(root: pvekit.Cluster, simx: Simulator, prod: Any) -> None:
    g = root.guest(147)
    assert g.update(cores=2, memory=1024, name="dns-two", delete=["description"]) is None
    (sent,) = writes(prod)
    assert sent.method == "PUT" and sent.path == f"{g.path}/config"
    assert sent.params == {
        "cores": "2",
        "memory": "1024",
        "hostname": "dns-two",
        "delete": "description",
    }
    cfg = g.config()
    assert cfg["name"] == "dns-two" and cfg["cores"] == 2 and cfg["memory"] == GIB


def test_update_extra_options_are_checked_against_the_schema(
    root: pvekit.Cluster, prod: Any
) -> None:
    vm = root.guest(109)
    ct = root.guest(148)
    _ = (vm.node, ct.node)
    prod.clear_requests()
    with pytest.raises(InvalidInputError, match="bogus"):
        vm.update(bogus=1)
    with pytest.raises(InvalidInputError, match="cpulimit"):
        vm.update(cpulimit="lots")
    with pytest.raises(InvalidInputError, match="balloon"):
        ct.update(balloon=512)  # a QEMU option
    assert writes(prod) == []
    vm.update(cpulimit=2)
    assert writes(prod)[0].params == {"cpulimit": "2"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "at least one"),
        ({"digest": "abc"}, "at least one"),
        ({"cores": 0}, "cores"),
        ({"cores": "2"}, "cores"),
        ({"memory": 8}, "16 MiB"),
        ({"memory": "+1G"}, "absolute"),
        ({"memory": "1.5K"}, "MiB"),
        ({"tags": ["ok", "not ok"]}, "invalid tag"),
        ({"tags": 5}, "tags"),
        ({"name": "under_score"}, "DNS name"),
        ({"onboot": 1}, "onboot"),
        ({"description": 5}, "description"),
        ({"delete": []}, "delete"),
        ({"node": "pve2"}, "node"),
    ],
)
def test_update_refusals_send_nothing(
    root: pvekit.Cluster, prod: Any, kwargs: dict[str, Any], match: str
) -> None:
    g = Guest(root, 110, node="pve2", type="qemu")
    with pytest.raises(InvalidInputError, match=match):
        g.update(**kwargs)
    assert prod.requests == []


def test_sockets_is_qemu_only(root: pvekit.Cluster, prod: Any) -> None:
    with pytest.raises(InvalidInputError, match="sockets"):
        Guest(root, 149, node="pve2", type="lxc").update(sockets=2)
    assert prod.requests == []


def test_stale_digest_is_refused_by_proxmox(root: pvekit.Cluster) -> None:
    g = root.guest(150)
    old = g.config()["digest"]
    g.update(description="changed")
    with pytest.raises(pvekit.APIError, match="modified"):
        g.update(cores=1, digest=old)


# -- resize ---------------------------------------------------------------------------------------


def test_resize_grows_relative_and_absolute(
    root: pvekit.Cluster, simx: Simulator, prod: Any
) -> None:
    g = root.guest(111)
    before = next(d for d in g.config()["disks"] if d["key"] == "scsi0")["size"]
    t = g.resize("scsi0", "+10G")
    assert t is not None and t.wait(poll=POLL, progress=False).ok
    assert next(d for d in g.config()["disks"] if d["key"] == "scsi0")["size"] == before + 10 * GIB
    sent = [r for r in writes(prod)]
    assert sent[0].method == "PUT" and sent[0].path == f"{g.path}/resize"
    assert sent[0].params["size"] == "+10G" and sent[0].params["disk"] == "scsi0"
    target = before + 20 * GIB
    g.resize("scsi0", _size_text(target)).wait(poll=POLL, progress=False)  # type: ignore[union-attr]
    assert g.config()["disks"][-1]["size"] == target
    prod.clear_requests()
    assert g.resize("scsi0", target) is None  # already that size: nothing to do
    assert writes(prod) == []


def test_resize_container_rootfs(root: pvekit.Cluster) -> None:
    g = root.guest(151)
    before = g.config()["disks"][0]["size"]
    g.resize("rootfs", "+512M").wait(poll=POLL, progress=False)  # type: ignore[union-attr]
    assert g.config()["disks"][0]["size"] == before + 512 * 1024**2


def test_resize_never_shrinks_and_knows_the_disks(root: pvekit.Cluster, prod: Any) -> None:
    g = root.guest(112)
    size = next(d for d in g.config()["disks"] if d["key"] == "scsi0")["size"]
    with pytest.raises(InvalidInputError, match="cannot shrink"):
        g.resize("scsi0", _size_text(size - GIB))
    with pytest.raises(InvalidInputError, match=r"no disk 'scsi5' \(disks: .*scsi0"):
        g.resize("scsi5", "+1G")
    with pytest.raises(InvalidInputError, match="invalid disk"):
        g.resize("rootfs", "+1G")  # a container key on a VM
    with pytest.raises(InvalidInputError):
        g.resize("scsi0", "-1G")
    assert writes(prod) == []


def test_resize_auditor_is_refused(simx: Simulator) -> None:
    auditor = pvekit.connect(**simx["prod"].connect_kwargs(identity="auditor"), cache=False)
    try:
        with pytest.raises(pvekit.PermissionDeniedError):
            auditor.guest(113).resize("scsi0", "+1G")
        with pytest.raises(pvekit.PermissionDeniedError):
            auditor.guest(113).update(cores=1)
    finally:
        auditor.close()
