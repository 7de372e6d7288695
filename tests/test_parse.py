"""Proxmox config-string and size parsers (pvekit._parse)."""

from __future__ import annotations

import contextlib
import json

import pytest
from _paths import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from pvekit import InvalidInputError
from pvekit._parse import (
    ConfigStringError,
    InvalidSizeError,
    format_size,
    is_disk_key,
    parse_agent,
    parse_disk,
    parse_disks,
    parse_ipconfig,
    parse_kv,
    parse_net,
    parse_networks,
    parse_size,
    parse_tags,
    strip_prefix,
)

GiB = 1024**3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("32G", 32 * GiB),
        ("512M", 512 * 1024**2),
        ("1T", 1024**4),
        ("+10G", 10 * GiB),
        ("4K", 4096),
        ("1024", 1024),
        ("1.5G", 3 * GiB // 2),
        ("30g", 30 * GiB),
        ("2GiB", 2 * GiB),
        (" 8G ", 8 * GiB),
        (0, 0),
        (4096, 4096),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "32X", "-5G", "ten", "1.2.3G", "++1G", None, True, -1])
def test_parse_size_rejects_garbage(text: object) -> None:
    with pytest.raises(InvalidSizeError) as info:
        parse_size(text)  # type: ignore[arg-type]
    assert isinstance(info.value, InvalidInputError)
    assert "invalid size" in str(info.value)


def test_format_size_is_exact() -> None:
    assert format_size(32 * GiB) == "32G"
    assert format_size(512 * 1024**2) == "512M"
    assert format_size(1536 * 1024**2) == "1536M"
    assert format_size(1000) == "1000"
    assert format_size(0) == "0"
    with pytest.raises(InvalidSizeError):
        format_size(-1)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=2**60))
def test_size_roundtrip(n: int) -> None:
    assert parse_size(format_size(n)) == n


def test_parse_kv_positional_and_errors() -> None:
    assert parse_kv("local:iso/x.iso,media=cdrom", default_key="file") == {
        "file": "local:iso/x.iso",
        "media": "cdrom",
    }
    with pytest.raises(ConfigStringError, match="without '='"):
        parse_kv("a,b")
    with pytest.raises(ConfigStringError, match="empty"):
        parse_kv("   ")
    with pytest.raises(ConfigStringError, match="empty key"):
        parse_kv("=1")
    with pytest.raises(ConfigStringError, match="expected a string"):
        parse_kv(["x"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("enabled=1,fstrim_cloned_disks=1", True),
        ("1", True),
        (1, True),
        ("0", False),
        (0, False),
        ("enabled=0,fstrim_cloned_disks=1", False),
        ("1,type=virtio", True),
        ("fstrim_cloned_disks=1", False),  # enabled defaults to 0 in Proxmox
        (None, False),
        (True, True),
    ],
)
def test_parse_agent(value: object, expected: bool) -> None:
    assert parse_agent(value) is expected


@pytest.mark.parametrize("value", ["enabled=maybe", 2, "yes please", ""])
def test_parse_agent_malformed(value: object) -> None:
    with pytest.raises(ConfigStringError):
        parse_agent(value)


def test_parse_qemu_disks() -> None:
    d = parse_disk("scsi0", "local-lvm:vm-100-disk-0,iothread=1,size=32G,ssd=1,discard=on")
    assert d["storage"] == "local-lvm"
    assert d["volume"] == "vm-100-disk-0"
    assert d["size"] == 32 * GiB
    assert d["iothread"] is True and d["ssd"] is True and d["discard"] == "on"
    assert d["backup"] is True and d["mountpoint"] is None and d["media"] == "disk"

    v = parse_disk("virtio0", "ceph:vm-101-disk-1,cache=writeback,backup=0,size=100G")
    assert v["cache"] == "writeback" and v["backup"] is False and v["iothread"] is None

    s = parse_disk("sata0", "nfs:100/vm-100-disk-2.qcow2,format=qcow2,size=512M")
    assert s["format"] == "qcow2" and s["volume"] == "100/vm-100-disk-2.qcow2"

    cd = parse_disk("ide2", "local:iso/debian-12.iso,media=cdrom,size=628M")
    assert cd["media"] == "cdrom" and cd["storage"] == "local" and cd["size"] == 628 * 1024**2
    empty = parse_disk("ide2", "none,media=cdrom")
    assert empty["storage"] is None and empty["volume"] == "none" and empty["size"] is None

    efi = parse_disk("efidisk0", "local-lvm:vm-100-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M")
    assert efi["size"] == 4 * 1024**2 and efi["storage"] == "local-lvm"
    tpm = parse_disk("tpmstate0", "local-lvm:vm-100-disk-2,size=4M,version=v2.0")
    assert tpm["key"] == "tpmstate0" and tpm["size"] == 4 * 1024**2

    passthrough = parse_disk("scsi1", "/dev/disk/by-id/ata-X,size=1T")
    assert passthrough["storage"] is None and passthrough["volume"] == "/dev/disk/by-id/ata-X"


def test_parse_lxc_volumes() -> None:
    root = parse_disk("rootfs", "vmstore:subvol-101-disk-0,size=30G", "lxc")
    assert root["mountpoint"] == "/" and root["backup"] is True and root["size"] == 30 * GiB
    mp = parse_disk("mp0", "local-zfs:subvol-101-disk-1,mp=/srv/data,size=8G", "lxc")
    assert mp["mountpoint"] == "/srv/data" and mp["backup"] is False
    mp_backed = parse_disk("mp1", "local-zfs:subvol-101-disk-2,mp=/var,backup=1,size=1G", "lxc")
    assert mp_backed["backup"] is True
    bind = parse_disk("mp0", "/mnt/foo/bar,mp=/storage", "lxc")
    assert bind["storage"] is None and bind["volume"] == "/mnt/foo/bar"
    assert bind["size"] is None and bind["mountpoint"] == "/storage"


@pytest.mark.parametrize(
    "value",
    ["size=32G", "local:vm-1,size=huge", "local:vm-1,iothread=perhaps", "a,b"],
)
def test_parse_disk_malformed(value: str) -> None:
    with pytest.raises(ConfigStringError):
        parse_disk("scsi0", value)


def test_is_disk_key() -> None:
    for key in ("scsi0", "virtio15", "sata5", "ide2", "efidisk0", "tpmstate0"):
        assert is_disk_key(key, "qemu")
    for key in ("unused0", "net0", "scsihw", "rootfs", "mp0"):
        assert not is_disk_key(key, "qemu")
    assert is_disk_key("rootfs", "lxc") and is_disk_key("mp10", "lxc")
    assert not is_disk_key("scsi0", "lxc")


def test_parse_disks_orders_and_tolerates_bad_entries() -> None:
    config = {
        "scsi10": "local:vm-1-disk-2,size=1G",
        "scsi2": "local:vm-1-disk-1,size=2G",
        "ide2": "none,media=cdrom",
        "virtio0": "local:vm-1-disk-0,size=oops",
        "unused0": "local:vm-1-disk-9",
        "scsihw": "virtio-scsi-single",
    }
    disks = parse_disks(config, "qemu")
    assert [d["key"] for d in disks] == ["ide2", "scsi2", "scsi10", "virtio0"]
    bad = disks[-1]
    assert "oops" in bad["error"] and bad["size"] is None


def test_parse_qemu_net_both_forms() -> None:
    n = parse_net("net0", "virtio=bc:24:11:aa:bb:cc,bridge=vmbr0,firewall=1,tag=20,rate=12.5")
    assert n["model"] == "virtio" and n["mac"] == "BC:24:11:AA:BB:CC"
    assert (
        n["bridge"] == "vmbr0" and n["vlan"] == 20 and n["firewall"] is True and n["rate"] == 12.5
    )
    m = parse_net("net1", "model=e1000,macaddr=BC:24:11:00:00:01,bridge=vmbr1")
    assert m["model"] == "e1000" and m["mac"] == "BC:24:11:00:00:01" and m["firewall"] is False
    assert m["vlan"] is None and m["ip"] is None
    with pytest.raises(ConfigStringError, match="no NIC model"):
        parse_net("net0", "bridge=vmbr0")
    with pytest.raises(ConfigStringError, match="tag"):
        parse_net("net0", "virtio=AA:BB:CC:DD:EE:FF,tag=ten")


def test_parse_lxc_net_from_real_config() -> None:
    body = json.loads(
        (
            FIXTURES / "luthermonson-go-proxmox/pve7.4/GET_nodes_node_lxc_vmid_config.json"
        ).read_text()
    )
    nets = parse_networks(body["data"], "lxc")
    assert nets == [
        {
            "key": "net0",
            "model": "veth",
            "mac": "5D:CF:BD:B2:C5:39",
            "bridge": "vmbr0",
            "vlan": None,
            "firewall": True,
            "rate": None,
            "ip": "dhcp",
            "gateway": None,
            "name": "eth0",
        }
    ]
    disks = parse_disks(body["data"], "lxc")
    assert [d["key"] for d in disks] == ["rootfs", "mp0"]
    assert disks[0]["storage"] == "vmstore" and disks[0]["size"] == 30 * GiB


def test_ipconfig_joins_qemu_networks() -> None:
    assert parse_ipconfig("ip=10.0.0.5/24,gw=10.0.0.1") == {
        "ip": "10.0.0.5/24",
        "gateway": "10.0.0.1",
        "ip6": None,
        "gateway6": None,
    }
    nets = parse_networks(
        {
            "net0": "virtio=AA:BB:CC:DD:EE:01,bridge=vmbr0",
            "ipconfig0": "ip=10.0.0.5/24,gw=10.0.0.1",
            "net1": "virtio=AA:BB:CC:DD:EE:02,bridge=vmbr1",
            "ipconfig1": "ip=dhcp",
        },
        "qemu",
    )
    assert (nets[0]["ip"], nets[0]["gateway"]) == ("10.0.0.5/24", "10.0.0.1")
    assert nets[1]["ip"] == "dhcp"
    lxc = parse_networks({"net0": "name=eth0,bridge=vmbr0,ip=192.168.1.9/24,gw=192.168.1.1"}, "lxc")
    assert (lxc[0]["ip"], lxc[0]["gateway"]) == ("192.168.1.9/24", "192.168.1.1")


def test_strip_prefix() -> None:
    assert strip_prefix("10.0.0.5/24") == "10.0.0.5"
    assert strip_prefix("2001:db8::5/64") == "2001:db8::5"
    assert strip_prefix("dhcp") is None
    assert strip_prefix("manual") is None
    assert strip_prefix(None) is None


def test_parse_tags() -> None:
    assert parse_tags("tag1;tag2") == ["tag1", "tag2"]
    assert parse_tags("go-proxmox+cloud-init") == ["go-proxmox+cloud-init"]
    assert parse_tags("a, b c;a") == ["a", "b", "c"]
    assert parse_tags("") == []
    assert parse_tags(None) == []
    assert parse_tags(5) == []


@settings(deadline=None, max_examples=80)
@given(st.text(max_size=60))
def test_parsers_raise_only_config_errors(text: str) -> None:
    for fn in (
        lambda t: parse_disk("scsi0", t),
        lambda t: parse_disk("mp0", t, "lxc"),
        lambda t: parse_net("net0", t),
        lambda t: parse_net("net0", t, "lxc"),
        parse_agent,
        parse_ipconfig,
        parse_size,
    ):
        with contextlib.suppress(ConfigStringError):
            fn(text)
