"""connect(), connect_group(), demo(): against the loopback test server and the simulator."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _pveserver import ROOT_PW, TOKEN_ID, TOKEN_SECRET, PVEServer

import pvekit
from pvekit import (
    AuthenticationError,
    ConfigError,
    InvalidInputError,
    PermissionDeniedError,
    TLSError,
    TwoFactorRequiredError,
)
from pvekit._api import ApiClient
from pvekit._connect import resolve_profile

if TYPE_CHECKING:
    from pvekit.sim import Simulator


@pytest.fixture
def srv() -> Iterator[PVEServer]:
    with PVEServer() as s:
        yield s


def write_config(text: str) -> Path:
    path = Path(os.environ["PVEKIT_CONFIG"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# -- connect() with the loopback server -------------------------------------------------------


def test_connect_returns_a_checked_cluster(srv: PVEServer) -> None:
    c = pvekit.connect(host=srv.url, user="root@pam", password=ROOT_PW, cache=False)
    try:
        # a Cluster holds its client (the HTTP layer), it is not one
        assert isinstance(c, pvekit.Cluster) and isinstance(c.api, ApiClient)
        assert not isinstance(c, ApiClient)
        # no profile given: named after the host (port kept: it is not 8006)
        assert c.profile == srv.url.split("://", 1)[1].rstrip("/")
        assert srv.logins == 1 and srv.count("GET", "/version") == 1  # checked at once
        assert ROOT_PW not in repr(c)
    finally:
        c.close()


def test_connect_wrong_password_fails_at_connect(srv: PVEServer) -> None:
    with pytest.raises(AuthenticationError, match="login as root@pam refused"):
        pvekit.connect(host=srv.url, user="root@pam", password="nope", cache=False)


def test_connect_lazy_sends_nothing(srv: PVEServer) -> None:
    c = pvekit.connect(host=srv.url, password="nope", check=False, cache=False)
    c.close()
    assert srv.requests == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token_name": "pvekit", "token_value": TOKEN_SECRET, "user": "root@pam"},
        {"token_name": TOKEN_ID, "token_value": TOKEN_SECRET},
        {"user": TOKEN_ID, "token_value": TOKEN_SECRET},
        {"token_value": f"PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}"},
    ],
)
def test_connect_token_forms(srv: PVEServer, kwargs: dict[str, str]) -> None:
    with pvekit.connect("tok", host=srv.url, cache=False, **kwargs) as c:  # type: ignore[arg-type]
        assert c.profile == "tok" and c.is_token and c.user == TOKEN_ID
    assert srv.requests[-1].headers["authorization"] == f"PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"host": "ftp://pve1", "password": "x"}, "scheme"),
        ({"host": "pve1"}, "no credentials"),
        ({"host": "pve1", "password": "x", "token_name": "a", "token_value": "b"}, "not both"),
        ({"host": "pve1", "password": "x", "fingerprint": "zz"}, "fingerprint"),
        ({"host": "pve1", "password": "x", "timeout": -1}, "timeout"),
    ],
)
def test_connect_bad_arguments_are_invalid_input(kwargs: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidInputError, match=problem):
        pvekit.connect(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("pve1", "pve1"),
        ("https://PVE1.example.org:8006/api2/json", "pve1.example.org"),
        ("10.0.0.5:8443", "10.0.0.5:8443"),
        ("[fd00::1]", "[fd00::1]"),
    ],
)
def test_ad_hoc_profile_is_named_after_the_host(host: str, expected: str) -> None:
    assert resolve_profile(host=host, password="x").name == expected
    assert resolve_profile(host=host, password="x", name="site-a").name == "site-a"
    assert resolve_profile("site-b", host=host, password="x").name == "site-b"
    with pytest.raises(InvalidInputError, match="give one"):
        resolve_profile("site-b", name="site-a", host=host, password="x")
    with pytest.raises(InvalidInputError, match="name must be a non-empty string"):
        resolve_profile(host=host, password="x", name=" ")


def test_two_ad_hoc_clusters_form_a_group(simu: Simulator) -> None:
    kw = simu["prod"].connect_kwargs(identity="root")
    a = pvekit.connect(**kw, name="site-a", cache=False)
    # another cluster (the same one through two names would be read once: Group dedupes)
    b = pvekit.connect(**simu["lab"].connect_kwargs(identity="root"), name="site-b", cache=False)
    same = pvekit.connect(**kw, cache=False)
    twin = pvekit.connect(**kw, cache=False)
    try:
        group = pvekit.Group([a, b])
        assert group.profiles == ["site-a", "site-b"]
        assert sorted(set(group.nodes()["profile"])) == ["site-a", "site-b"]
        assert same.profile == twin.profile == kw["host"].split("://", 1)[1]
        # two members with one name: a clear error that says how to tell them apart
        with pytest.raises(InvalidInputError, match=r"appears twice.*name=\.\.\."):
            pvekit.Group([same, twin])
    finally:
        for c in (a, b, same, twin):
            c.close()


def test_connect_needs_a_profile_or_host() -> None:
    with pytest.raises(ConfigError, match="no default profile"):
        pvekit.connect()
    with pytest.raises(ConfigError, match="unknown profile 'prod'"):
        pvekit.connect("prod")
    with pytest.raises(InvalidInputError):
        pvekit.connect(42)  # type: ignore[arg-type]


def test_connect_profiles_from_config(srv: PVEServer) -> None:
    write_config(
        f"""
        default: main
        profiles:
          main:
            host: {srv.url}
            user: root@pam
            password: {ROOT_PW}
            cache: false
          tok:
            host: {srv.url}
            token: PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}
            timeout: 7
        """
    )
    with pvekit.connect() as c:
        assert c.profile == "main" and not c.is_token
    with pvekit.connect("tok") as t:
        assert t.profile == "tok" and t.is_token and t.settings.timeout == 7.0
    # arguments other than their defaults override the profile
    prof = resolve_profile("tok", timeout=3, cache="memory", verify_ssl=False)
    assert (prof.timeout, prof.cache, prof.verify_ssl) == (3.0, "memory", False)
    switched = resolve_profile("main", token_value=f"PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}")
    assert switched.is_token and switched.password is None
    back = resolve_profile("tok", password="pw")
    assert not back.is_token and back.user == "root@pam"
    same = pvekit.Profile(host="pve1", password="pw", name="given")
    assert resolve_profile(same) is same
    with pytest.raises(InvalidInputError, match="either a Profile or host"):
        resolve_profile(same, host="pve2")


def test_connect_group_is_lazy_and_tolerates_a_dead_member(srv: PVEServer) -> None:
    write_config(
        f"""
        profiles:
          up: {{host: "{srv.url}", password: {ROOT_PW}, cache: false}}
          down: {{host: "http://127.0.0.1:9", password: x, cache: false, retries: 0}}
        groups:
          both: [up, down]
        """
    )
    group = pvekit.connect_group("both")
    try:
        assert isinstance(group, pvekit.Group)
        assert group.profiles == ["up", "down"]
        assert srv.requests == []  # nothing was sent yet
    finally:
        group.close()
    with pytest.raises(ConfigError, match="unknown group 'nope'"):
        pvekit.connect_group("nope")
    with pytest.raises(InvalidInputError):
        pvekit.connect_group("")


def test_arguments_equal_to_the_defaults_still_override_the_profile(srv: PVEServer) -> None:
    # Turning TLS verification back on (or the timeout or cache back to their defaults) for one
    # connection must work: an explicit argument is given even when it equals the default.
    write_config(
        f"""
        profiles:
          lax: {{host: "{srv.url}", password: {ROOT_PW}, verify_ssl: false, timeout: 60,
                 cache: false}}
        """
    )
    prof = resolve_profile("lax", verify_ssl=True, timeout=30, cache=True)
    assert (prof.verify_ssl, prof.timeout, prof.cache) == (True, 30.0, True)
    kept = resolve_profile("lax")
    assert (kept.verify_ssl, kept.timeout, kept.cache) == (False, 60.0, False)
    with pvekit.connect("lax", verify_ssl=True, timeout=30, cache="memory", check=False) as c:
        assert c.settings.verify_ssl is True and c.settings.timeout == 30.0
    # with host=..., leaving them out still means the documented defaults
    adhoc = resolve_profile(host="pve1", password="pw")
    assert (adhoc.verify_ssl, adhoc.timeout, adhoc.cache) == (True, 30.0, True)


def test_connect_group_check_closes_what_it_opened_when_a_member_fails(
    srv: PVEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        f"""
        profiles:
          up: {{host: "{srv.url}", password: {ROOT_PW}, cache: false}}
          down: {{host: "http://127.0.0.1:9", password: x, cache: false, retries: 0}}
        groups:
          both: [up, down]
        """
    )
    opened: list[ApiClient] = []
    real_init = ApiClient.__init__

    def spy(self: ApiClient, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        opened.append(self)

    monkeypatch.setattr(ApiClient, "__init__", spy)
    with pytest.raises(pvekit.PVEError):
        pvekit.connect_group("both", check=True)
    assert [c.profile for c in opened] == ["up", "down"]
    assert all(c._closed for c in opened), "a cluster opened before the failure was leaked"


# -- against the simulator ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def simu() -> Iterator[Simulator]:
    from pvekit.sim import Simulator

    with Simulator("demo") as s:
        yield s


def _first_qemu(c: ApiClient) -> tuple[str, int]:
    rows = c.get("/cluster/resources", type="vm", fresh=True)
    row = next(r for r in rows if r["type"] == "qemu" and not r.get("template"))
    return row["node"], int(row["vmid"])


@pytest.mark.parametrize("identity", ["root", "token"])
def test_sim_login_and_csrf_only_on_writes(simu: Simulator, identity: str) -> None:
    sc = simu["prod"]
    sc.clear_requests()
    with pvekit.connect("prod", **sc.connect_kwargs(identity=identity), cache=False) as c:
        node, vmid = _first_qemu(c)
        c.post(f"/nodes/{node}/qemu/{vmid}/config", description="touched by test_connect")
        config = c.get(f"/nodes/{node}/qemu/{vmid}/config")
    assert config["description"] == "touched by test_connect"
    recorded = [r for r in sc.requests if r.path != "/access/ticket"]
    assert recorded and all(r.status == 200 for r in recorded)
    for r in recorded:
        headers = {k.lower() for k in r.headers}
        if identity == "token":
            assert "authorization" in headers and "cookie" not in headers
            assert "csrfpreventiontoken" not in headers  # tokens need no CSRF token
        else:
            assert "cookie" in headers and "authorization" not in headers
            assert ("csrfpreventiontoken" in headers) == (r.method != "GET"), (r.method, r.path)
    logins = [r for r in sc.requests if r.path == "/access/ticket"]
    assert len(logins) == (0 if identity == "token" else 1)


def test_sim_ticket_expiry_on_its_clock_recovers_with_one_login(simu: Simulator) -> None:
    sc = simu["lab"]
    with pvekit.connect("lab", **sc.connect_kwargs(identity="root"), cache=False) as c:
        c.get("/nodes")
        sc.clear_requests()
        simu.clock.advance(2 * 3600 + 60)  # the server now considers the ticket expired
        assert c.get("/nodes")
        sc.expire_tickets()
        assert c.get("/cluster/status")
    statuses = [(r.method, r.path, r.status) for r in sc.requests]
    assert statuses.count(("POST", "/access/ticket", 200)) == 2
    assert ("GET", "/nodes", 401) in statuses and ("GET", "/nodes", 200) in statuses


def test_sim_two_factor_and_auditor(simu: Simulator) -> None:
    sc = simu["lab"]
    kwargs = sc.connect_kwargs(identity="tfa")
    with pvekit.connect("lab", **kwargs, cache=False) as c:
        assert c.get("/version")["release"]
    kwargs.pop("otp")
    with pytest.raises(TwoFactorRequiredError):
        pvekit.connect("lab", **kwargs, cache=False)
    with pvekit.connect("lab", **sc.connect_kwargs(identity="auditor"), cache=False) as a:
        node, vmid = _first_qemu(a)
        with pytest.raises(PermissionDeniedError) as info:
            a.post(f"/nodes/{node}/qemu/{vmid}/status/start")
    assert info.value.status == 403 and "profile 'lab'" in str(info.value)


def test_sim_https_fingerprint_good_and_bad() -> None:
    from pvekit.sim import Simulator

    with Simulator("empty", https=True) as s:
        sc = next(iter(s.clusters.values()))
        kwargs = sc.connect_kwargs(identity="root")
        kwargs.pop("ca_file")
        with pvekit.connect("pinned", **kwargs, cache=False) as c:
            assert c.settings.tls == "pinned"
            assert c.get("/version")["version"]
        sc.clear_requests()
        kwargs["fingerprint"] = ":".join(["00"] * 32)
        with pytest.raises(TLSError, match="pinned SHA-256 fingerprint"):
            pvekit.connect("pinned", **kwargs, cache=False)
        assert sc.requests == []  # the password never left the client
        no_pin = sc.connect_kwargs(identity="token")
        no_pin.pop("fingerprint")
        no_pin.pop("ca_file")
        with pytest.raises(TLSError):
            pvekit.connect("unverified", **no_pin, cache=False)


def test_demo_group_owns_the_simulator() -> None:
    group = pvekit.demo()
    try:
        assert group.profiles == ["prod", "lab"]
        prod = group["prod"]
        assert prod.settings.cache == "memory"
        assert prod.get("/cluster/resources", type="node")
        sim = group.simulator  # type: ignore[attr-defined]
        url = sim["prod"].url
    finally:
        group.close()
    assert group.simulator is None  # type: ignore[attr-defined]
    import requests

    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/api2/json/version", timeout=2)
