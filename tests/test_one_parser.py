"""One of each parser (issue 15, item 5): where two copies disagreed, the one kept is right.

Each test pins a difference the copies had: it failed on the copy that was dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from pvekit import _ha, frames
from pvekit._api import _data_of
from pvekit._format import parse_bool, parse_upid, unwrap_envelope
from pvekit._parse import backup_identity, format_size, parse_size
from pvekit._tasks import log_percent
from pvekit.sim import SimClock, SimCluster, Simulator

API = "/api2/json"
GIB = 1024**3


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator("demo", clock=SimClock(frozen=True)) as s:
        yield s


def _session(c: SimCluster) -> requests.Session:
    s = c.session()
    r = s.post(
        c.inprocess_url + API + "/access/ticket",
        data={"username": "root@pam", "password": "pvekit-demo"},
    )
    assert r.status_code == 200, r.reason
    data = r.json()["data"]
    s.cookies.set("PVEAuthCookie", data["ticket"])
    s.headers["CSRFPreventionToken"] = data["CSRFPreventionToken"]
    return s


# -- sizes ------------------------------------------------------------------------------------


def test_simulator_resizes_by_exact_bytes(sim: Simulator) -> None:
    """The simulator's float parser turned 2**53 + 1 bytes into 2**53."""
    c = sim["prod"]
    s = _session(c)
    vm = next(g for g in c.state.guests.values() if g.type == "qemu" and "scsi0" in g.disks)
    before = vm.disks["scsi0"].size
    step = 2**53 + 1
    r = s.put(
        f"{c.inprocess_url}{API}/nodes/{vm.node}/qemu/{vm.vmid}/resize",
        data={"disk": "scsi0", "size": f"+{step}"},
    )
    assert r.status_code == 200, r.reason
    sim.clock.advance(60)
    upid = r.json()["data"]
    st = s.get(f"{c.inprocess_url}{API}/nodes/{vm.node}/tasks/{quote(upid, safe='')}/status")
    assert st.json()["data"]["status"] == "stopped"
    assert vm.disks["scsi0"].size == before + step


def test_size_text_is_what_proxmox_prints() -> None:
    """PVE's format_size stops at T (and the resize pattern knows no P)."""
    assert format_size(3 * 1024**5) == "3072T"
    assert format_size(32 * GIB) == "32G"
    assert parse_size(format_size(3 * 1024**5)) == 3 * 1024**5


# -- booleans ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (1.0, True),
        (float("nan"), None),
        ("1", True),
        (" On ", True),
        ("yes", True),
        ("TRUE", True),
        ("0", False),
        ("off", False),
        ("no", False),
        ("false", False),
        ("", None),
        ("maybe", None),
        (None, None),
        ([1], None),
    ],
)
def test_parse_bool(value: Any, expected: bool | None) -> None:
    assert parse_bool(value) is expected


def test_frames_bool_of_nan_is_unknown_not_true() -> None:
    assert frames._bool(float("nan")) is None
    assert frames._bool(math.inf) is True


def test_ha_flag_reads_numbers_as_numbers() -> None:
    """``str(1.0)`` is ``"1.0"``: the string-only copy said False."""
    assert _ha._flag(1.0) is True
    assert _ha._flag(0) is False
    assert _ha._flag(None) is False


# -- UPID -------------------------------------------------------------------------------------


def test_upid_id_may_hold_anything_the_task_id_holds() -> None:
    """A Task rebuilt from a listed UPID whose id has a space (a file name) parsed before only
    through a second, lenient grammar in ``_tasks``; now ``parse_upid`` is the one grammar."""
    u = parse_upid("UPID:pve1:0000A1B2:00C3D4E5:65000000:imgdel:local:iso/x y.iso:root@pam:")
    assert u.id == "local:iso/x y.iso" and u.user == "root@pam" and u.type == "imgdel"
    with pytest.raises(ValueError, match="pid"):
        parse_upid("UPID:pve1:XYZ:00C3D4E5:65000000:imgdel:local:iso/x.iso:root@pam:")


def test_simulator_refuses_a_malformed_upid_like_proxmox(sim: Simulator) -> None:
    c = sim["prod"]
    s = _session(c)
    bad = "UPID:pve1:XYZ:0:0:qmstart:100:root@pam:extra:"
    r = s.get(f"{c.inprocess_url}{API}/nodes/pve1/tasks/{quote(bad, safe='')}/status")
    assert r.status_code == 400 and "upid" in r.json()["errors"]


# -- envelope ---------------------------------------------------------------------------------


def test_envelope_with_total_is_unwrapped() -> None:
    """Task lists and logs come as ``{"data": [...], "total": n}``: frames kept the envelope."""
    body = {"data": [{"n": 1, "t": "start"}], "total": 1}
    assert frames.unwrap(body) == [{"n": 1, "t": "start"}]
    assert unwrap_envelope({"data": None, "errors": {"x": "bad"}}) is None
    # a pvesh body (no envelope) that happens to have a "data" field stays whole
    row = {"data": "x", "name": "y"}
    assert frames.unwrap(row) is row
    # over HTTP every body is enveloped, whatever else the server adds beside data
    assert unwrap_envelope({"data": [1], "newkey": 2}, http=True) == [1]
    assert _data_of({"data": [1], "newkey": 2}) == [1]


# -- backup volume ids ------------------------------------------------------------------------


def test_backup_identity() -> None:
    assert backup_identity("local:backup/vzdump-qemu-100-2024_01_01-00_00_00.vma.zst") == (
        "qemu",
        100,
    )
    assert backup_identity("nfs:backup/vzdump-openvz-7-2010.tar") == ("lxc", 7)
    assert backup_identity("pbs:backup/ct/205/2024-01-01T00:00:00Z") == ("lxc", 205)
    assert backup_identity("local:iso/debian.iso") == (None, None)


def test_backups_frame_reads_pbs_volids() -> None:
    """frames knew only the vzdump form; a PBS row without ``vmid`` lost its guest."""
    df = frames.backups_frame(
        "p",
        [
            {
                "volid": "pbs:backup/vm/300/2024-01-01T00:00:00Z",
                "content": "backup",
                "node": "pve1",
                "storage": "pbs",
                "ctime": 1704067200,
                "size": GIB,
            }
        ],
    )
    assert df["vmid"].tolist() == [300]
    assert df["guest_type"].tolist() == ["qemu"]


# -- task percent -----------------------------------------------------------------------------


def test_log_percent() -> None:
    assert log_percent(["starting", "transferred 1 GiB of 4 GiB (25.00%)", "x"]) == 25.0
    assert log_percent(["progress 10%", "progress 55 %"]) == 55.0
    assert log_percent(["no number here"]) is None
    assert log_percent(["odd 250%"]) == 100.0
