"""Every key a real server sends, for an endpoint the simulator serves, the simulator sends too.

For each captured 200 body in ``tests/data/pve-fixtures`` (MANIFEST.tsv) the keys are
flattened to paths (``memory.total``, ``result[].ip-addresses[].prefix``, dynamic maps such as
``nics`` as ``nics.*``) and compared with the union of the simulator's answers to the same
endpoint over every node and guest of both demo clusters. A key is covered when the
simulator sends it somewhere with the same JSON kind (string numbers stay strings, 0/1 stay
numbers). What is not covered must be listed in :data:`NOT_SENT` with the reason (PVE
version drift, a layout the demo does not model); a listed key the simulator does send
fails too, so the list cannot go stale (issue 12, point 11).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _paths import FIXTURES
from _shapes import json_kind

from pvekit.sim import SimCluster, Simulator

API = "/api2/json"

# Bodies that are not real answers of the endpoint they are filed under (see
# test_sim_fixtures.test_every_manifest_entry_is_covered for the same list).
NOT_REAL = {
    "influxdata-telegraf/unknown/GET_nodes_node_qemu_vmid_config.json",
    "influxdata-telegraf/unknown/GET_nodes_node_lxc_vmid_config.json",
}

# (endpoint, key path) -> why the simulator does not send it.
_VM_MONITOR = (
    "PVE 9 removed VM.Monitor (split into Sys.Audit and VM.GuestAgent.*); the 8.4 version "
    "knob grants it (test_vm_monitor_only_on_pve8)"
)
_OLD_VMID = "PVE <= 7 sends the list vmid as a string; 9.x sends an integer (QUIRKS 1)"
NOT_SENT: dict[tuple[str, str], str] = {
    ("POST /access/ticket", "cap.*.VM.Monitor"): _VM_MONITOR,
    **{
        ("GET /access/permissions", f"{p}.VM.Monitor"): _VM_MONITOR
        for p in ("/", "/access", "/access/groups", "/nodes", "/pools", "/sdn", "/storage", "/vms")
    },
    ("GET /nodes/{node}/lxc", "vmid"): _OLD_VMID,
    ("GET /nodes/{node}/qemu", "vmid"): _OLD_VMID,
}

# Maps whose keys are names (interfaces, disks, ACL paths), not fields.
DYNAMIC = {"nics", "blockstat", "cap"}

Kinds = dict[str, set[str]]


def flatten(value: Any, prefix: str = "", out: Kinds | None = None, depth: int = 0) -> Kinds:
    """Key paths of a JSON body with the kinds seen at each (a list's rows are merged)."""
    out = {} if out is None else out
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                flatten(item, prefix + "[]" if prefix else "", out, depth)
        return out
    if not isinstance(value, dict) or depth > 3:
        return out
    dynamic = prefix.rsplit(".", 1)[-1] in DYNAMIC
    for k, v in value.items():
        path = f"{prefix}.{'*' if dynamic else k}" if prefix else k
        kind = json_kind(v)
        if kind != "null":  # an empty RRD bucket or unset value says nothing about the type
            out.setdefault(path, set()).add(kind)
        else:
            out.setdefault(path, set())
        if isinstance(v, dict | list):
            flatten(v, path, out, depth + 1)
    return out


def _manifest() -> list[dict[str, str]]:
    with (FIXTURES / "MANIFEST.tsv").open() as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def real_bodies() -> Iterator[tuple[str, str, Any]]:
    """(file, endpoint template, body) of every real 200 answer."""
    for row in _manifest():
        if row["http_status"] != "200" or row["file"] in NOT_REAL:
            continue
        data = json.loads((FIXTURES / row["file"]).read_text())
        if row["envelope"] == "data-wrapped" and isinstance(data, dict) and "data" in data:
            data = data["data"]
        endpoint = row["endpoint"].split("?", 1)[0]
        if "fragment (one element of data.result)" in row["envelope"]:
            data = {"result": [data]}
        yield row["file"], f"{row['method']} {endpoint}", data


Get = Callable[..., Any]


def sim_kinds(clusters: list[tuple[SimCluster, Get]]) -> dict[str, Kinds]:
    """endpoint -> key paths and kinds over every answer the demo clusters give."""
    out: dict[str, Kinds] = defaultdict(dict)

    def add(endpoint: str, body: Any) -> None:
        for k, kinds in flatten(body).items():
            out[endpoint].setdefault(k, set()).update(kinds)

    for c, get in clusters:
        st = c.state
        add("GET /cluster/status", get("/cluster/status"))
        add("GET /cluster/resources", get("/cluster/resources"))
        add("GET /nodes", get("/nodes"))
        add("GET /access/roles", get("/access/roles"))
        add("GET /access/permissions", get("/access/permissions"))
        add("GET /access/users", get("/access/users"))
        add("GET /storage", get("/storage"))
        add("POST /access/ticket", get("/access/ticket", method="POST", **_login(c)))
        for pool in st.pools:
            add("GET /pools", get("/pools", poolid=pool))
        for n in st.nodes:
            # a running task: the task list's running rows carry more keys ("saved")
            get(f"/nodes/{n}/vncshell", method="POST")
            for sub in ("status", "version", "dns", "network", "network/vmbr0", "lxc", "qemu"):
                add(
                    f"GET /nodes/{{node}}/{sub.replace('vmbr0', '{iface}')}",
                    get(f"/nodes/{n}/{sub}"),
                )
            add("GET /nodes/{node}/tasks", get(f"/nodes/{n}/tasks", limit=50, source="all"))
            for (node, storage), use in st.storage_use.items():
                if node == n and use.status == "available":
                    add(
                        "GET /nodes/{node}/storage/{storage}/status",
                        get(f"/nodes/{n}/storage/{storage}/status"),
                    )
        for t in [t for t in st.tasks if not t.running][-40:]:
            base = f"/nodes/{t.node}/tasks/{t.upid}"
            add("GET /nodes/{node}/tasks/{upid}/status", get(base + "/status"))
            add("GET /nodes/{node}/tasks/{upid}/log", get(base + "/log"))
        for g in st.guests.values():
            base = f"/nodes/{g.node}/{g.type}/{g.vmid}"
            tpl = "/nodes/{node}/" + g.type + "/{vmid}"
            add(f"GET {tpl}/status/current", get(base + "/status/current"))
            add(f"GET {tpl}/config", get(base + "/config"))
            add(f"GET {tpl}/rrddata", get(base + "/rrddata", timeframe="hour"))
            if g.type == "lxc":
                add(f"GET {tpl}/snapshot", get(base + "/snapshot"))
            if g.type == "qemu" and g.running and g.agent:
                if get(f"{base}/agent/ping", method="POST", tolerate=True) is None:
                    continue  # an agent that does not answer (modelled on purpose)
                for cmd in ("network-get-interfaces", "get-fsinfo"):
                    add(f"GET {tpl}/agent/{cmd}", get(f"{base}/agent/{cmd}"))
                ran = get(f"{base}/agent/exec", method="POST", command=["echo", "hello"])
                add(f"POST {tpl}/agent/exec", ran)
                add(
                    f"GET {tpl}/agent/exec-status", get(f"{base}/agent/exec-status", pid=ran["pid"])
                )
    return out


def _login(c: SimCluster) -> dict[str, str]:
    return {"username": "root@pam", "password": c.auth.users["root@pam"].password}


def coverage(clusters: list[tuple[SimCluster, Get]]) -> tuple[int, int, dict[tuple[str, str], str]]:
    """(covered, total, uncovered): real (endpoint, key) pairs, and why each uncovered one is."""
    sim = sim_kinds(clusters)
    real: dict[tuple[str, str], set[str]] = defaultdict(set)
    for _file, endpoint, body in real_bodies():
        for k, kinds in flatten(body).items():
            real[(endpoint, k)].update(kinds)
    uncovered: dict[tuple[str, str], str] = {}
    for (endpoint, key), kinds in sorted(real.items()):
        have = sim.get(endpoint, {}).get(key)
        if have is None:
            uncovered[(endpoint, key)] = f"{endpoint}: simulator never sends {key!r}"
        elif kinds and have and not kinds & have:
            uncovered[(endpoint, key)] = (
                f"{endpoint}: {key!r} is {sorted(kinds)} on real servers, {sorted(have)} here"
            )
    return len(real) - len(uncovered), len(real), uncovered


def _inprocess_get(c: SimCluster) -> Get:
    s = c.session()
    body = s.post(c.inprocess_url + API + "/access/ticket", data=_login(c)).json()["data"]
    s.cookies.set("PVEAuthCookie", body["ticket"])
    s.headers["CSRFPreventionToken"] = body["CSRFPreventionToken"]

    def get(path: str, method: str = "GET", tolerate: bool = False, **params: Any) -> Any:
        if method == "GET":
            r = s.get(c.inprocess_url + API + path, params=params)
        else:
            r = s.request(method, c.inprocess_url + API + path, data=params)
        if tolerate and r.status_code != 200:
            return None
        assert r.status_code == 200, (path, r.status_code, r.reason)
        return r.json()["data"]

    return get


@pytest.fixture(scope="module")
def clusters() -> list[tuple[SimCluster, Get]]:
    sim = Simulator("demo", seed=0)
    return [(c, _inprocess_get(c)) for c in sim]


def test_every_real_key_is_sent_with_its_type(clusters: list[tuple[SimCluster, Get]]) -> None:
    covered, total, uncovered = coverage(clusters)
    problems = [why for key, why in uncovered.items() if key not in NOT_SENT]
    assert not problems, f"{covered}/{total} real keys covered:\n" + "\n".join(problems)
    # the documented exceptions are still exceptions (the list cannot go stale)
    assert set(NOT_SENT) <= set(uncovered), sorted(set(NOT_SENT) - set(uncovered))
    assert covered + len(NOT_SENT) == total
    assert all(NOT_SENT.values())


def test_flatten_sees_nested_keys_and_kinds() -> None:
    body = [{"a": 1, "m": {"x": "1"}, "nics": {"tap1": {"netin": 1}}, "r": [{"b": None}]}]
    assert flatten(body) == {
        "a": {"number"},
        "m": {"dict"},
        "m.x": {"str"},
        "nics": {"dict"},
        "nics.*": {"dict"},
        "nics.*.netin": {"number"},
        "r": {"list"},
        "r[].b": set(),
    }


@pytest.mark.parametrize("version", ["8.4", "9.1"])
def test_vm_monitor_only_on_pve8(version: str) -> None:
    c = Simulator("demo", pve_version=version)["prod"]
    get = _inprocess_get(c)
    cap = get("/access/ticket", method="POST", **_login(c))["cap"]
    perms = get("/access/permissions")["/"]
    roles = {r["roleid"]: r["privs"].split(",") for r in get("/access/roles")}
    has = version == "8.4"
    assert ("VM.Monitor" in cap["vms"], "VM.Monitor" in perms) == (has, has)
    assert ("VM.Monitor" in roles["Administrator"]) == has
