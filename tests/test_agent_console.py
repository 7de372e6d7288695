"""QEMU guest agent (interfaces, filesystems, exec) and console access (URLs, VNC proxy)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import pvekit
from pvekit import GuestAgentError, InvalidInputError, PermissionDeniedError
from pvekit._guest import AgentExecTimeoutError, Guest, node_shell_url, node_vnc_shell
from pvekit.sim import Simulator
from pvekit.sim import _handlers as sim_handlers
from pvekit.sim._errors import SimHTTPError

POLL = 0.02


# -- agent ----------------------------------------------------------------------------------------


def test_interfaces(root: pvekit.Cluster, simx: Simulator) -> None:
    g = root.guest(100)
    ifaces = g.agent.interfaces()
    by_name = {i["name"]: i for i in ifaces}
    assert by_name["lo"]["ipv4"] == ["127.0.0.1"]
    eth = by_name["eth0"]
    model = simx["prod"].state.guests[100]
    assert eth["mac"] == model.mac.upper()
    if model.ip:
        assert eth["ipv4"] == [model.ip]
    assert all(a["family"] in ("ipv4", "ipv6") for a in eth["addresses"])
    assert isinstance(eth["statistics"]["rx-bytes"], int)


def test_filesystems(root: pvekit.Cluster) -> None:
    fss = root.guest(105).agent.filesystems()  # two disks
    assert [f["mountpoint"] for f in fss][:1] == ["/"]
    for fs in fss:
        assert fs["total"] > 0 and 0 <= fs["used"] <= fs["total"]
        assert fs["type"] == "ext4" and fs["disks"]


def test_windows_volumes_without_sizes(root: pvekit.Cluster, simx: Simulator) -> None:
    win = next(
        g.vmid
        for g in simx["prod"].state.guests.values()
        if g.ostype.startswith("win") and g.agent and g.running and not g.agent_errors
    )
    fss = root.guest(win).agent.filesystems()
    reserved = [f for f in fss if f["mountpoint"] == "System Reserved"]
    assert reserved and reserved[0]["total"] is None and reserved[0]["used"] is None


def test_exec_returns_output_and_exit_code(root: pvekit.Cluster, prod: Any) -> None:
    g = root.guest(101)
    r = g.agent.exec(["echo", "hello", "world"], poll=POLL)
    assert (r.stdout, r.stderr, r.exitcode, r.ok) == ("hello world\n", "", 0, True)
    (sent,) = [x for x in prod.requests if x.method == "POST"]
    assert sent.path == f"{g.path}/agent/exec"
    assert sent.params["command"] == ["echo", "hello", "world"]
    r = g.agent.exec("uname -a", poll=POLL)
    assert r.stdout.startswith("Linux web-02") and r.command == ("uname", "-a")
    r = g.agent.exec("false", poll=POLL)
    assert r.exitcode == 1 and not r.ok
    r = g.agent.exec("nosuchtool --x", poll=POLL)
    assert r.exitcode == 127 and "command not found" in r.stderr
    r = g.agent.exec(["cat"], input_data="piped in", poll=POLL)
    assert r.stdout == "piped in"


def test_exec_timeout(root: pvekit.Cluster) -> None:
    g = root.guest(102)
    with pytest.raises(AgentExecTimeoutError) as info:
        g.agent.exec("sleep 30", timeout=0.2, poll=POLL)
    assert info.value.pid > 0 and "still running" in str(info.value)
    assert isinstance(info.value, GuestAgentError) and isinstance(info.value, TimeoutError)
    r = g.agent.exec("sleep 0.1", timeout=5, poll=POLL)
    assert r.ok


@pytest.mark.parametrize(
    ("cmd", "kwargs", "match"),
    [
        ("", {}, "empty"),
        ([], {}, "empty"),
        ("echo 'unclosed", {}, "cannot split"),
        ([1, 2], {}, "list of strings"),
        ("ls", {"timeout": 0}, "timeout"),
        ("ls", {"poll": -1}, "poll"),
        ("ls", {"input_data": b"bytes"}, "input_data"),
    ],
)
def test_exec_refusals_send_nothing(
    root: pvekit.Cluster, prod: Any, cmd: Any, kwargs: dict[str, Any], match: str
) -> None:
    g = Guest(root, 103, node="pve1", type="qemu")
    with pytest.raises(InvalidInputError, match=match):
        g.agent.exec(cmd, **kwargs)
    assert prod.requests == []


def test_agent_error_inside_http_200(root: pvekit.Cluster, simx: Simulator) -> None:
    g = root.guest(116)  # a wedged Windows agent (scenario)
    with pytest.raises(GuestAgentError) as info:
        g.agent.filesystems()
    assert info.value.agent_class == "GenericError"
    assert "device is not ready" in str(info.value)
    with pytest.raises(GuestAgentError, match="GetAdaptersAddresses"):
        g.agent.interfaces()


def test_agent_unavailable(root: pvekit.Cluster, simx: Simulator) -> None:
    no_agent = next(
        g.vmid
        for g in simx["prod"].state.guests.values()
        if g.type == "qemu" and not g.agent and g.running
    )
    with pytest.raises(GuestAgentError, match="No QEMU guest agent configured") as info:
        root.guest(no_agent).agent.interfaces()
    assert info.value.status == 500
    assert root.guest(no_agent).agent.ping() is False
    assert root.guest(104).agent.ping() is True
    with pytest.raises(GuestAgentError, match="not running"):
        root.guest(123).agent.exec("hostname")  # stopped VM


def test_agent_is_qemu_only(root: pvekit.Cluster, prod: Any) -> None:
    ct = Guest(root, 146, node="pve2", type="lxc")
    for call in (ct.agent.interfaces, ct.agent.filesystems, lambda: ct.agent.exec("ls")):
        with pytest.raises(InvalidInputError, match="QEMU"):
            call()
    assert prod.requests == []


# -- console --------------------------------------------------------------------------------------


def test_console_urls(root: pvekit.Cluster) -> None:
    vm = root.guest(100)
    url = vm.console_url()
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == root.base_url.removesuffix("/api2/json")
    q = parse_qs(parts.query, keep_blank_values=True)
    assert q == {
        "console": ["kvm"],
        "novnc": ["1"],
        "vmid": ["100"],
        "vmname": ["web-01"],
        "node": ["pve1"],
        "resize": ["off"],
        "cmd": [""],
    }
    ct = parse_qs(urlsplit(root.guest(146).console_url()).query)
    assert ct["console"] == ["lxc"] and ct["vmid"] == ["146"]
    shell = parse_qs(urlsplit(vm.shell_url()).query, keep_blank_values=True)
    assert shell == {
        "console": ["shell"],
        "novnc": ["1"],
        "node": ["pve1"],
        "resize": ["off"],
        "cmd": [""],
    }
    assert node_shell_url(root, "pve3").endswith("node=pve3&resize=off&cmd=")
    with pytest.raises(InvalidInputError):
        node_shell_url(root, "bad node")


def test_vnc_proxy_qemu_has_one_time_password(root: pvekit.Cluster, prod: Any) -> None:
    g = root.guest(101)
    proxy = g.vnc_proxy()
    (sent,) = [r for r in prod.requests if r.method == "POST"]
    assert sent.params == {"websocket": "1", "generate-password": "1"}
    assert proxy.port >= 5900 and proxy.user == "root@pam" and proxy.node == g.node
    assert proxy.ticket.startswith("PVEVNC:") and proxy.password
    text = repr(proxy)
    assert proxy.ticket not in text and "password" not in text
    ws = proxy.websocket_url()
    assert ws.startswith("ws://") and f"{g.path}/vncwebsocket?port={proxy.port}" in ws
    assert proxy.upid and root.task(proxy.upid).type == "vncproxy"


def test_vnc_proxy_container_and_node_shell(root: pvekit.Cluster, prod: Any) -> None:
    proxy = root.guest(146).vnc_proxy()
    assert proxy.password is None and proxy.ticket
    assert [r.params for r in prod.requests if r.method == "POST"] == [{"websocket": "1"}]
    shell = node_vnc_shell(root, "pve2")
    assert shell.ticket and "/nodes/pve2/vncwebsocket" in shell.websocket_url()


def test_vnc_proxy_of_stopped_guest_and_auditor(root: pvekit.Cluster, simx: Simulator) -> None:
    with pytest.raises(pvekit.APIError, match="not running"):
        root.guest(123).vnc_proxy()
    auditor = pvekit.connect(**simx["prod"].connect_kwargs(identity="auditor"), cache=False)
    try:
        with pytest.raises(PermissionDeniedError) as info:
            auditor.guest(101).vnc_proxy()
        assert "token" not in str(info.value)  # a password login: no token advice
    finally:
        auditor.close()


def test_token_refusal_explains_token_limits(
    simx: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(ctx: Any) -> Any:
        raise SimHTTPError(403, "Permission check failed (/vms/101, VM.Console)")

    for key in [k for k in sim_handlers.ROUTES if k[0].endswith("/vncproxy")]:
        monkeypatch.setitem(sim_handlers.ROUTES, key, refuse)
    token = pvekit.connect(**simx["prod"].connect_kwargs(identity="token"), cache=False)
    try:
        with pytest.raises(PermissionDeniedError) as info:
            token.guest(101).vnc_proxy()
        text = str(info.value)
        assert "VM.Console" in text and "API token" in text and "password" in text
        assert info.value.status == 403
        assert simx["prod"].auth.token_secret not in text
    finally:
        token.close()
    monkeypatch.undo()
    token = pvekit.connect(**simx["prod"].connect_kwargs(identity="token"), cache=False)
    try:
        proxy = token.guest(101).vnc_proxy()  # the root token may open consoles
        assert proxy.token_auth and proxy.ticket
    finally:
        token.close()
