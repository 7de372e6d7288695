"""Pure frame builders (pvekit.frames) on real Proxmox VE bodies from tests/data/pve-fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _paths import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from pvekit import InvalidInputError, frames

ROOT = Path(__file__).resolve().parent.parent
ALL_FIXTURES = sorted(FIXTURES.rglob("*.json"))
GiB = 1024**3


def at(df: pd.DataFrame, row: Any, col: str) -> Any:
    """One cell, typed loosely (pandas-stubs type ``.loc`` cells as a union of scalars)."""
    return df.at[row, col]


def load(rel: str) -> Any:
    return json.loads((FIXTURES / rel).read_text())


def data(rel: str) -> Any:
    return frames.unwrap(load(rel))


LM74 = "luthermonson-go-proxmox/pve7.4/"
RESOURCES = LM74 + "GET_cluster_resources.json"
CLUSTER_STATUS = LM74 + "GET_cluster_status.json"


def assert_documented(df: pd.DataFrame, frame: str, **spec: bool) -> None:
    specs = frames._column_specs(frame, **spec)
    assert list(df.columns) == [c.name for c in specs]
    for c in specs:
        assert str(df[c.name].dtype) == c.dtype, (c.name, df[c.name].dtype)


# --------------------------------------------------------------------------- nodes


def test_nodes_from_real_cluster() -> None:
    status_body = load(LM74 + "GET_nodes_node_status.json")
    df = frames.nodes_frame("p", load(RESOURCES), load(CLUSTER_STATUS), {"node1": status_body})
    assert_documented(df, "nodes")
    assert list(df["node"]) == ["node1", "node2", "node3", "node4"]
    n1 = df.set_index("node").loc["node1"]
    assert n1["profile"] == "p" and n1["status"] == "online" and bool(n1["online"])
    assert n1["cores"] == 8 and n1["mem_total"] == 65919459328
    assert n1["ip"] == "192.168.1.1" and n1["cgroup_mode"] == 2
    # strings in the body ("0.00") become numbers; versions are cleaned up
    assert n1["loadavg_1"] == 0.0 and n1["swap_total"] == 0
    assert n1["pve_version"] == "7.4-16" and n1["kernel"] == "5.15.108-1-pve"
    # nodes without a status body keep their row with nulls there
    n2 = df.set_index("node").loc["node2"]
    assert pd.isna(n2["loadavg_1"]) and pd.isna(n2["swap_used"]) and n2["cores"] == 12


def test_offline_node_row_stays() -> None:
    df = frames.nodes_frame(
        "p",
        load(
            "issues__gethomepage-homepage/unknown/GET_cluster_resources__offline-node-partial.json"
        ),
    )
    off = df.set_index("node").loc["elitedesk"]
    assert off["status"] == "offline" and not off["online"]
    assert pd.isna(off["cpu"]) and pd.isna(off["mem_total"]) and pd.isna(off["uptime"])
    assert df.set_index("node").loc["router-pve", "cores"] == 4


def test_unknown_node_from_nodes_list() -> None:
    df = frames.nodes_frame("p", load("proxmoxer-docs/unknown/GET_nodes.json"))
    assert df["status"].tolist() == ["unknown"] and df["online"].tolist() == [False]
    assert df["mem_total"].isna().all()


def test_node_only_in_cluster_status_is_kept() -> None:
    status = [
        *data(CLUSTER_STATUS),
        {"type": "node", "name": "node9", "online": 0, "ip": "192.168.1.9"},
    ]
    df = frames.nodes_frame("p", load(RESOURCES), status)
    row = df.set_index("node").loc["node9"]
    assert row["status"] == "offline" and not row["online"] and row["ip"] == "192.168.1.9"


# --------------------------------------------------------------------------- guests


def test_guests_basic_from_real_resources() -> None:
    df = frames.guests_frame("p", load(RESOURCES))
    assert_documented(df, "guests")
    assert df["vmid"].tolist() == [100, 101, 102, 200]
    g = df.set_index("vmid")
    assert bool(at(g, 101, "template")) and not bool(at(g, 100, "template"))
    assert at(g, 102, "tags") == ["go-proxmox+cloud-init"] and at(g, 100, "tags") == []
    assert at(g, 100, "cores") == 1 and at(g, 100, "mem_total") == 1073741824
    assert at(g, 100, "status") == "running" and at(g, 102, "status") == "stopped"
    # QEMU's disk is always 0 in resources: recorded as unknown, not as empty
    assert g["disk_used"].isna().all()
    assert at(g, 100, "disk_total") == 34359738368
    assert set(df["type"].cat.categories) == {"qemu"}


def test_guests_string_numbers_pve6_lxc() -> None:
    df = frames.guests_frame("p", load("influxdata-telegraf/unknown/GET_nodes_node_lxc.json"))
    row = df.iloc[0]
    assert row["vmid"] == 111 and row["type"] == "lxc"
    assert row["disk_used"] == 744189952 and row["disk_total"] == 5217320960
    assert not row["template"]


def test_guests_template_empty_string_and_pool_ha_lock() -> None:
    rows = [
        {
            "type": "qemu",
            "vmid": "300",
            "template": "",
            "pool": "prod",
            "hastate": "started",
            "lock": "backup",
            "status": "running",
            "node": "n1",
        },
        {"type": "lxc", "vmid": 301, "status": "stopped", "node": "n1", "future-field": {"x": 1}},
        {"type": "qemu"},  # no vmid at all
        "garbage",
    ]
    df = frames.guests_frame("p", rows)
    assert df["vmid"].tolist()[1:] == [300, 301]
    g = df.dropna(subset=["vmid"]).set_index("vmid")
    assert at(g, 300, "pool") == "prod" and at(g, 300, "ha_state") == "started"
    assert at(g, 300, "lock") == "backup" and not at(g, 300, "template")
    assert pd.isna(at(g, 301, "pool")) and pd.isna(at(g, 301, "cpu"))


def test_guest_details_from_real_lxc_config() -> None:
    resources = [{"type": "lxc", "vmid": 101, "node": "node1", "status": "stopped"}]
    config = load(LM74 + "GET_nodes_node_lxc_vmid_config.json")
    df = frames.guests_frame("p", resources, configs={101: config}, details=True)
    assert_documented(df, "guests", details=True)
    row = df.iloc[0]
    assert row["memory"] == 4096 * 1024**2 and row["swap"] == 512 * 1024**2
    assert pd.isna(row["sockets"]) and pd.isna(row["agent"]) and pd.isna(row["balloon"])
    assert row["ostype"] == "debian" and bool(row["onboot"])
    assert [d["key"] for d in row["disks"]] == ["rootfs", "mp0"]
    assert row["disks"][0]["size"] == 30 * GiB
    assert row["networks"][0]["mac"] == "5D:CF:BD:B2:C5:39"
    assert pd.isna(row["error"])


def test_guest_details_trimmed_pve6_config_gives_nulls() -> None:
    resources = [{"type": "qemu", "vmid": 113, "node": "n", "status": "running"}]
    config = load("influxdata-telegraf/unknown/GET_nodes_node_qemu_vmid_config.json")
    row = frames.guests_frame("p", resources, configs={113: config}, details=True).iloc[0]
    assert row["disks"] == [] and row["networks"] == []
    assert row["sockets"] == 1 and pd.isna(row["memory"]) and row["agent"] == False  # noqa: E712
    assert not row["onboot"]


def test_guest_details_qemu_config_values() -> None:
    config = {
        "cores": 4,
        "sockets": "2",
        "cpu": "cputype=host,flags=+aes",
        "memory": "current=8192",
        "balloon": 2048,
        "agent": "enabled=1,fstrim_cloned_disks=1",
        "boot": "order=scsi0;ide2;net0",
        "scsi0": "local-lvm:vm-100-disk-0,size=32G",
        "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0",
        "ipconfig0": "ip=10.1.2.3/24,gw=10.1.2.1",
        "description": "web server\n",
        "onboot": 1,
    }
    resources = [{"type": "qemu", "vmid": 100, "node": "n", "status": "stopped"}]
    row = frames.guests_frame(
        "p", resources, configs={100: {"data": config}}, details=True, ips=True
    ).iloc[0]
    assert row["sockets"] == 2 and row["cpu_type"] == "host"
    assert row["memory"] == 8 * GiB and row["balloon"] == 2 * GiB
    assert row["agent"] == True  # noqa: E712
    assert row["boot"] == "order=scsi0;ide2;net0" and row["description"] == "web server\n"
    # stopped guest: address comes from cloud-init config
    assert row["ip"] == "10.1.2.3" and row["ip_source"] == "config" and row["ips"] == ["10.1.2.3"]


def test_guest_details_bad_values_record_nulls() -> None:
    config = {
        "agent": "enabled=perhaps",
        "memory": "lots",
        "scsi0": "local:vm-1,size=big",
        "net0": "bridge=vmbr0",
        "sockets": [],
    }
    resources = [{"type": "qemu", "vmid": 100, "node": "n", "status": "running"}]
    row = frames.guests_frame("p", resources, configs={100: config}, details=True).iloc[0]
    assert pd.isna(row["agent"]) and pd.isna(row["memory"]) and row["sockets"] == 1
    assert "size" in row["disks"][0]["error"] and "NIC model" in row["networks"][0]["error"]


@pytest.mark.parametrize(
    ("rel", "mac", "expected"),
    [
        (
            "issues__Telmate-proxmox-api-go/unknown/GET_nodes_node_qemu_vmid_agent_network-get-interfaces.json",
            "02:0C:21:FC:C7:9B",
            ["192.168.0.123"],
        ),
        (
            "issues__xezpeleta-Ansible-Proxmox-inventory/pve6.1/GET_nodes_node_qemu_vmid_agent_network-get-interfaces.json",
            "BE:2A:81:98:BC:AD",
            ["172.16.12.20"],
        ),
    ],
)
def test_agent_interfaces_drop_loopback_and_link_local(
    rel: str, mac: str, expected: list[str]
) -> None:
    body = load(rel)
    config = {"net0": f"virtio={mac.lower()},bridge=vmbr0", "agent": "1"}
    info = frames.guest_ips({"agent_interfaces": body}, config, "qemu")
    assert info["ips"] == expected and info["ip"] == expected[0] and info["ip_source"] == "agent"
    # without the config the same addresses are found (no MAC filter possible)
    assert frames.guest_ips({"agent_interfaces": body}, None, "qemu")["ips"] == expected
    # a NIC whose MAC is not configured on the guest (docker bridge, VPN) is ignored
    other = {"net0": "virtio=AA:AA:AA:AA:AA:AA,bridge=vmbr0"}
    info = frames.guest_ips({"agent_interfaces": body}, other, "qemu")
    assert info["ips"] == [] and info["ip_source"] is None


def test_agent_error_inside_http_200_goes_to_error_column() -> None:
    body = {"data": {"result": {"error": {"class": "CommandNotFound", "desc": "not supported"}}}}
    resources = [{"type": "qemu", "vmid": 100, "node": "n", "status": "running"}]
    config = {"net0": "virtio=AA:BB:CC:DD:EE:FF,bridge=vmbr0", "ipconfig0": "ip=10.0.0.9/24"}
    df = frames.guests_frame(
        "p", resources, configs={100: config}, ip_data={100: {"agent_interfaces": body}}, ips=True
    )
    assert_documented(df, "guests", ips=True)
    row = df.iloc[0]
    assert "not supported" in row["error"] and "CommandNotFound" in row["error"]
    assert row["ip"] == "10.0.0.9" and row["ip_source"] == "config"


def test_windows_fsinfo_without_sizes() -> None:
    fragment = load(
        "issues__rcourtman-Pulse/pve9.0.6/GET_nodes_node_qemu_vmid_agent_get-fsinfo__windows-volume-fragment.json"
    )
    info = frames.guest_ips({"fsinfo": {"data": {"result": [fragment]}}}, None, "qemu")
    assert info["filesystems"] == [
        {"mountpoint": "System Reserved", "type": "FAT32", "total": None, "used": None}
    ]


def test_lxc_interfaces_source() -> None:
    body = [
        {"name": "lo", "hwaddr": "00:00:00:00:00:00", "inet": "127.0.0.1/8", "inet6": "::1/128"},
        {
            "name": "eth0",
            "hwaddr": "bc:24:11:00:00:05",
            "inet": "10.0.0.5/24",
            "inet6": "fe80::be24:11ff:fe00:5/64",
        },
        {"name": "eth1", "hwaddr": "bc:24:11:00:00:06", "inet6": "2001:db8::6/64"},
    ]
    info = frames.guest_ips({"lxc_interfaces": {"data": body}}, None, "lxc")
    assert info["ips"] == ["10.0.0.5", "2001:db8::6"] and info["ip_source"] == "lxc"


def test_errors_column_and_missing_config() -> None:
    resources = [{"type": "qemu", "vmid": 100, "node": "n", "status": "running"}]
    df = frames.guests_frame(
        "p", resources, errors={100: "agent not running"}, details=True, ips=True
    )
    row = df.iloc[0]
    assert row["error"] == "agent not running"
    assert row["disks"] is None and pd.isna(row["memory"]) and row["ips"] == []


# --------------------------------------------------------------------------- storage


def test_storage_from_resources_per_node_and_unique() -> None:
    df = frames.storage_frame("p", load(RESOURCES))
    assert_documented(df, "storage")
    assert len(df) == 12 and set(df["node"]) == {"node1", "node2", "node3", "node4"}
    row = df[(df.node == "node1") & (df.storage == "local-zfs")].iloc[0]
    assert row["content"] == ["images", "rootdir"] and row["type"] == "zfspool"
    assert row["used"] == 14446702592 and row["avail"] == row["total"] - row["used"]
    assert row["used_fraction"] == pytest.approx(14446702592 / 955016175616)
    # no shared storage here: unique changes nothing
    assert len(frames.storage_frame("p", load(RESOURCES), unique=True)) == 12


def test_shared_storage_counted_once_per_cluster() -> None:
    shared = data("issues__Corsinvest-cv4pve-diag/unknown/GET_cluster_resources_type_storage.json")
    rows = [*shared, dict(shared[0], node="other", id="storage/other/truenas-backups")]
    df = frames.storage_frame("p", rows)
    assert (df["storage"] == "truenas-backups").sum() == 2
    uniq = frames.storage_frame("p", rows, unique=True)
    nas = uniq[uniq.storage == "truenas-backups"]
    assert len(nas) == 1 and pd.isna(nas.iloc[0]["node"]) and bool(nas.iloc[0]["shared"])
    assert "import" in at(uniq.set_index("storage"), "local", "content")


def test_old_storage_rows_without_content_and_unknown_status() -> None:
    rows = data(
        "issues__Corsinvest-cv4pve-autosnap/pve6.2-12/GET_cluster_resources_type_storage.json"
    )
    rows = [
        *rows,
        {"type": "storage", "storage": "nfs", "node": "xxx-svr", "status": "unknown", "shared": 1},
    ]
    df = frames.storage_frame("p", rows).set_index("storage")
    assert at(df, "local-lvm", "content") == [] and pd.isna(at(df, "local-lvm", "type"))
    assert at(df, "nfs", "status") == "unknown" and pd.isna(at(df, "nfs", "used"))
    assert not at(df, "nfs", "active")


def test_storage_node_rows_fill_active_enabled_avail() -> None:
    frag = load(
        "issues__Higangssh-homebutler/unknown/GET_cluster_resources__storage-row-fragment.json"
    )
    status = data(
        "issues__Telmate-terraform-provider-proxmox/unknown/GET_nodes_node_storage_storage_status.json"
    )
    node_rows = [
        dict(status, storage="ceph"),
        {"storage": "local-lvm", "active": 1, "enabled": 1, "avail": 123, "used": 5, "total": 10},
    ]
    df = frames.storage_frame("p", [frag], {"pve1": node_rows}).set_index("storage")
    assert at(df, "ceph", "type") == "rbd" and bool(at(df, "ceph", "shared"))
    assert at(df, "ceph", "avail") == 793174016000 and at(df, "ceph", "status") == "available"
    assert at(df, "local-lvm", "avail") == 123 and at(df, "local-lvm", "used") == 5
    assert bool(at(df, "local-lvm", "enabled"))


# --------------------------------------------------------------------------- tasks


def test_tasks_list_running_and_finished() -> None:
    df = frames.tasks_frame(
        "p", load("proxmoxer-docs/pve7.x/GET_nodes_node_tasks_limit_3_source_all.json")
    )
    assert_documented(df, "tasks")
    assert df["status"].tolist() == ["running", "ok", "ok"]
    run = df.iloc[0]
    assert bool(run["running"]) and pd.isna(run["endtime"]) and pd.isna(run["duration"])
    assert run["id"] == "103"
    done = df.iloc[1]
    assert done["duration"] == 5.0 and pd.isna(done["id"]) and done["exitstatus"] == "OK"
    assert str(done["starttime"]) == "2021-11-17 04:09:16+00:00"


def test_task_status_bodies_and_warnings() -> None:
    warn = data("issues__Telmate-proxmox-api-go/unknown/GET_nodes_node_tasks_upid_status.json")
    apt = load("proxmoxer-docs/pve7.x/GET_nodes_node_tasks_upid_status__aptupdate.json")
    failed = {
        "upid": "UPID:n:1:2:3:qmstart:100:root@pam:",
        "status": "stopped",
        "exitstatus": "start failed",
        "starttime": 10,
        "endtime": 20,
        "node": "n",
    }
    df = frames.tasks_frame("p", [warn, apt, failed]).set_index("upid")
    assert at(df, warn["upid"], "status") == "warnings"
    assert at(df, apt["upid"], "status") == "ok"
    assert at(df, failed["upid"], "status") == "error"
    assert at(df, failed["upid"], "exitstatus") == "start failed"


# --------------------------------------------------------------------------- snapshots, backups


def test_snapshots_drop_current() -> None:
    rows = [
        dict(r, node="node1", vmid=101, guest_type="lxc")
        for r in data(LM74 + "GET_nodes_node_lxc_vmid_snapshot.json")
    ]
    df = frames.snapshots_frame("p", rows)
    assert_documented(df, "snapshots")
    assert df["name"].tolist() == ["snapshot1", "snapshot2"]
    assert df.iloc[1]["parent"] == "parent1" and not df.iloc[0]["vmstate"]


def test_backups_from_content_rows() -> None:
    rows = [
        {
            "volid": "local:backup/vzdump-qemu-100-2024_05_01-02_00_00.vma.zst",
            "content": "backup",
            "format": "vma.zst",
            "size": "1234",
            "ctime": 1714528800,
            "node": "n1",
            "notes": "nightly",
            "protected": 1,
        },
        {
            "volid": "pbs:backup/ct/101/2024-05-01T02:00:00Z",
            "content": "backup",
            "vmid": 101,
            "subtype": "lxc",
            "format": "pbs-ct",
            "size": 99,
            "ctime": 1714528800,
            "node": "n1",
            "storage": "pbs",
            "verification": {"state": "ok", "upid": "x"},
        },
        {"volid": "local:iso/debian.iso", "content": "iso", "node": "n1"},
        {"volid": "local:backup/vzdump-qemu-100-2024_05_01-02_00_00.vma.zst", "node": "n2"},
    ]
    df = frames.backups_frame("p", rows)
    assert_documented(df, "backups")
    assert df["vmid"].tolist() == [100, 101]
    first = df.iloc[0]
    assert first["guest_type"] == "qemu" and first["storage"] == "local" and first["size"] == 1234
    assert bool(first["protected"]) and pd.isna(first["verified"])
    assert bool(df.iloc[1]["verified"]) and df.iloc[1]["guest_type"] == "lxc"


# --------------------------------------------------------------------------- metrics, summary


def test_metrics_long_format_template_rrd() -> None:
    body = load(LM74 + "GET_nodes_node_qemu_vmid_rrddata_timeframe_hour.json")
    df = frames.metrics_frame("p", "guest", [("101", "node1", body)])
    assert_documented(df, "metrics")
    assert set(df["metric"].astype(str)) == {"maxcpu", "maxmem", "maxdisk", "disk"}
    assert len(df) == 4 * len(body["data"])
    assert (df["target"] == "101").all() and str(df["time"].dt.tz) == "UTC"


def test_metrics_fractional_counters_and_null_rows() -> None:
    rows = [
        *load(
            "pages__forum.proxmox.com/unknown/GET_nodes_node_qemu_vmid_rrddata_timeframe_hour__running-vm-partial.json"
        ),
        {"time": 1654613820, "cpu": None, "mem": None},
    ]
    df = frames.metrics_frame("p", "guest", [("100", "n", rows)])
    mem = df[df.metric == "mem"]["value"]
    assert mem.iloc[0] == pytest.approx(8468508117.03333)
    assert df["time"].max() == pd.Timestamp(1654613760, unit="s", tz="UTC")


def test_summary_weighted_cpu_and_quorum() -> None:
    res = data(RESOURCES)
    df = frames.summary_frame("p", res, load(CLUSTER_STATUS), {"data": {"version": "7.4-16"}})
    assert_documented(df, "summary")
    row = df.iloc[0]
    nodes = [r for r in res if r["type"] == "node"]
    expected = sum(r["cpu"] * r["maxcpu"] for r in nodes) / sum(r["maxcpu"] for r in nodes)
    assert row["cpu"] == pytest.approx(expected)
    assert row["cores"] == 28 and row["nodes_online"] == 4 and row["nodes_total"] == 4
    assert bool(row["quorate"]) and row["version"] == "7.4-16"
    assert row["guests_total"] == 3 and row["guests_running"] == 1  # template 101 excluded


def test_summary_skips_unknown_storage_and_counts_shared_once() -> None:
    rows = [
        {
            "type": "node",
            "node": "a",
            "status": "online",
            "cpu": 0.5,
            "maxcpu": 2,
            "mem": 1,
            "maxmem": 2,
        },
        {
            "type": "node",
            "node": "b",
            "status": "online",
            "cpu": 0.1,
            "maxcpu": 8,
            "mem": 1,
            "maxmem": 2,
        },
        {"type": "node", "node": "c", "status": "offline"},
        {
            "type": "storage",
            "node": "a",
            "storage": "ceph",
            "shared": 1,
            "status": "available",
            "disk": 10,
            "maxdisk": 100,
        },
        {
            "type": "storage",
            "node": "b",
            "storage": "ceph",
            "shared": 1,
            "status": "available",
            "disk": 10,
            "maxdisk": 100,
        },
        {
            "type": "storage",
            "node": "a",
            "storage": "local",
            "shared": 0,
            "status": "available",
            "disk": 1,
            "maxdisk": 10,
        },
        {
            "type": "storage",
            "node": "b",
            "storage": "local",
            "shared": 0,
            "status": "available",
            "disk": 2,
            "maxdisk": 10,
        },
        {
            "type": "storage",
            "node": "c",
            "storage": "local",
            "shared": 0,
            "status": "unknown",
            "disk": 5,
            "maxdisk": 10,
        },
    ]
    row = frames.summary_frame("p", rows, [{"type": "node", "name": "a", "online": 1}]).iloc[0]
    assert row["cpu"] == pytest.approx((0.5 * 2 + 0.1 * 8) / 10)
    assert row["storage_used"] == 13 and row["storage_total"] == 120
    assert row["nodes_online"] == 2 and row["nodes_total"] == 3
    assert pd.isna(row["quorate"])  # standalone: no cluster entry


# --------------------------------------------------------------------------- robustness, docs


BUILDERS = {
    "nodes": lambda body: frames.nodes_frame("p", body, body, {"x": body}),
    "guests": lambda body: frames.guests_frame(
        "p",
        body,
        configs={1: body},
        ip_data={1: {"agent_interfaces": body, "fsinfo": body, "lxc_interfaces": body}},
        details=True,
        ips=True,
    ),
    "storage": lambda body: frames.storage_frame("p", body, {"n": body}, unique=True),
    "tasks": lambda body: frames.tasks_frame("p", body),
    "backups": lambda body: frames.backups_frame("p", body),
    "snapshots": lambda body: frames.snapshots_frame("p", body),
    "metrics": lambda body: frames.metrics_frame("p", "node", [("t", "n", body)]),
    "summary": lambda body: frames.summary_frame("p", body, body, body),
    "disks": lambda body: frames.disks_frame("p", "n", body),
    "smart": lambda body: frames.smart_frame("p", "n", "/dev/sda", body),
    "updates": lambda body: frames.updates_frame("p", "n", body),
    "content": lambda body: frames.content_frame("p", "n", "s", body),
    "appliances": lambda body: frames.appliances_frame("p", "n", body),
}


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_builder_survives_every_fixture(path: Path) -> None:
    body = json.loads(path.read_text())
    for name, build in BUILDERS.items():
        df = build(body)
        assert isinstance(df, pd.DataFrame), name
        assert next(iter(df.columns)) == "profile"


def test_fixtures_present() -> None:
    assert len(ALL_FIXTURES) >= 40


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "vmid",
                    "node",
                    "status",
                    "cpu",
                    "maxcpu",
                    "mem",
                    "disk",
                    "time",
                    "storage",
                    "shared",
                    "content",
                    "upid",
                    "name",
                    "net0",
                    "scsi0",
                    "agent",
                    "result",
                    "data",
                    "ip-addresses",
                    "template",
                    "tags",
                    "endtime",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=40, deadline=None)
@given(json_values, st.sampled_from(["bare", "list", "wrapped"]))
def test_builders_never_raise_on_junk(body: Any, wrap: str) -> None:
    shaped = {"bare": body, "list": [body], "wrapped": {"data": [body]}}[wrap]
    for build in BUILDERS.values():
        assert isinstance(build(shaped), pd.DataFrame)


def test_empty_frames_have_documented_dtypes() -> None:
    for name in (
        "nodes",
        "guests",
        "storage",
        "tasks",
        "backups",
        "snapshots",
        "metrics",
        "summary",
        "group_status",
        "disks",
        "smart",
        "updates",
        "content",
        "appliances",
    ):
        assert_documented(frames.empty_frame(name), name)
    assert_documented(
        frames.empty_frame("guests", details=True, ips=True), "guests", details=True, ips=True
    )


def test_apply_dtypes_after_concat_restores_categories() -> None:
    a = frames.guests_frame("a", load(RESOURCES))
    b = frames.guests_frame("b", data("influxdata-telegraf/unknown/GET_nodes_node_lxc.json"))
    both = pd.concat([a, b], ignore_index=True)
    assert str(both["type"].dtype) != "category" or set(both["type"].cat.categories) == {
        "qemu",
        "lxc",
    }
    frames.apply_dtypes(both, "guests")
    assert_documented(both, "guests")


def test_unknown_frame_name_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="unknown frame"):
        frames.columns("vms")


def test_docs_frames_md_matches_columns() -> None:
    text = (ROOT / "docs" / "frames.md").read_text()
    assert text == frames.reference_markdown(), (
        "docs/frames.md is stale: run `python -m pvekit.frames > docs/frames.md`"
    )
    for specs in frames.COLUMNS.values():
        for c in specs:
            assert f"| `{c.name}` | `{c.dtype}` |" in text
