"""Task: UPID parsing, status, log, and wait (OK, WARNINGS, failure, timeout).

The state machine is tested with a scripted fake client (no HTTP); the same outcomes are then
checked against the simulator, whose tasks really run on its clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest

import pvekit
from pvekit import InvalidInputError, TaskFailedError, TaskTimeoutError
from pvekit._tasks import Task, TaskStatus, exit_state
from pvekit.sim import Simulator

UPID = "UPID:pve2:0002A1B3:0F619352:6B0BBAEA:qmstart:123:root@pam:"
QUOTED = "UPID%3Apve2%3A0002A1B3%3A0F619352%3A6B0BBAEA%3Aqmstart%3A123%3Aroot%40pam%3A"


class FakeClient:
    """Answers task status reads from a script, records every call."""

    profile = "fake"

    def __init__(self, statuses: list[dict[str, Any]], log: list[str] | None = None) -> None:
        self.statuses = statuses
        self.lines = log or []
        self.calls: list[tuple[str, str, dict[str, Any], bool]] = []
        self.invalidated: list[tuple[str, ...]] = []

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        fresh: bool = False,
        **kwargs: Any,
    ) -> Any:
        self.calls.append(("GET", path, dict(params or {}), fresh))
        if path.endswith("/status"):
            return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if path.endswith("/log"):
            start = int((params or {}).get("start", 0))
            limit = int((params or {}).get("limit", 50))
            rows = [{"n": i + 1, "t": t} for i, t in enumerate(self.lines)][start : start + limit]
            return list(reversed(rows))  # Proxmox does not promise the order
        raise AssertionError(path)

    def delete(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        self.calls.append(("DELETE", path, dict(params or {}), False))
        return None

    def invalidate(self, *prefixes: str, exact: Iterable[str] = ()) -> None:
        self.invalidated.append((*prefixes, *exact))


RUNNING = {"status": "running", "upid": UPID}


def stopped(exitstatus: str) -> dict[str, Any]:
    return {"status": "stopped", "exitstatus": exitstatus, "upid": UPID}


# -- UPID and status parsing ---------------------------------------------------------------


def test_upid_fields_are_parsed() -> None:
    t = Task(FakeClient([RUNNING]), UPID)
    assert (t.node, t.pid, t.pstart, t.type, t.id, t.user) == (
        "pve2",
        0x2A1B3,
        0x0F619352,
        "qmstart",
        "123",
        "root@pam",
    )
    assert t.starttime.timestamp() == 0x6B0BBAEA
    assert t.starttime.tzinfo is not None
    assert t.vmid == 123
    assert t.upid == UPID
    assert "qmstart 123 on pve2" in repr(t)


def test_upid_without_trailing_colon_and_token_user() -> None:
    t = Task(FakeClient([RUNNING]), "UPID:n1:00000001:00000002:00000003:vzdump::root@pam!ci")
    assert t.id == "" and t.vmid is None and t.user == "root@pam!ci"
    assert t.upid.endswith(":")


@pytest.mark.parametrize(
    "bad",
    ["", "nope", "UPID:pve:zz:00000001:00000002:qmstart:1:root@pam:", "UPID:pve:00000001", 42],
)
def test_malformed_upid_is_a_clear_error(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="UPID"):
        Task(FakeClient([RUNNING]), bad)


@pytest.mark.parametrize(
    ("exitstatus", "state", "ok", "warnings"),
    [
        ("OK", "ok", True, 0),
        ("WARNINGS: 3", "warnings", True, 3),
        ("WARNINGS: 1", "warnings", True, 1),
        ("command 'qm start' failed: exit code 1", "error", False, 0),
        ("unexpected status", "error", False, 0),
    ],
)
def test_status_classification(exitstatus: str, state: str, ok: bool, warnings: int) -> None:
    st = TaskStatus.from_body(UPID, "pve2", stopped(exitstatus))
    assert (st.state, st.ok, st.warnings, st.running) == (state, ok, warnings, False)
    assert exit_state(exitstatus) == state


def test_task_list_spelling_is_understood() -> None:
    st = TaskStatus.from_body(UPID, "pve2", {"status": "WARNINGS: 2"})
    assert st.state == "warnings" and st.exitstatus == "WARNINGS: 2"
    assert TaskStatus.from_body(UPID, "pve2", {"status": "RUNNING"}).running


def test_status_reads_own_node_fresh_and_finished_status_is_kept() -> None:
    client = FakeClient([RUNNING, stopped("OK")])
    t = Task(client, UPID)
    assert t.running is True
    assert t.ok is True  # second read: stopped OK
    assert t.exitstatus == "OK"
    status_reads = [c for c in client.calls if c[1].endswith("/status")]
    assert len(status_reads) == 2  # the ended status is not read again
    assert all(c[1] == f"/nodes/pve2/tasks/{QUOTED}/status" and c[3] for c in status_reads)


def test_log_is_ordered_and_paged() -> None:
    client = FakeClient([stopped("OK")], log=[f"line {i}" for i in range(1, 1201)])
    t = Task(client, UPID)
    assert t.log(limit=3) == ["line 1", "line 2", "line 3"]
    assert t.log(start=10, limit=2) == ["line 11", "line 12"]
    everything = t.log(limit=None)
    assert len(everything) == 1200 and everything[-1] == "line 1200"
    assert t.log_tail(2) == ["line 1199", "line 1200"]


@pytest.mark.parametrize("kwargs", [{"start": -1}, {"limit": 0}, {"start": "1"}, {"limit": True}])
def test_log_arguments_are_checked(kwargs: dict[str, Any]) -> None:
    client = FakeClient([RUNNING])
    with pytest.raises(InvalidInputError):
        Task(client, UPID).log(**kwargs)
    assert client.calls == []


# -- wait: the state machine ----------------------------------------------------------------


def test_wait_ok_returns_final_status_and_drops_stale_reads() -> None:
    client = FakeClient([RUNNING, RUNNING, stopped("OK")])
    seen: list[Task] = []
    t = Task(
        client,
        UPID,
        invalidate=["/nodes/pve2/qemu/123", "/cluster/resources"],
        on_success=seen.append,
    )
    st = t.wait(poll=0.001, progress=False)
    assert st.ok and st.state == "ok"
    assert client.invalidated == [("/nodes/pve2/qemu/123", "/cluster/resources")]
    assert seen == [t]
    assert not any(c[1].endswith("/log") for c in client.calls)  # no bar, no log reads
    assert t.wait(progress=False) is st  # waiting again costs nothing


def test_wait_warnings_is_success() -> None:
    client = FakeClient([RUNNING, stopped("WARNINGS: 2")])
    st = Task(client, UPID).wait(poll=0.001, progress=False)
    assert st.ok and st.state == "warnings" and st.warnings == 2


def test_wait_failure_raises_with_exit_status_and_log_tail() -> None:
    log = [f"step {i}" for i in range(30)] + ["TASK ERROR: start failed: QEMU exited"]
    client = FakeClient([RUNNING, stopped("start failed: QEMU exited")], log=log)
    seen: list[Task] = []
    t = Task(client, UPID, on_success=seen.append, invalidate=["/x"])
    with pytest.raises(TaskFailedError) as info:
        t.wait(poll=0.001, progress=False)
    err = info.value
    assert err.exitstatus == "start failed: QEMU exited"
    assert err.log_tail[-1] == "TASK ERROR: start failed: QEMU exited"
    assert len(err.log_tail) == 10
    assert err.task is t
    assert "start failed" in str(err) and err.profile == "fake"
    assert seen == []  # success callbacks do not run on failure
    assert client.invalidated == [("/x",)]  # a failed task may still have changed things


def test_wait_timeout_keeps_the_task_intact() -> None:
    client = FakeClient([RUNNING])
    t = Task(client, UPID)
    with pytest.raises(TaskTimeoutError) as info:
        t.wait(timeout=0, poll=0.001, progress=False)
    assert info.value.task is t
    assert "still running" in str(info.value)
    assert isinstance(info.value, TimeoutError)
    client.statuses = [stopped("OK")]
    assert info.value.task.wait(poll=0.001, progress=False).ok


@pytest.mark.parametrize("kwargs", [{"timeout": -1}, {"poll": 0}, {"timeout": "5"}, {"poll": True}])
def test_wait_arguments_are_checked(kwargs: dict[str, Any]) -> None:
    client = FakeClient([RUNNING])
    with pytest.raises(InvalidInputError):
        Task(client, UPID).wait(progress=False, **kwargs)
    assert client.calls == []


def test_progress_bar_follows_log_percentages(monkeypatch: pytest.MonkeyPatch) -> None:
    import tqdm.auto

    bars: list[Any] = []
    real = tqdm.auto.tqdm

    def spy(*args: Any, **kwargs: Any) -> Any:
        kwargs["disable"] = False
        bar = real(*args, **kwargs)
        bars.append(bar)
        return bar

    monkeypatch.setattr(tqdm.auto, "tqdm", spy)
    client = FakeClient(
        [RUNNING, RUNNING, stopped("OK")], log=["INFO: starting", "INFO:  45% (1 GiB of 2 GiB)"]
    )
    Task(client, UPID).wait(poll=0.001, progress=True)
    assert len(bars) == 1 and bars[0].n == 100  # done: full bar
    assert any(c[1].endswith("/log") for c in client.calls)
    failing = FakeClient(
        [RUNNING, stopped("backup failed")], log=["INFO: starting", "INFO:  45% (1 GiB of 2 GiB)"]
    )
    with pytest.raises(TaskFailedError):
        Task(failing, UPID).wait(poll=0.001, progress=True)
    assert bars[1].n == 45  # the bar stays where the log said it was


def _bar_spy(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    import tqdm.auto

    bars: list[Any] = []
    real = tqdm.auto.tqdm

    def spy(*args: Any, **kwargs: Any) -> Any:
        bars.append(kwargs)
        return real(*args, **{**kwargs, "disable": True})

    monkeypatch.setattr(tqdm.auto, "tqdm", spy)
    return bars


def test_wait_in_a_pipe_logs_one_line_per_step_instead_of_a_bar(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import pvekit._progress as progress

    bars = _bar_spy(monkeypatch)
    monkeypatch.setattr(progress, "interactive", lambda: False)  # stderr is a pipe
    client = FakeClient(
        [RUNNING, RUNNING, stopped("OK")], log=["INFO: starting", "INFO:  45% (1 GiB of 2 GiB)"]
    )
    with caplog.at_level("INFO", logger="pvekit.progress"):
        Task(client, UPID).wait(poll=0.001)
    assert bars == []  # no carriage-return frames
    lines = [r.getMessage() for r in caplog.records if r.name == "pvekit.progress"]
    assert len(lines) == 4, lines  # waiting, the two log lines once each, the end
    assert lines[1].endswith(": INFO: starting") and lines[2].endswith("45% (1 GiB of 2 GiB)")
    assert " OK after " in lines[3]
    # on a terminal or in a notebook: the bar, and no log lines
    monkeypatch.setattr(progress, "interactive", lambda: True)
    caplog.clear()
    with caplog.at_level("INFO", logger="pvekit.progress"):
        Task(FakeClient([stopped("OK")]), UPID).wait(poll=0.001)
    assert len(bars) == 1 and not caplog.records
    Task(FakeClient([stopped("OK")]), UPID).wait(poll=0.001, progress=False)
    assert len(bars) == 1 and not caplog.records


def test_stop_sends_delete_to_the_task_node() -> None:
    client = FakeClient([RUNNING])
    Task(client, UPID).stop()
    assert client.calls[-1][:2] == ("DELETE", f"/nodes/pve2/tasks/{QUOTED}")


# -- against the simulator --------------------------------------------------------------------


@pytest.fixture
def faults(simx: Simulator) -> Iterator[Any]:
    yield simx["prod"].faults
    simx["prod"].faults.clear()


def _stopped_vm(cluster: pvekit.Cluster, skip: set[int]) -> pvekit.Guest:
    for r in cluster.get("/cluster/resources", {"type": "vm"}, fresh=True):
        if (
            r["type"] == "qemu"
            and r["status"] == "stopped"
            and not r.get("template")
            and r["vmid"] not in skip
        ):
            skip.add(r["vmid"])
            return cluster.guest(r["vmid"])
    raise AssertionError("no stopped VM left")


USED: set[int] = set()


def test_sim_wait_ok_and_rebuild_from_upid(root: pvekit.Cluster, simx: Simulator) -> None:
    g = _stopped_vm(root, USED)
    t = g.start()
    simx["prod"].clear_requests()
    st = t.wait(poll=0.02, progress=False)
    assert st.state == "ok" and g.running
    polls = [r for r in simx["prod"].requests if r.path.endswith("/status") and "/tasks/" in r.path]
    assert polls and all(r.path.startswith(f"/nodes/{g.node}/tasks/") for r in polls)
    again = root.task(t.upid)
    assert again == t and again.ok and again.exitstatus == "OK"
    assert any("TASK OK" in line for line in again.log())


def test_sim_wait_warnings(root: pvekit.Cluster, faults: Any) -> None:
    faults.fail_tasks("qmstart", "WARNINGS: 2")
    st = _stopped_vm(root, USED).start().wait(poll=0.02, progress=False)
    assert st.state == "warnings" and st.warnings == 2 and st.ok


def test_sim_wait_failure(root: pvekit.Cluster, faults: Any) -> None:
    faults.fail_tasks("qmstart", "start failed: QEMU exited with code 1")
    g = _stopped_vm(root, USED)
    with pytest.raises(TaskFailedError) as info:
        g.start().wait(poll=0.02, progress=False)
    assert info.value.exitstatus == "start failed: QEMU exited with code 1"
    assert "TASK ERROR: start failed: QEMU exited with code 1" in info.value.log_tail
    assert not g.running


def test_sim_wait_timeout_then_stop(root: pvekit.Cluster, faults: Any) -> None:
    faults.slow_tasks(math.inf, task_type="qmstart")
    t = _stopped_vm(root, USED).start()
    with pytest.raises(TaskTimeoutError) as info:
        t.wait(timeout=0.1, poll=0.02, progress=False)
    assert info.value.task is t and t.running
    t.stop()
    with pytest.raises(TaskFailedError):
        t.wait(timeout=5, poll=0.02, progress=False)


def test_wait_pauses_start_short_and_settle_at_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    import pvekit._tasks as tasks_mod

    pauses: list[float] = []
    monkeypatch.setattr(tasks_mod.time, "sleep", pauses.append)
    client = FakeClient([RUNNING] * 7 + [stopped("OK")])
    Task(client, UPID).wait(poll=1.0, progress=False)
    assert pauses == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
