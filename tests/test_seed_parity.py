"""Seed parity (issue 14): the seed package's and later pvetui's calls, end to end against the
simulator, each checked by its effect."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import pvekit
from pvekit import frames

if TYPE_CHECKING:
    from pvekit import Cluster
    from pvekit.sim import Simulator


# -- nodes(): cluster name, CPU model and sockets; summary(): cluster name ------------------


def test_nodes_carry_cluster_name_cpu_model_and_sockets(sim: Simulator) -> None:
    c = pvekit.connect(**sim["prod"].connect_kwargs(), cache=False)
    try:
        df = c.nodes(progress=False).set_index("node")
        state = sim["prod"].state
        for name, node in state.nodes.items():
            assert df.at[name, "cpu_model"] == node.model
            assert df.at[name, "sockets"] == node.sockets
        assert set(df["cluster"]) == {state.name}
        assert c.summary().at[0, "cluster"] == state.name
    finally:
        c.close()


def test_a_standalone_node_has_no_cluster_name(sim: Simulator) -> None:
    c = pvekit.connect(**sim["lab"].connect_kwargs(), cache=False)
    try:
        assert len(sim["lab"].state.nodes) == 1
        assert c.nodes(progress=False)["cluster"].isna().all()
        assert c.summary()["cluster"].isna().all()
    finally:
        c.close()


# -- tasks(): tokenid apart from user, saved --------------------------------------------------


def test_tasks_frame_keeps_tokenid_apart_from_user() -> None:
    rows = [
        {
            "upid": "UPID:a:1:1:1:qmstart:100:root@pam!ci:",
            "starttime": 3,
            "user": "root@pam",
            "tokenid": "ci",
            "status": "OK",
            "endtime": 4,
        },
        {
            "upid": "UPID:a:2:2:2:qmstart:101:root@pam!nb:",
            "starttime": 2,
            "user": "root@pam!nb",
            "status": "RUNNING",
            "saved": "0",
        },
        {
            "upid": "UPID:a:3:3:3:vzdump::alice@pve:",
            "starttime": 1,
            "user": "alice@pve",
            "status": "OK",
            "endtime": 2,
            "saved": "1",
        },
    ]
    df = frames.tasks_frame("p", rows)
    assert df["user"].tolist() == ["root@pam", "root@pam", "alice@pve"]
    assert df["tokenid"].tolist()[:2] == ["ci", "nb"] and df["tokenid"].isna().tolist()[2]
    assert df["saved"].tolist() == [True, False, True]
    assert str(df["saved"].dtype) == "boolean"


def test_tasks_started_by_a_token_show_the_token(fresh_sim: Simulator) -> None:
    tok = pvekit.connect(**fresh_sim["prod"].connect_kwargs(identity="token"), cache=False)
    try:
        st = fresh_sim["prod"].state
        vmid = next(
            g.vmid
            for g in st.guests.values()
            if g.status == "stopped" and not g.template and not g.lock and st.nodes[g.node].online
        )
        task = tok.guest(vmid).start()
        df = tok.tasks(progress=False).set_index("upid")
        assert df.at[task.upid, "user"] == "root@pam"
        assert df.at[task.upid, "tokenid"] == "pvekit"
        assert bool(df.at[task.upid, "saved"]) is False  # running: not archived yet
        task.wait(timeout=60, poll=0.1, progress=False)
        df = tok.tasks(fresh=True, progress=False).set_index("upid")
        assert bool(df.at[task.upid, "saved"]) is True
    finally:
        tok.close()
