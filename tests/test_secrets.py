"""Secret hygiene and TLS: no password, ticket, CSRF token or token secret ever shows.

Checked places: reprs (profiles, clients, groups, handles, auth objects), exception messages
(of every error class a user meets), log output at DEBUG (pvekit's and the HTTP stack's),
cassettes, an executed notebook's outputs, and the SQLite cache file itself (read as bytes,
for password and token identities), which must be mode 0600. A wrong pinned fingerprint
fails before any credential is sent; an insecure profile says so in its reprs.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pytest

import pvekit
from pvekit import PVEError, TLSError

if TYPE_CHECKING:
    from pvekit import Cluster
    from pvekit.sim import SimCluster, Simulator

ROOT = Path(__file__).resolve().parent.parent
TICKET_RE = re.compile(r"PVE(?:VNC)?:[^\s\"';&]*::[A-Za-z0-9+/=]{16,}")
CSRF_RE = re.compile(r"\b[0-9A-F]{8}:[A-Za-z0-9+/]{20,}")


def _known(sim: Simulator) -> list[str]:
    """Every credential the simulator hands out (passwords, token secrets, TOTP secret)."""
    out: list[str] = []
    for c in sim.clusters.values():
        out += [u.password for u in c.auth.users.values() if u.password]
        out.append(c.auth.token_secret)
        out.append(str(getattr(c.auth, "totp_secret", "") or ""))
    return [s for s in out if len(s) >= 6]


def _live(cluster: Cluster) -> list[str]:
    """The ticket and CSRF token this client holds right now (password login only)."""
    auth: Any = cluster.auth
    return [s for s in (getattr(auth, "_ticket", None), getattr(auth, "_csrf", None)) if s]


def _leaks(text: str, secrets: list[str]) -> list[str]:
    found = [s for s in secrets if s and s in text]
    found += TICKET_RE.findall(text)
    found += CSRF_RE.findall(text)
    return found


def _connect(sim: Simulator, identity: str, name: str = "prod", **kw: Any) -> Cluster:
    args = dict(sim[name].connect_kwargs(identity=identity))
    args.pop("profile", None)
    args.update(kw)
    args.setdefault("cache", False)
    args.setdefault("retries", 0)
    return pvekit.connect(name, **args)


@pytest.fixture(scope="module")
def tls_sim() -> Iterator[Simulator]:
    from pvekit.sim import Simulator

    with Simulator("demo", https=True, task_duration=0.1) as s:
        yield s


# ------------------------------------------------------------------------------ reprs


@pytest.mark.parametrize("identity", ["root", "token", "tfa"])
def test_reprs_show_no_secret(tls_sim: Simulator, identity: str) -> None:
    cluster = _connect(tls_sim, identity)
    try:
        cluster.guests()
        secrets = _known(tls_sim) + _live(cluster)
        assert identity == "token" or _live(cluster), "no ticket to look for"
        group = pvekit.Group([cluster])
        guest = cluster.guest(100)
        task = cluster.task("UPID:pve1:000A1B2C:0012D687:6650A4B1:qmstart:100:root@pam:")
        objects: list[Any] = [
            cluster,
            cluster.settings,
            cluster.auth,
            cluster.session,
            group,
            guest,
            task,
            group.status(),
        ]
        for obj in objects:
            for text in (repr(obj), str(obj)):
                assert _leaks(text, secrets) == [], f"{type(obj).__name__}: {text}"
        assert "tls=pinned" in repr(cluster)
    finally:
        cluster.close()


def test_insecure_profile_is_visible_in_reprs(tls_sim: Simulator) -> None:
    kw = dict(tls_sim["prod"].connect_kwargs(identity="token"))
    for key in ("ca_file", "fingerprint", "verify_ssl", "profile"):
        kw.pop(key, None)
    with pytest.warns(Warning):  # urllib3's own InsecureRequestWarning is left alone
        cluster = pvekit.connect("prod", verify_ssl=False, cache=False, **kw)
    try:
        for text in (repr(cluster), repr(cluster.settings)):
            assert "INSECURE" in text.upper() and "NOT VERIFIED" in text.upper(), text
        assert cluster.settings.insecure
    finally:
        cluster.close()


# ------------------------------------------------------------------------------ errors


def _errors(sim: Simulator) -> list[BaseException]:
    """One error of each kind a user meets, raised by real calls."""
    out: list[BaseException] = []
    c = sim["prod"]
    kw = dict(c.connect_kwargs(identity="root"))
    kw.pop("profile", None)
    for bad in ("wrong-password", kw["password"] + "x"):
        try:
            pvekit.connect("prod", **{**kw, "password": bad}, cache=False)
        except PVEError as err:
            out.append(err)
    tkw = dict(c.connect_kwargs(identity="token"))
    tkw.pop("profile", None)
    try:
        pvekit.connect("prod", **{**tkw, "token_value": tkw["token_value"][:-4] + "0000"})
    except PVEError as err:
        out.append(err)
    try:
        pvekit.connect("prod", **{**tkw, "token_value": tkw["token_value"] + "\n"})
    except PVEError as err:
        out.append(err)
    auditor = _connect(sim, "auditor")
    try:
        auditor.guest(100).start()
    except PVEError as err:
        out.append(err)
    finally:
        auditor.close()
    root = _connect(sim, "root")
    try:
        for call in (
            lambda: root.get("/nodes/nope/status"),
            lambda: root.post("/nodes/pve1/qemu/100/config", {"bogus": 1}),
            lambda: root.guest(999999).start(),
        ):
            try:
                call()
            except PVEError as err:
                out.append(err)
        c.faults.errors(1.0, (595,), pattern="/nodes/pve2/**")
        try:
            root.get("/nodes/pve2/status")
        except PVEError as err:
            out.append(err)
        c.faults.clear()
        c.expire_tickets()
        c.faults.errors(1.0, (401,), pattern="/access/ticket")
        try:
            root.get("/version", fresh=True)
        except PVEError as err:
            out.append(err)
        c.faults.clear()
    finally:
        root.close()
    return out


def test_error_messages_show_no_secret(tls_sim: Simulator) -> None:
    cluster = _connect(tls_sim, "root")
    live = _live(cluster) if cluster.get("/version") else []
    cluster.close()
    errors = _errors(tls_sim)
    assert len(errors) >= 8
    kinds = {type(e).__name__ for e in errors}
    assert {"AuthenticationError", "PermissionDeniedError", "NodeUnreachableError"} <= kinds
    secrets = _known(tls_sim) + live
    for err in errors:
        texts = [str(err), repr(err), *map(str, err.args)]
        texts += [str(v) for v in vars(err).values()]
        for text in texts:
            assert _leaks(text, secrets) == [], f"{type(err).__name__}: {text}"


# ------------------------------------------------------------------------------ logs


@pytest.mark.parametrize("identity", ["root", "token", "tfa"])
def test_debug_logs_show_no_secret(
    tls_sim: Simulator, identity: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: pvekit, urllib3, requests-cache
    cluster = _connect(tls_sim, identity, cache="memory")
    try:
        cluster.guests(details=True, progress=False)
        cluster.guests(details=True, progress=False)  # cache hits are logged too
        guest = cluster.guest(_stopped(tls_sim["prod"]))
        guest.start().wait(timeout=10, poll=0.05, progress=False)
        guest.update(description="logged")
        tls_sim["prod"].expire_tickets()
        cluster.get("/version", fresh=True)  # a renewal after a refused ticket
        try:
            cluster.post("/nodes/pve1/qemu/100/config", {"bogus": 1})
        except PVEError as err:
            logging.getLogger("pvekit.test").debug("error: %s", err)
        secrets = _known(tls_sim) + _live(cluster)
    finally:
        cluster.close()
    assert "GET /cluster/resources" in caplog.text
    assert _leaks(caplog.text, secrets) == []
    for record in caplog.records:
        assert _leaks(str(record.args), secrets) == []


def _stopped(c: SimCluster) -> int:
    for g in sorted(c.state.guests.values(), key=lambda g: g.vmid):
        usable = not g.template and not g.lock and c.state.nodes[g.node].online
        if g.type == "qemu" and g.status == "stopped" and usable:
            return g.vmid
    raise AssertionError("no stopped VM")


# ------------------------------------------------------------------------------ cache file


@pytest.mark.parametrize("identity", ["root", "token"])
def test_cache_file_holds_no_secret_and_is_private(tls_sim: Simulator, identity: str) -> None:
    from pvekit._transport import cache_file

    cluster = _connect(tls_sim, identity, cache=True)
    try:
        cluster.invalidate()
        cluster.guests(details=True, progress=False)
        cluster.nodes(progress=False)
        cluster.guest(100).update(description="cached")
        cluster.guests(details=True, progress=False)
        secrets = _known(tls_sim) + _live(cluster)
        path = cache_file(cluster.settings)
    finally:
        cluster.close()
    files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
    assert path in files and path.stat().st_size > 10_000  # answers were stored
    for f in files:
        data = f.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{f.name} holds a secret"
        text = data.decode("latin-1")
        assert TICKET_RE.findall(text) == [], f"{f.name} holds a ticket"
        assert CSRF_RE.findall(text) == [], f"{f.name} holds a CSRF token"
        assert re.search(rb"PVEAPIToken=[^=\s]+=[0-9a-f-]{8,}", data) is None, f.name
        mode = stat.S_IMODE(f.stat().st_mode)
        assert mode == 0o600, f"{f.name} has mode {oct(mode)}"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


# ------------------------------------------------------------------------------ cassettes


def test_cassettes_hold_no_secret() -> None:
    from pvekit.sim import Simulator

    cassettes = sorted((ROOT / "cassettes").glob("*.yaml"))
    assert cassettes, "no cassettes to check"
    known = _known(Simulator("demo", seed=0))  # not started: its deterministic credentials
    for path in cassettes:
        text = path.read_text(encoding="utf-8")
        assert _leaks(text, known) == [], f"{path.name} holds a secret"
        assert re.search(r"PVEAPIToken=[^=\s]+=[0-9a-f-]{8,}", text) is None, path.name
        plain = unquote(text)  # form bodies are URL-encoded
        assert re.search(r"(?i)password=(?!\*\*\*|REDACTED)[^&\s'\"]+", plain) is None, path.name


# ------------------------------------------------------------------------------ TLS


@pytest.mark.parametrize("identity", ["root", "token", "tfa"])
def test_wrong_fingerprint_fails_before_any_credential(tls_sim: Simulator, identity: str) -> None:
    c = tls_sim["prod"]
    kw = dict(c.connect_kwargs(identity=identity))
    kw.pop("profile", None)
    real = str(kw["fingerprint"])
    wrong = ":".join(["AB"] * 32)
    assert wrong != real
    c.clear_requests()
    with pytest.raises(TLSError) as info:
        pvekit.connect("prod", **{**kw, "fingerprint": wrong}, cache=False, retries=2)
    assert wrong in str(info.value) or "fingerprint" in str(info.value)
    # The handshake failed on the pin: nothing reached the server, no login, no token.
    assert c.requests == []
    # The same credentials with the right pin work.
    ok = pvekit.connect("prod", **kw, cache=False)
    try:
        assert ok.get("/version")
    finally:
        ok.close()


def test_wrong_ca_file_fails_before_any_credential(tls_sim: Simulator, tmp_path: Path) -> None:
    from pvekit.sim._tls import make_cert

    other = make_cert("someone-else", "127.0.0.1")
    pem = tmp_path / "other-ca.pem"
    pem.write_bytes(Path(other.cert_file).read_bytes())
    c = tls_sim["prod"]
    kw = dict(c.connect_kwargs(identity="root"))
    for key in ("fingerprint", "profile"):
        kw.pop(key, None)
    c.clear_requests()
    with pytest.raises(TLSError):
        pvekit.connect("prod", **{**kw, "ca_file": str(pem)}, cache=False)
    assert c.requests == []


# ------------------------------------------------------------------------------ notebook

NOTEBOOK_CELLS = [
    "import logging, sys, pvekit\n"
    "logging.basicConfig(stream=sys.stdout, level=logging.DEBUG, force=True)\n"
    "group = pvekit.demo(https=True)\n"
    "group, group['prod'], group['prod'].settings, group['prod'].auth",
    "token = pvekit.demo(identity='token')\n"
    "token['prod'].guests().head(3), token['prod'], token['prod'].auth",
    "auditor = pvekit.demo(identity='auditor')\n"
    "try:\n"
    "    auditor['prod'].guest(100).start()\n"
    "except pvekit.PVEError as err:\n"
    "    print(repr(err)); print(err)",
    "group['prod'].guest(100).config()",
    "group.close(); token.close(); auditor.close()",
]


@pytest.mark.notebook
def test_executed_notebook_outputs_hold_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    from pvekit.sim import Simulator

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    # The kernel's demo simulators use seed 0 like this one: same credentials.
    known = _known(Simulator("demo", seed=0))
    text = "\n".join(
        str(out.get("text", "")) + str(out.get("data", ""))
        for cell in nb.cells
        for out in cell.outputs
    )
    assert "/cluster/resources" in text  # DEBUG logging did reach the outputs
    assert "PermissionDeniedError" in text or "403" in text
    assert _leaks(text, known) == []


def _insecure(sim: Simulator) -> Cluster:
    kw = dict(sim["prod"].connect_kwargs(identity="token"))
    for key in ("ca_file", "fingerprint", "verify_ssl", "profile"):
        kw.pop(key, None)
    with pytest.warns(Warning):
        return pvekit.connect("prod", verify_ssl=False, cache=False, **kw)


def test_insecure_profile_is_visible_in_the_dashboard(tls_sim: Simulator) -> None:
    from pvekit.widgets import Dashboard

    cluster = _insecure(tls_sim)
    dashboard = Dashboard(cluster, charts=("nodes",))
    try:
        assert "INSECURE" in dashboard.status.value.upper(), dashboard.status.value
    finally:
        dashboard.close()
        cluster.close()


def test_insecure_profile_is_visible_in_the_guest_panel(tls_sim: Simulator) -> None:
    from pvekit.widgets import GuestPanel

    cluster = _insecure(tls_sim)
    panel = GuestPanel(cluster, read_only=True)
    try:
        texts = [str(getattr(child, "value", "")) for child in _walk(panel)]
        texts += [str(getattr(child, "tooltip", "")) for child in _walk(panel)]
        assert any("INSECURE" in t.upper() for t in texts), "GuestPanel hides it"
    finally:
        panel.close()
        cluster.close()


def _walk(widget: Any) -> Iterator[Any]:
    yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from _walk(child)
