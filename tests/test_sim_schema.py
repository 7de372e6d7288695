"""The compact schema: generation, routing and validation like pve-api-daemon."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from _paths import SCHEMA_DIR
from hypothesis import given, settings
from hypothesis import strategies as st

from pvekit.sim import SimCluster, Simulator
from pvekit.sim._schema import load_schema

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "pvekit" / "_data" / "schema.json.gz"
SOURCE = SCHEMA_DIR


def test_shipped_schema_is_the_generated_one(tmp_path: Path) -> None:
    out = tmp_path / "schema.json.gz"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_schema.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == SHIPPED.read_bytes(), "run scripts/build_schema.py"
    assert SHIPPED.stat().st_size < 300_000


def test_shipped_return_types_are_the_generated_ones(tmp_path: Path) -> None:
    out = tmp_path / "returns.json"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_returns.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    shipped = ROOT / "pvekit" / "_data" / "returns.json"
    assert out.read_bytes() == shipped.read_bytes(), "run scripts/build_returns.py"


def test_schema_covers_every_official_endpoint() -> None:
    data = json.loads(gzip.decompress(SHIPPED.read_bytes()))
    schema = load_schema("9.1")
    for line in (SOURCE / "endpoints-9.1.tsv").read_text().splitlines()[1:]:
        path, method, _name, params = line.split("\t")[:4]
        assert (path, method) in schema.endpoints, (path, method)
        names = {p.rstrip("*") for p in params.split(",") if p}
        assert names <= set(data["paths"][path][method]["p"]), (path, method)
        required = {p[:-1] for p in params.split(",") if p.endswith("*")}
        for name in required:
            assert not schema.endpoints[(path, method)].params[name].get("o"), (path, name)


def test_version_knob() -> None:
    s9, s8 = load_schema("9.1"), load_schema("8.4")
    assert s9.match("GET", "/cluster/ha/rules") is not None
    assert s8.match("GET", "/cluster/ha/rules") is None  # new in PVE 9
    assert s8.match("GET", "/nodes/pve1/scan/glusterfs") is not None  # removed in PVE 9
    assert s9.match("GET", "/nodes/pve1/scan/glusterfs") is None


def test_version_knob_for_parameters() -> None:
    path = "/nodes/pve1/qemu/100/migrate"
    params = {"target": "pve2", "with-conntrack-state": "1"}  # new in PVE 9
    assert load_schema("9.1").validate("POST", path, params) == {}
    assert "with-conntrack-state" in load_schema("8.4").validate("POST", path, params)


def test_match_and_resolve() -> None:
    s = load_schema()
    ep = s.match("POST", "/nodes/pve1/qemu/100/status/start")
    assert ep is not None and ep.path == "/nodes/{node}/qemu/{vmid}/status/start"
    assert ep.proxyto == "node"
    assert s.match("PATCH", "/nodes/pve1/qemu/100/status/start") is None
    assert s.match("GET", "/nodes/pve1/nonsense") is None
    # a quoted volid stays one segment; an unquoted one is absorbed by {volume}
    for path in (
        "/nodes/pve1/storage/nfs/content/nfs%3Abackup%2Fvzdump-qemu-100.vma.zst",
        "/nodes/pve1/storage/nfs/content/nfs:backup/vzdump-qemu-100.vma.zst",
    ):
        found = s.resolve(path)
        assert found is not None
        assert found[1]["volume"] == "nfs:backup/vzdump-qemu-100.vma.zst"


@pytest.mark.parametrize(
    "method,path,params,param,message",
    [
        (
            "POST",
            "/nodes/pve1/qemu/100/status/start",
            {"bogus": "1"},
            "bogus",
            "property is not defined in schema and the schema does not allow additional properties",
        ),
        (
            "POST",
            "/nodes/pve1/qemu/100/migrate",
            {},
            "target",
            "property is missing and it is not optional",
        ),
        (
            "GET",
            "/cluster/resources",
            {"type": "vms"},
            "type",
            "value 'vms' does not have a value in the enumeration 'vm, storage, node, sdn'",
        ),
        (
            "GET",
            "/nodes/pve1/tasks",
            {"limit": "ten"},
            "limit",
            "type check ('integer') failed - got 'ten'",
        ),
        (
            "POST",
            "/nodes/pve1/qemu/100/status/stop",
            {"skiplock": "maybe"},
            "skiplock",
            "type check ('boolean') failed - got 'maybe'",
        ),
        (
            "GET",
            "/nodes/pve1/qemu/99/status/current",
            {},
            "vmid",
            "value must have a minimum value of 100",
        ),
        (
            "GET",
            "/nodes/pve_1/status",
            {},
            "node",
            "invalid format - value does not look like a valid node name",
        ),
        (
            "POST",
            "/nodes/pve1/qemu/100/config",
            {"net0": "virtio=AA:BB:CC:DD:EE:FF,speed=9"},
            "net0",
            "invalid format - speed: property is not defined in schema",
        ),
        (
            "GET",
            "/nodes/pve1/rrddata",
            {"timeframe": "hour", "cf": "MIN"},
            "cf",
            "value 'MIN' does not have a value in the enumeration 'AVERAGE, MAX'",
        ),
    ],
)
def test_validate_messages(
    method: str, path: str, params: dict[str, str], param: str, message: str
) -> None:
    errors = load_schema().validate(method, path, params)
    assert param in errors
    assert errors[param].startswith(message)


def test_valid_requests_pass() -> None:
    s = load_schema()
    assert (
        s.validate(
            "POST",
            "/nodes/pve1/qemu/100/migrate",
            {"target": "pve2", "online": "1", "with-local-disks": "1"},
        )
        == {}
    )
    assert s.validate("POST", "/nodes/pve1/qemu/100/agent/exec", {"command": ["ls", "-l"]}) == {}
    assert (
        s.validate(
            "POST",
            "/nodes/pve1/qemu/100/config",
            {"net1": "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=20"},
        )
        == {}
    )
    assert s.validate("GET", "/nodes/pve1/rrddata", {"timeframe": "week", "cf": "MAX"}) == {}


@pytest.fixture(scope="module")
def lab() -> Iterator[SimCluster]:
    with Simulator("demo") as sim:
        yield sim["lab"]


def _session(c: SimCluster) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"PVEAPIToken=root@pam!pvekit={c.auth.token_secret}"
    return s


def test_server_answers_400_with_errors(lab: SimCluster) -> None:
    s = _session(lab)
    r = s.get(lab.url + "/api2/json/cluster/resources", params={"type": "bad"})
    assert r.status_code == 400
    assert r.reason == "Parameter verification failed."
    assert set(r.json()) == {"errors", "data"} and r.json()["data"] is None
    r = s.post(lab.url + "/api2/json/nodes/pve/qemu/101/status/start", data={"x": "1"})
    assert r.status_code == 400 and "x" in r.json()["errors"]
    r = s.post(lab.url + "/api2/json/nodes/pve/qemu/101/migrate", data={})
    assert r.status_code == 400 and "target" in r.json()["errors"]


def test_server_answers_501_for_unknown_paths(lab: SimCluster) -> None:
    s = _session(lab)
    r = s.get(lab.url + "/api2/json/nodes/pve/nonsense")
    assert r.status_code == 501
    assert r.reason == "Method 'GET /api2/json/nodes/pve/nonsense' not implemented"
    assert r.json() == {"data": None}
    r = s.put(lab.url + "/api2/json/cluster/resources")
    assert r.status_code == 501


def test_8_4_server_refuses_9_only_paths() -> None:
    with Simulator("empty", pve_version="8.4") as sim:
        c = sim["empty"]
        s = _session(c)
        assert s.get(c.url + "/api2/json/cluster/ha/rules").status_code == 501
        assert s.get(c.url + "/api2/json/version").json()["data"]["release"] == "8.4"


def test_every_simulated_route_exists_in_the_official_schema() -> None:
    from pvekit.sim._handlers import ROUTES

    s9, s8 = load_schema("9.1"), load_schema("8.4")
    for path, method in ROUTES:
        assert (path, method) in s9.endpoints or (path, method) in s8.endpoints, (path, method)


def _concrete(path: str) -> str:
    values = {
        "node": "pve",
        "vmid": "101",
        "storage": "local",
        "upid": "UPID:pve:0:0:0:x::r@pam:",
        "snapname": "snap",
        "iface": "vmbr0",
        "poolid": "homelab",
        "volume": "local:iso/x",
        "pid": "1",
    }
    for k, v in values.items():
        path = path.replace("{" + k + "}", quote(v, safe=""))
    return path


def test_every_simulated_route_validates_its_parameters(lab: SimCluster) -> None:
    """An unknown parameter is refused with 400 on every route, before any handler runs."""
    from pvekit.sim._handlers import ROUTES

    s = _session(lab)
    checked = 0
    for path, method in ROUTES:
        ep = load_schema().endpoints.get((path, method))
        if ep is None or ep.additional:
            continue
        r = s.request(
            method,
            lab.url + "/api2/json" + _concrete(path),
            params={"zz-bogus": "1"} if method in ("GET", "DELETE") else None,
            data={"zz-bogus": "1"} if method in ("POST", "PUT") else None,
            timeout=10,
        )
        assert r.status_code == 400, (method, path, r.status_code, r.reason)
        assert "zz-bogus" in r.json()["errors"], (method, path)
        checked += 1
    assert checked > 80
    assert not any(g.lock for g in lab.state.guests.values() if g.vmid == 101)


def test_concurrent_clients(lab: SimCluster) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def work(i: int) -> list[int]:
        s = _session(lab)
        paths = [
            "/cluster/resources",
            "/nodes/pve/qemu",
            f"/nodes/pve/lxc/{100 + i % 2}/config",
            "/nodes/pve/rrddata?timeframe=hour",
            "/cluster/tasks",
        ]
        return [s.get(lab.url + "/api2/json" + p, timeout=20).status_code for p in paths * 4]

    with ThreadPoolExecutor(8) as pool:
        codes = [c for batch in pool.map(work, range(8)) for c in batch]
    assert len(codes) == 160
    assert set(codes) <= {200, 500}  # 500: vmid 101 is a VM, not a container
    assert codes.count(200) >= 128


def _typed_params() -> list[tuple[str, str, str, dict[str, Any]]]:
    out = []
    for (path, method), ep in sorted(load_schema().endpoints.items()):
        for name, spec in ep.params.items():
            if name.endswith("[n]") or "{" + name + "}" in path:
                continue
            if spec.get("t") == "integer" or spec.get("e"):
                out.append((path, method, name, dict(spec)))
    return out


TYPED = _typed_params()


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(TYPED), st.data())
def test_validator_agrees_with_the_spec(
    case: tuple[str, str, str, dict[str, Any]], data: st.DataObject
) -> None:
    """Values the spec allows pass; values outside the enum or the range are refused."""
    path, method, name, spec = case
    concrete = _concrete(path)
    schema = load_schema()
    if spec.get("e"):  # some schema entries carry an empty enumeration
        good = str(data.draw(st.sampled_from(spec["e"])))
        bad = data.draw(st.text(alphabet="xyzq_", min_size=1, max_size=6))
        assert name not in schema.validate(method, concrete, {name: good})
        if bad not in [str(e) for e in spec["e"]]:
            msg = schema.validate(method, concrete, {name: bad})[name]
            # PVE checks the type before the enumeration
            assert (
                "type check" if spec.get("t") in ("integer", "number") else "enumeration"
            ) in msg
        return
    lo, hi = spec.get("min"), spec.get("max")
    value = data.draw(
        st.integers(
            min_value=int(lo) if lo is not None else -(10**6),
            max_value=int(hi) if hi is not None else 10**9,
        )
    )
    assert name not in schema.validate(method, concrete, {name: str(value)}), spec
    if hi is not None:
        assert "maximum" in schema.validate(method, concrete, {name: str(int(hi) + 1)})[name]
    if lo is not None:
        assert "minimum" in schema.validate(method, concrete, {name: str(int(lo) - 1)})[name]
    assert "type check" in schema.validate(method, concrete, {name: f"{value}x"})[name]
