"""Hardening (issue 13): what a hostile network, a bad config and a careless paste can do.

Each test names the item of the issue it covers. Hostile servers run on 127.0.0.1, answer a
bounded number of requests and stop by themselves; calls that used to hang run in a helper
thread with a generous bound, so a regression fails instead of holding the suite.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _pveserver import PVEServer, Reply, password_profile, token_profile

import pvekit
from pvekit import APIError, InvalidInputError, InvalidVMIDError
from pvekit._api import ApiClient
from pvekit._format import parse_vmid
from pvekit._guest import _node_name, _storage_id, _tags_text, validate_snapshot_name


def bounded(fn: Callable[[], Any], limit: float) -> Any:
    """Run ``fn`` in a thread; fail if it has not returned (or raised) within ``limit`` s."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the test
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(limit)
    assert not worker.is_alive(), f"still running after {limit} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# -- 12: full-match ASCII validation ---------------------------------------------------------


@pytest.mark.parametrize(
    "vmid", ["100\n", "\uff11\uff10\uff10", "1\u06600", "100\t", "\n100", "10\u00a00"]
)
def test_12_vmid_rejects_newline_and_non_ascii_digits(vmid: str) -> None:
    with pytest.raises(InvalidVMIDError):
        parse_vmid(vmid)


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (validate_snapshot_name, "before\n"),
        (validate_snapshot_name, "\uff53nap1"),
        (_storage_id, "local\n"),
        (_storage_id, "local-\u212avm"),  # KELVIN SIGN folds to 'k' under IGNORECASE
        (_node_name, "pve1\n"),
        (lambda v: _tags_text([v]), "web\n"),
        (lambda v: _tags_text([v]), "\u212aube"),
    ],
)
def test_12_names_are_full_match_ascii(check: Callable[[str], Any], value: str) -> None:
    with pytest.raises(InvalidInputError):
        check(value)


def test_12_bad_names_send_nothing(fresh_sim: Any) -> None:
    c = pvekit.connect(**fresh_sim["prod"].connect_kwargs(identity="root"), cache=False)
    try:
        g = c.guest(100)
        with pytest.raises(InvalidVMIDError):
            c.guest("\uff11\uff10\uff10")
        fresh_sim["prod"].clear_requests()
        with pytest.raises(InvalidInputError):
            g.snapshot("before\n")
        with pytest.raises(InvalidInputError):
            g.update(tags=["web\n"])
        writes = [r for r in fresh_sim["prod"].requests if r.method != "GET"]
        assert writes == []
    finally:
        c.close()


# -- 3: redirects are refused ------------------------------------------------------------------


@pytest.fixture
def srv() -> Iterator[PVEServer]:
    with PVEServer() as s:
        yield s


@pytest.fixture
def elsewhere() -> Iterator[PVEServer]:
    """Where a hostile server redirects to: it must never see a request."""
    with PVEServer() as s:
        yield s


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_03_login_redirect_refused_password_never_reposted(
    srv: PVEServer, elsewhere: PVEServer, status: int
) -> None:
    target = f"{elsewhere.url}/api2/json/access/ticket"
    srv.script("POST", "/access/ticket", Reply(status, headers={"Location": target}))
    with ApiClient(password_profile(srv, cache=False)) as c, pytest.raises(APIError) as info:
        c.get("/version")
    assert "redirect" in str(info.value) and str(status) in str(info.value)
    assert elsewhere.requests == []
    assert srv.count("POST", "/access/ticket") == 1


def test_03_redirected_write_and_read_refused(srv: PVEServer, elsewhere: PVEServer) -> None:
    start = "/nodes/pve1/qemu/100/status/start"
    srv.script(
        "POST", start, Reply(307, headers={"Location": elsewhere.url + "/api2/json" + start})
    )
    srv.script("GET", "/nodes", Reply(302, headers={"Location": elsewhere.url + "/api2/json/x"}))
    with ApiClient(password_profile(srv, cache=False)) as c:
        with pytest.raises(APIError, match="redirect"):
            c.post(start)
        with pytest.raises(APIError, match="redirect"):
            c.get("/nodes")
    assert elsewhere.requests == []  # neither the CSRF token nor the ticket went there
    assert srv.count("POST", start) == 1 and srv.count("GET", "/nodes") == 1


def test_03_redirect_refused_on_an_injected_session(srv: PVEServer, elsewhere: PVEServer) -> None:
    import requests

    srv.script("GET", "/nodes", Reply(302, headers={"Location": elsewhere.url + "/api2/json/x"}))
    with requests.Session() as s:
        c = ApiClient(token_profile(srv, cache=False), session=s)
        with pytest.raises(APIError, match="redirect"):
            c.get("/nodes")
    assert elsewhere.requests == []


# -- 8: terminal escapes and control characters from the server are filtered ------------------

_HOSTILE = "ok\x1b[2J\x1b]0;pwned\x07\x1b[31mred\r\x08\x9b6n\u202eevil"


def _assert_clean(text: str) -> None:
    for ch in ("\x1b", "\x07", "\r", "\x08", "\x9b", "\u202e"):
        assert ch not in text, (ch, text)


def test_08_escape_sequences_filtered_from_errors_and_logs(
    srv: PVEServer, caplog: pytest.LogCaptureFixture
) -> None:
    srv.script("GET", "/nodes", Reply(500, reason=_HOSTILE.encode("utf-8").decode("latin-1")))
    srv.script(
        "POST",
        "/nodes/pve1/qemu/100/config",
        Reply(
            400,
            reason="Parameter verification failed.",
            body={"data": None, "message": _HOSTILE, "errors": {"name": _HOSTILE}},
        ),
    )
    srv.script("GET", "/version", *[Reply(503, reason="x\x1b[5mblink")] * 2)
    caplog.set_level(logging.DEBUG)
    with ApiClient(token_profile(srv, cache=False, retries=1)) as c:
        with pytest.raises(APIError) as e1:
            c.get("/nodes")
        with pytest.raises(APIError) as e2:
            c.post("/nodes/pve1/qemu/100/config", name="x")
        with pytest.raises(APIError) as e3:
            c.get("/version")
    for err in (e1.value, e2.value, e3.value):
        _assert_clean(str(err))
        _assert_clean(err.reason or "")
        for v in err.errors.values():
            _assert_clean(v)
    assert "okred" in str(e1.value) and "evil" in str(e1.value)  # the text stays readable
    for record in caplog.records:
        _assert_clean(record.getMessage())


def test_08_task_failure_text_filtered() -> None:
    from pvekit import TaskFailedError

    err = TaskFailedError(f"task failed: {_HOSTILE}", exitstatus=_HOSTILE, log_tail=[_HOSTILE])
    _assert_clean(str(err))
    _assert_clean(err.exitstatus or "")
    _assert_clean(err.log_tail[0])


# -- 13: a write whose outcome is unknown drops the reads it would have made stale -----------


def test_13_timed_out_start_that_ran_is_not_hidden_by_the_cache() -> None:
    from pvekit.sim import Simulator

    with Simulator("demo", task_duration=0.1) as sim:
        kw = dict(sim["prod"].connect_kwargs(identity="root"))
        kw.pop("profile", None)
        c = pvekit.connect("prod", **kw, cache="memory", retries=0, timeout=0.6)
        probe = pvekit.connect("prod", **kw, cache=False)
        try:
            table = c.guests()
            stopped = table[(table["status"] == "stopped") & (table["type"] == "qemu")]
            stopped = stopped[~stopped["template"].astype(bool)]
            vmid = int(stopped["vmid"].iloc[0])
            guest = c.guest(vmid)
            sim["prod"].faults.latency(1.5, pattern="/nodes/*/qemu/*/status/start", times=1)
            with pytest.raises(pvekit.TimeoutError):
                guest.start()
            # The server ran the POST after the client gave up; a plain client sees it.
            deadline = time.monotonic() + 20
            while probe.guest(vmid).status()["status"] != "running":
                assert time.monotonic() < deadline, "the simulator never started the VM"
                time.sleep(0.05)
            sim["prod"].clear_requests()
            row = c.guests().set_index("vmid").loc[vmid]
            assert row["status"] == "running"
        finally:
            c.close()
            probe.close()
