"""Property tests: every parser and every frame builder on arbitrary input.

Parsers (config strings, UPIDs, sizes, safe conversions, VMIDs, host strings) may only raise
pvekit's documented errors (:class:`pvekit.PVEError` subclasses); the safe conversions never
raise at all. Frame builders take bodies shaped like Proxmox's with fields randomly missing,
extra, null or of the wrong JSON type, and always return a frame with the documented
columns and dtypes, never an exception.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvekit import PVEError, frames
from pvekit._config import normalize_host
from pvekit._format import (
    first_non_loopback_ip,
    format_bytes,
    format_uptime,
    parse_upid,
    parse_vmid,
    safe_bool,
    safe_float,
    safe_string,
)
from pvekit._parse import (
    format_size,
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

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Building a detailed guest frame costs pandas ~0.1-0.3 s: fewer, richer examples.
GUEST_FRAME_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FRAME_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# JSON values as Proxmox (or a broken proxy) might send them.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "0", "1", "32G", "nan", "inf", "-1", "1e309", "running", "1.5"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Text that looks like Proxmox property strings, plus junk.
PROPERTY_TEXT = st.one_of(
    st.text(max_size=80),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "size",
                    "iothread",
                    "ssd",
                    "discard",
                    "backup",
                    "cache",
                    "format",
                    "mp",
                    "bridge",
                    "tag",
                    "firewall",
                    "rate",
                    "ip",
                    "gw",
                    "ip6",
                    "gw6",
                    "hwaddr",
                    "name",
                    "virtio",
                    "e1000",
                    "enabled",
                    "fstrim_cloned_disks",
                    "type",
                    "",
                ]
            ),
            st.text(alphabet="abcdefgKMGT0123456789.:/=,-_ ", max_size=12),
        ),
        max_size=6,
    ).map(lambda kvs: ",".join(f"{k}={v}" if k else v for k, v in kvs)),
)


def _only_pvekit_errors(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a PVEError is a documented outcome, anything else fails the test."""
    try:
        return fn()
    except PVEError as err:
        assert str(err)  # a message, not an empty error
        return None


# ------------------------------------------------------------------------------ parsers


@SETTINGS
@given(st.one_of(PROPERTY_TEXT, JSON), st.sampled_from(["qemu", "lxc"]))
def test_config_string_parsers_raise_only_pvekit_errors(value: Any, gtype: str) -> None:
    _only_pvekit_errors(lambda: parse_kv(value))
    _only_pvekit_errors(lambda: parse_kv(value, default_key="volume"))
    _only_pvekit_errors(lambda: parse_agent(value))
    _only_pvekit_errors(lambda: parse_ipconfig(value))
    for key in ("scsi0", "virtio1", "ide2", "rootfs", "mp0", "efidisk0", "unused0"):
        disk = _only_pvekit_errors(functools.partial(parse_disk, key, value, gtype))
        assert disk is None or isinstance(disk, dict)
    out = _only_pvekit_errors(lambda: parse_net("net0", value, gtype))
    assert out is None or isinstance(out, dict)
    tags = _only_pvekit_errors(lambda: parse_tags(value))
    assert tags is None or all(isinstance(t, str) and t for t in tags)


@SETTINGS
@given(
    st.dictionaries(
        st.text(max_size=10)
        | st.sampled_from(["scsi0", "net0", "rootfs", "mp1", "ipconfig0", "agent"]),
        JSON | PROPERTY_TEXT,
        max_size=8,
    ),
    st.sampled_from(["qemu", "lxc"]),
)
def test_whole_config_parsers_raise_only_pvekit_errors(config: dict[str, Any], gtype: str) -> None:
    disks = _only_pvekit_errors(lambda: parse_disks(config, gtype))
    assert disks is None or all(isinstance(d, dict) for d in disks)
    nets = _only_pvekit_errors(lambda: parse_networks(config, gtype))
    assert nets is None or all(isinstance(n, dict) for n in nets)


@SETTINGS
@given(st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.booleans(), st.none()))
def test_sizes_raise_only_pvekit_errors(value: Any) -> None:
    size = _only_pvekit_errors(lambda: parse_size(value))
    assert size is None or (isinstance(size, int) and size >= 0)


@SETTINGS
@given(st.integers(min_value=0, max_value=2**60))
def test_sizes_round_trip(nbytes: int) -> None:
    assert parse_size(format_size(nbytes)) == nbytes


@SETTINGS
@given(st.integers(min_value=0, max_value=2**50), st.sampled_from(["K", "M", "G", "T"]))
def test_size_suffixes_are_binary(n: int, unit: str) -> None:
    factor = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[unit]
    assert parse_size(f"{n}{unit}") == n * factor


@SETTINGS
@given(st.one_of(st.text(max_size=80), JSON))
def test_upid_parser_raises_only_pvekit_errors(value: Any) -> None:
    upid = _only_pvekit_errors(lambda: parse_upid(value))
    if upid is not None:
        assert upid.node and upid.type


@SETTINGS
@given(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True),
    st.integers(min_value=0, max_value=0xFFFFFFFF),
    st.integers(min_value=0, max_value=0xFFFFFFFF),
    st.integers(min_value=0, max_value=0xFFFFFFFF),
    st.sampled_from(["qmstart", "vzdump", "qmigrate", "aptupdate"]),
    st.one_of(st.just(""), st.integers(min_value=100, max_value=999999).map(str)),
)
def test_well_formed_upids_parse(
    node: str, pid: int, pstart: int, start: int, kind: str, ident: str
) -> None:
    text = f"UPID:{node}:{pid:08X}:{pstart:08X}:{start:08X}:{kind}:{ident}:root@pam:"
    upid = parse_upid(text)
    assert (upid.node, upid.pid, upid.pstart, upid.starttime, upid.type) == (
        node,
        pid,
        pstart,
        start,
        kind,
    )


@SETTINGS
@given(JSON)
def test_safe_conversions_never_raise(value: Any) -> None:
    assert isinstance(safe_string(value), str)
    assert isinstance(safe_float(value), float)
    assert isinstance(safe_bool(value), bool)
    assert isinstance(format_bytes(value if isinstance(value, int | float) else None), str)
    assert isinstance(format_uptime(value if isinstance(value, int | float) else None), str)
    assert isinstance(strip_prefix(value if isinstance(value, str) else None) or "", str)


@SETTINGS
@given(
    st.lists(
        JSON
        | st.fixed_dictionaries(
            {},
            optional={
                "name": st.text(max_size=5),
                "hardware-address": st.text(max_size=17),
                "ip-addresses": st.lists(
                    st.dictionaries(
                        st.sampled_from(
                            ["ip-address", "ip-address-type", "prefix", "inet", "inet6"]
                        ),
                        SCALARS,
                    ),
                    max_size=3,
                ),
                "inet": SCALARS,
                "inet6": SCALARS,
            },
        ),
        max_size=4,
    )
)
def test_first_non_loopback_ip_raises_only_pvekit_errors(value: Any) -> None:
    ip = _only_pvekit_errors(lambda: first_non_loopback_ip(value))
    assert ip is None or isinstance(ip, str)


@SETTINGS
@given(JSON)
def test_vmids_are_positive_ints_or_a_pvekit_error(value: Any) -> None:
    vmid = _only_pvekit_errors(lambda: parse_vmid(value))
    assert vmid is None or (type(vmid) is int and vmid > 0)


@SETTINGS
@given(st.integers(min_value=1, max_value=999_999_999))
def test_vmids_round_trip(vmid: int) -> None:
    assert parse_vmid(vmid) == vmid
    assert parse_vmid(str(vmid)) == vmid
    assert parse_vmid(float(vmid)) == vmid


HOSTS = st.one_of(
    st.text(max_size=60),
    st.from_regex(r"(https?://)?[a-z0-9.-]{1,20}(:[0-9]{1,5})?(/[a-z0-9/]{0,10})?", fullmatch=True),
)


@SETTINGS
@given(HOSTS)
def test_host_strings_normalise_or_raise_value_error(raw: str) -> None:
    try:
        scheme, hostport, path = normalize_host(raw)
    except ValueError as err:  # documented: the Profile turns it into a pvekit error
        assert str(err)
        return
    assert scheme in (None, "http", "https")
    assert hostport and " " not in hostport
    # Normalising the normal form changes nothing.
    again = normalize_host(f"{scheme or 'https'}://{hostport}{path}")
    assert again[1:] == (hostport, path)


@SETTINGS
@given(HOSTS)
def test_connect_with_any_host_raises_only_pvekit_errors(raw: str) -> None:
    import pvekit

    cluster = _only_pvekit_errors(
        lambda: pvekit.connect(host=raw, user="root@pam", password="x", check=False, cache=False)
    )
    if cluster is not None:
        assert cluster.base_url.startswith(("http://", "https://"))
        cluster.close()


# ------------------------------------------------------------------------------ frames

# Fields of the bodies each builder reads, so random rows hit the real code paths.
RESOURCE_FIELDS = [
    "id",
    "type",
    "node",
    "vmid",
    "name",
    "status",
    "template",
    "tags",
    "pool",
    "hastate",
    "lock",
    "cpu",
    "maxcpu",
    "mem",
    "maxmem",
    "disk",
    "maxdisk",
    "uptime",
    "netin",
    "netout",
    "diskread",
    "diskwrite",
    "storage",
    "content",
    "shared",
    "plugintype",
    "level",
    "cgroup-mode",
]
TYPES = st.sampled_from(["qemu", "lxc", "node", "storage", "pool", "sdn", None, 7, ""])


@st.composite
def messy_rows(draw: st.DrawFn, fields: list[str], extra_types: Any = None) -> dict[str, Any]:
    """A dict with a random subset of ``fields`` (random JSON values) plus unknown keys."""
    row: dict[str, Any] = {}
    for field in draw(st.lists(st.sampled_from(fields), max_size=len(fields), unique=True)):
        row[field] = draw(JSON)
    if extra_types is not None and draw(st.booleans()):
        row["type"] = draw(extra_types)
    for key, value in draw(st.dictionaries(st.text(max_size=6), SCALARS, max_size=2)).items():
        row.setdefault(key, value)
    return row


def _body(rows: Any) -> Any:
    return st.one_of(st.lists(rows, max_size=6), JSON)


def _check(df: Any, frame: str, **spec: bool) -> None:
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns)[: len(frames.columns(frame, **spec))] == frames.columns(frame, **spec)


@FRAME_SETTINGS
@given(
    _body(messy_rows(RESOURCE_FIELDS, TYPES)),
    JSON,
    st.dictionaries(st.text(max_size=5), JSON, max_size=3),
)
def test_nodes_frame_never_raises(resources: Any, status: Any, node_status: Any) -> None:
    _check(frames.nodes_frame("p", resources, status, node_status), "nodes")


@GUEST_FRAME_SETTINGS
@given(
    _body(messy_rows(RESOURCE_FIELDS, TYPES)),
    st.dictionaries(
        st.integers(min_value=-5, max_value=500),
        JSON
        | messy_rows(
            [
                "cores",
                "sockets",
                "memory",
                "scsi0",
                "net0",
                "agent",
                "rootfs",
                "mp0",
                "description",
                "onboot",
                "boot",
                "ostype",
                "cpu",
                "balloon",
                "swap",
                "ipconfig0",
            ]
        ),
        max_size=4,
    ),
    st.dictionaries(
        st.integers(min_value=-5, max_value=500),
        st.dictionaries(
            st.sampled_from(["agent_interfaces", "lxc_interfaces", "fsinfo"]), JSON, max_size=3
        ),
        max_size=3,
    ),
    st.dictionaries(st.integers(min_value=-5, max_value=500), st.text(max_size=10), max_size=3),
    st.booleans(),
    st.booleans(),
)
def test_guests_frame_never_raises(
    resources: Any, configs: Any, ip_data: Any, errors: Any, details: bool, ips: bool
) -> None:
    df = frames.guests_frame(
        "p", resources, configs=configs, ip_data=ip_data, errors=errors, details=details, ips=ips
    )
    _check(df, "guests", details=details, ips=ips)
    assert len(df) <= (len(resources) if isinstance(resources, list) else 0)


@FRAME_SETTINGS
@given(
    _body(messy_rows(RESOURCE_FIELDS, TYPES)),
    st.dictionaries(st.text(max_size=5), JSON, max_size=3),
    st.booleans(),
)
def test_storage_frame_never_raises(resources: Any, per_node: Any, unique: bool) -> None:
    _check(frames.storage_frame("p", resources, per_node, unique=unique), "storage")


TASK_FIELDS = [
    "upid",
    "node",
    "type",
    "id",
    "user",
    "status",
    "starttime",
    "endtime",
    "pid",
    "pstart",
    "saved",
]


@FRAME_SETTINGS
@given(_body(messy_rows(TASK_FIELDS)))
def test_tasks_frame_never_raises(rows: Any) -> None:
    _check(frames.tasks_frame("p", rows), "tasks")


VOLUME_FIELDS = [
    "volid",
    "vmid",
    "format",
    "size",
    "ctime",
    "notes",
    "protected",
    "verification",
    "content",
    "subtype",
    "node",
    "storage",
]


@FRAME_SETTINGS
@given(_body(messy_rows(VOLUME_FIELDS)))
def test_backups_frame_never_raises(rows: Any) -> None:
    _check(frames.backups_frame("p", rows), "backups")


SNAP_FIELDS = ["name", "description", "snaptime", "vmstate", "parent", "node", "vmid", "guest_type"]


@FRAME_SETTINGS
@given(_body(messy_rows(SNAP_FIELDS)))
def test_snapshots_frame_never_raises(rows: Any) -> None:
    _check(frames.snapshots_frame("p", rows), "snapshots")


RRD_FIELDS = [
    "time",
    "cpu",
    "maxcpu",
    "mem",
    "maxmem",
    "netin",
    "netout",
    "diskread",
    "diskwrite",
    "used",
    "total",
    "loadavg",
    "iowait",
]


@FRAME_SETTINGS
@given(
    st.sampled_from(["node", "guest", "storage"]),
    st.lists(
        st.tuples(
            st.text(max_size=6), st.none() | st.text(max_size=6), _body(messy_rows(RRD_FIELDS))
        ),
        max_size=3,
    ),
)
def test_metrics_frame_never_raises(kind: str, series: Any) -> None:
    df = frames.metrics_frame("p", kind, series)
    _check(df, "metrics")
    assert str(df["time"].dtype).startswith("datetime64") and "UTC" in str(df["time"].dtype)


@FRAME_SETTINGS
@given(_body(messy_rows(RESOURCE_FIELDS, TYPES)), JSON, JSON)
def test_summary_frame_never_raises(resources: Any, status: Any, version: Any) -> None:
    df = frames.summary_frame("p", resources, status, version)
    _check(df, "summary")
    assert len(df) == 1
