"""Authentication against a live loopback server: tokens, tickets, CSRF, renewal, 401, TFA."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from _pveserver import (
    ROOT_PW,
    TOKEN_ID,
    TOKEN_SECRET,
    PVEServer,
    Reply,
    password_profile,
    token_profile,
)

from pvekit import AuthenticationError, TwoFactorRequiredError
from pvekit._api import ApiClient
from pvekit._auth import TicketAuth, TokenAuth


@pytest.fixture
def srv() -> Iterator[PVEServer]:
    with PVEServer(
        users={"root@pam": ROOT_PW, "tfa@pve": "tfa-pass-W0rd"},
        tfa={"tfa@pve": "246810"},
    ) as s:
        yield s


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def _clocked_client(srv: PVEServer) -> Iterator[tuple[ApiClient, FakeClock]]:
    """A password client whose ticket ages by a FakeClock the test moves forward."""
    clock = FakeClock()
    with ApiClient(password_profile(srv, cache=False)) as c:
        assert isinstance(c.auth, TicketAuth)
        c.auth._clock = clock
        yield c, clock


def test_token_header_on_every_request_and_no_login(srv: PVEServer) -> None:
    with ApiClient(token_profile(srv, cache=False)) as c:
        assert isinstance(c.auth, TokenAuth)
        c.get("/nodes")
        c.post("/nodes/pve1/qemu/100/status/start")
        c.delete("/pools/x")
    assert srv.logins == 0
    assert [r.method for r in srv.requests] == ["GET", "POST", "DELETE"]
    for r in srv.requests:
        assert r.headers["authorization"] == f"PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}"
        assert "cookie" not in r.headers and "csrfpreventiontoken" not in r.headers
    assert TOKEN_SECRET not in repr(c) and TOKEN_SECRET not in repr(c.auth)


def test_wrong_token_is_authentication_error(srv: PVEServer) -> None:
    with (
        ApiClient(token_profile(srv, token_value="wrong-secret", cache=False)) as c,
        pytest.raises(AuthenticationError) as info,
    ):
        c.get("/nodes")
    assert info.value.status == 401 and "wrong-secret" not in str(info.value)
    assert srv.count("GET", "/nodes") == 1  # a token 401 is not retried


def test_ticket_login_cookie_and_csrf_only_on_writes(srv: PVEServer) -> None:
    with ApiClient(password_profile(srv, cache=False)) as c:
        assert isinstance(c.auth, TicketAuth)
        c.get("/nodes")
        c.post("/nodes/pve1/qemu/100/status/start", {"timeout": 5})
        c.put("/nodes/pve1/lxc/200/config", cores=2)
        c.delete("/nodes/pve1/qemu/100/snapshot/s1")
        c.get("/cluster/resources")
    login, *rest = srv.requests
    assert (login.method, login.path) == ("POST", "/access/ticket")
    assert login.form == {"username": "root@pam", "password": ROOT_PW}
    assert "cookie" not in login.headers and "authorization" not in login.headers
    ticket, csrf = next(iter(srv.tickets.items()))[0], next(iter(srv.tickets.values()))[1]
    for r in rest:
        assert r.headers["cookie"] == f"PVEAuthCookie={ticket}"
        assert "authorization" not in r.headers
        if r.method == "GET":
            assert "csrfpreventiontoken" not in r.headers
        else:
            assert r.headers["csrfpreventiontoken"] == csrf
        assert r.status == 200
    assert srv.logins == 1


def test_wrong_password(srv: PVEServer) -> None:
    with (
        ApiClient(password_profile(srv, password="not-the-password", cache=False)) as c,
        pytest.raises(AuthenticationError) as info,
    ):
        c.get("/nodes")
    message = str(info.value)
    assert "login as root@pam refused" in message and "authentication failure" in message
    assert "not-the-password" not in message
    assert info.value.path == "/access/ticket" and info.value.method == "POST"
    assert info.value.profile == "default"
    assert srv.count("GET", "/nodes") == 0


def test_ticket_renewed_before_expiry_with_ticket_as_password(srv: PVEServer) -> None:
    with _clocked_client(srv) as (c, clock):
        c.get("/nodes")
        first_ticket = next(iter(srv.tickets))
        clock.now += 1800
        c.get("/nodes")
        assert srv.logins == 1  # half an hour: still fresh
        clock.now += 1900  # older than the one-hour renewal age
        c.get("/nodes")
        assert srv.logins == 2
        renewal = [r for r in srv.requests if r.path == "/access/ticket"][-1]
        assert renewal.form == {"username": "root@pam", "password": first_ticket}
        assert isinstance(c.auth, TicketAuth)
        assert c.auth.age == 0
        new_ticket = c.auth.credentials()[0]
        assert new_ticket != first_ticket
        assert srv.requests[-1].headers["cookie"] == f"PVEAuthCookie={new_ticket}"


def test_renewal_refused_falls_back_to_password(srv: PVEServer) -> None:
    with _clocked_client(srv) as (c, clock):
        c.get("/nodes")
        srv.expire_tickets()
        clock.now += 3700
        c.get("/nodes")
    forms = [r.form["password"] for r in srv.requests if r.path == "/access/ticket"]
    assert forms[0] == ROOT_PW and forms[1].startswith("PVE:root@pam:") and forms[2] == ROOT_PW


def test_ticket_past_two_hours_logs_in_with_password(srv: PVEServer) -> None:
    with _clocked_client(srv) as (c, clock):
        c.get("/nodes")
        clock.now += 7200
        c.get("/nodes")
    forms = [r.form["password"] for r in srv.requests if r.path == "/access/ticket"]
    assert forms == [ROOT_PW, ROOT_PW]


def test_401_relogin_and_repeat_once_for_reads_and_writes(srv: PVEServer) -> None:
    runs: list[str] = []

    def start(rec: object) -> Reply:
        runs.append("ran")
        return Reply(200, "UPID:x")

    srv.route("POST", "/nodes/pve1/qemu/100/status/start", start)
    with ApiClient(password_profile(srv, cache=False)) as c:
        c.get("/nodes")
        srv.expire_tickets()  # the server forgets the ticket: next request gets 401
        assert c.get("/nodes")["path"] == "/nodes"
        assert srv.logins == 2
        srv.expire_tickets()
        assert c.post("/nodes/pve1/qemu/100/status/start") == "UPID:x"
        assert srv.logins == 3
    posts = [r for r in srv.requests if r.path == "/nodes/pve1/qemu/100/status/start"]
    assert [p.status for p in posts] == [401, 200]
    assert runs == ["ran"]  # the refused POST never ran; the repeat ran once


def test_second_401_is_an_error_not_a_loop(srv: PVEServer) -> None:
    srv.script("GET", "/nodes", Reply(401, reason="No ticket"), Reply(401, reason="No ticket"))
    with (
        ApiClient(password_profile(srv, cache=False)) as c,
        pytest.raises(AuthenticationError, match="No ticket"),
    ):
        c.get("/nodes")
    assert srv.count("GET", "/nodes") == 2
    assert srv.logins == 2


def _race(n: int, fn: object) -> list[BaseException]:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            fn()  # type: ignore[operator]
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return errors


def test_ten_threads_on_a_server_expired_ticket_make_one_login(srv: PVEServer) -> None:
    with ApiClient(password_profile(srv, cache=False)) as c:
        c.get("/version")
        srv.expire_tickets()
        srv.login_delay = 0.2  # widen the window in which the threads could collide
        errors = _race(10, lambda: c.get("/nodes"))
        assert errors == []
    assert srv.logins == 2
    # A thread refused with the old ticket repeats once; one that starts after the new login
    # needs no repeat. Never more than two sends per thread.
    assert 10 <= srv.count("GET", "/nodes") <= 20


def test_ten_threads_on_a_client_expired_ticket_make_one_renewal(srv: PVEServer) -> None:
    with _clocked_client(srv) as (c, clock):
        c.get("/version")
        clock.now += 4000
        srv.login_delay = 0.2
        errors = _race(10, lambda: c.get("/nodes"))
        assert errors == []
    assert srv.logins == 2
    assert srv.count("GET", "/nodes") == 10


def test_two_factor_without_code(srv: PVEServer) -> None:
    with (
        ApiClient(
            password_profile(srv, user="tfa@pve", password="tfa-pass-W0rd", cache=False)
        ) as c,
        pytest.raises(TwoFactorRequiredError) as info,
    ):
        c.get("/nodes")
    assert "otp=" in str(info.value)
    assert "profile 'default'" in str(info.value)
    assert isinstance(info.value, AuthenticationError)


@pytest.mark.parametrize("otp", ["246810", lambda: "246810"])
def test_two_factor_with_code_or_callback(srv: PVEServer, otp: object) -> None:
    profile = password_profile(srv, user="tfa@pve", password="tfa-pass-W0rd", otp=otp, cache=False)
    with ApiClient(profile) as c:
        assert c.get("/nodes")["path"] == "/nodes"
        c.post("/nodes/pve1/qemu/100/status/start")
    logins = [r for r in srv.requests if r.path == "/access/ticket"]
    assert len(logins) == 2
    assert logins[0].form == {"username": "tfa@pve", "password": "tfa-pass-W0rd"}
    assert logins[1].form["password"] == "totp:246810"
    assert logins[1].form["tfa-challenge"].startswith("PVE:!tfa!")
    assert logins[1].form["username"] == "tfa@pve"
    assert srv.requests[-1].status == 200  # the full ticket and its CSRF token work for writes


def test_two_factor_wrong_code(srv: PVEServer) -> None:
    profile = password_profile(
        srv, user="tfa@pve", password="tfa-pass-W0rd", otp="000000", cache=False
    )
    with (
        ApiClient(profile) as c,
        pytest.raises(AuthenticationError, match="second factor for tfa@pve refused"),
    ):
        c.get("/nodes")


def test_no_secret_in_debug_logs_reprs_or_errors(
    srv: PVEServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with ApiClient(password_profile(srv, cache=False)) as c:
        c.get("/nodes", {"full": True})
        c.post("/nodes/pve1/qemu/100/config", {"description": "x"})
        srv.expire_tickets()
        c.get("/nodes", fresh=True)
        ticket, csrf = c.auth.credentials()  # type: ignore[union-attr]
        text = caplog.text + repr(c) + repr(c.auth) + repr(c.settings)
    with ApiClient(token_profile(srv, cache=False)) as t:
        t.get("/version")
        text += caplog.text + repr(t) + repr(t.auth)
    assert "GET /nodes [full=1] -> 200" in caplog.text
    assert "POST /access/ticket -> 200" in caplog.text
    for secret in (ROOT_PW, ticket, csrf, TOKEN_SECRET):
        assert secret not in text


def test_token_secret_with_newline_is_a_clear_error(
    srv: PVEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pvekit import ConfigError
    from pvekit._config import Secret

    monkeypatch.setenv("PVEKIT_TEST_TOKEN", "abc\ndef-secret-part")
    profile = token_profile(
        srv,
        token_value=Secret(
            env="PVEKIT_TEST_TOKEN", where="cfg: profile 't', field 'token_value_env'"
        ),
        cache=False,
    )
    with ApiClient(profile) as c, pytest.raises(ConfigError) as info:
        c.get("/nodes")
    assert "whitespace or control characters" in str(info.value)
    assert "def-secret-part" not in str(info.value)
    assert srv.requests == []
