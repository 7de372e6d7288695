"""A handle on one guest (QEMU VM or LXC container) and everything pvekit can do to it.

``cluster.guest(100)`` returns a :class:`Guest`. It finds the guest's node and type in
``/cluster/resources`` (and finds them again when the guest has moved), then offers the
lifecycle actions, migration, cloning, deletion, configuration, disk resize, snapshots,
backups, the QEMU guest agent and console access. Asynchronous actions return a
:class:`~pvekit.Task`; ``task.wait()`` follows it to the end.

Safety rules every method follows:

- Arguments are checked before anything is sent (:class:`~pvekit.InvalidInputError` naming the
  problem), and every request is checked against the official API schema shipped with pvekit
  (method, path, parameter names, types and formats) before it leaves.
- Refusals that depend on the guest's state (deleting a running guest, migrating to the node
  it is on, restoring over a running guest) raise :class:`GuestStateError` before the action
  is sent; everything else Proxmox refuses arrives as the matching :class:`~pvekit.APIError`.
- No action is repeated by a retry (the client never retries writes). The only repeat is
  after the guest was found on another node: the first request reached a node that does not
  hold the guest, so Proxmox did nothing.
- The cached reads an action makes stale are dropped when it is sent and again when its task
  is seen to end, so the next read tells the truth.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from ._errors import (
    AgentExecTimeoutError,
    APIError,
    GuestAgentError,
    GuestStateError,
    InvalidInputError,
    NotFoundError,
    ParameterError,
    ServerError,
)
from ._format import parse_bool, parse_vmid
from ._parse import backup_identity, format_size, parse_size
from ._tasks import Task

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ._cluster import Cluster

__all__ = [
    "AgentExecTimeoutError",
    "ExecResult",
    "Guest",
    "GuestAgent",
    "GuestStateError",
    "VNCProxy",
    "node_shell_url",
    "node_vnc_shell",
    "validate_snapshot_name",
]

GUEST_TYPES = ("qemu", "lxc")
# Proxmox's own formats are full-match ASCII patterns: fullmatch (a trailing newline does not
# slip past ``$``) and re.ASCII (no fullwidth digits, no KELVIN SIGN folding to ``k``).
_NODE_RE = re.compile(r"(?=.{1,63}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", re.ASCII)
_STORAGE_RE = re.compile(r"[a-z][a-z0-9\-_.]*[a-z0-9]", re.IGNORECASE | re.ASCII)
_CONFIGID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]+", re.ASCII)
_TAG_RE = re.compile(r"[a-z0-9_][a-z0-9_\-+.]*", re.IGNORECASE | re.ASCII)
_DNS_NAME_RE = re.compile(
    r"(?=.{1,253}\Z)(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?\.)*"
    r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?",
    re.ASCII,
)
_DISK_KEY_RE = {
    "qemu": re.compile(r"(?:(?:scsi|virtio|sata|ide)\d+|efidisk0|tpmstate0)", re.ASCII),
    "lxc": re.compile(r"(?:rootfs|mp\d+)", re.ASCII),
}
#: Longest snapshot name Proxmox accepts (``snapname`` has ``maxLength`` 40).
SNAPSHOT_NAME_MAX = 40
_RESERVED_SNAPSHOTS = ("current", "pending")
_NOTIFICATION_MODES = ("auto", "legacy-sendmail", "notification-system")
_BACKUP_MODES = ("snapshot", "suspend", "stop")
_COMPRESSIONS = ("zstd", "gzip", "lzo", "0", "1")
_AGENT_POLL = 0.25


# -- argument checks ----------------------------------------------------------------------


def validate_snapshot_name(name: Any) -> str:
    """Return ``name`` if Proxmox accepts it as a snapshot name, else raise.

    Proxmox's ``pve-configid`` format: a letter first, then letters, digits, ``_`` or ``-``;
    at least 2 and at most 40 characters; ``current`` and ``pending`` are reserved.
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"snapshot name must be a string, not {type(name).__name__}")
    if not name:
        raise InvalidInputError("snapshot name is empty")
    if len(name) > SNAPSHOT_NAME_MAX:
        raise InvalidInputError(
            f"snapshot name {name!r} is {len(name)} characters long; Proxmox allows at most "
            f"{SNAPSHOT_NAME_MAX}"
        )
    if not _CONFIGID_RE.fullmatch(name):
        raise InvalidInputError(
            f"invalid snapshot name {name!r}: it must start with a letter, be at least 2 "
            "characters long and contain only letters, digits, '_' and '-'"
        )
    if name.lower() in _RESERVED_SNAPSHOTS:
        raise InvalidInputError(f"snapshot name {name!r} is reserved by Proxmox")
    return name


def _node_name(value: Any, what: str = "node") -> str:
    if not isinstance(value, str) or not _NODE_RE.fullmatch(value):
        raise InvalidInputError(f"invalid {what} name {value!r}: expected a Proxmox node name")
    return value


def _cidr(value: Any, what: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"invalid {what} {value!r}: expected a network in CIDR form (10.10.10.0/24)"
        ) from None
    if "/" not in str(value):
        raise InvalidInputError(f"invalid {what} {value!r}: expected a CIDR with a /prefix")
    return str(value)


def _storage_id(value: Any) -> str:
    if not isinstance(value, str) or not _STORAGE_RE.fullmatch(value):
        raise InvalidInputError(f"invalid storage id {value!r}")
    return value


def _seconds(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidInputError(f"{what} must be a number of seconds >= 0, not {value!r}")
    return int(value)


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{what} must be True or False, not {value!r}")
    return value


def _positive_int(value: Any, what: str, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be an integer, not {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidInputError(f"{what} must be {bound}, not {value}")
    return value


def _parse_size_arg(size: Any) -> tuple[bool, int]:
    """(relative, bytes) of a resize size: ``"+10G"``, ``"50G"``, ``"512M"`` or an int of bytes."""
    if isinstance(size, float):
        raise InvalidInputError(f"size must be a string like '+10G' or '50G', not {size!r}")
    relative = isinstance(size, str) and size.strip().startswith("+")
    nbytes = parse_size(size)
    if nbytes <= 0:
        raise InvalidInputError(f"invalid size {size!r}: must be more than 0")
    return relative, nbytes


def _size_text(nbytes: int) -> str:
    """Exact Proxmox size text for resize (its pattern allows K, M, G, T or bytes)."""
    return format_size(nbytes)


def _memory_mib(value: Any) -> int:
    """Memory as MiB from an int (MiB) or a size string (``"4G"``, ``"512M"``)."""
    if isinstance(value, bool):
        raise InvalidInputError(f"invalid memory {value!r}")
    if isinstance(value, int):
        mib = value
    elif isinstance(value, str):
        relative, nbytes = _parse_size_arg(value)
        if relative:
            raise InvalidInputError(f"memory must be an absolute size, not {value!r}")
        if nbytes % (1024 * 1024):
            raise InvalidInputError(f"memory {value!r} is not a whole number of MiB")
        mib = nbytes // (1024 * 1024)
    else:
        raise InvalidInputError(f"memory must be MiB (int) or a size like '4G', not {value!r}")
    if mib < 16:
        raise InvalidInputError(f"memory must be at least 16 MiB, not {mib} MiB")
    return mib


def _tags_text(tags: Any) -> str:
    if isinstance(tags, str):
        items = [t for t in re.split(r"[;,\s]+", tags) if t]
    elif isinstance(tags, Iterable):
        items = []
        for t in tags:
            if not isinstance(t, str):
                raise InvalidInputError(f"tags must be strings, not {t!r}")
            items.append(t)
    else:
        raise InvalidInputError(f"tags must be a list of strings or a ';' list, not {tags!r}")
    for t in items:
        if not _TAG_RE.fullmatch(t):
            raise InvalidInputError(
                f"invalid tag {t!r}: letters, digits, '_', '-', '+' and '.' only, not starting "
                "with '-', '+' or '.'"
            )
    return ";".join(dict.fromkeys(items))


def _volid(volid: Any) -> tuple[str, str]:
    if not isinstance(volid, str) or ":" not in volid or any(c.isspace() for c in volid):
        raise InvalidInputError(
            f"invalid volume id {volid!r}: expected 'storage:backup/vzdump-...' as listed by "
            "backups()"
        )
    storage, _, rest = volid.partition(":")
    _storage_id(storage)
    if not rest:
        raise InvalidInputError(f"invalid volume id {volid!r}: nothing after the storage")
    return storage, rest


def _backup_identity(volid: str) -> tuple[str | None, int | None]:
    """(guest type, vmid) a backup volume id names, where it says."""
    return backup_identity(volid)


def _schema_check(method: str, path: str, params: Mapping[str, Any], cluster: Any) -> None:
    """Refuse a request the official schema of the connected server's release would refuse,
    before it is sent.

    A :class:`~pvekit.Cluster` knows its release (``pve_version``, read once from
    ``/version``); a release the shipped schema lacks is checked as the nearest shipped one
    (:func:`pvekit._schema.nearest_release`). A bare client without one is checked against
    the newest schema.
    """
    from ._schema import load_schema

    profile = str(getattr(cluster, "profile", ""))
    release = getattr(cluster, "pve_version", "")
    schema = load_schema(release if isinstance(release, str) else "")
    if schema.match(method, path) is None:
        raise InvalidInputError(
            f"{method} {path} is not part of the Proxmox VE API", profile=profile
        )
    wire: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        value = [str(v) for v in value] if isinstance(value, list | tuple) else str(value)
        wire[key] = value
    problems = schema.validate(method, path, wire)
    if problems:
        detail = "; ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
        raise InvalidInputError(
            f"the request would be refused by Proxmox: {detail}",
            profile=profile,
            method=method,
            path=path,
        )


def _api_base(cluster: Any) -> str:
    base = str(cluster.base_url)
    return base[: -len("/api2/json")] if base.endswith("/api2/json") else base.rstrip("/")


def node_shell_url(cluster: Cluster, node: str) -> str:
    """The noVNC shell URL of a node, as the Proxmox web UI opens it.

    It holds no secret: the browser needs its own Proxmox login (a ticket cookie) to open it.
    """
    _node_name(node)
    query = urlencode({"console": "shell", "novnc": 1, "node": node, "resize": "off", "cmd": ""})
    return f"{_api_base(cluster)}/?{query}"


def _token_hint(cluster: Any, err: APIError) -> APIError:
    """Explain what API-token logins cannot do with consoles, on a refused console call."""
    if not getattr(cluster, "is_token", False) or err.status not in (401, 403):
        return err
    text = (
        f"{err.message}. The console was refused for the API token {cluster.user!r}: a "
        "token needs the VM.Console privilege (Sys.Console for a node shell) on its own ACL "
        "when privilege separation is on, and the websocket it returns must be opened with "
        "the same token header, which a browser cannot send; for noVNC in a browser log in "
        "with a password (ticket) instead"
    )
    return type(err)(
        text,
        errors=err.errors,
        body=err.body,
        profile=err.profile,
        method=err.method,
        path=err.path,
        status=err.status,
        reason=err.reason,
    )


def node_vnc_shell(cluster: Cluster, node: str) -> VNCProxy:
    """Open a VNC shell on ``node`` (``POST /nodes/{node}/vncshell`` with ``websocket=1``)."""
    _node_name(node)
    path = f"/nodes/{node}/vncshell"
    params = {"websocket": 1}
    _schema_check("POST", path, params, cluster)
    try:
        body = cluster.post(path, params)
    except APIError as err:
        raise _token_hint(cluster, err) from None
    return VNCProxy.from_body(cluster, body, node=node, path=f"/nodes/{node}")


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecResult:
    """What a command run by the guest agent produced.

    ``stdout``/``stderr`` are text (Proxmox decodes the agent's base64), ``exitcode`` the exit
    code (``None`` if it was killed by ``signal``), ``*_truncated`` whether the agent cut the
    output.
    """

    command: tuple[str, ...]
    pid: int
    exitcode: int | None
    stdout: str
    stderr: str
    signal: int | None = None
    out_truncated: bool = False
    err_truncated: bool = False
    #: ``False`` while the command still runs (:meth:`GuestAgent.exec_status` only).
    exited: bool = True

    @property
    def ok(self) -> bool:
        """The command exited with code 0."""
        return self.exited and self.exitcode == 0


@dataclass(frozen=True)
class VNCProxy:
    """A VNC proxy Proxmox opened for a console (valid for a short time, single use).

    ``port`` and ``user`` are plain; ``ticket`` (the VNC ticket), ``password`` (the one-time
    password, QEMU only) and ``cert`` never appear in the repr. ``websocket_url()`` gives the
    ``vncwebsocket`` address a noVNC client connects to (it contains the ticket: keep it
    private); ``task`` is the proxy's own Proxmox task.
    """

    port: int
    user: str
    upid: str | None
    node: str
    ticket: str = field(repr=False)
    password: str | None = field(default=None, repr=False)
    cert: str | None = field(default=None, repr=False)
    _base: str = field(default="", repr=False)
    _path: str = field(default="", repr=False)
    token_auth: bool = False

    @classmethod
    def from_body(cls, cluster: Any, body: Any, *, node: str, path: str) -> VNCProxy:
        data: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
        try:
            port = int(data.get("port", 0))
        except (TypeError, ValueError):
            port = 0
        return cls(
            port=port,
            user=str(data.get("user") or ""),
            upid=str(data["upid"]) if data.get("upid") else None,
            node=node,
            ticket=str(data.get("ticket") or ""),
            password=str(data["password"]) if data.get("password") else None,
            cert=str(data["cert"]) if data.get("cert") else None,
            _base=str(cluster.base_url),
            _path=path,
            token_auth=bool(getattr(cluster, "is_token", False)),
        )

    def websocket_url(self) -> str:
        """The ``wss://.../vncwebsocket?port=...&vncticket=...`` address (contains a secret)."""
        base = self._base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        query = urlencode({"port": self.port, "vncticket": self.ticket})
        return f"{base}{self._path}/vncwebsocket?{query}"


# -- the guest handle ---------------------------------------------------------------------


class Guest:
    """One QEMU VM or LXC container of a cluster.

    ``node`` and ``type`` may be given when known; otherwise they are looked up in
    ``/cluster/resources`` on first use, and looked up again when a request shows that the
    guest has moved (a migration by anyone). Build one with ``cluster.guest(vmid)``.
    """

    def __init__(
        self,
        cluster: Cluster,
        vmid: int | str,
        *,
        node: str | None = None,
        type: str | None = None,
    ) -> None:
        self.cluster = cluster
        self.vmid: int = parse_vmid(vmid)
        if type is not None and type not in GUEST_TYPES:
            raise InvalidInputError(f"guest type must be 'qemu' or 'lxc', not {type!r}")
        self._node: str | None = _node_name(node) if node is not None else None
        self._type: str | None = type
        self._row: dict[str, Any] = {}
        self.agent = GuestAgent(self)

    # -- identity -------------------------------------------------------------------------

    @property
    def profile(self) -> str:
        return str(getattr(self.cluster, "profile", ""))

    @property
    def node(self) -> str:
        """The node the guest is on (looked up on first use)."""
        if self._node is None:
            self.resolve()
        assert self._node is not None
        return self._node

    @property
    def type(self) -> str:
        """``"qemu"`` or ``"lxc"`` (looked up on first use)."""
        if self._type is None:
            self.resolve()
        assert self._type is not None
        return self._type

    @property
    def name(self) -> str | None:
        """The guest's name as ``/cluster/resources`` lists it."""
        if not self._row:
            self.resolve()
        name = self._row.get("name")
        return str(name) if name else None

    @property
    def path(self) -> str:
        """``/nodes/{node}/{type}/{vmid}``: the API path of this guest."""
        return f"/nodes/{self.node}/{self.type}/{self.vmid}"

    def resolve(self, fresh: bool = True) -> dict[str, Any]:
        """Find the guest in ``/cluster/resources``; set ``node`` and ``type``; return the row.

        Raises :class:`~pvekit.NotFoundError` when no guest has this VMID.
        """
        rows = self.cluster.get("/cluster/resources", {"type": "vm"}, fresh=fresh)
        for row in rows or []:
            if not isinstance(row, Mapping) or row.get("type") not in GUEST_TYPES:
                continue
            try:
                vmid = int(row.get("vmid", -1))
            except (TypeError, ValueError):
                continue
            if vmid == self.vmid:
                if self._type is not None and row["type"] != self._type:
                    raise NotFoundError(
                        f"guest {self.vmid} is a {row['type']}, not a {self._type}",
                        profile=self.profile or None,
                    )
                self._row = dict(row)
                self._node = str(row.get("node"))
                self._type = str(row["type"])
                return dict(row)
        raise NotFoundError(
            f"no guest with VMID {self.vmid} in the cluster", profile=self.profile or None
        )

    def exists(self) -> bool:
        """Whether a guest with this VMID exists now (one fresh read)."""
        try:
            self.resolve()
        except NotFoundError:
            return False
        return True

    def status(self) -> dict[str, Any]:
        """``status/current`` of the guest, read fresh (``status``, ``qmpstatus``...)."""
        data = self._request("GET", "/status/current")
        return dict(data) if isinstance(data, Mapping) else {}

    @property
    def running(self) -> bool:
        """Whether the guest runs now (one fresh read)."""
        return self.status().get("status") == "running"

    def interfaces(self) -> list[dict[str, Any]]:
        """Network interfaces with their addresses, as records (``name``, ``mac``, ``ipv4``,
        ``ipv6``, ``addresses`` of dicts ``ip``/``family``/``prefix``, ``statistics``): the
        guest agent's for a VM (:meth:`GuestAgent.interfaces`), ``/interfaces`` for a running
        container (the seed's ``GetLxcInterfaces``; ``statistics`` is ``None`` there)."""
        if self.type == "qemu":
            return self.agent.interfaces()
        try:
            data = self._request("GET", "/interfaces")
        except ServerError as err:
            raise GuestStateError(
                f"container {self.vmid} has no interfaces to report: {err.reason or err.message}",
                profile=self.profile or None,
            ) from None
        return [_lxc_interface(i) for i in data or [] if isinstance(i, Mapping)]

    def refresh(self) -> dict[str, Any]:
        """Drop exactly this guest's cached reads (status, config, pending, agent answers,
        interfaces, snapshots, RRD data: everything under its path, nothing of other guests
        or nodes) and return its status read afresh (the seed's ``RefreshVMData``)."""
        self.cluster.invalidate(self.path)
        return self.status()

    def __repr__(self) -> str:
        where = f" on {self._node}" if self._node else ""
        kind = self._type or "guest"
        return f"<Guest {kind} {self.vmid}{where} profile={self.profile!r}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Guest) and other.vmid == self.vmid and other.profile == self.profile
        )

    def __hash__(self) -> int:
        return hash((self.profile, self.vmid))

    # -- request plumbing ------------------------------------------------------------------

    def _request(
        self,
        method: str,
        suffix: str,
        params: Mapping[str, Any] | None = None,
        *,
        fresh: bool = True,
    ) -> Any:
        """Send one request under this guest's path, after checking it against the schema.

        When the guest is not on the node we believed (moved since), Proxmox answers that its
        config does not exist without doing anything; then the guest is looked up again and
        the request is sent to its new node, once.
        """
        params = dict(params or {})
        known = self._node is not None
        for attempt in (0, 1):
            path = self.path + suffix
            if method != "GET":
                _schema_check(method, path, params, self.cluster)
            try:
                if method == "GET":
                    return self.cluster.get(path, params, fresh=fresh)
                if method == "POST":
                    return self.cluster.post(path, params)
                if method == "PUT":
                    return self.cluster.put(path, params)
                return self.cluster.delete(path, params)
            except (NotFoundError, ServerError) as err:
                if attempt or not known or not _config_missing(err, self.vmid):
                    raise
                before = self._node
                self.resolve()
                if self._node == before:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _task(self, upid: Any, what: str, *, on_success: Any = None) -> Task:
        # The reads the action makes stale are the client's business (the endpoint table):
        # dropped when the write was sent and again when the client sees the task end.
        if not isinstance(upid, str) or not upid.startswith("UPID:"):
            raise APIError(
                f"Proxmox did not answer {what} with a task id (got {upid!r})",
                profile=self.profile or None,
            )
        return Task(
            self.cluster,
            upid,
            description=f"{what} {self.type} {self.vmid}",
            on_success=on_success,
        )

    def _need_qemu(self, what: str) -> None:
        if self.type != "qemu":
            raise InvalidInputError(
                f"{what} is only available for QEMU VMs; guest {self.vmid} is a container",
                profile=self.profile or None,
            )

    # -- lifecycle -------------------------------------------------------------------------

    def _power(self, action: str, params: Mapping[str, Any] | None = None) -> Task:
        upid = self._request("POST", f"/status/{action}", params)
        return self._task(upid, action)

    def start(self) -> Task:
        """Start the guest."""
        return self._power("start")

    def shutdown(self, timeout: float | None = None, force_stop: bool = False) -> Task:
        """Ask the guest OS to shut down (ACPI / agent for QEMU, ``halt`` for containers).

        ``timeout`` is how many seconds Proxmox waits; with ``force_stop=True`` it stops the
        guest hard when the time is up.
        """
        seconds = _seconds(timeout, "timeout")
        _flag(force_stop, "force_stop")
        return self._power("shutdown", {"timeout": seconds, "forceStop": force_stop or None})

    def stop(self) -> Task:
        """Stop the guest at once (like pulling the plug)."""
        return self._power("stop")

    def reboot(self) -> Task:
        """Reboot the guest cleanly (shutdown, then start)."""
        return self._power("reboot")

    def reset(self) -> Task:
        """Hard-reset a QEMU VM (the reset button). Containers have no reset."""
        self._need_qemu("reset")
        return self._power("reset")

    def suspend(self, to_disk: bool = False) -> Task:
        """Pause the guest (QEMU: RAM kept; ``to_disk=True`` hibernates, QEMU only).

        Containers are frozen.
        """
        _flag(to_disk, "to_disk")
        if to_disk:
            self._need_qemu("suspend to disk")
        return self._power("suspend", {"todisk": True} if to_disk else None)

    def resume(self) -> Task:
        """Resume a suspended guest."""
        return self._power("resume")

    # -- migrate, clone, delete ------------------------------------------------------------

    def _online_nodes(self) -> dict[str, str]:
        rows = self.cluster.get("/nodes", fresh=True)
        return {
            str(r.get("node")): str(r.get("status") or "unknown")
            for r in rows or []
            if isinstance(r, Mapping) and r.get("node")
        }

    def _check_target(self, target: Any, what: str) -> str:
        target = _node_name(target, f"{what} target node")
        nodes = self._online_nodes()
        if target not in nodes:
            known = ", ".join(sorted(nodes)) or "none"
            raise InvalidInputError(
                f"{what} target node {target!r} is not in the cluster (nodes: {known})",
                profile=self.profile or None,
            )
        if nodes[target] != "online":
            raise GuestStateError(
                f"{what} target node {target!r} is {nodes[target]}, not online",
                profile=self.profile or None,
            )
        return target

    def migrate(
        self,
        target: str,
        online: bool | None = None,
        with_local_disks: bool = False,
        target_storage: str | None = None,
        bwlimit: int | None = None,
        *,
        force: bool = False,
        migration_network: str | None = None,
        delete: bool = True,
    ) -> Task:
        """Move the guest to node ``target``.

        Checked first: the target exists, is online and is not the guest's current node.
        QEMU: ``online`` defaults to live migration when the VM runs (a running VM cannot be
        migrated with ``online=False``); ``with_local_disks`` copies local disks along.
        Containers cannot move live: a running container is migrated in restart mode (stopped,
        moved, started again); their local volumes always move along. ``target_storage`` maps
        the disks to another storage on the target, ``bwlimit`` caps the bandwidth (KiB/s).
        When the task ends well the handle points at the new node.

        QEMU only: ``force=True`` migrates a VM that uses local devices (``hostpciN``,
        ``usbN``; Proxmox allows it to root only), ``migration_network`` (a CIDR such as
        ``10.10.10.0/24``) picks the network the migration traffic takes. ``delete`` is the
        seed's option to remove the source copy: Proxmox always does, so only ``True`` is
        accepted (the API has no such parameter).
        """
        if online is not None:
            _flag(online, "online")
        _flag(force, "force")
        _flag(delete, "delete")
        if not delete:
            raise InvalidInputError(
                "delete=False is not possible: Proxmox always removes the guest from the source "
                "node when a migration succeeds (clone() keeps a copy)",
                profile=self.profile or None,
            )
        if migration_network is not None:
            _cidr(migration_network, "migration_network")
        _flag(with_local_disks, "with_local_disks")
        if target_storage is not None:
            _storage_id(target_storage)
        if bwlimit is not None:
            _positive_int(bwlimit, "bwlimit (KiB/s)", low=0)
        _node_name(target, "migration target node")  # bad input fails before any request
        row = self.resolve()  # fresh: the source node and the run state matter here
        if self.type == "lxc" and (force or migration_network is not None):
            raise InvalidInputError(
                f"force and migration_network exist for QEMU VMs only; guest {self.vmid} is "
                "a container",
                profile=self.profile or None,
            )
        target = self._check_target(target, "migration")
        if target == self.node:
            raise GuestStateError(
                f"guest {self.vmid} is already on node {target!r}", profile=self.profile or None
            )
        running = row.get("status") == "running"
        params: dict[str, Any] = {"target": target, "bwlimit": bwlimit}
        if self.type == "qemu":
            if online is None:
                online = running
            if running and not online:
                raise GuestStateError(
                    f"VM {self.vmid} is running: migrate it live (online=True) or stop it first",
                    profile=self.profile or None,
                )
            params["online"] = online or None
            params["with-local-disks"] = with_local_disks or None
            params["targetstorage"] = target_storage
            params["force"] = force or None
            params["migration_network"] = migration_network
        else:
            if online:
                raise InvalidInputError(
                    "containers cannot be migrated live; leave online=None and a running "
                    "container is migrated in restart mode",
                    profile=self.profile or None,
                )
            params["restart"] = True if running else None
            params["target-storage"] = target_storage
        upid = self._request("POST", "/migrate", params)

        def moved(_task: Task) -> None:
            self._node = target
            self._row["node"] = target

        return self._task(upid, "migrate", on_success=moved)

    def _free_vmid(self, newid: int | str | None) -> int:
        if newid is None:
            return int(self.cluster.get("/cluster/nextid", fresh=True))
        vmid = parse_vmid(newid)
        try:
            self.cluster.get("/cluster/nextid", {"vmid": vmid}, fresh=True)
        except ParameterError:
            raise InvalidInputError(
                f"VMID {vmid} is already in use", profile=self.profile or None
            ) from None
        return vmid

    def clone(
        self,
        newid: int | str | None = None,
        name: str | None = None,
        full: bool = False,
        target: str | None = None,
    ) -> Task:
        """Clone the guest to VMID ``newid`` (the next free VMID by default).

        ``full=False`` makes a linked clone when the guest is a template; Proxmox copies other
        guests in full anyway. ``target`` places the clone on another node. The task's
        ``newid`` attribute is the new VMID.
        """
        _flag(full, "full")
        if name is not None and (not isinstance(name, str) or not _DNS_NAME_RE.fullmatch(name)):
            raise InvalidInputError(f"invalid guest name {name!r}: expected a DNS name")
        if newid is not None:
            parse_vmid(newid)  # bad input fails before any request
        if target is not None:
            _node_name(target, "clone target node")
        row = self.resolve()
        if target is not None:
            target = self._check_target(target, "clone")
        vmid = self._free_vmid(newid)
        template = bool(row.get("template"))
        params: dict[str, Any] = {
            "newid": vmid,
            "full": bool(full or not template),
            "target": target,
        }
        params["name" if self.type == "qemu" else "hostname"] = name
        upid = self._request("POST", "/clone", params)
        task = self._task(upid, "clone")
        task.newid = vmid
        return task

    def delete(
        self,
        purge: bool = False,
        destroy_unreferenced_disks: bool = True,
        *,
        confirm: int | str | None = None,
        stop_first: bool = False,
        skiplock: bool = False,
    ) -> Task:
        """Destroy the guest and its disks. Irreversible, so ``confirm`` must be the VMID.

        A running guest is refused unless ``stop_first=True``, which stops it (and waits for
        that) before the delete is sent. ``purge`` also removes the VMID from backup jobs,
        replication and HA; ``destroy_unreferenced_disks`` removes disks with this VMID that
        the config does not reference. ``skiplock=True`` (QEMU, root only) deletes a VM
        whose config is locked (a backup or migration that died).
        """
        if confirm is None or str(confirm).strip() != str(self.vmid):
            raise InvalidInputError(
                f"deleting guest {self.vmid} destroys it and its disks: pass "
                f"confirm={self.vmid} to confirm",
                profile=self.profile or None,
            )
        _flag(purge, "purge")
        _flag(destroy_unreferenced_disks, "destroy_unreferenced_disks")
        _flag(stop_first, "stop_first")
        _flag(skiplock, "skiplock")
        if skiplock:
            self._need_qemu("skiplock")
        if self.running:
            if not stop_first:
                raise GuestStateError(
                    f"guest {self.vmid} is running: stop it first or pass stop_first=True",
                    profile=self.profile or None,
                )
            self.stop().wait(progress=False)
        params = {
            "purge": purge or None,
            "destroy-unreferenced-disks": destroy_unreferenced_disks,
            "skiplock": skiplock or None,
        }
        upid = self._request("DELETE", "", params)
        return self._task(upid, "delete")

    # -- configuration ---------------------------------------------------------------------

    def raw_config(self, fresh: bool = False, current: bool = False) -> dict[str, Any]:
        """The guest config exactly as Proxmox sends it (``current=True``: without pending)."""
        data = self._request("GET", "/config", {"current": current or None}, fresh=fresh)
        return dict(data) if isinstance(data, Mapping) else {}

    def config(self, fresh: bool = False) -> dict[str, Any]:
        """The guest config, parsed the way the inventory's ``details=True`` columns are.

        Keys: ``vmid``, ``type``, ``node``, ``name``, ``cores`` (per socket, as configured),
        ``tags`` (list), ``template``, ``lock``, ``digest``, the ``details`` columns of
        ``guests()`` (``sockets``, ``cpu_type``, ``memory``/``balloon``/``swap`` in bytes,
        ``disks`` and ``networks`` as lists of dicts, ``ostype``, ``boot``, ``onboot``,
        ``agent``, ``description``) and ``raw`` (Proxmox's own dict).
        """
        from . import _parse, frames

        raw = self.raw_config(fresh=fresh)
        gtype = self.type
        try:
            cores: int | None = int(raw["cores"]) if raw.get("cores") not in (None, "") else None
        except (TypeError, ValueError):
            cores = None
        out: dict[str, Any] = {
            "vmid": self.vmid,
            "type": gtype,
            "node": self.node,
            "name": raw.get("name") if gtype == "qemu" else raw.get("hostname"),
            "cores": cores,
            "tags": _parse.parse_tags(raw.get("tags")),
            "template": parse_bool(raw.get("template")) is True,
            "lock": raw.get("lock") or None,
            "digest": raw.get("digest"),
        }
        out.update(frames.guest_details(raw, gtype))
        out["raw"] = raw
        return out

    def update(
        self,
        *,
        cores: int | None = None,
        sockets: int | None = None,
        memory: int | str | None = None,
        description: str | None = None,
        onboot: bool | None = None,
        tags: Sequence[str] | str | None = None,
        name: str | None = None,
        delete: Sequence[str] | None = None,
        digest: str | None = None,
        wait: bool = True,
        **options: Any,
    ) -> Task | None:
        """Change the guest config.

        ``memory`` is MiB (int) or a size (``"4G"``); ``tags`` a list; ``name`` is the VM name
        or the container hostname; ``delete`` lists keys to remove; ``digest`` (from
        ``config()``) makes Proxmox refuse if the config changed meanwhile. Further Proxmox
        options go through ``**options`` under their API names and are checked against the
        schema. QEMU configs are changed with ``POST`` (a task: waited for when ``wait=True``,
        and returned); container configs with ``PUT``, which applies at once (returns None).
        """
        gtype = self.type
        params: dict[str, Any] = {}
        if cores is not None:
            params["cores"] = _positive_int(cores, "cores", 1, 8192)
        if sockets is not None:
            if gtype != "qemu":
                raise InvalidInputError("sockets applies to QEMU VMs; containers have cores only")
            params["sockets"] = _positive_int(sockets, "sockets", 1, 4096)
        if memory is not None:
            params["memory"] = _memory_mib(memory)
        if description is not None:
            if not isinstance(description, str):
                raise InvalidInputError(f"description must be a string, not {description!r}")
            params["description"] = description
        if onboot is not None:
            params["onboot"] = _flag(onboot, "onboot")
        if tags is not None:
            params["tags"] = _tags_text(tags)
        if name is not None:
            if not isinstance(name, str) or not _DNS_NAME_RE.fullmatch(name):
                raise InvalidInputError(f"invalid guest name {name!r}: expected a DNS name")
            params["name" if gtype == "qemu" else "hostname"] = name
        if delete is not None:
            keys = [delete] if isinstance(delete, str) else list(delete)
            if not keys or not all(isinstance(k, str) and k for k in keys):
                raise InvalidInputError(f"delete must list config keys, not {delete!r}")
            params["delete"] = ",".join(keys)
        if digest is not None:
            params["digest"] = digest
        _flag(wait, "wait")
        for key, value in options.items():
            if key in ("node", "vmid"):
                raise InvalidInputError(f"{key} cannot be changed with update()")
            params[key] = value
        if not any(k != "digest" for k in params):
            raise InvalidInputError("update() needs at least one setting to change")
        if gtype == "lxc":
            self._request("PUT", "/config", params)
            return None
        upid = self._request("POST", "/config", params)
        if upid is None:  # nothing was left to do asynchronously
            return None
        task = self._task(upid, "update")
        if wait:
            task.wait(progress=False)
        return task

    def resize(self, disk: str, size: str | int) -> Task | None:
        """Grow disk ``disk`` (``scsi0``, ``rootfs``, ``mp0``...) to ``size``.

        ``size`` is ``"+10G"`` (grow by) or ``"50G"`` (new size; an int is bytes). Disks never
        shrink: a smaller size is refused before anything is sent. An unknown disk is refused
        with the list of the guest's disks. Returns the resize task, or ``None`` when the disk
        already has exactly that size.
        """
        from . import _parse

        gtype = self.type
        if not isinstance(disk, str) or not _DISK_KEY_RE[gtype].fullmatch(disk):
            raise InvalidInputError(
                f"invalid disk {disk!r} for a {gtype} guest "
                f"({'scsiN, virtioN, sataN, ideN, efidisk0, tpmstate0' if gtype == 'qemu' else 'rootfs or mpN'})"  # noqa: E501
            )
        relative, nbytes = _parse_size_arg(size)
        raw = self.raw_config(fresh=True)
        disks = {d["key"]: d for d in _parse.parse_disks(raw, gtype)}
        if disk not in disks:
            known = ", ".join(sorted(disks)) or "none"
            raise InvalidInputError(
                f"guest {self.vmid} has no disk {disk!r} (disks: {known})",
                profile=self.profile or None,
            )
        current = disks[disk].get("size")
        if not relative:
            if current is None:
                raise InvalidInputError(
                    f"the size of {disk} is not in the config; give a relative size such as '+10G'"
                )
            if nbytes < current:
                raise InvalidInputError(
                    f"{disk} is {_size_text(current)}; disks cannot shrink to {_size_text(nbytes)}",
                    profile=self.profile or None,
                )
            if nbytes == current:
                return None
        text = ("+" if relative else "") + _size_text(nbytes)
        params: dict[str, Any] = {"disk": disk, "size": text}
        if raw.get("digest"):
            params["digest"] = raw["digest"]
        upid = self._request("PUT", "/resize", params)
        if upid is None:  # PVE before 8 resized synchronously
            return None
        return self._task(upid, "resize")

    # -- snapshots -------------------------------------------------------------------------

    def snapshots(self) -> pd.DataFrame:
        """This guest's snapshots as the ``snapshots`` frame (without ``current``)."""
        from . import frames

        rows = self._request("GET", "/snapshot", fresh=False) or []
        enriched = [
            {**r, "node": self.node, "vmid": self.vmid, "guest_type": self.type}
            for r in rows
            if isinstance(r, Mapping)
        ]
        return frames.snapshots_frame(self.profile, enriched)

    def snapshot(self, name: str, description: str | None = None, vmstate: bool = False) -> Task:
        """Take snapshot ``name``; ``vmstate=True`` saves the RAM too (QEMU only)."""
        validate_snapshot_name(name)
        _flag(vmstate, "vmstate")
        if description is not None and not isinstance(description, str):
            raise InvalidInputError(f"description must be a string, not {description!r}")
        if vmstate:
            self._need_qemu("vmstate (saving RAM in a snapshot)")
        params = {"snapname": name, "description": description, "vmstate": vmstate or None}
        upid = self._request("POST", "/snapshot", params)
        return self._task(upid, f"snapshot {name} of")

    def rollback(self, name: str, start: bool = False) -> Task:
        """Roll the guest back to snapshot ``name`` (``start=True`` starts it afterwards)."""
        validate_snapshot_name(name)
        _flag(start, "start")
        upid = self._request(
            "POST", f"/snapshot/{quote(name, safe='')}/rollback", {"start": start or None}
        )
        return self._task(upid, f"rollback to {name} of")

    def delete_snapshot(self, name: str, force: bool = False) -> Task:
        """Delete snapshot ``name`` (``force=True`` removes it from the config even if
        removing the disk snapshots fails)."""
        validate_snapshot_name(name)
        _flag(force, "force")
        upid = self._request(
            "DELETE", f"/snapshot/{quote(name, safe='')}", {"force": force or None}
        )
        return self._task(upid, f"delete snapshot {name} of")

    # -- backups ---------------------------------------------------------------------------

    def _backup_storages(self, node: str) -> list[dict[str, Any]]:
        rows = self.cluster.get(f"/nodes/{node}/storage", {"content": "backup"}, fresh=True)
        return [dict(r) for r in rows or [] if isinstance(r, Mapping) and r.get("storage")]

    def _backup_rows(self) -> list[dict[str, Any]]:
        home = self.node
        nodes = [n for n, s in self._online_nodes().items() if s == "online"]
        nodes = [home, *sorted(n for n in nodes if n != home)]
        seen_shared: set[str] = set()
        rows: list[dict[str, Any]] = []
        for node in nodes:
            for st in self._backup_storages(node):
                name = str(st["storage"])
                shared = parse_bool(st.get("shared")) is True
                if shared:
                    if name in seen_shared:
                        continue
                    seen_shared.add(name)
                if str(st.get("active", 1)) in ("0", "false"):
                    continue
                content = self.cluster.get(
                    f"/nodes/{node}/storage/{name}/content",
                    {"content": "backup", "vmid": self.vmid},
                    fresh=True,
                )
                for r in content or []:
                    if isinstance(r, Mapping):
                        rows.append({**r, "node": node, "storage": name})
        return rows

    def backups(self) -> pd.DataFrame:
        """This guest's backups on every storage of every online node, as the ``backups``
        frame (one row per volume; shared storages once)."""
        from . import frames

        return frames.backups_frame(self.profile, self._backup_rows())

    def backup(
        self,
        storage: str | None = None,
        mode: str = "snapshot",
        compress: str = "zstd",
        notes: str | None = None,
        remove: bool = False,
        notification_mode: str | None = None,
    ) -> Task:
        """Back the guest up with vzdump (``POST /nodes/{node}/vzdump``).

        ``storage`` defaults to the first active backup storage of the guest's node.
        ``mode`` is ``snapshot``, ``suspend`` or ``stop``; ``compress`` is ``zstd``, ``gzip``,
        ``lzo`` or ``"0"`` (none); ``notes`` is the notes template (``{{guestname}}``...);
        ``remove=True`` prunes older backups per the storage's retention (Proxmox's default
        would prune; pvekit does not unless asked). ``notification_mode`` is Proxmox's
        ``notification-mode``: ``auto``, ``legacy-sendmail`` or ``notification-system``
        (the seed's "always"/"never" are not Proxmox values: notification matchers decide).
        """
        if notification_mode is not None and notification_mode not in _NOTIFICATION_MODES:
            raise InvalidInputError(
                f"notification_mode must be one of {', '.join(_NOTIFICATION_MODES)}, "
                f"not {notification_mode!r}"
            )
        if mode not in _BACKUP_MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(_BACKUP_MODES)}, not {mode!r}")
        if compress is False or compress is None:
            compress = "0"
        if compress not in _COMPRESSIONS:
            raise InvalidInputError(
                f"compress must be one of {', '.join(_COMPRESSIONS)}, not {compress!r}"
            )
        if notes is not None and not isinstance(notes, str):
            raise InvalidInputError(f"notes must be a string, not {notes!r}")
        _flag(remove, "remove")
        if storage is not None:
            _storage_id(storage)
        node = self.node
        candidates = [
            s
            for s in self._backup_storages(node)
            if str(s.get("active", 1)) not in ("0", "false")
            and str(s.get("enabled", 1)) not in ("0", "false")
        ]
        if storage is None:
            if not candidates:
                raise InvalidInputError(
                    f"node {node} has no active storage for backups; pass storage=",
                    profile=self.profile or None,
                )
            storage = str(candidates[0]["storage"])
        elif storage not in {str(s["storage"]) for s in candidates}:
            names = ", ".join(str(s["storage"]) for s in candidates) or "none"
            raise InvalidInputError(
                f"storage {storage!r} cannot take backups on node {node} (backup storages: "
                f"{names})",
                profile=self.profile or None,
            )
        path = f"/nodes/{node}/vzdump"
        params = {
            "vmid": str(self.vmid),
            "storage": storage,
            "mode": mode,
            "compress": compress,
            "notes-template": notes,
            "remove": remove,
            "notification-mode": notification_mode,
        }
        _schema_check("POST", path, params, self.cluster)
        upid = self.cluster.post(path, params)
        return self._task(upid, "backup")

    def restore(
        self,
        volid: str,
        force: bool = False,
        *,
        storage: str | None = None,
        node: str | None = None,
        start: bool = False,
    ) -> Task:
        """Restore backup ``volid`` as this VMID.

        If the guest exists, ``force=True`` is required to overwrite it and it must be
        stopped. A deleted guest is restored on the node this handle last knew (or ``node=``).
        ``storage`` puts the disks on another storage; ``start=True`` starts it afterwards.
        """
        _volid(volid)
        _flag(force, "force")
        _flag(start, "start")
        if storage is not None:
            _storage_id(storage)
        # the VMID inside the archive name does not matter: a backup may be restored under
        # another VMID
        archive_type, _ = _backup_identity(volid)
        exists = self.exists()
        if exists:
            if archive_type is not None and archive_type != self.type:
                raise InvalidInputError(
                    f"{volid} is a {archive_type} backup; guest {self.vmid} is a {self.type}"
                )
            if not force:
                raise GuestStateError(
                    f"guest {self.vmid} exists: pass force=True to overwrite it with {volid}",
                    profile=self.profile or None,
                )
            if self._row.get("status") == "running":
                raise GuestStateError(
                    f"guest {self.vmid} is running: stop it before restoring over it",
                    profile=self.profile or None,
                )
            where = self.node if node is None else _node_name(node)
            gtype = self.type
        else:
            gtype = archive_type or self._type or ""
            if gtype not in GUEST_TYPES:
                raise InvalidInputError(
                    f"cannot tell whether {volid} holds a VM or a container; build the handle "
                    "with type='qemu' or type='lxc'"
                )
            where = _node_name(node) if node is not None else (self._node or "")
            if not where:
                raise InvalidInputError(
                    f"guest {self.vmid} does not exist; pass node= to choose where to restore"
                )
            self._check_target(where, "restore")
        path = f"/nodes/{where}/{gtype}"
        params: dict[str, Any] = {
            "vmid": self.vmid,
            "force": force or None,
            "storage": storage,
            "start": start or None,
        }
        if gtype == "qemu":
            params["archive"] = volid
        else:
            params["ostemplate"] = volid
            params["restore"] = True
        _schema_check("POST", path, params, self.cluster)
        upid = self.cluster.post(path, params)
        self._node, self._type = where, gtype

        def restored(_task: Task) -> None:
            self._row = {}

        task = self._task(upid, "restore", on_success=restored)
        task.newid = self.vmid
        return task

    def delete_backup(self, volid: str) -> Task | None:
        """Delete backup volume ``volid`` of this guest (as listed by :meth:`backups`)."""
        storage, _ = _volid(volid)
        _, vmid = _backup_identity(volid)
        if vmid is not None and vmid != self.vmid:
            raise InvalidInputError(
                f"{volid} is a backup of guest {vmid}, not of {self.vmid}",
                profile=self.profile or None,
            )
        row = next((r for r in self._backup_rows() if r.get("volid") == volid), None)
        if row is None:
            raise NotFoundError(
                f"guest {self.vmid} has no backup {volid!r}", profile=self.profile or None
            )
        node = str(row.get("node") or self.node)
        path = f"/nodes/{node}/storage/{storage}/content/{quote(volid, safe='')}"
        _schema_check("DELETE", path, {}, self.cluster)
        result = self.cluster.delete(path)
        if isinstance(result, str) and result.startswith("UPID:"):
            return self._task(result, "delete backup of")
        return None

    # -- console ---------------------------------------------------------------------------

    def console_url(self) -> str:
        """The noVNC console URL of the guest, as the Proxmox web UI opens it.

        It holds no secret: the browser needs its own Proxmox login to use it.
        """
        console = "kvm" if self.type == "qemu" else "lxc"
        query = urlencode(
            {
                "console": console,
                "novnc": 1,
                "vmid": self.vmid,
                "vmname": self.name or "",
                "node": self.node,
                "resize": "off",
                "cmd": "",
            }
        )
        return f"{_api_base(self.cluster)}/?{query}"

    def shell_url(self) -> str:
        """The noVNC shell URL of the node the guest is on."""
        return node_shell_url(self.cluster, self.node)

    def vnc_proxy(self) -> VNCProxy:
        """Open a VNC proxy for the guest's console (websocket mode, one-time password).

        The guest must run. With an API token, Proxmox needs the token to hold VM.Console and
        the websocket must be opened with the same token; a refusal says so.
        """
        params: dict[str, Any] = {"websocket": True}
        if self.type == "qemu":
            params["generate-password"] = True
        try:
            body = self._request("POST", "/vncproxy", params)
        except APIError as err:
            raise _token_hint(self.cluster, err) from None
        return VNCProxy.from_body(self.cluster, body, node=self.node, path=self.path)


def _config_missing(err: APIError, vmid: int) -> bool:
    text = f"{err.reason or ''} {err.message}".lower()
    return "does not exist" in text and (f"/{vmid}.conf" in text or "configuration file" in text)


# -- guest agent --------------------------------------------------------------------------


class GuestAgent:
    """The QEMU guest agent of a VM: ``interfaces()``, ``filesystems()``, ``exec(cmd)``.

    Errors the agent reports inside an HTTP 200 answer (``result.error`` with ``class`` and
    ``desc``), and Proxmox's "agent not running/configured" answers, raise
    :class:`~pvekit.GuestAgentError`.
    """

    def __init__(self, guest: Guest) -> None:
        self.guest = guest
        self._started: dict[int, tuple[str, ...]] = {}  # pid -> argv, to name the result

    def __repr__(self) -> str:
        return f"<GuestAgent of {self.guest!r}>"

    def _call(self, method: str, command: str, params: Mapping[str, Any] | None = None) -> Any:
        g = self.guest
        g._need_qemu("the guest agent")
        try:
            data = g._request(method, f"/agent/{command}", params)
        except ServerError as err:
            # "No QEMU guest agent configured", "VM 100 is not running", "qmp command
            # 'guest-ping' failed - got timeout": the agent cannot answer.
            raise GuestAgentError(
                f"guest agent of VM {g.vmid} unavailable: {err.reason or err.message}",
                profile=err.profile,
                method=err.method,
                path=err.path,
                status=err.status,
                reason=err.reason,
            ) from None
        return _agent_result(data, command, g)

    def ping(self) -> bool:
        """Whether the agent answers (``False`` when it is not running or not configured)."""
        try:
            self._call("POST", "ping")
        except GuestAgentError:
            return False
        return True

    def interfaces(self) -> list[dict[str, Any]]:
        """Network interfaces the agent reports: ``name``, ``mac``, ``ipv4``/``ipv6``
        (lists of addresses), ``addresses`` (dicts ``ip``, ``family``, ``prefix``) and
        ``statistics`` (the agent's counters, or ``None``)."""
        result = self._call("GET", "network-get-interfaces")
        out: list[dict[str, Any]] = []
        for iface in result if isinstance(result, list) else []:
            if not isinstance(iface, Mapping):
                continue
            addresses = []
            for a in iface.get("ip-addresses") or []:
                if isinstance(a, Mapping) and a.get("ip-address"):
                    addresses.append(
                        {
                            "ip": str(a["ip-address"]),
                            "family": str(a.get("ip-address-type") or ""),
                            "prefix": a.get("prefix"),
                        }
                    )
            mac = iface.get("hardware-address")
            out.append(
                {
                    "name": iface.get("name"),
                    "mac": str(mac).upper() if mac else None,
                    "ipv4": [a["ip"] for a in addresses if a["family"] == "ipv4"],
                    "ipv6": [a["ip"] for a in addresses if a["family"] == "ipv6"],
                    "addresses": addresses,
                    "statistics": dict(iface["statistics"])
                    if isinstance(iface.get("statistics"), Mapping)
                    else None,
                }
            )
        return out

    def filesystems(self) -> list[dict[str, Any]]:
        """Mounted filesystems the agent reports: ``name``, ``mountpoint``, ``type``,
        ``total`` and ``used`` bytes (``None`` where the agent gives none, e.g. Windows
        reserved volumes) and ``disks`` (the agent's device list)."""
        result = self._call("GET", "get-fsinfo")
        out: list[dict[str, Any]] = []
        for fs in result if isinstance(result, list) else []:
            if not isinstance(fs, Mapping):
                continue
            total, used = fs.get("total-bytes"), fs.get("used-bytes")
            out.append(
                {
                    "name": fs.get("name"),
                    "mountpoint": fs.get("mountpoint"),
                    "type": fs.get("type"),
                    "total": int(total) if isinstance(total, int | float) else None,
                    "used": int(used) if isinstance(used, int | float) else None,
                    "disks": list(fs.get("disk") or []),
                }
            )
        return out

    def exec(
        self,
        cmd: str | Sequence[str],
        timeout: float = 30.0,
        *,
        input_data: str | None = None,
        poll: float = _AGENT_POLL,
    ) -> ExecResult:
        """Run a command in the VM and wait for it; return stdout, stderr and exit code.

        ``cmd`` is a list of arguments (``["ls", "-l", "/"]``) or a string split like a shell
        would (no shell runs it: pipes and ``$VARS`` are not interpreted). ``input_data`` is
        fed to the command's stdin. After ``timeout`` seconds :class:`AgentExecTimeoutError`
        is raised; the command keeps running in the guest. A non-zero exit code is returned,
        not raised: check ``result.ok``.
        """
        argv = _argv(cmd)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise InvalidInputError(f"timeout must be a number of seconds > 0, not {timeout!r}")
        if isinstance(poll, bool) or not isinstance(poll, int | float) or poll <= 0:
            raise InvalidInputError(f"poll must be a number of seconds > 0, not {poll!r}")
        pid = self.exec_start(argv, input_data=input_data)
        deadline = time.monotonic() + timeout
        while True:
            result = self.exec_status(pid)
            if result.exited:
                return result
            now = time.monotonic()
            if now >= deadline:
                raise AgentExecTimeoutError(
                    f"{argv[0]!r} in VM {self.guest.vmid} still running after {timeout:g} s "
                    f"(agent pid {pid}); it was left running",
                    pid=pid,
                    profile=self.guest.profile or None,
                )
            time.sleep(min(poll, deadline - now))

    def exec_start(self, cmd: str | Sequence[str], *, input_data: str | None = None) -> int:
        """Start a command in the VM and return the agent's pid at once (the seed's
        ``ExecGuestAgentCommand``); follow it with :meth:`exec_status`. ``cmd`` as in
        :meth:`exec`. Starting is a write: it is never repeated by a retry."""
        argv = _argv(cmd)
        if input_data is not None and not isinstance(input_data, str):
            raise InvalidInputError("input_data must be a string")
        started = self._call("POST", "exec", {"command": argv, "input-data": input_data})
        try:
            pid = int(started["pid"])
        except (TypeError, KeyError, ValueError):
            raise GuestAgentError(
                f"the agent did not return a pid for {argv[0]!r} (got {started!r})",
                profile=self.guest.profile or None,
            ) from None
        self._started[pid] = tuple(argv)
        return pid

    def exec_status(self, pid: int) -> ExecResult:
        """The state of a command started with :meth:`exec_start` (one ``exec-status``
        read, never cached): ``exited`` is ``False`` while it runs (then ``exitcode`` is
        ``None`` and the output empty); once it has exited, its exit code and output."""
        if isinstance(pid, bool) or not isinstance(pid, int) or pid < 0:
            raise InvalidInputError(f"pid must be the integer exec_start() returned, not {pid!r}")
        status = self._call("GET", "exec-status", {"pid": pid})
        status = status if isinstance(status, Mapping) else {}
        result = _exec_result(self._started.get(pid, ()), pid, status)
        if result.exited:
            self._started.pop(pid, None)
        return result


def _argv(cmd: Any) -> list[str]:
    if isinstance(cmd, str):
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            raise InvalidInputError(f"cannot split command {cmd!r}: {exc}") from None
    elif isinstance(cmd, Sequence) and all(isinstance(a, str) for a in cmd):
        argv = list(cmd)
    else:
        raise InvalidInputError(f"cmd must be a string or a list of strings, not {cmd!r}")
    if not argv or not argv[0]:
        raise InvalidInputError("cmd is empty")
    return argv


def _lxc_interface(iface: Mapping[str, Any]) -> dict[str, Any]:
    """One ``/nodes/{node}/lxc/{vmid}/interfaces`` row as an interface record (PVE 9 adds
    agent-style ``ip-addresses``; older servers give ``inet``/``inet6`` CIDR strings)."""
    addresses: list[dict[str, Any]] = []
    listed = iface.get("ip-addresses")
    if isinstance(listed, list):
        for a in listed:
            if isinstance(a, Mapping) and a.get("ip-address"):
                family = str(a.get("ip-address-type") or "")
                addresses.append(
                    {
                        "ip": str(a["ip-address"]),
                        # PVE 9 names the families inet/inet6 here (the agent: ipv4/ipv6)
                        "family": {"inet": "ipv4", "inet6": "ipv6"}.get(family, family),
                        "prefix": a.get("prefix"),
                    }
                )
    else:
        for family, key in (("ipv4", "inet"), ("ipv6", "inet6")):
            for text in str(iface.get(key) or "").split():
                ip, _, prefix = text.partition("/")
                addresses.append(
                    {
                        "ip": ip,
                        "family": family,
                        "prefix": int(prefix) if prefix.isdigit() else None,
                    }
                )
    mac = iface.get("hwaddr") or iface.get("hardware-address")
    return {
        "name": iface.get("name"),
        "mac": str(mac).upper() if mac else None,
        "ipv4": [a["ip"] for a in addresses if a["family"] == "ipv4"],
        "ipv6": [a["ip"] for a in addresses if a["family"] == "ipv6"],
        "addresses": addresses,
        "statistics": None,
    }


def _agent_result(data: Any, command: str, guest: Guest) -> Any:
    """Unwrap ``{"result": ...}``; raise the agent's own error carried in an HTTP 200."""
    error: Any = None
    if isinstance(data, Mapping):
        if isinstance(data.get("error"), Mapping):
            error = data["error"]
        elif isinstance(data.get("result"), Mapping) and isinstance(
            data["result"].get("error"), Mapping
        ):
            error = data["result"]["error"]
    if error is not None:
        desc = str(error.get("desc") or "unknown error")
        cls = str(error.get("class") or "") or None
        raise GuestAgentError(
            f"guest agent of VM {guest.vmid} failed {command}: {desc}"
            + (f" ({cls})" if cls else ""),
            agent_class=cls,
            profile=guest.profile or None,
            path=f"{guest.path}/agent/{command}",
        )
    if isinstance(data, Mapping) and "result" in data:
        return data["result"]
    return data


def _exec_result(argv: tuple[str, ...], pid: int, status: Mapping[str, Any]) -> ExecResult:
    def text(key: str) -> str:
        value = status.get(key)
        return value if isinstance(value, str) else ("" if value is None else str(value))

    def number(key: str) -> int | None:
        value = status.get(key)
        try:
            return None if value is None else int(value)
        except (TypeError, ValueError):
            return None

    return ExecResult(
        command=argv,
        pid=pid,
        exitcode=number("exitcode"),
        stdout=text("out-data"),
        stderr=text("err-data"),
        signal=number("signal"),
        out_truncated=str(status.get("out-truncated", 0)) in ("1", "True", "true"),
        err_truncated=str(status.get("err-truncated", 0)) in ("1", "True", "true"),
        exited=str(status.get("exited", 0)) in ("1", "True", "true"),
    )
