"""Every GET of the official schema answers in the JSON type the schema documents, or 501.

Modelled endpoints answer with data; the others answer an empty value of the right shape
(or 501 where the shape is a scalar): never a list where the schema says object, which made
third-party clients crash (issue 12, point 5). Served in-process: no socket needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from pvekit.sim import SimClock, SimCluster, Simulator, load_schema, modelled_endpoints
from pvekit.sim._schema import return_type

API = "/api2/json"


@pytest.fixture(scope="module", params=["9.1", "8.4"])
def cluster(request: pytest.FixtureRequest) -> Iterator[SimCluster]:
    sim = Simulator("demo", pve_version=request.param, clock=SimClock(frozen=True))
    yield sim["prod"]  # never started: the in-process transport needs no server


def _values(c: SimCluster, template: str) -> dict[str, str]:
    st = c.state
    gtype = "lxc" if "/lxc/" in template else "qemu"
    g = next(
        g
        for g in st.guests.values()
        if g.type == gtype and g.running and not g.template and len(g.snapshots)
    )
    task = next(t for t in st.tasks if t.node == g.node)
    vol = next(v for v in st.volumes if v.node in (g.node, None))
    return {
        "node": g.node,
        "vmid": str(g.vmid),
        "storage": vol.storage,
        "upid": task.upid,
        "poolid": next(iter(st.pools)),
        "userid": "root@pam",
        "tokenid": "pvekit",
        "iface": "vmbr0",
        "snapname": g.snapshots[0].name,
        "volume": vol.volid,
        "realm": "pam",
        "roleid": "PVEAuditor",
        "sid": f"{'vm' if gtype == 'qemu' else 'ct'}:{g.vmid}",
    }


def _fill(template: str, values: dict[str, str]) -> str:
    out = []
    for part in template.split("/"):
        if part.startswith("{") and part.endswith("}"):
            part = quote(values.get(part[1:-1], "x"), safe="")
        out.append(part)
    return "/".join(out)


# Where real servers answer another type than the schema documents, the simulator follows
# the real servers (the captured bodies in pve-fixtures, QUIRKS.md).
REAL_DRIFT = {"/cluster/nextid": "PVE sends the next id as a JSON string"}

_PY = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (int, bool),
    "null": (type(None),),
}


def test_every_schema_get_answers_its_documented_type(cluster: SimCluster) -> None:
    s = cluster.session()
    ticket = s.post(
        cluster.inprocess_url + API + "/access/ticket",
        data={"username": "root@pam", "password": "pvekit-demo"},
    ).json()["data"]["ticket"]
    s.cookies.set("PVEAuthCookie", ticket)
    schema = load_schema(cluster.state.pve_version)
    values = _values(cluster, "")
    wrong: list[str] = []
    answered: dict[str, int] = {}
    for path, method in sorted(schema.endpoints):
        if method != "GET":
            continue
        vals = _values(cluster, path) if "{vmid}" in path else values
        r: requests.Response = s.get(cluster.inprocess_url + API + _fill(path, vals), timeout=5)
        answered[path] = r.status_code
        if r.status_code != 200:
            continue
        rtype = return_type(cluster.state.major, path)
        if path in REAL_DRIFT:
            continue
        data: Any = r.json()["data"]
        bad = rtype in _PY and not isinstance(data, _PY[rtype])
        if bad or (rtype == "integer" and isinstance(data, bool)):
            wrong.append(f"{path}: schema says {rtype}, got {type(data).__name__}")
    assert not wrong, "\n".join(wrong)
    # the walk reached the endpoints (not all 401/400), and un-modelled scalars are 501
    assert sum(code == 200 for code in answered.values()) > 200
    modelled = {p for m, p in modelled_endpoints(cluster.state.pve_version) if m == "GET"}
    for path, code in answered.items():
        if path not in modelled and return_type(cluster.state.major, path) not in (
            "object",
            "array",
            "null",
        ):
            assert code in (400, 501), (path, code)  # 400: the placeholder value is invalid


def test_modelled_endpoints_are_schema_endpoints() -> None:
    from pvekit.sim._handlers import ROUTES

    listed = modelled_endpoints("9.1")
    assert ("GET", "/cluster/ha/status/manager_status") in listed
    assert ("GET", "/access/acl") in listed
    schema = load_schema("9.1")
    assert len(listed) == len([k for k in ROUTES if k in schema.endpoints])
    assert all((p, m) in schema.endpoints for m, p in listed)
