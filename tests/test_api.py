"""ApiClient: envelope, parameters, error mapping, input checks, logging, schema conformance."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator

import pytest
from _paths import ENDPOINTS_91
from _pveserver import TOKEN_SECRET, PVEServer, Reply, password_profile, token_profile

from pvekit import (
    APIError,
    AuthenticationError,
    ConnectionError,
    InvalidInputError,
    NodeUnreachableError,
    NotFoundError,
    NotImplementedByServerError,
    ParameterError,
    PermissionDeniedError,
    ServerError,
)
from pvekit._api import ApiClient
from pvekit._endpoints import READS, stale_scopes

SCHEMA_TSV = ENDPOINTS_91


@pytest.fixture
def srv() -> Iterator[PVEServer]:
    with PVEServer() as s:
        yield s


@pytest.fixture
def client(srv: PVEServer) -> Iterator[ApiClient]:
    with ApiClient(token_profile(srv, cache=False, retries=0)) as c:
        yield c


def test_contract_attributes(srv: PVEServer) -> None:
    with ApiClient(password_profile(srv, name="prod")) as c:
        assert c.profile == "prod"
        assert c.host == srv.host
        assert c.base_url == f"{srv.url}/api2/json"
        assert c.user == "root@pam"
        assert c.is_token is False
    with ApiClient(token_profile(srv)) as t:
        assert t.user == "root@pam!pvekit" and t.is_token is True
    with pytest.raises(InvalidInputError):
        ApiClient("prod")  # type: ignore[arg-type]


def test_envelope_unwrapped(srv: PVEServer, client: ApiClient) -> None:
    srv.script("GET", "/nodes", Reply(200, [{"node": "pve1"}]))
    assert client.get("/nodes") == [{"node": "pve1"}]
    srv.script("GET", "/x", Reply(200, None))
    assert client.get("/x") is None
    srv.script("GET", "/raw", Reply(200, body={"no": "envelope"}))
    assert client.get("/raw") == {"no": "envelope"}


def test_params_encoding(srv: PVEServer, client: ApiClient) -> None:
    client.get("/cluster/resources", {"type": "vm", "skip": None}, full=True, other=False)
    client.post(
        "/nodes/pve1/qemu/100/migrate",
        {"target": "pve2", "with-local-disks": True, "online": False, "bwlimit": None},
    )
    client.put("/nodes/pve1/lxc/200/config", cores=2, description="a b&c")
    client.delete("/nodes/pve1/qemu/100", {"destroy-unreferenced-disks": 1, "purge": True})
    client.post("/nodes/pve1/qemu/100/agent/exec", {"command": ["ls", "-l"]})
    get, post, put, delete, exec_ = srv.requests
    assert get.query == {"type": "vm", "full": "1", "other": "0"} and get.form == {}
    assert post.form == {"target": "pve2", "with-local-disks": "1", "online": "0"}
    assert post.query == {}
    assert put.form == {"cores": "2", "description": "a b&c"}
    assert delete.query == {"destroy-unreferenced-disks": "1", "purge": "1"} and delete.form == {}
    assert exec_.form == {"command": "-l"}  # repeated key: the test server keeps the last


@pytest.mark.parametrize(
    ("reply", "cls", "text"),
    [
        (
            Reply(
                400,
                body={"errors": {"cores": "value must be >= 1\n"}, "data": None},
                reason="Parameter verification failed.",
            ),
            ParameterError,
            "cores: value must be >= 1",
        ),
        (Reply(401, reason="invalid token value!"), AuthenticationError, "invalid token value"),
        (
            Reply(403, reason="Permission check failed (/vms/100, VM.PowerMgmt)"),
            PermissionDeniedError,
            "VM.PowerMgmt",
        ),
        (Reply(404, reason="Not Found"), NotFoundError, "404"),
        (
            Reply(
                500, reason="Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist"
            ),
            NotFoundError,
            "does not exist",
        ),
        (Reply(500, reason="QEMU guest agent is not running"), ServerError, "agent is not running"),
        (
            Reply(501, reason="Method 'GET /nodes/x' not implemented"),
            NotImplementedByServerError,
            "not implemented",
        ),
        (Reply(595, reason="no route to host"), NodeUnreachableError, "no route to host"),
        (Reply(418, reason="teapot"), APIError, "teapot"),
    ],
)
def test_error_mapping(
    srv: PVEServer, client: ApiClient, reply: Reply, cls: type, text: str
) -> None:
    srv.script("POST", "/nodes/pve1/qemu/100/status/start", reply)
    with pytest.raises(cls) as info:
        client.post("/nodes/pve1/qemu/100/status/start")
    err = info.value
    assert isinstance(err, APIError) and type(err) is cls
    message = str(err)
    assert text in message
    assert "POST /nodes/pve1/qemu/100/status/start" in message and "profile 'default'" in message
    assert err.status == reply.status and err.profile == "default"
    assert TOKEN_SECRET not in message
    if cls is ParameterError:
        assert err.errors == {"cores": "value must be >= 1\n"}


def test_non_json_answers(srv: PVEServer, client: ApiClient) -> None:
    srv.script("GET", "/version", Reply(200, raw=b"<html>captive portal</html>"))
    with pytest.raises(APIError, match="answer is not JSON") as info:
        client.get("/version")
    assert info.value.status == 200
    srv.script("GET", "/version", Reply(502, raw=b"<html>bad gateway</html>", reason="Bad Gateway"))
    with pytest.raises(ServerError, match="Bad Gateway"):
        client.get("/version")


@pytest.mark.parametrize(
    "path",
    ["nodes", "", "/nodes?full=1", "/nodes/pve 1", "//nodes", "/nodes#x", None, 42],
)
def test_bad_paths_rejected_before_any_request(
    srv: PVEServer, client: ApiClient, path: object
) -> None:
    with pytest.raises(InvalidInputError):
        client.get(path)  # type: ignore[arg-type]
    assert srv.requests == []


def test_bad_parameter_names_rejected(srv: PVEServer, client: ApiClient) -> None:
    with pytest.raises(InvalidInputError):
        client.post("/nodes", {"": 1})
    with pytest.raises(InvalidInputError):
        client.post("/nodes", {1: 1})  # type: ignore[dict-item]
    assert srv.requests == []


def test_closed_client(srv: PVEServer) -> None:
    c = ApiClient(token_profile(srv))
    c.close()
    c.close()  # idempotent
    with pytest.raises(ConnectionError, match="closed"):
        c.get("/nodes")
    assert srv.requests == []


def test_check_logs_in_and_reads_version(srv: PVEServer) -> None:
    with ApiClient(password_profile(srv)) as c:
        assert c.check()["path"] == "/version"
        c.check()
    assert srv.logins == 1 and srv.count("GET", "/version") == 2  # check() is never cached


def test_injected_session_and_logger(srv: PVEServer, caplog: pytest.LogCaptureFixture) -> None:
    import requests

    session = requests.Session()
    logger = logging.getLogger("myapp.pve")
    caplog.set_level(logging.DEBUG, logger="myapp.pve")
    with ApiClient(token_profile(srv), session=session, logger=logger) as c:
        assert c.session is session
        c.get("/nodes")
        c.get("/nodes")  # a plain injected session does not cache
    assert srv.count("GET", "/nodes") == 2
    assert session.adapters  # still usable: close() left the caller's session alone
    assert session.get(f"{srv.url}/api2/json/version").status_code == 401
    assert any(r.name == "myapp.pve" and "GET /nodes" in r.getMessage() for r in caplog.records)


def test_repr(srv: PVEServer) -> None:
    with ApiClient(password_profile(srv, name="lab")) as c:
        text = repr(c)
    assert text.startswith("<ApiClient 'lab' http://127.0.0.1:")
    assert "user='root@pam'" in text and "auth=password" in text
    assert "INSECURE" in text  # plain http: no server identity


def test_debug_log_has_timing_status_and_cache_flag(
    srv: PVEServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pvekit")
    with ApiClient(token_profile(srv, name="prod")) as c:
        c.get("/nodes", type="vm")
        c.get("/nodes", type="vm")
        c.post("/nodes/pve1/qemu/100/config", {"cipassword": "Very-Secret-1"})
    lines = [r.getMessage() for r in caplog.records if r.name == "pvekit.api"]
    assert any(
        line.startswith("[prod] GET /nodes [type=vm] -> 200 in ") and "ms" in line for line in lines
    )
    assert any(line.endswith("(cache)") for line in lines)
    assert any("POST /nodes/pve1/qemu/100/config [cipassword] -> 200" in line for line in lines)
    assert "Very-Secret-1" not in caplog.text and TOKEN_SECRET not in caplog.text


def test_retry_is_logged(srv: PVEServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pvekit")
    srv.script("GET", "/nodes", Reply(503, reason="busy", headers={"Retry-After": "0"}))
    with ApiClient(token_profile(srv, cache=False)) as c:
        c.get("/nodes")
    assert "GET /nodes: HTTP 503; retry 1/3 in 0.00 s" in caplog.text


def _stale(method: str, path: str, params: dict[str, str]) -> tuple[list[str], list[str]]:
    scopes = stale_scopes(method, path, params)
    return [s.path for s in scopes if not s.exact], [s.path for s in scopes if s.exact]


def test_stale_reads_of_writes() -> None:
    prefixes, exact = _stale("POST", "/nodes/pve1/qemu/100/status/start", {})
    assert "/cluster/resources" in prefixes and "/nodes/pve1/qemu/100" in prefixes
    assert "/nodes/pve1/storage" in prefixes
    assert "/nodes/pve1/qemu" in exact and "/nodes/pve1/tasks" in exact
    prefixes, exact = _stale("POST", "/nodes/pve1/qemu/100/migrate", {"target": "pve2"})
    assert "/nodes/pve2/qemu" in exact and "/nodes/pve2/storage" in prefixes
    prefixes, _ = _stale("POST", "/nodes/pve1/vzdump", {"vmid": "100"})
    assert "/nodes/pve1/storage" in prefixes
    prefixes, _ = _stale("POST", "/pools/dev", {})
    assert "/pools" in prefixes
    prefixes, _ = _stale("PUT", "/storage/nfs1", {})
    assert "/storage" in prefixes and "/nodes" in prefixes


# -- schema conformance -----------------------------------------------------------------------


def _schema() -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    with SCHEMA_TSV.open() as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 4 or not row[0].startswith("/"):
                continue
            params = {p.rstrip("*") for p in row[3].split(",") if p}
            out[(row[0], row[1])] = params
    return out


def test_calls_of_the_client_core_exist_in_the_official_schema(srv: PVEServer) -> None:
    """Every request the client core itself makes: method, path and parameter names."""
    schema = _schema()
    users = {"root@pam": "pw", "tfa@pve": "pw2"}
    with PVEServer(users=users, tfa={"tfa@pve": "111111"}) as s:
        profiles = [
            password_profile(s, password="pw"),
            password_profile(s, user="tfa@pve", password="pw2", otp="111111"),
            token_profile(s),
        ]
        for p in profiles:
            with ApiClient(p) as c:
                c.check()
                if not p.is_token:
                    c.auth._clock = lambda: 1e9  # type: ignore[union-attr]  # force a renewal
                    c.check()
        sent = list(s.requests)
    assert sent
    for r in sent:
        template = "/access/ticket" if r.path == "/access/ticket" else r.path
        assert (template, r.method) in schema, (r.method, r.path)
        names = set(r.form) | set(r.query)
        assert names <= schema[(template, r.method)], (r.path, names)


def test_ttl_table_paths_exist_in_the_schema() -> None:
    schema_paths = {path for path, _method in _schema()}
    for entry in READS:
        for gtype in ("qemu", "lxc"):
            path = entry.pattern.replace("{type}", gtype)
            if gtype == "qemu" and "/lxc/" in path:
                continue
            assert path in schema_paths, path
