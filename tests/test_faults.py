"""Fault matrix: reads and actions under the simulator's injected faults.

Every case names a fault, injects it, runs a read (the guest table, the node table) or an
action (starting a stopped VM) and checks the outcome: the correct data after retries,
partial data with a clear warning, or a clear error of the right type. Actions are never sent
twice (the simulator's recorded POSTs are counted) and the client recovers once the fault is
cleared. Timeouts and latencies are short so the whole file stays fast.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

import pvekit
from pvekit import (
    ConnectionError,
    NodeUnreachableError,
    PVEError,
    ServerError,
    TaskFailedError,
    TaskTimeoutError,
    TimeoutError,
)
from pvekit._cluster import IncompleteDataWarning
from pvekit._group import PartialResultWarning

if TYPE_CHECKING:
    from pvekit import Cluster
    from pvekit.sim import SimCluster, Simulator

TIMEOUT = 0.6  # seconds, read and connect: a spike of SPIKE seconds is beyond it
SPIKE = 1.5
RESOURCES = "/cluster/resources"
START = "/nodes/*/qemu/*/status/start"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    from pvekit.sim import Simulator

    # Short tasks: a start finishes in a tenth of a second.
    with Simulator("demo", task_duration=0.1) as s:
        yield s


def _connect(sim: Simulator, name: str = "prod", **kwargs: Any) -> Cluster:
    kw = dict(sim[name].connect_kwargs(identity="root"))
    kw.pop("profile", None)
    kw.update(kwargs)
    kw.setdefault("cache", False)
    kw.setdefault("retries", 2)
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", TIMEOUT)
    return pvekit.connect(name, **kw)


@pytest.fixture
def prod(sim: Simulator) -> Iterator[Cluster]:
    c = _connect(sim)
    yield c
    c.close()


def _count(c: SimCluster, method: str, suffix: str, status: int | None = None) -> int:
    return sum(
        1
        for r in c.requests
        if r.method == method and r.path.endswith(suffix) and (status is None or r.status == status)
    )


def _key(df: Any) -> list[tuple[int, str, str]]:
    """What must not change under a fault: which guests, their names and nodes."""
    return sorted(zip(df["vmid"], df["name"].astype(str), df["node"].astype(str), strict=True))


# --------------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class ReadCase:
    """A fault on ``GET /cluster/resources`` and what ``guests()`` must do under it."""

    name: str
    inject: Callable[[SimCluster], Any]
    retries: int
    outcome: type[PVEError] | None  # None: the correct data
    sent: int  # requests to /cluster/resources for the one call


def _spike(pattern: str, times: int | None = None, post: bool = False) -> Callable[..., Any]:
    methods = ("POST",) if post else None
    return lambda c, *_: c.faults.latency(SPIKE, pattern=pattern, times=times, methods=methods)


def _err(
    statuses: tuple[int, ...], pattern: str, times: int | None = None, post: bool = False
) -> Callable[..., Any]:
    methods = ("POST",) if post else None
    return lambda c, *_: c.faults.errors(
        1.0, statuses, pattern=pattern, times=times, methods=methods
    )


def _drop(pattern: str, times: int | None = None, post: bool = False) -> Callable[..., Any]:
    methods = ("POST",) if post else None
    return lambda c, *_: c.faults.drop(1.0, pattern=pattern, times=times, methods=methods)


READ_CASES = [
    ReadCase("spike beyond timeout, once", _spike(RESOURCES, 1), 2, None, 2),
    ReadCase("spike beyond timeout, lasting", _spike(RESOURCES), 1, TimeoutError, 2),
    ReadCase("502 burst", _err((502,), RESOURCES, 2), 2, None, 3),
    ReadCase("503 burst", _err((503,), RESOURCES, 2), 2, None, 3),
    ReadCase("503 beyond the retries", _err((503,), RESOURCES), 2, ServerError, 3),
    ReadCase("500 (not transient)", _err((500,), RESOURCES, 1), 2, ServerError, 1),
    ReadCase("mixed 502/503 burst", _err((502, 503), RESOURCES, 2), 2, None, 3),
    ReadCase("dropped connection, once", _drop(RESOURCES, 1), 2, None, 2),
    ReadCase("dropped connections, lasting", _drop(RESOURCES), 1, ConnectionError, 2),
]


@pytest.mark.parametrize("case", READ_CASES, ids=[c.name for c in READ_CASES])
def test_read_under_fault(sim: Simulator, case: ReadCase) -> None:
    cluster = _connect(sim, retries=case.retries)
    try:
        baseline = _key(cluster.guests())
        sim["prod"].clear_requests()
        case.inject(sim["prod"])
        if case.outcome is None:
            assert _key(cluster.guests()) == baseline
        else:
            with pytest.raises(case.outcome) as info:
                cluster.guests()
            msg = str(info.value)
            assert "GET /cluster/resources" in msg and "prod" in msg, msg
        # A delayed request is logged by the simulator when it has been answered.
        _wait_until(lambda: _count(sim["prod"], "GET", RESOURCES) >= case.sent)
        assert _count(sim["prod"], "GET", RESOURCES) == case.sent
        # The fault clears: the same client reads correct data again.
        sim["prod"].faults.clear()
        assert _key(cluster.guests()) == baseline
    finally:
        cluster.close()


def test_read_timeout_is_also_the_builtin_timeout(sim: Simulator) -> None:
    cluster = _connect(sim, retries=0)
    try:
        sim["prod"].faults.latency(SPIKE, pattern=RESOURCES, times=1)
        with pytest.raises(builtins_timeout()):
            cluster.guests()
    finally:
        cluster.close()


def builtins_timeout() -> type[BaseException]:
    import builtins

    return builtins.TimeoutError


def test_ticket_expiry_in_the_middle_of_a_run(sim: Simulator, prod: Cluster) -> None:
    first = _key(prod.guests())
    logins = _count(sim["prod"], "POST", "/access/ticket")
    sim["prod"].expire_tickets()
    # Mid-run: a detailed read whose requests now meet a refused ticket.
    df = prod.guests(details=True, progress=False)
    assert _key(df) == first
    assert df["error"].isna().sum() > 0.8 * len(df)
    assert _count(sim["prod"], "POST", "/access/ticket") == logins + 1
    # Tickets also lapse with time (2 h on the simulator clock).
    sim.clock.advance(2 * 3600 + 5)
    assert _key(prod.guests(fresh=True)) == first
    assert _count(sim["prod"], "POST", "/access/ticket") == logins + 2


def test_node_offline_gives_partial_details_with_reasons(sim: Simulator, prod: Cluster) -> None:
    baseline = _key(prod.guests())
    sim["prod"].set_node_online("pve3", False)
    df = prod.guests(details=True, progress=False, fresh=True)
    assert _key(df) == baseline  # every guest keeps its row
    on3 = df[df["node"] == "pve3"]
    assert len(on3) and on3["error"].str.contains("pve3").all()
    assert df.loc[df["node"] != "pve3", "error"].isna().sum() > 0
    sim["prod"].set_node_online("pve3", True)
    again = prod.guests(details=True, progress=False, fresh=True)
    assert again.loc[again["node"] == "pve3", "memory"].notna().all()


def test_595_from_a_node_warns_and_keeps_the_row(sim: Simulator, prod: Cluster) -> None:
    sim["prod"].faults.errors(1.0, (595,), pattern="/nodes/pve2/status")
    with pytest.warns(IncompleteDataWarning, match=r"pve2"):
        nodes = prod.nodes(progress=False)
    assert set(nodes["node"]) == {"pve1", "pve2", "pve3"}
    sim["prod"].faults.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteDataWarning)
        nodes = prod.nodes(progress=False, fresh=True)
    assert nodes.set_index("node").loc["pve2", "kernel"]


def test_595_per_guest_is_recorded_in_the_error_column(sim: Simulator, prod: Cluster) -> None:
    sim["prod"].faults.errors(1.0, (595,), pattern="/nodes/pve1/qemu/*/config")
    df = prod.guests(details=True, progress=False)
    bad = df[(df["node"] == "pve1") & (df["type"] == "qemu")]
    assert len(bad) and bad["error"].str.contains("config").all()
    good = df[df["node"] != "pve1"]
    assert good["error"].isna().any()


# --------------------------------------------------------------------------------- actions


def _stopped_vm(c: SimCluster, skip: tuple[int, ...] = ()) -> int:
    for g in sorted(c.state.guests.values(), key=lambda g: g.vmid):
        if (
            g.type == "qemu"
            and g.status == "stopped"
            and not g.template
            and not g.lock
            and g.vmid not in skip
            and c.state.nodes[g.node].online
        ):
            return g.vmid
    raise AssertionError("no stopped VM in the scenario")


@dataclass(frozen=True)
class ActionCase:
    """A fault on ``POST .../status/start`` and what ``guest.start()`` must do under it."""

    name: str
    inject: Callable[[SimCluster, str], Any]  # (cluster, node of the guest)
    outcome: type[PVEError]
    clear: Callable[[SimCluster, str], Any] = lambda c, node: c.faults.clear()


def _offline(c: SimCluster, node: str) -> None:
    c.set_node_online(node, False)


def _online(c: SimCluster, node: str) -> None:
    c.set_node_online(node, True)


ACTION_CASES = [
    ActionCase("spike beyond timeout", _spike(START, post=True), TimeoutError),
    ActionCase("500", _err((500,), START, post=True), ServerError),
    ActionCase("502 burst", _err((502,), START, 3, post=True), ServerError),
    ActionCase("503 burst", _err((503,), START, 3, post=True), ServerError),
    ActionCase("dropped connection", _drop(START, post=True), ConnectionError),
    ActionCase("node offline (595)", _offline, NodeUnreachableError, _online),
    ActionCase("595 from the proxy", _err((595,), START, post=True), NodeUnreachableError),
]


@pytest.mark.parametrize("case", ACTION_CASES, ids=[c.name for c in ACTION_CASES])
def test_action_under_fault_is_sent_once(sim: Simulator, prod: Cluster, case: ActionCase) -> None:
    c = sim["prod"]
    vmid = _stopped_vm(c)
    guest = prod.guest(vmid)
    node = guest.node
    c.clear_requests()
    case.inject(c, node)
    with pytest.raises(case.outcome) as info:
        guest.start()
    assert "start" in str(info.value) and "prod" in str(info.value)
    assert _count(c, "POST", "/status/start") <= 1  # never retried by the client
    case.clear(c, node)
    if case.outcome is TimeoutError:
        # The server ran the slow request after the client gave up: the VM starts once.
        _wait_until(lambda: _count(c, "POST", "/status/start") >= 1)
        assert _count(c, "POST", "/status/start") == 1
        _wait_until(lambda: guest.status().get("status") == "running")
        return
    assert guest.status()["status"] == "stopped"
    # Recovery: the fault is gone, the start goes through exactly once more.
    task = guest.start()
    assert task.wait(timeout=10, poll=0.05, progress=False).ok
    assert guest.status()["status"] == "running"
    assert _count(c, "POST", "/status/start", status=200) == 1


def _wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_action_after_ticket_expiry_runs_once(sim: Simulator, prod: Cluster) -> None:
    c = sim["prod"]
    guest = prod.guest(_stopped_vm(c))
    guest.node  # noqa: B018 - resolve before the fault
    c.clear_requests()
    c.expire_tickets()
    task = guest.start()
    assert task.wait(timeout=10, poll=0.05, progress=False).ok
    # The first POST met a refused ticket (401: not run); after one login it ran once.
    assert _count(c, "POST", "/status/start", status=401) == 1
    assert _count(c, "POST", "/status/start", status=200) == 1
    assert _count(c, "POST", "/access/ticket") == 1


def test_task_that_fails(sim: Simulator, prod: Cluster) -> None:
    c = sim["prod"]
    c.faults.fail_tasks("qmstart", "start failed: QEMU exited with code 1")
    guest = prod.guest(_stopped_vm(c))
    task = guest.start()
    with pytest.raises(TaskFailedError, match="QEMU exited with code 1") as info:
        task.wait(timeout=10, poll=0.05, progress=False)
    assert info.value.task is task or getattr(info.value, "task", task).upid == task.upid
    assert _count(c, "POST", "/status/start") == 1
    c.faults.clear()
    assert guest.start().wait(timeout=10, poll=0.05, progress=False).ok
    assert _count(c, "POST", "/status/start") == 2


def test_task_that_never_ends(sim: Simulator, prod: Cluster) -> None:
    c = sim["prod"]
    c.faults.slow_tasks(math.inf, task_type="qmstart")
    first = _stopped_vm(c)
    guest = prod.guest(first)
    task = guest.start()
    with pytest.raises(TaskTimeoutError) as info:
        task.wait(timeout=0.4, poll=0.05, progress=False)
    assert info.value.task is task
    assert task.running  # left running, untouched
    task.stop()
    with pytest.raises(TaskFailedError):
        task.wait(timeout=10, poll=0.05, progress=False)
    assert _count(c, "POST", "/status/start") == 1
    c.faults.clear()
    other = prod.guest(_stopped_vm(c, skip=(first,)))
    assert other.start().wait(timeout=10, poll=0.05, progress=False).ok


# --------------------------------------------------------------------------------- group


@pytest.mark.parametrize(
    "fault",
    ["dropped", "timeout", "503", "tickets refused"],
)
def test_one_cluster_of_a_group_down(sim: Simulator, fault: str) -> None:
    prod = _connect(sim, "prod", retries=1)
    lab = _connect(sim, "lab", retries=1)
    group = pvekit.Group([prod, lab])
    try:
        full = group.guests()
        lab_rows = int((full["profile"] == "lab").sum())
        c = sim["lab"]
        if fault == "dropped":
            c.faults.drop(1.0)
        elif fault == "timeout":
            c.faults.latency(SPIKE)
        elif fault == "503":
            c.faults.errors(1.0, (503,))
        else:
            c.expire_tickets()
            c.faults.errors(1.0, (401,), pattern="/access/ticket")
        with pytest.warns(PartialResultWarning, match="lab"):
            part = group.guests(fresh=True)
        assert set(part["profile"]) == {"prod"}
        assert len(part) == len(full) - lab_rows
        status = group.status().set_index("profile")
        if fault == "503":
            # The cluster answered (with 503 after the retries): reachable, the call failed.
            assert "503" in str(status.loc["lab", "error"])
        else:
            assert not bool(status.loc["lab", "connected"])
            assert status.loc["lab", "state"] == "failed"
        assert "lab" not in str(status.loc["prod", "error"])
        assert bool(status.loc["prod", "connected"])
        # An action on the down cluster is a clear error; on the other it works.
        with pytest.raises(PVEError):
            group.guest(_stopped_vm(c), profile="lab").start()
        c.faults.clear()
        group.reconnect()
        status = group.status().set_index("profile")
        assert bool(status.loc["lab", "connected"])
        with warnings.catch_warnings():
            warnings.simplefilter("error", PartialResultWarning)
            again = group.guests(fresh=True)
        assert len(again) == len(full)
    finally:
        group.close()
