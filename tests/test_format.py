"""Seed utilities: the exact results the Go seed package documents, and UPID parsing."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pvekit
from pvekit import InvalidInputError, InvalidVMIDError
from pvekit._format import (
    UPID,
    first_non_loopback_ip,
    format_bytes,
    format_uptime,
    parse_upid,
    parse_vmid,
    safe_bool,
    safe_float,
    safe_string,
)


def test_public_names_resolve_lazily() -> None:
    assert pvekit.format_bytes is format_bytes
    assert pvekit.parse_upid is parse_upid
    assert pvekit.UPID is UPID


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0 B"),
        (42, "42 B"),
        (1023, "1023 B"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (1048576, "1.0 MB"),
        (1073741824, "1.0 GB"),
        (int(2.5 * 1024**4), "2.5 TB"),
        (1024**5, "1.0 PB"),
        (1024**6 * 3, "3.0 EB"),
        (1536.9, "1.5 KB"),
        (None, "N/A"),
        (float("nan"), "N/A"),
    ],
)
def test_format_bytes(value: int | float | None, expected: str) -> None:
    assert format_bytes(value) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (2, "2 seconds"),
        (65, "1 minute, 5 seconds"),
        (120, "2 minutes"),
        (3600, "1 hour"),
        (3661, "1 hour, 1 minute, 1 second"),
        (7322, "2 hours, 2 minutes, 2 seconds"),
        (86400, "1 day"),
        (90061, "1 day, 1 hour, 1 minute, 1 second"),
        (2 * 86400 + 3 * 3600 + 15 * 60 + 30, "2 days, 3 hours, 15 minutes, 30 seconds"),
        (86401, "1 day, 1 second"),
        (-5, "0 seconds"),
        (65.9, "1 minute, 5 seconds"),
        (None, "N/A"),
    ],
)
def test_format_uptime(seconds: int | float | None, expected: str) -> None:
    assert format_uptime(seconds) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(123, 123), (123.0, 123), ("123", 123), (" 100 ", 100), (1, 1), (999_999_999, 999_999_999)],
)
def test_parse_vmid_accepts(value: object, expected: int) -> None:
    assert parse_vmid(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        "0",
        "-5",
        "invalid",
        "",
        "12a",
        "1e3",
        "100.0",
        12.5,
        float("nan"),
        float("inf"),
        True,
        False,
        None,
        [100],
        {"vmid": 100},
        1_000_000_000,
        Decimal("100.5"),
    ],
)
def test_parse_vmid_rejects(value: object) -> None:
    with pytest.raises(InvalidVMIDError) as info:
        parse_vmid(value)
    assert "VMID" in str(info.value)
    assert isinstance(info.value, ValueError)  # InvalidInputError is also a ValueError


def test_safe_string() -> None:
    assert safe_string("hello") == "hello"
    assert safe_string(123) == "123"
    assert safe_string(123.0) == "123"
    assert safe_string(123.45) == "123.45"
    assert safe_string(True) == "true"
    assert safe_string(False) == "false"
    assert safe_string(None) == ""
    assert safe_string(float("nan")) == "NaN"
    assert safe_string(float("-inf")) == "-Inf"
    assert safe_string([1, 2]) == "[1, 2]"

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    assert safe_string(Broken()) == "<Broken>"


def test_safe_float() -> None:
    assert safe_float(123.45) == 123.45
    assert safe_float(123) == 123.0
    assert safe_float("123.45") == 123.45
    assert safe_float("0.00") == 0.0
    assert safe_float("3400.000") == 3400.0
    assert safe_float("1e3") == 1000.0
    assert safe_float("invalid") == 0.0
    assert safe_float("1_000") == 0.0  # Go's ParseFloat rejects underscores
    assert safe_float(None) == 0.0
    assert safe_float(True) == 0.0  # Go: a bool is an "other type"
    assert safe_float([1]) == 0.0
    assert math.isinf(safe_float("inf"))


def test_safe_bool() -> None:
    assert safe_bool(True) is True
    assert safe_bool("true") is True
    assert safe_bool("TRUE") is True
    assert safe_bool("1") is True
    assert safe_bool(1) is True
    assert safe_bool(2.5) is True
    assert safe_bool(0) is False
    assert safe_bool("false") is False
    assert safe_bool("0") is False
    assert safe_bool("yes") is False
    assert safe_bool(None) is False
    assert safe_bool(float("nan")) is False
    assert safe_bool([1]) is False


AGENT_IFACES = [
    {"name": "lo", "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4"}]},
    {
        "name": "eth0",
        "hardware-address": "bc:24:11:00:00:01",
        "ip-addresses": [
            {"ip-address": "fe80::1", "ip-address-type": "ipv6", "prefix": 64},
            {"ip-address": "10.0.0.5", "ip-address-type": "ipv4", "prefix": 24},
        ],
    },
]


def test_first_non_loopback_ip_agent_records() -> None:
    assert first_non_loopback_ip(AGENT_IFACES) == "10.0.0.5"
    assert first_non_loopback_ip(AGENT_IFACES, prefer_ipv4=False) == "fe80::1"
    only_v6 = [
        AGENT_IFACES[0],
        {"name": "eth0", "ip-addresses": [AGENT_IFACES[1]["ip-addresses"][0]]},
    ]
    assert first_non_loopback_ip(only_v6, prefer_ipv4=True) == "fe80::1"  # fallback: any family
    assert first_non_loopback_ip([AGENT_IFACES[0]]) == ""
    assert first_non_loopback_ip([]) == ""
    assert first_non_loopback_ip(None) == ""
    assert first_non_loopback_ip([{"name": "lo:1", "inet": "10.1.1.1/8"}]) == ""


def test_first_non_loopback_ip_lxc_records() -> None:
    lxc = [
        {"name": "lo", "inet": "127.0.0.1/8", "inet6": "::1/128"},
        {
            "name": "eth0",
            "hwaddr": "bc:24:11:00:00:02",
            "inet": "192.168.1.20/24",
            "inet6": "2001:db8::20/64",
        },
    ]
    assert first_non_loopback_ip(lxc) == "192.168.1.20"
    assert first_non_loopback_ip(lxc, prefer_ipv4=False) == "2001:db8::20"
    assert first_non_loopback_ip(["junk", {"name": "eth1"}]) == ""  # type: ignore[list-item]


def test_parse_upid() -> None:
    raw = "UPID:pve1:000B1A2F:0165D3A1:6650C0DE:qmstart:100:root@pam:"
    upid = parse_upid(raw)
    assert upid.node == "pve1"
    assert upid.pid == 0x000B1A2F
    assert upid.pstart == 0x0165D3A1
    assert upid.starttime == 0x6650C0DE
    assert upid.type == "qmstart"
    assert upid.id == "100"
    assert upid.vmid == 100
    assert upid.user == "root@pam"
    assert upid.token is None
    assert str(upid) == raw
    assert upid.start == datetime.fromtimestamp(0x6650C0DE, tz=UTC)


def test_parse_upid_token_empty_id_and_missing_colon() -> None:
    upid = parse_upid("UPID:node-2:00001234:123456789:65000000:vzdump::root@pam!backup")
    assert upid.id == ""
    assert upid.vmid is None
    assert upid.pstart == 0x123456789
    assert upid.user == "root@pam!backup"
    assert upid.token == "backup"
    assert str(upid).endswith("!backup:")


def test_parse_upid_id_with_colons() -> None:
    upid = parse_upid(
        "UPID:pve1:00001234:00005678:65000000:imgdel:100@local:vm-100-disk-0:root@pam:"
    )
    assert upid.id == "100@local:vm-100-disk-0"
    assert upid.user == "root@pam" and upid.type == "imgdel" and upid.vmid is None


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "must start with 'UPID:'"),
        ("pve1:1:2:3", "must start with 'UPID:'"),
        ("UPID:pve1:000B1A2F:qmstart", "fields"),
        ("UPID:pve1:XYZ:0165D3A1:6650C0DE:qmstart:100:root@pam:", "pid"),
        ("UPID:pve1:000B1A2F:0165D3A1:66:qmstart:100:root@pam:", "starttime"),
        ("UPID::000B1A2F:0165D3A1:6650C0DE:qmstart:100:root@pam:", "node is empty"),
        ("UPID:pve1:000B1A2F:0165D3A1:6650C0DE::100:root@pam:", "task type is empty"),
        ("UPID:pve1:000B1A2F:0165D3A1:6650C0DE:qmstart:100::", "user is empty"),
    ],
)
def test_parse_upid_says_what_is_wrong(raw: str, problem: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_upid(raw)
    assert problem in str(info.value)


def test_parse_upid_rejects_non_string() -> None:
    with pytest.raises(InvalidInputError):
        parse_upid(123)  # type: ignore[arg-type]


# -- properties: the safe conversions never raise; parsers raise only pvekit errors ----------


_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(_ANY)
def test_safe_conversions_never_raise(value: object) -> None:
    assert isinstance(safe_string(value), str)
    assert isinstance(safe_float(value), float)
    assert isinstance(safe_bool(value), bool)


@settings(max_examples=200, deadline=None)
@given(_ANY)
def test_parse_vmid_raises_only_invalid_vmid(value: object) -> None:
    try:
        vmid = parse_vmid(value)
    except InvalidVMIDError:
        return
    assert isinstance(vmid, int) and 0 < vmid <= 999_999_999


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**62))
def test_format_bytes_shape(n: int) -> None:
    text = format_bytes(n)
    number, unit = text.split(" ")
    assert unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB")
    assert (unit == "B") == (n < 1024)
    assert float(number) >= (0 if unit == "B" else 1.0)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_format_uptime_round_trips(seconds: int) -> None:
    units = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}
    total = 0
    for part in format_uptime(seconds).split(", "):
        count, unit = part.split(" ")
        assert (int(count) == 1) == (not unit.endswith("s"))
        total += int(count) * units[unit.rstrip("s")]
    assert total == seconds


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parse_upid_raises_only_invalid_input(text: str) -> None:
    try:
        upid = parse_upid(text)
    except InvalidInputError:
        return
    assert str(parse_upid(str(upid))) == str(upid)
