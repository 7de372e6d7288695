"""The HTTP(S) front: one threaded stdlib server per simulated cluster.

Request flow, in ``pve-api-daemon`` order: fault injection, routing against the official
schema (501 for an unknown method/path), authentication (401), permission check (403),
parameter validation (400), proxying to the node (595 when it is offline), then the handler,
whose result is wrapped in ``{"data": ...}``. Every request is recorded (secrets redacted).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from . import _access, _auth, _ha  # noqa: F401  (_access, _ha register their handlers)
from . import _handlers_nodes as _handlers_nodes  # registers its routes in ROUTES
from ._auth import AuthDB, Identity
from ._dispatch import (
    API_PREFIX,
    MAX_BODY,
    Headers,
    SimResponse,
    _is_headers,
    http_date,
    response,
    serve,
)
from ._errors import SimHTTPError, param_error
from ._faults import Faults
from ._handlers import ACTION_OF, GUEST_TYPE_OF, ROUTES, Ctx, RawJSON
from ._result import WithAttribs
from ._schema import Schema, load_schema, return_type
from ._state import ClusterState
from ._tls import SelfSignedCert

__all__ = ["RecordedRequest", "SimCluster"]

_SECRET_PARAMS = {
    "password",
    "otp",
    "tfa-challenge",
    "new-password",
    "ticket",
    "value",
    "token_value",
    "secret",
    "input-data",
}
_SECRET_HEADERS = {"authorization", "cookie", "csrfpreventiontoken"}
_MAX_RECORDED = 100_000
# Paths and parameter sets whose routing and validation a cluster remembers (a client of
# 5,000 guests reads a few paths per guest); past it the memo starts over.
_MEMO_SIZE = 32_768
_SEQ = itertools.count(1)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the simulator served.

    ``path`` is relative to ``/api2/json`` (``/cluster/resources``), as pvekit's ApiClient
    spells paths; ``params`` holds query and form parameters; secrets in ``params`` and
    ``headers`` are replaced by ``"***"``. ``status`` is the HTTP status answered (0 for a
    dropped connection); ``time`` is the simulator clock at arrival.
    """

    method: str
    path: str
    params: Mapping[str, Any]
    headers: Mapping[str, str]
    status: int
    time: float
    cluster: str = ""
    seq: int = 0  # arrival order across every cluster of the process


def _redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    # Headers keeps (name as sent, value) under the lower-case name: read them as stored.
    pairs = headers._d.values() if _is_headers(headers) else headers.items()
    out: dict[str, str] = {}
    for k, v in pairs:
        if k.lower() in _SECRET_HEADERS:
            if k.lower() == "authorization" and v.startswith("PVEAPIToken="):
                tokenid = v.split("=", 2)[1] if v.count("=") >= 2 else ""
                out[k] = f"PVEAPIToken={tokenid}=***"
            elif k.lower() == "cookie":
                out[k] = "PVEAuthCookie=***"
            else:
                out[k] = "***"
        else:
            out[k] = v
    return out


def _redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: ("***" if k in _SECRET_PARAMS else v) for k, v in params.items()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, addr: tuple[str, int], cluster: SimCluster, tls: ssl.SSLContext | None
    ) -> None:
        self.cluster = cluster
        self.tls = tls
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut every open keep-alive connection, as a server going down does."""
        with self._conns_lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the connection's own thread, so a slow or broken client
        # cannot stall the accept loop.
        if self.tls is not None:
            try:
                request.settimeout(10)
                request = self.tls.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up is not the simulator's problem


# The request heads the fast path reads itself (``_Handler.parse_request``): a request line
# of one method, one printable target and HTTP/1.0 or 1.1, and header lines
# ``Name: value`` of printable ASCII. The name class is the one the email package accepts
# for a header name; anything else is left to the standard library's parser.
_FAST_REQUEST_LINE = re.compile(rb"([A-Z]+) ([!-~]+) HTTP/1\.([01])\r?\n")
_FAST_HEADER_LINE = re.compile(rb"([!-9;-~]+):[ \t]*([\t -~]*?)\r?\n")
# http.client's limits on a request head (``_MAXLINE``, ``_MAXHEADERS``), which
# ``parse_request`` enforces with 431 answers.
_MAX_LINE = 65536
_MAX_HEADERS = 100


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    raw_requestline: bytes  # set by handle_one_request before parse_request

    def setup(self) -> None:
        super().setup()
        # An answer goes out in one write, but a big body spans several segments: without
        # TCP_NODELAY, Nagle's algorithm and the client's delayed ACK can hold the last one.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return "pve-api-daemon/3.0"

    def date_time_string(self, timestamp: float | None = None) -> str:
        return http_date() if timestamp is None else super().date_time_string(timestamp)

    def parse_request(self) -> bool:
        """``BaseHTTPRequestHandler.parse_request`` for the common request head, without the
        email package (about a third of a small request's server CPU, measured).

        The head is read line by line exactly as ``http.client.parse_headers`` reads it (same
        line and count limits). A head the fast path does not take (another version, a
        folded, duplicate, non-ASCII or malformed header line, ``Expect``, a limit hit) is
        handed, as the bytes read so far, to the standard parser, which then answers or
        errs exactly as it would have on the socket.
        """
        m = _FAST_REQUEST_LINE.fullmatch(self.raw_requestline)
        if m is None:
            return super().parse_request()
        rfile = self.rfile
        lines: list[bytes] = []
        fields: dict[str, tuple[str, str]] | None = {}
        while True:
            line = rfile.readline(_MAX_LINE + 1)
            lines.append(line)
            if len(line) > _MAX_LINE or len(lines) > _MAX_HEADERS or not line:
                fields = None  # the standard parser answers 431 / sees the early end
                break
            if line in (b"\r\n", b"\n"):
                break
            if fields is None:
                continue  # read on to the end of the head, as the standard parser does
            hm = _FAST_HEADER_LINE.fullmatch(line)
            if hm is None:
                fields = None
                continue
            name = hm.group(1).decode("ascii")
            key = name.lower()
            if key in fields or key == "expect":
                fields = None
                continue
            fields[key] = (name, hm.group(2).decode("ascii"))
        if fields is None:
            self.rfile = io.BytesIO(b"".join(lines))
            try:
                return super().parse_request()
            finally:
                self.rfile = rfile
        command, path, minor = m.group(1, 2, 3)
        self.command = command.decode("ascii")
        self.request_version = "HTTP/1.1" if minor == b"1" else "HTTP/1.0"
        self.requestline = self.raw_requestline.rstrip(b"\r\n").decode("ascii")
        # What the standard parser decides: HTTP/1.1 keeps the connection, 1.0 closes it,
        # unless a Connection header says otherwise.
        self.close_connection = minor != b"1"
        target = path.decode("ascii")
        if target.startswith("//"):
            target = "/" + target.lstrip("/")  # gh-87389, as the standard parser does
        self.path = target
        self.headers = Headers._of(fields)  # type: ignore[assignment]
        conntype = fields.get("connection")
        if conntype is not None:
            if conntype[1].lower() == "close":
                self.close_connection = True
            elif conntype[1].lower() == "keep-alive":
                self.close_connection = False
        return True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(response(413, "Request Entity Too Large", {"data": None}))
            return
        body = self.rfile.read(length) if length else b""
        fields: Any = self.headers  # Headers from the fast path, else an email Message
        headers = fields if _is_headers(fields) else Headers({k: v for k, v in fields.items()})
        answer = serve(self.server.cluster, method, self.path, headers, body)
        if answer.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(answer)

    def _send(self, answer: SimResponse) -> None:
        if self.request_version == "HTTP/0.9":  # no status line or headers at all
            self.log_request(answer.status)
            try:
                self.wfile.write(answer.body)
            except OSError:
                self.close_connection = True
            return
        # The bytes send_response/send_header/end_headers would write, head and body in one
        # write: over TLS a second small write is a second record (and its CPU).
        self.log_request(answer.status)
        head = [
            f"{self.protocol_version} {answer.status:d} {answer.reason}\r\n"
            f"Server: {self.version_string()}\r\nDate: {self.date_time_string()}\r\n"
        ]
        for k, v in answer.headers.items():
            if k == "Server":  # written above from version_string()
                continue
            head.append(f"{k}: {v}\r\n")
            if k.lower() == "connection":
                if v.lower() == "close":
                    self.close_connection = True
                elif v.lower() == "keep-alive":
                    self.close_connection = False
        head.append("\r\n")
        data = "".join(head).encode("latin-1", "strict")
        pending = getattr(self, "_headers_buffer", None)
        if pending:
            data = b"".join(pending) + data
            self._headers_buffer: list[bytes] = []
        try:
            self.wfile.write(data + answer.body)
        except OSError:
            self.close_connection = True


@dataclass
class SimCluster:
    """One simulated cluster and its HTTP server (see ``docs/simulator.md``)."""

    name: str
    state: ClusterState
    auth: AuthDB
    faults: Faults
    host_ip: str = "127.0.0.1"
    port: int = 0
    https: bool = False
    cert: SelfSignedCert | None = None
    # Served through the in-process transport only: start() opens no socket, and url,
    # host and connect_kwargs() name the in-process address.
    inprocess: bool = False
    _server: _Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _requests: list[RecordedRequest] = field(default_factory=list, repr=False)
    _rec_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.schema: Schema = load_schema(self.state.pve_version)
        # Routing and parameter checks are pure functions of the (immutable) schema and the
        # request, so their answers are kept, per schema object: a client reads the same
        # few paths over and over. See _resolve and _check.
        self._memo_schema: Schema | None = None
        self._routes: dict[str, tuple[str, dict[str, str]] | None] = {}
        self._checks: dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[str, str]] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self.inprocess:
            return
        tls = None
        if self.https:
            assert self.cert is not None
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(self.cert.cert_file, self.cert.key_file)
        self._server = _Server((self.host_ip, self.port), self, tls)
        self.port = self._server.server_address[1]
        if self.https and self.cert is not None:
            for n in self.state.nodes.values():
                n.fingerprint = self.cert.fingerprint
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"pvekit-sim-{self.name}",
            daemon=True,
        )
        self._thread.start()
        if len(self.state.guests) > 1000:
            # Serialize /cluster/resources ahead of the first client of a big inventory.
            threading.Thread(
                target=self._warm, name=f"pvekit-sim-warm-{self.name}", daemon=True
            ).start()

    def _warm(self) -> None:
        from ._handlers import _resources

        with self.state.lock:
            _resources(self.state, None)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- public facts -----------------------------------------------------------------------

    @property
    def host(self) -> str:
        """``"127.0.0.1:PORT"`` (the in-process host in in-process mode)."""
        if self.inprocess:
            return self.inprocess_url.split("://", 1)[1]
        return f"{self.host_ip}:{self.port}"

    @property
    def url(self) -> str:
        """``"http://127.0.0.1:PORT"`` (``https://`` in HTTPS mode, :attr:`inprocess_url` in
        in-process mode)."""
        if self.inprocess:
            return self.inprocess_url
        return f"{'https' if self.https else 'http'}://{self.host}"

    @property
    def fingerprint(self) -> str | None:
        """SHA-256 fingerprint of the certificate, ``AA:BB:...`` (None without HTTPS)."""
        return self.cert.fingerprint if self.cert else None

    @property
    def ca_file(self) -> str | None:
        """PEM file of the self-signed certificate (None without HTTPS)."""
        return self.cert.cert_file if self.cert else None

    @property
    def inprocess_url(self) -> str:
        """Base URL the in-process transport answers for (never resolved: ``.invalid``)."""
        return f"http://{self.name}.pvekit-sim.invalid:8006"

    def transport(self) -> Any:
        """A :class:`~pvekit.sim.SimTransport` (requests adapter) serving this cluster."""
        from ._inprocess import SimTransport

        return SimTransport(self)

    def session(self) -> requests.Session:
        """A ``requests.Session`` whose requests to :attr:`inprocess_url` are served
        in-process (no socket, thread or TLS); pass it as ``pvekit.connect(session=...)``."""
        s = requests.Session()
        s.trust_env = False
        s.mount(self.inprocess_url + "/", self.transport())
        return s

    def connect_kwargs(
        self, identity: str = "root", *, inprocess: bool | None = None
    ) -> dict[str, Any]:
        """Keyword arguments for :func:`pvekit.connect` as one of the demo identities.

        ``root`` (password), ``token`` (API token ``root@pam!pvekit``), ``auditor`` (read
        only) or ``tfa`` (password plus the current TOTP code as ``otp``). With
        ``inprocess=True`` (the default in in-process mode) they carry a :meth:`session`
        served by the in-process transport and :attr:`inprocess_url` as host: the cluster
        need not be started.
        """
        if inprocess is None:
            inprocess = self.inprocess
        kw: dict[str, Any] = {"host": self.inprocess_url if inprocess else self.url}
        if inprocess:
            kw["session"] = self.session()
        if identity == "root":
            kw.update(user="root@pam", password=self.auth.users["root@pam"].password)
        elif identity == "token":
            kw.update(token_name="root@pam!pvekit", token_value=self.auth.token_secret)
        elif identity == "auditor":
            kw.update(user="auditor@pve", password=self.auth.users["auditor@pve"].password)
        elif identity == "tfa":
            kw.update(
                user="tfa@pve",
                password=self.auth.users["tfa@pve"].password,
                otp=self.auth.current_otp(),
            )
        else:
            raise ValueError(f"unknown identity {identity!r}; use root, token, auditor or tfa")
        if self.https and not inprocess:
            kw.update(verify_ssl=True, ca_file=self.ca_file, fingerprint=self.fingerprint)
        return kw

    def env(self, identity: str = "root") -> dict[str, str]:
        """``PROXMOX_*`` environment variables that point a separate process (a notebook
        kernel, the CLI) at this cluster; pvekit reads them as the profile ``env``.

        The variables carry no CA file: in HTTPS mode they turn certificate checks off
        (``PROXMOX_VALIDATE_CERTS=false``), so prefer :meth:`connect_kwargs` in-process.
        Two-factor logins cannot be expressed this way (a TOTP code expires).
        """
        if self.inprocess:
            raise ValueError(
                "an in-process simulator cannot be reached from another process; "
                "use Simulator(..., inprocess=False)"
            )
        kw = self.connect_kwargs(identity)
        if identity == "tfa":
            raise ValueError("the tfa identity needs a fresh TOTP code; use connect_kwargs()")
        out = {"PROXMOX_HOST": kw["host"]}
        if "token_name" in kw:
            out["PROXMOX_TOKEN_ID"] = kw["token_name"]
            out["PROXMOX_TOKEN_SECRET"] = kw["token_value"]
        else:
            out["PROXMOX_USER"] = kw["user"]
            out["PROXMOX_PASSWORD"] = kw["password"]
        out["PROXMOX_VALIDATE_CERTS"] = "false" if self.https else "true"
        return out

    # -- recording --------------------------------------------------------------------------

    def record(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        headers: Mapping[str, str],
        status: int,
    ) -> None:
        rec = RecordedRequest(
            method,
            path,
            _redact_params(params),
            _redact_headers(headers),
            status,
            self.state.clock.now(),
            self.name,
            next(_SEQ),
        )
        with self._rec_lock:
            self._requests.append(rec)
            if len(self._requests) > _MAX_RECORDED:
                del self._requests[: _MAX_RECORDED // 10]

    @property
    def requests(self) -> list[RecordedRequest]:
        """Requests served so far, oldest first (a copy)."""
        with self._rec_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._rec_lock:
            self._requests.clear()

    # -- control ----------------------------------------------------------------------------

    def set_node_online(self, node: str, online: bool) -> None:
        """Take a node down (its guests stop, proxied calls answer 595) or bring it back."""
        with self.state.lock:
            n = self.state.node(node)
            if n.online == online:
                return
            n.online = online
            now = self.state.clock.now()
            if online:
                n.boot_time = now
                if n.outages and n.outages[-1][1] is None:
                    n.outages[-1] = (n.outages[-1][0], now)
            else:
                n.outages.append((now, None))
                for g in self.state.guests.values():
                    if g.node == node and g.running:
                        g.status, g.started_at, g.paused, g.pid = "stopped", None, False, 0
                for t in self.state.tasks:
                    if t.node == node and t.running:
                        t.outcome = "unexpected status"
                        t.on_done = None
                        self.state._finish(t, now)
            self.state.changed()

    def expire_tickets(self) -> None:
        """Invalidate every ticket issued so far (clients must log in again)."""
        self.auth.expire_tickets()

    # -- request handling -------------------------------------------------------------------

    def handle(
        self, method: str, path: str, params: dict[str, Any], headers: Mapping[str, str]
    ) -> tuple[int, str, Any]:
        """Answer one API request: (status, reason phrase, JSON payload)."""
        if not _is_headers(headers):
            headers = Headers(headers)  # header names are case-insensitive, in PVE too
        try:
            result = self._handle(method, path, params, headers)
        except SimHTTPError as exc:
            payload: dict[str, Any] = {"data": None}
            if exc.errors is not None:
                payload = {"errors": exc.errors, "data": None}
            return exc.status, exc.message, payload
        except Exception as exc:  # a simulator bug: answer like a failing PVE handler would
            return 500, f"{type(exc).__name__}: {exc}", {"data": None}
        if isinstance(result, RawJSON):
            return 200, "OK", result
        if isinstance(result, WithAttribs):
            return 200, "OK", {"data": result.data, **result.attribs}
        return 200, "OK", {"data": result}

    def _memos(self) -> None:
        if self._memo_schema is not self.schema:  # a new schema: nothing kept applies
            self._routes = {}
            self._checks = {}
            self._memo_schema = self.schema

    def _resolve(self, path: str) -> tuple[str, dict[str, str]] | None:
        """``self.schema.resolve(path)``, remembered per path (a fresh variables dict)."""
        self._memos()
        routes = self._routes
        try:
            found = routes[path]
        except KeyError:
            found = self.schema.resolve(path)
            if len(routes) >= _MEMO_SIZE:
                routes.clear()
            routes[path] = found
        return None if found is None else (found[0], dict(found[1]))

    def _check(self, ep: Any, merged: dict[str, Any]) -> dict[str, str]:
        """``self.schema.check(ep, merged)``, remembered per endpoint and parameters (names,
        order and values) for reads whose values are all strings (a fresh errors dict).

        Writes are checked afresh: their values vary (and a login's are secrets, which a
        memo would keep)."""
        self._memos()
        if (
            ep.method != "GET"
            or not all(type(v) is str for v in merged.values())
            or not _SECRET_PARAMS.isdisjoint(merged)
        ):
            return self.schema.check(ep, merged)
        key = (ep.path, ep.method, tuple(merged.items()))
        checks = self._checks
        errors = checks.get(key)
        if errors is None:
            errors = self.schema.check(ep, merged)
            if len(checks) >= _MEMO_SIZE:
                checks.clear()
            checks[key] = errors
        return dict(errors)

    def _handle(
        self, method: str, path: str, params: dict[str, Any], headers: Mapping[str, str]
    ) -> Any:
        found = self._resolve(path)
        ep = self.schema.endpoints.get((found[0], method)) if found else None
        if found is None or ep is None:
            raise SimHTTPError(501, f"Method '{method} {API_PREFIX}{path}' not implemented")
        template, variables = found
        ident: Identity | None = None
        if not (template == "/access/ticket" and method == "POST") and not (
            template == "/access/domains" and method == "GET"
        ):
            ident = self.auth.authenticate(method, headers)
            self._authorize(ident, method, ep.perm, variables, params)
        merged = dict(params)
        merged.update(variables)
        errors = self._check(ep, merged)
        if errors:
            raise param_error(errors)
        handler = ROUTES.get((template, method))
        with self.state.lock:
            self.state.tick()
            if ep.proxyto == "node" and "node" in variables:
                self.state.check_node_online(variables["node"])
            if handler is None:
                return self._fallback(template, method)
            extra: dict[str, Any] = {}
            if template in GUEST_TYPE_OF:
                extra["gtype"] = GUEST_TYPE_OF[template]
            if template in ACTION_OF:
                extra["action"] = ACTION_OF[template]
            ctx = Ctx(self.state, self.auth, ident, method, variables, params, extra, template)
            return handler(ctx)

    def _authorize(
        self,
        ident: Identity,
        method: str,
        perm: Any,
        variables: Mapping[str, str],
        params: Mapping[str, Any],
    ) -> None:
        read_only = ident.privs <= _audit_privs()
        ok, why = self.auth.check(ident, perm, variables, params)
        if method != "GET" and read_only:
            # PVE has no write an audit-only role may do: fail like the real check would.
            if ok or not why:
                why = _describe_write(perm, variables, params)
            raise SimHTTPError(403, f"Permission check failed ({why})")
        if not ok:
            raise SimHTTPError(403, f"Permission check failed ({why})")

    def _fallback(self, template: str, method: str) -> Any:
        """Schema paths the simulator has no model for (see :func:`modelled_endpoints`).

        A GET answers in the shape the schema documents: index paths list their children,
        other lists are empty, objects are empty objects, ``null`` is null. Anything else
        (a string, a number, an undocumented return, every write) is refused like an
        unimplemented feature, so a client never gets data of the wrong type."""
        if method == "GET":
            rtype = return_type(self.state.major, template)
            if rtype == "array":
                prefix = template.rstrip("/") + "/"
                children = sorted(
                    {
                        p[len(prefix) :].split("/")[0]
                        for (p, _m) in self.schema.endpoints
                        if p.startswith(prefix)
                    }
                )
                return [{"name": c} for c in children if not c.startswith("{")]
            if rtype == "object":
                return {}
            if rtype == "null":
                return None
        raise SimHTTPError(
            501, f"Method '{method} {API_PREFIX}{template}' not implemented by the pvekit simulator"
        )


_AUDIT: tuple[tuple[str, ...], frozenset[str]] = ((), frozenset())


def _audit_privs() -> frozenset[str]:
    """``frozenset(AUDIT_PRIVS)``, built once per tuple object."""
    global _AUDIT
    if _AUDIT[0] is not _auth.AUDIT_PRIVS:
        _AUDIT = (_auth.AUDIT_PRIVS, frozenset(_auth.AUDIT_PRIVS))
    return _AUDIT[1]


def _describe_write(perm: Any, variables: Mapping[str, str], params: Mapping[str, Any]) -> str:
    from ._auth import _subst

    def first(expr: Any) -> tuple[str, str] | None:
        if not isinstance(expr, list) or not expr:
            return None
        if expr[0] == "perm" and len(expr) > 2 and expr[2]:
            return str(expr[1]), str(expr[2][0])
        for sub in expr[1:]:
            found = first(sub)
            if found:
                return found
        return None

    found = first(perm)
    if found is None:
        vmid = params.get("vmid") or variables.get("vmid")
        return f"/vms/{vmid}, VM.Backup" if vmid else "/, Sys.Modify"
    return f"{_subst(found[0], variables, params)}, {found[1]}"
