"""Invalid user input to every public call: a clear pvekit error, before any request.

Each case calls the public API with a wrong argument and asserts the error class, that the
message names the problem, and that the simulator received nothing (reads and writes
alike). Handles are resolved first (their node and type known) so that "nothing" really
means the bad argument was caught by pvekit, not by Proxmox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

import pvekit
from pvekit import (
    ConfigError,
    InvalidInputError,
    InvalidVMIDError,
    NotFoundError,
    PVEError,
)

if TYPE_CHECKING:
    from pvekit import Cluster, Group, Guest
    from pvekit.sim import Simulator


def _connect(sim: Simulator, name: str) -> Cluster:
    kw = dict(sim[name].connect_kwargs(identity="root"))
    kw.pop("profile", None)
    return pvekit.connect(name, cache=False, retries=0, **kw)


@pytest.fixture(scope="module")
def group(sim: Simulator) -> Iterator[Group]:
    g = pvekit.Group([_connect(sim, "prod"), _connect(sim, "lab")])
    yield g
    g.close()


@pytest.fixture(scope="module")
def vm(group: Group) -> Guest:
    guest = group["prod"].guest(100)
    guest.node  # noqa: B018 - resolve node and type now, not inside the checked call
    return guest


@pytest.fixture(scope="module")
def ct(sim: Simulator, group: Group) -> Guest:
    lxc = min(g.vmid for g in sim["prod"].state.guests.values() if g.type == "lxc")
    guest = group["prod"].guest(lxc)
    guest.node  # noqa: B018
    return guest


@pytest.fixture(scope="module")
def task(group: Group) -> Any:
    return group["prod"].task("UPID:pve1:000A1B2C:0012D687:6650A4B1:qmstart:100:root@pam:")


# (id, call, expected error, words the message must contain)
Case = tuple[str, Callable[..., Any], type[PVEError], tuple[str, ...]]

CONNECT_CASES: list[Case] = [
    (
        "unknown profile",
        lambda: pvekit.connect("no-such-profile"),
        ConfigError,
        ("no-such-profile",),
    ),
    (
        "unknown group",
        lambda: pvekit.connect_group("no-such-group"),
        ConfigError,
        ("no-such-group",),
    ),
    ("empty group name", lambda: pvekit.connect_group(""), InvalidInputError, ("group",)),
    (
        "bad scheme",
        lambda: pvekit.connect(host="ftp://pve1", user="root@pam", password="x"),
        InvalidInputError,
        ("scheme",),
    ),
    (
        "bad port",
        lambda: pvekit.connect(host="pve1:99999", user="root@pam", password="x"),
        InvalidInputError,
        ("port",),
    ),
    (
        "credentials in host",
        lambda: pvekit.connect(host="root:pw@pve1", password="x"),
        InvalidInputError,
        ("credentials",),
    ),
    (
        "password and token",
        lambda: pvekit.connect(
            host="pve1", user="root@pam", password="x", token_name="t", token_value="v"
        ),
        InvalidInputError,
        ("token",),
    ),
    (
        "no credentials",
        lambda: pvekit.connect(host="pve1", user="root@pam"),
        InvalidInputError,
        ("password",),
    ),
    (
        "bad fingerprint",
        lambda: pvekit.connect(host="pve1", user="root@pam", password="x", fingerprint="AB:CD"),
        InvalidInputError,
        ("fingerprint",),
    ),
    (
        "missing CA file",
        lambda: pvekit.connect(
            host="pve1", user="root@pam", password="x", ca_file="/nonexistent/ca.pem"
        ),
        InvalidInputError,
        ("ca",),
    ),
    (
        "negative timeout",
        lambda: pvekit.connect(host="pve1", user="root@pam", password="x", timeout=-1),
        InvalidInputError,
        ("timeout",),
    ),
    (
        "bad cache",
        lambda: pvekit.connect(host="pve1", user="root@pam", password="x", cache="disk"),
        InvalidInputError,
        ("cache",),
    ),
    (
        "bad retries",
        lambda: pvekit.connect(host="pve1", user="root@pam", password="x", retries=-2),
        InvalidInputError,
        ("retries",),
    ),
]


@pytest.mark.parametrize(
    ("label", "call", "error", "words"), CONNECT_CASES, ids=[c[0] for c in CONNECT_CASES]
)
def test_connect_rejects_bad_input(
    label: str, call: Callable[[], Any], error: type[PVEError], words: tuple[str, ...]
) -> None:
    # "pve1" does not resolve here: a request would be a ConnectionError, not the error
    # expected, so a pass also proves that nothing was sent.
    with pytest.raises(error) as info:
        call()
    msg = str(info.value).lower()
    for word in words:
        assert word.lower() in msg, f"{label}: {msg!r} does not mention {word!r}"


BAD_VMIDS = [0, -1, "abc", 1.5, True, None, "", "100x", [100], 10**12]

CLUSTER_CASES: list[
    tuple[str, Callable[[Any, Any, Any, Any], Any], type[PVEError], tuple[str, ...]]
] = [
    # Cluster / Group reads
    ("guest vmid 0", lambda g, vm, ct, t: g["prod"].guest(0), InvalidVMIDError, ("0",)),
    (
        "guest vmid text",
        lambda g, vm, ct, t: g["prod"].guest("web-01"),
        InvalidVMIDError,
        ("web-01",),
    ),
    ("group guest vmid", lambda g, vm, ct, t: g.guest(-5), InvalidVMIDError, ("-5",)),
    (
        "group unknown profile",
        lambda g, vm, ct, t: g.guest(100, profile="nope"),
        InvalidInputError,
        ("nope",),
    ),
    ("group index unknown", lambda g, vm, ct, t: g["nope"], InvalidInputError, ("nope",)),
    (
        "cluster other profile",
        lambda g, vm, ct, t: g["prod"].guest(100, profile="lab"),
        InvalidInputError,
        ("lab",),
    ),
    ("metrics kind", lambda g, vm, ct, t: g.metrics("vm"), InvalidInputError, ("kind",)),
    (
        "metrics timeframe",
        lambda g, vm, ct, t: g.metrics("node", timeframe="fortnight"),
        InvalidInputError,
        ("timeframe",),
    ),
    ("metrics cf", lambda g, vm, ct, t: g.metrics("node", cf="MEDIAN"), InvalidInputError, ("cf",)),
    (
        "metrics guest target",
        lambda g, vm, ct, t: g["prod"].metrics("guest", ["x"]),
        InvalidVMIDError,
        ("x",),
    ),
    (
        "metrics node target",
        lambda g, vm, ct, t: g["prod"].metrics("node", [None]),
        InvalidInputError,
        ("node",),
    ),
    ("tasks limit", lambda g, vm, ct, t: g.tasks(limit=0), InvalidInputError, ("limit",)),
    (
        "cluster tasks limit",
        lambda g, vm, ct, t: g["prod"].tasks(limit=-1),
        InvalidInputError,
        ("limit",),
    ),
    (
        "tasks running",
        lambda g, vm, ct, t: g["prod"].tasks(running="yes"),
        InvalidInputError,
        ("running",),
    ),
    (
        "tasks since",
        lambda g, vm, ct, t: g["prod"].tasks(since="last tuesday"),
        InvalidInputError,
        ("since",),
    ),
    (
        "backups vmid",
        lambda g, vm, ct, t: g["prod"].backups(vmid="all"),
        InvalidVMIDError,
        ("all",),
    ),
    ("snapshots vmid", lambda g, vm, ct, t: g["prod"].snapshots(vmid=0), InvalidVMIDError, ("0",)),
    ("task upid", lambda g, vm, ct, t: g["prod"].task("not-a-upid"), InvalidInputError, ("upid",)),
    (
        "group task profile",
        lambda g, vm, ct, t: g.task(
            "UPID:pve1:000A1B2C:0012D687:6650A4B1:qmstart:100:root@pam:", "nope"
        ),
        InvalidInputError,
        ("nope",),
    ),
    (
        "raw path",
        lambda g, vm, ct, t: g["prod"].get("cluster/resources"),
        InvalidInputError,
        ("path",),
    ),
    # Guest actions
    ("snapshot empty", lambda g, vm, ct, t: vm.snapshot(""), InvalidInputError, ("snapshot",)),
    (
        "snapshot space",
        lambda g, vm, ct, t: vm.snapshot("before upgrade"),
        InvalidInputError,
        ("before upgrade",),
    ),
    ("snapshot digit first", lambda g, vm, ct, t: vm.snapshot("1st"), InvalidInputError, ("1st",)),
    (
        "snapshot reserved",
        lambda g, vm, ct, t: vm.snapshot("current"),
        InvalidInputError,
        ("current",),
    ),
    (
        "snapshot too long",
        lambda g, vm, ct, t: vm.snapshot("s" * 41),
        InvalidInputError,
        ("snapshot",),
    ),
    ("rollback name", lambda g, vm, ct, t: vm.rollback("no way"), InvalidInputError, ("no way",)),
    (
        "delete snapshot name",
        lambda g, vm, ct, t: vm.delete_snapshot("-x"),
        InvalidInputError,
        ("-x",),
    ),
    (
        "resize size junk",
        lambda g, vm, ct, t: vm.resize("scsi0", "big"),
        InvalidInputError,
        ("big",),
    ),
    (
        "resize size negative",
        lambda g, vm, ct, t: vm.resize("scsi0", "-5G"),
        InvalidInputError,
        ("-5G",),
    ),
    (
        "resize size zero",
        lambda g, vm, ct, t: vm.resize("scsi0", "+0"),
        InvalidInputError,
        ("size",),
    ),
    (
        "resize disk key",
        lambda g, vm, ct, t: vm.resize("scsi0; rm", "+1G"),
        InvalidInputError,
        ("disk",),
    ),
    ("update nothing", lambda g, vm, ct, t: vm.update(), InvalidInputError, ("update",)),
    ("update cores", lambda g, vm, ct, t: vm.update(cores=0), InvalidInputError, ("cores",)),
    ("update memory", lambda g, vm, ct, t: vm.update(memory="lots"), InvalidInputError, ("lots",)),
    ("update vmid", lambda g, vm, ct, t: vm.update(vmid=5), InvalidInputError, ("vmid",)),
    ("clone newid", lambda g, vm, ct, t: vm.clone(newid=-1), InvalidVMIDError, ("-1",)),
    ("migrate target empty", lambda g, vm, ct, t: vm.migrate(""), InvalidInputError, ("target",)),
    (
        "migrate target path",
        lambda g, vm, ct, t: vm.migrate("../pve2"),
        InvalidInputError,
        ("../pve2",),
    ),
    ("backup mode", lambda g, vm, ct, t: vm.backup(mode="hot"), InvalidInputError, ("mode",)),
    (
        "backup compress",
        lambda g, vm, ct, t: vm.backup(compress="rar"),
        InvalidInputError,
        ("compress",),
    ),
    (
        "shutdown timeout",
        lambda g, vm, ct, t: vm.shutdown(timeout=-3),
        InvalidInputError,
        ("timeout",),
    ),
    (
        "exec empty",
        lambda g, vm, ct, t: (
            vm.agent.exec("") if hasattr(vm, "agent") and hasattr(vm.agent, "exec") else vm.exec("")
        ),
        InvalidInputError,
        ("empty",),
    ),
    (
        "suspend lxc to disk",
        lambda g, vm, ct, t: ct.suspend(to_disk=True),
        InvalidInputError,
        ("disk",),
    ),
    (
        "delete backup volid",
        lambda g, vm, ct, t: vm.delete_backup("not a volid"),
        InvalidInputError,
        ("volid",),
    ),
    # Task
    ("wait timeout", lambda g, vm, ct, t: t.wait(timeout=-1), InvalidInputError, ("timeout",)),
    ("wait poll", lambda g, vm, ct, t: t.wait(poll=0), InvalidInputError, ("poll",)),
    ("log limit", lambda g, vm, ct, t: t.log(start=-1), InvalidInputError, ("start",)),
]


KNOWN_BUGS: dict[str, str] = {}  # label -> why it still fails (strict xfail)


def _params(cases: list[Any]) -> list[Any]:
    return [
        pytest.param(*c, id=c[0], marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[c[0]]))
        if c[0] in KNOWN_BUGS
        else pytest.param(*c, id=c[0])
        for c in cases
    ]


@pytest.mark.parametrize(("label", "call", "error", "words"), _params(CLUSTER_CASES))
def test_bad_input_fails_before_any_request(
    sim: Simulator,
    group: Group,
    vm: Guest,
    ct: Guest,
    task: Any,
    label: str,
    call: Callable[[Any, Any, Any, Any], Any],
    error: type[PVEError],
    words: tuple[str, ...],
) -> None:
    sim.clear_requests()
    with pytest.raises(error) as info:
        call(group, vm, ct, task)
    msg = str(info.value)
    for word in words:
        assert word.lower() in msg.lower(), f"{label}: {msg!r} does not mention {word!r}"
    sent = [(r.method, r.path) for r in sim.requests]
    assert sent == [], f"{label}: requests were sent before the input was rejected: {sent}"


@pytest.mark.parametrize("vmid", BAD_VMIDS, ids=repr)
def test_every_vmid_taking_call_rejects_bad_vmids(sim: Simulator, group: Group, vmid: Any) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: group.guest(vmid),
        lambda: group["prod"].guest(vmid),
        lambda: group["prod"].metrics("guest", [vmid]),
    ]
    if vmid is not None:  # None means "every guest" for these
        calls += [
            lambda: group.backups(vmid=vmid),
            lambda: group.snapshots(vmid=vmid),
            lambda: group["prod"].backups(vmid=vmid),
            lambda: group["prod"].snapshots(vmid=vmid),
        ]
    sim.clear_requests()
    for call in calls:
        with pytest.raises(InvalidInputError):
            call()
    assert sim.requests == []


def test_unknown_node_and_guest_are_clear_errors(sim: Simulator, group: Group) -> None:
    prod = group["prod"]
    sim.clear_requests()
    with pytest.raises(NotFoundError, match="nope"):
        prod.metrics("node", ["nope"])
    with pytest.raises(NotFoundError, match="999999"):
        prod.metrics("guest", [999999])
    with pytest.raises(NotFoundError, match="999999"):
        prod.guest(999999).start()
    # Finding out that a name is unknown takes the inventory, and nothing else: no write.
    assert {r.method for r in sim.requests} == {"GET"}
    assert {r.path for r in sim.requests} <= {"/cluster/resources"}


def test_migrate_to_an_unknown_node_sends_no_write(sim: Simulator, vm: Guest) -> None:
    sim.clear_requests()
    with pytest.raises(PVEError, match="pve9"):
        vm.migrate("pve9")
    assert [r for r in sim.requests if r.method != "GET"] == []
