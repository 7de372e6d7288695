"""The column-wise frame builders give exactly what the row-wise ones gave.

``tests/_frames_rowwise.py`` is the row-wise implementation of pvekit 0.1.0 (each value
converted on its own, then cast column by column), kept as the oracle. Every builder is run
with both on the real bodies of tests/data/pve-fixtures, on the bodies the simulator serves
(what a Cluster passes to the builders), and on hypothesis-generated messy input (numbers as
strings, missing keys, nulls, bools where numbers go, epochs out of range, NaN and infinity,
integers beyond int64): the frames must have the same columns, order, dtypes (including the
categories and their dtype), values, nulls, lists and tz-aware times. Where the old code
raised, the new must raise the same exception type.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import _frames_rowwise as old
import numpy as np
import pandas as pd
import pytest
from _paths import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvekit import frames as new

ALL_FIXTURES = sorted(FIXTURES.rglob("*.json"))


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same frame to the last detail a user (or the history store) can see."""
    assert list(got.columns) == list(want.columns)
    assert [repr(d) for d in got.dtypes] == [repr(d) for d in want.dtypes]
    assert type(got.index) is type(want.index) and got.index.equals(want.index)
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_categorical=True)
    for name in got.columns:
        a, b = got[name], want[name]
        if isinstance(b.dtype, pd.CategoricalDtype):
            assert list(a.cat.categories) == list(b.cat.categories), name
            assert a.cat.categories.dtype == b.cat.categories.dtype, name
            assert a.cat.codes.dtype == b.cat.codes.dtype, name
            assert a.cat.codes.tolist() == b.cat.codes.tolist(), name
        elif b.dtype == object:
            # Lists (of dicts) compared with their types: repr tells [1] from [1.0], None
            # from NaN, and keeps NaN inside a list equal to itself.
            assert [type(v) for v in a] == [type(v) for v in b], name
            assert repr(a.tolist()) == repr(b.tolist()), name
        elif b.dtype.kind == "M":
            assert a.dt.tz is not None and str(a.dt.tz) == str(b.dt.tz), name


def outcome(build: Callable[[], pd.DataFrame]) -> pd.DataFrame | type[BaseException]:
    try:
        return build()
    except Exception as exc:  # the old builders' own failures (e.g. float(10**400))
        return type(exc)


def check(call: Callable[[Any], pd.DataFrame]) -> None:
    """Run ``call`` with the new module and the oracle; same frame or same exception."""
    got, want = outcome(lambda: call(new)), outcome(lambda: call(old))
    if isinstance(want, type):
        assert got is want, f"old raised {want.__name__}, new gave {got!r}"
        return
    assert isinstance(got, pd.DataFrame), f"new raised {got}, old gave a frame"
    assert_same(got, want)


BUILDERS: dict[str, Callable[[Any, Any], pd.DataFrame]] = {
    "nodes": lambda m, body: m.nodes_frame("p", body, body, {"x": body}),
    "guests": lambda m, body: m.guests_frame("p", body),
    "guests_details": lambda m, body: m.guests_frame(
        "p", body, configs={1: body, 100: body}, errors={1: "boom"}, details=True
    ),
    "guests_all": lambda m, body: m.guests_frame(
        "p",
        body,
        configs={1: body},
        ip_data={1: {"agent_interfaces": body, "fsinfo": body, "lxc_interfaces": body}},
        details=True,
        ips=True,
    ),
    "storage": lambda m, body: m.storage_frame("p", body, {"n": body}),
    "storage_unique": lambda m, body: m.storage_frame("p", body, {"n": body}, unique=True),
    "tasks": lambda m, body: m.tasks_frame("p", body),
    "backups": lambda m, body: m.backups_frame("p", body),
    "snapshots": lambda m, body: m.snapshots_frame("p", body),
    "metrics": lambda m, body: m.metrics_frame("p", "node", [("t", "n", body), (7, None, body)]),
    "summary": lambda m, body: m.summary_frame("p", body, body, body),
    "disks": lambda m, body: m.disks_frame("p", "n", body),
    "smart": lambda m, body: m.smart_frame("p", "n", "/dev/sda", body),
    "updates": lambda m, body: m.updates_frame("p", "n", body),
    "content": lambda m, body: m.content_frame("p", "n", "s", body),
    "appliances": lambda m, body: m.appliances_frame("p", "n", body),
}


# --------------------------------------------------------------------------- real bodies


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_builder_on_every_fixture(path: Any) -> None:
    body = json.loads(path.read_text())
    for build in BUILDERS.values():
        check(lambda m, build=build: build(m, body))


def fixture(rel: str) -> Any:
    return json.loads((FIXTURES / rel).read_text())


def test_real_cluster_combined() -> None:
    lm = "luthermonson-go-proxmox/pve7.4/"
    resources = fixture(lm + "GET_cluster_resources.json")
    status = fixture(lm + "GET_cluster_status.json")
    node_status = {"node1": fixture(lm + "GET_nodes_node_status.json")}
    lxc = fixture(lm + "GET_nodes_node_lxc_vmid_config.json")
    check(lambda m: m.nodes_frame("p", resources, status, node_status))
    check(lambda m: m.summary_frame("p", resources, status, {"version": "8.2.4"}))
    for unique in (False, True):
        check(lambda m, u=unique: m.storage_frame("p", resources, unique=u))
    check(
        lambda m: m.guests_frame(
            "p", resources, configs={101: lxc, 102: lxc}, errors={103: "x"}, details=True
        )
    )


def recorded_builder_calls() -> Iterator[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """The arguments a Cluster passes to every builder, recorded on the demo simulator
    (in-process): guests with details and IPs, tasks, backups, snapshots, metrics, node
    tables."""
    import pvekit
    from pvekit.sim import Simulator

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    names = [n for n in dir(new) if n.endswith("_frame") and n != "empty_frame"]
    saved = {n: getattr(new, n) for n in names}

    def recorder(name: str) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, args, kwargs))
            return saved[name](*args, **kwargs)

        return record

    mp = pytest.MonkeyPatch()
    try:
        for n in names:
            mp.setattr(new, n, recorder(n))
        with Simulator("demo", seed=3, inprocess=True) as sim:
            c = pvekit.connect(**sim["prod"].connect_kwargs("root", inprocess=True), cache=False)
            try:
                c.nodes()
                c.guests(details=True, ips=True)
                c.storage()
                c.storage(unique=True)
                c.summary()
                c.tasks()
                c.backups()
                c.snapshots()
                c.metrics("node")
                c.metrics("guest", list(c.guests()["vmid"][:5]))
                c.metrics("storage")
                node = c.node("pve1")
                node.disks()
                node.updates()
                node.appliances()
                node.content("local")
                disk = str(node.disks()["devpath"].iloc[0])
                node.smart(disk)
            finally:
                c.close()
    finally:
        mp.undo()
    yield from calls


def test_bodies_the_simulator_serves() -> None:
    seen = set()
    for name, args, kwargs in recorded_builder_calls():
        seen.add(name)
        check(lambda m, name=name, args=args, kwargs=kwargs: getattr(m, name)(*args, **kwargs))
    assert {"nodes_frame", "guests_frame", "storage_frame", "tasks_frame", "backups_frame"} <= seen
    assert {"snapshots_frame", "metrics_frame", "summary_frame", "disks_frame"} <= seen
    assert {"updates_frame", "content_frame", "appliances_frame", "smart_frame"} <= seen


def test_large_scenario_bodies() -> None:
    """5,000 guests with their configs, as the large scenario serves them."""
    import pvekit
    from pvekit.sim import Simulator

    with Simulator("large", nodes=4, guests=400, inprocess=True) as sim:
        c = pvekit.connect(**sim["large"].connect_kwargs("root", inprocess=True), cache=False)
        try:
            resources = c.resources()
            status = c.get("/cluster/status")
            configs = {
                int(r["vmid"]): c.get(f"/nodes/{r['node']}/{r['type']}/{r['vmid']}/config")
                for r in resources
                if r.get("type") in ("qemu", "lxc") and r.get("status") is not None
            }
        finally:
            c.close()
    check(lambda m: m.guests_frame("large", resources))
    check(lambda m: m.guests_frame("large", resources, configs=configs, details=True))
    check(lambda m: m.nodes_frame("large", resources, status))
    check(lambda m: m.storage_frame("large", resources))
    check(lambda m: m.summary_frame("large", resources, status))


def test_empty_frames() -> None:
    for name in new.COLUMNS:
        if name.startswith("guests_"):
            continue
        check(lambda m, name=name: m.empty_frame(name))
    check(lambda m: m.empty_frame("guests", details=True, ips=True))


# --------------------------------------------------------------------------- messy input

_SPECIAL_NUMBERS = [
    0,
    1,
    -1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) + 1,
    2**64,
    10**30,
    0.5,
    2.5,
    -0.0,
    1.7e9,
    9.2e9,
    -9.2e9,
    9.3e9,
    1e300,
    math.nan,
    math.inf,
    -math.inf,
]
_MESSY_TEXT = [
    "",
    " ",
    "0",
    "1",
    "12",
    " 42 ",
    "3.7",
    "-2.5",
    "1e3",
    "1e400",
    "nan",
    "inf",
    "-inf",
    "N/A",
    "yes",
    "off",
    "TRUE",
    "None",
    "9223372036854775808",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(_SPECIAL_NUMBERS),
    st.floats(),
    st.sampled_from(_MESSY_TEXT),
    st.text(max_size=5),
)
messy = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["state", "used", "total", "release"]), scalars, max_size=2),
)


def field(*realistic: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(realistic), messy) if realistic else messy


def rows(fields: dict[str, st.SearchStrategy[Any]], max_size: int = 6) -> Any:
    row = st.fixed_dictionaries({}, optional=fields)
    return st.lists(row, max_size=max_size)


GUEST_ROW = {
    "type": field("qemu", "lxc", "node", "storage"),
    "vmid": field(100, 101, "102", 103.0, 1),
    "name": field("web", "db"),
    "node": field("pve1", "pve2"),
    "status": field("running", "stopped", "online", "offline", "available", "unknown"),
    "template": field(0, 1, "1", ""),
    "tags": field("a;b", "prod,web", "", ["x", "y"]),
    "pool": field("pool1", ""),
    "hastate": field("started"),
    "lock": field("backup"),
    "cpu": field(0.25, "0.5"),
    "maxcpu": field(2, 4, "8"),
    "mem": field(2**30, "1024"),
    "maxmem": field(2**31),
    "disk": field(0, 10**9),
    "maxdisk": field(10**10),
    "uptime": field(3600),
    "netin": field(1),
    "netout": field(2),
    "diskread": field(3),
    "diskwrite": field(4),
    "storage": field("local", "ceph"),
    "shared": field(0, 1),
    "plugintype": field("dir", "rbd"),
    "content": field("images,rootdir", "backup,iso", ["images"]),
    "level": field("", "c"),
    "cgroup-mode": field(2),
}
CONFIG = {
    "cpu": field("host", "cputype=x86-64-v2-AES,flags=+aes", "=bad"),
    "agent": field("1", "enabled=1,fstrim_cloned_disks=1", "0", "bad=1=2"),
    "sockets": field(1, 2, "2"),
    "memory": field(2048, "4096", "current=4096", "current=x"),
    "balloon": field(0, 1024),
    "swap": field(512),
    "scsi0": field("local-lvm:vm-100-disk-0,size=32G,iothread=1", "local:iso/x.iso,media=cdrom"),
    "rootfs": field("local:subvol-101-disk-0,size=8G"),
    "mp0": field("/mnt/data,mp=/data"),
    "net0": field(
        "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1,tag=10",
        "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:02,ip=10.0.0.5/24,gw=10.0.0.1",
    ),
    "ipconfig0": field("ip=10.0.0.9/24,gw=10.0.0.1,ip6=2001:db8::9/64", "ip=dhcp"),
    "ostype": field("l26", "debian"),
    "boot": field("order=scsi0;net0"),
    "onboot": field(0, 1),
    "description": field("notes"),
}
NODE_STATUS = st.fixed_dictionaries(
    {},
    optional={
        "cpu": messy,
        "uptime": messy,
        "memory": st.fixed_dictionaries({}, optional={"used": messy, "total": messy}) | messy,
        "rootfs": st.fixed_dictionaries({}, optional={"used": messy, "total": messy}),
        "swap": st.fixed_dictionaries({}, optional={"used": messy, "total": messy}),
        "cpuinfo": st.fixed_dictionaries(
            {}, optional={"cpus": messy, "model": messy, "sockets": messy}
        ),
        "loadavg": st.lists(scalars, max_size=4) | messy,
        "pveversion": field("pve-manager/8.2.4/faa83925c9641325", "x/y"),
        "kversion": field("Linux 6.8.12-1-pve #1 SMP", "weird"),
        "current-kernel": st.fixed_dictionaries({}, optional={"release": messy}),
    },
)
CLUSTER_STATUS_ROW = {
    "type": field("node", "cluster"),
    "name": field("pve1", "pve2", "pve9", "clu"),
    "online": field(0, 1),
    "ip": field("10.0.0.1"),
    "level": field("c", ""),
    "quorate": field(0, 1),
}
NODE_STORAGE_ROW = {
    "storage": field("local", "ceph", "nfs"),
    "active": field(0, 1),
    "enabled": field(0, 1),
    "type": field("dir", "rbd"),
    "content": field("images", "backup,iso"),
    "shared": field(0, 1),
    "used": field(10, 0),
    "total": field(100, 0),
    "avail": field(90),
    "used_fraction": field(0.1),
}
TASK_ROW = {
    "upid": field("UPID:pve1:00001:00002:65000000:qmstart:100:root@pam:", "u2", ""),
    "node": field("pve1"),
    "type": field("qmstart", "vzdump"),
    "id": field("100", ""),
    "user": field("root@pam", "api@pve!tok", "!"),
    "tokenid": field("tok"),
    "status": field("OK", "running", "RUNNING", "stopped", "WARNINGS: 2", "job errors"),
    "exitstatus": field("OK", "WARNINGS: 1", "failed"),
    "starttime": field(1.7e9, "1700000000"),
    "endtime": field(1.7e9 + 60, "", None),
    "saved": field(0, 1, "0"),
}
BACKUP_ROW = {
    "volid": field(
        "local:backup/vzdump-qemu-100-2024_01_01-00_00_00.vma.zst",
        "pbs:backup/vzdump-openvz-7-x.tar",
        "nfs:backup/other.tar",
        "",
    ),
    "content": field("backup", "iso"),
    "subtype": field("qemu", "lxc", "openvz"),
    "vmid": field(100, "101"),
    "verification": st.fixed_dictionaries({}, optional={"state": field("ok", "failed", "")})
    | messy,
    "node": field("pve1"),
    "storage": field("local", ""),
    "format": field("vma.zst"),
    "size": field(10**9),
    "ctime": field(1.7e9),
    "notes": field("n"),
    "protected": field(0, 1),
}
SNAPSHOT_ROW = {
    "name": field("snap1", "current", "before-upgrade"),
    "node": field("pve1"),
    "vmid": field(100, "101"),
    "guest_type": field("qemu", "lxc"),
    "description": field("You are here!"),
    "snaptime": field(1.7e9),
    "vmstate": field(0, 1),
    "parent": field("snap1"),
}
METRIC_ROW = {
    "time": field(1.7e9, "1700000060"),
    "cpu": field(0.1),
    "mem": field(2**30),
    "maxmem": field(2**31),
    "netin": field(12.5),
    "used": field("12"),
    "total": field(None),
}
DISK_ROW = {
    k: field()
    for k in (
        "devpath",
        "type",
        "model",
        "serial",
        "size",
        "used",
        "health",
        "wearout",
        "rpm",
        "gpt",
        "mounted",
        "osdid",
        "wwn",
        "parent",
    )
} | {"vendor": field("  ATA  ", "")}
SMART_ROW = {
    k: field() for k in ("id", "name", "value", "worst", "threshold", "raw", "fail", "flags")
}
UPDATE_ROW = {
    k: field()
    for k in (
        "Package",
        "OldVersion",
        "Version",
        "Origin",
        "Arch",
        "Priority",
        "Section",
        "Title",
        "Description",
    )
}
CONTENT_ROW = {
    k: field()
    for k in (
        "volid",
        "content",
        "format",
        "size",
        "used",
        "vmid",
        "ctime",
        "notes",
        "protected",
        "parent",
    )
}
APPLIANCE_ROW = {
    k: field()
    for k in (
        "template",
        "package",
        "version",
        "os",
        "section",
        "type",
        "headline",
        "location",
        "sha512sum",
        "architecture",
    )
}

MESSY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def envelope(body: Any, how: int) -> Any:
    return [body, {"data": body}, body][how]


@MESSY
@given(
    rows(GUEST_ROW, 8),
    rows(CLUSTER_STATUS_ROW),
    st.dictionaries(st.sampled_from(["pve1", "pve2", "x"]), NODE_STATUS | messy, max_size=3),
    st.integers(0, 2),
)
def test_nodes_and_summary_on_messy_input(
    resources: Any, status: Any, node_status: Any, how: int
) -> None:
    check(lambda m: m.nodes_frame("p", envelope(resources, how), status, node_status))
    check(lambda m: m.summary_frame("p", resources, envelope(status, how), {"version": "9.1"}))
    check(lambda m: m.summary_frame("p", resources, None, "8.4"))


@MESSY
@given(
    rows(GUEST_ROW, 10),
    st.dictionaries(
        st.sampled_from([100, 101, 102, 103, 1]),
        st.fixed_dictionaries({}, optional=CONFIG) | messy,
        max_size=4,
    ),
    st.dictionaries(st.sampled_from([100, 101, 1]), st.text(max_size=4), max_size=2),
    st.booleans(),
)
def test_guests_on_messy_input(resources: Any, configs: Any, errors: Any, details: bool) -> None:
    check(lambda m: m.guests_frame("p", resources))
    check(
        lambda m: m.guests_frame(
            "p", {"data": resources}, configs=configs, errors=errors, details=details
        )
    )
    ip_data = {vmid: {"lxc_interfaces": [], "fsinfo": {"result": []}} for vmid in configs}
    check(
        lambda m: m.guests_frame(
            "p", resources, configs=configs, ip_data=ip_data, details=details, ips=True
        )
    )


@MESSY
@given(
    rows(GUEST_ROW, 8),
    st.dictionaries(
        st.sampled_from(["pve1", "pve2", 3]), rows(NODE_STORAGE_ROW) | messy, max_size=3
    ),
)
def test_storage_on_messy_input(resources: Any, node_storage: Any) -> None:
    for unique in (False, True):
        check(lambda m, u=unique: m.storage_frame("p", resources, node_storage, unique=u))


@MESSY
@given(rows(TASK_ROW, 8), rows(BACKUP_ROW, 8), rows(SNAPSHOT_ROW, 8))
def test_tasks_backups_snapshots_on_messy_input(tasks: Any, backups: Any, snaps: Any) -> None:
    check(lambda m: m.tasks_frame("p", tasks))
    check(lambda m: m.backups_frame("p", {"data": backups}))
    check(lambda m: m.snapshots_frame("p", snaps))


@MESSY
@given(st.lists(st.tuples(messy, field("pve1", None), rows(METRIC_ROW) | messy), max_size=3))
def test_metrics_on_messy_input(series: Any) -> None:
    check(lambda m: m.metrics_frame("p", "guest", series))


@MESSY
@given(rows(DISK_ROW), rows(SMART_ROW), rows(UPDATE_ROW), rows(CONTENT_ROW), rows(APPLIANCE_ROW))
def test_node_tables_on_messy_input(
    disks: Any, smart: Any, updates: Any, content: Any, appliances: Any
) -> None:
    check(lambda m: m.disks_frame("p", "n", disks))
    check(lambda m: m.smart_frame("p", "n", "/dev/sda", smart))
    check(lambda m: m.updates_frame("p", "n", updates))
    check(lambda m: m.content_frame("p", "n", "s", content))
    check(lambda m: m.appliances_frame("p", "n", appliances))


aware_times = st.datetimes(
    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)
checked_at = st.one_of(
    messy,
    aware_times,
)


@MESSY
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "profile": field("a", "b"),
                "host": field("h:8006"),
                "connected": field(True, False),
                "state": field("connected", "failed", "pending"),
                "error": field("boom"),
                "checked_at": checked_at,
            },
        ),
        max_size=4,
    )
)
def test_group_status_on_messy_input(rows_: Any) -> None:
    check(lambda m: m.group_status_frame(rows_))


# --------------------------------------------------------------------------- one column

cell = st.one_of(
    scalars,
    st.sampled_from([pd.NA, pd.NaT, np.nan, np.int64(5), np.float64(2.5), np.bool_(True)]),
    aware_times,
    st.lists(scalars, max_size=2),
)
typed_cells = {
    "Int64": st.one_of(st.none(), st.integers(), st.sampled_from(_SPECIAL_NUMBERS[:10])),
    "float64": st.one_of(st.none(), st.integers(-(2**70), 2**70), st.floats()),
    "boolean": st.one_of(st.none(), st.booleans()),
    "str": st.one_of(st.none(), st.text(max_size=4)),
    "category": st.one_of(
        st.none(), st.sampled_from(["b", "a", "Z", "é", ""]), st.text(max_size=3)
    ),
    new._TIME: st.one_of(st.none(), st.sampled_from(_SPECIAL_NUMBERS), st.floats(), st.integers()),
    "object": st.one_of(st.none(), st.lists(scalars, max_size=2)),
}


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(sorted(typed_cells)), st.data())
def test_one_column_fast_path_equals_cast(dtype: str, data: st.DataObject) -> None:
    """Plain Python values (the fast path) and anything else (the fallback): the column is
    exactly what the row-wise ``_cast`` made of the same values."""
    values = data.draw(st.lists(typed_cells[dtype] | cell, max_size=12))
    got = outcome(lambda: pd.Series(new._column(pd, list(values), dtype)))
    want = outcome(lambda: old._cast(pd, pd.Series(list(values), dtype="object"), dtype))
    if isinstance(want, type):
        assert got is want
        return
    assert isinstance(got, pd.Series)
    assert_same(got.to_frame("c"), want.to_frame("c"))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(typed_cells)), st.data())
def test_one_column_typed_values(dtype: str, data: st.DataObject) -> None:
    """Only the builders' own types: always the fast path, same result."""
    values = data.draw(st.lists(typed_cells[dtype], max_size=30))
    got = outcome(lambda: pd.Series(new._column(pd, list(values), dtype)))
    want = outcome(lambda: old._cast(pd, pd.Series(list(values), dtype="object"), dtype))
    if isinstance(want, type):
        assert got is want
        return
    assert isinstance(got, pd.Series)
    assert_same(got.to_frame("c"), want.to_frame("c"))


def test_fast_paths_are_taken_for_builder_types(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the rewrite: plain values never go through the value-by-value cast."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("value-by-value cast used")

    monkeypatch.setattr(new, "_cast", fail)
    values = {
        "Int64": [1, None, 2**40],
        "float64": [0.5, None, 3, math.inf],
        "boolean": [True, None, False],
        "str": ["a", None, ""],
        "category": ["qemu", None, "lxc"],
        new._TIME: [1.7e9, None, 1e12, 1700000000],
        "object": [["a"], None, []],
    }
    for dtype, vals in values.items():
        new._column(pd, vals, dtype)
    lm = "luthermonson-go-proxmox/pve7.4/"
    new.guests_frame("p", fixture(lm + "GET_cluster_resources.json"))
    new.nodes_frame(
        "p",
        fixture(lm + "GET_cluster_resources.json"),
        fixture(lm + "GET_cluster_status.json"),
        {"node1": fixture(lm + "GET_nodes_node_status.json")},
    )
