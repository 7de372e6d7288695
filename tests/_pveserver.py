"""A small, scriptable Proxmox-like HTTP(S) server on loopback for transport-level tests.

It speaks real HTTP/1.1 (keep-alive) and does what the client core must cope with:
``POST /access/ticket`` with password, ticket renewal and TOTP second factor; cookie tickets
with CSRF checks on writes; API tokens; the ``{"data": ...}`` envelope and Proxmox's error
shapes. Tests script per-path answers (statuses, Retry-After, dropped connections, delays),
count requests and inspect the headers each one carried.

Why this stays a second emulator next to ``pvekit.sim`` (issue 12): the tests of the client
core (test_api, test_auth, test_connect, test_transport) need answers that Proxmox VE never
gives, and that the simulator, built to be indistinguishable from PVE, must not give either:

- bodies without the ``{"data": ...}`` envelope (``Reply(body=...)``) and HTML bodies (a
  captive portal, a proxy's 502 page: ``Reply(raw=...)``);
- answers for paths that are not in the schema (``/x``, ``/raw``), which the simulator
  routes to 501 before any handler;
- an echo of the parsed query and form for any path, so a test sees exactly how the client
  encoded ``None``, booleans and lists; the simulator validates parameters against the
  schema and answers 400 first, which would hide the encoding under test;
- a scripted answer to ``POST /access/ticket`` itself, or for a path whatever the state.

What the simulator does is not duplicated: the TLS certificate comes from
``pvekit.sim._tls``, and tests of behaviour a real server has (faults, retries over real
endpoints, tasks, permissions, timeouts against real endpoints) use ``pvekit.sim``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API = "/api2/json"
ROOT_PW = "rootpw-S3cret"
TOKEN_ID = "root@pam!pvekit"
TOKEN_SECRET = "tok-5ecr3t-value"


@dataclass
class Recorded:
    method: str
    path: str  # relative to /api2/json
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    status: int = 0


@dataclass
class Reply:
    status: int = 200
    data: Any = None
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # full JSON body instead of {"data": data}
    raw: bytes | None = None  # send these bytes as text/html instead of JSON
    drop: bool = False  # close the connection without answering
    delay: float = 0.0


Handler = Callable[[Recorded], Reply]


def make_self_signed(common_name: str = "pve-test") -> tuple[bytes, bytes, str]:
    """(cert PEM, key PEM, SHA-256 fingerprint "AA:BB:...") for 127.0.0.1/localhost: the
    simulator's own certificate maker (pvekit.sim._tls), files read back and removed."""
    import shutil

    from pvekit.sim._tls import make_cert

    cert = make_cert(common_name, "127.0.0.1")
    try:
        with open(cert.cert_file, "rb") as fh:
            cert_pem = fh.read()
        with open(cert.key_file, "rb") as fh:
            key_pem = fh.read()
    finally:
        shutil.rmtree(cert.directory, ignore_errors=True)
    return cert_pem, key_pem, cert.fingerprint


class _QuietServer(ThreadingHTTPServer):
    """Timeout tests hang up on purpose: a client gone mid-answer is not a server error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class PVEServer:
    """Run with ``with PVEServer() as srv:``; ``srv.url`` is ``http(s)://127.0.0.1:PORT``."""

    def __init__(
        self,
        *,
        https: bool = False,
        users: dict[str, str] | None = None,
        tokens: dict[str, str] | None = None,
        tfa: dict[str, str] | None = None,
    ) -> None:
        self.https = https
        self.users = users if users is not None else {"root@pam": ROOT_PW}
        self.tokens = tokens if tokens is not None else {TOKEN_ID: TOKEN_SECRET}
        self.tfa = tfa or {}
        self.requests: list[Recorded] = []
        self.tickets: dict[str, tuple[str, str]] = {}  # ticket -> (user, csrf)
        self.challenges: dict[str, str] = {}  # partial ticket -> user
        self.logins = 0
        self.counter = 0
        self.login_delay = 0.0
        self._scripts: dict[tuple[str, str], deque[Reply]] = {}
        self._routes: dict[tuple[str, str], Handler] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.fingerprint: str | None = None
        self.ca_file: str | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> PVEServer:
        server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        if self.https:
            import ssl

            cert_pem, key_pem, self.fingerprint = make_self_signed()
            self._tmpdir = tempfile.TemporaryDirectory(prefix="pveserver-")
            cert_path = os.path.join(self._tmpdir.name, "cert.pem")
            key_path = os.path.join(self._tmpdir.name, "key.pem")
            with open(cert_path, "wb") as fh:
                fh.write(cert_pem)
            with open(key_path, "wb") as fh:
                fh.write(key_pem)
            self.ca_file = cert_path
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert_path, key_path)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> PVEServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.host}"

    # -- scripting ---------------------------------------------------------------------------

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Answer the next requests to (method, path) with ``replies``, in order."""
        with self._lock:
            self._scripts.setdefault((method, path), deque()).extend(replies)

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answer every (method, path) request with ``handler(recorded)``."""
        self._routes[(method, path)] = handler

    def expire_tickets(self) -> None:
        with self._lock:
            self.tickets.clear()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return sum(
            1
            for r in list(self.requests)
            if (method is None or r.method == method) and (path is None or r.path == path)
        )

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- behaviour ---------------------------------------------------------------------------

    def _new_ticket(self, user: str) -> dict[str, Any]:
        stamp = format(int(time.time()), "X")
        sig = base64.b64encode(secrets.token_bytes(24)).decode()
        ticket = f"PVE:{user}:{stamp}::{sig}"
        csrf = f"{stamp}:{base64.b64encode(secrets.token_bytes(16)).decode().rstrip('=')}"
        self.tickets[ticket] = (user, csrf)
        return {"username": user, "ticket": ticket, "CSRFPreventionToken": csrf}

    def _login(self, rec: Recorded) -> Reply:
        with self._lock:
            self.logins += 1
        if self.login_delay:
            time.sleep(self.login_delay)
        user = rec.form.get("username", "")
        password = rec.form.get("password", "")
        challenge = rec.form.get("tfa-challenge")
        with self._lock:
            if challenge is not None:
                if self.challenges.get(challenge) != user:
                    return Reply(401, reason="authentication failure")
                if password != f"totp:{self.tfa.get(user)}":
                    return Reply(401, reason="authentication failure")
                del self.challenges[challenge]
                return Reply(200, self._new_ticket(user))
            if password in self.tickets and self.tickets[password][0] == user:
                return Reply(200, self._new_ticket(user))
            if user in self.users and password == self.users[user]:
                if user in self.tfa:
                    partial = f"PVE:!tfa!{user}:{secrets.token_hex(8)}::chal"
                    self.challenges[partial] = user
                    return Reply(
                        200,
                        {
                            "username": user,
                            "ticket": partial,
                            "CSRFPreventionToken": "tfa-csrf",
                            "NeedTFA": 1,
                        },
                    )
                return Reply(200, self._new_ticket(user))
        return Reply(401, reason="authentication failure")

    def _authorize(self, rec: Recorded) -> Reply | None:
        auth = rec.headers.get("authorization", "")
        if auth.startswith("PVEAPIToken="):
            ident, _, secret = auth[len("PVEAPIToken=") :].partition("=")
            if self.tokens.get(ident) == secret:
                return None
            return Reply(401, reason="invalid token value!")
        cookie = rec.headers.get("cookie", "")
        ticket = None
        for part in cookie.split(";"):
            k, _, v = part.strip().partition("=")
            if k == "PVEAuthCookie":
                ticket = v
        with self._lock:
            known = self.tickets.get(ticket) if ticket else None
        if known is None:
            return Reply(401, reason="No ticket")
        if rec.method != "GET" and rec.headers.get("csrfpreventiontoken") != known[1]:
            return Reply(401, reason="Permission denied - invalid csrf token")
        return None

    def handle(self, rec: Recorded) -> Reply:
        key = (rec.method, rec.path)
        with self._lock:
            queue = self._scripts.get(key)
            scripted = queue.popleft() if queue else None
        if rec.method == "POST" and rec.path == "/access/ticket":
            return scripted if scripted is not None else self._login(rec)
        if scripted is not None and (scripted.drop or scripted.status in (502, 503, 504)):
            return scripted  # transport trouble happens before authentication
        denied = self._authorize(rec)
        if denied is not None:
            return denied
        if scripted is not None:
            return scripted
        if key in self._routes:
            return self._routes[key](rec)
        with self._lock:
            self.counter += 1
            n = self.counter
        return Reply(200, {"path": rec.path, "n": n, "query": rec.query, "form": rec.form})


def _make_handler(server: PVEServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "pve-api-daemon/3.0"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            form = dict(parse_qsl(raw.decode(), keep_blank_values=True)) if raw else {}
            path = parts.path[len(API) :] if parts.path.startswith(API) else parts.path
            rec = Recorded(
                method=self.command,
                path=path or "/",
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                form=form,
                headers={k.lower(): v for k, v in self.headers.items()},
            )
            with server._lock:
                server.requests.append(rec)
            reply = server.handle(rec)
            if reply.delay:
                time.sleep(reply.delay)
            if reply.drop:
                self.close_connection = True
                return
            rec.status = reply.status
            body = reply.body if reply.body is not None else {"data": reply.data}
            payload = reply.raw if reply.raw is not None else json.dumps(body).encode()
            ctype = "text/html" if reply.raw is not None else "application/json;charset=UTF-8"
            self.send_response(reply.status, reply.reason)
            self.send_header("Content-Type", ctype)
            self.send_header("Cache-Control", "max-age=0")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


def _profile(srv: PVEServer, credentials: dict[str, Any], overrides: dict[str, Any]) -> Any:
    """A Profile for ``srv`` (its fingerprint when HTTPS, fast retries), then ``overrides``."""
    from pvekit._config import Profile

    fields: dict[str, Any] = {"host": srv.url, **credentials, "backoff": 0.01, "timeout": 5}
    if srv.https:
        fields["fingerprint"] = srv.fingerprint
    fields.update(overrides)
    return Profile(**fields)


def password_profile(srv: PVEServer, **kwargs: Any) -> Any:
    """A Profile logging in to ``srv`` as root@pam with a password (fast retries)."""
    return _profile(srv, {"user": "root@pam", "password": ROOT_PW}, kwargs)


def token_profile(srv: PVEServer, **kwargs: Any) -> Any:
    """A Profile using the API token ``root@pam!pvekit`` on ``srv``."""
    return _profile(srv, {"token_name": TOKEN_ID, "token_value": TOKEN_SECRET}, kwargs)
