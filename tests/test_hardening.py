"""Hardening (issue 13): what a hostile network, a bad config and a careless paste can do.

Each test names the item of the issue it covers. Hostile servers run on 127.0.0.1, answer a
bounded number of requests and stop by themselves; calls that used to hang run in a helper
thread with a generous bound, so a regression fails instead of holding the suite.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from _pveserver import TOKEN_SECRET, PVEServer, Reply, password_profile, token_profile

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


# -- hostile raw servers (bounded: a few connections, a few seconds, then they stop) ----------


class RawServer:
    """Accept up to ``connections`` TCP connections on 127.0.0.1 and run ``serve(sock)``
    for each; every connection is closed after ``lifetime`` seconds at the latest."""

    def __init__(
        self, serve: Callable[[socket.socket], None], connections: int = 4, lifetime: float = 15
    ) -> None:
        self.serve = serve
        self.connections = connections
        self.lifetime = lifetime
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set() and self.accepted < self.connections:
            if time.monotonic() - started > self.lifetime:
                return
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(self.lifetime)
        try:
            _read_request(conn)
            self.serve(conn)
        except OSError:
            pass
        finally:
            conn.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            want = int(line.split(b":")[1]) - len(rest)
            while want > 0:
                got = conn.recv(min(want, 4096))
                if not got:
                    break
                want -= len(got)
    return head


def _trickle(payload: bytes, every: float = 0.25, stop_after: float = 12.0) -> Any:
    def serve(conn: socket.socket) -> None:
        started = time.monotonic()
        for i in range(len(payload)):
            if time.monotonic() - started > stop_after:
                return
            conn.sendall(payload[i : i + 1])
            time.sleep(every)

    return serve


def _raw_profile(url: str, **kw: Any) -> Any:
    from pvekit._config import Profile

    fields: dict[str, Any] = {"host": url, "token_name": "root@pam!t", "token_value": "s3cr3t"}
    fields.update({"cache": False, "backoff": 0.01, **kw})
    return Profile(**fields)


_BODY = b'{"data": {"version": "9.1", "pad": "' + b"x" * 200 + b'"}}'
_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(
    _BODY
)


# -- 4: a total deadline per call ---------------------------------------------------------


@pytest.mark.parametrize("phase", ["body", "headers"])
def test_04_trickling_server_cannot_hold_a_call(phase: str) -> None:
    payload = _HEAD + _BODY
    serve = _trickle(payload) if phase == "headers" else None

    def body_trickle(conn: socket.socket) -> None:
        conn.sendall(_HEAD)
        _trickle(_BODY)(conn)

    with RawServer(serve or body_trickle, connections=2) as raw:
        c = ApiClient(_raw_profile(raw.url, timeout=1, retries=0))
        try:
            with pytest.raises(pvekit.TimeoutError) as info:
                bounded(lambda: c.get("/version"), 8)
        finally:
            c.close()
        assert raw.accepted == 1
    assert "GET /version" in str(info.value)


def test_04_retry_after_capped_by_the_deadline(srv: PVEServer) -> None:
    srv.script("GET", "/nodes", *[Reply(503, reason="busy", headers={"Retry-After": "100"})] * 4)
    c = ApiClient(token_profile(srv, cache=False, timeout=1, retries=3))
    with c, pytest.raises(pvekit.ServerError):
        bounded(lambda: c.get("/nodes"), 8)
    # Waiting 100 s cannot fit in the call's deadline: no pointless sleep, no retry.
    assert srv.count("GET", "/nodes") == 1


def test_04_task_wait_times_out_on_time_with_task_timeout_error(srv: PVEServer) -> None:
    from pvekit._tasks import Task

    upid = "UPID:pve1:0002A1B3:0F619352:6B0BBAEA:qmstart:100:root@pam:"
    srv.route(
        "GET",
        f"/nodes/pve1/tasks/{quote(upid, safe='')}/status",
        lambda rec: Reply(200, {"status": "running", "upid": upid}, delay=6),
    )
    c = pvekit.connect(
        host=srv.url,
        token_name="root@pam!pvekit",
        token_value=TOKEN_SECRET,
        cache=False,
        timeout=3,
        retries=1,
        check=False,
    )
    try:
        task = Task(c, upid)
        with pytest.raises(pvekit.TaskTimeoutError) as info:
            bounded(lambda: task.wait(timeout=1, progress=False), 5)
        assert info.value.task is task
    finally:
        c.close()


# -- 6: a cap on the decompressed size of an answer ------------------------------------------


def _gzip_bomb(mib: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"0" * (1 << 20)
    return b"".join([*(z.compress(zeros) for _ in range(mib)), z.flush()])


def test_06_gzip_bomb_fails_fast_with_bounded_memory() -> None:
    bomb = _gzip_bomb(512)  # ~0.5 MB on the wire, 512 MiB once inflated
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % len(bomb)
    )

    def serve(conn: socket.socket) -> None:
        conn.sendall(head + bomb)

    with RawServer(serve, connections=2) as raw:
        c = ApiClient(_raw_profile(raw.url, timeout=10, retries=2))
        tracemalloc.start()
        try:
            with pytest.raises(APIError) as info:
                bounded(lambda: c.get("/cluster/resources"), 60)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            c.close()
        assert raw.accepted == 1  # not retried
    assert peak < 200 * 2**20, peak  # the default cap is 64 MiB
    text = str(info.value)
    assert "GET /cluster/resources" in text and "max_response_bytes" in text


def test_06_cap_is_configurable(srv: PVEServer) -> None:
    srv.script("GET", "/nodes", Reply(200, ["x" * 1000] * 300))  # ~300 KB
    c = ApiClient(token_profile(srv, cache=False, max_response_bytes=100_000))
    with c, pytest.raises(APIError, match="larger than 100000 bytes"):
        c.get("/nodes")
    srv.script("GET", "/nodes", Reply(200, ["x" * 1000] * 300))
    with ApiClient(token_profile(srv, cache=False)) as c:
        assert len(c.get("/nodes")) == 300  # the default is generous


# -- 5: a group's per-cluster deadline ---------------------------------------------------------


def _silent(conn: socket.socket) -> None:
    """Accept the request, never answer (until the server's own lifetime ends)."""
    time.sleep(12)


def test_05_silent_member_is_reported_failed_without_holding_the_group(fresh_sim: Any) -> None:
    from pvekit import Group
    from pvekit._group import PartialResultWarning

    kw = dict(fresh_sim["prod"].connect_kwargs(identity="root"))
    kw.pop("profile", None)
    good = pvekit.connect("prod", **kw, cache=False)
    with RawServer(_silent, connections=8, lifetime=12) as raw:
        silent = pvekit.connect(
            "silent",
            host=raw.url,
            token_name="root@pam!t",
            token_value="s3cr3t",
            cache=False,
            timeout=5,
            retries=3,
            check=False,
        )
        group = Group([good, silent], cluster_timeout=1.0)
        try:
            with pytest.warns(PartialResultWarning, match="silent"):
                df = bounded(group.guests, 8)
            assert set(df["profile"]) == {"prod"} and len(df) > 0
            status = group.status().set_index("profile")
            assert status.loc["silent", "state"] == "failed"
            assert "1 s" in status.loc["silent", "error"]
            assert status.loc["prod", "state"] == "connected"
            time.sleep(0.5)
            # The abandoned read ends later: it must not flip the profile back.
            assert group.status().set_index("profile").loc["silent", "state"] == "failed"
        finally:
            group.close()


def test_05_cluster_timeout_is_validated(fresh_sim: Any) -> None:
    from pvekit import Group

    c = pvekit.connect(**fresh_sim["prod"].connect_kwargs(identity="root"), cache=False)
    try:
        for bad in (0, -1, float("inf"), float("nan"), "5", True):
            with pytest.raises(InvalidInputError):
                Group([c], cluster_timeout=bad)
    finally:
        c.close()


# -- 7: malformed answers become pvekit errors naming the endpoint ----------------------------

_DEEP = b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
_WRONG_SHAPES: list[Any] = [5, "five", {"a": 1}, [5], [[1, 2]], True]


def _cluster_on(srv: PVEServer) -> Any:
    return pvekit.connect(
        host=srv.url,
        token_name="root@pam!pvekit",
        token_value=TOKEN_SECRET,
        cache=False,
        retries=0,
        check=False,
    )


_RESOURCES = [
    {"type": "node", "node": "pve1", "status": "online", "id": "node/pve1"},
    {"type": "qemu", "node": "pve1", "vmid": 100, "name": "a", "status": "running"},
    {"type": "qemu", "node": "pve1", "vmid": 101, "name": "b", "status": "stopped"},
    {"type": "storage", "node": "pve1", "storage": "local", "status": "available"},
]


@pytest.mark.parametrize("shape", [*_WRONG_SHAPES, "deep"], ids=repr)
@pytest.mark.parametrize("read", ["guests", "nodes", "storage", "guest"])
def test_07_malformed_inventory_answer_is_a_pvekit_error(
    srv: PVEServer, read: str, shape: Any
) -> None:
    reply = Reply(200, raw=_DEEP) if shape == "deep" else Reply(200, shape)
    srv.route("GET", "/cluster/resources", lambda rec: reply)
    srv.route("GET", "/nodes", lambda rec: reply)
    srv.route("GET", "/nodes/pve1/storage", lambda rec: reply)
    c = _cluster_on(srv)
    try:
        with pytest.raises(pvekit.PVEError) as info:
            if read == "guest":
                c.guest(100).status()
            else:
                getattr(c, read)()
    finally:
        c.close()
    text = str(info.value)
    assert "GET /" in text, text  # names the endpoint
    assert not isinstance(info.value, pvekit.TransportError)


def test_07_one_hostile_config_is_an_error_cell_not_a_sunk_table(srv: PVEServer) -> None:
    srv.route("GET", "/cluster/resources", lambda rec: Reply(200, _RESOURCES))
    srv.route("GET", "/nodes/pve1/qemu/100/config", lambda rec: Reply(200, raw=_DEEP))
    srv.route("GET", "/nodes/pve1/qemu/101/config", lambda rec: Reply(200, 5))
    c = _cluster_on(srv)
    try:
        df = c.guests(details=True, progress=False)
    finally:
        c.close()
    rows = df.set_index("vmid")
    assert list(rows.index) == [100, 101]
    assert "config" in rows.loc[100, "error"] and "deep" in rows.loc[100, "error"]
    assert "config" in rows.loc[101, "error"]


# -- 9: the SQLite cache: damaged files, directory rights, symlinks ---------------------------


def _damaged_siblings(path: Any) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if ".damaged-" in p.name)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_09_damaged_cache_is_moved_aside_and_replaced(srv: PVEServer, damage: str) -> None:
    import warnings

    from pvekit._transport import cache_file

    profile = token_profile(srv)
    path = cache_file(profile)
    if damage == "garbage":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"this is not a database, " * 200)
    else:
        with ApiClient(profile) as c:
            for i in range(30):
                c.get("/cluster/resources", type=f"vm{i}")
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 3])
    with pytest.warns(UserWarning, match="damaged") as caught, ApiClient(profile) as c:
        assert c.get("/nodes")["path"] == "/nodes"
    assert len([w for w in caught if "damaged" in str(w.message)]) == 1
    assert len(_damaged_siblings(path)) >= 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fresh cache is healthy: no second warning
        with ApiClient(profile) as c:
            c.get("/nodes")
            assert c.get("/nodes")["n"] == c.get("/nodes")["n"]  # and it caches


def test_09_open_cache_directory_is_tightened(srv: PVEServer) -> None:
    import os
    import stat

    from pvekit._transport import cache_dir

    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o777)
    with ApiClient(token_profile(srv)) as c:
        c.get("/nodes")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_09_symlink_at_the_cache_path_is_refused(srv: PVEServer, tmp_path: Any) -> None:
    from pvekit._transport import cache_file

    profile = token_profile(srv)
    path = cache_file(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path.symlink_to(victim)
    with pytest.raises(pvekit.ConfigError, match="symbolic link"):
        ApiClient(profile)
    assert victim.read_text() == "precious"
    assert srv.requests == []


# -- 10: the config loader bounds aliases and depth, validates numbers -------------------------


def _alias_bomb(levels: int = 9) -> str:
    """A flow sequence whose items anchor 9**levels strings through aliases (~1 KB)."""
    items = ['&x0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        items.append(f"&x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]")
    return "[" + ", ".join(items) + "]"


@pytest.mark.parametrize("where", ["field", "group", "default", "pvekit_groups"])
def test_10_yaml_alias_bomb_is_refused_quickly(tmp_path: Any, where: str) -> None:

    path = tmp_path / "config.yaml"
    bomb = _alias_bomb()
    assert len(bomb) < 1500
    head = f"profiles:\n  q: {{host: pve1, password: pw, groups: {bomb}}}\n"
    body = {
        "field": "  p: {host: pve1, password: pw, cache: *x8}\n",
        "group": "  p: {host: pve1, password: pw}\ngroups:\n  g: *x8\n",
        "default": "  p: {host: pve1, password: pw}\ndefault: *x8\n",
        "pvekit_groups": "  p: {host: pve1, password: pw, timeout: *x8}\n",
    }[where]
    path.write_text(head + body)

    # In a child process with a memory limit: on a loader without bounds the expansion would
    # eat the machine, and a thread cannot be stopped.
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "from pvekit._config import load_config\n"
        "from pvekit import ConfigError\n"
        "try:\n"
        f"    load_config({str(path)!r}, pvetui_path={str(tmp_path / 'none.yml')!r},"
        " environ={}).profile('p')\n"
        "except ConfigError as exc:\n"
        "    print('CONFIGERROR', exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.stdout.startswith("CONFIGERROR "), (proc.stdout[-500:], proc.stderr[-500:])
    text = proc.stdout[len("CONFIGERROR ") :].strip()
    assert text.startswith(str(path)) and "alias" in text[len(str(path)) :]


def test_10_deep_nesting_is_a_config_error(tmp_path: Any) -> None:
    from pvekit._config import load_config

    path = tmp_path / "config.yaml"
    path.write_text(
        "profiles:\n  p: {host: pve1, password: pw, x: " + "[" * 5000 + "]" * 5000 + "}\n"
    )
    with pytest.raises(pvekit.ConfigError) as info:
        load_config(path, pvetui_path=tmp_path / "none.yml", environ={})
    text = str(info.value)
    assert text.startswith(str(path)) and "deep" in text[len(str(path)) :]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout", ".inf"),
        ("timeout", "-.inf"),
        ("connect_timeout", ".inf"),
        ("backoff", ".inf"),
        ("backoff", ".nan"),
        ("retries", "100000000"),
        ("timeout", "1e400"),
    ],
)
def test_10_numbers_are_validated(tmp_path: Any, field: str, value: str) -> None:
    from pvekit._config import load_config

    path = tmp_path / "config.yaml"
    path.write_text(f"profiles:\n  p:\n    host: pve1\n    password: pw\n    {field}: {value}\n")
    cfg = load_config(path, pvetui_path=tmp_path / "none.yml", environ={})
    with pytest.raises(pvekit.ConfigError) as info:
        cfg.profile("p")
    text = str(info.value)
    assert str(path) in text and repr("timeout" if field == "connect_timeout" else field) in text


# -- 11: secrets pasted in the wrong place, command stderr, traceback locals -----------------

_PASTED = "7637e348-13a2-4c5e-9e1f-5b8d2c1a0f77"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token_name": f"root@pam!nb={_PASTED}", "token_value": "x"},
        {"token_name": f"nb={_PASTED}", "token_value": "x"},
        {"user": f"root@pam!nb={_PASTED}", "token_value": "x"},
        {"user": f"root@pam!nb={_PASTED}", "password": "pw"},
    ],
)
def test_11_secret_pasted_with_the_token_id_is_not_echoed(kwargs: dict[str, Any]) -> None:
    with pytest.raises(pvekit.PVEError) as info:
        pvekit.connect(host="pve1", **kwargs, check=False)
    assert _PASTED not in str(info.value) and _PASTED[:8] not in str(info.value)
    assert "token" in str(info.value) or "user" in str(info.value)


def test_11_pasted_secret_from_env_and_file_not_echoed(tmp_path: Any) -> None:
    from pvekit._config import load_config

    environ = {
        "PROXMOX_HOST": "pve1",
        "PROXMOX_TOKEN_ID": f"root@pam!nb={_PASTED}",
        "PROXMOX_TOKEN_SECRET": "x",
    }
    path = tmp_path / "config.yaml"
    path.write_text(
        f"profiles:\n  p:\n    host: pve1\n    token_name: root@pam!nb={_PASTED}\n"
        "    token_value: x\n"
    )
    cfg = load_config(path, pvetui_path=tmp_path / "none.yml", environ=environ)
    for name in ("p", "env"):
        with pytest.raises(pvekit.ConfigError) as info:
            cfg.profile(name)
        assert _PASTED[:8] not in str(info.value), str(info.value)
        assert "'token_name'" in str(info.value)


def test_11_failing_command_stderr_is_not_echoed() -> None:
    from pvekit._config import Secret

    script = f"import sys; sys.stderr.write('decrypt failed for {_PASTED}\\n'); sys.exit(3)"
    secret = Secret(command=[sys.executable, "-c", script], where="profile 'p', field 'x'")
    with pytest.raises(pvekit.ConfigError) as info:
        secret.reveal()
    assert _PASTED[:8] not in str(info.value)
    assert "status 3" in str(info.value)


def test_11_password_not_in_traceback_locals_of_a_failed_login(srv: PVEServer) -> None:
    from _pveserver import ROOT_PW
    from IPython.core.ultratb import VerboseTB

    srv.script("POST", "/access/ticket", Reply(drop=True))
    c = ApiClient(password_profile(srv, cache=False, retries=0))
    try:
        c.get("/version")
    except pvekit.ConnectionError:
        etype, value, tb = sys.exc_info()
        text = VerboseTB(color_scheme="NoColor").text(etype, value, tb)
    else:
        raise AssertionError("the login should have failed")
    finally:
        c.close()
    assert "_post_login" in text  # the frame is there, with its locals
    assert ROOT_PW not in text
